//! Agent graphs: the node/connection model, its validation rules, per-run
//! overrides and the render plans the engine executes. Pure, no IO.
//!
//! The flow is: the API deserialises [`NodeSpec`]s and [`Connection`]s, calls
//! [`validate`] (which also completes every node's params with defaults, the
//! `params_used` of the API), optionally [`apply_update_params`] /
//! [`apply_ignore_nodes`] for one run, and the engine turns the result into
//! one [`RenderPlan`] per `render` node with [`render_plans`].
//!
//! Wiring rules: `video_input` nodes (any number) have no incoming edge;
//! `concat` has two or more, joined in the order of the `connections` array;
//! every other node has exactly one. `render` has no outgoing edge and
//! `clips` feeds only `render` nodes. `remove_silence` and `normalize_audio`
//! appear at most once on any path, because all analysis of a plan happens
//! in one pass (see `media`).
//!
//! Node types live in a static table (`table.rs`), so adding one means adding
//! a table entry and, if it changes the video, a [`Step`] variant.

mod model;
mod overrides;
mod params;
mod plan;
mod structure;
mod subtitles;
mod table;
mod types;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub use model::{
    AspectRatio, ClipSpec, Cue, Format, Position, ReframeMode, RenderParams, RenderPlan, Source,
    Step, VideoCodec,
};
pub use overrides::{apply_ignore_nodes, apply_update_params};
pub use plan::{input_nodes, render_plans, single_input};
pub use types::{Catalogue, NodeTypeInfo, ParamInfo, catalogue};

/// Most nodes an agent may have.
pub const MAX_NODES: usize = 100;
/// Most connections an agent may have.
pub const MAX_CONNECTIONS: usize = 200;

/// One node as the API receives and returns it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct NodeSpec {
    pub id: String,
    #[serde(rename = "type")]
    pub node_type: String,
    /// Parameters by name (see `GET /node_types`); missing ones take their defaults.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub params: Map<String, Value>,
}

/// A directed edge: the output of `source` feeds `target`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, Hash, utoipa::ToSchema)]
pub struct Connection {
    pub source: String,
    pub target: String,
}

/// Why a graph or a parameter override was refused. Messages name the node
/// and the parameter, and are meant for API clients.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GraphError {
    /// Malformed or structurally invalid input (HTTP 400 `validation_error`).
    #[error("{0}")]
    Invalid(String),
    /// A well-formed value outside its allowed range (HTTP 422 `parameter_out_of_range`).
    #[error("{0}")]
    OutOfRange(String),
}

/// A validated graph whose nodes' params are completed with defaults
/// ("params_used"). Build it with [`validate`].
#[derive(Clone, Debug, PartialEq)]
pub struct AgentGraph {
    pub nodes: Vec<NodeSpec>,
    pub connections: Vec<Connection>,
}

/// Checks a graph against every rule and completes each node's params with
/// their defaults.
///
/// Shape errors (ids, types, unknown params, JSON types) and structural
/// errors are reported before out-of-range values, so a request that is
/// wrong in both ways gets the 400.
pub fn validate(
    nodes: Vec<NodeSpec>,
    connections: Vec<Connection>,
) -> Result<AgentGraph, GraphError> {
    structure::check_sizes(&nodes, &connections)?;
    structure::check_node_ids(&nodes)?;
    let node_types = nodes
        .iter()
        .map(|node| types::lookup(&node.id, &node.node_type))
        .collect::<Result<Vec<_>, _>>()?;
    for (node, ty) in nodes.iter().zip(&node_types) {
        params::check_shape(&node.id, ty, &node.params)?;
    }
    structure::check_edges(&nodes, &node_types, &connections)?;

    let mut completed = nodes;
    for (node, ty) in completed.iter_mut().zip(&node_types) {
        node.params = params::complete(&node.id, ty, &node.params)?;
    }
    Ok(AgentGraph {
        nodes: completed,
        connections,
    })
}

/// Formats the error prefix every message starts with.
fn node_label(node_id: &str) -> String {
    format!("node {node_id:?}")
}

#[cfg(test)]
mod tests;
