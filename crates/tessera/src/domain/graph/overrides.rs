//! Per-run changes to a validated graph: `update_params` (parameter
//! overrides) and `ignore_nodes` (nodes skipped for one run).

use std::collections::HashSet;

use serde_json::{Map, Value};

use super::types::{self, Default, NodeType};
use super::{AgentGraph, Connection, GraphError, NodeSpec, params, validate};

/// Applies `{agent_node_id: {param: value}}` on top of the graph's params and
/// re-validates them. Unknown node ids or params and wrong JSON types are
/// `Invalid`; values out of range are `OutOfRange`. `null` resets a param to
/// its default.
pub fn apply_update_params(
    graph: &AgentGraph,
    update: &Map<String, Value>,
) -> Result<AgentGraph, GraphError> {
    // Every shape error is found before any range error, as in `validate`.
    let mut targets = Vec::with_capacity(update.len());
    for (node_id, overrides) in update {
        let index = graph
            .nodes
            .iter()
            .position(|n| &n.id == node_id)
            .ok_or_else(|| {
                GraphError::Invalid(format!("update_params: unknown node id {node_id:?}"))
            })?;
        let Value::Object(overrides) = overrides else {
            return Err(GraphError::Invalid(format!(
                "update_params: the value for node {node_id:?} must be an object of parameters"
            )));
        };
        let ty = types::lookup(node_id, &graph.nodes[index].node_type)?;
        params::check_shape(node_id, ty, overrides)?;
        targets.push((index, ty, overrides));
    }
    let mut updated = graph.clone();
    for (index, ty, overrides) in targets {
        let node = &mut updated.nodes[index];
        let merged = merge(ty, &node.params, overrides);
        node.params = params::complete(&node.id, ty, &merged)?;
    }
    Ok(updated)
}

/// Removes `ignored` nodes for one run: each one's incoming edges are
/// rewired to its downstream nodes. Ignoring a render drops the branch that
/// only led to it. Inputs cannot be ignored; at least one render must remain.
pub fn apply_ignore_nodes(
    graph: &AgentGraph,
    ignored: &[String],
) -> Result<AgentGraph, GraphError> {
    let mut nodes = graph.nodes.clone();
    let mut connections = graph.connections.clone();
    for id in ignored {
        let node = nodes
            .iter()
            .find(|n| &n.id == id)
            .ok_or_else(|| GraphError::Invalid(format!("ignore_nodes: unknown node id {id:?}")))?;
        if node.node_type == "video_input" {
            return Err(GraphError::Invalid(format!(
                "ignore_nodes: node {id:?} is a video_input and cannot be ignored"
            )));
        }
        connections = bypass(&connections, id);
        nodes.retain(|n| &n.id != id);
    }
    prune_dead_ends(&mut nodes, &mut connections);
    validate(nodes, connections)
}

/// Overrides win; a derived default (e.g. `video_codec` following `format`)
/// is dropped, to be derived again, when the param it follows is overridden
/// and it is not.
fn merge(
    ty: &NodeType,
    current: &Map<String, Value>,
    overrides: &Map<String, Value>,
) -> Map<String, Value> {
    let mut merged = current.clone();
    for spec in ty.params {
        if let Default::Follows { param, .. } = spec.default
            && overrides.contains_key(param)
            && !overrides.contains_key(spec.name)
        {
            merged.remove(spec.name);
        }
    }
    for (name, value) in overrides {
        merged.insert(name.clone(), value.clone());
    }
    merged
}

/// Connections with `id` removed and each of its parents linked to each of
/// its children. A rewired edge takes the place of the child's old edge, so
/// a `concat` keeps the order of its parts.
fn bypass(connections: &[Connection], id: &str) -> Vec<Connection> {
    let parents: Vec<&str> = connections
        .iter()
        .filter(|c| c.target == id)
        .map(|c| c.source.as_str())
        .collect();
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(connections.len() + parents.len());
    for conn in connections.iter().filter(|c| c.target != id) {
        let replacements: Vec<Connection> = if conn.source == id {
            parents
                .iter()
                .map(|&p| Connection {
                    source: p.to_owned(),
                    target: conn.target.clone(),
                })
                .collect()
        } else {
            vec![conn.clone()]
        };
        out.extend(replacements.into_iter().filter(|c| seen.insert(c.clone())));
    }
    out
}

/// Removes transforming nodes that no longer lead anywhere (after a render
/// was ignored). In an acyclic graph, repeatedly dropping such sinks removes
/// exactly the nodes that cannot reach a render.
fn prune_dead_ends(nodes: &mut Vec<NodeSpec>, connections: &mut Vec<Connection>) {
    loop {
        let dead: Option<String> = nodes
            .iter()
            .filter(|n| n.node_type != "video_input" && n.node_type != "render")
            .find(|n| !connections.iter().any(|c| c.source == n.id))
            .map(|n| n.id.clone());
        let Some(dead) = dead else { return };
        connections.retain(|c| c.target != dead);
        nodes.retain(|n| n.id != dead);
    }
}
