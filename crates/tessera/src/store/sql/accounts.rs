//! Users, API keys and per-user webhook credentials.

use super::{Db, OptionalExtension};

use super::{SqlContext, parse_id};
use crate::domain::ids::{ApiKeyId, UserId};
use crate::store::{ApiKeyRecord, NewApiKey, SigningKeys, StoreError, StoreResult};

pub fn create_user<C: Db>(tx: &C, now: i64) -> StoreResult<UserId> {
    let id = UserId::new();
    tx.execute(
        "INSERT INTO users (id, created_at) VALUES (?1, ?2)",
        (id.to_string(), now),
    )
    .sql("insert user")?;
    Ok(id)
}

pub fn default_user<C: Db>(tx: &C, now: i64) -> StoreResult<UserId> {
    let existing: Option<String> = tx
        .query_row(
            "SELECT id FROM users ORDER BY created_at, id LIMIT 1",
            (),
            |r| r.get(0),
        )
        .optional()
        .sql("find default user")?;
    match existing {
        Some(id) => parse_id(&id),
        None => create_user(tx, now),
    }
}

pub fn create_api_key<C: Db>(tx: &C, key: NewApiKey) -> StoreResult<ApiKeyRecord> {
    let id = ApiKeyId::new();
    let inserted = tx.execute(
        "INSERT INTO api_keys (id, user_id, name, key_hash, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        (id.to_string(), key.user_id.to_string(), &key.name, &key.key_hash, key.created_at),
    );
    match inserted {
        Err(e) if e.is_unique_violation() => {
            return Err(StoreError::Conflict("this API key already exists".into()));
        }
        other => other.sql("insert api key")?,
    };
    Ok(ApiKeyRecord {
        id,
        user_id: key.user_id,
        name: key.name,
        created_at: key.created_at,
        last_used_at: None,
    })
}

pub fn key_by_hash<C: Db>(conn: &C, hash: &str) -> StoreResult<Option<ApiKeyRecord>> {
    let row = conn
        .query_row(
            "SELECT id, user_id, name, created_at, last_used_at FROM api_keys WHERE key_hash = ?1 AND revoked_at IS NULL",
            [hash],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, Option<i64>>(4)?,
                ))
            },
        )
        .optional()
        .sql("find api key")?;
    row.map(|(id, user, name, created_at, last_used_at)| {
        Ok(ApiKeyRecord {
            id: parse_id(&id)?,
            user_id: parse_id(&user)?,
            name,
            created_at,
            last_used_at,
        })
    })
    .transpose()
}

pub fn touch_key<C: Db>(tx: &C, id: ApiKeyId, now: i64) -> StoreResult<()> {
    tx.execute(
        "UPDATE api_keys SET last_used_at = ?2 WHERE id = ?1",
        (id.to_string(), now),
    )
    .sql("touch api key")?;
    Ok(())
}

pub fn webhook_secret<C: Db>(conn: &C, user: UserId) -> StoreResult<Option<String>> {
    conn.query_row(
        "SELECT webhook_secret FROM users WHERE id = ?1",
        [user.to_string()],
        |r| r.get(0),
    )
    .optional()
    .sql("read webhook secret")
    .map(Option::flatten)
}

pub fn set_webhook_secret<C: Db>(tx: &C, user: UserId, secret: Option<String>) -> StoreResult<()> {
    tx.execute(
        "UPDATE users SET webhook_secret = ?2 WHERE id = ?1",
        (user.to_string(), secret),
    )
    .sql("write webhook secret")?;
    Ok(())
}

pub fn signing_keys<C: Db>(tx: &C, user: UserId, init: &str, now: i64) -> StoreResult<SigningKeys> {
    tx.execute(
        "UPDATE users SET signing_key = ?2 WHERE id = ?1 AND signing_key IS NULL",
        (user.to_string(), init),
    )
    .sql("init signing key")?;
    stored_signing_keys(tx, user, now)?
        .ok_or_else(|| StoreError::Internal(anyhow::anyhow!("user {user} has no signing key")))
}

/// The user's keys if the first one was already created (a read only: the
/// dispatcher asks for them on every batch).
pub fn stored_signing_keys<C: Db>(
    conn: &C,
    user: UserId,
    now: i64,
) -> StoreResult<Option<SigningKeys>> {
    let row: Option<(Option<String>, Option<String>, Option<i64>)> = conn
        .query_row(
            "SELECT signing_key, previous_signing_key, previous_valid_until FROM users WHERE id = ?1",
            [user.to_string()],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()
        .sql("read signing keys")?;
    let Some((Some(current), previous, until)) = row else {
        return Ok(None);
    };
    let previous = match (previous, until) {
        (Some(key), Some(until)) if until > now => Some((key, until)),
        _ => None,
    };
    Ok(Some(SigningKeys { current, previous }))
}

pub fn rotate_signing_key<C: Db>(
    tx: &C,
    user: UserId,
    new_key: &str,
    previous_valid_until: i64,
    now: i64,
) -> StoreResult<SigningKeys> {
    tx.execute(
        "UPDATE users SET previous_signing_key = signing_key, previous_valid_until = ?3, signing_key = ?2
         WHERE id = ?1 AND signing_key IS NOT NULL",
        (user.to_string(), new_key, previous_valid_until),
    )
    .sql("rotate signing key")?;
    signing_keys(tx, user, new_key, now)
}
