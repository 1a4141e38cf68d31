//! Triggers: schedules (cron, zone, next run, last fire) and YouTube
//! channels (last poll and its result).

use std::collections::HashMap;

use axum::extract::State;
use axum::response::Html;
use maud::html;

use super::layout::{PageError, Section, page, short, when, when_opt};
use super::runs::agent_names;
use super::session::Session;
use crate::api::AppState;
use crate::store::TriggerKind;

/// `GET /dashboard/triggers`
pub async fn list(
    State(state): State<AppState>,
    session: Session,
) -> Result<Html<String>, PageError> {
    let triggers = state.store.list_triggers(session.user_id).await?;
    let agents = agent_names(
        &state,
        &session,
        triggers.iter().map(|t| t.agent_id).collect(),
    )
    .await?;
    let mut channels = HashMap::new();
    for t in &triggers {
        if matches!(t.kind, TriggerKind::Youtube { .. }) && !channels.contains_key(&t.agent_id) {
            let list = state
                .store
                .youtube_channels(session.user_id, t.agent_id)
                .await?;
            channels.insert(t.agent_id, list);
        }
    }
    let agent_link = |id| {
        html! { @match agents.get(&id) {
            Some(name) => a href={"/dashboard/agents/" (id)} { (name) },
            None => span.mono { (id) },
        } }
    };
    let body = html! {
        h1 { "Triggers" }
        @let schedules = triggers.iter().filter(|t| matches!(t.kind, TriggerKind::Schedule(_))).count();
        @let youtube = triggers.iter().filter(|t| matches!(t.kind, TriggerKind::Youtube { .. })).count();
        h2 { "Schedules" }
        @if schedules == 0 { p.muted { "None. Add one with " code { "POST /agent/{id}/triggers/add_schedule" } "." } }
        @else { div.table-wrap { table #schedules {
            thead { tr { th { "Agent" } th { "Cron" } th { "Zone" } th { "Videos" } th { "Next run" } th { "Last fired" } th.hide-narrow { "Callback URL" } th { "Last error" } } }
            tbody {
                @for t in &triggers { @if let TriggerKind::Schedule(spec) = &t.kind { tr {
                    td { (agent_link(t.agent_id)) }
                    td.mono { (spec.cron_expression) }
                    td { (spec.timezone) }
                    td.mono {
                        @for u in &spec.video_urls { div { (short(u, 60)) } }
                        @for id in &spec.video_ids { div { "video_id " (id) } }
                    }
                    td { (when_opt(t.next_run_at)) }
                    td { (when_opt(t.last_fired_at)) }
                    td.mono.hide-narrow { (t.callback_url.as_deref().unwrap_or("—")) }
                    td.bad { (t.last_error.as_deref().unwrap_or("")) }
                } } }
            }
        } } }
        h2 { "YouTube channels" }
        @if youtube == 0 { p.muted { "None. Watch a channel with " code { "POST /agent/{id}/triggers/add_youtube_channels" } "." } }
        @else { div.table-wrap { table #channels {
            thead { tr { th { "Agent" } th { "Channel" } th { "Filter" } th { "Last poll" } th { "Result" } th { "Next poll" } } }
            tbody {
                @for t in &triggers { @if let TriggerKind::Youtube { filter } = &t.kind {
                    @for c in channels.get(&t.agent_id).into_iter().flatten().filter(|c| c.trigger_id == t.id) { tr {
                        td { (agent_link(t.agent_id)) }
                        td.mono { (c.channel_id) }
                        td { @match (filter.min_seconds, filter.max_seconds) {
                            (None, None) => "any length",
                            (min, max) => (format!("{}–{} s", min.map_or("0".into(), |m| m.to_string()), max.map_or("∞".into(), |m| m.to_string()))),
                        } }
                        td { (when_opt(c.last_poll_at)) }
                        td { @match (&c.last_error, c.last_poll_at) {
                            (Some(e), _) => span.bad { (e) },
                            (None, Some(_)) => span.ok { "ok" },
                            (None, None) => span.muted { "not polled yet" },
                        } }
                        td { (when(c.next_poll_at)) }
                    } }
                } }
            }
        } } }
    };
    Ok(page(&session, Section::Triggers, "Triggers", body))
}
