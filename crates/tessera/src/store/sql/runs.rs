//! Agents and runs, including the run lease.

use super::{Db, OptionalExtension, Row};
use serde_json::json;

use super::{SqlContext, from_json, parse_id, to_json};
use crate::domain::graph::{AgentGraph, Connection as Edge, NodeSpec};
use crate::domain::ids::{AgentId, RenderId, RunId, UserId};
use crate::domain::payload::FileRef;
use crate::store::{
    AgentRecord, CancelOutcome, RunControl, RunFilter, RunFinished, RunRecord, RunStarted,
    RunStatus, StoreError, StoreResult,
};

fn graph_json(g: &AgentGraph) -> StoreResult<String> {
    to_json(&json!({ "nodes": g.nodes, "connections": g.connections }))
}

fn graph_from_json(s: &str) -> StoreResult<AgentGraph> {
    #[derive(serde::Deserialize)]
    struct Stored {
        nodes: Vec<NodeSpec>,
        connections: Vec<Edge>,
    }
    let g: Stored = from_json(s)?;
    Ok(AgentGraph {
        nodes: g.nodes,
        connections: g.connections,
    })
}

pub fn insert_agent<C: Db>(tx: &C, a: &AgentRecord) -> StoreResult<()> {
    tx.execute(
        "INSERT INTO agents (id, user_id, name, description, graph, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        (
            a.id.to_string(),
            a.user_id.to_string(),
            &a.name,
            &a.description,
            graph_json(&a.graph)?,
            a.created_at,
            a.updated_at,
        ),
    )
    .sql("insert agent")?;
    Ok(())
}

const AGENT_COLUMNS: &str = "id, user_id, name, description, graph, created_at, updated_at";

fn agent_row(r: &Row) -> super::Result<[Option<String>; 5]> {
    Ok([r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?])
}

fn agent_from(
    cols: [Option<String>; 5],
    created_at: i64,
    updated_at: i64,
) -> StoreResult<AgentRecord> {
    let [id, user, name, description, graph] = cols;
    let missing =
        || StoreError::Internal(anyhow::anyhow!("agent row has NULL in a required column"));
    Ok(AgentRecord {
        id: parse_id(&id.ok_or_else(missing)?)?,
        user_id: parse_id(&user.ok_or_else(missing)?)?,
        name: name.ok_or_else(missing)?,
        description,
        graph: graph_from_json(&graph.ok_or_else(missing)?)?,
        created_at,
        updated_at,
    })
}

pub fn agent<C: Db>(conn: &C, user: UserId, id: AgentId) -> StoreResult<Option<AgentRecord>> {
    let sql = format!(
        "SELECT {AGENT_COLUMNS} FROM agents WHERE id = ?1 AND user_id = ?2 AND deleted_at IS NULL"
    );
    conn.query_row(&sql, (id.to_string(), user.to_string()), |r| {
        Ok((agent_row(r)?, r.get(5)?, r.get(6)?))
    })
    .optional()
    .sql("read agent")?
    .map(|(cols, c, u)| agent_from(cols, c, u))
    .transpose()
}

pub fn list_agents<C: Db>(
    conn: &C,
    user: UserId,
    before: Option<AgentId>,
    limit: u32,
) -> StoreResult<Vec<AgentRecord>> {
    let sql = format!(
        "SELECT {AGENT_COLUMNS} FROM agents WHERE user_id = ?1 AND deleted_at IS NULL AND (CAST(?2 AS TEXT) IS NULL OR id < ?2) ORDER BY id DESC LIMIT ?3"
    );
    let mut stmt = conn.prepare_cached(&sql).sql("prepare list agents")?;
    let rows = stmt
        .query_map(
            (user.to_string(), before.map(|b| b.to_string()), limit),
            |r| Ok((agent_row(r)?, r.get(5)?, r.get(6)?)),
        )
        .sql("list agents")?;
    rows.map(|row| {
        let (cols, c, u) = row.sql("read agent row")?;
        agent_from(cols, c, u)
    })
    .collect()
}

pub fn update_agent<C: Db>(tx: &C, a: &AgentRecord) -> StoreResult<()> {
    let n = tx
        .execute(
            "UPDATE agents SET name = ?3, description = ?4, graph = ?5, updated_at = ?6
             WHERE id = ?1 AND user_id = ?2 AND deleted_at IS NULL",
            (
                a.id.to_string(),
                a.user_id.to_string(),
                &a.name,
                &a.description,
                graph_json(&a.graph)?,
                a.updated_at,
            ),
        )
        .sql("update agent")?;
    if n == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

pub fn delete_agent<C: Db>(tx: &C, user: UserId, id: AgentId, now: i64) -> StoreResult<()> {
    let n = tx
        .execute(
            "UPDATE agents SET deleted_at = ?3 WHERE id = ?1 AND user_id = ?2 AND deleted_at IS NULL",
            (id.to_string(), user.to_string(), now),
        )
        .sql("delete agent")?;
    if n == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

pub fn insert_run<C: Db>(tx: &C, run: &RunRecord) -> StoreResult<()> {
    tx.execute(
        "INSERT INTO runs (id, agent_id, user_id, status, sources, callback_url, graph, triggered_by, created_at, multi_input, trigger_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        (
            run.id.to_string(),
            run.agent_id.to_string(),
            run.user_id.to_string(),
            run.status.as_str(),
            to_json(&run.sources)?,
            &run.callback_url,
            graph_json(&run.graph)?,
            to_json(&run.triggered_by)?,
            run.created_at,
            run.multi_input,
            run.trigger_id.map(|t| t.to_string()),
        ),
    )
    .sql("insert run")?;
    super::announce(tx, crate::store::Work::Runs)
}

const RUN_COLUMNS: &str = "id, agent_id, user_id, status, sources, callback_url, graph, triggered_by, inputs, outputs, errors, status_message, created_at, started_at, finished_at, attempt, cancel_requested_at, multi_input, trigger_id";

struct RunRow {
    text: [Option<String>; 12],
    created_at: i64,
    started_at: Option<i64>,
    finished_at: Option<i64>,
    attempt: u32,
    cancel_requested_at: Option<i64>,
    multi_input: bool,
    trigger_id: Option<String>,
}

fn run_row(r: &Row) -> super::Result<RunRow> {
    let mut text: [Option<String>; 12] = Default::default();
    for (i, slot) in text.iter_mut().enumerate() {
        *slot = r.get(i)?;
    }
    Ok(RunRow {
        text,
        created_at: r.get(12)?,
        started_at: r.get(13)?,
        finished_at: r.get(14)?,
        attempt: r.get(15)?,
        cancel_requested_at: r.get(16)?,
        multi_input: r.get(17)?,
        trigger_id: r.get(18)?,
    })
}

fn run_from(row: RunRow) -> StoreResult<RunRecord> {
    let [
        id,
        agent,
        user,
        status,
        sources,
        callback_url,
        graph,
        triggered_by,
        inputs,
        outputs,
        errors,
        status_message,
    ] = row.text;
    let req = |v: Option<String>| {
        v.ok_or_else(|| {
            StoreError::Internal(anyhow::anyhow!("run row has NULL in a required column"))
        })
    };
    let status = req(status)?;
    Ok(RunRecord {
        id: parse_id(&req(id)?)?,
        agent_id: parse_id(&req(agent)?)?,
        user_id: parse_id(&req(user)?)?,
        status: RunStatus::parse(&status).ok_or_else(|| {
            StoreError::Internal(anyhow::anyhow!("unknown run status {status:?}"))
        })?,
        sources: from_json(&req(sources)?)?,
        callback_url,
        graph: graph_from_json(&req(graph)?)?,
        triggered_by: from_json(&req(triggered_by)?)?,
        inputs: from_json(&req(inputs)?)?,
        outputs: from_json(&req(outputs)?)?,
        errors: from_json(&req(errors)?)?,
        status_message,
        created_at: row.created_at,
        started_at: row.started_at,
        finished_at: row.finished_at,
        attempt: row.attempt,
        cancel_requested: row.cancel_requested_at.is_some(),
        multi_input: row.multi_input,
        trigger_id: row.trigger_id.as_deref().map(parse_id).transpose()?,
    })
}

pub fn run<C: Db>(conn: &C, user: Option<UserId>, id: RunId) -> StoreResult<Option<RunRecord>> {
    let sql = format!(
        "SELECT {RUN_COLUMNS} FROM runs WHERE id = ?1 AND (CAST(?2 AS TEXT) IS NULL OR user_id = ?2)"
    );
    conn.query_row(&sql, (id.to_string(), user.map(|u| u.to_string())), run_row)
        .optional()
        .sql("read run")?
        .map(run_from)
        .transpose()
}

pub fn claim<C: Db>(
    tx: &C,
    owner: &str,
    now: i64,
    lease_until: i64,
    limit: u32,
) -> StoreResult<Vec<RunRecord>> {
    let lock = C::DIALECT.skip_locked("runs");
    let sql = format!(
        "UPDATE runs SET lease_owner = ?1, lease_until = ?3
         WHERE id IN (SELECT id FROM runs WHERE status IN ('queued', 'running')
                      AND (lease_until IS NULL OR lease_until < ?2) ORDER BY created_at LIMIT ?4
                      {lock})
           AND (lease_until IS NULL OR lease_until < ?2)
         RETURNING {RUN_COLUMNS}"
    );
    let mut stmt = tx.prepare_cached(&sql).sql("prepare claim runs")?;
    let rows = stmt
        .query_map((owner, now, lease_until, limit), run_row)
        .sql("claim runs")?;
    let mut runs = rows
        .map(|r| r.sql("read claimed run").and_then(run_from))
        .collect::<StoreResult<Vec<_>>>()?;
    runs.sort_by_key(|r| r.created_at);
    Ok(runs)
}

/// Extend the lease (when `lease_until` is given) and report the run's control state.
pub fn check_in<C: Db>(
    conn: &C,
    id: RunId,
    owner: &str,
    lease_until: Option<i64>,
) -> StoreResult<RunControl> {
    if let Some(until) = lease_until {
        conn.execute(
            "UPDATE runs SET lease_until = ?3 WHERE id = ?1 AND lease_owner = ?2 AND status IN ('queued', 'running')",
            (id.to_string(), owner, until),
        )
        .sql("renew run lease")?;
    }
    let row: Option<(Option<String>, String, Option<i64>)> = conn
        .query_row(
            "SELECT lease_owner, status, cancel_requested_at FROM runs WHERE id = ?1",
            [id.to_string()],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()
        .sql("read run control")?;
    Ok(match row {
        Some((lease_owner, status, cancel)) => RunControl {
            held: lease_owner.as_deref() == Some(owner)
                && matches!(status.as_str(), "queued" | "running"),
            cancel_requested: cancel.is_some(),
        },
        None => RunControl {
            held: false,
            cancel_requested: false,
        },
    })
}

pub fn release<C: Db>(tx: &C, id: RunId, owner: &str) -> StoreResult<()> {
    tx.execute(
        "UPDATE runs SET lease_owner = NULL, lease_until = NULL WHERE id = ?1 AND lease_owner = ?2",
        (id.to_string(), owner),
    )
    .sql("release run")?;
    Ok(())
}

pub fn list<C: Db>(conn: &C, user: UserId, f: &RunFilter) -> StoreResult<Vec<RunRecord>> {
    let statuses: Vec<&str> = f.statuses.iter().map(|s| s.as_str()).collect();
    let statuses_in = C::DIALECT.json_array_elements("?3");
    let sql = format!(
        "SELECT {RUN_COLUMNS} FROM runs
         WHERE user_id = ?1 AND (CAST(?2 AS TEXT) IS NULL OR agent_id = ?2) AND (CAST(?8 AS TEXT) IS NULL OR trigger_id = ?8)
           AND (?3 = '[]' OR status IN ({statuses_in}))
           AND (CAST(?4 AS BIGINT) IS NULL OR created_at >= ?4) AND (CAST(?5 AS BIGINT) IS NULL OR created_at < ?5)
           AND (CAST(?6 AS TEXT) IS NULL OR id < ?6)
         ORDER BY id DESC LIMIT ?7"
    );
    let mut stmt = conn.prepare_cached(&sql).sql("prepare list runs")?;
    let rows = stmt
        .query_map(
            (
                user.to_string(),
                f.agent_id.map(|a| a.to_string()),
                to_json(&statuses)?,
                f.from,
                f.to,
                f.before.map(|b| b.to_string()),
                f.limit,
                f.trigger_id.map(|t| t.to_string()),
            ),
            run_row,
        )
        .sql("list runs")?;
    rows.map(|r| r.sql("read run").and_then(run_from)).collect()
}

pub fn cancel<C: Db>(tx: &C, user: UserId, id: RunId, now: i64) -> StoreResult<CancelOutcome> {
    let row: Option<(String, Option<i64>)> = tx
        .query_row(
            "SELECT status, lease_until FROM runs WHERE id = ?1 AND user_id = ?2",
            (id.to_string(), user.to_string()),
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .sql("read run for cancel")?;
    let Some((status, lease_until)) = row else {
        return Err(StoreError::NotFound);
    };
    match status.as_str() {
        "queued" if lease_until.is_none_or(|t| t < now) => {
            tx.execute(
                "UPDATE runs SET status = 'cancelled', finished_at = ?2, cancel_requested_at = ?2,
                        status_message = 'cancelled before it started', lease_owner = NULL, lease_until = NULL
                 WHERE id = ?1",
                (id.to_string(), now),
            )
            .sql("cancel queued run")?;
            Ok(CancelOutcome::Cancelled)
        }
        "queued" | "running" => {
            tx.execute(
                "UPDATE runs SET cancel_requested_at = COALESCE(cancel_requested_at, ?2) WHERE id = ?1",
                (id.to_string(), now),
            )
            .sql("request cancel")?;
            Ok(CancelOutcome::Requested)
        }
        other => Err(StoreError::Conflict(format!(
            "the run has already ended ({other})"
        ))),
    }
}

pub fn resume<C: Db>(tx: &C, user: UserId, id: RunId, now: i64) -> StoreResult<()> {
    let n = tx
        .execute(
            "UPDATE runs SET status = 'queued', attempt = attempt + 1, cancel_requested_at = NULL,
                    finished_at = NULL, started_at = NULL, created_at = created_at,
                    status_message = 'resumed', lease_owner = NULL, lease_until = ?3
             WHERE id = ?1 AND user_id = ?2 AND status IN ('failed', 'cancelled')",
            (id.to_string(), user.to_string(), now - 1),
        )
        .sql("resume run")?;
    if n == 1 {
        return super::announce(tx, crate::store::Work::Runs);
    }
    match run(tx, Some(user), id)? {
        None => Err(StoreError::NotFound),
        Some(r) => Err(StoreError::Conflict(format!(
            "only failed or cancelled runs can be resumed; this one is {}",
            r.status.as_str()
        ))),
    }
}

pub fn render_files<C: Db>(conn: &C, user: UserId, id: RenderId) -> StoreResult<Option<FileRef>> {
    conn.query_row(
        "SELECT video_key, thumbnail_key FROM renders WHERE id = ?1 AND user_id = ?2",
        (id.to_string(), user.to_string()),
        |r| {
            Ok(FileRef {
                video_key: r.get(0)?,
                thumbnail_key: r.get(1)?,
            })
        },
    )
    .optional()
    .sql("read render")
}

pub fn mark_started<C: Db>(tx: &C, u: &RunStarted) -> StoreResult<bool> {
    let n = tx
        .execute(
            "UPDATE runs SET status = 'running', inputs = ?3, errors = ?4, status_message = ?5, started_at = ?6
             WHERE id = ?1 AND lease_owner = ?2 AND status = 'queued'",
            (
                u.id.to_string(),
                &u.owner,
                to_json(&u.inputs)?,
                to_json(&u.errors)?,
                &u.status_message,
                u.at,
            ),
        )
        .sql("mark run started")?;
    Ok(n == 1)
}

pub fn mark_finished<C: Db>(tx: &C, u: &RunFinished) -> StoreResult<bool> {
    let status = if u.cancelled {
        RunStatus::Cancelled
    } else {
        RunStatus::from(u.status)
    };
    let n = tx
        .execute(
            "UPDATE runs SET status = ?3, outputs = ?4, errors = ?5, status_message = ?6, finished_at = ?7,
                             lease_owner = NULL, lease_until = NULL
             WHERE id = ?1 AND lease_owner = ?2 AND status IN ('queued', 'running')",
            (
                u.id.to_string(),
                &u.owner,
                status.as_str(),
                to_json(&u.outputs)?,
                to_json(&u.errors)?,
                &u.status_message,
                u.at,
            ),
        )
        .sql("mark run finished")?;
    if n != 1 {
        return Ok(false);
    }
    let user: String = tx
        .query_row(
            "SELECT user_id FROM runs WHERE id = ?1",
            [u.id.to_string()],
            |r| r.get(0),
        )
        .sql("read run owner")?;
    let mut insert = tx
        .prepare_cached(
            "INSERT INTO renders (id, user_id, run_id, video_key, thumbnail_key, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT DO NOTHING",
        )
        .sql("prepare insert render")?;
    for o in &u.outputs {
        insert
            .execute((
                o.id.to_string(),
                &user,
                u.id.to_string(),
                &o.files.video_key,
                &o.files.thumbnail_key,
                o.completed_at.timestamp_millis(),
            ))
            .sql("insert render")?;
    }
    Ok(true)
}

pub fn counts<C: Db>(conn: &C) -> StoreResult<Vec<(RunStatus, u64)>> {
    let mut stmt = conn
        .prepare_cached("SELECT status, COUNT(*) FROM runs GROUP BY status")
        .sql("prepare run counts")?;
    let rows = stmt
        .query_map((), |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
        .sql("run counts")?;
    rows.map(|row| {
        let (status, n) = row.sql("read run count")?;
        let status = RunStatus::parse(&status).ok_or_else(|| {
            StoreError::Internal(anyhow::anyhow!("unknown run status {status:?}"))
        })?;
        Ok((status, n as u64))
    })
    .collect()
}
