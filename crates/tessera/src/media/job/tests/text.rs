//! text_overlay and captions: hostile text stays data, paths are escaped.

use crate::domain::graph::{Cue, Position};

use super::*;

fn overlay(text: &str) -> Step {
    Step::TextOverlay {
        text: text.into(),
        position: Position::Bottom,
        font_size: 48,
    }
}

const HOSTILE: &str = "it's 100%{pts} : \\ 'q' \"dq\" [a];b,c\nline2 %{eif:1:d} ${HOME} `id`";

#[test]
fn overlay_text_goes_to_a_file_drawn_without_expansion() {
    let job = render_bunny(&plan(step(input("in"), "tx", overlay(HOSTILE))));
    assert_eq!(
        job.files,
        [TempFile {
            path: "/work/text-1.txt".into(),
            contents: HOSTILE.into(),
        }]
    );
    let g = graph(&job);
    assert!(
        g.contains(
            "drawtext=fontfile=/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf:textfile=/work/text-1.txt\
             :expansion=none:fontsize=48:fontcolor=white:borderw=3:bordercolor=black@0.8:x=(w-text_w)/2:y=h-text_h-28"
        ),
        "{g}"
    );
    assert!(!g.contains("pts}"), "the text never enters the graph: {g}");
}

#[test]
fn a_hostile_work_directory_is_escaped_in_the_graph() {
    let p = bunny();
    let f = files(&[("in", Path::new("/in/a.mp4"), &p)]);
    let plan = plan(step(input("in"), "tx", overlay("hi")));
    let prepared = prepare(&plan, &f).expect("prepared");
    let paths = JobPaths {
        work_dir: Path::new("/tmp/we'ird:d,ir[x];y\\z"),
        ..paths()
    };
    let job = render_job(
        &plan,
        &prepared,
        &Analysis::default(),
        &HashMap::new(),
        paths,
    )
    .expect("job");
    assert!(
        graph(&job)
            .contains(r"textfile=/tmp/we\\\'ird\\:d\,ir\[x\]\;y\\\\z/text-1.txt:expansion=none"),
        "{}",
        graph(&job)
    );
}

#[test]
fn captions_become_an_ass_file_in_video_pixels() {
    let cues = vec![Cue {
        start_ms: 1000,
        end_ms: 2500,
        text: "{\\an8}<b>x</b> ]; ,".into(),
    }];
    let source = step(
        step(
            input("in"),
            "small",
            Step::Resize {
                width: Some(640),
                height: None,
            },
        ),
        "cc",
        Step::Captions {
            cues,
            font_size: 36,
        },
    );
    let job = render_bunny(&plan(source));
    let [file] = job.files.as_slice() else {
        panic!("one temp file expected: {:?}", job.files);
    };
    assert_eq!(file.path, Path::new("/work/captions-1.ass"));
    assert!(
        file.contents.contains("PlayResX: 640\nPlayResY: 360\n"),
        "{}",
        file.contents
    );
    assert!(
        file.contents.ends_with(
            "Dialogue: 0,0:00:01.00,0:00:02.50,Default,,0,0,0,,\\{\\\u{2060}an8\\}<b>x</b> ]; ,\n"
        ),
        "{}",
        file.contents
    );
    assert!(
        graph(&job).contains(
            "scale=640:360,setsar=1,ass=filename=/work/captions-1.ass:fontsdir=/usr/share/fonts/truetype/dejavu,format=yuv420p"
        ),
        "{}",
        graph(&job)
    );
}

#[test]
fn text_made_only_of_control_characters_draws_nothing() {
    let job = render_bunny(&plan(step(input("in"), "tx", overlay("\u{7}\r\n"))));
    assert!(job.files.is_empty());
    assert!(!graph(&job).contains("drawtext"));
}

#[test]
fn very_long_graphs_go_to_a_script_file() {
    let silences: Vec<_> = (0..2000)
        .map(|i| crate::media::analysis::Silence {
            start_s: f64::from(i) * 2.0 + 0.5,
            end_s: Some(f64::from(i) * 2.0 + 1.9),
        })
        .collect();
    let p = probe(1280, 720, true, 4_100_000);
    let f = files(&[("in", Path::new("/in/a.mp4"), &p)]);
    let rs = Step::RemoveSilence {
        threshold_db: -35.0,
        min_silence_ms: 700,
        padding_ms: 100,
    };
    let analysis = Analysis {
        silences: HashMap::from([("rs".to_owned(), silences)]),
        loudness: HashMap::new(),
    };
    let job = render_with(&plan(step(input("in"), "rs", rs)), &f, &analysis);
    assert_eq!(value_of(&job.args, "-filter_complex"), None);
    assert_eq!(
        value_of(&job.args, "-filter_complex_script"),
        Some("file:/work/graph-encode.txt")
    );
    let script = job
        .files
        .iter()
        .find(|f| f.path == Path::new("/work/graph-encode.txt"));
    assert!(script.is_some_and(|s| s.contents.len() > INLINE_GRAPH_MAX));
}
