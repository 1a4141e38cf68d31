//! Render plans: one per render node, sources as trees, clips and concat.

use serde_json::json;

use super::super::*;
use super::{chain, conn, node};

fn input(id: &str) -> Source {
    Source::Input(id.into())
}

fn step(from: Source, node: &str, step: Step) -> Source {
    Source::Step {
        from: Box::new(from),
        node: node.into(),
        step,
    }
}

fn mp4() -> RenderParams {
    RenderParams {
        format: Format::Mp4,
        video_codec: VideoCodec::H264,
        crf: 23,
        max_height: None,
    }
}

#[test]
fn a_chain_becomes_one_plan_with_its_steps_in_order() {
    let (nodes, connections) = chain();
    let plans = render_plans(&validate(nodes, connections).expect("valid"));
    let trim = Step::Trim {
        start_ms: 1000,
        end_ms: Some(3000),
    };
    let resize = Step::Resize {
        width: Some(320),
        height: None,
    };
    assert_eq!(
        plans,
        vec![RenderPlan {
            render_node: "out".into(),
            source: step(step(input("in"), "cut", trim), "small", resize),
            render: mp4(),
            clips: None,
        }]
    );
    assert_eq!(plans[0].inputs(), ["in"]);
    assert_eq!(plans[0].nodes(), ["in", "cut", "small", "out"]);
}

#[test]
fn fan_out_gives_one_plan_per_render_in_node_order() {
    let nodes = vec![
        node("in", "video_input", json!({})),
        node("webm", "render", json!({"format": "webm", "crf": 35})),
        node("cut", "trim", json!({"start_ms": 500})),
        node("mp4", "render", json!({"max_height": 720})),
    ];
    let connections = vec![conn("in", "cut"), conn("cut", "mp4"), conn("in", "webm")];
    let plans = render_plans(&validate(nodes, connections).expect("valid"));
    let summary: Vec<_> = plans
        .iter()
        .map(|p| (p.render_node.as_str(), p.nodes().len(), p.render.format))
        .collect();
    assert_eq!(
        summary,
        [("webm", 2, Format::Webm), ("mp4", 3, Format::Mp4)]
    );
    assert_eq!(plans[1].render.max_height, Some(720));
    assert_eq!(plans[0].render.video_codec, VideoCodec::Vp9);
}

#[test]
fn every_new_node_type_becomes_its_step() {
    let nodes = vec![
        node("in", "video_input", json!({})),
        node(
            "rf",
            "reframe",
            json!({"aspect_ratio": "4:5", "mode": "pad"}),
        ),
        node("sp", "speed", json!({"factor": 1.5})),
        node("rs", "remove_silence", json!({"threshold_db": -40})),
        node("na", "normalize_audio", json!({})),
        node(
            "tx",
            "text_overlay",
            json!({"text": "Hi", "position": "top_left"}),
        ),
        node(
            "cc",
            "captions",
            json!({"subtitles": "00:00:01,000 --> 00:00:02,000\nHello"}),
        ),
        node("out", "render", json!({})),
    ];
    let ids: Vec<String> = nodes.iter().map(|n| n.id.clone()).collect();
    let connections: Vec<_> = ids.windows(2).map(|w| conn(&w[0], &w[1])).collect();
    let plan = &render_plans(&validate(nodes, connections).expect("valid"))[0];
    let mut steps = Vec::new();
    plan.source.visit(&mut |s| {
        if let Source::Step { step, .. } = s {
            steps.push(step.clone());
        }
    });
    assert_eq!(
        steps,
        vec![
            Step::Reframe {
                aspect: AspectRatio {
                    width: 4,
                    height: 5
                },
                mode: ReframeMode::Pad
            },
            Step::Speed { factor: 1.5 },
            Step::RemoveSilence {
                threshold_db: -40.0,
                min_silence_ms: 700,
                padding_ms: 100
            },
            Step::NormalizeAudio { target_lufs: -14.0 },
            Step::TextOverlay {
                text: "Hi".into(),
                position: Position::TopLeft,
                font_size: 48
            },
            Step::Captions {
                cues: vec![Cue {
                    start_ms: 1000,
                    end_ms: 2000,
                    text: "Hello".into()
                }],
                font_size: 36
            },
        ]
    );
}

#[test]
fn concat_parts_follow_the_connection_order() {
    let nodes = vec![
        node("a", "video_input", json!({})),
        node("b", "video_input", json!({})),
        node("cut", "trim", json!({"end_ms": 1000})),
        node("join", "concat", json!({})),
        node("out", "render", json!({})),
    ];
    let connections = vec![
        conn("b", "join"),
        conn("a", "cut"),
        conn("cut", "join"),
        conn("join", "out"),
    ];
    let plan = &render_plans(&validate(nodes, connections).expect("valid"))[0];
    let Source::Concat { node, parts } = &plan.source else {
        panic!("expected a concat, got {:?}", plan.source);
    };
    assert_eq!(node, "join");
    assert_eq!(parts[0], input("b"));
    assert!(matches!(&parts[1], Source::Step { node, .. } if node == "cut"));
    assert_eq!(plan.inputs(), ["b", "a"]);
    assert_eq!(plan.nodes(), ["b", "a", "cut", "join", "out"]);
}

#[test]
fn one_input_may_feed_several_concat_parts() {
    let nodes = vec![
        node("in", "video_input", json!({})),
        node("head", "trim", json!({"end_ms": 1000})),
        node("tail", "trim", json!({"start_ms": 5000})),
        node("join", "concat", json!({})),
        node("out", "render", json!({})),
    ];
    let connections = vec![
        conn("in", "tail"),
        conn("in", "head"),
        conn("tail", "join"),
        conn("head", "join"),
        conn("join", "out"),
    ];
    let plan = &render_plans(&validate(nodes, connections).expect("valid"))[0];
    assert_eq!(plan.inputs(), ["in"]);
    assert_eq!(plan.nodes(), ["in", "tail", "head", "join", "out"]);
}

#[test]
fn clips_before_a_render_become_the_clip_spec() {
    let nodes = vec![
        node("in", "video_input", json!({})),
        node("cl", "clips", json!({"clip_duration_s": 3})),
        node("out", "render", json!({})),
    ];
    let connections = vec![conn("in", "cl"), conn("cl", "out")];
    let plan = &render_plans(&validate(nodes, connections).expect("valid"))[0];
    assert_eq!(
        plan.clips,
        Some(ClipSpec {
            node: "cl".into(),
            clip_duration_ms: 3000,
            max_clips: 10
        })
    );
    assert_eq!(plan.source, input("in"));
    assert_eq!(plan.nodes(), ["in", "cl", "out"]);
}

#[test]
fn input_nodes_lists_the_slots_in_node_order() {
    let nodes = vec![
        node("second", "video_input", json!({})),
        node("out", "render", json!({})),
        node("first", "video_input", json!({})),
        node("join", "concat", json!({})),
    ];
    let connections = vec![
        conn("first", "join"),
        conn("second", "join"),
        conn("join", "out"),
    ];
    let graph = validate(nodes, connections).expect("valid");
    assert_eq!(input_nodes(&graph), ["second", "first"]);
    assert_eq!(render_plans(&graph)[0].inputs(), ["first", "second"]);
}

#[test]
fn ignoring_a_node_before_a_concat_keeps_the_part_order() {
    let nodes = vec![
        node("a", "video_input", json!({})),
        node("b", "video_input", json!({})),
        node("cut", "trim", json!({"end_ms": 1000})),
        node("join", "concat", json!({})),
        node("out", "render", json!({})),
    ];
    let connections = vec![
        conn("a", "cut"),
        conn("cut", "join"),
        conn("b", "join"),
        conn("join", "out"),
    ];
    let graph = validate(nodes, connections).expect("valid");
    let without = apply_ignore_nodes(&graph, &["cut".into()]).expect("valid");
    assert_eq!(render_plans(&without)[0].inputs(), ["a", "b"]);
}

#[test]
fn update_params_re_derives_the_codec_when_only_the_format_changes() {
    let (nodes, connections) = chain();
    let graph = validate(nodes, connections).expect("valid");
    let updated = apply_update_params(&graph, &super::update(json!({"out": {"format": "webm"}})))
        .expect("codec follows the format");
    assert_eq!(updated.nodes[3].params["video_codec"], "vp9");
    assert_eq!(
        render_plans(&updated)[0].render.video_codec,
        VideoCodec::Vp9
    );
}
