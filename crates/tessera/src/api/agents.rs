//! Agents: create, read, list, and the node-type catalogue.

use axum::Json as JsonOut;
use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Auth;
use super::error::{ApiError, ErrorBody, Json, Query, not_found_as};
use super::{AppState, iso, page_limit, parse_path_id};
use crate::domain::graph::{self, Catalogue, Connection, NodeSpec};
use crate::domain::ids::AgentId;
use crate::store::AgentRecord;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(node_types))
        .routes(routes!(create))
        .routes(routes!(get_agent))
        .routes(routes!(update))
        .routes(routes!(delete))
        .routes(routes!(list_agents))
}

/// `POST /agent/create`
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateAgent {
    /// 1 to 200 characters (surrounding spaces are trimmed).
    #[schema(min_length = 1, max_length = 200)]
    name: String,
    #[serde(default)]
    description: Option<String>,
    nodes: Vec<NodeSpec>,
    #[serde(default)]
    connections: Vec<Connection>,
}

/// Every node type with its parameters, defaults, limits and allowed values.
#[utoipa::path(get, path = "/node_types", tag = "agents",
    responses((status = 200, body = Catalogue), (status = "4XX", body = ErrorBody)))]
async fn node_types(_auth: Auth) -> JsonOut<Catalogue> {
    JsonOut(graph::catalogue())
}

/// Create an agent: a validated graph of nodes (a DAG from `video_input`s to `render`s).
#[utoipa::path(post, path = "/agent/create", tag = "agents", request_body = CreateAgent,
    responses((status = 200, body = CreatedAgent), (status = "4XX", body = ErrorBody)))]
async fn create(
    State(state): State<AppState>,
    auth: Auth,
    Json(body): Json<CreateAgent>,
) -> Result<JsonOut<CreatedAgent>, ApiError> {
    let name = check_name(&body.name)?;
    check_description(body.description.as_deref())?;
    let graph = graph::validate(body.nodes, body.connections)?;
    let now = chrono::Utc::now().timestamp_millis();
    let agent = AgentRecord {
        id: AgentId::new(),
        user_id: auth.user_id,
        name,
        description: body.description,
        graph,
        created_at: now,
        updated_at: now,
    };
    state.store.create_agent(&agent).await?;
    Ok(JsonOut(CreatedAgent {
        id: agent.id,
        agent: agent_view(&agent),
    }))
}

/// `POST /agent/{id}/update`: absent fields are kept.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct UpdateAgent {
    #[serde(default)]
    #[schema(min_length = 1, max_length = 200)]
    name: Option<String>,
    /// `null` clears the description; absent keeps it.
    #[serde(default, with = "super::double_option")]
    #[schema(value_type = Option<String>)]
    description: Option<Option<String>>,
    #[serde(default)]
    nodes: Option<Vec<NodeSpec>>,
    #[serde(default)]
    connections: Option<Vec<Connection>>,
}

/// Edit an agent. Runs already queued keep the graph they were started with.
#[utoipa::path(post, path = "/agent/{id}/update", tag = "agents", request_body = UpdateAgent,
    params(("id" = String, Path, description = "Agent id")),
    responses((status = 200, body = AgentView), (status = "4XX", body = ErrorBody)))]
async fn update(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    Json(body): Json<UpdateAgent>,
) -> Result<JsonOut<AgentView>, ApiError> {
    let id: AgentId = parse_path_id(&id, "agent")?;
    let mut agent = state
        .store
        .agent(auth.user_id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("agent not found"))?;
    if let Some(name) = body.name {
        agent.name = check_name(&name)?;
    }
    if let Some(description) = body.description {
        check_description(description.as_deref())?;
        agent.description = description;
    }
    match (body.nodes, body.connections) {
        (Some(nodes), Some(connections)) => agent.graph = graph::validate(nodes, connections)?,
        (None, None) => {}
        _ => {
            return Err(ApiError::validation(
                "nodes and connections are replaced together: give both",
            ));
        }
    }
    agent.updated_at = chrono::Utc::now().timestamp_millis();
    state
        .store
        .update_agent(&agent)
        .await
        .map_err(not_found_as("agent"))?;
    Ok(JsonOut(agent_view(&agent)))
}

#[derive(Serialize, ToSchema)]
struct Deleted {
    id: AgentId,
    deleted: bool,
}

/// Remove an agent (its runs stay readable).
#[utoipa::path(post, path = "/agent/{id}/delete", tag = "agents",
    params(("id" = String, Path, description = "Agent id")),
    responses((status = 200, body = Deleted), (status = "4XX", body = ErrorBody)))]
async fn delete(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<JsonOut<Deleted>, ApiError> {
    let id: AgentId = parse_path_id(&id, "agent")?;
    let now = chrono::Utc::now().timestamp_millis();
    state
        .store
        .delete_agent(auth.user_id, id, now)
        .await
        .map_err(not_found_as("agent"))?;
    Ok(JsonOut(Deleted { id, deleted: true }))
}

fn check_name(name: &str) -> Result<String, ApiError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(ApiError::validation("name must be 1 to 200 characters"));
    }
    Ok(name.to_owned())
}

fn check_description(description: Option<&str>) -> Result<(), ApiError> {
    if description.is_some_and(|d| d.chars().count() > 2000) {
        return Err(ApiError::validation(
            "description must be at most 2000 characters",
        ));
    }
    Ok(())
}

/// One agent with its nodes (parameters completed with their defaults).
#[utoipa::path(get, path = "/agent/{id}", tag = "agents",
    params(("id" = String, Path, description = "Agent id")),
    responses((status = 200, body = AgentView), (status = "4XX", body = ErrorBody)))]
async fn get_agent(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<JsonOut<AgentView>, ApiError> {
    let id: AgentId = parse_path_id(&id, "agent")?;
    let agent = state
        .store
        .agent(auth.user_id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("agent not found"))?;
    Ok(JsonOut(agent_view(&agent)))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// 1–100 (default 25).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<u32>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

#[derive(Serialize, ToSchema)]
struct AgentPage {
    agents: Vec<AgentSummary>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    next_cursor: Option<AgentId>,
}

/// The caller's agents, newest first.
#[utoipa::path(get, path = "/agents", tag = "agents", params(ListQuery),
    responses((status = 200, body = AgentPage), (status = "4XX", body = ErrorBody)))]
async fn list_agents(
    State(state): State<AppState>,
    auth: Auth,
    Query(q): Query<ListQuery>,
) -> Result<JsonOut<AgentPage>, ApiError> {
    let limit = page_limit(q.limit)?;
    let before = q
        .cursor
        .map(|c| {
            c.parse::<AgentId>()
                .map_err(|_| ApiError::validation("cursor is not valid"))
        })
        .transpose()?;
    let agents = state
        .store
        .list_agents(auth.user_id, before, limit + 1)
        .await?;
    let more = agents.len() > limit as usize;
    let page = &agents[..agents.len().min(limit as usize)];
    Ok(JsonOut(AgentPage {
        agents: page.iter().map(agent_summary).collect(),
        next_cursor: more.then(|| page.last().map(|a| a.id)).flatten(),
    }))
}

#[derive(Serialize, ToSchema)]
pub struct AgentSummary {
    id: AgentId,
    name: String,
    description: Option<String>,
    created_at: String,
    updated_at: String,
}

fn agent_summary(a: &AgentRecord) -> AgentSummary {
    AgentSummary {
        id: a.id,
        name: a.name.clone(),
        description: a.description.clone(),
        created_at: iso(a.created_at),
        updated_at: iso(a.updated_at),
    }
}

/// An agent as `GET /agent/{id}` returns it.
#[derive(Serialize, ToSchema)]
pub struct AgentView {
    agent: AgentSummary,
    agent_nodes: Vec<AgentNode>,
    connections: Vec<Connection>,
}

/// `POST /agent/create`'s answer: the agent and its id.
#[derive(Serialize, ToSchema)]
struct CreatedAgent {
    id: AgentId,
    #[serde(flatten)]
    agent: AgentView,
}

#[derive(Serialize, ToSchema)]
struct AgentNode {
    agent_node_id: String,
    node_type: String,
    /// Every parameter with the value the agent uses (defaults filled in).
    #[schema(value_type = Object)]
    params_used: Map<String, Value>,
}

/// The agent as `GET /agent/{id}` returns it.
pub fn agent_view(a: &AgentRecord) -> AgentView {
    AgentView {
        agent: agent_summary(a),
        agent_nodes: a
            .graph
            .nodes
            .iter()
            .map(|n| AgentNode {
                agent_node_id: n.id.clone(),
                node_type: n.node_type.clone(),
                params_used: n.params.clone(),
            })
            .collect(),
        connections: a.graph.connections.clone(),
    }
}
