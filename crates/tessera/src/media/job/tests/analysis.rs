//! The analysis pass and how its findings shape the encoding pass.

use crate::media::analysis::{Loudness, Silence, TapKind};

use super::*;

fn remove_silence() -> Step {
    Step::RemoveSilence {
        threshold_db: -35.0,
        min_silence_ms: 700,
        padding_ms: 100,
    }
}

fn normalize() -> Step {
    Step::NormalizeAudio { target_lufs: -14.0 }
}

fn analysis_of(plan: &RenderPlan, p: &Probe) -> Option<AnalysisJob> {
    let f = files(&[("in", Path::new("/in/a.mp4"), p)]);
    let prepared = prepare(plan, &f).expect("prepared");
    analysis_job(plan, &prepared, paths()).expect("analysis job")
}

#[test]
fn remove_silence_taps_the_audio_into_silencedetect() {
    let plan = plan(step(input("in"), "rs", remove_silence()));
    let job = analysis_of(&plan, &bunny()).expect("an analysis pass");
    assert_eq!(
        value_of(&job.args, "-filter_complex"),
        Some(
            "[0:a:0]asetpts=PTS-STARTPTS,asplit=2[x1][r2];\
             [x1]silencedetect=n=-35dB:d=0.7,ametadata@t1=mode=print[o3];\
             [r2]anullsink"
        )
    );
    assert_eq!(value_of(&job.args, "-map"), Some("[o3]"));
    assert_eq!(value_of(&job.args, "-v"), Some("info"));
    assert!(job.args.contains(&"-nostats".to_owned()));
    assert!(
        job.args
            .ends_with(&["-f".to_owned(), "null".to_owned(), "-".to_owned()])
    );
    assert_eq!(
        job.taps,
        [Tap {
            name: "t1".into(),
            node: "rs".into(),
            kind: TapKind::Silence
        }]
    );
}

#[test]
fn both_analysis_nodes_share_one_pass() {
    let source = step(
        step(
            step(input("in"), "rs", remove_silence()),
            "fast",
            Step::Speed { factor: 2.0 },
        ),
        "na",
        normalize(),
    );
    let job = analysis_of(&plan(source), &bunny()).expect("an analysis pass");
    assert_eq!(
        value_of(&job.args, "-filter_complex"),
        Some(
            "[0:a:0]asetpts=PTS-STARTPTS,asplit=2[x1][r2];\
             [x1]silencedetect=n=-35dB:d=0.7,ametadata@t1=mode=print[o3];\
             [r2]atempo=2,asplit=2[x4][r5];\
             [x4]loudnorm@t2=I=-14:TP=-1.5:LRA=20:print_format=json[o6];\
             [r5]anullsink"
        )
    );
    let maps: Vec<_> = job
        .args
        .windows(2)
        .filter(|w| w[0] == "-map")
        .map(|w| w[1].as_str())
        .collect();
    assert_eq!(maps, ["[o3]", "[o6]"]);
    assert_eq!(job.args.iter().filter(|a| *a == "-i").count(), 1);
}

#[test]
fn the_analysis_pass_reads_only_audio_with_the_same_seeking() {
    let source = step(
        step(
            input("in"),
            "cut",
            Step::Trim {
                start_ms: 1000,
                end_ms: None,
            },
        ),
        "na",
        normalize(),
    );
    let job = analysis_of(&plan(source), &bunny()).expect("an analysis pass");
    assert_eq!(value_of(&job.args, "-ss"), Some("1.000"));
    let graph = value_of(&job.args, "-filter_complex").expect("graph");
    assert!(!graph.contains(":V:"), "{graph}");
}

#[test]
fn no_analysis_without_audio_or_without_analysis_nodes() {
    let silent = plan(step(input("in"), "rs", remove_silence()));
    assert!(analysis_of(&silent, &bikes()).is_none());
    let plain = plan(step(input("in"), "fast", Step::Speed { factor: 2.0 }));
    assert!(analysis_of(&plain, &bunny()).is_none());
}

#[test]
fn an_analysis_node_inside_a_concat_part_taps_that_part() {
    let (a, b) = (bunny(), bikes());
    let f = files(&[
        ("a", Path::new("/a.mp4"), &a),
        ("b", Path::new("/b.mp4"), &b),
    ]);
    let source = Source::Concat {
        node: "join".into(),
        parts: vec![step(input("a"), "na", normalize()), input("b")],
    };
    let prepared = prepare(&plan(source.clone()), &f).expect("prepared");
    let job = analysis_job(&plan(source), &prepared, paths())
        .expect("job")
        .expect("an analysis pass");
    let graph = value_of(&job.args, "-filter_complex").expect("graph");
    assert!(
        graph.starts_with("[0:a:0]asetpts=PTS-STARTPTS,asplit=2[x1][r2];[x1]loudnorm@t1="),
        "{graph}"
    );
    assert!(graph.contains("concat=n=2:v=0:a=1"), "{graph}");
}

fn analysis_with_silence(node: &str, silences: Vec<Silence>) -> Analysis {
    Analysis {
        silences: HashMap::from([(node.to_owned(), silences)]),
        loudness: HashMap::new(),
    }
}

#[test]
fn silences_found_become_select_filters_and_shorten_the_video() {
    let p = bunny();
    let f = files(&[("in", Path::new("/in/a.mp4"), &p)]);
    let mut plan = plan(step(input("in"), "rs", remove_silence()));
    plan.clips = Some(ClipSpec {
        node: "cl".into(),
        clip_duration_ms: 2000,
        max_clips: 10,
    });
    let found = vec![Silence {
        start_s: 1.0,
        end_s: Some(3.0),
    }];
    let job = render_with(&plan, &f, &analysis_with_silence("rs", found));
    let g = graph(&job);
    assert!(
        g.contains("select=gte(t\\,0)*lt(t\\,1.1)+gte(t\\,2.9)*lt(t\\,5.312),setpts=PTS-(gte(T\\,2.9)*1.8)/TB"),
        "{g}"
    );
    assert!(
        g.contains("aresample=48000,asetnsamples=n=480:p=0,aselect=gte(t\\,0)*lt(t\\,1.1)+gte(t\\,2.9)*lt(t\\,5.312),asetpts=N/SR/TB"),
        "{g}"
    );
    // 5.312 s less 1.8 s cut: two clips (2 s and 1.5 s), not three.
    assert_eq!(job.outputs.len(), 2);
}

#[test]
fn remove_silence_without_silence_changes_nothing() {
    let p = bunny();
    let f = files(&[("in", Path::new("/in/a.mp4"), &p)]);
    let plan = plan(step(input("in"), "rs", remove_silence()));
    let job = render_with(&plan, &f, &analysis_with_silence("rs", vec![]));
    assert!(!graph(&job).contains("select"), "{}", graph(&job));
}

#[test]
fn all_silence_is_an_error_naming_the_node() {
    let p = bunny();
    let f = files(&[("in", Path::new("/in/a.mp4"), &p)]);
    let plan = plan(step(input("in"), "rs", remove_silence()));
    let prepared = prepare(&plan, &f).expect("prepared");
    let everything = vec![Silence {
        start_s: 0.0,
        end_s: None,
    }];
    let err = render_job(
        &plan,
        &prepared,
        &analysis_with_silence("rs", everything),
        &HashMap::new(),
        paths(),
    )
    .unwrap_err();
    assert!(
        matches!(&err, MediaError::AllSilent { node } if node == "rs"),
        "{err:?}"
    );
}

#[test]
fn a_measured_loudness_is_applied_linearly() {
    let p = bunny();
    let f = files(&[("in", Path::new("/in/a.mp4"), &p)]);
    let plan = plan(step(input("in"), "na", normalize()));
    let measured = Loudness {
        input_i: -22.12,
        input_tp: -18.06,
        input_lra: 1.5,
        input_thresh: -32.25,
        target_offset: -0.87,
    };
    let analysis = Analysis {
        silences: HashMap::new(),
        loudness: HashMap::from([("na".to_owned(), measured)]),
    };
    let job = render_with(&plan, &f, &analysis);
    assert!(
        graph(&job).contains(
            "asetpts=PTS-STARTPTS,loudnorm=I=-14:TP=-1.5:LRA=20:measured_I=-22.12:measured_TP=-18.06\
             :measured_LRA=1.5:measured_thresh=-32.25:offset=-0.87:linear=true:print_format=none,aresample=48000[out_a"
        ),
        "{}",
        graph(&job)
    );
    let unmeasured = render_with(&plan, &f, &Analysis::default());
    assert!(!graph(&unmeasured).contains("loudnorm"));
}
