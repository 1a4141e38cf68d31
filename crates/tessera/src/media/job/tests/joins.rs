//! Clips and concat: one decode, a split or a join in the graph, and one
//! encode per output.

use super::*;

fn trim(start_ms: u64, end_ms: Option<u64>) -> Step {
    Step::Trim { start_ms, end_ms }
}

#[test]
fn clips_split_once_and_encode_each_clip_to_its_own_file() {
    let p = bikes();
    let mut clipped = plan(input("in"));
    clipped.clips = Some(ClipSpec {
        node: "cl".into(),
        clip_duration_ms: 3000,
        max_clips: 10,
    });
    let job = render_with(
        &clipped,
        &files(&[("in", Path::new("/in.mp4"), &p)]),
        &Analysis::default(),
    );
    let g = graph(&job);
    assert!(g.starts_with("[0:V:0]setpts=PTS-STARTPTS,scale=640:272,setsar=1,format=yuv420p,split=4[v1][v2][v3][v4];"), "{g}");
    assert!(
        g.contains("[v4]trim=start=9:end=10,setpts=PTS-STARTPTS[out_v"),
        "{g}"
    );
    let names: Vec<_> = job
        .outputs
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        [
            "/out/r-clip01.mp4",
            "/out/r-clip02.mp4",
            "/out/r-clip03.mp4",
            "/out/r-clip04.mp4"
        ]
    );
    assert_eq!(
        job.args.iter().filter(|a| *a == "-i").count(),
        1,
        "one decode"
    );
    assert_eq!(
        job.args.iter().filter(|a| *a == "-c:v").count(),
        4,
        "one encode per clip"
    );
    assert_eq!(
        job.args.last().map(String::as_str),
        Some("file:/out/r-clip04.mp4")
    );

    clipped.clips = Some(ClipSpec {
        node: "cl".into(),
        clip_duration_ms: 3000,
        max_clips: 2,
    });
    let capped = render_with(
        &clipped,
        &files(&[("in", Path::new("/in.mp4"), &p)]),
        &Analysis::default(),
    );
    assert_eq!(capped.outputs.len(), 2);
}

#[test]
fn clips_with_audio_split_the_audio_too() {
    let mut clipped = plan(input("in"));
    clipped.clips = Some(ClipSpec {
        node: "cl".into(),
        clip_duration_ms: 2000,
        max_clips: 10,
    });
    let job = render_bunny(&clipped);
    let g = graph(&job);
    assert!(g.contains("asetpts=PTS-STARTPTS,asplit=3[a"), "{g}");
    assert!(
        g.contains("atrim=start=4:end=5.312,asetpts=PTS-STARTPTS[out_a"),
        "{g}"
    );
    assert_eq!(job.args.iter().filter(|a| *a == "-c:a").count(), 3);
}

#[test]
fn concat_fits_every_part_to_the_first_and_fills_missing_audio() {
    let (a, b) = (bunny(), bikes());
    let f = files(&[
        ("a", Path::new("/in/a.mp4"), &a),
        ("b", Path::new("/in/b.mp4"), &b),
    ]);
    let source = Source::Concat {
        node: "join".into(),
        parts: vec![input("a"), input("b")],
    };
    let prepared = prepare(&plan(source.clone()), &f).expect("prepared");
    let rates = HashMap::from([("a".to_owned(), FrameRate { num: 25, den: 1 })]);
    let job = render_job(
        &plan(source),
        &prepared,
        &Analysis::default(),
        &rates,
        paths(),
    )
    .expect("job");
    assert_eq!(
        graph(&job),
        "[0:V:0]setpts=PTS-STARTPTS,scale=1280:720,setsar=1,fps=25/1[v1];\
         [0:a:0]asetpts=PTS-STARTPTS,aresample=48000,aformat=sample_fmts=fltp:channel_layouts=stereo[a2];\
         [1:V:0]setpts=PTS-STARTPTS,scale=640:272,setsar=1,scale=1280:544,setsar=1,pad=1280:720:0:88:black,fps=25/1[v3];\
         anullsrc=r=48000:cl=stereo,atrim=duration=10[a4];\
         [v1][a2][v3][a4]concat=n=2:v=1:a=1[v5][a6];\
         [v5]format=yuv420p[out_v7];[a6]anull[out_a8]"
    );
    assert_eq!(job.args.iter().filter(|a| *a == "-i").count(), 2);
}

#[test]
fn concat_of_silent_parts_has_no_audio() {
    let b = bikes();
    let f = files(&[
        ("a", Path::new("/in/a.mp4"), &b),
        ("b", Path::new("/in/b.mp4"), &b),
    ]);
    let source = Source::Concat {
        node: "join".into(),
        parts: vec![input("a"), input("b")],
    };
    let job = render_with(&plan(source), &f, &Analysis::default());
    assert!(
        graph(&job).contains("[v1][v2]concat=n=2:v=1:a=0[v3]"),
        "{}",
        graph(&job)
    );
    assert!(job.args.contains(&"-an".to_owned()));
}

#[test]
fn an_input_used_twice_is_decoded_once() {
    let source = Source::Concat {
        node: "join".into(),
        parts: vec![
            step(input("in"), "head", trim(0, Some(1000))),
            step(input("in"), "tail", trim(4000, None)),
        ],
    };
    let job = render_bunny(&plan(source));
    assert_eq!(job.args.iter().filter(|a| *a == "-i").count(), 1);
    let g = graph(&job);
    assert!(g.contains("trim=start=0:end=1,"), "{g}");
    assert!(g.contains("trim=start=4,"), "{g}");
}
