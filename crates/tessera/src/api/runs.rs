//! Runs: start one on an agent, read its state.

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json as JsonOut, Router};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::auth::Auth;
use super::error::{ApiError, Json};
use super::targets::check_target;
use super::{AppState, iso, parse_path_id};
use crate::domain::graph::{self, render_plans};
use crate::domain::ids::{AgentId, RunId};
use crate::domain::payload::iso8601;
use crate::store::{RunRecord, RunStatus};

/// Most inputs one run may have.
pub const MAX_INPUTS: usize = 50;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/agent/{id}/run", post(start))
        .route("/agent_run/{id}", get(read))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StartRun {
    #[serde(default)]
    video_urls: Vec<String>,
    #[serde(default)]
    callback_url: Option<String>,
    #[serde(default)]
    update_params: Option<Map<String, Value>>,
}

async fn start(
    State(state): State<AppState>,
    auth: Auth,
    Path(agent_id): Path<String>,
    Json(body): Json<StartRun>,
) -> Result<JsonOut<Value>, ApiError> {
    let agent_id: AgentId = parse_path_id(&agent_id, "agent")?;
    let agent = state
        .store
        .agent(auth.user_id, agent_id)
        .await?
        .ok_or_else(|| ApiError::not_found("agent not found"))?;
    let policy = &state.config.address_policy;
    if body.video_urls.is_empty() {
        return Err(ApiError::validation(
            "video_urls must list at least one video URL",
        ));
    }
    if body.video_urls.len() > MAX_INPUTS {
        return Err(ApiError::validation(format!(
            "at most {MAX_INPUTS} video_urls per run"
        )));
    }
    for (i, raw) in body.video_urls.iter().enumerate() {
        check_target(raw, policy, &state.net)
            .await
            .map_err(|e| ApiError::validation(format!("video_urls[{i}]: {e}")))?;
    }
    let callback_url = match body
        .callback_url
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        Some(raw) => {
            let url = check_target(raw, policy, &state.net)
                .await
                .map_err(|e| ApiError::validation(format!("callback_url: {e}")))?;
            Some(url.to_string())
        }
        None => None,
    };
    let inputs = agent
        .graph
        .nodes
        .iter()
        .filter(|n| n.node_type == "video_input")
        .count();
    if inputs != 1 {
        return Err(ApiError::validation(
            "this agent has several video_input nodes; video_urls is only for agents with exactly one",
        ));
    }
    let graph = match &body.update_params {
        Some(update) => graph::apply_update_params(&agent.graph, update)?,
        None => agent.graph.clone(),
    };
    if render_plans(&graph).is_empty() {
        return Err(ApiError::validation(
            "the agent has no path from its video_input to a render node",
        ));
    }
    let now = chrono::Utc::now();
    let run = RunRecord {
        id: RunId::new(),
        agent_id,
        user_id: auth.user_id,
        status: RunStatus::Queued,
        sources: body.video_urls,
        callback_url,
        graph,
        triggered_by: json!({
            "type": "manual",
            "source": "api",
            "user_id": auth.user_id,
            "triggered_at": iso8601(now),
        }),
        inputs: vec![],
        outputs: vec![],
        errors: vec![],
        status_message: None,
        created_at: now.timestamp_millis(),
        started_at: None,
        finished_at: None,
    };
    state.store.create_run(&run).await?;
    state.wake.runs.notify_one();
    Ok(JsonOut(json!({ "run_id": run.id })))
}

async fn read(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<JsonOut<Value>, ApiError> {
    let id: RunId = parse_path_id(&id, "run")?;
    let run = state
        .store
        .run(auth.user_id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("run not found"))?;
    let now = chrono::Utc::now().timestamp();
    let sign = |key: &str| state.objects.signed_url(key, now);
    Ok(JsonOut(json!({
        "run_id": run.id,
        "agent_id": run.agent_id,
        "status": run.status.as_str(),
        "created_at": iso(run.created_at),
        "started_at": run.started_at.map(iso),
        "finished_at": run.finished_at.map(iso),
        "inputs": run.inputs.iter().map(|i| json!({
            "video_url": sign(&i.files.video_key),
            "thumbnail_url": sign(&i.files.thumbnail_key),
        })).collect::<Vec<_>>(),
        "outputs": run.outputs.iter().map(|o| json!({
            "id": o.id,
            "video_url": sign(&o.files.video_key),
            "thumbnail_url": sign(&o.files.thumbnail_key),
            "completed_at": iso8601(o.completed_at),
        })).collect::<Vec<_>>(),
        "triggered_by": run.triggered_by,
        "node_status_counts": node_status_counts(&run),
        "status_message": run.status_message,
        "errors": run.errors,
        "callback_url": run.callback_url,
    })))
}

/// Counts over the run's units of work (one per input × output path): done,
/// still going, failed. Queued runs have everything in progress.
fn node_status_counts(run: &RunRecord) -> Value {
    let paths = render_plans(&run.graph).len();
    let total = run.sources.len() * paths;
    let completed = run.outputs.len();
    let (in_progress, failed) = if run.status.is_final() {
        (0, total.saturating_sub(completed))
    } else {
        let failed_inputs = run.errors.len() * paths;
        (
            total.saturating_sub(completed + failed_inputs),
            failed_inputs,
        )
    };
    json!({ "completed": completed, "in_progress": in_progress, "failed": failed })
}
