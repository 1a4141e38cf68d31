//! Structural rules of a graph: sizes, node ids, connections, roles,
//! acyclicity, "every node lies on an input → render path", `clips` only
//! before renders, and analysis nodes at most once per path.

use std::collections::{HashMap, HashSet};

use super::types::{NodeType, Role};
use super::{Connection, GraphError, MAX_CONNECTIONS, MAX_NODES, NodeSpec, node_label};

const MAX_ID_LEN: usize = 64;

/// Caps the graph size before any per-node work.
pub(super) fn check_sizes(
    nodes: &[NodeSpec],
    connections: &[Connection],
) -> Result<(), GraphError> {
    if nodes.len() > MAX_NODES {
        return invalid(format!(
            "an agent has at most {MAX_NODES} nodes (got {})",
            nodes.len()
        ));
    }
    if connections.len() > MAX_CONNECTIONS {
        return invalid(format!(
            "an agent has at most {MAX_CONNECTIONS} connections (got {})",
            connections.len()
        ));
    }
    Ok(())
}

/// Node ids are 1–64 characters of `[A-Za-z0-9_-]` and unique.
pub(super) fn check_node_ids(nodes: &[NodeSpec]) -> Result<(), GraphError> {
    let mut seen = HashSet::new();
    for node in nodes {
        let id = node.id.as_str();
        let well_formed = (1..=MAX_ID_LEN).contains(&id.len())
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !well_formed {
            return invalid(format!(
                "node id {id:?} must be 1 to {MAX_ID_LEN} characters of A-Z, a-z, 0-9, _ and -"
            ));
        }
        if !seen.insert(id) {
            return invalid(format!("node id {id:?} is used more than once"));
        }
    }
    Ok(())
}

/// Checks connections and how nodes are wired. `types[i]` is the type of
/// `nodes[i]`; ids are already known to be unique.
pub(super) fn check_edges(
    nodes: &[NodeSpec],
    types: &[&NodeType],
    connections: &[Connection],
) -> Result<(), GraphError> {
    let index: HashMap<&str, usize> = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.id.as_str(), i))
        .collect();
    let edges = resolve_connections(&index, connections)?;
    let roles: Vec<Role> = types.iter().map(|t| t.role).collect();
    check_roles_present(&roles)?;
    check_degrees(nodes, types, &edges)?;
    check_acyclic(nodes, &edges)?;
    check_on_a_path(nodes, &roles, &edges)?;
    check_clips_feed_renders(nodes, types, &edges)?;
    check_analysis_once_per_path(nodes, types, &edges)
}

/// Turns connections into index pairs, refusing unknown ids, self-loops and duplicates.
fn resolve_connections(
    index: &HashMap<&str, usize>,
    connections: &[Connection],
) -> Result<Vec<(usize, usize)>, GraphError> {
    let mut seen = HashSet::new();
    let mut edges = Vec::with_capacity(connections.len());
    for conn in connections {
        let endpoint = |id: &str, side: &str| {
            index.get(id).copied().ok_or_else(|| {
                GraphError::Invalid(format!(
                    "connection {side} {id:?} is not a node of this agent"
                ))
            })
        };
        let edge = (
            endpoint(&conn.source, "source")?,
            endpoint(&conn.target, "target")?,
        );
        if edge.0 == edge.1 {
            return invalid(format!(
                "{} is connected to itself",
                node_label(&conn.source)
            ));
        }
        if !seen.insert(edge) {
            return invalid(format!(
                "the connection from {:?} to {:?} is listed more than once",
                conn.source, conn.target
            ));
        }
        edges.push(edge);
    }
    Ok(edges)
}

fn check_roles_present(roles: &[Role]) -> Result<(), GraphError> {
    if !roles.contains(&Role::Input) {
        return invalid("an agent needs at least one video_input node".into());
    }
    if !roles.contains(&Role::Output) {
        return invalid("an agent needs at least one render node".into());
    }
    Ok(())
}

fn check_degrees(
    nodes: &[NodeSpec],
    types: &[&NodeType],
    edges: &[(usize, usize)],
) -> Result<(), GraphError> {
    let mut incoming = vec![0usize; nodes.len()];
    let mut outgoing = vec![0usize; nodes.len()];
    for &(s, t) in edges {
        outgoing[s] += 1;
        incoming[t] += 1;
    }
    for (i, (node, ty)) in nodes.iter().zip(types).enumerate() {
        let label = node_label(&node.id);
        match (ty.role, incoming[i]) {
            (Role::Input, 0) => {}
            (Role::Input, _) => {
                return invalid(format!(
                    "{label}: a {} cannot have incoming connections",
                    ty.name
                ));
            }
            (_, 0) => return invalid(format!("{label}: has no incoming connection")),
            (Role::Join, 1) => {
                return invalid(format!(
                    "{label}: a {} needs at least two incoming connections (got 1)",
                    ty.name
                ));
            }
            (Role::Join, _) => {}
            (_, 1) => {}
            (_, n) => {
                return invalid(format!(
                    "{label}: has {n} incoming connections; a {} takes exactly one",
                    ty.name
                ));
            }
        }
        if ty.role == Role::Output && outgoing[i] > 0 {
            return invalid(format!(
                "{label}: a {} cannot have outgoing connections",
                ty.name
            ));
        }
    }
    Ok(())
}

/// Kahn's algorithm: whatever cannot be ordered sits on a cycle.
fn check_acyclic(nodes: &[NodeSpec], edges: &[(usize, usize)]) -> Result<(), GraphError> {
    let mut incoming = vec![0usize; nodes.len()];
    for &(_, t) in edges {
        incoming[t] += 1;
    }
    let mut ready: Vec<usize> = (0..nodes.len()).filter(|&i| incoming[i] == 0).collect();
    let mut ordered = 0;
    while let Some(node) = ready.pop() {
        ordered += 1;
        for &(s, t) in edges {
            if s == node {
                incoming[t] -= 1;
                if incoming[t] == 0 {
                    ready.push(t);
                }
            }
        }
    }
    if ordered == nodes.len() {
        return Ok(());
    }
    let on_cycle = (0..nodes.len())
        .find(|&i| incoming[i] > 0)
        .map_or("?", |i| nodes[i].id.as_str());
    invalid(format!("the graph has a cycle through node {on_cycle:?}"))
}

/// Every node must be reachable from a video_input and reach a render.
fn check_on_a_path(
    nodes: &[NodeSpec],
    roles: &[Role],
    edges: &[(usize, usize)],
) -> Result<(), GraphError> {
    let from_input = reachable(roles, Role::Input, edges.iter().copied());
    let to_render = reachable(roles, Role::Output, edges.iter().map(|&(s, t)| (t, s)));
    for (i, node) in nodes.iter().enumerate() {
        if !from_input[i] || !to_render[i] {
            return invalid(format!(
                "{}: not on a path from a video_input to a render",
                node_label(&node.id)
            ));
        }
    }
    Ok(())
}

/// `clips` must sit directly before renders: its clips are the outputs.
fn check_clips_feed_renders(
    nodes: &[NodeSpec],
    types: &[&NodeType],
    edges: &[(usize, usize)],
) -> Result<(), GraphError> {
    for &(s, t) in edges {
        if types[s].name == "clips" && types[t].role != Role::Output {
            return invalid(format!(
                "{}: a clips node connects only to render nodes (it feeds {:?}, a {})",
                node_label(&nodes[s].id),
                nodes[t].id,
                types[t].name
            ));
        }
    }
    Ok(())
}

/// Node types whose analysis happens in the one analysis pass of a render:
/// two of the same kind on one path would be measured on the same audio.
const ONCE_PER_PATH: &[&str] = &["remove_silence", "normalize_audio"];

fn check_analysis_once_per_path(
    nodes: &[NodeSpec],
    types: &[&NodeType],
    edges: &[(usize, usize)],
) -> Result<(), GraphError> {
    for (i, ty) in types.iter().enumerate() {
        if !ONCE_PER_PATH.contains(&ty.name) {
            continue;
        }
        let ancestors = ancestors_of(i, nodes.len(), edges);
        let earlier = (0..nodes.len()).find(|&a| ancestors[a] && types[a].name == ty.name);
        if let Some(earlier) = earlier {
            return invalid(format!(
                "{}: a {} cannot follow another one ({:?}) on the same path",
                node_label(&nodes[i].id),
                ty.name,
                nodes[earlier].id
            ));
        }
    }
    Ok(())
}

/// Which nodes lead to `node` (itself excluded) in an acyclic graph.
fn ancestors_of(node: usize, count: usize, edges: &[(usize, usize)]) -> Vec<bool> {
    let mut seen = vec![false; count];
    let mut stack = vec![node];
    while let Some(current) = stack.pop() {
        for &(s, t) in edges {
            if t == current && !seen[s] {
                seen[s] = true;
                stack.push(s);
            }
        }
    }
    seen
}

/// Nodes reachable from any node with role `start` along `edges`.
fn reachable(
    roles: &[Role],
    start: Role,
    edges: impl Iterator<Item = (usize, usize)> + Clone,
) -> Vec<bool> {
    let mut seen: Vec<bool> = roles.iter().map(|&r| r == start).collect();
    let mut stack: Vec<usize> = (0..roles.len()).filter(|&i| seen[i]).collect();
    while let Some(node) = stack.pop() {
        for (s, t) in edges.clone() {
            if s == node && !seen[t] {
                seen[t] = true;
                stack.push(t);
            }
        }
    }
    seen
}

fn invalid<T>(message: String) -> Result<T, GraphError> {
    Err(GraphError::Invalid(message))
}
