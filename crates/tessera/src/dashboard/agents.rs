//! Agents: the list, and one agent's graph as a readable list of nodes with
//! its triggers, recent runs and a start form.

use axum::extract::State;

use super::extract::Path;
use axum::response::Html;
use maud::html;

use super::layout::{PageError, Section, page, run_badge, short, when};
use super::runs::start_form;
use super::session::Session;
use crate::api::AppState;
use crate::domain::ids::AgentId;
use crate::store::RunFilter;

/// `GET /dashboard/agents`
pub async fn list(
    State(state): State<AppState>,
    session: Session,
) -> Result<Html<String>, PageError> {
    let agents = state.store.list_agents(session.user_id, None, 100).await?;
    let body = html! {
        h1 { "Agents" }
        @if agents.is_empty() {
            p.muted { "No agents yet. Create one with " code { "POST /agent/create" } "." }
        } @else {
            div.table-wrap { table #agents {
                thead { tr { th { "Name" } th { "Nodes" } th.hide-narrow { "Id" } th.hide-narrow { "Updated" } } }
                tbody { @for a in &agents { tr {
                    td { a href={"/dashboard/agents/" (a.id)} { (a.name) } }
                    td { (a.graph.nodes.iter().map(|n| n.node_type.as_str()).collect::<Vec<_>>().join(" → ")) }
                    td.mono.hide-narrow { (a.id) }
                    td.hide-narrow { (when(a.updated_at)) }
                } } }
            } }
            @if agents.len() == 100 { p.muted { "Showing the first 100 agents." } }
        }
    };
    Ok(page(&session, Section::Agents, "Agents", body))
}

/// `GET /dashboard/agents/{id}`
pub async fn detail(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
) -> Result<Html<String>, PageError> {
    let id: AgentId = id.parse().map_err(|_| PageError::not_found("agent"))?;
    let agent = state
        .store
        .agent(session.user_id, id)
        .await?
        .ok_or_else(|| PageError::not_found("agent"))?;
    let triggers = state.store.agent_triggers(session.user_id, id).await?;
    let runs = state
        .store
        .list_runs(
            session.user_id,
            &RunFilter {
                agent_id: Some(id),
                limit: 10,
                ..Default::default()
            },
        )
        .await?;
    let body = html! {
        h1 { (agent.name) }
        @if let Some(d) = &agent.description { p { (d) } }
        p.muted.mono { (agent.id) }
        h2 { "Nodes" }
        ol #agent-nodes {
            @for n in &agent.graph.nodes {
                li {
                    strong.mono { (n.id) } " — " (n.node_type)
                    @let inputs: Vec<&str> = agent.graph.connections.iter().filter(|c| c.target == n.id).map(|c| c.source.as_str()).collect();
                    @if !inputs.is_empty() { " " span.muted { "← " (inputs.join(", ")) } }
                    @if !n.params.is_empty() {
                        ul { @for (k, v) in &n.params {
                            li { span.mono { (k) } " = " span.mono { @match v.as_str() { Some(s) => (s), None => (v.to_string()) } } }
                        } }
                    }
                }
            }
        }
        h2 { "Triggers" }
        @if triggers.is_empty() { p.muted { "None." } } @else {
            ul { @for t in &triggers { li { (t.kind.name()) " · " a href="/dashboard/triggers" { "details" } } } }
        }
        h2 { "Recent runs" }
        @if runs.is_empty() { p.muted { "None yet." } } @else {
            ul { @for r in &runs { li {
                a href={"/dashboard/runs/" (r.id)} { (short(&r.id.to_string(), 13)) } " " (run_badge(r.status)) " " span.muted { (when(r.created_at)) }
            } } }
        }
        h2 { "Start a run" }
        (start_form(&session, std::slice::from_ref(&agent), &agent.id.to_string()))
    };
    Ok(page(&session, Section::Agents, &agent.name, body))
}
