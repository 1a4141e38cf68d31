//! `remove_silence` in the encoding pass: from the silences the analysis
//! found to the spans kept, and the `select`/`aselect` filters that keep
//! them while the video streams through (no buffering, unlike split + trim).

use super::analysis::Silence;
use super::filters::escape::{filter_value, num};

/// Cuts shorter than this are not worth a discontinuity.
const MIN_CUT_S: f64 = 0.05;
/// How close to an edge a silence must be to count as touching it.
const EDGE_S: f64 = 0.01;

/// A kept span of the video, in seconds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Keep {
    pub start_s: f64,
    pub end_s: f64,
}

/// The spans kept when `silences` are cut from a video of `duration_s`,
/// leaving `padding_s` of silence on each side of every cut (but not at
/// the very start or end). Empty when everything is silent.
pub(super) fn keep_spans(silences: &[Silence], duration_s: f64, padding_s: f64) -> Vec<Keep> {
    let mut keeps = Vec::new();
    let mut from = 0.0;
    for silence in silences {
        let start = silence.start_s.max(0.0);
        let end = silence.end_s.unwrap_or(duration_s).min(duration_s);
        let cut_start = if start <= EDGE_S {
            0.0
        } else {
            start + padding_s
        };
        let cut_end = if silence.end_s.is_none() || end >= duration_s - EDGE_S {
            duration_s
        } else {
            end - padding_s
        };
        if cut_end - cut_start < MIN_CUT_S || cut_start < from {
            continue;
        }
        if cut_start > from {
            keeps.push(Keep {
                start_s: from,
                end_s: cut_start,
            });
        }
        from = cut_end;
    }
    if duration_s - from > 0.0 {
        keeps.push(Keep {
            start_s: from,
            end_s: duration_s,
        });
    }
    keeps
}

/// Total kept length in milliseconds.
pub(super) fn kept_ms(keeps: &[Keep]) -> f64 {
    keeps.iter().map(|k| (k.end_s - k.start_s) * 1000.0).sum()
}

/// Video: keep the frames inside the spans, and shift each by the length
/// cut before it, so timestamps stay exact for variable frame rates.
pub(super) fn video_filters(keeps: &[Keep]) -> Vec<String> {
    let mut shift = Vec::new();
    let mut previous_end = 0.0;
    for keep in keeps {
        let gap = keep.start_s - previous_end;
        if gap > 0.0 {
            shift.push(format!("gte(T,{})*{}", num(keep.start_s), num(gap)));
        }
        previous_end = keep.end_s;
    }
    let offset = if shift.is_empty() {
        "0".to_owned()
    } else {
        shift.join("+")
    };
    vec![
        format!("select={}", filter_value(&selection(keeps))),
        format!("setpts={}", filter_value(&format!("PTS-({offset})/TB"))),
    ]
}

/// Audio: cut into 10 ms frames so the spans are followed closely, keep
/// the frames inside them and lay the kept samples end to end.
pub(super) fn audio_filters(keeps: &[Keep]) -> Vec<String> {
    vec![
        "aresample=48000".to_owned(),
        "asetnsamples=n=480:p=0".to_owned(),
        format!("aselect={}", filter_value(&selection(keeps))),
        "asetpts=N/SR/TB".to_owned(),
    ]
}

/// `gte(t,a)*lt(t,b)+…`: true inside a kept span.
fn selection(keeps: &[Keep]) -> String {
    keeps
        .iter()
        .map(|k| format!("gte(t,{})*lt(t,{})", num(k.start_s), num(k.end_s)))
        .collect::<Vec<_>>()
        .join("+")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn silence(start_s: f64, end_s: Option<f64>) -> Silence {
        Silence { start_s, end_s }
    }

    fn keep(start_s: f64, end_s: f64) -> Keep {
        Keep { start_s, end_s }
    }

    #[test]
    fn a_silence_in_the_middle_is_cut_leaving_the_padding() {
        let keeps = keep_spans(&[silence(2.0, Some(3.5))], 5.5, 0.1);
        assert_eq!(keeps, vec![keep(0.0, 2.1), keep(3.4, 5.5)]);
        assert!((kept_ms(&keeps) - 4200.0).abs() < 1e-6);
    }

    #[test]
    fn silences_at_the_edges_are_cut_entirely() {
        let keeps = keep_spans(&[silence(0.0, Some(1.5)), silence(2.5, None)], 4.0, 0.1);
        assert_eq!(keeps, vec![keep(1.4, 2.6)]);
        let keeps = keep_spans(
            &[silence(0.0, Some(1.5)), silence(2.5, Some(4.0))],
            4.0,
            0.1,
        );
        assert_eq!(keeps, vec![keep(1.4, 2.6)]);
    }

    #[test]
    fn padding_that_swallows_a_silence_leaves_it_alone() {
        let keeps = keep_spans(&[silence(2.0, Some(2.7))], 5.0, 0.4);
        assert_eq!(keeps, vec![keep(0.0, 5.0)]);
    }

    #[test]
    fn all_silence_keeps_nothing() {
        assert!(keep_spans(&[silence(0.0, None)], 5.0, 0.1).is_empty());
    }

    #[test]
    fn no_silence_keeps_everything() {
        assert_eq!(keep_spans(&[], 5.0, 0.1), vec![keep(0.0, 5.0)]);
    }

    #[test]
    fn video_frames_are_selected_and_shifted_by_what_was_cut_before() {
        let filters = video_filters(&[keep(0.0, 2.1), keep(3.4, 5.5)]);
        assert_eq!(
            filters,
            [
                "select=gte(t\\,0)*lt(t\\,2.1)+gte(t\\,3.4)*lt(t\\,5.5)",
                "setpts=PTS-(gte(T\\,3.4)*1.3)/TB",
            ]
        );
        let leading = video_filters(&[keep(1.4, 2.6)]);
        assert_eq!(leading[1], "setpts=PTS-(gte(T\\,1.4)*1.4)/TB");
    }

    #[test]
    fn audio_is_selected_in_small_frames_and_laid_end_to_end() {
        let filters = audio_filters(&[keep(0.0, 1.0)]);
        assert_eq!(filters[2], "aselect=gte(t\\,0)*lt(t\\,1)");
        assert_eq!(filters[3], "asetpts=N/SR/TB");
    }
}
