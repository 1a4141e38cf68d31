//! Real renders of every node type on short, small inputs: what comes out
//! is measured with ffprobe/ffmpeg, and every render call is exactly one
//! encoding process (plus one analysis pass where the plan needs it).

use std::path::{Path, PathBuf};

use crate::domain::graph::{AspectRatio, ClipSpec, Cue, Position, ReframeMode, Source, Step};

use super::renders::{input, mp4, render, step, trim, width};
use super::*;

fn reframe(w: u32, h: u32, mode: ReframeMode) -> Step {
    Step::Reframe {
        aspect: AspectRatio {
            width: w,
            height: h,
        },
        mode,
    }
}

/// Integrated loudness of a file's audio, with ebur128.
fn loudness(path: &Path) -> f64 {
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-hide_banner", "-nostats", "-i"])
        .arg(path)
        .args(["-af", "ebur128", "-f", "null", "-"])
        .output()
        .expect("run ffmpeg");
    let log = String::from_utf8_lossy(&out.stderr);
    let summary = log.rsplit("Summary:").next().unwrap_or_default();
    summary
        .lines()
        .find_map(|l| l.trim().strip_prefix("I:"))
        .and_then(|v| v.trim().trim_end_matches("LUFS").trim().parse().ok())
        .expect("integrated loudness in the ebur128 summary")
}

/// 1.5 s tone, 2 s silence, 1.5 s tone, with a small test picture.
fn tone_silence_tone(tmp: &TempDir) -> PathBuf {
    let path = tmp.path("tone-silence-tone.mp4");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc=s=160x120:r=25:d=5",
        "-f",
        "lavfi",
        "-i",
        "sine=f=440:d=1.5",
        "-f",
        "lavfi",
        "-i",
        "anullsrc=r=44100:cl=mono:d=2",
        "-f",
        "lavfi",
        "-i",
        "sine=f=660:d=1.5",
        "-filter_complex",
        "[1][2][3]concat=n=3:v=0:a=1[a]",
        "-map",
        "0:v",
        "-map",
        "[a]",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-c:a",
        "aac",
        &path.to_string_lossy(),
    ]);
    path
}

fn has_audio(path: &Path) -> bool {
    inspect(path).1.iter().any(|s| s.0 == "aac")
}

#[tokio::test]
async fn reframe_crop_gives_a_nine_by_sixteen_picture() {
    let Some(bunny) = fixture("bigbuckbunny.mp4") else {
        return;
    };
    let tmp = TempDir::new();
    let source = step(
        step(input("in"), "cut", trim(0, 500)),
        "rf",
        reframe(9, 16, ReframeMode::Crop),
    );
    let done = render(&media(60), &mp4(source), &[("in", &bunny)], &tmp.0)
        .await
        .expect("render");
    assert_eq!(done.encodes, 1);
    let (_, streams) = inspect(&done.outputs[0]);
    let (w, h) = (streams[0].1, streams[0].2);
    assert_eq!(h, 720);
    assert!(
        w.is_multiple_of(2) && w.abs_diff(h * 9 / 16) <= 1,
        "{w}x{h}"
    );
}

#[tokio::test]
async fn reframe_pad_adds_bars_to_reach_the_ratio() {
    let Some(bikes) = fixture("bikes.mp4") else {
        return;
    };
    let tmp = TempDir::new();
    let source = step(
        step(input("in"), "cut", trim(0, 500)),
        "rf",
        reframe(1, 1, ReframeMode::Pad),
    );
    let done = render(&media(60), &mp4(source), &[("in", &bikes)], &tmp.0)
        .await
        .expect("render");
    let (_, streams) = inspect(&done.outputs[0]);
    assert_eq!((streams[0].1, streams[0].2), (640, 640));
}

#[tokio::test]
async fn speed_two_halves_the_duration_and_keeps_the_audio() {
    let Some(bunny) = fixture("bigbuckbunny.mp4") else {
        return;
    };
    let tmp = TempDir::new();
    let source = step(
        step(step(input("in"), "cut", trim(0, 2000)), "small", width(160)),
        "fast",
        Step::Speed { factor: 2.0 },
    );
    let done = render(&media(60), &mp4(source), &[("in", &bunny)], &tmp.0)
        .await
        .expect("render");
    let (duration, _) = inspect(&done.outputs[0]);
    assert!((duration - 1.0).abs() <= 0.15, "duration {duration}");
    assert!(has_audio(&done.outputs[0]));
}

#[tokio::test]
async fn remove_silence_cuts_about_the_silence_in_one_analysis_and_one_encode() {
    let tmp = TempDir::new();
    let clip = tone_silence_tone(&tmp);
    let out_dir = tmp.path("out");
    std::fs::create_dir_all(&out_dir).expect("out dir");
    let rs = Step::RemoveSilence {
        threshold_db: -35.0,
        min_silence_ms: 700,
        padding_ms: 100,
    };
    let done = render(
        &media(60),
        &mp4(step(input("in"), "rs", rs)),
        &[("in", &clip)],
        &out_dir,
    )
    .await
    .expect("render");
    assert_eq!((done.analyses, done.encodes), (1, 1));
    let (duration, _) = inspect(&done.outputs[0]);
    // 5 s less the 2 s silence, of which 2 × 100 ms padding stays.
    assert!((duration - 3.2).abs() <= 0.3, "duration {duration}");
    assert!(has_audio(&done.outputs[0]));
}

#[tokio::test]
async fn normalize_audio_reaches_its_target_loudness() {
    let Some(bunny) = fixture("bigbuckbunny.mp4") else {
        return;
    };
    let tmp = TempDir::new();
    let target = -16.0;
    let source = step(
        step(input("in"), "small", width(160)),
        "na",
        Step::NormalizeAudio {
            target_lufs: target,
        },
    );
    let done = render(&media(60), &mp4(source), &[("in", &bunny)], &tmp.0)
        .await
        .expect("render");
    assert_eq!((done.analyses, done.encodes), (1, 1));
    let measured = loudness(&done.outputs[0]);
    assert!((measured - target).abs() <= 1.0, "measured {measured} LUFS");
}

#[tokio::test]
async fn both_analysis_nodes_share_one_analysis_pass() {
    let tmp = TempDir::new();
    let clip = tone_silence_tone(&tmp);
    let out_dir = tmp.path("out");
    std::fs::create_dir_all(&out_dir).expect("out dir");
    let rs = Step::RemoveSilence {
        threshold_db: -35.0,
        min_silence_ms: 700,
        padding_ms: 100,
    };
    let na = Step::NormalizeAudio { target_lufs: -14.0 };
    let plan = mp4(step(step(input("in"), "rs", rs), "na", na));
    let done = render(&media(60), &plan, &[("in", &clip)], &out_dir)
        .await
        .expect("render");
    assert_eq!((done.analyses, done.encodes), (1, 1));
    let measured = loudness(&done.outputs[0]);
    assert!((measured + 14.0).abs() <= 1.0, "measured {measured} LUFS");
}

#[tokio::test]
async fn audio_steps_on_a_silent_video_do_nothing_and_need_no_analysis() {
    let Some(bikes) = fixture("bikes.mp4") else {
        return;
    };
    let tmp = TempDir::new();
    let source = step(
        step(
            step(step(input("in"), "cut", trim(0, 1000)), "small", width(160)),
            "rs",
            Step::RemoveSilence {
                threshold_db: -35.0,
                min_silence_ms: 700,
                padding_ms: 100,
            },
        ),
        "na",
        Step::NormalizeAudio { target_lufs: -14.0 },
    );
    let done = render(&media(60), &mp4(source), &[("in", &bikes)], &tmp.0)
        .await
        .expect("render");
    assert_eq!((done.analyses, done.encodes), (0, 1));
    let (duration, streams) = inspect(&done.outputs[0]);
    assert!((duration - 1.0).abs() <= 0.1, "duration {duration}");
    assert_eq!(streams.len(), 1);
}

const HOSTILE: &str = "it's 100%{pts} : \\ 'q' \"dq\" [out_v1];b,c\nline2 %{eif:1:d} {\\b1}\\N";

#[tokio::test]
async fn hostile_text_and_captions_render_as_plain_text_from_a_hostile_directory() {
    let Some(bunny) = fixture("bigbuckbunny.mp4") else {
        return;
    };
    let tmp = TempDir::new();
    let out_dir = tmp.path("we'ird:d,ir[x];y\\z");
    std::fs::create_dir_all(&out_dir).expect("out dir");
    let cues = vec![Cue {
        start_ms: 0,
        end_ms: 800,
        text: HOSTILE.into(),
    }];
    let source = step(
        step(
            step(step(input("in"), "cut", trim(0, 1000)), "small", width(320)),
            "tx",
            Step::TextOverlay {
                text: HOSTILE.into(),
                position: Position::TopRight,
                font_size: 20,
            },
        ),
        "cc",
        Step::Captions {
            cues,
            font_size: 18,
        },
    );
    let done = render(&media(60), &mp4(source), &[("in", &bunny)], &out_dir)
        .await
        .expect("render");
    assert_eq!(done.encodes, 1);
    let (duration, streams) = inspect(&done.outputs[0]);
    assert!((duration - 1.0).abs() <= 0.1, "duration {duration}");
    assert_eq!((streams[0].1, streams[0].2), (320, 180));
    assert_eq!(
        super::renders::entries(&out_dir).len(),
        1,
        "temp files removed"
    );
}

#[tokio::test]
async fn clips_of_ten_seconds_in_three_second_clips_are_four_files_from_one_encode() {
    let Some(bikes) = fixture("bikes.mp4") else {
        return;
    };
    let tmp = TempDir::new();
    let mut plan = mp4(step(input("in"), "small", width(160)));
    plan.clips = Some(ClipSpec {
        node: "cl".into(),
        clip_duration_ms: 3000,
        max_clips: 10,
    });
    let media = media(60);
    let done = render(&media, &plan, &[("in", &bikes)], &tmp.0)
        .await
        .expect("render");
    assert_eq!(done.encodes, 1);
    let durations: Vec<f64> = done.outputs.iter().map(|p| inspect(p).0).collect();
    assert_eq!(durations.len(), 4, "{durations:?}");
    for d in &durations[..3] {
        assert!((d - 3.0).abs() <= 0.1, "{durations:?}");
    }
    assert!((durations[3] - 1.0).abs() <= 0.1, "{durations:?}");

    plan.clips = Some(ClipSpec {
        node: "cl".into(),
        clip_duration_ms: 3000,
        max_clips: 2,
    });
    let capped = render(&media, &plan, &[("in", &bikes)], &tmp.0)
        .await
        .expect("render");
    assert_eq!(capped.outputs.len(), 2);
}

#[tokio::test]
async fn concat_joins_a_video_with_audio_and_one_without_at_the_first_size() {
    let (Some(bunny), Some(bikes)) = (fixture("bigbuckbunny.mp4"), fixture("bikes.mp4")) else {
        return;
    };
    let tmp = TempDir::new();
    let source = Source::Concat {
        node: "join".into(),
        parts: vec![
            step(step(input("a"), "ta", trim(0, 1000)), "small", width(320)),
            step(input("b"), "tb", trim(0, 1000)),
        ],
    };
    let done = render(
        &media(60),
        &mp4(source),
        &[("a", &bunny), ("b", &bikes)],
        &tmp.0,
    )
    .await
    .expect("render");
    assert_eq!(done.encodes, 1);
    let (duration, streams) = inspect(&done.outputs[0]);
    assert!((duration - 2.0).abs() <= 0.15, "duration {duration}");
    assert_eq!(streams[0], ("h264".to_owned(), 320, 180));
    assert_eq!(streams[1].0, "aac");
}
