//! Which span of the source a plan keeps.
//!
//! Every step we have today (trim, resize) leaves timestamps alone, so all
//! trims of a plan, wherever they sit, compose into one window on the source
//! and become input seeking (`-ss`/`-t` before `-i`): ffmpeg then never
//! decodes the parts that are cut away. A future step that changes timing
//! (speed, silence removal) ends that: trims after it must become
//! `trim`/`atrim` filters in the graph instead.

use crate::domain::graph::Step;

use super::MediaError;

/// A span of the source video, in milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub start_ms: u64,
    pub length_ms: u64,
}

/// Composes the plan's trims into one window on a source of `duration_ms`.
/// Each trim is relative to the video as the previous steps left it; an end
/// past the end is clamped, a start at or after the end is
/// [`MediaError::TrimOutOfRange`].
pub fn source_window(steps: &[Step], duration_ms: u64) -> Result<Window, MediaError> {
    let mut window = Window {
        start_ms: 0,
        length_ms: duration_ms,
    };
    for step in steps {
        if let Step::Trim { start_ms, end_ms } = *step {
            window = trim(window, start_ms, end_ms)?;
        }
    }
    Ok(window)
}

fn trim(window: Window, start_ms: u64, end_ms: Option<u64>) -> Result<Window, MediaError> {
    if start_ms >= window.length_ms {
        return Err(MediaError::TrimOutOfRange {
            start_ms,
            duration_ms: window.length_ms,
        });
    }
    let end_ms = end_ms.map_or(window.length_ms, |end| end.min(window.length_ms));
    if end_ms <= start_ms {
        return Err(MediaError::Unsupported(format!(
            "trim end {end_ms} ms is not after its start {start_ms} ms"
        )));
    }
    Ok(Window {
        start_ms: window.start_ms + start_ms,
        length_ms: end_ms - start_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trim_step(start_ms: u64, end_ms: Option<u64>) -> Step {
        Step::Trim { start_ms, end_ms }
    }

    fn window(start_ms: u64, length_ms: u64) -> Window {
        Window {
            start_ms,
            length_ms,
        }
    }

    #[test]
    fn no_trim_keeps_everything() {
        assert_eq!(source_window(&[], 5312).expect("ok"), window(0, 5312));
    }

    #[test]
    fn a_trim_keeps_its_span() {
        let steps = [trim_step(1000, Some(3000))];
        assert_eq!(source_window(&steps, 5312).expect("ok"), window(1000, 2000));
    }

    #[test]
    fn an_open_end_runs_to_the_end() {
        let steps = [trim_step(1000, None)];
        assert_eq!(source_window(&steps, 5312).expect("ok"), window(1000, 4312));
    }

    #[test]
    fn an_end_past_the_end_is_clamped() {
        let steps = [trim_step(4000, Some(60_000))];
        assert_eq!(source_window(&steps, 5312).expect("ok"), window(4000, 1312));
    }

    #[test]
    fn a_start_at_or_after_the_end_is_an_error() {
        for start in [5312, 9000] {
            let err = source_window(&[trim_step(start, None)], 5312).unwrap_err();
            assert!(
                matches!(err, MediaError::TrimOutOfRange { start_ms, duration_ms: 5312 } if start_ms == start),
                "{err:?}"
            );
        }
    }

    #[test]
    fn later_trims_are_relative_to_earlier_ones() {
        let steps = [
            trim_step(1000, Some(4000)),
            Step::Resize {
                width: Some(320),
                height: None,
            },
            trim_step(500, Some(1500)),
        ];
        assert_eq!(
            source_window(&steps, 10_000).expect("ok"),
            window(1500, 1000)
        );
    }

    #[test]
    fn a_second_trim_past_the_first_ones_end_is_an_error() {
        let steps = [trim_step(0, Some(2000)), trim_step(2500, None)];
        let err = source_window(&steps, 10_000).unwrap_err();
        assert!(matches!(
            err,
            MediaError::TrimOutOfRange {
                start_ms: 2500,
                duration_ms: 2000
            }
        ));
    }

    #[test]
    fn a_hand_built_backwards_trim_is_refused() {
        let err = source_window(&[trim_step(3000, Some(1000))], 10_000).unwrap_err();
        assert!(matches!(err, MediaError::Unsupported(_)));
    }
}
