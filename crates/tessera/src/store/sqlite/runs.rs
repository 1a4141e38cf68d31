//! Agents and runs, including the run lease.

use rusqlite::{Connection, OptionalExtension, Row, Transaction};
use serde_json::json;

use super::{SqlContext, from_json, parse_id, to_json};
use crate::domain::graph::{AgentGraph, Connection as Edge, NodeSpec};
use crate::domain::ids::{AgentId, RunId, UserId};
use crate::store::{
    AgentRecord, RunFinished, RunRecord, RunStarted, RunStatus, StoreError, StoreResult,
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

pub fn insert_agent(tx: &Transaction<'_>, a: &AgentRecord) -> StoreResult<()> {
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

fn agent_row(r: &Row<'_>) -> rusqlite::Result<[Option<String>; 5]> {
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

pub fn agent(conn: &Connection, user: UserId, id: AgentId) -> StoreResult<Option<AgentRecord>> {
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

pub fn list_agents(
    conn: &Connection,
    user: UserId,
    before: Option<AgentId>,
    limit: u32,
) -> StoreResult<Vec<AgentRecord>> {
    let sql = format!(
        "SELECT {AGENT_COLUMNS} FROM agents WHERE user_id = ?1 AND deleted_at IS NULL AND (?2 IS NULL OR id < ?2) ORDER BY id DESC LIMIT ?3"
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

pub fn insert_run(tx: &Transaction<'_>, run: &RunRecord) -> StoreResult<()> {
    tx.execute(
        "INSERT INTO runs (id, agent_id, user_id, status, sources, callback_url, graph, triggered_by, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
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
        ),
    )
    .sql("insert run")?;
    Ok(())
}

const RUN_COLUMNS: &str = "id, agent_id, user_id, status, sources, callback_url, graph, triggered_by, inputs, outputs, errors, status_message, created_at, started_at, finished_at";

struct RunRow {
    text: [Option<String>; 12],
    created_at: i64,
    started_at: Option<i64>,
    finished_at: Option<i64>,
}

fn run_row(r: &Row<'_>) -> rusqlite::Result<RunRow> {
    let mut text: [Option<String>; 12] = Default::default();
    for (i, slot) in text.iter_mut().enumerate() {
        *slot = r.get(i)?;
    }
    Ok(RunRow {
        text,
        created_at: r.get(12)?,
        started_at: r.get(13)?,
        finished_at: r.get(14)?,
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
    })
}

pub fn run(conn: &Connection, user: Option<UserId>, id: RunId) -> StoreResult<Option<RunRecord>> {
    let sql =
        format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = ?1 AND (?2 IS NULL OR user_id = ?2)");
    conn.query_row(&sql, (id.to_string(), user.map(|u| u.to_string())), run_row)
        .optional()
        .sql("read run")?
        .map(run_from)
        .transpose()
}

pub fn claim(
    tx: &Transaction<'_>,
    owner: &str,
    now: i64,
    lease_until: i64,
    limit: u32,
) -> StoreResult<Vec<RunRecord>> {
    let sql = format!(
        "UPDATE runs SET lease_owner = ?1, lease_until = ?3
         WHERE id IN (SELECT id FROM runs WHERE status IN ('queued', 'running')
                      AND (lease_until IS NULL OR lease_until < ?2) ORDER BY created_at LIMIT ?4)
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

pub fn renew(tx: &Transaction<'_>, id: RunId, owner: &str, lease_until: i64) -> StoreResult<bool> {
    let n = tx
        .execute(
            "UPDATE runs SET lease_until = ?3 WHERE id = ?1 AND lease_owner = ?2 AND status IN ('queued', 'running')",
            (id.to_string(), owner, lease_until),
        )
        .sql("renew run lease")?;
    Ok(n == 1)
}

pub fn mark_started(tx: &Transaction<'_>, u: &RunStarted) -> StoreResult<bool> {
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

pub fn mark_finished(tx: &Transaction<'_>, u: &RunFinished) -> StoreResult<bool> {
    let n = tx
        .execute(
            "UPDATE runs SET status = ?3, outputs = ?4, errors = ?5, status_message = ?6, finished_at = ?7,
                             lease_owner = NULL, lease_until = NULL
             WHERE id = ?1 AND lease_owner = ?2 AND status = 'running'",
            (
                u.id.to_string(),
                &u.owner,
                RunStatus::from(u.status).as_str(),
                to_json(&u.outputs)?,
                to_json(&u.errors)?,
                &u.status_message,
                u.at,
            ),
        )
        .sql("mark run finished")?;
    Ok(n == 1)
}

pub fn counts(conn: &Connection) -> StoreResult<Vec<(RunStatus, u64)>> {
    let mut stmt = conn
        .prepare_cached("SELECT status, COUNT(*) FROM runs GROUP BY status")
        .sql("prepare run counts")?;
    let rows = stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
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
