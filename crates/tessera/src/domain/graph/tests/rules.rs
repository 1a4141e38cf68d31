//! Wiring rules and parameters of the node types beyond trim/resize/render.

use serde_json::{Value, json};

use super::super::*;
use super::{conn, invalid, node};

/// in → (one node of `ty` with `params`) → out
fn single(ty: &str, params: Value) -> Result<AgentGraph, GraphError> {
    validate(
        vec![
            node("in", "video_input", json!({})),
            node("n", ty, params),
            node("out", "render", json!({})),
        ],
        vec![conn("in", "n"), conn("n", "out")],
    )
}

fn params_used(ty: &str, params: Value) -> Value {
    Value::Object(single(ty, params).expect("valid").nodes[1].params.clone())
}

fn out_of_range(ty: &str, params: Value) -> String {
    match single(ty, params.clone()) {
        Err(GraphError::OutOfRange(msg)) => msg,
        other => panic!("{ty} {params}: expected OutOfRange, got {other:?}"),
    }
}

fn malformed(ty: &str, params: Value) -> String {
    match single(ty, params.clone()) {
        Err(GraphError::Invalid(msg)) => msg,
        other => panic!("{ty} {params}: expected Invalid, got {other:?}"),
    }
}

#[test]
fn defaults_of_the_new_types_are_filled_in() {
    assert_eq!(
        params_used("reframe", json!({})),
        json!({"aspect_ratio": "9:16", "mode": "crop"})
    );
    assert_eq!(
        params_used("remove_silence", json!({})),
        json!({"threshold_db": -35.0, "min_silence_ms": 700, "padding_ms": 100})
    );
    assert_eq!(
        params_used("normalize_audio", json!({})),
        json!({"target_lufs": -14.0})
    );
    assert_eq!(
        params_used("text_overlay", json!({"text": "x"})),
        json!({"text": "x", "position": "bottom", "font_size": 48})
    );
    assert_eq!(
        params_used("clips", json!({})),
        json!({"clip_duration_s": 30, "max_clips": 10})
    );
    assert_eq!(
        params_used("speed", json!({"factor": 2})),
        json!({"factor": 2})
    );
}

#[test]
fn required_params_must_be_given() {
    assert_eq!(
        malformed("speed", json!({})),
        "node \"n\": factor is required"
    );
    assert!(malformed("text_overlay", json!({})).contains("text is required"));
    assert!(malformed("captions", json!({"font_size": 20})).contains("subtitles is required"));
    assert!(malformed("speed", json!({"factor": null})).contains("required"));
}

#[test]
fn wrong_json_types_of_the_new_params_are_malformed() {
    for (ty, params) in [
        ("speed", json!({"factor": "2"})),
        ("reframe", json!({"aspect_ratio": 1})),
        ("remove_silence", json!({"min_silence_ms": 1.5})),
        ("normalize_audio", json!({"target_lufs": "-14"})),
        ("text_overlay", json!({"text": 5})),
        ("captions", json!({"subtitles": ["x"]})),
        ("clips", json!({"max_clips": true})),
    ] {
        malformed(ty, params);
    }
}

#[test]
fn values_outside_the_documented_limits_are_out_of_range() {
    for (ty, params) in [
        ("speed", json!({"factor": 0.2})),
        ("speed", json!({"factor": 4.01})),
        ("reframe", json!({"aspect_ratio": "21:9"})),
        ("reframe", json!({"mode": "stretch"})),
        ("remove_silence", json!({"threshold_db": 1})),
        ("remove_silence", json!({"threshold_db": -91})),
        ("remove_silence", json!({"min_silence_ms": 99})),
        ("remove_silence", json!({"padding_ms": 2001})),
        ("normalize_audio", json!({"target_lufs": -4.5})),
        ("normalize_audio", json!({"target_lufs": -71})),
        ("text_overlay", json!({"text": ""})),
        ("text_overlay", json!({"text": "x".repeat(501)})),
        ("text_overlay", json!({"text": "x", "position": "middle"})),
        ("text_overlay", json!({"text": "x", "font_size": 301})),
        (
            "captions",
            json!({"subtitles": "00:00:00,000 --> 00:00:01,000\nx", "font_size": 7}),
        ),
        ("clips", json!({"clip_duration_s": 0})),
        ("clips", json!({"clip_duration_s": 3601})),
        ("clips", json!({"max_clips": 101})),
    ] {
        out_of_range(ty, params);
    }
}

#[test]
fn limits_are_inclusive() {
    single("speed", json!({"factor": 0.25})).expect("slowest");
    single("speed", json!({"factor": 4})).expect("fastest");
    single(
        "text_overlay",
        json!({"text": "é".repeat(500), "font_size": 300}),
    )
    .expect("longest");
    single("clips", json!({"clip_duration_s": 3600, "max_clips": 100})).expect("largest");
}

#[test]
fn text_limits_count_characters_and_say_so() {
    let msg = out_of_range("text_overlay", json!({"text": "x".repeat(501)}));
    assert_eq!(
        msg,
        "node \"n\": text must be 1 to 500 characters long (got 501 characters)"
    );
}

#[test]
fn malformed_subtitles_are_invalid_with_their_line_number() {
    let msg = malformed(
        "captions",
        json!({"subtitles": "1\n00:00:01,000 --> 00:00:02,000\nok\n\n2\n00:00:03 --> 00:00:04\n"}),
    );
    assert!(msg.starts_with("node \"n\": subtitles: line 6: "), "{msg}");
}

#[test]
fn subtitles_over_one_megabyte_are_out_of_range() {
    let cue = "00:00:01,000 --> 00:00:02,000\nsome words\n\n";
    let big = cue.repeat(1_000_000 / cue.len() + 1);
    let msg = out_of_range("captions", json!({ "subtitles": big }));
    assert!(msg.contains("at most 1000000 bytes"), "{msg}");
    assert!(msg.len() < 200, "the document is not echoed: {msg}");
}

fn concat_graph(parts: usize) -> (Vec<NodeSpec>, Vec<Connection>) {
    let mut nodes = vec![
        node("join", "concat", json!({})),
        node("out", "render", json!({})),
    ];
    let mut connections = vec![conn("join", "out")];
    for i in 0..parts {
        let id = format!("in{i}");
        nodes.push(node(&id, "video_input", json!({})));
        connections.push(conn(&id, "join"));
    }
    (nodes, connections)
}

#[test]
fn concat_needs_at_least_two_incoming_edges() {
    let (nodes, connections) = concat_graph(1);
    assert_eq!(
        invalid(nodes, connections),
        "node \"join\": a concat needs at least two incoming connections (got 1)"
    );
    let (nodes, connections) = concat_graph(3);
    validate(nodes, connections).expect("three parts");
}

#[test]
fn concat_takes_no_params() {
    let (mut nodes, connections) = concat_graph(2);
    nodes[0].params = super::update(json!({"order": 1}));
    assert!(invalid(nodes, connections).contains("takes no parameters"));
}

#[test]
fn clips_may_only_feed_renders() {
    let nodes = vec![
        node("in", "video_input", json!({})),
        node("cl", "clips", json!({})),
        node("cut", "trim", json!({})),
        node("out", "render", json!({})),
    ];
    let connections = vec![conn("in", "cl"), conn("cl", "cut"), conn("cut", "out")];
    assert_eq!(
        invalid(nodes, connections),
        "node \"cl\": a clips node connects only to render nodes (it feeds \"cut\", a trim)"
    );
}

#[test]
fn analysis_nodes_appear_at_most_once_per_path() {
    for ty in ["remove_silence", "normalize_audio"] {
        let nodes = vec![
            node("in", "video_input", json!({})),
            node("a", ty, json!({})),
            node("cut", "trim", json!({})),
            node("b", ty, json!({})),
            node("out", "render", json!({})),
        ];
        let connections = vec![
            conn("in", "a"),
            conn("a", "cut"),
            conn("cut", "b"),
            conn("b", "out"),
        ];
        let msg = invalid(nodes, connections);
        let expected = format!("node \"b\": a {ty} cannot follow another one (\"a\")");
        assert!(msg.starts_with(&expected), "{msg}");
    }
}

#[test]
fn analysis_nodes_on_different_concat_parts_are_fine() {
    let nodes = vec![
        node("a", "video_input", json!({})),
        node("b", "video_input", json!({})),
        node("na", "normalize_audio", json!({})),
        node("nb", "normalize_audio", json!({})),
        node("rs", "remove_silence", json!({})),
        node("join", "concat", json!({})),
        node("out", "render", json!({})),
    ];
    let connections = vec![
        conn("a", "na"),
        conn("b", "nb"),
        conn("na", "join"),
        conn("nb", "join"),
        conn("join", "rs"),
        conn("rs", "out"),
    ];
    validate(nodes, connections).expect("one of each kind per path");
}
