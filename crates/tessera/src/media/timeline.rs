//! Which span of each input a plan reads, so that ffmpeg seeks instead of
//! decoding what is cut away.
//!
//! Every input starts from its clip window (`InputFile::start_ms/end_ms`).
//! When an input is used once, the trims right above it become part of that
//! window (input seeking, `-ss`/`-t` before `-i`), as long as only steps
//! that ignore time sit between them (resize, reframe, text overlay). A trim
//! after anything that changes or measures time (speed, silence removal,
//! loudness, captions, concat) stays a `trim` filter in the graph.

use std::collections::{HashMap, HashSet};

use crate::domain::graph::{Source, Step};

use super::MediaError;

/// A span of a source video, in milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub start_ms: u64,
    pub length_ms: u64,
}

/// What the input side of a plan reads: one window per input id, and the
/// trim nodes already applied by those windows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Seeks {
    pub windows: HashMap<String, Window>,
    pub folded: HashSet<String>,
}

/// The clip window of one input as the caller gave it.
#[derive(Clone, Copy, Debug)]
pub(super) struct InputSpan {
    pub duration_ms: u64,
    pub start_ms: u64,
    pub end_ms: Option<u64>,
}

/// Works out the windows of every input of `source`.
pub(super) fn plan_seeks(
    source: &Source,
    spans: &HashMap<String, InputSpan>,
) -> Result<Seeks, MediaError> {
    let mut seeks = Seeks::default();
    let mut uses: HashMap<&str, usize> = HashMap::new();
    source.visit(&mut |s| {
        if let Source::Input(id) = s {
            *uses.entry(id.as_str()).or_default() += 1;
        }
    });
    for id in uses.keys() {
        let span = spans
            .get(*id)
            .ok_or_else(|| MediaError::MissingInput((*id).to_owned()))?;
        seeks.windows.insert((*id).to_owned(), input_window(span)?);
    }
    let mut chains = Vec::new();
    if let Some(chain) = collect_chains(source, &mut chains) {
        chains.push(chain);
    }
    for (leaf, steps) in chains {
        if uses.get(leaf) != Some(&1) {
            continue;
        }
        let Some(window) = seeks.windows.get_mut(leaf) else {
            continue;
        };
        for (node, step) in steps {
            match *step {
                Step::Trim { start_ms, end_ms } => {
                    *window = trim(*window, start_ms, end_ms)?;
                    seeks.folded.insert(node.to_owned());
                }
                Step::Resize { .. } | Step::Reframe { .. } | Step::TextOverlay { .. } => {}
                _ => break,
            }
        }
    }
    Ok(seeks)
}

type Chain<'a> = (&'a str, Vec<(&'a str, &'a Step)>);

/// Returns the chain (leaf input, steps upwards) ending at `source` when
/// it is a plain chain; chains below a concat go to `out`.
fn collect_chains<'a>(source: &'a Source, out: &mut Vec<Chain<'a>>) -> Option<Chain<'a>> {
    match source {
        Source::Input(id) => Some((id, Vec::new())),
        Source::Step { from, node, step } => {
            let (leaf, mut steps) = collect_chains(from, out)?;
            steps.push((node, step));
            Some((leaf, steps))
        }
        Source::Concat { parts, .. } => {
            for part in parts {
                if let Some(chain) = collect_chains(part, out) {
                    out.push(chain);
                }
            }
            None
        }
    }
}

/// The caller's clip window on an input of `duration_ms`.
fn input_window(span: &InputSpan) -> Result<Window, MediaError> {
    let whole = Window {
        start_ms: 0,
        length_ms: span.duration_ms,
    };
    if span.start_ms == 0 && span.end_ms.is_none() {
        return Ok(whole);
    }
    trim(whole, span.start_ms, span.end_ms)
}

/// Applies a trim, relative to `window`: an end past the end is clamped, a
/// start at or after the end is [`MediaError::TrimOutOfRange`].
pub(super) fn trim(
    window: Window,
    start_ms: u64,
    end_ms: Option<u64>,
) -> Result<Window, MediaError> {
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
mod tests;
