//! Dashboard sessions, API key management and activity counts.

use super::{Db, OptionalExtension};

use super::{SqlContext, parse_id};
use crate::domain::ids::{ApiKeyId, UserId};
use crate::store::{
    ActivitySummary, ApiKeyRecord, DeliveryStatus, RunStatus, SessionRecord, StoreError,
    StoreResult,
};

pub fn create_session<C: Db>(tx: &C, hash: &str, s: &SessionRecord) -> StoreResult<()> {
    tx.execute(
        "INSERT INTO dashboard_sessions (token_hash, user_id, api_key_id, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        (
            hash,
            s.user_id.to_string(),
            s.api_key_id.to_string(),
            s.created_at,
            s.expires_at,
        ),
    )
    .sql("insert session")?;
    Ok(())
}

pub fn session<C: Db>(conn: &C, hash: &str, now: i64) -> StoreResult<Option<SessionRecord>> {
    let row = conn
        .prepare_cached(
            "SELECT s.user_id, s.api_key_id, s.created_at, s.expires_at
             FROM dashboard_sessions s JOIN api_keys k ON k.id = s.api_key_id
             WHERE s.token_hash = ?1 AND s.expires_at > ?2 AND k.revoked_at IS NULL",
        )
        .sql("prepare session")?
        .query_row((hash, now), |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, i64>(3)?,
            ))
        })
        .optional()
        .sql("read session")?;
    row.map(|(user, key, created_at, expires_at)| {
        Ok(SessionRecord {
            user_id: parse_id(&user)?,
            api_key_id: parse_id(&key)?,
            created_at,
            expires_at,
        })
    })
    .transpose()
}

pub fn delete_session<C: Db>(tx: &C, hash: &str) -> StoreResult<()> {
    tx.execute(
        "DELETE FROM dashboard_sessions WHERE token_hash = ?1",
        [hash],
    )
    .sql("delete session")?;
    Ok(())
}

pub fn prune_sessions<C: Db>(tx: &C, now: i64) -> StoreResult<u64> {
    let n = tx
        .execute(
            "DELETE FROM dashboard_sessions WHERE expires_at <= ?1",
            [now],
        )
        .sql("prune sessions")?;
    Ok(n as u64)
}

pub fn list_api_keys<C: Db>(conn: &C, user: UserId) -> StoreResult<Vec<ApiKeyRecord>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT id, name, created_at, last_used_at FROM api_keys
             WHERE user_id = ?1 AND revoked_at IS NULL ORDER BY created_at DESC, id DESC",
        )
        .sql("prepare list api keys")?;
    let rows = stmt
        .query_map([user.to_string()], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, Option<i64>>(3)?,
            ))
        })
        .sql("list api keys")?;
    rows.map(|row| {
        let (id, name, created_at, last_used_at) = row.sql("read api key")?;
        Ok(ApiKeyRecord {
            id: parse_id(&id)?,
            user_id: user,
            name,
            created_at,
            last_used_at,
        })
    })
    .collect()
}

pub fn revoke_api_key<C: Db>(tx: &C, user: UserId, id: ApiKeyId, now: i64) -> StoreResult<()> {
    let active: i64 = tx
        .query_row(
            "SELECT COUNT(*) FROM api_keys WHERE user_id = ?1 AND revoked_at IS NULL",
            [user.to_string()],
            |r| r.get(0),
        )
        .sql("count active keys")?;
    let exists = tx
        .query_row(
            "SELECT 1 FROM api_keys WHERE id = ?1 AND user_id = ?2 AND revoked_at IS NULL",
            (id.to_string(), user.to_string()),
            |_| Ok(()),
        )
        .optional()
        .sql("find api key")?
        .is_some();
    if !exists {
        return Err(StoreError::NotFound);
    }
    if active <= 1 {
        return Err(StoreError::Conflict(
            "this is your last API key: create another one before revoking it".into(),
        ));
    }
    tx.execute(
        "UPDATE api_keys SET revoked_at = ?2 WHERE id = ?1",
        (id.to_string(), now),
    )
    .sql("revoke api key")?;
    tx.execute(
        "DELETE FROM dashboard_sessions WHERE api_key_id = ?1",
        [id.to_string()],
    )
    .sql("end the key's sessions")?;
    Ok(())
}

pub fn activity<C: Db>(conn: &C, user: UserId, since: i64) -> StoreResult<ActivitySummary> {
    let count = |sql: &str| -> StoreResult<Vec<(String, u64)>> {
        let mut stmt = conn.prepare_cached(sql).sql("prepare activity")?;
        let rows = stmt
            .query_map((user.to_string(), since), |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64))
            })
            .sql("activity")?;
        rows.map(|r| r.sql("read activity")).collect()
    };
    let corrupt =
        |what: &str, s: &str| StoreError::Internal(anyhow::anyhow!("unknown {what} status {s:?}"));
    let runs = count(
        "SELECT status, COUNT(*) FROM runs WHERE user_id = ?1 AND created_at >= ?2 GROUP BY status",
    )?
    .into_iter()
    .map(|(s, n)| Ok((RunStatus::parse(&s).ok_or_else(|| corrupt("run", &s))?, n)))
    .collect::<StoreResult<Vec<_>>>()?;
    let deliveries = count(
        "SELECT status, COUNT(*) FROM webhook_deliveries WHERE user_id = ?1 AND created_at >= ?2 GROUP BY status",
    )?
    .into_iter()
    .map(|(s, n)| Ok((DeliveryStatus::parse(&s).ok_or_else(|| corrupt("delivery", &s))?, n)))
    .collect::<StoreResult<Vec<_>>>()?;
    Ok(ActivitySummary { runs, deliveries })
}
