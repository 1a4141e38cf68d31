//! Pure tests of whole argument lists: one per node type and combinations.

mod analysis;
mod joins;
mod text;

use std::collections::HashMap;
use std::path::Path;

use crate::domain::graph::{
    AspectRatio, ClipSpec, Format, ReframeMode, RenderParams, RenderPlan, Source, Step, VideoCodec,
};

use super::*;

pub(super) fn probe(width: u32, height: u32, has_audio: bool, duration_ms: u64) -> Probe {
    Probe {
        duration_ms,
        width,
        height,
        has_audio,
        video_codec: "h264".into(),
        format_name: "mov,mp4,m4a,3gp,3g2,mj2".into(),
    }
}

/// Like the bigbuckbunny fixture: 720p with audio.
pub(super) fn bunny() -> Probe {
    probe(1280, 720, true, 5312)
}

/// Like the bikes fixture: 640x272, no audio.
pub(super) fn bikes() -> Probe {
    probe(640, 272, false, 10_000)
}

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

pub(super) fn plan(source: Source) -> RenderPlan {
    RenderPlan {
        render_node: "out".into(),
        source,
        render: RenderParams {
            format: Format::Mp4,
            video_codec: VideoCodec::H264,
            crf: 23,
            max_height: None,
        },
        clips: None,
    }
}

pub(super) fn files<'a>(entries: &[(&str, &'a Path, &'a Probe)]) -> HashMap<String, InputFile<'a>> {
    entries
        .iter()
        .map(|&(id, path, probe)| {
            let file = InputFile {
                path,
                probe,
                start_ms: 0,
                end_ms: None,
            };
            (id.to_owned(), file)
        })
        .collect()
}

/// Outputs to `/out/r.*`, temp files in `/work`.
pub(super) fn paths() -> JobPaths<'static> {
    JobPaths {
        out_dir: Path::new("/out"),
        work_dir: Path::new("/work"),
        stem: "r",
    }
}

pub(super) fn render_with(
    plan: &RenderPlan,
    files: &HashMap<String, InputFile>,
    analysis: &Analysis,
) -> RenderJob {
    let prepared = prepare(plan, files).expect("prepared");
    render_job(plan, &prepared, analysis, &HashMap::new(), paths()).expect("render job")
}

/// The render job of a plan reading bunny as `in`.
pub(super) fn render_bunny(plan: &RenderPlan) -> RenderJob {
    let p = bunny();
    render_with(
        plan,
        &files(&[("in", Path::new("/in/bunny.mp4"), &p)]),
        &Analysis::default(),
    )
}

pub(super) fn value_of<'a>(args: &'a [String], flag: &str) -> Option<&'a str> {
    let at = args.iter().position(|a| a == flag)?;
    args.get(at + 1).map(String::as_str)
}

pub(super) fn graph(job: &RenderJob) -> &str {
    value_of(&job.args, "-filter_complex").expect("a filter graph")
}

fn trim(start_ms: u64, end_ms: Option<u64>) -> Step {
    Step::Trim { start_ms, end_ms }
}

fn width(width: u32) -> Step {
    Step::Resize {
        width: Some(width),
        height: None,
    }
}

#[test]
fn a_chain_is_one_decode_one_graph_and_one_encode() {
    let source = step(
        step(input("in"), "cut", trim(1000, Some(3000))),
        "small",
        width(320),
    );
    let job = render_bunny(&plan(source));
    let args: Vec<&str> = job.args.iter().map(String::as_str).collect();
    assert_eq!(
        args,
        [
            "-nostdin",
            "-hide_banner",
            "-v",
            "error",
            "-y",
            "-ss",
            "1.000",
            "-t",
            "2.000",
            "-protocol_whitelist",
            "file",
            "-format_whitelist",
            crate::media::args::DEMUXERS,
            "-i",
            "file:/in/bunny.mp4",
            "-filter_complex",
            "[0:V:0]setpts=PTS-STARTPTS,scale=320:180,setsar=1,format=yuv420p[out_v1];\
             [0:a:0]asetpts=PTS-STARTPTS[out_a2]",
            "-map",
            "[out_v1]",
            "-map",
            "[out_a2]",
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-crf",
            "23",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-b:a",
            "128k",
            "-ac",
            "2",
            "-map_metadata",
            "-1",
            "-map_chapters",
            "-1",
            "-f",
            "mp4",
            "-movflags",
            "+faststart",
            "file:/out/r.mp4",
        ]
    );
    assert_eq!(job.outputs, [Path::new("/out/r.mp4")]);
    assert!(job.files.is_empty());
}

#[test]
fn inputs_without_audio_give_video_only_outputs() {
    let p = bikes();
    let job = render_with(
        &plan(input("in")),
        &files(&[("in", Path::new("/in/bikes.mp4"), &p)]),
        &Analysis::default(),
    );
    assert_eq!(
        graph(&job),
        "[0:V:0]setpts=PTS-STARTPTS,scale=640:272,setsar=1,format=yuv420p[out_v1]"
    );
    assert!(job.args.contains(&"-an".to_owned()));
    assert!(!job.args.iter().any(|a| a.contains(":a:")));
}

#[test]
fn the_callers_clip_window_becomes_input_seeking() {
    let p = bunny();
    let mut f = files(&[("in", Path::new("/in/bunny.mp4"), &p)]);
    if let Some(file) = f.get_mut("in") {
        file.start_ms = 500;
        file.end_ms = Some(2500);
    }
    let job = render_with(
        &plan(step(input("in"), "cut", trim(1000, None))),
        &f,
        &Analysis::default(),
    );
    assert_eq!(value_of(&job.args, "-ss"), Some("1.500"));
    assert_eq!(value_of(&job.args, "-t"), Some("1.000"));
}

#[test]
fn reframe_crops_or_pads_to_the_exact_ratio() {
    let reframe = |mode| Step::Reframe {
        aspect: AspectRatio {
            width: 9,
            height: 16,
        },
        mode,
    };
    let crop = render_bunny(&plan(step(input("in"), "rf", reframe(ReframeMode::Crop))));
    assert!(
        graph(&crop).starts_with("[0:V:0]setpts=PTS-STARTPTS,scale=1280:720,setsar=1,crop=406:720:436:0,format=yuv420p[out_v1]"),
        "{}",
        graph(&crop)
    );
    let pad = render_bunny(&plan(step(input("in"), "rf", reframe(ReframeMode::Pad))));
    assert!(
        graph(&pad).contains(",pad=1280:2276:0:778:black,format=yuv420p"),
        "{}",
        graph(&pad)
    );
}

#[test]
fn a_resize_after_a_reframe_scales_the_reframed_picture() {
    let source = step(
        step(
            input("in"),
            "rf",
            Step::Reframe {
                aspect: AspectRatio {
                    width: 1,
                    height: 1,
                },
                mode: ReframeMode::Crop,
            },
        ),
        "small",
        width(200),
    );
    let job = render_bunny(&plan(source));
    assert!(
        graph(&job).contains("crop=720:720:280:0,scale=200:200,setsar=1,format=yuv420p"),
        "{}",
        graph(&job)
    );
}

#[test]
fn speed_changes_timestamps_and_tempo_in_steps_atempo_accepts() {
    let job = render_bunny(&plan(step(
        input("in"),
        "fast",
        Step::Speed { factor: 4.0 },
    )));
    let g = graph(&job);
    assert!(g.contains("setpts=PTS-STARTPTS,setpts=PTS/4,"), "{g}");
    assert!(
        g.contains("asetpts=PTS-STARTPTS,atempo=2,atempo=2[out_a"),
        "{g}"
    );
    let slow = render_bunny(&plan(step(
        input("in"),
        "slow",
        Step::Speed { factor: 0.3 },
    )));
    assert!(
        graph(&slow).contains("atempo=0.5,atempo=0.6["),
        "{}",
        graph(&slow)
    );
}

#[test]
fn a_trim_after_a_speed_change_stays_in_the_graph() {
    let source = step(
        step(input("in"), "fast", Step::Speed { factor: 2.0 }),
        "cut",
        trim(500, Some(1500)),
    );
    let job = render_bunny(&plan(source));
    assert_eq!(value_of(&job.args, "-ss"), None);
    let g = graph(&job);
    assert!(
        g.contains("setpts=PTS/2,trim=start=0.5:end=1.5,setpts=PTS-STARTPTS"),
        "{g}"
    );
    assert!(
        g.contains("atempo=2,atrim=start=0.5:end=1.5,asetpts=PTS-STARTPTS"),
        "{g}"
    );
}

#[test]
fn a_trim_past_the_end_is_refused_before_running_anything() {
    let p = bunny();
    let f = files(&[("in", Path::new("/in.mp4"), &p)]);
    let err = prepare(&plan(step(input("in"), "cut", trim(6000, None))), &f).unwrap_err();
    assert_eq!(
        err.to_string(),
        "trim starts at 6000 ms, but the video is only 5312 ms long"
    );
    let late = step(
        step(input("in"), "fast", Step::Speed { factor: 2.0 }),
        "cut",
        trim(3000, None),
    );
    let prepared = prepare(&plan(late.clone()), &f).expect("prepared");
    let err = render_job(
        &plan(late),
        &prepared,
        &Analysis::default(),
        &HashMap::new(),
        paths(),
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            MediaError::TrimOutOfRange {
                start_ms: 3000,
                duration_ms: 2656
            }
        ),
        "{err:?}"
    );
}

#[test]
fn max_height_caps_the_output_keeping_the_ratio() {
    let mut capped = plan(input("in"));
    capped.render.max_height = Some(360);
    assert!(graph(&render_bunny(&capped)).contains("scale=640:360,setsar=1,format=yuv420p"));
}

#[test]
fn a_missing_input_file_is_named() {
    let p = bunny();
    let f = files(&[("other", Path::new("/in.mp4"), &p)]);
    let err = prepare(&plan(input("in")), &f).unwrap_err();
    assert_eq!(err.to_string(), "no video was given for input node \"in\"");
}

#[test]
fn a_mismatched_codec_is_refused() {
    let mut bad = plan(input("in"));
    bad.render.format = Format::Webm;
    let p = bunny();
    let f = files(&[("in", Path::new("/in.mp4"), &p)]);
    let prepared = prepare(&bad, &f).expect("prepared");
    let err = render_job(
        &bad,
        &prepared,
        &Analysis::default(),
        &HashMap::new(),
        paths(),
    )
    .unwrap_err();
    assert!(matches!(err, MediaError::Unsupported(_)), "{err:?}");
}

#[test]
fn webm_outputs_get_the_webm_extension() {
    let mut webm = plan(input("in"));
    webm.render.format = Format::Webm;
    webm.render.video_codec = VideoCodec::Vp9;
    assert_eq!(render_bunny(&webm).outputs, [Path::new("/out/r.webm")]);
}
