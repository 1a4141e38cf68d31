//! Pure tests of the argument lists.

use std::path::Path;

use crate::domain::graph::{Format, RenderParams, RenderPlan, Step, VideoCodec};

use super::*;

fn probe(has_audio: bool) -> Probe {
    Probe {
        duration_ms: 5312,
        width: 1280,
        height: 720,
        has_audio,
        video_codec: "h264".into(),
        format_name: "mov,mp4,m4a,3gp,3g2,mj2".into(),
    }
}

fn plan(steps: Vec<Step>, format: Format, video_codec: VideoCodec) -> RenderPlan {
    RenderPlan {
        input_node: "in".into(),
        render_node: "out".into(),
        steps,
        render: RenderParams {
            format,
            video_codec,
            crf: 28,
            max_height: None,
        },
    }
}

fn mp4(steps: Vec<Step>) -> RenderPlan {
    plan(steps, Format::Mp4, VideoCodec::H264)
}

fn args_for(plan: &RenderPlan, has_audio: bool) -> Vec<String> {
    render_args(
        plan,
        Path::new("/data/in.mp4"),
        &probe(has_audio),
        Path::new("/data/out.mp4"),
    )
    .expect("args")
}

/// The value following `flag`, if the flag is present.
fn value_of<'a>(args: &'a [String], flag: &str) -> Option<&'a str> {
    let at = args.iter().position(|a| a == flag)?;
    args.get(at + 1).map(String::as_str)
}

fn position(args: &[String], item: &str) -> usize {
    args.iter()
        .position(|a| a == item)
        .unwrap_or_else(|| panic!("{item} missing in {args:?}"))
}

#[test]
fn the_input_is_guarded_and_read_as_a_local_file() {
    let args = args_for(&mp4(vec![]), true);
    let input = position(&args, "-i");
    assert_eq!(args[input + 1], "file:/data/in.mp4");
    assert_eq!(value_of(&args, "-protocol_whitelist"), Some("file"));
    assert_eq!(value_of(&args, "-format_whitelist"), Some(DEMUXERS));
    assert!(position(&args, "-protocol_whitelist") < input);
    assert!(position(&args, "-format_whitelist") < input);
    assert!(args.contains(&"-nostdin".to_owned()) && args.contains(&"-hide_banner".to_owned()));
}

#[test]
fn the_allow_list_has_no_playlist_concat_or_image_demuxers() {
    for refused in [
        "hls",
        "concat",
        "image2",
        "dash",
        "ffmetadata",
        "tee",
        "data",
    ] {
        assert!(!DEMUXERS.split(',').any(|d| d == refused), "{refused}");
    }
}

#[test]
fn there_is_exactly_one_input_and_one_output() {
    let args = args_for(&mp4(vec![]), true);
    assert_eq!(args.iter().filter(|a| *a == "-i").count(), 1);
    assert_eq!(args.last().map(String::as_str), Some("file:/data/out.mp4"));
}

#[test]
fn mp4_uses_x264_aac_and_faststart() {
    let args = args_for(&mp4(vec![]), true);
    assert_eq!(value_of(&args, "-c:v"), Some("libx264"));
    assert_eq!(value_of(&args, "-preset"), Some("veryfast"));
    assert_eq!(value_of(&args, "-crf"), Some("28"));
    assert_eq!(value_of(&args, "-pix_fmt"), Some("yuv420p"));
    assert_eq!(value_of(&args, "-c:a"), Some("aac"));
    assert_eq!(value_of(&args, "-b:a"), Some("128k"));
    assert_eq!(value_of(&args, "-movflags"), Some("+faststart"));
    assert_eq!(value_of(&args, "-f"), Some("mp4"));
}

#[test]
fn webm_uses_vp9_in_constant_quality_and_opus() {
    let webm = plan(vec![], Format::Webm, VideoCodec::Vp9);
    let args = args_for(&webm, true);
    assert_eq!(value_of(&args, "-c:v"), Some("libvpx-vp9"));
    assert_eq!(value_of(&args, "-b:v"), Some("0"));
    assert_eq!(value_of(&args, "-crf"), Some("28"));
    assert_eq!(value_of(&args, "-deadline"), Some("realtime"));
    assert_eq!(value_of(&args, "-c:a"), Some("libopus"));
    assert_eq!(value_of(&args, "-f"), Some("webm"));
    assert_eq!(value_of(&args, "-movflags"), None);
    assert_eq!(output_extension(&webm.render), "webm");
    assert_eq!(output_extension(&mp4(vec![]).render), "mp4");
}

#[test]
fn mismatched_codec_and_container_are_refused() {
    let bad = plan(vec![], Format::Mp4, VideoCodec::Vp9);
    let err = render_args(&bad, Path::new("/in"), &probe(true), Path::new("/out")).unwrap_err();
    assert!(matches!(err, MediaError::Unsupported(_)), "{err:?}");
}

#[test]
fn inputs_without_audio_render_without_audio() {
    let args = args_for(&mp4(vec![]), false);
    assert!(args.contains(&"-an".to_owned()));
    assert_eq!(value_of(&args, "-c:a"), None);
    assert!(!args.iter().any(|a| a.contains("0:a")));
}

#[test]
fn audio_is_mapped_when_present() {
    let args = args_for(&mp4(vec![]), true);
    assert!(args.windows(2).any(|w| w[0] == "-map" && w[1] == "0:a:0"));
    assert!(!args.contains(&"-an".to_owned()));
}

#[test]
fn a_leading_trim_becomes_input_seeking() {
    let steps = vec![
        Step::Trim {
            start_ms: 1000,
            end_ms: Some(3000),
        },
        Step::Resize {
            width: Some(320),
            height: None,
        },
    ];
    let args = args_for(&mp4(steps), true);
    let input = position(&args, "-i");
    assert_eq!(value_of(&args, "-ss"), Some("1.000"));
    assert_eq!(value_of(&args, "-t"), Some("2.000"));
    assert!(position(&args, "-ss") < input && position(&args, "-t") < input);
    assert_eq!(
        value_of(&args, "-filter_complex"),
        Some("[0:V:0]scale=320:180,setsar=1[v]")
    );
}

#[test]
fn an_untrimmed_render_neither_seeks_nor_limits() {
    let args = args_for(&mp4(vec![]), true);
    assert_eq!(value_of(&args, "-ss"), None);
    assert_eq!(value_of(&args, "-t"), None);
}

#[test]
fn a_trim_to_the_end_only_seeks() {
    let steps = vec![Step::Trim {
        start_ms: 2500,
        end_ms: None,
    }];
    let args = args_for(&mp4(steps), true);
    assert_eq!(value_of(&args, "-ss"), Some("2.500"));
    assert_eq!(value_of(&args, "-t"), None);
}

#[test]
fn a_trim_from_the_start_only_limits() {
    let steps = vec![Step::Trim {
        start_ms: 0,
        end_ms: Some(1200),
    }];
    let args = args_for(&mp4(steps), true);
    assert_eq!(value_of(&args, "-ss"), None);
    assert_eq!(value_of(&args, "-t"), Some("1.200"));
}

#[test]
fn a_trim_after_the_end_is_an_error() {
    let steps = vec![Step::Trim {
        start_ms: 6000,
        end_ms: None,
    }];
    let err =
        render_args(&mp4(steps), Path::new("/in"), &probe(true), Path::new("/o")).unwrap_err();
    assert!(matches!(err, MediaError::TrimOutOfRange { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "trim starts at 6000 ms, but the video is only 5312 ms long"
    );
}

#[test]
fn paths_with_colons_stay_files() {
    let args = render_args(
        &mp4(vec![]),
        Path::new("http:evil.mp4"),
        &probe(true),
        Path::new("out:1.mp4"),
    )
    .expect("args");
    assert_eq!(value_of(&args, "-i"), Some("file:http:evil.mp4"));
    assert_eq!(args.last().map(String::as_str), Some("file:out:1.mp4"));
}

#[test]
fn thumbnails_take_one_guarded_frame_at_most_one_second_in() {
    let args =
        thumbnail_args(Path::new("/in.mp4"), &probe(true), Path::new("/t.jpg")).expect("args");
    assert_eq!(value_of(&args, "-ss"), Some("1.000"));
    assert_eq!(value_of(&args, "-frames:v"), Some("1"));
    assert_eq!(value_of(&args, "-vf"), Some("scale=640:360,setsar=1"));
    assert_eq!(value_of(&args, "-protocol_whitelist"), Some("file"));
    let short = Probe {
        duration_ms: 600,
        ..probe(true)
    };
    let args = thumbnail_args(Path::new("/in.mp4"), &short, Path::new("/t.jpg")).expect("args");
    assert_eq!(value_of(&args, "-ss"), Some("0.300"));
}
