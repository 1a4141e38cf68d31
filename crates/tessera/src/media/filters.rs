//! Compiles a render plan's source tree into ffmpeg filter graphs: the
//! encoding graph (video and audio, every step) and the analysis graph
//! (audio only, one tap per `remove_silence`/`normalize_audio`).
//!
//! Pure: files the graph refers to (drawtext texts, ASS subtitles) are
//! returned as [`TempFile`]s for the caller to write before running ffmpeg.
//! Every input stream starts at timestamp 0 (`setpts=PTS-STARTPTS`), so
//! trims, captions and silence spans are all relative to the video as the
//! step receives it.

mod ass;
mod concat;
pub(super) mod escape;
mod outputs;
mod steps;
mod stream;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use crate::domain::graph::{RenderPlan, Source};

use super::MediaError;
use super::analysis::{Analysis, Tap};
use super::probe::{FrameRate, Probe};
use super::timeline::Window;
use stream::{Chain, GraphText, Stream};

/// The font `text_overlay` and `captions` draw with (package fonts-dejavu-core).
pub(super) const FONT_FILE: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";
/// Where libass looks for it by name.
pub(super) const FONTS_DIR: &str = "/usr/share/fonts/truetype/dejavu";

/// One input of a plan, in `-i` order.
#[derive(Clone, Copy, Debug)]
pub(super) struct InputRef<'a> {
    pub id: &'a str,
    pub probe: &'a Probe,
    /// The span read (after input seeking).
    pub window: Window,
}

/// What the compiler knows besides the plan.
pub(super) struct Context<'a> {
    pub inputs: &'a [InputRef<'a>],
    /// Trim nodes already applied by input seeking.
    pub folded: &'a HashSet<String>,
    pub analysis: &'a Analysis,
    /// Frame rates of inputs, for `concat` (by input id).
    pub frame_rates: &'a HashMap<String, FrameRate>,
    /// Where temp files referenced by the graph go.
    pub work_dir: &'a Path,
}

/// A file to write before ffmpeg runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct TempFile {
    pub path: PathBuf,
    pub contents: String,
}

/// The labels one output file maps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct OutputStreams {
    pub video: String,
    pub audio: Option<String>,
}

/// The encoding graph of a plan.
#[derive(Clone, Debug)]
pub(super) struct EncodeGraph {
    pub graph: String,
    /// One per output file (one per clip with `clips`).
    pub outputs: Vec<OutputStreams>,
    pub files: Vec<TempFile>,
}

/// The analysis graph of a plan: every tap's label goes to the null muxer.
#[derive(Clone, Debug)]
pub(super) struct AnalysisGraph {
    pub graph: String,
    pub outputs: Vec<String>,
    pub taps: Vec<Tap>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Encode,
    Analyse,
}

/// Builds one graph; the per-step and per-kind parts live in submodules.
struct Builder<'a> {
    ctx: &'a Context<'a>,
    mode: Mode,
    graph: GraphText,
    files: Vec<TempFile>,
    taps: Vec<Tap>,
    /// Labels of the analysis taps, in tap order.
    tap_outputs: Vec<String>,
}

/// The encoding graph: one decode of each input, every step, and the
/// output streams (split per clip).
pub(super) fn encode_graph(plan: &RenderPlan, ctx: &Context) -> Result<EncodeGraph, MediaError> {
    let mut builder = Builder::new(ctx, Mode::Encode);
    let stream = builder.build(&plan.source)?;
    let outputs = builder.outputs(stream, plan)?;
    Ok(EncodeGraph {
        graph: builder.graph.text(),
        outputs,
        files: builder.files,
    })
}

/// The analysis graph, or None when no node on the plan needs analysis
/// (or none of them has audio to analyse).
pub(super) fn analysis_graph(
    plan: &RenderPlan,
    ctx: &Context,
) -> Result<Option<AnalysisGraph>, MediaError> {
    let mut builder = Builder::new(ctx, Mode::Analyse);
    let stream = builder.build(&plan.source)?;
    if builder.taps.is_empty() {
        return Ok(None);
    }
    // The audio after the last tap leads nowhere, but a filter output must
    // be consumed; raw input labels (`[0:a:0]`) and unwritten source
    // chains need nothing.
    if let Some(rest) = stream.audio
        && !rest.input.is_empty()
        && !rest.input.contains(':')
    {
        let mut rest = rest;
        rest.push("anullsink");
        builder
            .graph
            .push(format!("{}{}", rest.input, rest.filters.join(",")));
    }
    Ok(Some(AnalysisGraph {
        graph: builder.graph.text(),
        outputs: builder.tap_outputs,
        taps: builder.taps,
    }))
}

impl<'a> Builder<'a> {
    fn new(ctx: &'a Context<'a>, mode: Mode) -> Self {
        Self {
            ctx,
            mode,
            graph: GraphText::default(),
            files: Vec::new(),
            taps: Vec::new(),
            tap_outputs: Vec::new(),
        }
    }

    fn build(&mut self, source: &Source) -> Result<Stream, MediaError> {
        match source {
            Source::Input(id) => self.input(id),
            Source::Step { from, node, step } => {
                let stream = self.build(from)?;
                self.step(stream, node, step)
            }
            Source::Concat { node, parts } => {
                let streams = parts
                    .iter()
                    .map(|part| self.build(part))
                    .collect::<Result<Vec<_>, _>>()?;
                self.concat(node, source, streams)
            }
        }
    }

    /// An input's streams, with timestamps starting at 0.
    fn input(&mut self, id: &str) -> Result<Stream, MediaError> {
        let (index, input) = self
            .ctx
            .inputs
            .iter()
            .enumerate()
            .find(|(_, input)| input.id == id)
            .ok_or_else(|| MediaError::MissingInput(id.to_owned()))?;
        let video = (self.mode == Mode::Encode).then(|| {
            let mut chain = Chain::from_label(format!("[{index}:V:0]"));
            chain.push("setpts=PTS-STARTPTS");
            chain
        });
        let audio = input.probe.has_audio.then(|| {
            let mut chain = Chain::from_label(format!("[{index}:a:0]"));
            chain.push("asetpts=PTS-STARTPTS");
            chain
        });
        Ok(Stream {
            video,
            audio,
            size: (f64::from(input.probe.width), f64::from(input.probe.height)),
            // Anamorphic and rotated inputs arrive in other pixel sizes
            // than their display size: the first use scales.
            pixels: None,
            duration_ms: input.window.length_ms as f64,
        })
    }
}
