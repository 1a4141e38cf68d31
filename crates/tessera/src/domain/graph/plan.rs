//! Turns a validated graph into render plans: one per path from a
//! `video_input` to a `render` node.

use serde_json::{Map, Value};

use super::{AgentGraph, Format, NodeSpec, RenderParams, RenderPlan, Step, VideoCodec};

/// One plan per path from a `video_input` to a `render` node, in node order
/// of the inputs and connection order below them.
///
/// Expects a graph from [`super::validate`] (or the override functions):
/// params are read with their documented defaults and nothing is re-checked.
pub fn render_plans(graph: &AgentGraph) -> Vec<RenderPlan> {
    let mut plans = Vec::new();
    for input in graph.nodes.iter().filter(|n| n.node_type == "video_input") {
        let mut path = vec![input];
        collect_paths(graph, &mut path, &mut plans);
    }
    plans
}

/// Depth-first walk; `path` starts at an input and ends at the current node.
fn collect_paths<'g>(
    graph: &'g AgentGraph,
    path: &mut Vec<&'g NodeSpec>,
    plans: &mut Vec<RenderPlan>,
) {
    let Some(current) = path.last() else { return };
    if current.node_type == "render" {
        plans.push(plan_for(path));
        return;
    }
    let current_id = current.id.clone();
    for conn in graph.connections.iter().filter(|c| c.source == current_id) {
        // A validated graph is acyclic; the check keeps a hand-built one finite.
        let Some(next) = graph.nodes.iter().find(|n| n.id == conn.target) else {
            continue;
        };
        if path.iter().any(|n| n.id == next.id) {
            continue;
        }
        path.push(next);
        collect_paths(graph, path, plans);
        path.pop();
    }
}

/// Builds the plan of a path that starts at an input and ends at a render.
fn plan_for(path: &[&NodeSpec]) -> RenderPlan {
    let (first, last) = (path[0], path[path.len() - 1]);
    RenderPlan {
        input_node: first.id.clone(),
        render_node: last.id.clone(),
        steps: path[1..path.len() - 1]
            .iter()
            .filter_map(|n| step_for(n))
            .collect(),
        render: render_params(&last.params),
    }
}

fn step_for(node: &NodeSpec) -> Option<Step> {
    let p = &node.params;
    match node.node_type.as_str() {
        "trim" => Some(Step::Trim {
            start_ms: uint(p, "start_ms").unwrap_or(0),
            end_ms: uint(p, "end_ms"),
        }),
        "resize" => Some(Step::Resize {
            width: dim(p, "width"),
            height: dim(p, "height"),
        }),
        _ => None,
    }
}

fn render_params(p: &Map<String, Value>) -> RenderParams {
    let format = match p.get("format").and_then(Value::as_str) {
        Some("webm") => Format::Webm,
        _ => Format::Mp4,
    };
    let video_codec = match p.get("video_codec").and_then(Value::as_str) {
        Some("vp9") => VideoCodec::Vp9,
        Some("h264") => VideoCodec::H264,
        _ if format == Format::Webm => VideoCodec::Vp9,
        _ => VideoCodec::H264,
    };
    RenderParams {
        format,
        video_codec,
        crf: uint(p, "crf")
            .and_then(|v| u8::try_from(v).ok())
            .unwrap_or(23),
        max_height: dim(p, "max_height"),
    }
}

fn uint(p: &Map<String, Value>, name: &str) -> Option<u64> {
    p.get(name).and_then(Value::as_u64)
}

fn dim(p: &Map<String, Value>, name: &str) -> Option<u32> {
    uint(p, name).and_then(|v| u32::try_from(v).ok())
}
