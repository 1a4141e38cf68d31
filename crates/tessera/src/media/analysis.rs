//! The analysis pass: what `remove_silence` and `normalize_audio` need to
//! know before the encoding pass, and reading it back from ffmpeg's log.
//!
//! All analysis of a plan happens in ONE ffmpeg process that decodes only
//! the audio. Each analysis node gets a "tap": the audio as it reaches that
//! node, split off to a `silencedetect` (its findings printed by a named
//! `ametadata`) or to a measuring `loudnorm` (its JSON printed at the end,
//! prefixed by its instance name). Because the taps run side by side, a tap
//! sees the other analysis nodes upstream as pass-through: a
//! `normalize_audio` after a `remove_silence` measures the audio with the
//! silence still in (integrated loudness is gated, so silence barely
//! counts), and a `remove_silence` after a `normalize_audio` compares its
//! threshold with the level before normalisation.

use std::collections::HashMap;

use serde::Deserialize;

use super::MediaError;

/// What one tap measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum TapKind {
    Silence,
    Loudness,
}

/// One analysis point: `name` is the ffmpeg filter instance name
/// (`t1`, `t2`, ...), `node` the graph node it serves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Tap {
    pub name: String,
    pub node: String,
    pub kind: TapKind,
}

/// A silent passage in seconds; `end_s` is None when it lasts to the end.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Silence {
    pub start_s: f64,
    pub end_s: Option<f64>,
}

/// The first-pass measurement `loudnorm` needs for its linear mode.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Loudness {
    pub input_i: f64,
    pub input_tp: f64,
    pub input_lra: f64,
    pub input_thresh: f64,
    pub target_offset: f64,
}

/// The results of an analysis pass, by node id. A node without an entry
/// had no audio to analyse.
#[derive(Clone, Debug, Default, PartialEq)]
pub(super) struct Analysis {
    pub silences: HashMap<String, Vec<Silence>>,
    pub loudness: HashMap<String, Loudness>,
}

/// Reads every tap's findings from the analysis pass's stderr.
pub(super) fn parse_analysis(stderr: &str, taps: &[Tap]) -> Result<Analysis, MediaError> {
    let mut analysis = Analysis::default();
    for tap in taps {
        match tap.kind {
            TapKind::Silence => {
                analysis
                    .silences
                    .insert(tap.node.clone(), silences(stderr, &tap.name));
            }
            TapKind::Loudness => {
                // Silent audio measures -inf: nothing to normalise.
                if let Some(measured) = loudness(stderr, &tap.name)? {
                    analysis.loudness.insert(tap.node.clone(), measured);
                }
            }
        }
    }
    Ok(analysis)
}

/// `[ametadata@t1 @ 0x…] lavfi.silence_start=1.99` / `…silence_end=3.5`.
fn silences(stderr: &str, name: &str) -> Vec<Silence> {
    let prefix = format!("[ametadata@{name} @");
    let mut found: Vec<Silence> = Vec::new();
    for line in stderr.lines().filter(|l| l.starts_with(&prefix)) {
        if let Some(start) = value_after(line, "lavfi.silence_start=") {
            found.push(Silence {
                start_s: start.max(0.0),
                end_s: None,
            });
        } else if let Some(end) = value_after(line, "lavfi.silence_end=")
            && let Some(open) = found.last_mut().filter(|s| s.end_s.is_none())
        {
            open.end_s = Some(end);
        }
    }
    found
}

fn value_after(line: &str, key: &str) -> Option<f64> {
    let (_, value) = line.split_once(key)?;
    value.trim().parse().ok().filter(|v: &f64| v.is_finite())
}

#[derive(Deserialize)]
struct RawLoudness {
    input_i: String,
    input_tp: String,
    input_lra: String,
    input_thresh: String,
    target_offset: String,
}

/// The JSON object `loudnorm@name` prints when it ends.
fn loudness(stderr: &str, name: &str) -> Result<Option<Loudness>, MediaError> {
    let prefix = format!("[loudnorm@{name} @");
    let unreadable = || MediaError::Failed {
        tool: "ffmpeg",
        status: "exit status: 0".into(),
        detail: "the loudness measurement could not be read".into(),
    };
    let at = stderr.find(&prefix).ok_or_else(unreadable)?;
    let rest = &stderr[at..];
    let (open, close) = (rest.find('{'), rest.find('}'));
    let (Some(open), Some(close)) = (open, close) else {
        return Err(unreadable());
    };
    if close < open {
        return Err(unreadable());
    }
    let raw: RawLoudness = serde_json::from_str(&rest[open..=close]).map_err(|_| unreadable())?;
    let number = |text: &str| text.trim().parse::<f64>().ok().filter(|v| v.is_finite());
    Ok((|| {
        Some(Loudness {
            input_i: number(&raw.input_i)?,
            input_tp: number(&raw.input_tp)?,
            input_lra: number(&raw.input_lra)?,
            input_thresh: number(&raw.input_thresh)?,
            target_offset: number(&raw.target_offset)?,
        })
    })())
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "\
Input #0, wav, from 'input':
[silencedetect @ 0x55ab626b4fc0] silence_start: 1.99995
[ametadata@t1 @ 0x55ab626b5c80] frame:58   pts:118784  pts_time:2.69351
[ametadata@t1 @ 0x55ab626b5c80] lavfi.silence_start=1.99995
[ametadata@t3 @ 0x55ab626b57c0] lavfi.silence_start=0
[ametadata@t1 @ 0x55ab626b5c80] lavfi.silence_end=3.50005
[ametadata@t1 @ 0x55ab626b5c80] lavfi.silence_duration=1.50009
[ametadata@t1 @ 0x55ab626b5c80] lavfi.silence_start=7.25
size=N/A time=00:00:05.50 bitrate=N/A speed=51.4x
[loudnorm@t2 @ 0x55e8ac355880] 
{
\t\"input_i\" : \"-22.12\",
\t\"input_tp\" : \"-18.06\",
\t\"input_lra\" : \"1.50\",
\t\"input_thresh\" : \"-32.25\",
\t\"output_i\" : \"-13.13\",
\t\"output_tp\" : \"-8.51\",
\t\"output_lra\" : \"2.30\",
\t\"output_thresh\" : \"-23.23\",
\t\"normalization_type\" : \"dynamic\",
\t\"target_offset\" : \"-0.87\"
}
[loudnorm@t4 @ 0x55e8ac355880] 
{
\t\"input_i\" : \"-inf\",
\t\"input_tp\" : \"-inf\",
\t\"input_lra\" : \"0.00\",
\t\"input_thresh\" : \"-70.00\",
\t\"output_i\" : \"-inf\",
\t\"output_tp\" : \"-inf\",
\t\"output_lra\" : \"0.00\",
\t\"output_thresh\" : \"-70.00\",
\t\"normalization_type\" : \"dynamic\",
\t\"target_offset\" : \"0.00\"
}
";

    fn tap(name: &str, node: &str, kind: TapKind) -> Tap {
        Tap {
            name: name.into(),
            node: node.into(),
            kind,
        }
    }

    #[test]
    fn each_tap_reads_only_its_own_lines() {
        let taps = [
            tap("t1", "quiet", TapKind::Silence),
            tap("t2", "loud", TapKind::Loudness),
            tap("t3", "other", TapKind::Silence),
        ];
        let analysis = parse_analysis(LOG, &taps).expect("parsed");
        assert_eq!(
            analysis.silences["quiet"],
            vec![
                Silence {
                    start_s: 1.99995,
                    end_s: Some(3.50005)
                },
                Silence {
                    start_s: 7.25,
                    end_s: None
                },
            ]
        );
        assert_eq!(
            analysis.silences["other"],
            vec![Silence {
                start_s: 0.0,
                end_s: None
            }]
        );
        assert_eq!(
            analysis.loudness["loud"],
            Loudness {
                input_i: -22.12,
                input_tp: -18.06,
                input_lra: 1.5,
                input_thresh: -32.25,
                target_offset: -0.87,
            }
        );
    }

    #[test]
    fn silent_audio_has_no_loudness_to_normalise() {
        let analysis = parse_analysis(LOG, &[tap("t4", "n", TapKind::Loudness)]).expect("ok");
        assert!(analysis.loudness.is_empty());
    }

    #[test]
    fn a_missing_measurement_is_an_error() {
        let err = parse_analysis("nothing here", &[tap("t9", "n", TapKind::Loudness)]);
        assert!(matches!(err, Err(MediaError::Failed { .. })), "{err:?}");
    }

    #[test]
    fn no_silence_lines_mean_no_silence() {
        let analysis = parse_analysis("", &[tap("t1", "n", TapKind::Silence)]).expect("ok");
        assert_eq!(analysis.silences["n"], vec![]);
    }
}
