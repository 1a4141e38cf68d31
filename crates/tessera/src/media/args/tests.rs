//! Pure tests of the argument pieces: guards, seeking, encoders, thumbnails.

use std::path::Path;

use crate::domain::graph::{Format, RenderParams, VideoCodec};

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

fn render(format: Format, video_codec: VideoCodec) -> RenderParams {
    RenderParams {
        format,
        video_codec,
        crf: 28,
        max_height: None,
    }
}

/// The value following `flag`, if the flag is present.
fn value_of<'a>(args: &'a [String], flag: &str) -> Option<&'a str> {
    let at = args.iter().position(|a| a == flag)?;
    args.get(at + 1).map(String::as_str)
}

#[test]
fn inputs_are_guarded_and_read_as_local_files() {
    let args = input_args(Path::new("/data/in.mp4")).expect("args");
    assert_eq!(
        args,
        [
            "-protocol_whitelist",
            "file",
            "-format_whitelist",
            DEMUXERS,
            "-i",
            "file:/data/in.mp4"
        ]
    );
    let colon = input_args(Path::new("http:evil.mp4")).expect("args");
    assert_eq!(colon.last().map(String::as_str), Some("file:http:evil.mp4"));
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
        "srt",
        "webvtt",
        "ass",
    ] {
        assert!(!DEMUXERS.split(',').any(|d| d == refused), "{refused}");
    }
}

#[test]
fn seeking_skips_the_start_and_stops_after_the_length() {
    let window = |start_ms, length_ms| Window {
        start_ms,
        length_ms,
    };
    assert_eq!(
        seek_args(window(1000, 2000), 5312),
        ["-ss", "1.000", "-t", "2.000"]
    );
    assert_eq!(seek_args(window(2500, 2812), 5312), ["-ss", "2.500"]);
    assert_eq!(seek_args(window(0, 1200), 5312), ["-t", "1.200"]);
    assert!(seek_args(window(0, 5312), 5312).is_empty());
}

#[test]
fn mp4_uses_x264_yuv420p_stereo_aac_and_faststart() {
    let mp4 = render(Format::Mp4, VideoCodec::H264);
    let mut args = encoder_args(&mp4, true);
    args.extend(output_args(&mp4, Path::new("/data/out.mp4")).expect("args"));
    assert_eq!(value_of(&args, "-c:v"), Some("libx264"));
    assert_eq!(value_of(&args, "-preset"), Some("veryfast"));
    assert_eq!(value_of(&args, "-crf"), Some("28"));
    assert_eq!(value_of(&args, "-pix_fmt"), Some("yuv420p"));
    assert_eq!(value_of(&args, "-c:a"), Some("aac"));
    assert_eq!(value_of(&args, "-ac"), Some("2"));
    assert_eq!(value_of(&args, "-movflags"), Some("+faststart"));
    assert_eq!(value_of(&args, "-f"), Some("mp4"));
    assert_eq!(args.last().map(String::as_str), Some("file:/data/out.mp4"));
}

#[test]
fn webm_uses_vp9_in_constant_quality_and_opus() {
    let webm = render(Format::Webm, VideoCodec::Vp9);
    let mut args = encoder_args(&webm, true);
    args.extend(output_args(&webm, Path::new("/o.webm")).expect("args"));
    assert_eq!(value_of(&args, "-c:v"), Some("libvpx-vp9"));
    assert_eq!(value_of(&args, "-b:v"), Some("0"));
    assert_eq!(value_of(&args, "-deadline"), Some("realtime"));
    assert_eq!(value_of(&args, "-c:a"), Some("libopus"));
    assert_eq!(value_of(&args, "-f"), Some("webm"));
    assert_eq!(value_of(&args, "-movflags"), None);
    assert_eq!(output_extension(&webm), "webm");
    assert_eq!(
        output_extension(&render(Format::Mp4, VideoCodec::H264)),
        "mp4"
    );
}

#[test]
fn outputs_without_audio_say_so() {
    let args = encoder_args(&render(Format::Mp4, VideoCodec::H264), false);
    assert!(args.contains(&"-an".to_owned()));
    assert_eq!(value_of(&args, "-c:a"), None);
}

#[test]
fn mismatched_codec_and_container_are_refused() {
    let err = check_codec(&render(Format::Mp4, VideoCodec::Vp9)).unwrap_err();
    assert!(matches!(err, MediaError::Unsupported(_)), "{err:?}");
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
