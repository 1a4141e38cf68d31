//! Real renders: the plan plumbing (inputs, outputs, counting, cleanup,
//! cancellation) on the fixtures and generated files.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::domain::graph::{Format, RenderParams, RenderPlan, Source, Step, VideoCodec};

use super::*;

pub(super) fn input(id: &str) -> Source {
    Source::Input(id.into())
}

pub(super) fn step(from: Source, node: &str, step: Step) -> Source {
    Source::Step {
        from: Box::new(from),
        node: node.into(),
        step,
    }
}

pub(super) fn trim(start_ms: u64, end_ms: u64) -> Step {
    Step::Trim {
        start_ms,
        end_ms: Some(end_ms),
    }
}

pub(super) fn width(width: u32) -> Step {
    Step::Resize {
        width: Some(width),
        height: None,
    }
}

/// An MP4 plan at a quick, low quality.
pub(super) fn mp4(source: Source) -> RenderPlan {
    RenderPlan {
        render_node: "out".into(),
        source,
        render: RenderParams {
            format: Format::Mp4,
            video_codec: VideoCodec::H264,
            crf: 30,
            max_height: None,
        },
        clips: None,
    }
}

/// What one render call produced and how many ffmpeg processes it started.
pub(super) struct Rendered {
    pub outputs: Vec<PathBuf>,
    pub encodes: usize,
    pub analyses: usize,
}

/// Probes the inputs, renders `plan` into `out_dir` and counts processes.
pub(super) async fn render(
    media: &Media,
    plan: &RenderPlan,
    inputs: &[(&str, &Path)],
    out_dir: &Path,
) -> Result<Rendered, MediaError> {
    let mut probes = Vec::new();
    for (_, path) in inputs {
        probes.push(media.probe(path).await?);
    }
    let files: HashMap<String, InputFile> = inputs
        .iter()
        .zip(&probes)
        .map(|((id, path), probe)| {
            let file = InputFile {
                path,
                probe,
                start_ms: 0,
                end_ms: None,
            };
            ((*id).to_owned(), file)
        })
        .collect();
    let spawned = &media.inner.spawned;
    let before = (
        spawned.encodes.load(Ordering::Relaxed),
        spawned.analyses.load(Ordering::Relaxed),
    );
    let outputs = media
        .render(plan, &files, out_dir, &CancellationToken::new())
        .await?;
    Ok(Rendered {
        outputs,
        encodes: spawned.encodes.load(Ordering::Relaxed) - before.0,
        analyses: spawned.analyses.load(Ordering::Relaxed) - before.1,
    })
}

/// Names in a directory (temp dirs of renders must be gone).
pub(super) fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[tokio::test]
async fn a_trimmed_resized_chain_is_one_encode_with_audio() {
    let Some(bunny) = fixture("bigbuckbunny.mp4") else {
        return;
    };
    let tmp = TempDir::new();
    let plan = mp4(step(
        step(input("in"), "cut", trim(1000, 3000)),
        "small",
        width(320),
    ));
    let done = render(&media(60), &plan, &[("in", &bunny)], &tmp.0)
        .await
        .expect("render");
    assert_eq!((done.encodes, done.analyses), (1, 0));
    let [out] = done.outputs.as_slice() else {
        panic!("one output expected: {:?}", done.outputs);
    };
    assert!(out.starts_with(&tmp.0));
    let (duration, streams) = inspect(out);
    assert!((duration - 2.0).abs() <= 0.1, "duration {duration}");
    assert_eq!(streams[0], ("h264".to_owned(), 320, 180));
    assert_eq!(streams[1].0, "aac");
    let name = out.file_name().map(|n| n.to_string_lossy().into_owned());
    assert_eq!(
        entries(&tmp.0),
        [name.unwrap_or_default()],
        "no temp files left"
    );
}

#[tokio::test]
async fn a_video_without_audio_renders_without_audio() {
    let Some(bikes) = fixture("bikes.mp4") else {
        return;
    };
    let tmp = TempDir::new();
    let plan = mp4(step(
        step(input("in"), "cut", trim(0, 1000)),
        "small",
        width(160),
    ));
    let done = render(&media(60), &plan, &[("in", &bikes)], &tmp.0)
        .await
        .expect("render");
    let (_, streams) = inspect(&done.outputs[0]);
    assert_eq!(streams, vec![("h264".to_owned(), 160, 68)]);
}

#[tokio::test]
async fn webm_renders_with_vp9_and_opus() {
    let Some(bunny) = fixture("bigbuckbunny.mp4") else {
        return;
    };
    let tmp = TempDir::new();
    let mut plan = mp4(step(
        step(input("in"), "cut", trim(0, 500)),
        "small",
        width(160),
    ));
    plan.render.format = Format::Webm;
    plan.render.video_codec = VideoCodec::Vp9;
    let done = render(&media(60), &plan, &[("in", &bunny)], &tmp.0)
        .await
        .expect("render");
    assert!(done.outputs[0].to_string_lossy().ends_with(".webm"));
    let (_, streams) = inspect(&done.outputs[0]);
    let codecs: Vec<_> = streams.iter().map(|s| s.0.as_str()).collect();
    assert_eq!(codecs, ["vp9", "opus"]);
}

#[tokio::test]
async fn a_trim_past_the_end_fails_before_running_ffmpeg() {
    let Some(bikes) = fixture("bikes.mp4") else {
        return;
    };
    let tmp = TempDir::new();
    let plan = mp4(step(input("in"), "cut", trim(10_000, 12_000)));
    let media = media(60);
    let err = render(&media, &plan, &[("in", &bikes)], &tmp.0)
        .await
        .err()
        .expect("an error");
    assert!(matches!(err, MediaError::TrimOutOfRange { .. }), "{err:?}");
    assert_eq!(media.inner.spawned.encodes.load(Ordering::Relaxed), 0);
    assert!(entries(&tmp.0).is_empty());
}

#[tokio::test]
async fn rotated_videos_render_upright() {
    let Some(bikes) = fixture("bikes.mp4") else {
        return;
    };
    let tmp = TempDir::new();
    let rotated = tmp.path("rotated.mp4");
    let (src, dst) = (bikes.to_string_lossy(), rotated.to_string_lossy());
    ffmpeg(&[
        "-i",
        &src,
        "-t",
        "1",
        "-c",
        "copy",
        "-metadata:s:v",
        "rotate=90",
        &dst,
    ]);
    let out_dir = tmp.path("out");
    std::fs::create_dir_all(&out_dir).expect("out dir");
    let done = render(
        &media(60),
        &mp4(step(input("in"), "w", width(136))),
        &[("in", &rotated)],
        &out_dir,
    )
    .await
    .expect("render");
    let (_, streams) = inspect(&done.outputs[0]);
    assert_eq!((streams[0].1, streams[0].2), (136, 320));
}

/// ffmpeg processes whose command line mentions `needle`.
fn processes_mentioning(needle: &str) -> usize {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .filter(|cmd| String::from_utf8_lossy(cmd).contains(needle))
        .count()
}

#[tokio::test]
async fn cancelling_kills_a_running_render_promptly_and_leaves_nothing() {
    let tmp = TempDir::new();
    // A long, tiny input rendered hugely: minutes of work unless killed.
    let input_path = tmp.path("long.mp4");
    let input_str = input_path.to_string_lossy().into_owned();
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc=s=32x32:r=10:d=600",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        &input_str,
    ]);
    let out_dir = tmp.path("out");
    std::fs::create_dir_all(&out_dir).expect("out dir");
    let media = media(3600);
    let probe = media.probe(&input_path).await.expect("probe");
    let plan = mp4(step(input("in"), "big", width(4096)));
    let cancel = CancellationToken::new();
    let task = {
        let (media, plan, input_path, probe, out_dir, cancel) = (
            media.clone(),
            plan.clone(),
            input_path.clone(),
            probe.clone(),
            out_dir.clone(),
            cancel.clone(),
        );
        tokio::spawn(async move {
            let file = InputFile {
                path: &input_path,
                probe: &probe,
                start_ms: 0,
                end_ms: None,
            };
            let files = HashMap::from([("in".to_owned(), file)]);
            media.render(&plan, &files, &out_dir, &cancel).await
        })
    };
    let needle = out_dir.to_string_lossy().into_owned();
    let deadline = Instant::now() + Duration::from_secs(20);
    while processes_mentioning(&needle) == 0 {
        assert!(Instant::now() < deadline, "ffmpeg never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let cancelled_at = Instant::now();
    cancel.cancel();
    let result = tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("render returns promptly")
        .expect("task");
    assert!(matches!(result, Err(MediaError::Cancelled)), "{result:?}");
    assert!(cancelled_at.elapsed() < Duration::from_secs(5));
    assert_eq!(processes_mentioning(&needle), 0, "ffmpeg still running");
    assert!(
        entries(&out_dir).is_empty(),
        "left behind: {:?}",
        entries(&out_dir)
    );
}
