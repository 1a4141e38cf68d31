//! YouTube channel triggers of an agent: add and remove watched channels.
//! One trigger per distinct duration filter per agent; a channel added
//! under another filter moves to that filter's trigger (keeping what it has
//! seen). Everything is validated and resolved before the single store call.

use axum::extract::{Path, State};
use axum::routing::post;
use axum::{Json as JsonOut, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::Auth;
use super::error::{ApiError, Json};
use super::targets::check_target;
use super::triggers::owned_agent;
use super::{AppState, iso};
use crate::domain::graph;
use crate::domain::ids::TriggerId;
use crate::net::download_client;
use crate::store::{
    CallbackChange, TriggerKind, TriggerRecord, YoutubeAdd, YoutubeChannelRecord, YoutubeFilter,
};
use crate::triggers::youtube::resolve::{ChannelRef, parse_channel_ref, resolve_page};

/// Most channels one call may name.
const MAX_CHANNELS_PER_CALL: usize = 50;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/agent/{id}/triggers/add_youtube_channels",
            post(add_channels),
        )
        .route(
            "/agent/{id}/triggers/remove_youtube_channels",
            post(remove_channels),
        )
}

/// A YouTube trigger as `GET /agent/{id}/triggers` shows it. Its poll
/// times and error summarise its channels: the latest poll, the soonest
/// next poll, the first channel error.
pub fn youtube_trigger_json(
    t: &TriggerRecord,
    filter: &YoutubeFilter,
    channels: &[YoutubeChannelRecord],
) -> Value {
    let mine: Vec<&YoutubeChannelRecord> =
        channels.iter().filter(|c| c.trigger_id == t.id).collect();
    let filter_options = (!filter.is_empty()).then(|| {
        json!({"duration": {"min_seconds": filter.min_seconds, "max_seconds": filter.max_seconds}})
    });
    json!({
        "id": t.id,
        "type": "youtube",
        "agent_id": t.agent_id,
        "channels": mine.iter().map(|c| json!({
            "channel_id": c.channel_id,
            "added_at": iso(c.added_at),
            "last_poll_at": c.last_poll_at.map(iso),
            "last_error": c.last_error,
        })).collect::<Vec<_>>(),
        "filter_options": filter_options,
        "trigger_callback_url": t.callback_url,
        "created_at": iso(t.created_at),
        "last_poll_at": mine.iter().filter_map(|c| c.last_poll_at).max().map(iso),
        "last_error": mine.iter().find_map(|c| c.last_error.clone()),
        "next_poll_at": mine.iter().map(|c| c.next_poll_at).min().map(iso),
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AddChannels {
    youtube_channels: Vec<String>,
    /// Absent = keep, string = replace, `null` = clear.
    #[serde(default, with = "super::double_option")]
    trigger_callback_url: Option<Option<String>>,
    #[serde(default)]
    filter_options: Option<FilterOptions>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FilterOptions {
    #[serde(default)]
    duration: Option<YoutubeFilter>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RemoveChannels {
    youtube_channels: Vec<String>,
}

async fn add_channels(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    Json(body): Json<AddChannels>,
) -> Result<JsonOut<Value>, ApiError> {
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
    Ok(JsonOut(youtube_trigger_json(&trigger, &filter, &channels)))
}

async fn remove_channels(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    Json(body): Json<RemoveChannels>,
) -> Result<JsonOut<Value>, ApiError> {
    let agent = owned_agent(&state, &auth, &id).await?;
    let channels = resolve_all(&state, &body.youtube_channels).await?;
    let now = chrono::Utc::now().timestamp_millis();
    let removed = state
        .store
        .remove_youtube_channels(auth.user_id, agent.id, channels, now)
        .await?;
    let triggers = state.store.agent_triggers(auth.user_id, agent.id).await?;
    let channels = state.store.youtube_channels(auth.user_id, agent.id).await?;
    let remaining: Vec<Value> = triggers
        .iter()
        .filter_map(|t| match &t.kind {
            TriggerKind::Youtube { filter } => Some(youtube_trigger_json(t, filter, &channels)),
            _ => None,
        })
        .collect();
    Ok(JsonOut(json!({"removed": removed, "triggers": remaining})))
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
