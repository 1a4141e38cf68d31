//! The node type table: every type, its role in a graph and its parameters,
//! plus the catalogue served by `GET /node_types`.

use serde_json::{Map, Value, json};

use super::{GraphError, node_label};

/// Where a node type may sit in a graph.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Role {
    /// Entry point: no incoming edge.
    Input,
    /// Exactly one incoming edge, at least one outgoing edge.
    Transform,
    /// Produces an output: one incoming edge, no outgoing edge.
    Output,
}

impl Role {
    fn as_str(self) -> &'static str {
        match self {
            Role::Input => "input",
            Role::Transform => "transform",
            Role::Output => "output",
        }
    }
}

/// One node type of the table.
pub(super) struct NodeType {
    pub name: &'static str,
    pub role: Role,
    pub description: &'static str,
    pub params: &'static [ParamSpec],
    /// Rules between parameters, run on the completed params.
    pub check: fn(&str, &Map<String, Value>) -> Result<(), GraphError>,
}

impl NodeType {
    pub fn param(&self, name: &str) -> Option<&'static ParamSpec> {
        self.params.iter().find(|p| p.name == name)
    }
}

/// One parameter of a node type.
pub(super) struct ParamSpec {
    pub name: &'static str,
    pub kind: Kind,
    pub default: Default,
    pub description: &'static str,
}

/// The JSON type of a parameter and its allowed range.
pub(super) enum Kind {
    Integer { min: i64, max: i64 },
    Choice(&'static [&'static str]),
}

/// What a parameter is when the caller leaves it out.
pub(super) enum Default {
    /// Left out of `params_used`; the meaning of "absent" is in `describe`.
    Absent {
        describe: &'static str,
    },
    Int(i64),
    Str(&'static str),
    /// Derived from another parameter of the same node; re-derived when that
    /// parameter is overridden alone.
    Follows {
        param: &'static str,
        derive: fn(&Map<String, Value>) -> Value,
        describe: &'static str,
    },
}

/// Looks a node type up by name.
pub(super) fn lookup(node_id: &str, name: &str) -> Result<&'static NodeType, GraphError> {
    NODE_TYPES.iter().find(|t| t.name == name).ok_or_else(|| {
        let known: Vec<_> = NODE_TYPES.iter().map(|t| t.name).collect();
        GraphError::Invalid(format!(
            "{}: unknown node type {name:?} (known types: {})",
            node_label(node_id),
            known.join(", ")
        ))
    })
}

/// The catalogue served by `GET /node_types`: `{"node_types": [...]}`, each
/// type with its role and parameters (name, type, default, limits or allowed
/// values, required, description).
pub fn catalogue() -> Value {
    let node_types: Vec<Value> = NODE_TYPES.iter().map(type_json).collect();
    json!({ "node_types": node_types })
}

fn type_json(ty: &NodeType) -> Value {
    let params: Vec<Value> = ty.params.iter().map(param_json).collect();
    json!({
        "type": ty.name,
        "role": ty.role.as_str(),
        "description": ty.description,
        "params": params,
    })
}

fn param_json(spec: &ParamSpec) -> Value {
    let mut out = Map::new();
    out.insert("name".into(), spec.name.into());
    match spec.kind {
        Kind::Integer { min, max } => {
            out.insert("type".into(), "integer".into());
            out.insert("min".into(), min.into());
            out.insert("max".into(), max.into());
        }
        Kind::Choice(values) => {
            out.insert("type".into(), "string".into());
            out.insert("allowed_values".into(), values.to_vec().into());
        }
    }
    let (default, default_description) = match &spec.default {
        Default::Absent { describe } => (Value::Null, Some(*describe)),
        Default::Int(v) => (Value::from(*v), None),
        Default::Str(v) => (Value::from(*v), None),
        Default::Follows { describe, .. } => (Value::Null, Some(*describe)),
    };
    out.insert("default".into(), default);
    if let Some(text) = default_description {
        out.insert("default_description".into(), text.into());
    }
    out.insert("required".into(), false.into());
    out.insert("description".into(), spec.description.into());
    Value::Object(out)
}

/// The node types. Order is the catalogue order.
static NODE_TYPES: &[NodeType] = &[
    NodeType {
        name: "video_input",
        role: Role::Input,
        description: "Entry point: one input video slot.",
        params: &[],
        check: no_rules,
    },
    NodeType {
        name: "trim",
        role: Role::Transform,
        description: "Keep the span from start_ms to end_ms.",
        params: TRIM_PARAMS,
        check: check_trim,
    },
    NodeType {
        name: "resize",
        role: Role::Transform,
        description: "Scale keeping the aspect ratio; with both width and height, fit inside that box.",
        params: RESIZE_PARAMS,
        check: check_resize,
    },
    NodeType {
        name: "render",
        role: Role::Output,
        description: "Encode one output. Every path from a video_input to a render is one output.",
        params: RENDER_PARAMS,
        check: check_render,
    },
];

static TRIM_PARAMS: &[ParamSpec] = &[
    ParamSpec {
        name: "start_ms",
        kind: Kind::Integer {
            min: 0,
            max: i64::MAX,
        },
        default: Default::Int(0),
        description: "Start of the kept span, in milliseconds from the start of the video.",
    },
    ParamSpec {
        name: "end_ms",
        kind: Kind::Integer {
            min: 1,
            max: i64::MAX,
        },
        default: Default::Absent {
            describe: "end of the video",
        },
        description: "End of the kept span, in milliseconds; must be greater than start_ms. Clamped to the end of the video.",
    },
];

static RESIZE_PARAMS: &[ParamSpec] = &[
    ParamSpec {
        name: "width",
        kind: Kind::Integer { min: 16, max: 7680 },
        default: Default::Absent {
            describe: "follows from height and the aspect ratio",
        },
        description: "Target width in pixels. Give width, height or both.",
    },
    ParamSpec {
        name: "height",
        kind: Kind::Integer { min: 16, max: 7680 },
        default: Default::Absent {
            describe: "follows from width and the aspect ratio",
        },
        description: "Target height in pixels. Give width, height or both.",
    },
];

static RENDER_PARAMS: &[ParamSpec] = &[
    ParamSpec {
        name: "format",
        kind: Kind::Choice(&["mp4", "webm"]),
        default: Default::Str("mp4"),
        description: "Output container.",
    },
    ParamSpec {
        name: "video_codec",
        kind: Kind::Choice(&["h264", "vp9"]),
        default: Default::Follows {
            param: "format",
            derive: codec_for_format,
            describe: "h264 for mp4, vp9 for webm",
        },
        description: "Video codec: h264 with mp4, vp9 with webm.",
    },
    ParamSpec {
        name: "crf",
        kind: Kind::Integer { min: 0, max: 51 },
        default: Default::Int(23),
        description: "Constant rate factor: lower is better quality and larger files.",
    },
    ParamSpec {
        name: "max_height",
        kind: Kind::Integer {
            min: 144,
            max: 4320,
        },
        default: Default::Absent { describe: "no cap" },
        description: "Scale down (keeping the aspect ratio) when the video is taller than this.",
    },
];

fn no_rules(_: &str, _: &Map<String, Value>) -> Result<(), GraphError> {
    Ok(())
}

fn check_trim(node_id: &str, params: &Map<String, Value>) -> Result<(), GraphError> {
    let start = params.get("start_ms").and_then(Value::as_u64).unwrap_or(0);
    match params.get("end_ms").and_then(Value::as_u64) {
        Some(end) if end <= start => Err(GraphError::OutOfRange(format!(
            "{}: end_ms must be greater than start_ms (got start_ms {start}, end_ms {end})",
            node_label(node_id)
        ))),
        _ => Ok(()),
    }
}

fn check_resize(node_id: &str, params: &Map<String, Value>) -> Result<(), GraphError> {
    if params.contains_key("width") || params.contains_key("height") {
        return Ok(());
    }
    Err(GraphError::Invalid(format!(
        "{}: resize needs width, height or both",
        node_label(node_id)
    )))
}

fn check_render(node_id: &str, params: &Map<String, Value>) -> Result<(), GraphError> {
    let format = params
        .get("format")
        .and_then(Value::as_str)
        .unwrap_or("mp4");
    let codec = params.get("video_codec").and_then(Value::as_str);
    let expected = codec_for_format(params);
    match codec {
        Some(codec) if Some(codec) != expected.as_str() => Err(GraphError::OutOfRange(format!(
            "{}: video_codec {codec:?} cannot be used with format {format:?} (use {expected})",
            node_label(node_id)
        ))),
        _ => Ok(()),
    }
}

/// The only codec each container is offered with.
fn codec_for_format(params: &Map<String, Value>) -> Value {
    match params.get("format").and_then(Value::as_str) {
        Some("webm") => "vp9".into(),
        _ => "h264".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_lists_every_type_with_its_params() {
        let cat = catalogue();
        let types = cat["node_types"].as_array().expect("array");
        let names: Vec<_> = types.iter().map(|t| t["type"].as_str()).collect();
        assert_eq!(
            names,
            [
                Some("video_input"),
                Some("trim"),
                Some("resize"),
                Some("render")
            ]
        );
        let render = &types[3];
        assert_eq!(render["role"], "output");
        let crf = &render["params"][2];
        assert_eq!(crf["name"], "crf");
        assert_eq!(crf["type"], "integer");
        assert_eq!(crf["default"], 23);
        assert_eq!(crf["min"], 0);
        assert_eq!(crf["max"], 51);
        let format = &render["params"][0];
        assert_eq!(format["allowed_values"], json!(["mp4", "webm"]));
    }

    #[test]
    fn catalogue_explains_defaults_that_are_not_constants() {
        let cat = catalogue();
        let end_ms = &cat["node_types"][1]["params"][1];
        assert_eq!(end_ms["name"], "end_ms");
        assert_eq!(end_ms["default"], Value::Null);
        assert_eq!(end_ms["default_description"], "end of the video");
    }

    #[test]
    fn unknown_type_names_the_node_and_the_known_types() {
        let Err(GraphError::Invalid(msg)) = lookup("x", "blur") else {
            panic!("expected Invalid");
        };
        assert!(msg.contains("node \"x\""), "{msg}");
        assert!(msg.contains("render"), "{msg}");
    }
}
