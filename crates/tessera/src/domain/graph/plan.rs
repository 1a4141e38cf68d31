//! Turns a validated graph into render plans: one per `render` node, with
//! the tree of sources that feeds it.

use serde_json::{Map, Value};

use super::model::{
    AspectRatio, ClipSpec, Format, Position, ReframeMode, RenderParams, RenderPlan, Source, Step,
    VideoCodec,
};
use super::subtitles::parse_subtitles;
use super::{AgentGraph, NodeSpec};

/// The ids of the `video_input` nodes (the input slots), in node order.
/// The one `video_input` node of a single-input agent, or `None` when the
/// agent has none or several (schedules and YouTube triggers need exactly one).
pub fn single_input(graph: &AgentGraph) -> Option<String> {
    match input_nodes(graph).as_slice() {
        [only] => Some(only.clone()),
        _ => None,
    }
}

pub fn input_nodes(graph: &AgentGraph) -> Vec<String> {
    graph
        .nodes
        .iter()
        .filter(|n| n.node_type == "video_input")
        .map(|n| n.id.clone())
        .collect()
}

/// One plan per `render` node, in node order.
///
/// Expects a graph from [`super::validate`] (or the override functions):
/// params are read with their documented defaults and nothing is re-checked.
/// Because every node but `concat` has one parent, the nodes feeding a
/// render form a tree, branching only at `concat` (parts in connection
/// order).
pub fn render_plans(graph: &AgentGraph) -> Vec<RenderPlan> {
    graph
        .nodes
        .iter()
        .filter(|n| n.node_type == "render")
        .filter_map(|render| plan_for(graph, render))
        .collect()
}

fn plan_for(graph: &AgentGraph, render: &NodeSpec) -> Option<RenderPlan> {
    let mut feeding = parent(graph, &render.id)?;
    let clips = if feeding.node_type == "clips" {
        let spec = clip_spec(feeding);
        feeding = parent(graph, &feeding.id)?;
        Some(spec)
    } else {
        None
    };
    Some(RenderPlan {
        render_node: render.id.clone(),
        source: source_of(graph, feeding, 0)?,
        render: render_params(&render.params),
        clips,
    })
}

/// The tree rooted at `node`. `depth` keeps a hand-built cyclic graph finite.
fn source_of(graph: &AgentGraph, node: &NodeSpec, depth: usize) -> Option<Source> {
    if depth > graph.nodes.len() {
        return None;
    }
    match node.node_type.as_str() {
        "video_input" => Some(Source::Input(node.id.clone())),
        "concat" => {
            let parts = parents(graph, &node.id)
                .map(|p| source_of(graph, p, depth + 1))
                .collect::<Option<Vec<_>>>()?;
            Some(Source::Concat {
                node: node.id.clone(),
                parts,
            })
        }
        _ => {
            let from = source_of(graph, parent(graph, &node.id)?, depth + 1)?;
            // A node type without an effect on the video passes it through.
            Some(match step_for(node) {
                Some(step) => Source::Step {
                    from: Box::new(from),
                    node: node.id.clone(),
                    step,
                },
                None => from,
            })
        }
    }
}

/// The nodes feeding `id`, in the order of the connections.
fn parents<'g>(graph: &'g AgentGraph, id: &'g str) -> impl Iterator<Item = &'g NodeSpec> {
    graph
        .connections
        .iter()
        .filter(move |c| c.target == id)
        .filter_map(|c| graph.nodes.iter().find(|n| n.id == c.source))
}

fn parent<'g>(graph: &'g AgentGraph, id: &'g str) -> Option<&'g NodeSpec> {
    parents(graph, id).next()
}

fn step_for(node: &NodeSpec) -> Option<Step> {
    let p = &node.params;
    Some(match node.node_type.as_str() {
        "trim" => Step::Trim {
            start_ms: uint(p, "start_ms").unwrap_or(0),
            end_ms: uint(p, "end_ms"),
        },
        "resize" => Step::Resize {
            width: dim(p, "width"),
            height: dim(p, "height"),
        },
        "reframe" => Step::Reframe {
            aspect: aspect_ratio(text(p, "aspect_ratio")),
            mode: match text(p, "mode") {
                Some("pad") => ReframeMode::Pad,
                _ => ReframeMode::Crop,
            },
        },
        "speed" => Step::Speed {
            factor: float(p, "factor").unwrap_or(1.0),
        },
        "remove_silence" => Step::RemoveSilence {
            threshold_db: float(p, "threshold_db").unwrap_or(-35.0),
            min_silence_ms: uint(p, "min_silence_ms").unwrap_or(700),
            padding_ms: uint(p, "padding_ms").unwrap_or(100),
        },
        "normalize_audio" => Step::NormalizeAudio {
            target_lufs: float(p, "target_lufs").unwrap_or(-14.0),
        },
        "text_overlay" => Step::TextOverlay {
            text: text(p, "text").unwrap_or_default().to_owned(),
            position: position(text(p, "position")),
            font_size: dim(p, "font_size").unwrap_or(48),
        },
        "captions" => Step::Captions {
            // Validation parsed the same text, so this cannot fail here.
            cues: parse_subtitles(text(p, "subtitles").unwrap_or_default()).unwrap_or_default(),
            font_size: dim(p, "font_size").unwrap_or(36),
        },
        _ => return None,
    })
}

fn clip_spec(node: &NodeSpec) -> ClipSpec {
    let p = &node.params;
    ClipSpec {
        node: node.id.clone(),
        clip_duration_ms: uint(p, "clip_duration_s").unwrap_or(30) * 1000,
        max_clips: dim(p, "max_clips").unwrap_or(10),
    }
}

fn aspect_ratio(value: Option<&str>) -> AspectRatio {
    let (width, height) = match value {
        Some("1:1") => (1, 1),
        Some("4:5") => (4, 5),
        Some("16:9") => (16, 9),
        _ => (9, 16),
    };
    AspectRatio { width, height }
}

fn position(value: Option<&str>) -> Position {
    match value {
        Some("top") => Position::Top,
        Some("center") => Position::Center,
        Some("top_left") => Position::TopLeft,
        Some("top_right") => Position::TopRight,
        Some("bottom_left") => Position::BottomLeft,
        Some("bottom_right") => Position::BottomRight,
        _ => Position::Bottom,
    }
}

fn render_params(p: &Map<String, Value>) -> RenderParams {
    let format = match text(p, "format") {
        Some("webm") => Format::Webm,
        _ => Format::Mp4,
    };
    let video_codec = match text(p, "video_codec") {
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

fn text<'p>(p: &'p Map<String, Value>, name: &str) -> Option<&'p str> {
    p.get(name).and_then(Value::as_str)
}

fn float(p: &Map<String, Value>, name: &str) -> Option<f64> {
    p.get(name).and_then(Value::as_f64)
}

fn uint(p: &Map<String, Value>, name: &str) -> Option<u64> {
    p.get(name).and_then(Value::as_u64)
}

fn dim(p: &Map<String, Value>, name: &str) -> Option<u32> {
    uint(p, name).and_then(|v| u32::try_from(v).ok())
}
