//! Node parameters: shape checks (known names, JSON types), range checks and
//! completion with defaults.
//!
//! `null` means "not set" for every parameter: the default applies, which
//! lets a per-run override clear an optional value such as `end_ms`.

use serde_json::{Map, Value};

use super::subtitles::parse_subtitles;
use super::types::{Default, Kind, NodeType, ParamSpec};
use super::{GraphError, node_label};

/// Refuses unknown parameters and values of the wrong JSON type (400).
pub(super) fn check_shape(
    node_id: &str,
    ty: &NodeType,
    params: &Map<String, Value>,
) -> Result<(), GraphError> {
    for (name, value) in params {
        let spec = ty
            .param(name)
            .ok_or_else(|| unknown_param(node_id, ty, name))?;
        if !value.is_null() {
            check_type(node_id, spec, value)?;
        }
    }
    Ok(())
}

/// Checks ranges and the type's cross-parameter rules and returns the params
/// completed with defaults. Runs [`check_shape`] first, so it is safe on
/// unchecked input.
pub(super) fn complete(
    node_id: &str,
    ty: &NodeType,
    params: &Map<String, Value>,
) -> Result<Map<String, Value>, GraphError> {
    check_shape(node_id, ty, params)?;
    let mut out = Map::new();
    for spec in ty.params {
        match params.get(spec.name) {
            Some(value) if !value.is_null() => {
                check_range(node_id, spec, value)?;
                out.insert(spec.name.into(), value.clone());
            }
            _ => fill_constant_default(node_id, spec, &mut out)?,
        }
    }
    // Derived defaults read other completed params, so they come second.
    for spec in ty.params {
        if let Default::Follows { derive, .. } = spec.default
            && !out.contains_key(spec.name)
        {
            out.insert(spec.name.into(), derive(&out));
        }
    }
    (ty.check)(node_id, &out)?;
    Ok(out)
}

fn fill_constant_default(
    node_id: &str,
    spec: &ParamSpec,
    out: &mut Map<String, Value>,
) -> Result<(), GraphError> {
    let value = match spec.default {
        Default::Int(v) => v.into(),
        Default::Float(v) => v.into(),
        Default::Str(v) => v.into(),
        Default::Absent { .. } | Default::Follows { .. } => return Ok(()),
        Default::Required => {
            return Err(GraphError::Invalid(format!(
                "{}: {} is required",
                node_label(node_id),
                spec.name
            )));
        }
    };
    out.insert(spec.name.into(), value);
    Ok(())
}

fn unknown_param(node_id: &str, ty: &NodeType, name: &str) -> GraphError {
    let known: Vec<_> = ty.params.iter().map(|p| p.name).collect();
    let hint = if known.is_empty() {
        "it takes no parameters".to_owned()
    } else {
        format!("known: {}", known.join(", "))
    };
    GraphError::Invalid(format!(
        "{}: unknown parameter {name:?} for type {} ({hint})",
        node_label(node_id),
        ty.name
    ))
}

fn check_type(node_id: &str, spec: &ParamSpec, value: &Value) -> Result<(), GraphError> {
    let (ok, expected) = match spec.kind {
        // Integers only: 1.5 is malformed, and so is 1e3 (serde reads it as a float).
        Kind::Integer { .. } => (value.is_i64() || value.is_u64(), "an integer"),
        Kind::Number { .. } => (value.is_number(), "a number"),
        Kind::Choice(_) | Kind::Text { .. } | Kind::Subtitles { .. } => {
            (value.is_string(), "a string")
        }
    };
    if !ok {
        return Err(GraphError::Invalid(format!(
            "{}: {} must be {expected}",
            node_label(node_id),
            spec.name
        )));
    }
    match (&spec.kind, value.as_str()) {
        // A document over the size limit is a range error, reported later
        // without parsing it.
        (Kind::Subtitles { max_bytes }, Some(text)) if text.len() <= *max_bytes => {
            parse_subtitles(text).map(drop).map_err(|e| {
                GraphError::Invalid(format!("{}: {}: {e}", node_label(node_id), spec.name))
            })
        }
        _ => Ok(()),
    }
}

fn check_range(node_id: &str, spec: &ParamSpec, value: &Value) -> Result<(), GraphError> {
    let out_of_range = |limits: String, got: String| {
        Err(GraphError::OutOfRange(format!(
            "{}: {} must be {limits} (got {got})",
            node_label(node_id),
            spec.name,
        )))
    };
    match spec.kind {
        Kind::Integer { min, max } => {
            // A u64 beyond i64::MAX is above every maximum we have.
            let in_range = value.as_i64().is_some_and(|v| (min..=max).contains(&v));
            if in_range {
                return Ok(());
            }
            let limits = if max == i64::MAX {
                format!("at least {min}")
            } else {
                format!("between {min} and {max}")
            };
            out_of_range(limits, value.to_string())
        }
        Kind::Number { min, max } => {
            if value.as_f64().is_some_and(|v| (min..=max).contains(&v)) {
                return Ok(());
            }
            out_of_range(format!("between {min} and {max}"), value.to_string())
        }
        Kind::Text {
            min_chars,
            max_chars,
        } => {
            let chars = value.as_str().map_or(0, |s| s.chars().count());
            if (min_chars..=max_chars).contains(&chars) {
                return Ok(());
            }
            out_of_range(
                format!("{min_chars} to {max_chars} characters long"),
                format!("{chars} characters"),
            )
        }
        Kind::Subtitles { max_bytes } => {
            let bytes = value.as_str().map_or(0, str::len);
            if bytes <= max_bytes {
                return Ok(());
            }
            out_of_range(
                format!("at most {max_bytes} bytes"),
                format!("{bytes} bytes"),
            )
        }
        Kind::Choice(allowed) => {
            if value.as_str().is_some_and(|v| allowed.contains(&v)) {
                return Ok(());
            }
            let quoted: Vec<String> = allowed.iter().map(|a| format!("{a:?}")).collect();
            out_of_range(format!("one of {}", quoted.join(", ")), shorten(value))
        }
    }
}

/// A value for an error message: long texts are cut, so a rejected
/// megabyte is not echoed back.
fn shorten(value: &Value) -> String {
    const MAX_CHARS: usize = 40;
    match value.as_str() {
        Some(text) if text.chars().count() > MAX_CHARS => {
            let head: String = text.chars().take(MAX_CHARS).collect();
            format!("{head:?}…")
        }
        _ => value.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::types::lookup;
    use super::*;

    fn obj(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            other => panic!("not an object: {other}"),
        }
    }

    fn complete_for(ty: &str, params: Value) -> Result<Map<String, Value>, GraphError> {
        complete("n", lookup("n", ty).expect("type"), &obj(params))
    }

    #[test]
    fn render_defaults_are_filled_in() {
        let used = complete_for("render", json!({})).expect("valid");
        assert_eq!(
            Value::Object(used),
            json!({"format": "mp4", "video_codec": "h264", "crf": 23})
        );
    }

    #[test]
    fn webm_defaults_to_vp9() {
        let used = complete_for("render", json!({"format": "webm"})).expect("valid");
        assert_eq!(used["video_codec"], "vp9");
    }

    #[test]
    fn trim_defaults_start_to_zero_and_leaves_end_out() {
        let used = complete_for("trim", json!({})).expect("valid");
        assert_eq!(Value::Object(used), json!({"start_ms": 0}));
    }

    #[test]
    fn null_means_not_set() {
        let used = complete_for("trim", json!({"start_ms": null, "end_ms": null})).expect("valid");
        assert_eq!(Value::Object(used), json!({"start_ms": 0}));
    }

    #[test]
    fn unknown_param_is_invalid_and_named() {
        let err = complete_for("trim", json!({"stop_ms": 5})).unwrap_err();
        let GraphError::Invalid(msg) = err else {
            panic!("expected Invalid, got {err:?}")
        };
        assert!(
            msg.contains("\"stop_ms\"") && msg.contains("node \"n\""),
            "{msg}"
        );
    }

    #[test]
    fn video_input_takes_no_params() {
        let err = complete_for("video_input", json!({"x": 1})).unwrap_err();
        assert!(matches!(err, GraphError::Invalid(m) if m.contains("takes no parameters")));
    }

    #[test]
    fn wrong_json_types_are_invalid() {
        for params in [
            json!({"crf": "23"}),
            json!({"crf": 23.5}),
            json!({"crf": true}),
            json!({"format": 4}),
            json!({"max_height": [720]}),
        ] {
            let err = complete_for("render", params.clone()).unwrap_err();
            assert!(matches!(err, GraphError::Invalid(_)), "{params}: {err:?}");
        }
    }

    #[test]
    fn values_outside_their_range_are_out_of_range() {
        for (ty, params) in [
            ("render", json!({"crf": 52})),
            ("render", json!({"crf": -1})),
            ("render", json!({"max_height": 100})),
            ("render", json!({"max_height": 4321})),
            ("render", json!({"format": "avi"})),
            ("trim", json!({"start_ms": -1})),
            ("trim", json!({"start_ms": u64::MAX})),
            ("resize", json!({"width": 15})),
            ("resize", json!({"height": 7681})),
        ] {
            let err = complete_for(ty, params.clone()).unwrap_err();
            assert!(
                matches!(err, GraphError::OutOfRange(_)),
                "{params}: {err:?}"
            );
        }
    }

    #[test]
    fn range_errors_name_node_param_and_limits() {
        let err = complete_for("render", json!({"crf": 99})).unwrap_err();
        assert_eq!(
            err.to_string(),
            "node \"n\": crf must be between 0 and 51 (got 99)"
        );
    }

    #[test]
    fn range_limits_are_inclusive() {
        complete_for("render", json!({"crf": 0, "max_height": 144})).expect("lower bounds");
        complete_for("render", json!({"crf": 51, "max_height": 4320})).expect("upper bounds");
        complete_for("resize", json!({"width": 16, "height": 7680})).expect("resize bounds");
    }

    #[test]
    fn trim_end_must_be_after_start() {
        let err = complete_for("trim", json!({"start_ms": 3000, "end_ms": 3000})).unwrap_err();
        assert_eq!(
            err,
            GraphError::OutOfRange(
                "node \"n\": end_ms must be greater than start_ms (got start_ms 3000, end_ms 3000)"
                    .into()
            )
        );
        complete_for("trim", json!({"start_ms": 3000, "end_ms": 3001})).expect("valid");
    }

    #[test]
    fn resize_needs_width_or_height() {
        let err = complete_for("resize", json!({})).unwrap_err();
        assert!(matches!(err, GraphError::Invalid(m) if m.contains("width, height or both")));
        complete_for("resize", json!({"width": 320})).expect("width only");
        complete_for("resize", json!({"height": 240})).expect("height only");
    }

    #[test]
    fn codec_must_match_the_container() {
        let err =
            complete_for("render", json!({"format": "mp4", "video_codec": "vp9"})).unwrap_err();
        assert!(matches!(err, GraphError::OutOfRange(m) if m.contains("video_codec")));
        let err =
            complete_for("render", json!({"format": "webm", "video_codec": "h264"})).unwrap_err();
        assert!(matches!(err, GraphError::OutOfRange(_)));
        complete_for("render", json!({"format": "webm", "video_codec": "vp9"})).expect("valid");
    }

    #[test]
    fn completion_is_idempotent() {
        let once = complete_for("render", json!({"format": "webm", "crf": 30})).expect("valid");
        let twice = complete_for("render", Value::Object(once.clone())).expect("valid");
        assert_eq!(once, twice);
    }
}
