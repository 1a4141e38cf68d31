//! Controlling a run and looking inside it: cancel, resume, and per-node
//! status (`GET /agent_run/{id}/nodes`, `node_status_counts`).
//!
//! A node's status is derived from what the run recorded: every (job, render
//! node) pair is a unit of work, completed when its outputs exist, failed when
//! an error names it (or its job's input failed to ingest); a node's status is
//! the worst of the units it takes part in.

use std::collections::{BTreeSet, HashMap};

use axum::Json as JsonOut;
use axum::extract::{Path, State};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Auth;
use super::error::{ApiError, ErrorBody, not_found_as};
use super::runs::owned_run;
use super::{AppState, parse_path_id};
use crate::domain::graph::{AgentGraph, render_plans};
use crate::domain::ids::{EventId, RenderId, RunId};
use crate::domain::payload::{EventBody, FinishedStatus, InputError, iso8601};
use crate::store::{CancelOutcome, NewEvent, RunRecord, RunStatus};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(cancel))
        .routes(routes!(resume))
        .routes(routes!(nodes))
}

/// What a cancel or resume request did.
#[derive(Serialize, ToSchema)]
struct RunControl {
    run_id: RunId,
    status: ControlStatus,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ControlStatus {
    /// The run was queued and has ended (its `RUN_FINISHED` is on its way).
    Cancelled,
    /// The run is running and will stop at the next step.
    Cancelling,
    /// The run was queued again.
    Queued,
}

/// Cancel a run: a queued run ends at once, a running one stops at its next step.
#[utoipa::path(post, path = "/agent_run/{id}/cancel", tag = "runs",
    params(("id" = String, Path, description = "Run id")),
    responses((status = 200, body = RunControl), (status = "4XX", body = ErrorBody)))]
async fn cancel(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<JsonOut<RunControl>, ApiError> {
    let run = owned_run(&state, auth.user_id, &id).await?;
    let status = cancel_run(&state, &run).await?;
    Ok(JsonOut(RunControl {
        run_id: run.id,
        status,
    }))
}

/// Cancel a run: a queued run ends at once (with its `RUN_FINISHED`), a
/// running one is asked to stop.
pub async fn cancel_run(state: &AppState, run: &RunRecord) -> Result<ControlStatus, ApiError> {
    let now = chrono::Utc::now().timestamp_millis();
    // Used only if the run is still queued: it ends here, with its webhook.
    let event = NewEvent {
        id: EventId::new(),
        user_id: run.user_id,
        run_id: Some(run.id),
        body: EventBody::RunFinished {
            agent_id: run.agent_id,
            run_id: run.id,
            status: FinishedStatus::Failed,
            inputs: vec![],
            outputs: vec![],
            triggered_by: Some(run.triggered_by.clone()),
            status_message: Some("cancelled before it started".into()),
            errors: vec![],
            cancelled: true,
        },
        destinations: run.callback_url.iter().cloned().collect(),
        attempts_allowed: state.config.retry.attempts_allowed(),
        created_at: now,
    };
    let outcome = state
        .store
        .cancel_run(run.user_id, run.id, now, event)
        .await
        .map_err(not_found_as("run"))?;
    Ok(match outcome {
        CancelOutcome::Cancelled => {
            state.wake.deliveries.notify_one();
            ControlStatus::Cancelled
        }
        CancelOutcome::Requested => ControlStatus::Cancelling,
    })
}

/// Run a failed, partially complete or cancelled run again, keeping what it finished.
#[utoipa::path(post, path = "/agent_run/{id}/resume", tag = "runs",
    params(("id" = String, Path, description = "Run id")),
    responses((status = 200, body = RunControl), (status = "4XX", body = ErrorBody)))]
async fn resume(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<JsonOut<RunControl>, ApiError> {
    let id: RunId = parse_path_id(&id, "run")?;
    let now = chrono::Utc::now().timestamp_millis();
    state
        .store
        .resume_run(auth.user_id, id, now)
        .await
        .map_err(not_found_as("run"))?;
    state.wake.runs.notify_one();
    Ok(JsonOut(RunControl {
        run_id: id,
        status: ControlStatus::Queued,
    }))
}

/// Every node of a run with its status, errors and outputs.
#[derive(Serialize, ToSchema)]
struct RunNodes {
    run_id: RunId,
    status: RunStatus,
    nodes: Vec<NodeView>,
}

#[derive(Serialize, ToSchema)]
struct NodeView {
    agent_node_id: String,
    node_type: String,
    status: NodeStatus,
    errors: Vec<InputError>,
    outputs: Vec<NodeOutput>,
}

#[derive(Serialize, ToSchema)]
struct NodeOutput {
    id: RenderId,
    /// Which input (0-based, in request order) it was rendered from.
    input_index: usize,
    video_url: String,
    thumbnail_url: String,
    completed_at: String,
}

/// Per-node status of a run (`skipped` for nodes no render path reaches).
#[utoipa::path(get, path = "/agent_run/{id}/nodes", tag = "runs",
    params(("id" = String, Path, description = "Run id")),
    responses((status = 200, body = RunNodes), (status = "4XX", body = ErrorBody)))]
async fn nodes(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<JsonOut<RunNodes>, ApiError> {
    let run = owned_run(&state, auth.user_id, &id).await?;
    let statuses = node_statuses(&run);
    let now = chrono::Utc::now().timestamp();
    let render = |sign: &dyn Fn(&str) -> String| -> Vec<NodeView> {
        run.graph
            .nodes
            .iter()
            .map(|n| NodeView {
                agent_node_id: n.id.clone(),
                node_type: n.node_type.clone(),
                status: node_status(&statuses, &n.id),
                errors: node_errors(&run, &n.id).into_iter().cloned().collect(),
                outputs: run
                    .outputs
                    .iter()
                    .filter(|o| o.render_node == n.id)
                    .map(|o| NodeOutput {
                        id: o.id,
                        input_index: o.input_index,
                        video_url: sign(&o.files.video_key),
                        thumbnail_url: sign(&o.files.thumbnail_key),
                        completed_at: iso8601(o.completed_at),
                    })
                    .collect(),
            })
            .collect()
    };
    let nodes = state
        .objects
        .with_urls(now, render)
        .await
        .map_err(|e| ApiError::logged("cannot sign object URLs", e))?;
    Ok(JsonOut(RunNodes {
        run_id: run.id,
        status: run.status,
        nodes,
    }))
}

/// How many of a run's nodes are in each state.
#[derive(Serialize, ToSchema)]
pub struct NodeStatusCounts {
    completed: usize,
    in_progress: usize,
    failed: usize,
}

/// `node_status_counts` of a run.
pub fn status_counts(run: &RunRecord) -> NodeStatusCounts {
    let statuses = node_statuses(run);
    let count = |s: NodeStatus| statuses.values().filter(|v| **v == s).count();
    NodeStatusCounts {
        completed: count(NodeStatus::Completed),
        in_progress: count(NodeStatus::InProgress) + count(NodeStatus::Pending),
        failed: count(NodeStatus::Failed) + count(NodeStatus::Cancelled),
    }
}

/// The errors that belong to a node: its own, or its input's for a `video_input`.
pub fn node_errors<'a>(run: &'a RunRecord, node: &str) -> Vec<&'a InputError> {
    run.errors
        .iter()
        .filter(|e| match &e.node_id {
            Some(id) => id == node,
            None => run
                .sources
                .get(e.input_index)
                .is_some_and(|s| s.slot == node),
        })
        .collect()
}

/// A node's status (skipped when no render plan reaches it).
pub fn node_status(statuses: &HashMap<String, NodeStatus>, node: &str) -> NodeStatus {
    statuses.get(node).copied().unwrap_or(NodeStatus::Skipped)
}

/// Ordered from best to worst: a node takes the worst status of its units.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum NodeStatus {
    Skipped,
    Completed,
    Pending,
    InProgress,
    Cancelled,
    Failed,
}

impl NodeStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            NodeStatus::Skipped => "skipped",
            NodeStatus::Completed => "completed",
            NodeStatus::Pending => "pending",
            NodeStatus::InProgress => "in_progress",
            NodeStatus::Cancelled => "cancelled",
            NodeStatus::Failed => "failed",
        }
    }
}

pub fn node_statuses(run: &RunRecord) -> HashMap<String, NodeStatus> {
    let mut statuses: HashMap<String, NodeStatus> = HashMap::new();
    for plan in render_plans(&run.graph) {
        let members = feeding(&run.graph, &plan.render_node);
        for job in run.jobs() {
            let unit = unit_status(run, &job, &plan.render_node);
            for node in &members {
                let s = statuses.entry(node.clone()).or_insert(NodeStatus::Skipped);
                *s = (*s).max(unit);
            }
        }
    }
    statuses
}

fn unit_status(run: &RunRecord, job: &[usize], render: &str) -> NodeStatus {
    let lead = job[0];
    if run
        .outputs
        .iter()
        .any(|o| o.input_index == lead && o.render_node == render)
    {
        return NodeStatus::Completed;
    }
    let failed = run.errors.iter().any(|e| {
        job.contains(&e.input_index) && e.node_id.as_deref().is_none_or(|node| node == render)
    });
    match (failed, run.status) {
        (true, _) => NodeStatus::Failed,
        (false, RunStatus::Queued) => NodeStatus::Pending,
        (false, RunStatus::Running) => NodeStatus::InProgress,
        (false, RunStatus::Cancelled) => NodeStatus::Cancelled,
        (false, _) => NodeStatus::Failed,
    }
}

/// `node` and every node upstream of it.
fn feeding(graph: &AgentGraph, node: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::from([node.to_owned()]);
    let mut stack = vec![node.to_owned()];
    while let Some(current) = stack.pop() {
        for edge in graph.connections.iter().filter(|c| c.target == current) {
            if seen.insert(edge.source.clone()) {
                stack.push(edge.source.clone());
            }
        }
    }
    seen
}
