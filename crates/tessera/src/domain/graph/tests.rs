//! Tests of the graph rules through the public functions.

mod plans;
mod rules;

use serde_json::{Map, Value, json};

use super::*;

pub(super) fn node(id: &str, ty: &str, params: Value) -> NodeSpec {
    let Value::Object(params) = params else {
        panic!("params must be an object")
    };
    NodeSpec {
        id: id.into(),
        node_type: ty.into(),
        params,
    }
}

pub(super) fn conn(source: &str, target: &str) -> Connection {
    Connection {
        source: source.into(),
        target: target.into(),
    }
}

/// in → cut → small → out
pub(super) fn chain() -> (Vec<NodeSpec>, Vec<Connection>) {
    (
        vec![
            node("in", "video_input", json!({})),
            node("cut", "trim", json!({"start_ms": 1000, "end_ms": 3000})),
            node("small", "resize", json!({"width": 320})),
            node("out", "render", json!({})),
        ],
        vec![
            conn("in", "cut"),
            conn("cut", "small"),
            conn("small", "out"),
        ],
    )
}

pub(super) fn invalid(nodes: Vec<NodeSpec>, connections: Vec<Connection>) -> String {
    match validate(nodes, connections) {
        Err(GraphError::Invalid(msg)) => msg,
        other => panic!("expected Invalid, got {other:?}"),
    }
}

pub(super) fn update(value: Value) -> Map<String, Value> {
    let Value::Object(map) = value else {
        panic!("not an object")
    };
    map
}

#[test]
fn a_simple_chain_is_valid_and_params_are_completed() {
    let (nodes, connections) = chain();
    let graph = validate(nodes, connections).expect("valid");
    assert_eq!(
        Value::Object(graph.nodes[3].params.clone()),
        json!({"format": "mp4", "video_codec": "h264", "crf": 23})
    );
    assert_eq!(graph.nodes[2].params, update(json!({"width": 320})));
}

#[test]
fn node_ids_must_be_well_formed() {
    for bad in ["", "has space", "dot.ted", "ünï", &"x".repeat(65)] {
        let (mut nodes, connections) = chain();
        nodes[1].id = bad.to_owned();
        let msg = invalid(nodes, connections);
        assert!(msg.contains("must be 1 to 64 characters"), "{bad:?}: {msg}");
    }
    let (mut nodes, mut connections) = chain();
    let longest = "A-z_9".repeat(12) + "abcd";
    nodes[1].id.clone_from(&longest);
    connections[0].target.clone_from(&longest);
    connections[1].source = longest;
    validate(nodes, connections).expect("64 characters of the allowed set");
}

#[test]
fn node_ids_must_be_unique() {
    let (mut nodes, connections) = chain();
    nodes[2].id = "cut".into();
    assert!(invalid(nodes, connections).contains("\"cut\" is used more than once"));
}

#[test]
fn unknown_node_types_are_invalid() {
    let (mut nodes, connections) = chain();
    nodes[2].node_type = "blur".into();
    assert!(invalid(nodes, connections).contains("unknown node type \"blur\""));
}

#[test]
fn unknown_params_and_wrong_types_are_invalid_with_node_and_param_named() {
    let (mut nodes, connections) = chain();
    nodes[3].params = update(json!({"bitrate": 5}));
    let msg = invalid(nodes, connections);
    assert!(
        msg.contains("node \"out\"") && msg.contains("\"bitrate\""),
        "{msg}"
    );

    let (mut nodes, connections) = chain();
    nodes[1].params = update(json!({"start_ms": "1000"}));
    assert_eq!(
        invalid(nodes, connections),
        "node \"cut\": start_ms must be an integer"
    );
}

#[test]
fn out_of_range_values_are_reported_as_out_of_range() {
    let (mut nodes, connections) = chain();
    nodes[1].params = update(json!({"start_ms": 3000, "end_ms": 1000}));
    let err = validate(nodes, connections).unwrap_err();
    assert!(
        matches!(&err, GraphError::OutOfRange(m) if m.starts_with("node \"cut\": end_ms must be greater than start_ms")),
        "{err:?}"
    );
}

#[test]
fn structural_errors_win_over_range_errors() {
    let (mut nodes, mut connections) = chain();
    nodes[3].params = update(json!({"crf": 99}));
    connections.push(conn("out", "cut"));
    assert!(matches!(
        validate(nodes, connections),
        Err(GraphError::Invalid(_))
    ));
}

#[test]
fn connections_must_reference_existing_nodes() {
    let (nodes, mut connections) = chain();
    connections.push(conn("ghost", "out"));
    assert!(invalid(nodes, connections).contains("source \"ghost\""));
    let (nodes, mut connections) = chain();
    connections[2].target = "nowhere".into();
    assert!(invalid(nodes, connections).contains("target \"nowhere\""));
}

#[test]
fn duplicate_connections_are_invalid() {
    let (nodes, mut connections) = chain();
    connections.push(conn("cut", "small"));
    assert!(invalid(nodes, connections).contains("listed more than once"));
}

#[test]
fn self_loops_are_invalid() {
    let (nodes, mut connections) = chain();
    connections.push(conn("small", "small"));
    assert!(invalid(nodes, connections).contains("node \"small\" is connected to itself"));
}

#[test]
fn cycles_are_invalid() {
    // Every node has one parent, yet a and b feed each other.
    let nodes = vec![
        node("in", "video_input", json!({})),
        node("x", "trim", json!({})),
        node("out", "render", json!({})),
        node("a", "trim", json!({})),
        node("b", "resize", json!({"width": 100})),
    ];
    let connections = vec![
        conn("in", "x"),
        conn("x", "out"),
        conn("a", "b"),
        conn("b", "a"),
    ];
    assert!(invalid(nodes, connections).contains("cycle"));
}

#[test]
fn an_agent_needs_a_video_input_and_a_render() {
    let msg = invalid(vec![node("out", "render", json!({}))], vec![]);
    assert!(msg.contains("at least one video_input"), "{msg}");
    let msg = invalid(vec![node("in", "video_input", json!({}))], vec![]);
    assert!(msg.contains("at least one render"), "{msg}");
    assert!(invalid(vec![], vec![]).contains("video_input"));
}

#[test]
fn video_input_cannot_have_incoming_edges() {
    let nodes = vec![
        node("in", "video_input", json!({})),
        node("in2", "video_input", json!({})),
        node("out", "render", json!({})),
    ];
    let connections = vec![conn("in", "in2"), conn("in2", "out")];
    assert!(
        invalid(nodes, connections).contains("node \"in2\": a video_input cannot have incoming")
    );
}

#[test]
fn render_cannot_have_outgoing_edges() {
    let nodes = vec![
        node("in", "video_input", json!({})),
        node("out", "render", json!({})),
        node("after", "trim", json!({})),
        node("out2", "render", json!({})),
    ];
    let connections = vec![
        conn("in", "out"),
        conn("out", "after"),
        conn("after", "out2"),
    ];
    assert!(invalid(nodes, connections).contains("node \"out\": a render cannot have outgoing"));
}

#[test]
fn non_input_nodes_need_exactly_one_incoming_edge() {
    let (mut nodes, mut connections) = chain();
    nodes.push(node("in2", "video_input", json!({})));
    connections.push(conn("in2", "cut"));
    assert!(invalid(nodes, connections).contains("node \"cut\": has 2 incoming connections"));

    let (nodes, mut connections) = chain();
    connections.remove(1);
    assert!(invalid(nodes, connections).contains("node \"small\": has no incoming connection"));
}

#[test]
fn dangling_nodes_are_invalid() {
    let (mut nodes, mut connections) = chain();
    nodes.push(node("spare", "resize", json!({"height": 100})));
    connections.push(conn("cut", "spare"));
    assert_eq!(
        invalid(nodes, connections),
        "node \"spare\": not on a path from a video_input to a render"
    );

    let (mut nodes, connections) = chain();
    nodes.push(node("lonely", "video_input", json!({})));
    assert!(invalid(nodes, connections).contains("node \"lonely\": not on a path"));
}

#[test]
fn graphs_over_the_caps_are_invalid() {
    let mut nodes = vec![
        node("in", "video_input", json!({})),
        node("out", "render", json!({})),
    ];
    nodes.extend((0..MAX_NODES - 1).map(|i| node(&format!("n{i}"), "trim", json!({}))));
    assert!(invalid(nodes, vec![]).contains("at most 100 nodes"));

    let connections = vec![conn("in", "out"); MAX_CONNECTIONS + 1];
    let nodes = vec![
        node("in", "video_input", json!({})),
        node("out", "render", json!({})),
    ];
    assert!(invalid(nodes, connections).contains("at most 200 connections"));
}

#[test]
fn a_graph_at_the_node_cap_is_accepted() {
    let mut nodes = vec![node("in", "video_input", json!({}))];
    let mut connections = Vec::new();
    let mut previous = "in".to_owned();
    for i in 0..MAX_NODES - 2 {
        let id = format!("t{i}");
        nodes.push(node(&id, "trim", json!({})));
        connections.push(conn(&previous, &id));
        previous = id;
    }
    nodes.push(node("out", "render", json!({})));
    connections.push(conn(&previous, "out"));
    let graph = validate(nodes, connections).expect("100 nodes is allowed");
    assert_eq!(render_plans(&graph)[0].nodes().len(), MAX_NODES);
}

#[test]
fn update_params_overrides_and_revalidates() {
    let (nodes, connections) = chain();
    let graph = validate(nodes, connections).expect("valid");
    let updated = apply_update_params(
        &graph,
        &update(json!({"cut": {"end_ms": null}, "out": {"crf": 30}})),
    )
    .expect("valid overrides");
    assert_eq!(updated.nodes[1].params, update(json!({"start_ms": 1000})));
    assert_eq!(updated.nodes[3].params["crf"], 30);
    assert_eq!(
        graph.nodes[3].params["crf"], 23,
        "the original is untouched"
    );
}

#[test]
fn update_params_refuses_unknown_nodes_and_params() {
    let (nodes, connections) = chain();
    let graph = validate(nodes, connections).expect("valid");
    for bad in [
        json!({"ghost": {"crf": 20}}),
        json!({"out": {"quality": 20}}),
        json!({"out": 20}),
        json!({"out": {"crf": "high"}}),
        json!({"in": {"anything": 1}}),
    ] {
        let err = apply_update_params(&graph, &update(bad.clone())).unwrap_err();
        assert!(matches!(err, GraphError::Invalid(_)), "{bad}: {err:?}");
    }
}

#[test]
fn update_params_reports_out_of_range_values() {
    let (nodes, connections) = chain();
    let graph = validate(nodes, connections).expect("valid");
    for bad in [
        json!({"out": {"crf": 60}}),
        json!({"cut": {"start_ms": 5000}}),
        json!({"small": {"width": 8}}),
    ] {
        let err = apply_update_params(&graph, &update(bad.clone())).unwrap_err();
        assert!(matches!(err, GraphError::OutOfRange(_)), "{bad}: {err:?}");
    }
}

#[test]
fn update_params_shape_errors_win_over_range_errors() {
    let (nodes, connections) = chain();
    let graph = validate(nodes, connections).expect("valid");
    let err = apply_update_params(
        &graph,
        &update(json!({"out": {"crf": 99}, "small": {"depth": 1}})),
    )
    .unwrap_err();
    assert!(matches!(err, GraphError::Invalid(_)), "{err:?}");
}

#[test]
fn ignored_nodes_are_bypassed() {
    let (nodes, connections) = chain();
    let graph = validate(nodes, connections).expect("valid");
    let without = apply_ignore_nodes(&graph, &["cut".into(), "small".into()]).expect("valid");
    assert_eq!(without.connections, vec![conn("in", "out")]);
    assert_eq!(render_plans(&without)[0].source, Source::Input("in".into()));
}

#[test]
fn ignoring_a_render_drops_its_branch_only() {
    let nodes = vec![
        node("in", "video_input", json!({})),
        node("a", "render", json!({})),
        node("small", "resize", json!({"width": 320})),
        node("b", "render", json!({})),
    ];
    let connections = vec![conn("in", "a"), conn("in", "small"), conn("small", "b")];
    let graph = validate(nodes, connections).expect("valid");
    let without = apply_ignore_nodes(&graph, &["b".into()]).expect("valid");
    let ids: Vec<_> = without.nodes.iter().map(|n| n.id.as_str()).collect();
    assert_eq!(ids, ["in", "a"]);
}

#[test]
fn ignore_nodes_refuses_inputs_unknown_ids_and_removing_every_render() {
    let (nodes, connections) = chain();
    let graph = validate(nodes, connections).expect("valid");
    for bad in [
        vec!["in".to_owned()],
        vec!["ghost".into()],
        vec!["out".into()],
    ] {
        let err = apply_ignore_nodes(&graph, &bad).unwrap_err();
        assert!(matches!(err, GraphError::Invalid(_)), "{bad:?}: {err:?}");
    }
}

#[test]
fn nodes_and_connections_use_the_api_field_names() {
    let body = json!({"id": "in", "type": "video_input"});
    let parsed: NodeSpec = serde_json::from_value(body).expect("params default to empty");
    assert_eq!(parsed, node("in", "video_input", json!({})));
    let wire = serde_json::to_value(conn("a", "b")).expect("serialises");
    assert_eq!(wire, json!({"source": "a", "target": "b"}));
}
