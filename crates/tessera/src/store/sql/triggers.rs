//! Triggers (schedules) and the slots they fired.

use super::{Db, OptionalExtension, Row};

use super::{SqlContext, from_json, parse_id, runs, to_json};
use crate::domain::ids::{AgentId, TriggerId, UserId};
use crate::store::{ScheduleFire, StoreError, StoreResult, TriggerRecord};

const COLUMNS: &str = "id, user_id, agent_id, config, callback_url, created_at, next_run_at, last_fired_at, last_poll_at, last_error";

type TriggerRow = (
    String,
    String,
    String,
    String,
    Option<String>,
    i64,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<String>,
);

fn row(r: &Row) -> super::Result<TriggerRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
        r.get(8)?,
        r.get(9)?,
    ))
}

fn record(
    (
        id,
        user,
        agent,
        config,
        callback_url,
        created_at,
        next_run_at,
        last_fired_at,
        last_poll_at,
        last_error,
    ): TriggerRow,
) -> StoreResult<TriggerRecord> {
    Ok(TriggerRecord {
        id: parse_id(&id)?,
        user_id: parse_id(&user)?,
        agent_id: parse_id(&agent)?,
        kind: from_json(&config)?,
        callback_url,
        created_at,
        next_run_at,
        last_fired_at,
        last_poll_at,
        last_error,
    })
}

pub fn insert<C: Db>(tx: &C, t: &TriggerRecord) -> StoreResult<()> {
    tx.execute(
        "INSERT INTO triggers (id, user_id, agent_id, kind, config, callback_url, created_at, next_run_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        (
            t.id.to_string(),
            t.user_id.to_string(),
            t.agent_id.to_string(),
            t.kind.name(),
            to_json(&t.kind)?,
            &t.callback_url,
            t.created_at,
            t.next_run_at,
        ),
    )
    .sql("insert trigger")?;
    Ok(())
}

pub fn get<C: Db>(conn: &C, user: UserId, id: TriggerId) -> StoreResult<Option<TriggerRecord>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM triggers WHERE id = ?1 AND user_id = ?2 AND deleted_at IS NULL"
    );
    conn.query_row(&sql, (id.to_string(), user.to_string()), row)
        .optional()
        .sql("read trigger")?
        .map(record)
        .transpose()
}

pub fn of_user<C: Db>(conn: &C, user: UserId) -> StoreResult<Vec<TriggerRecord>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM triggers WHERE user_id = ?1 AND deleted_at IS NULL ORDER BY id"
    );
    let mut stmt = conn.prepare_cached(&sql).sql("prepare user triggers")?;
    let rows = stmt
        .query_map([user.to_string()], row)
        .sql("user triggers")?;
    rows.map(|r| r.sql("read trigger").and_then(record))
        .collect()
}

pub fn of_agent<C: Db>(conn: &C, user: UserId, agent: AgentId) -> StoreResult<Vec<TriggerRecord>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM triggers WHERE agent_id = ?1 AND user_id = ?2 AND deleted_at IS NULL ORDER BY id"
    );
    let mut stmt = conn.prepare_cached(&sql).sql("prepare agent triggers")?;
    let rows = stmt
        .query_map((agent.to_string(), user.to_string()), row)
        .sql("agent triggers")?;
    rows.map(|r| r.sql("read trigger").and_then(record))
        .collect()
}

pub fn delete<C: Db>(tx: &C, user: UserId, id: TriggerId, now: i64) -> StoreResult<()> {
    let n = tx
        .execute(
            "UPDATE triggers SET deleted_at = ?3, next_run_at = NULL
             WHERE id = ?1 AND user_id = ?2 AND deleted_at IS NULL",
            (id.to_string(), user.to_string(), now),
        )
        .sql("delete trigger")?;
    if n == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

pub fn due_schedules<C: Db>(conn: &C, now: i64, limit: u32) -> StoreResult<Vec<TriggerRecord>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM triggers
         WHERE kind = 'schedule' AND deleted_at IS NULL AND next_run_at <= ?1
         ORDER BY next_run_at LIMIT ?2"
    );
    let mut stmt = conn.prepare_cached(&sql).sql("prepare due schedules")?;
    let rows = stmt.query_map((now, limit), row).sql("due schedules")?;
    rows.map(|r| r.sql("read trigger").and_then(record))
        .collect()
}

pub fn fire<C: Db>(tx: &C, f: &ScheduleFire) -> StoreResult<bool> {
    let inserted = tx
        .execute(
            "INSERT INTO trigger_fires (trigger_id, slot_at, run_id) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
            (f.trigger_id.to_string(), f.slot_at, f.run.id.to_string()),
        )
        .sql("record fired slot")?
        == 1;
    if inserted {
        runs::insert_run(tx, &f.run)?;
    }
    // Never move a schedule backwards: a slower scheduler may come second.
    tx.execute(
        "UPDATE triggers SET last_fired_at = CASE WHEN last_fired_at > ?2 THEN last_fired_at ELSE ?2 END,
                next_run_at = CASE WHEN next_run_at IS NULL OR CAST(?3 AS BIGINT) IS NULL OR ?3 > next_run_at THEN ?3 ELSE next_run_at END,
                last_error = NULL
         WHERE id = ?1 AND deleted_at IS NULL",
        (f.trigger_id.to_string(), f.slot_at, f.next_run_at),
    )
    .sql("move schedule on")?;
    Ok(inserted)
}

pub fn skip<C: Db>(
    tx: &C,
    id: TriggerId,
    next_run_at: Option<i64>,
    error: Option<&str>,
    now: i64,
) -> StoreResult<()> {
    tx.execute(
        "UPDATE triggers SET next_run_at = ?2, last_error = ?3, last_poll_at = ?4 WHERE id = ?1",
        (id.to_string(), next_run_at, error, now),
    )
    .sql("skip schedule")?;
    Ok(())
}
