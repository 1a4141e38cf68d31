//! Agents: create, read, list, and the node-type catalogue.

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json as JsonOut, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::Auth;
use super::error::{ApiError, Json, Query, not_found_as};
use super::{AppState, iso, page_limit, parse_path_id};
use crate::domain::graph::{self, Connection, NodeSpec};
use crate::domain::ids::AgentId;
use crate::store::AgentRecord;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/node_types", get(node_types))
        .route("/agent/create", post(create))
        .route("/agent/{id}", get(read))
        .route("/agent/{id}/update", post(update))
        .route("/agent/{id}/delete", post(delete))
        .route("/agents", get(list))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateAgent {
    name: String,
    #[serde(default)]
    description: Option<String>,
    nodes: Vec<NodeSpec>,
    #[serde(default)]
    connections: Vec<Connection>,
}

async fn node_types(_auth: Auth) -> JsonOut<Value> {
    JsonOut(graph::catalogue())
}

async fn create(
    State(state): State<AppState>,
    auth: Auth,
    Json(body): Json<CreateAgent>,
) -> Result<JsonOut<Value>, ApiError> {
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
    let mut out = agent_json(&agent);
    out["id"] = json!(agent.id);
    Ok(JsonOut(out))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateAgent {
    #[serde(default)]
    name: Option<String>,
    /// `null` clears the description; absent keeps it.
    #[serde(default, with = "super::double_option")]
    description: Option<Option<String>>,
    #[serde(default)]
    nodes: Option<Vec<NodeSpec>>,
    #[serde(default)]
    connections: Option<Vec<Connection>>,
}

/// Edit an agent. Runs already queued keep the graph they were started with.
async fn update(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    Json(body): Json<UpdateAgent>,
) -> Result<JsonOut<Value>, ApiError> {
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
    Ok(JsonOut(agent_json(&agent)))
}

async fn delete(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<JsonOut<Value>, ApiError> {
    let id: AgentId = parse_path_id(&id, "agent")?;
    let now = chrono::Utc::now().timestamp_millis();
    state
        .store
        .delete_agent(auth.user_id, id, now)
        .await
        .map_err(not_found_as("agent"))?;
    Ok(JsonOut(json!({ "id": id, "deleted": true })))
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

async fn read(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<JsonOut<Value>, ApiError> {
    let id: AgentId = parse_path_id(&id, "agent")?;
    let agent = state
        .store
        .agent(auth.user_id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("agent not found"))?;
    Ok(JsonOut(agent_json(&agent)))
}

#[derive(Deserialize)]
struct ListQuery {
    limit: Option<u32>,
    cursor: Option<String>,
}

async fn list(
    State(state): State<AppState>,
    auth: Auth,
    Query(q): Query<ListQuery>,
) -> Result<JsonOut<Value>, ApiError> {
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
    Ok(JsonOut(json!({
        "agents": page.iter().map(agent_summary).collect::<Vec<_>>(),
        "next_cursor": more.then(|| page.last().map(|a| a.id)).flatten(),
    })))
}

fn agent_summary(a: &AgentRecord) -> Value {
    json!({
        "id": a.id,
        "name": a.name,
        "description": a.description,
        "created_at": iso(a.created_at),
        "updated_at": iso(a.updated_at),
    })
}

/// The agent as `GET /agent/{id}` returns it.
pub fn agent_json(a: &AgentRecord) -> Value {
    json!({
        "agent": agent_summary(a),
        "agent_nodes": a.graph.nodes.iter().map(|n| json!({
            "agent_node_id": n.id,
            "node_type": n.node_type,
            "params_used": n.params,
        })).collect::<Vec<_>>(),
        "connections": a.graph.connections,
    })
}
