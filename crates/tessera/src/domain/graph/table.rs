//! The node types of the product (PRODUCT.md §3): roles, parameters with
//! their defaults and limits, and the rules between parameters.

use serde_json::{Map, Value};

use super::types::{Default, Kind, NodeType, ParamSpec, Role};
use super::{GraphError, node_label};

/// Most characters of a `text_overlay` text.
const MAX_TEXT_CHARS: usize = 500;
/// Largest subtitles document `captions` accepts.
pub(super) const MAX_SUBTITLES_BYTES: usize = 1_000_000;

/// The node types. Order is the catalogue order.
pub(super) static NODE_TYPES: &[NodeType] = &[
    NodeType {
        name: "video_input",
        role: Role::Input,
        description: "Entry point: one input video slot. An agent may have several.",
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
        name: "reframe",
        role: Role::Transform,
        description: "Change the aspect ratio by a centred crop or by black bars.",
        params: REFRAME_PARAMS,
        check: no_rules,
    },
    NodeType {
        name: "resize",
        role: Role::Transform,
        description: "Scale keeping the aspect ratio; with both width and height, fit inside that box.",
        params: RESIZE_PARAMS,
        check: check_resize,
    },
    NodeType {
        name: "speed",
        role: Role::Transform,
        description: "Play faster or slower; the audio keeps its pitch.",
        params: SPEED_PARAMS,
        check: no_rules,
    },
    NodeType {
        name: "remove_silence",
        role: Role::Transform,
        description: "Cut quiet passages (video and audio together). Without audio it does nothing. At most once on any path.",
        params: SILENCE_PARAMS,
        check: no_rules,
    },
    NodeType {
        name: "normalize_audio",
        role: Role::Transform,
        description: "Bring the integrated loudness (EBU R128) to a target, measured in a first pass and applied as a constant gain where the peaks allow. Without audio it does nothing. At most once on any path.",
        params: NORMALIZE_PARAMS,
        check: no_rules,
    },
    NodeType {
        name: "text_overlay",
        role: Role::Transform,
        description: "Burn a text (title, watermark) into the whole video, in DejaVu Sans, white with a dark outline. The text is drawn literally.",
        params: TEXT_PARAMS,
        check: no_rules,
    },
    NodeType {
        name: "captions",
        role: Role::Transform,
        description: "Burn subtitles given as SRT or WebVTT text, in DejaVu Sans at the bottom centre. Cue times are relative to the video at this node; styling tags are ignored.",
        params: CAPTIONS_PARAMS,
        check: no_rules,
    },
    NodeType {
        name: "clips",
        role: Role::Transform,
        description: "Cut the video into consecutive clips, one output per clip (the last may be shorter). Connects only to render nodes.",
        params: CLIPS_PARAMS,
        check: no_rules,
    },
    NodeType {
        name: "concat",
        role: Role::Join,
        description: "Join two or more inputs in the order of their connections. Every part is scaled and padded to the first part's size and frame rate; parts without audio get silence.",
        params: &[],
        check: no_rules,
    },
    NodeType {
        name: "render",
        role: Role::Output,
        description: "Encode the output (one per render node, or one per clip after a clips node). MP4 is H.264 yuv420p + AAC, WebM is VP9 + Opus; sides are even.",
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

static REFRAME_PARAMS: &[ParamSpec] = &[
    ParamSpec {
        name: "aspect_ratio",
        kind: Kind::Choice(&["9:16", "1:1", "4:5", "16:9"]),
        default: Default::Str("9:16"),
        description: "Target aspect ratio, width:height.",
    },
    ParamSpec {
        name: "mode",
        kind: Kind::Choice(&["crop", "pad"]),
        default: Default::Str("crop"),
        description: "crop cuts the edges away (centred); pad adds black bars (centred).",
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

static SPEED_PARAMS: &[ParamSpec] = &[ParamSpec {
    name: "factor",
    kind: Kind::Number {
        min: 0.25,
        max: 4.0,
    },
    default: Default::Required,
    description: "Playback speed: 2 is twice as fast (half as long), 0.5 half as fast.",
}];

static SILENCE_PARAMS: &[ParamSpec] = &[
    ParamSpec {
        name: "threshold_db",
        kind: Kind::Number {
            min: -90.0,
            max: 0.0,
        },
        default: Default::Float(-35.0),
        description: "Audio quieter than this (dBFS) counts as silence.",
    },
    ParamSpec {
        name: "min_silence_ms",
        kind: Kind::Integer {
            min: 100,
            max: 10_000,
        },
        default: Default::Int(700),
        description: "Only silences at least this long are cut.",
    },
    ParamSpec {
        name: "padding_ms",
        kind: Kind::Integer { min: 0, max: 2000 },
        default: Default::Int(100),
        description: "Silence kept on each side of a cut, so speech is not clipped.",
    },
];

static NORMALIZE_PARAMS: &[ParamSpec] = &[ParamSpec {
    name: "target_lufs",
    kind: Kind::Number {
        min: -70.0,
        max: -5.0,
    },
    default: Default::Float(-14.0),
    description: "Target integrated loudness in LUFS (-14 suits most streaming platforms). True peaks are kept below -1.5 dBTP.",
}];

static TEXT_PARAMS: &[ParamSpec] = &[
    ParamSpec {
        name: "text",
        kind: Kind::Text {
            min_chars: 1,
            max_chars: MAX_TEXT_CHARS,
        },
        default: Default::Required,
        description: "The text; newlines start new lines. Characters missing from DejaVu Sans show as boxes.",
    },
    ParamSpec {
        name: "position",
        kind: Kind::Choice(&[
            "top",
            "center",
            "bottom",
            "top_left",
            "top_right",
            "bottom_left",
            "bottom_right",
        ]),
        default: Default::Str("bottom"),
        description: "Where the text sits, with a margin of 4% of the shorter side.",
    },
    ParamSpec {
        name: "font_size",
        kind: Kind::Integer { min: 8, max: 300 },
        default: Default::Int(48),
        description: "Font size in pixels of the video as it is at this node.",
    },
];

static CAPTIONS_PARAMS: &[ParamSpec] = &[
    ParamSpec {
        name: "subtitles",
        kind: Kind::Subtitles {
            max_bytes: MAX_SUBTITLES_BYTES,
        },
        default: Default::Required,
        description: "The subtitles as SRT or WebVTT text (a document starting with WEBVTT is WebVTT). Checked when the agent is saved; errors name the line.",
    },
    ParamSpec {
        name: "font_size",
        kind: Kind::Integer { min: 8, max: 200 },
        default: Default::Int(36),
        description: "Font size in pixels of the video as it is at this node.",
    },
];

static CLIPS_PARAMS: &[ParamSpec] = &[
    ParamSpec {
        name: "clip_duration_s",
        kind: Kind::Integer { min: 1, max: 3600 },
        default: Default::Int(30),
        description: "Length of each clip in seconds; the last clip may be shorter.",
    },
    ParamSpec {
        name: "max_clips",
        kind: Kind::Integer { min: 1, max: 100 },
        default: Default::Int(10),
        description: "Most clips produced, from the start; the rest of the video is dropped.",
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
