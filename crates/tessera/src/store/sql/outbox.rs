//! The webhook outbox: events, their deliveries (one per destination URL) and
//! the attempts made for each delivery.

use super::{Db, OptionalExtension, Row};

use super::{SqlContext, from_json, parse_id, to_json};
use crate::domain::address::destination_key;
use crate::domain::ids::{DeliveryId, UserId};
use crate::store::{
    AttemptRecord, DeliveryFilter, DeliveryRecord, DeliveryStatus, NewEvent, NextState,
    OutboxStats, RecordedAttempt, StoreError, StoreResult,
};

pub use super::claim::claim;

/// Insert the event and one pending delivery per destination. A run's later
/// event to a URL waits for the run's latest earlier delivery to that URL.
pub fn insert_event<C: Db>(tx: &C, e: &NewEvent) -> StoreResult<Vec<DeliveryId>> {
    let flag = e.body.flag();
    tx.execute(
        "INSERT INTO webhook_events (id, user_id, run_id, flag, body, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        (
            e.id.to_string(),
            e.user_id.to_string(),
            e.run_id.map(|r| r.to_string()),
            flag,
            to_json(&e.body)?,
            e.created_at,
        ),
    )
    .sql("insert event")?;
    let mut ids = Vec::with_capacity(e.destinations.len());
    for url in &e.destinations {
        let after: Option<String> = match e.run_id {
            Some(run) => tx
                .query_row(
                    "SELECT id FROM webhook_deliveries WHERE run_id = ?1 AND url = ?2 ORDER BY id DESC LIMIT 1",
                    (run.to_string(), url),
                    |r| r.get(0),
                )
                .optional()
                .sql("find previous delivery")?,
            None => None,
        };
        let id = DeliveryId::new();
        let destination = url::Url::parse(url)
            .map(|u| destination_key(&u))
            .unwrap_or_else(|_| url.clone());
        tx.execute(
            "INSERT INTO webhook_deliveries (id, event_id, user_id, run_id, flag, url, status, attempts_allowed,
                                             next_attempt_at, after_id, created_at, updated_at, destination)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'pending', ?7, ?8, ?9, ?8, ?8, ?10)",
            (
                id.to_string(),
                e.id.to_string(),
                e.user_id.to_string(),
                e.run_id.map(|r| r.to_string()),
                flag,
                url,
                e.attempts_allowed,
                e.created_at,
                after,
                destination,
            ),
        )
        .sql("insert delivery")?;
        ids.push(id);
    }
    super::announce(tx, crate::store::Work::Deliveries)?;
    Ok(ids)
}

pub fn release<C: Db>(tx: &C, owner: &str, ids: &[DeliveryId]) -> StoreResult<()> {
    let mut stmt = tx
        .prepare_cached(
            "UPDATE webhook_deliveries SET lease_owner = NULL, lease_until = NULL
             WHERE id = ?1 AND lease_owner = ?2 AND status = 'pending'",
        )
        .sql("prepare release delivery")?;
    for id in ids {
        stmt.execute((id.to_string(), owner))
            .sql("release delivery")?;
    }
    if !ids.is_empty() {
        super::announce(tx, crate::store::Work::Deliveries)?;
    }
    Ok(())
}

pub fn record_attempts<C: Db>(tx: &C, owner: &str, batch: &[RecordedAttempt]) -> StoreResult<()> {
    let mut insert = tx
        .prepare_cached(
            "INSERT INTO webhook_attempts (delivery_id, attempt_no, started_at, duration_ms, status_code, error,
                                           error_detail, response_snippet, truncated, request_headers,
                                           response_headers, reason)
             SELECT ?1, COALESCE(MAX(attempt_no), 0) + 1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11
             FROM webhook_attempts WHERE delivery_id = ?1",
        )
        .sql("prepare insert attempt")?;
    let mut update = tx
        .prepare_cached(
            "UPDATE webhook_deliveries SET status = ?3, next_attempt_at = ?4, attempt_count = attempt_count + 1,
                    lease_owner = NULL, lease_until = NULL, updated_at = ?5
             WHERE id = ?1 AND lease_owner = ?2",
        )
        .sql("prepare update delivery")?;
    for RecordedAttempt {
        delivery,
        attempt: a,
        next,
    } in batch
    {
        // The attempt happened whoever holds the lease now, so it is always
        // recorded; the state change only applies while this owner holds it.
        let id = delivery.to_string();
        insert
            .execute((
                id.as_str(),
                a.started_at,
                a.duration_ms,
                a.status_code,
                &a.error,
                &a.error_detail,
                &a.response_snippet,
                a.truncated,
                to_json(&a.request_headers)?,
                to_json(&a.response_headers)?,
                &a.reason,
            ))
            .sql("insert attempt")?;
        let (status, next_at) = match next {
            NextState::Succeeded => (DeliveryStatus::Succeeded, None),
            NextState::Failed => (DeliveryStatus::Failed, None),
            NextState::RetryAt(at) => (DeliveryStatus::Pending, Some(*at)),
        };
        update
            .execute((
                id.as_str(),
                owner,
                status.as_str(),
                next_at,
                a.started_at + a.duration_ms,
            ))
            .sql("update delivery")?;
    }
    Ok(())
}

const DELIVERY_COLUMNS: &str =
    "id, event_id, flag, run_id, url, status, attempt_count, next_attempt_at, created_at";

/// Text columns, attempt count, next attempt time, creation time.
type DeliveryRow = (Vec<Option<String>>, u32, Option<i64>, i64);

fn delivery_row(r: &Row) -> super::Result<DeliveryRow> {
    let text = (0..6)
        .map(|i| r.get(i))
        .collect::<super::Result<Vec<Option<String>>>>()?;
    Ok((text, r.get(6)?, r.get(7)?, r.get(8)?))
}

fn delivery_from(
    (text, attempt_count, next_attempt_at, created_at): (
        Vec<Option<String>>,
        u32,
        Option<i64>,
        i64,
    ),
) -> StoreResult<DeliveryRecord> {
    let req = |i: usize| {
        text[i].clone().ok_or_else(|| {
            StoreError::Internal(anyhow::anyhow!(
                "delivery row has NULL in a required column"
            ))
        })
    };
    let status = req(5)?;
    Ok(DeliveryRecord {
        id: parse_id(&req(0)?)?,
        event_id: parse_id(&req(1)?)?,
        flag: req(2)?,
        run_id: text[3].as_deref().map(parse_id).transpose()?,
        url: req(4)?,
        status: DeliveryStatus::parse(&status).ok_or_else(|| {
            StoreError::Internal(anyhow::anyhow!("unknown delivery status {status:?}"))
        })?,
        attempt_count,
        next_attempt_at,
        created_at,
    })
}

pub fn list<C: Db>(conn: &C, user: UserId, f: &DeliveryFilter) -> StoreResult<Vec<DeliveryRecord>> {
    let sql = format!(
        "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries
         WHERE user_id = ?1 AND (CAST(?2 AS TEXT) IS NULL OR status = ?2) AND (CAST(?3 AS TEXT) IS NULL OR run_id = ?3)
           AND (CAST(?4 AS TEXT) IS NULL OR flag = ?4) AND (CAST(?5 AS TEXT) IS NULL OR id < ?5)
         ORDER BY id DESC LIMIT ?6"
    );
    let mut stmt = conn.prepare_cached(&sql).sql("prepare list deliveries")?;
    let rows = stmt
        .query_map(
            (
                user.to_string(),
                f.status.map(|s| s.as_str()),
                f.run_id.map(|r| r.to_string()),
                &f.flag,
                f.before.map(|b| b.to_string()),
                f.limit,
            ),
            delivery_row,
        )
        .sql("list deliveries")?;
    rows.map(|r| r.sql("read delivery").and_then(delivery_from))
        .collect()
}

pub fn get<C: Db>(
    conn: &C,
    user: UserId,
    id: DeliveryId,
) -> StoreResult<Option<(DeliveryRecord, Vec<AttemptRecord>)>> {
    let sql =
        format!("SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE id = ?1 AND user_id = ?2");
    let Some(row) = conn
        .query_row(&sql, (id.to_string(), user.to_string()), delivery_row)
        .optional()
        .sql("read delivery")?
    else {
        return Ok(None);
    };
    let mut stmt = conn
        .prepare_cached(
            "SELECT started_at, duration_ms, status_code, error, error_detail, response_snippet, truncated,
                    request_headers, response_headers, reason
             FROM webhook_attempts WHERE delivery_id = ?1 ORDER BY attempt_no",
        )
        .sql("prepare attempts")?;
    let rows = stmt
        .query_map([id.to_string()], |r| {
            Ok((
                AttemptRecord {
                    started_at: r.get(0)?,
                    duration_ms: r.get(1)?,
                    status_code: r.get(2)?,
                    error: r.get(3)?,
                    error_detail: r.get(4)?,
                    response_snippet: r.get(5)?,
                    truncated: r.get(6)?,
                    request_headers: Vec::new(),
                    response_headers: Vec::new(),
                    reason: r.get(9)?,
                },
                r.get::<_, Option<String>>(7)?,
                r.get::<_, Option<String>>(8)?,
            ))
        })
        .sql("read attempts")?
        .collect::<super::Result<Vec<_>>>()
        .sql("read attempts")?;
    let headers = |json: Option<String>| -> StoreResult<Vec<(String, String)>> {
        json.map(|j| from_json(&j))
            .transpose()
            .map(Option::unwrap_or_default)
    };
    let attempts = rows
        .into_iter()
        .map(|(mut a, request, response)| {
            a.request_headers = headers(request)?;
            a.response_headers = headers(response)?;
            Ok(a)
        })
        .collect::<StoreResult<Vec<_>>>()?;
    Ok(Some((delivery_from(row)?, attempts)))
}

pub fn retry_now<C: Db>(tx: &C, user: UserId, id: DeliveryId, now: i64) -> StoreResult<()> {
    let n = tx
        .execute(
            "UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = ?3,
                    attempts_allowed = CASE WHEN status = 'pending'
                        THEN CASE WHEN attempts_allowed > attempt_count + 1 THEN attempts_allowed ELSE attempt_count + 1 END
                        ELSE attempt_count + 1 END,
                    updated_at = ?3
             WHERE id = ?1 AND user_id = ?2 AND (status != 'pending' OR lease_until IS NULL OR lease_until < ?3)",
            (id.to_string(), user.to_string(), now),
        )
        .sql("retry delivery")?;
    if n == 0 {
        let exists: Option<i64> = tx
            .query_row(
                "SELECT 1 FROM webhook_deliveries WHERE id = ?1 AND user_id = ?2",
                (id.to_string(), user.to_string()),
                |r| r.get(0),
            )
            .optional()
            .sql("find delivery")?;
        return Err(match exists {
            Some(_) => StoreError::Conflict("the delivery is being attempted right now".into()),
            None => StoreError::NotFound,
        });
    }
    super::announce(tx, crate::store::Work::Deliveries)
}

pub fn stats<C: Db>(conn: &C) -> StoreResult<OutboxStats> {
    conn.query_row(
        "SELECT COUNT(*), MIN(created_at) FROM webhook_deliveries WHERE status = 'pending'",
        (),
        |r| {
            Ok(OutboxStats {
                pending: r.get::<_, i64>(0)? as u64,
                oldest_pending_created_at: r.get(1)?,
            })
        },
    )
    .sql("outbox stats")
}

pub fn prune<C: Db>(tx: &C, before: i64) -> StoreResult<u64> {
    tx.execute(
        "DELETE FROM webhook_attempts WHERE delivery_id IN (
            SELECT id FROM webhook_deliveries WHERE status != 'pending' AND updated_at < ?1)",
        [before],
    )
    .sql("prune attempts")?;
    // A later delivery of the same run may point at a pruned one.
    tx.execute(
        "UPDATE webhook_deliveries SET after_id = NULL WHERE after_id IN (
            SELECT id FROM webhook_deliveries WHERE status != 'pending' AND updated_at < ?1)",
        [before],
    )
    .sql("unlink pruned deliveries")?;
    let n = tx
        .execute(
            "DELETE FROM webhook_deliveries WHERE status != 'pending' AND updated_at < ?1",
            [before],
        )
        .sql("prune deliveries")?;
    tx.execute(
        "DELETE FROM webhook_events WHERE created_at < ?1
           AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.event_id = webhook_events.id)",
        [before],
    )
    .sql("prune events")?;
    Ok(n as u64)
}
