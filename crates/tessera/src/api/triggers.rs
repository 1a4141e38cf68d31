//! Triggers of an agent: the list of all of them, and schedules (cron in an
//! IANA time zone). YouTube channel triggers are added in `api/youtube.rs`.

use axum::Json as JsonOut;
use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Auth;
use super::error::{ApiError, ErrorBody, Json};
use super::runs::check_upload;
use super::targets::check_target;
use super::youtube::YoutubeTriggerView;
use super::{AppState, iso, parse_path_id};
use crate::domain::cron::{DEFAULT_TIME_ZONE, Schedule};
use crate::domain::graph;
use crate::domain::ids::{AgentId, TriggerId, VideoId};
use crate::store::{
    AgentRecord, ScheduleSpec, StoreError, TriggerKind, TriggerRecord, YoutubeChannelRecord,
};

/// Most video URLs a schedule may feed each run.
const MAX_SCHEDULE_INPUTS: usize = 50;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_triggers))
        .routes(routes!(add_schedule))
        .routes(routes!(remove_schedule))
}

pub(super) async fn owned_agent(
    state: &AppState,
    auth: &Auth,
    raw: &str,
) -> Result<AgentRecord, ApiError> {
    let id: AgentId = parse_path_id(raw, "agent")?;
    state
        .store
        .agent(auth.user_id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("agent not found"))
}

/// Every trigger of an agent: schedules and YouTube channel watches.
#[utoipa::path(get, path = "/agent/{id}/triggers", tag = "triggers",
    params(("id" = String, Path, description = "Agent id")),
    responses((status = 200, body = Vec<TriggerView>), (status = "4XX", body = ErrorBody)))]
async fn list_triggers(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<JsonOut<Vec<TriggerView>>, ApiError> {
    let agent = owned_agent(&state, &auth, &id).await?;
    let triggers = state.store.agent_triggers(auth.user_id, agent.id).await?;
    let channels = state.store.youtube_channels(auth.user_id, agent.id).await?;
    Ok(JsonOut(
        triggers
            .iter()
            .map(|t| trigger_view(t, &channels))
            .collect(),
    ))
}

/// A trigger, told apart by `type`.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum TriggerView {
    Schedule(ScheduleTriggerView),
    Youtube(YoutubeTriggerView),
}

/// A cron schedule that starts a run on its `video_urls` at every slot.
#[derive(Serialize, ToSchema)]
pub struct ScheduleTriggerView {
    #[serde(rename = "type")]
    kind: tessera_webhook::ScheduleType,
    id: TriggerId,
    /// The same as `id` (the name `add_schedule` answers with).
    schedule_id: TriggerId,
    agent_id: AgentId,
    cron_expression: String,
    /// IANA time zone the expression is read in.
    timezone: String,
    video_urls: Vec<String>,
    /// Finalized uploads each run works on, after `video_urls`.
    video_ids: Vec<VideoId>,
    #[schema(value_type = Option<Object>)]
    update_params: Option<Map<String, Value>>,
    trigger_callback_url: Option<String>,
    created_at: String,
    next_run_at: Option<String>,
    last_run_at: Option<String>,
    last_error: Option<String>,
}

/// A trigger as the API shows it; `channels` are the agent's watched
/// YouTube channels (a YouTube trigger shows its own).
pub fn trigger_view(t: &TriggerRecord, channels: &[YoutubeChannelRecord]) -> TriggerView {
    match &t.kind {
        TriggerKind::Youtube { filter } => {
            TriggerView::Youtube(super::youtube::youtube_trigger_view(t, filter, channels))
        }
        TriggerKind::Schedule(spec) => TriggerView::Schedule(ScheduleTriggerView {
            kind: tessera_webhook::ScheduleType,
            id: t.id,
            schedule_id: t.id,
            agent_id: t.agent_id,
            cron_expression: spec.cron_expression.clone(),
            timezone: spec.timezone.clone(),
            video_urls: spec.video_urls.clone(),
            video_ids: spec.video_ids.clone(),
            update_params: spec.update_params.clone(),
            trigger_callback_url: t.callback_url.clone(),
            created_at: iso(t.created_at),
            next_run_at: t.next_run_at.map(iso),
            last_run_at: t.last_fired_at.map(iso),
            last_error: t.last_error.clone(),
        }),
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct AddSchedule {
    /// Five fields (minute hour day-of-month month day-of-week), or six with seconds first.
    cron_expression: String,
    /// IANA time zone (default UTC).
    #[serde(default)]
    timezone: Option<String>,
    /// Video URLs each scheduled run works on (with `video_ids`, 1–50 videos).
    #[serde(default)]
    #[schema(max_items = 50)]
    video_urls: Vec<String>,
    /// Finalized uploads each scheduled run works on.
    #[serde(default)]
    #[schema(max_items = 50)]
    video_ids: Vec<String>,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    update_params: Option<Map<String, Value>>,
    #[serde(default)]
    trigger_callback_url: Option<String>,
}

#[derive(Serialize, ToSchema)]
struct ScheduleAdded {
    schedule_id: TriggerId,
    next_run_at: Option<String>,
}

/// Run the agent on a cron schedule.
#[utoipa::path(post, path = "/agent/{id}/triggers/add_schedule", tag = "triggers",
    request_body = AddSchedule, params(("id" = String, Path, description = "Agent id")),
    responses((status = 200, body = ScheduleAdded), (status = "4XX", body = ErrorBody)))]
async fn add_schedule(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    Json(body): Json<AddSchedule>,
) -> Result<JsonOut<ScheduleAdded>, ApiError> {
    let agent = owned_agent(&state, &auth, &id).await?;
    let timezone = body
        .timezone
        .unwrap_or_else(|| DEFAULT_TIME_ZONE.to_owned());
    let schedule = Schedule::parse(&body.cron_expression, &timezone)
        .map_err(|e| ApiError::validation(format!("cron_expression: {e}")))?;
    if graph::single_input(&agent.graph).is_none() {
        return Err(ApiError::validation(
            "schedules run agents with exactly one video_input node on their videos",
        ));
    }
    let count = body.video_urls.len() + body.video_ids.len();
    if count == 0 || count > MAX_SCHEDULE_INPUTS {
        return Err(ApiError::validation(format!(
            "video_urls, video_ids: give 1 to {MAX_SCHEDULE_INPUTS} videos for each scheduled run"
        )));
    }
    let policy = &state.config.address_policy;
    for (i, url) in body.video_urls.iter().enumerate() {
        check_target(url, policy, &state.net)
            .await
            .map_err(|e| ApiError::validation(format!("video_urls[{i}]: {e}")))?;
    }
    let mut video_ids = Vec::with_capacity(body.video_ids.len());
    for (i, raw) in body.video_ids.iter().enumerate() {
        let at = format!("video_ids[{i}]");
        let id: VideoId = raw
            .trim()
            .parse()
            .map_err(|_| ApiError::validation(format!("{at}: a video_id is a UUID")))?;
        check_upload(&state, auth.user_id, &at, id).await?;
        video_ids.push(id);
    }
    if let Some(update) = &body.update_params {
        graph::apply_update_params(&agent.graph, update)?;
    }
    let callback_url = match body.trigger_callback_url.as_deref() {
        Some(raw) => Some(
            check_target(raw.trim(), policy, &state.net)
                .await
                .map_err(|e| ApiError::validation(format!("trigger_callback_url: {e}")))?
                .to_string(),
        ),
        None => None,
    };
    let now = chrono::Utc::now();
    let next = schedule.next_after(now).map(|t| t.timestamp_millis());
    let trigger = TriggerRecord {
        id: TriggerId::new(),
        user_id: auth.user_id,
        agent_id: agent.id,
        kind: TriggerKind::Schedule(ScheduleSpec {
            cron_expression: schedule.expression().to_owned(),
            timezone: schedule.time_zone().to_owned(),
            video_urls: body.video_urls,
            video_ids,
            update_params: body.update_params,
        }),
        callback_url,
        created_at: now.timestamp_millis(),
        next_run_at: next,
        last_fired_at: None,
        last_poll_at: None,
        last_error: None,
    };
    state.store.create_trigger(&trigger).await?;
    Ok(JsonOut(ScheduleAdded {
        schedule_id: trigger.id,
        next_run_at: next.map(iso),
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct RemoveSchedule {
    schedule_id: String,
}

#[derive(Serialize, ToSchema)]
struct ScheduleRemoved {
    schedule_id: TriggerId,
    removed: bool,
}

/// Stop a schedule (the runs it started stay listed under `/trigger/{id}/runs`).
#[utoipa::path(post, path = "/agent/{id}/triggers/remove_schedule", tag = "triggers",
    request_body = RemoveSchedule, params(("id" = String, Path, description = "Agent id")),
    responses((status = 200, body = ScheduleRemoved), (status = "4XX", body = ErrorBody)))]
async fn remove_schedule(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    Json(body): Json<RemoveSchedule>,
) -> Result<JsonOut<ScheduleRemoved>, ApiError> {
    let agent = owned_agent(&state, &auth, &id).await?;
    let trigger_id: TriggerId = parse_path_id(&body.schedule_id, "schedule")?;
    let belongs = state
        .store
        .trigger(auth.user_id, trigger_id)
        .await?
        .is_some_and(|t| t.agent_id == agent.id && matches!(t.kind, TriggerKind::Schedule(_)));
    if !belongs {
        return Err(ApiError::not_found("schedule not found on this agent"));
    }
    let now = chrono::Utc::now().timestamp_millis();
    state
        .store
        .delete_trigger(auth.user_id, trigger_id, now)
        .await
        .map_err(|e| match e {
            StoreError::NotFound => ApiError::not_found("schedule not found on this agent"),
            other => other.into(),
        })?;
    Ok(JsonOut(ScheduleRemoved {
        schedule_id: trigger_id,
        removed: true,
    }))
}
