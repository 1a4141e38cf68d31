//! Pure tests of input windows and trim folding.

use super::*;

fn input(id: &str) -> Source {
    Source::Input(id.into())
}

fn step(from: Source, node: &str, step: Step) -> Source {
    Source::Step {
        from: Box::new(from),
        node: node.into(),
        step,
    }
}

fn trim_step(start_ms: u64, end_ms: Option<u64>) -> Step {
    Step::Trim { start_ms, end_ms }
}

fn window(start_ms: u64, length_ms: u64) -> Window {
    Window {
        start_ms,
        length_ms,
    }
}

fn spans(entries: &[(&str, u64, u64, Option<u64>)]) -> HashMap<String, InputSpan> {
    entries
        .iter()
        .map(|&(id, duration_ms, start_ms, end_ms)| {
            (
                id.to_owned(),
                InputSpan {
                    duration_ms,
                    start_ms,
                    end_ms,
                },
            )
        })
        .collect()
}

fn seeks(source: &Source, entries: &[(&str, u64, u64, Option<u64>)]) -> Seeks {
    plan_seeks(source, &spans(entries)).expect("seeks")
}

#[test]
fn an_untouched_input_is_read_whole() {
    let s = seeks(&input("in"), &[("in", 5312, 0, None)]);
    assert_eq!(s.windows["in"], window(0, 5312));
    assert!(s.folded.is_empty());
}

#[test]
fn the_callers_clip_window_comes_first() {
    let s = seeks(&input("in"), &[("in", 10_000, 2000, Some(6000))]);
    assert_eq!(s.windows["in"], window(2000, 4000));
    let err = plan_seeks(&input("in"), &spans(&[("in", 10_000, 10_000, None)])).unwrap_err();
    assert!(matches!(err, MediaError::TrimOutOfRange { .. }), "{err:?}");
}

#[test]
fn leading_trims_fold_into_the_window_across_resizes() {
    let resize = Step::Resize {
        width: Some(320),
        height: None,
    };
    let source = step(
        step(
            step(input("in"), "a", trim_step(1000, Some(4000))),
            "r",
            resize,
        ),
        "b",
        trim_step(500, Some(1500)),
    );
    let s = seeks(&source, &[("in", 10_000, 0, None)]);
    assert_eq!(s.windows["in"], window(1500, 1000));
    assert_eq!(s.folded, HashSet::from(["a".to_owned(), "b".to_owned()]));
}

#[test]
fn trims_after_a_timing_step_stay_in_the_graph() {
    let source = step(
        step(
            step(input("in"), "a", trim_step(1000, None)),
            "fast",
            Step::Speed { factor: 2.0 },
        ),
        "b",
        trim_step(0, Some(1000)),
    );
    let s = seeks(&source, &[("in", 10_000, 0, None)]);
    assert_eq!(s.windows["in"], window(1000, 9000));
    assert_eq!(s.folded, HashSet::from(["a".to_owned()]));
}

#[test]
fn an_input_used_twice_is_not_folded() {
    let source = Source::Concat {
        node: "join".into(),
        parts: vec![
            step(input("in"), "head", trim_step(0, Some(1000))),
            step(input("in"), "tail", trim_step(5000, None)),
        ],
    };
    let s = seeks(&source, &[("in", 10_000, 0, None)]);
    assert_eq!(s.windows["in"], window(0, 10_000));
    assert!(s.folded.is_empty());
}

#[test]
fn each_concat_part_folds_its_own_input() {
    let source = Source::Concat {
        node: "join".into(),
        parts: vec![
            step(input("a"), "ta", trim_step(1000, Some(2000))),
            step(input("b"), "tb", trim_step(0, Some(500))),
        ],
    };
    let s = seeks(&source, &[("a", 5000, 0, None), ("b", 3000, 0, None)]);
    assert_eq!(s.windows["a"], window(1000, 1000));
    assert_eq!(s.windows["b"], window(0, 500));
}

#[test]
fn a_missing_input_file_is_named() {
    let err = plan_seeks(&input("slot2"), &HashMap::new()).unwrap_err();
    assert!(
        matches!(&err, MediaError::MissingInput(id) if id == "slot2"),
        "{err:?}"
    );
}

#[test]
fn trims_clamp_their_end_and_refuse_a_start_past_the_end() {
    assert_eq!(
        trim(window(0, 5312), 4000, Some(60_000)).expect("ok"),
        window(4000, 1312)
    );
    for start in [5312, 9000] {
        let err = trim(window(0, 5312), start, None).unwrap_err();
        assert!(
            matches!(err, MediaError::TrimOutOfRange { start_ms, duration_ms: 5312 } if start_ms == start),
            "{err:?}"
        );
    }
    let err = trim(window(0, 10_000), 3000, Some(1000)).unwrap_err();
    assert!(matches!(err, MediaError::Unsupported(_)));
}
