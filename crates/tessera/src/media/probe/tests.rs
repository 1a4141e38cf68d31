//! Pure tests of ffprobe output parsing.

use serde_json::json;

use super::*;

fn parse_json(value: serde_json::Value) -> Result<Parsed, MediaError> {
    parse(value.to_string().as_bytes())
}

fn video_stream(extra: serde_json::Value) -> serde_json::Value {
    let mut stream =
        json!({"codec_type": "video", "codec_name": "h264", "width": 1280, "height": 720});
    if let (Some(s), Some(e)) = (stream.as_object_mut(), extra.as_object()) {
        s.extend(e.clone());
    }
    stream
}

fn with_streams(streams: Vec<serde_json::Value>) -> serde_json::Value {
    json!({
        "streams": streams,
        "format": {"format_name": "mov,mp4,m4a,3gp,3g2,mj2", "duration": "5.312000", "start_time": "0.000000"}
    })
}

#[test]
fn a_plain_video_with_audio_is_read() {
    let parsed = parse_json(with_streams(vec![
        video_stream(json!({})),
        json!({"codec_type": "audio", "codec_name": "aac"}),
    ]))
    .expect("valid");
    assert_eq!(
        parsed.probe,
        Probe {
            duration_ms: 5312,
            width: 1280,
            height: 720,
            has_audio: true,
            video_codec: "h264".into(),
            format_name: "mov,mp4,m4a,3gp,3g2,mj2".into(),
        }
    );
}

#[test]
fn a_quarter_turn_swaps_the_sides() {
    for rotation in [
        json!({"side_data_list": [{"rotation": -90}]}),
        json!({"tags": {"rotate": "270"}}),
    ] {
        let parsed = parse_json(with_streams(vec![video_stream(rotation)])).expect("valid");
        assert_eq!((parsed.probe.width, parsed.probe.height), (720, 1280));
    }
    let upside_down = video_stream(json!({"side_data_list": [{"rotation": 180}]}));
    let parsed = parse_json(with_streams(vec![upside_down])).expect("valid");
    assert_eq!((parsed.probe.width, parsed.probe.height), (1280, 720));
}

#[test]
fn anamorphic_pixels_are_stretched_to_display_size() {
    let stream = json!({"codec_type": "video", "codec_name": "mpeg2video", "width": 720, "height": 576, "sample_aspect_ratio": "16:15"});
    let parsed = parse_json(with_streams(vec![stream])).expect("valid");
    assert_eq!((parsed.probe.width, parsed.probe.height), (768, 576));
}

#[test]
fn cover_art_is_not_the_video() {
    let cover = video_stream(json!({"codec_name": "mjpeg", "disposition": {"attached_pic": 1}}));
    let err = parse_json(with_streams(vec![
        json!({"codec_type": "audio", "codec_name": "aac"}),
        cover.clone(),
    ]))
    .unwrap_err();
    assert!(matches!(err, MediaError::NotAVideo(m) if m.contains("no video stream")));
    let parsed = parse_json(with_streams(vec![cover, video_stream(json!({}))])).expect("valid");
    assert_eq!(parsed.probe.video_codec, "h264");
}

#[test]
fn audio_only_files_are_not_videos() {
    let err = parse_json(with_streams(vec![json!({"codec_type": "audio"})])).unwrap_err();
    assert!(matches!(err, MediaError::NotAVideo(_)));
}

#[test]
fn a_missing_duration_falls_back_to_the_stream_and_then_fails() {
    let mut doc = with_streams(vec![video_stream(json!({"duration": "2.5"}))]);
    doc["format"]["duration"] = json!("N/A");
    assert_eq!(parse_json(doc).expect("valid").probe.duration_ms, 2500);
    let mut doc = with_streams(vec![video_stream(json!({}))]);
    doc["format"] = json!({"format_name": "matroska,webm"});
    assert!(matches!(parse_json(doc), Err(MediaError::NotAVideo(m)) if m.contains("duration")));
}

#[test]
fn garbage_is_not_a_video() {
    assert!(matches!(parse(b"{}"), Err(MediaError::NotAVideo(_))));
    assert!(matches!(parse(b"not json"), Err(MediaError::NotAVideo(_))));
}

fn parsed(duration_ms: u64, start_ms: i64) -> Parsed {
    Parsed {
        probe: Probe {
            duration_ms,
            width: 2,
            height: 2,
            has_audio: false,
            video_codec: "h264".into(),
            format_name: "mpegts".into(),
        },
        start_ms,
    }
}

#[test]
fn media_reaching_its_declared_end_is_complete() {
    let csv = b"5.269333,5.269333,0.021333\n5.290667,N/A,0.021333\n";
    check_complete(csv, &parsed(5312, 0)).expect("complete");
}

#[test]
fn the_container_start_time_is_taken_into_account() {
    let csv = b"6.690667,6.690667,0.021333,\n";
    check_complete(csv, &parsed(5312, 1400)).expect("complete");
}

#[test]
fn media_ending_early_is_truncated() {
    let csv = b"1.941333,1.941333,0.021333\n1.960000,1.92,0.040000\n";
    let err = check_complete(csv, &parsed(5312, 0)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "not a supported video: the file is truncated: its media ends at 2.0 s of a declared 5.3 s"
    );
    assert!(check_complete(b"", &parsed(5312, 0)).is_err());
}

#[test]
fn the_tail_check_seeks_near_the_end() {
    let args = tail_args("/v.ts", &parsed(10_000, 1400));
    let at = args
        .iter()
        .position(|a| a == "-read_intervals")
        .expect("flag");
    assert_eq!(args[at + 1], "8.400%");
    assert_eq!(args.last().map(String::as_str), Some("file:/v.ts"));
}

#[test]
fn seconds_are_formatted_with_milliseconds() {
    assert_eq!(seconds(0), "0.000");
    assert_eq!(seconds(1500), "1.500");
    assert_eq!(seconds(61_001), "61.001");
    assert_eq!(seconds(-40), "-0.040");
}

#[test]
fn frame_rates_are_read_as_fractions_with_a_fallback() {
    assert_eq!(
        parse_frame_rate(b"30000/1001\n30/1\n"),
        FrameRate {
            num: 30000,
            den: 1001
        }
    );
    assert_eq!(
        parse_frame_rate(b"0/0\n25/1\n"),
        FrameRate { num: 25, den: 1 }
    );
    assert_eq!(parse_frame_rate(b"90000/1\n"), FrameRate::default());
    assert_eq!(parse_frame_rate(b""), FrameRate::default());
    assert_eq!(FrameRate::default().to_string(), "30/1");
}

#[test]
fn the_frame_rate_probe_is_guarded_and_reads_one_stream() {
    let args = frame_rate_args("/v.mp4");
    assert!(
        args.windows(2)
            .any(|w| w[0] == "-protocol_whitelist" && w[1] == "file")
    );
    assert!(
        args.windows(2)
            .any(|w| w[0] == "-select_streams" && w[1] == "V:0")
    );
    assert_eq!(args.last().map(String::as_str), Some("file:/v.mp4"));
}
