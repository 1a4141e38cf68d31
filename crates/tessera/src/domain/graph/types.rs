//! The model of the node type table (roles, parameters, kinds, defaults),
//! type lookup and the catalogue served by `GET /node_types`. The table
//! itself is in `table.rs`.

use serde::Serialize;
use serde_json::{Map, Value};

use super::table::NODE_TYPES;
use super::{GraphError, node_label};

/// Where a node type may sit in a graph.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Role {
    /// Entry point: no incoming edge.
    Input,
    /// Exactly one incoming edge, at least one outgoing edge.
    Transform,
    /// Two or more incoming edges (joined in connection order), at least one
    /// outgoing edge.
    Join,
    /// Produces an output: one incoming edge, no outgoing edge.
    Output,
}

impl Role {
    fn as_str(self) -> &'static str {
        match self {
            Role::Input => "input",
            Role::Transform => "transform",
            Role::Join => "join",
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
    Integer {
        min: i64,
        max: i64,
    },
    /// Any JSON number (integer or not).
    Number {
        min: f64,
        max: f64,
    },
    Choice(&'static [&'static str]),
    /// A string of `min_chars..=max_chars` characters.
    Text {
        min_chars: usize,
        max_chars: usize,
    },
    /// An SRT or WebVTT document of at most `max_bytes`; a document that
    /// does not parse is malformed (400), naming the line.
    Subtitles {
        max_bytes: usize,
    },
}

/// What a parameter is when the caller leaves it out.
pub(super) enum Default {
    /// The caller must give it.
    Required,
    /// Left out of `params_used`; the meaning of "absent" is in `describe`.
    Absent {
        describe: &'static str,
    },
    Int(i64),
    Float(f64),
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
pub fn catalogue() -> Catalogue {
    Catalogue {
        node_types: NODE_TYPES.iter().map(type_info).collect(),
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Catalogue {
    pub node_types: Vec<NodeTypeInfo>,
}

/// One node type of the catalogue.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct NodeTypeInfo {
    /// The `type` to use in a node.
    #[serde(rename = "type")]
    pub name: &'static str,
    /// `input`, `process` or `output`.
    pub role: &'static str,
    pub description: &'static str,
    pub params: Vec<ParamInfo>,
}

/// One parameter of a node type.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ParamInfo {
    pub name: &'static str,
    /// `integer`, `number` or `string`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<f64>)]
    pub min: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<f64>)]
    pub max: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed_values: Option<Vec<&'static str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_length: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_length: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_bytes: Option<usize>,
    /// The default value (`null` when required or computed; see `default_description`).
    pub default: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_description: Option<&'static str>,
    pub required: bool,
    pub description: &'static str,
}

fn type_info(ty: &NodeType) -> NodeTypeInfo {
    NodeTypeInfo {
        name: ty.name,
        role: ty.role.as_str(),
        description: ty.description,
        params: ty.params.iter().map(param_info).collect(),
    }
}

fn param_info(spec: &ParamSpec) -> ParamInfo {
    let (default, default_description) = match &spec.default {
        Default::Required => (Value::Null, None),
        Default::Absent { describe } => (Value::Null, Some(*describe)),
        Default::Int(v) => (Value::from(*v), None),
        Default::Float(v) => (Value::from(*v), None),
        Default::Str(v) => (Value::from(*v), None),
        Default::Follows { describe, .. } => (Value::Null, Some(*describe)),
    };
    let mut info = ParamInfo {
        name: spec.name,
        kind: "string",
        min: None,
        max: None,
        allowed_values: None,
        min_length: None,
        max_length: None,
        format: None,
        max_bytes: None,
        default,
        default_description,
        required: matches!(spec.default, Default::Required),
        description: spec.description,
    };
    match spec.kind {
        Kind::Integer { min, max } => {
            info.kind = "integer";
            (info.min, info.max) = (Some(min.into()), Some(max.into()));
        }
        Kind::Number { min, max } => {
            info.kind = "number";
            (info.min, info.max) = (Some(min.into()), Some(max.into()));
        }
        Kind::Choice(values) => info.allowed_values = Some(values.to_vec()),
        Kind::Text {
            min_chars,
            max_chars,
        } => (info.min_length, info.max_length) = (Some(min_chars), Some(max_chars)),
        Kind::Subtitles { max_bytes } => {
            info.format = Some("srt or webvtt");
            info.max_bytes = Some(max_bytes);
        }
    }
    info
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn types() -> Vec<Value> {
        serde_json::to_value(catalogue()).expect("serialises")["node_types"]
            .as_array()
            .expect("array")
            .clone()
    }

    fn of_type(name: &str) -> Value {
        types()
            .into_iter()
            .find(|t| t["type"] == name)
            .unwrap_or_else(|| panic!("{name} missing"))
    }

    fn param(ty: &str, name: &str) -> Value {
        of_type(ty)["params"]
            .as_array()
            .expect("params")
            .iter()
            .find(|p| p["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("{ty}.{name} missing"))
    }

    #[test]
    fn catalogue_lists_every_type_of_the_product_in_order() {
        let names: Vec<_> = types()
            .iter()
            .map(|t| t["type"].as_str().unwrap_or_default().to_owned())
            .collect();
        assert_eq!(
            names,
            [
                "video_input",
                "trim",
                "reframe",
                "resize",
                "speed",
                "remove_silence",
                "normalize_audio",
                "text_overlay",
                "captions",
                "clips",
                "concat",
                "render"
            ]
        );
    }

    #[test]
    fn every_param_has_a_type_a_default_entry_and_a_description() {
        for ty in types() {
            assert!(ty["description"].as_str().is_some_and(|d| !d.is_empty()));
            for p in ty["params"].as_array().expect("params") {
                assert!(p["type"].is_string(), "{p}");
                assert!(p.get("default").is_some(), "{p}");
                assert!(p["required"].is_boolean(), "{p}");
                assert!(p["description"].as_str().is_some_and(|d| !d.is_empty()));
            }
        }
    }

    #[test]
    fn render_params_show_limits_defaults_and_allowed_values() {
        let render = of_type("render");
        assert_eq!(render["role"], "output");
        let crf = param("render", "crf");
        assert_eq!(
            (&crf["type"], &crf["default"], &crf["min"], &crf["max"]),
            (&json!("integer"), &json!(23), &json!(0), &json!(51))
        );
        assert_eq!(
            param("render", "format")["allowed_values"],
            json!(["mp4", "webm"])
        );
    }

    #[test]
    fn catalogue_explains_defaults_that_are_not_constants() {
        let end_ms = param("trim", "end_ms");
        assert_eq!(end_ms["default"], Value::Null);
        assert_eq!(end_ms["default_description"], "end of the video");
    }

    #[test]
    fn required_params_and_number_ranges_are_shown() {
        let factor = param("speed", "factor");
        assert_eq!(factor["required"], true);
        assert_eq!(factor["type"], "number");
        assert_eq!(
            (&factor["min"], &factor["max"]),
            (&json!(0.25), &json!(4.0))
        );
        let text = param("text_overlay", "text");
        assert_eq!(text["required"], true);
        assert_eq!(
            (&text["min_length"], &text["max_length"]),
            (&json!(1), &json!(500))
        );
        assert_eq!(param("captions", "subtitles")["max_bytes"], 1_000_000);
        assert_eq!(param("normalize_audio", "target_lufs")["default"], -14.0);
        assert_eq!(of_type("concat")["role"], "join");
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
