//! Runs: the list with a status filter, one run in detail (thumbnails, the
//! output player, node statuses, errors, its webhooks), starting and
//! cancelling runs.

use std::collections::HashMap;

use axum::extract::State;

use super::extract::{Path, Query};
use axum::response::{Html, IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;

use super::layout::{
    PageError, Section, action_button, csrf, delivery_badge, page, page_with, pager, run_badge,
    short, when, when_opt,
};
use super::session::{Form, Session};
use crate::api::AppState;
use crate::api::run_nodes::{cancel_run, node_errors, node_status, node_statuses};
use crate::api::runs::{StartRun, owned_run, start_run};
use crate::domain::ids::{AgentId, RunId};
use crate::domain::payload::{ManualSource, TriggerInfo};
use crate::store::{AgentRecord, DeliveryFilter, RunFilter, RunRecord, RunStatus};

const PAGE: u32 = 25;
const STATUSES: [RunStatus; 6] = [
    RunStatus::Queued,
    RunStatus::Running,
    RunStatus::Completed,
    RunStatus::PartialComplete,
    RunStatus::Failed,
    RunStatus::Cancelled,
];

/// The names of these agents (deleted ones are absent).
pub async fn agent_names(
    state: &AppState,
    session: &Session,
    ids: Vec<AgentId>,
) -> Result<HashMap<AgentId, String>, PageError> {
    let mut names = HashMap::new();
    for id in ids {
        if names.contains_key(&id) {
            continue;
        }
        if let Some(agent) = state.store.agent(session.user_id, id).await? {
            names.insert(id, agent.name);
        }
    }
    Ok(names)
}

#[derive(Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    status: String,
    #[serde(default)]
    cursor: String,
}

/// `GET /dashboard/runs`
pub async fn list(
    State(state): State<AppState>,
    session: Session,
    Query(q): Query<ListQuery>,
) -> Result<Html<String>, PageError> {
    let status = match q.status.as_str() {
        "" => None,
        s => Some(RunStatus::parse(s).ok_or_else(|| PageError::bad_request("unknown run status"))?),
    };
    let before = match q.cursor.as_str() {
        "" => None,
        c => Some(
            c.parse::<RunId>()
                .map_err(|_| PageError::bad_request("the page cursor is not valid"))?,
        ),
    };
    let mut rows = state
        .store
        .list_runs(
            session.user_id,
            &RunFilter {
                statuses: status.into_iter().collect(),
                before,
                limit: PAGE + 1,
                ..Default::default()
            },
        )
        .await?;
    let more = rows.len() > PAGE as usize;
    rows.truncate(PAGE as usize);
    let agents = agent_names(&state, &session, rows.iter().map(|r| r.agent_id).collect()).await?;
    let body = html! {
        h1 { "Runs" }
        p { a href="/dashboard/runs/new" { "Start a run" } }
        form.filters method="get" action="/dashboard/runs" {
            label for="status" { "Status" }
            select #status name="status" {
                option value="" { "any" }
                @for s in STATUSES {
                    option value=(s.as_str()) selected[status == Some(s)] { (s.as_str()) }
                }
            }
            button.secondary type="submit" { "Filter" }
        }
        @if rows.is_empty() {
            p.muted { "No runs." }
        } @else {
            div.table-wrap { table #runs {
                thead { tr { th { "Run" } th { "Agent" } th { "Status" } th.hide-narrow { "Trigger" } th.hide-narrow { "Created" } } }
                tbody {
                    @for r in &rows {
                        tr {
                            td { a.run-link href={"/dashboard/runs/" (r.id)} { (short(&r.id.to_string(), 13)) } }
                            td { (agents.get(&r.agent_id).map_or("(deleted agent)", String::as_str)) }
                            td { (run_badge(r.status)) }
                            td.hide-narrow { (trigger_label(r)) }
                            td.hide-narrow { (when(r.created_at)) }
                        }
                    }
                }
            } }
        }
        (pager("/dashboard/runs", &[("status", q.status.clone())], !q.cursor.is_empty(), more.then(|| rows.last().map(|r| r.id.to_string())).flatten()))
    };
    Ok(page(&session, Section::Runs, "Runs", body))
}

fn trigger_label(run: &RunRecord) -> &'static str {
    match &run.triggered_by {
        TriggerInfo::Manual(m) if m.source == ManualSource::Ui => "manual (dashboard)",
        TriggerInfo::Manual(_) => "manual (API)",
        TriggerInfo::Schedule(_) => "schedule",
        TriggerInfo::YouTube(_) => "YouTube",
    }
}

/// Signed file URLs as paths on this server, so the page's CSP (`'self'`)
/// allows them whatever public URL the server is configured with.
pub fn local(url: String) -> String {
    match url::Url::parse(&url) {
        Ok(u) => match u.query() {
            Some(q) => format!("{}?{q}", u.path()),
            None => u.path().to_owned(),
        },
        Err(_) => url,
    }
}

/// `GET /dashboard/runs/{id}`
pub async fn detail(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
) -> Result<Html<String>, PageError> {
    let run = owned_run(&state, session.user_id, &id).await?;
    let agent = state.store.agent(session.user_id, run.agent_id).await?;
    let deliveries = state
        .store
        .list_deliveries(
            session.user_id,
            &DeliveryFilter {
                run_id: Some(run.id),
                limit: 100,
                ..Default::default()
            },
        )
        .await?;
    let now = chrono::Utc::now().timestamp();
    let sign = |key: &str| local(state.objects.file_url(key, now));
    let statuses = node_statuses(&run);
    let open = matches!(run.status, RunStatus::Queued | RunStatus::Running);
    let body = html! {
        h1 { "Run " span.mono { (run.id) } }
        div.card {
            dl.kv {
                dt { "Status" } dd #run-status { (run_badge(run.status)) }
                dt { "Agent" } dd { @match &agent {
                    Some(a) => a href={"/dashboard/agents/" (a.id)} { (a.name) },
                    None => span.muted { "(deleted) " (run.agent_id) },
                } }
                @if let Some(m) = &run.status_message { dt { "Message" } dd #run-message { (m) } }
                dt { "Created" } dd { (when(run.created_at)) }
                dt { "Started" } dd { (when_opt(run.started_at)) }
                dt { "Finished" } dd { (when_opt(run.finished_at)) }
                dt { "Attempt" } dd { (run.attempt) }
                dt { "Callback URL" } dd.mono { (run.callback_url.as_deref().unwrap_or("—")) }
            }
            @if open {
                p { (action_button(&session, &format!("/dashboard/runs/{}/cancel", run.id), "Cancel run", "danger")) }
            }
        }
        h2 { "Inputs" }
        @if run.inputs.is_empty() {
            p.muted { @if open { "Not downloaded yet." } @else { "No input was ingested." } }
        }
        div.thumbs #inputs {
            @for input in &run.inputs {
                figure {
                    a href=(sign(&input.files.video_key)) {
                        img.input-thumb src=(sign(&input.files.thumbnail_key)) alt={"Input " (input.input_index)} loading="lazy";
                    }
                    figcaption { "Input " (input.input_index) " · " (format_duration(input.duration_ms)) br; span.mono { (short(&input.source, 80)) } }
                }
            }
        }
        h2 { "Outputs" }
        @if run.outputs.is_empty() { p.muted { "No outputs yet." } }
        div.thumbs #outputs {
            @for output in &run.outputs {
                figure {
                    video controls preload="metadata" poster=(sign(&output.files.thumbnail_key)) src=(sign(&output.files.video_key)) {}
                    figcaption {
                        "Output " span.mono { (output.id) } " · from input " (output.input_index) " by " (output.render_node) " · "
                        a href=(sign(&output.files.video_key)) download { "download" }
                    }
                }
            }
        }
        h2 { "Nodes" }
        div.table-wrap { table #nodes {
            thead { tr { th { "Node" } th { "Type" } th { "Status" } th { "Errors" } } }
            tbody {
                @for n in &run.graph.nodes {
                    tr {
                        td.mono { (n.id) }
                        td { (n.node_type) }
                        td { (node_status(&statuses, &n.id).as_str()) }
                        td { @for e in node_errors(&run, &n.id) { div.bad { "Input " (e.input_index) ": " (e.message) } } }
                    }
                }
            }
        } }
        @if !run.errors.is_empty() {
            h2 { "Errors" }
            ul #errors { @for e in &run.errors { li { "Input " (e.input_index) " (" span.mono { (short(&e.source, 80)) } "): " (e.message) } } }
        }
        h2 { "Triggered by" }
        div.card { (json_list(&serde_json::to_value(&run.triggered_by).unwrap_or_default())) }
        h2 { "Webhooks" }
        @if deliveries.is_empty() {
            p.muted { @if run.callback_url.is_some() { "None yet." } @else { "This run has no callback URL." } }
        } @else {
            div.table-wrap { table #run-deliveries {
                thead { tr { th { "Delivery" } th { "Event" } th { "Status" } th { "Attempts" } th.hide-narrow { "Created" } } }
                tbody { @for d in &deliveries { tr {
                    td { a href={"/dashboard/webhooks/" (d.id)} { (short(&d.id.to_string(), 13)) } }
                    td { (d.flag) }
                    td { (delivery_badge(d.status)) }
                    td { (d.attempt_count) }
                    td.hide-narrow { (when(d.created_at)) }
                } } }
            } }
        }
    };
    let title = format!("Run {}", short(&run.id.to_string(), 13));
    Ok(page_with(
        &session,
        Section::Runs,
        &title,
        open.then_some(5),
        body,
    ))
}

fn format_duration(ms: u64) -> String {
    format!("{}.{:01} s", ms / 1000, (ms % 1000) / 100)
}

/// A JSON object (like `triggered_by`) as a definition list; nested values as JSON text.
pub fn json_list(value: &serde_json::Value) -> Markup {
    html! {
        @match value.as_object() {
            Some(map) => dl.kv { @for (k, v) in map {
                dt { (k) }
                dd.mono { @match v.as_str() { Some(s) => (s), None => (v.to_string()) } }
            } },
            None => pre { (value.to_string()) },
        }
    }
}

#[derive(Deserialize)]
pub struct NewRunQuery {
    #[serde(default)]
    agent: String,
    /// An upload to start with (the Uploads page links here).
    #[serde(default)]
    video: String,
}

/// `GET /dashboard/runs/new`
pub async fn new_run(
    State(state): State<AppState>,
    session: Session,
    Query(q): Query<NewRunQuery>,
) -> Result<Html<String>, PageError> {
    let agents = state.store.list_agents(session.user_id, None, 100).await?;
    let body = html! {
        h1 { "Start a run" }
        @if agents.is_empty() {
            p.muted { "Create an agent through the API first (" code { "POST /agent/create" } ")." }
        } @else {
            (start_form_with(&session, &agents, &StartForm {
                agent_id: q.agent,
                video_urls: q.video,
                ..StartForm::default()
            }))
        }
    };
    Ok(page(&session, Section::Runs, "Start a run", body))
}

/// The start form (also on an agent's page, with that agent chosen).
pub fn start_form(session: &Session, agents: &[AgentRecord], chosen: &str) -> Markup {
    let values = StartForm {
        agent_id: chosen.to_owned(),
        ..StartForm::default()
    };
    start_form_with(session, agents, &values)
}

/// The start form filled with what was typed (after a refused submission).
fn start_form_with(session: &Session, agents: &[AgentRecord], values: &StartForm) -> Markup {
    html! {
        form.stack #start-run method="post" action="/dashboard/runs" {
            (csrf(session))
            label for="agent_id" { "Agent" }
            select #agent_id name="agent_id" required {
                @for a in agents {
                    option value=(a.id) selected[a.id.to_string() == values.agent_id] { (a.name) }
                }
            }
            label for="video_urls" { "Video URLs or uploads' video_ids (one per line; each is an input)" }
            textarea #video_urls name="video_urls" rows="3" required placeholder="https://…/video.mp4" { (values.video_urls) }
            label for="callback_url" { "Callback URL for webhooks (optional)" }
            input #callback_url type="url" name="callback_url" placeholder="https://…/webhooks" value=(values.callback_url);
            button type="submit" { "Start run" }
        }
    }
}

#[derive(Deserialize, Default)]
pub struct StartForm {
    #[serde(default)]
    agent_id: String,
    #[serde(default)]
    video_urls: String,
    #[serde(default)]
    callback_url: String,
}

/// `POST /dashboard/runs`: the same validation as `POST /agent/{id}/run`,
/// with `triggered_by.source = "ui"`. Refused input comes back on the form,
/// with what was typed.
pub async fn start(
    State(state): State<AppState>,
    Form(session, form): Form<StartForm>,
) -> Result<Response, PageError> {
    let agent_id: AgentId = form
        .agent_id
        .parse()
        .map_err(|_| PageError::not_found("agent"))?;
    // A line that is a UUID names an upload (`video_id`); others are URLs.
    let (video_ids, video_urls): (Vec<String>, Vec<String>) = form
        .video_urls
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .partition(|l| uuid::Uuid::try_parse(l).is_ok());
    let callback_url = Some(form.callback_url.trim())
        .filter(|u| !u.is_empty())
        .map(str::to_owned);
    let request = StartRun::on_videos(video_urls, video_ids, callback_url);
    let refused =
        match start_run(&state, session.user_id, agent_id, request, ManualSource::Ui).await {
            Ok(run_id) => {
                return Ok(Redirect::to(&format!("/dashboard/runs/{run_id}")).into_response());
            }
            Err(e) if e.status == axum::http::StatusCode::BAD_REQUEST => e,
            Err(e) => return Err(e.into()),
        };
    let agents = state.store.list_agents(session.user_id, None, 100).await?;
    let body = html! {
        h1 { "Start a run" }
        p.flash.error role="alert" { (refused.detail) }
        (start_form_with(&session, &agents, &form))
    };
    Ok((
        refused.status,
        page(&session, Section::Runs, "Start a run", body),
    )
        .into_response())
}

/// `POST /dashboard/runs/{id}/cancel`
pub async fn cancel(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Form(session, _): Form<super::session::Empty>,
) -> Result<Response, PageError> {
    let run = owned_run(&state, session.user_id, &id).await?;
    cancel_run(&state, &run).await?;
    Ok(Redirect::to(&format!("/dashboard/runs/{}", run.id)).into_response())
}
