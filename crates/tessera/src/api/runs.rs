//! Runs: start one on an agent, read it, list them.

use std::collections::HashSet;

use axum::Json as JsonOut;
use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Auth;
use super::error::{ApiError, ErrorBody, Json, Query};
use super::run_nodes::NodeStatusCounts;
use super::targets::check_target;
use super::{AppState, iso, page_limit, parse_path_id};
use crate::domain::graph::{self, AgentGraph, render_plans};
use crate::domain::ids::{AgentId, RenderId, RunId, TriggerId, UserId, VideoId};
use crate::domain::payload::{InputError, ManualSource, ManualTriggerInfo, TriggerInfo, iso8601};
use crate::store::{RunFilter, RunRecord, RunStatus, SourceKind, SourceSpec, UploadStatus};

/// Most inputs one run may have.
pub const MAX_INPUTS: usize = 50;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(start))
        .routes(routes!(get_run))
        .routes(routes!(list_all))
        .routes(routes!(list_for_agent))
        .routes(routes!(list_for_trigger))
}

/// What starts a run (the body of `POST /agent/{id}/run`).
#[derive(Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartRun {
    /// Shorthand for a single-input agent: each URL is a separate input.
    #[serde(default)]
    video_urls: Vec<String>,
    /// Shorthand for a single-input agent: outputs of earlier runs as inputs.
    #[serde(default)]
    node_render_ids: Vec<String>,
    /// Shorthand for a single-input agent: finalized uploads (`video_id` of
    /// the uploads flow) as inputs.
    #[serde(default)]
    video_ids: Vec<String>,
    /// One source per `video_input` node (multi-input agents).
    #[serde(default)]
    video_inputs: Vec<VideoInputSlot>,
    /// Where `RUN_STARTED` and `RUN_FINISHED` go; absent or `null`: no webhooks.
    #[serde(default)]
    callback_url: Option<String>,
    /// Per-run parameter overrides: `{agent_node_id: {param: value}}`.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    update_params: Option<Map<String, Value>>,
    /// Nodes to bypass in this run.
    #[serde(default)]
    ignore_nodes: Vec<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct VideoInputSlot {
    agent_node_id: String,
    #[serde(default)]
    video_urls: Vec<String>,
    #[serde(default)]
    node_render_ids: Vec<String>,
    #[serde(default)]
    video_ids: Vec<String>,
    #[serde(default)]
    input_clip_start_ms: Option<i64>,
    #[serde(default)]
    input_clip_end_ms: Option<i64>,
}

impl StartRun {
    /// A run of a single-input agent on each of these URLs and uploads.
    pub fn on_videos(
        video_urls: Vec<String>,
        video_ids: Vec<String>,
        callback_url: Option<String>,
    ) -> Self {
        StartRun {
            video_urls,
            video_ids,
            callback_url,
            ..Default::default()
        }
    }
}

#[derive(Serialize, ToSchema)]
struct RunStarted {
    run_id: RunId,
}

/// Start a run of an agent on videos; progress arrives as webhooks at `callback_url`.
#[utoipa::path(post, path = "/agent/{id}/run", tag = "runs", request_body = StartRun,
    params(("id" = String, Path, description = "Agent id")),
    responses((status = 200, body = RunStarted), (status = "4XX", body = ErrorBody)))]
async fn start(
    State(state): State<AppState>,
    auth: Auth,
    Path(agent_id): Path<String>,
    Json(body): Json<StartRun>,
) -> Result<JsonOut<RunStarted>, ApiError> {
    let agent_id: AgentId = parse_path_id(&agent_id, "agent")?;
    let run_id = start_run(&state, auth.user_id, agent_id, body, ManualSource::Api).await?;
    Ok(JsonOut(RunStarted { run_id }))
}

/// Validate a start request and queue the run. `source` says where the
/// request came from (`api`, `ui`) in `triggered_by`.
pub async fn start_run(
    state: &AppState,
    user: UserId,
    agent_id: AgentId,
    body: StartRun,
    source: ManualSource,
) -> Result<RunId, ApiError> {
    let agent = state
        .store
        .agent(user, agent_id)
        .await?
        .ok_or_else(|| ApiError::not_found("agent not found"))?;
    let slots = graph::input_nodes(&agent.graph);
    let (sources, multi_input) = parse_sources(&body, &slots)?;
    for (i, source) in sources.iter().enumerate() {
        check_source(state, user, i, source).await?;
    }
    // Absent or null: no webhooks. A string must be a usable URL.
    let callback_url = match body.callback_url.as_deref() {
        Some(raw) => Some(
            check_target(raw.trim(), &state.config.address_policy, &state.net)
                .await
                .map_err(|e| ApiError::validation(format!("callback_url: {e}")))?
                .to_string(),
        ),
        None => None,
    };
    let graph = run_graph(
        &agent.graph,
        body.update_params.as_ref(),
        &body.ignore_nodes,
    )?;
    let now = chrono::Utc::now();
    let triggered_by = TriggerInfo::Manual(ManualTriggerInfo {
        kind: Default::default(),
        source,
        user_id: user.to_string(),
        triggered_at: iso8601(now),
    });
    let run = RunRecord::queued(
        &agent,
        sources,
        multi_input,
        callback_url,
        graph,
        triggered_by,
        None,
        now.timestamp_millis(),
    );
    state.store.create_run(&run).await?;
    state.wake.runs.notify_one();
    Ok(run.id)
}

/// Turn the request's inputs into sources. `video_urls`/`node_render_ids`
/// are shorthand for single-input agents (each a separate input);
/// `video_inputs` names every slot once with exactly one source.
fn parse_sources(body: &StartRun, slots: &[String]) -> Result<(Vec<SourceSpec>, bool), ApiError> {
    let shorthand = !body.video_urls.is_empty()
        || !body.node_render_ids.is_empty()
        || !body.video_ids.is_empty();
    let sources = match (shorthand, body.video_inputs.is_empty()) {
        (true, false) => {
            return Err(ApiError::validation(
                "give either video_urls/node_render_ids/video_ids or video_inputs, not both",
            ));
        }
        (false, true) => {
            return Err(ApiError::validation(
                "the run needs inputs: video_urls, node_render_ids, video_ids or video_inputs",
            ));
        }
        (true, true) => {
            let [slot] = slots else {
                return Err(ApiError::validation(format!(
                    "this agent has {} video_input nodes; give one source per node in video_inputs",
                    slots.len()
                )));
            };
            let urls = body
                .video_urls
                .iter()
                .map(|u| SourceKind::Url { url: u.clone() });
            let renders = body
                .node_render_ids
                .iter()
                .enumerate()
                .map(|(i, r)| parse_render_id(r, &format!("node_render_ids[{i}]")))
                .collect::<Result<Vec<_>, _>>()?;
            let uploads = body
                .video_ids
                .iter()
                .enumerate()
                .map(|(i, v)| parse_video_id(v, &format!("video_ids[{i}]")))
                .collect::<Result<Vec<_>, _>>()?;
            urls.chain(renders)
                .chain(uploads)
                .map(|kind| SourceSpec {
                    slot: slot.clone(),
                    kind,
                    clip_start_ms: None,
                    clip_end_ms: None,
                })
                .collect()
        }
        (false, false) => parse_slots(&body.video_inputs, slots)?,
    };
    if sources.len() > MAX_INPUTS {
        return Err(ApiError::validation(format!(
            "at most {MAX_INPUTS} inputs per run"
        )));
    }
    let multi_input = slots.len() > 1;
    Ok((sources, multi_input))
}

fn parse_slots(entries: &[VideoInputSlot], slots: &[String]) -> Result<Vec<SourceSpec>, ApiError> {
    let mut seen = HashSet::new();
    let mut sources = Vec::with_capacity(entries.len());
    for (i, e) in entries.iter().enumerate() {
        let at = format!("video_inputs[{i}]");
        if !slots.contains(&e.agent_node_id) {
            return Err(ApiError::validation(format!(
                "{at}: {:?} is not a video_input node of this agent",
                e.agent_node_id
            )));
        }
        if !seen.insert(e.agent_node_id.clone()) {
            return Err(ApiError::validation(format!(
                "{at}: {:?} is given twice",
                e.agent_node_id
            )));
        }
        let kind = match (
            e.video_urls.as_slice(),
            e.node_render_ids.as_slice(),
            e.video_ids.as_slice(),
        ) {
            ([url], [], []) => SourceKind::Url { url: url.clone() },
            ([], [render], []) => parse_render_id(render, &format!("{at}.node_render_ids[0]"))?,
            ([], [], [video]) => parse_video_id(video, &format!("{at}.video_ids[0]"))?,
            _ => {
                return Err(ApiError::validation(format!(
                    "{at}: give exactly one source (one video_url, node_render_id or video_id)"
                )));
            }
        };
        let (start, end) = (e.input_clip_start_ms, e.input_clip_end_ms);
        if start.is_some_and(|s| s < 0) || end.is_some_and(|e| e <= 0) {
            return Err(ApiError::out_of_range(format!(
                "{at}: clip times must be positive"
            )));
        }
        if let (Some(s), Some(e)) = (start, end)
            && e <= s
        {
            return Err(ApiError::out_of_range(format!(
                "{at}: input_clip_end_ms must be greater than input_clip_start_ms"
            )));
        }
        sources.push(SourceSpec {
            slot: e.agent_node_id.clone(),
            kind,
            clip_start_ms: start.map(|s| s as u64),
            clip_end_ms: end.map(|e| e as u64),
        });
    }
    if let Some(missing) = slots.iter().find(|s| !seen.contains(*s)) {
        return Err(ApiError::validation(format!(
            "video_inputs: no source for the video_input node {missing:?}"
        )));
    }
    Ok(sources)
}

fn parse_render_id(raw: &str, at: &str) -> Result<SourceKind, ApiError> {
    raw.parse::<RenderId>()
        .map(|render_id| SourceKind::Render { render_id })
        .map_err(|_| ApiError::validation(format!("{at}: a node_render_id is a UUID")))
}

fn parse_video_id(raw: &str, at: &str) -> Result<SourceKind, ApiError> {
    raw.trim()
        .parse::<VideoId>()
        .map(|video_id| SourceKind::Upload { video_id })
        .map_err(|_| ApiError::validation(format!("{at}: a video_id is a UUID")))
}

/// URLs are checked against the address policy; render ids and uploads must
/// be the caller's, and uploads finalized.
async fn check_source(
    state: &AppState,
    user: UserId,
    i: usize,
    source: &SourceSpec,
) -> Result<(), ApiError> {
    match &source.kind {
        SourceKind::Url { url } => check_target(url, &state.config.address_policy, &state.net)
            .await
            .map(|_| ())
            .map_err(|e| ApiError::validation(format!("input {i}: {e}"))),
        SourceKind::Render { render_id } => {
            match state.store.render_files(user, *render_id).await? {
                Some(_) => Ok(()),
                None => Err(ApiError::not_found(format!(
                    "input {i}: render {render_id} not found"
                ))),
            }
        }
        SourceKind::Upload { video_id } => {
            check_upload(state, user, &format!("input {i}"), *video_id).await
        }
    }
}

/// A `video_id` must name a finalized upload of the caller: 400 when it is
/// not finalized, 404 when it is unknown or another user's.
pub async fn check_upload(
    state: &AppState,
    user: UserId,
    at: &str,
    video_id: VideoId,
) -> Result<(), ApiError> {
    match state.store.upload(video_id).await? {
        Some(upload) if upload.user_id == user => {
            if upload.status == UploadStatus::Finalized {
                Ok(())
            } else {
                Err(ApiError::validation(format!(
                    "{at}: video {video_id} is not finalized (call finalize_upload first)"
                )))
            }
        }
        _ => Err(ApiError::not_found(format!(
            "{at}: video {video_id} not found"
        ))),
    }
}

/// The agent's graph with this run's overrides applied.
fn run_graph(
    agent: &AgentGraph,
    update: Option<&Map<String, Value>>,
    ignore: &[String],
) -> Result<AgentGraph, ApiError> {
    let mut graph = match update {
        Some(update) => graph::apply_update_params(agent, update)?,
        None => agent.clone(),
    };
    if !ignore.is_empty() {
        graph = graph::apply_ignore_nodes(&graph, ignore)?;
    }
    if render_plans(&graph).is_empty() {
        return Err(ApiError::validation(
            "the agent has no path from a video_input to a render node",
        ));
    }
    Ok(graph)
}

/// A run with signed URLs of its inputs and outputs, its trigger and its errors.
#[utoipa::path(get, path = "/agent_run/{id}", tag = "runs",
    params(("id" = String, Path, description = "Run id")),
    responses((status = 200, body = RunView), (status = "4XX", body = ErrorBody)))]
async fn get_run(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<JsonOut<RunView>, ApiError> {
    let run = owned_run(&state, auth.user_id, &id).await?;
    let view = state
        .objects
        .with_urls(chrono::Utc::now().timestamp(), |sign| run_view(&run, sign))
        .await
        .map_err(|e| ApiError::logged("cannot sign object URLs", e))?;
    Ok(JsonOut(view))
}

/// The caller's run named by a path segment, or 404.
pub async fn owned_run(
    state: &AppState,
    user: UserId,
    raw_id: &str,
) -> Result<RunRecord, ApiError> {
    let id: RunId = parse_path_id(raw_id, "run")?;
    state
        .store
        .run(user, id)
        .await?
        .ok_or_else(|| ApiError::not_found("run not found"))
}

/// A run as `GET /agent_run/{id}` returns it.
#[derive(Serialize, ToSchema)]
pub struct RunView {
    run_id: RunId,
    agent_id: AgentId,
    status: RunStatus,
    /// 1 for the first attempt; each resume adds one.
    attempt: u32,
    created_at: String,
    started_at: Option<String>,
    finished_at: Option<String>,
    /// Ingested inputs (signed URLs valid for an hour).
    inputs: Vec<SignedFiles>,
    outputs: Vec<RunOutput>,
    triggered_by: TriggerInfo,
    node_status_counts: NodeStatusCounts,
    status_message: Option<String>,
    errors: Vec<InputError>,
    callback_url: Option<String>,
}

/// A video and its thumbnail, as signed URLs.
#[derive(Serialize, ToSchema)]
pub struct SignedFiles {
    video_url: String,
    thumbnail_url: String,
}

/// One rendered output; its `id` is a `node_render_id` usable as a later run's input.
#[derive(Serialize, ToSchema)]
pub struct RunOutput {
    id: RenderId,
    video_url: String,
    thumbnail_url: String,
    completed_at: String,
}

/// The run as `GET /agent_run/{id}` returns it.
/// `sign` turns an object key into a URL ([`crate::objects::Objects::with_urls`]).
pub fn run_view(run: &RunRecord, sign: &dyn Fn(&str) -> String) -> RunView {
    RunView {
        run_id: run.id,
        agent_id: run.agent_id,
        status: run.status,
        attempt: run.attempt,
        created_at: iso(run.created_at),
        started_at: run.started_at.map(iso),
        finished_at: run.finished_at.map(iso),
        inputs: run
            .inputs
            .iter()
            .map(|i| SignedFiles {
                video_url: sign(&i.files.video_key),
                thumbnail_url: sign(&i.files.thumbnail_key),
            })
            .collect(),
        outputs: run
            .outputs
            .iter()
            .map(|o| RunOutput {
                id: o.id,
                video_url: sign(&o.files.video_key),
                thumbnail_url: sign(&o.files.thumbnail_key),
                completed_at: iso8601(o.completed_at),
            })
            .collect(),
        triggered_by: run.triggered_by.clone(),
        node_status_counts: super::run_nodes::status_counts(run),
        status_message: run.status_message.clone(),
        errors: run.errors.clone(),
        callback_url: run.callback_url.clone(),
    }
}

/// A run in a list: no signed URLs, just what a list needs.
#[derive(Serialize, ToSchema)]
pub struct RunSummary {
    run_id: RunId,
    agent_id: AgentId,
    status: RunStatus,
    attempt: u32,
    created_at: String,
    started_at: Option<String>,
    finished_at: Option<String>,
    /// How many inputs the run was given.
    inputs: usize,
    /// How many outputs it has rendered so far.
    outputs: usize,
    triggered_by: TriggerInfo,
    status_message: Option<String>,
}

fn run_summary(run: &RunRecord) -> RunSummary {
    RunSummary {
        run_id: run.id,
        agent_id: run.agent_id,
        status: run.status,
        attempt: run.attempt,
        created_at: iso(run.created_at),
        started_at: run.started_at.map(iso),
        finished_at: run.finished_at.map(iso),
        inputs: run.sources.len(),
        outputs: run.outputs.len(),
        triggered_by: run.triggered_by.clone(),
        status_message: run.status_message.clone(),
    }
}

/// A page of runs, newest first.
#[derive(Serialize, ToSchema)]
pub struct RunPage {
    runs: Vec<RunSummary>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    next_cursor: Option<RunId>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// 1–100 (default 25).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<u32>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
    /// Comma-separated statuses: queued, running, completed, partial_complete, failed, cancelled.
    status: Option<String>,
    /// Runs created at or after this ISO 8601 time.
    from: Option<String>,
    /// Runs created before this ISO 8601 time.
    to: Option<String>,
}

/// The caller's runs, newest first, with filters.
#[utoipa::path(get, path = "/agent_runs", tag = "runs", params(ListQuery),
    responses((status = 200, body = RunPage), (status = "4XX", body = ErrorBody)))]
async fn list_all(
    State(state): State<AppState>,
    auth: Auth,
    Query(q): Query<ListQuery>,
) -> Result<JsonOut<RunPage>, ApiError> {
    list_runs(&state, &auth, q, None, None).await
}

/// The runs of one agent (also after the agent was deleted).
#[utoipa::path(get, path = "/agent/{id}/runs", tag = "runs",
    params(("id" = String, Path, description = "Agent id"), ListQuery),
    responses((status = 200, body = RunPage), (status = "4XX", body = ErrorBody)))]
async fn list_for_agent(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    Query(q): Query<ListQuery>,
) -> Result<JsonOut<RunPage>, ApiError> {
    let id: AgentId = parse_path_id(&id, "agent")?;
    let listed = list_runs(&state, &auth, q, Some(id), None).await?;
    // Runs of a deleted agent stay listable; an agent that never existed is 404.
    let empty = listed.0.runs.is_empty();
    if empty && state.store.agent(auth.user_id, id).await?.is_none() {
        return Err(ApiError::not_found("agent not found"));
    }
    Ok(listed)
}

/// The runs a trigger started (also after the trigger was removed).
#[utoipa::path(get, path = "/trigger/{id}/runs", tag = "triggers",
    params(("id" = String, Path, description = "Trigger id"), ListQuery),
    responses((status = 200, body = RunPage), (status = "4XX", body = ErrorBody)))]
async fn list_for_trigger(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    Query(q): Query<ListQuery>,
) -> Result<JsonOut<RunPage>, ApiError> {
    let id: TriggerId = parse_path_id(&id, "trigger")?;
    let listed = list_runs(&state, &auth, q, None, Some(id)).await?;
    // A removed trigger's runs stay listable; a trigger that never existed is 404.
    let empty = listed.0.runs.is_empty();
    if empty && state.store.trigger(auth.user_id, id).await?.is_none() {
        return Err(ApiError::not_found("trigger not found"));
    }
    Ok(listed)
}

async fn list_runs(
    state: &AppState,
    auth: &Auth,
    q: ListQuery,
    agent_id: Option<AgentId>,
    trigger_id: Option<TriggerId>,
) -> Result<JsonOut<RunPage>, ApiError> {
    let limit = page_limit(q.limit)?;
    let statuses = match q.status.as_deref().filter(|s| !s.is_empty()) {
        None => vec![],
        Some(list) => list
            .split(',')
            .map(|s| {
                RunStatus::parse(s.trim()).ok_or_else(|| {
                    ApiError::validation(format!(
                        "unknown status {s:?}; use queued, running, completed, partial_complete, failed, cancelled"
                    ))
                })
            })
            .collect::<Result<_, _>>()?,
    };
    let time = |raw: Option<String>, name: &str| {
        raw.map(|t| {
            chrono::DateTime::parse_from_rfc3339(&t)
                .map(|t| t.timestamp_millis())
                .map_err(|_| {
                    ApiError::validation(format!(
                        "{name} must be an ISO 8601 time like 2026-12-03T10:00:00Z"
                    ))
                })
        })
        .transpose()
    };
    let filter = RunFilter {
        agent_id,
        trigger_id,
        statuses,
        from: time(q.from, "from")?,
        to: time(q.to, "to")?,
        before: q
            .cursor
            .map(|c| {
                c.parse::<RunId>()
                    .map_err(|_| ApiError::validation("cursor is not valid"))
            })
            .transpose()?,
        limit: limit + 1,
    };
    let runs = state.store.list_runs(auth.user_id, &filter).await?;
    let more = runs.len() > limit as usize;
    let page = &runs[..runs.len().min(limit as usize)];
    Ok(JsonOut(RunPage {
        runs: page.iter().map(run_summary).collect(),
        next_cursor: more.then(|| page.last().map(|r| r.id)).flatten(),
    }))
}
