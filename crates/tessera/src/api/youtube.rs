//! YouTube channel triggers of an agent: add and remove watched channels.
//! One trigger per distinct duration filter per agent; a channel added
//! under another filter moves to that filter's trigger (keeping what it has
//! seen). Everything is validated and resolved before the single store call.

use axum::Json as JsonOut;
use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Auth;
use super::error::{ApiError, ErrorBody, Json};
use super::targets::check_target;
use super::triggers::owned_agent;
use super::{AppState, iso};
use crate::domain::graph;
use crate::domain::ids::{AgentId, TriggerId};
use crate::net::download_client;
use crate::store::{
    CallbackChange, TriggerKind, TriggerRecord, YoutubeAdd, YoutubeChannelRecord, YoutubeFilter,
};
use crate::triggers::youtube::resolve::{ChannelRef, parse_channel_ref, resolve_page};

/// Most channels one call may name.
const MAX_CHANNELS_PER_CALL: usize = 50;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(add_channels))
        .routes(routes!(remove_channels))
}

/// A YouTube trigger: new uploads of its channels start runs. Its poll times
/// and error summarise its channels: the latest poll, the soonest next poll,
/// the first channel error.
#[derive(Serialize, ToSchema)]
pub struct YoutubeTriggerView {
    #[serde(rename = "type")]
    kind: tessera_webhook::YouTubeType,
    id: TriggerId,
    agent_id: AgentId,
    channels: Vec<ChannelView>,
    /// `null` when every new video starts a run.
    filter_options: Option<FilterOptions>,
    trigger_callback_url: Option<String>,
    created_at: String,
    last_poll_at: Option<String>,
    last_error: Option<String>,
    next_poll_at: Option<String>,
}

/// A watched channel.
#[derive(Serialize, ToSchema)]
struct ChannelView {
    /// `UC…` channel id.
    channel_id: String,
    added_at: String,
    last_poll_at: Option<String>,
    last_error: Option<String>,
}

/// Which new videos start runs.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct FilterOptions {
    /// Inclusive bounds on the video's duration in seconds.
    #[serde(default)]
    duration: Option<YoutubeFilter>,
}

/// A YouTube trigger as `GET /agent/{id}/triggers` shows it.
pub fn youtube_trigger_view(
    t: &TriggerRecord,
    filter: &YoutubeFilter,
    channels: &[YoutubeChannelRecord],
) -> YoutubeTriggerView {
    let mine: Vec<&YoutubeChannelRecord> =
        channels.iter().filter(|c| c.trigger_id == t.id).collect();
    YoutubeTriggerView {
        kind: tessera_webhook::YouTubeType,
        id: t.id,
        agent_id: t.agent_id,
        channels: mine
            .iter()
            .map(|c| ChannelView {
                channel_id: c.channel_id.clone(),
                added_at: iso(c.added_at),
                last_poll_at: c.last_poll_at.map(iso),
                last_error: c.last_error.clone(),
            })
            .collect(),
        filter_options: (!filter.is_empty()).then_some(FilterOptions {
            duration: Some(*filter),
        }),
        trigger_callback_url: t.callback_url.clone(),
        created_at: iso(t.created_at),
        last_poll_at: mine.iter().filter_map(|c| c.last_poll_at).max().map(iso),
        last_error: mine.iter().find_map(|c| c.last_error.clone()),
        next_poll_at: mine.iter().map(|c| c.next_poll_at).min().map(iso),
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct AddChannels {
    /// `UC…` ids, channel URLs, `@handles`, `c/…` or `user/…` names (1–50).
    #[schema(min_items = 1, max_items = 50)]
    youtube_channels: Vec<String>,
    /// Absent = keep, string = replace, `null` = clear.
    #[serde(default, with = "super::double_option")]
    #[schema(value_type = Option<String>)]
    trigger_callback_url: Option<Option<String>>,
    #[serde(default)]
    filter_options: Option<FilterOptions>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct RemoveChannels {
    #[schema(min_items = 1, max_items = 50)]
    youtube_channels: Vec<String>,
}

/// Watch YouTube channels: each new upload starts a run on it.
#[utoipa::path(post, path = "/agent/{id}/triggers/add_youtube_channels", tag = "triggers",
    request_body = AddChannels, params(("id" = String, Path, description = "Agent id")),
    responses((status = 200, body = YoutubeTriggerView), (status = "4XX", body = ErrorBody)))]
async fn add_channels(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    Json(body): Json<AddChannels>,
) -> Result<JsonOut<YoutubeTriggerView>, ApiError> {
    let agent = owned_agent(&state, &auth, &id).await?;
    if graph::single_input(&agent.graph).is_none() {
        return Err(ApiError::validation(
            "YouTube triggers run agents with exactly one video_input node on each new video",
        ));
    }
    let filter = body
        .filter_options
        .and_then(|f| f.duration)
        .unwrap_or_default();
    if let (Some(min), Some(max)) = (filter.min_seconds, filter.max_seconds)
        && min > max
    {
        return Err(ApiError::validation(
            "filter_options.duration: min_seconds is greater than max_seconds",
        ));
    }
    let callback = match body.trigger_callback_url {
        None => CallbackChange::Keep,
        Some(None) => CallbackChange::Set(None),
        Some(Some(raw)) => CallbackChange::Set(Some(
            check_target(raw.trim(), &state.config.address_policy, &state.net)
                .await
                .map_err(|e| ApiError::validation(format!("trigger_callback_url: {e}")))?
                .to_string(),
        )),
    };
    let channels = resolve_all(&state, &body.youtube_channels).await?;
    let trigger_id = state
        .store
        .add_youtube_channels(YoutubeAdd {
            user_id: auth.user_id,
            agent_id: agent.id,
            channels,
            filter,
            callback,
            new_trigger_id: TriggerId::new(),
            now: chrono::Utc::now().timestamp_millis(),
        })
        .await?;
    let trigger = state
        .store
        .trigger(auth.user_id, trigger_id)
        .await?
        .ok_or_else(|| ApiError::not_found("trigger not found"))?;
    let channels = state.store.youtube_channels(auth.user_id, agent.id).await?;
    Ok(JsonOut(youtube_trigger_view(&trigger, &filter, &channels)))
}

#[derive(Serialize, ToSchema)]
struct ChannelsRemoved {
    /// The channel ids that stopped being watched.
    removed: Vec<String>,
    /// The agent's YouTube triggers that still watch channels.
    triggers: Vec<YoutubeTriggerView>,
}

/// Stop watching YouTube channels.
#[utoipa::path(post, path = "/agent/{id}/triggers/remove_youtube_channels", tag = "triggers",
    request_body = RemoveChannels, params(("id" = String, Path, description = "Agent id")),
    responses((status = 200, body = ChannelsRemoved), (status = "4XX", body = ErrorBody)))]
async fn remove_channels(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    Json(body): Json<RemoveChannels>,
) -> Result<JsonOut<ChannelsRemoved>, ApiError> {
    let agent = owned_agent(&state, &auth, &id).await?;
    let channels = resolve_all(&state, &body.youtube_channels).await?;
    let now = chrono::Utc::now().timestamp_millis();
    let removed = state
        .store
        .remove_youtube_channels(auth.user_id, agent.id, channels, now)
        .await?;
    let triggers = state.store.agent_triggers(auth.user_id, agent.id).await?;
    let channels = state.store.youtube_channels(auth.user_id, agent.id).await?;
    let remaining = triggers
        .iter()
        .filter_map(|t| match &t.kind {
            TriggerKind::Youtube { filter } => Some(youtube_trigger_view(t, filter, &channels)),
            _ => None,
        })
        .collect();
    Ok(JsonOut(ChannelsRemoved {
        removed,
        triggers: remaining,
    }))
}

/// Every entry as a `UC…` id, without duplicates, in the order given.
async fn resolve_all(state: &AppState, raw: &[String]) -> Result<Vec<String>, ApiError> {
    if raw.is_empty() || raw.len() > MAX_CHANNELS_PER_CALL {
        return Err(ApiError::validation(format!(
            "youtube_channels: give 1 to {MAX_CHANNELS_PER_CALL} channels"
        )));
    }
    let mut client = None;
    let mut ids: Vec<String> = Vec::with_capacity(raw.len());
    for (i, entry) in raw.iter().enumerate() {
        let invalid = |e: String| ApiError::validation(format!("youtube_channels[{i}]: {e}"));
        let id = match parse_channel_ref(entry).map_err(invalid)? {
            ChannelRef::Id(id) => id,
            ChannelRef::Page(path) => {
                let client = client.get_or_insert_with(|| download_client(&state.net));
                resolve_page(
                    client,
                    &state.config.address_policy,
                    &state.config.data_dir.join("tmp"),
                    &state.config.youtube_channel_url,
                    &path,
                )
                .await
                .map_err(invalid)?
            }
        };
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    Ok(ids)
}
