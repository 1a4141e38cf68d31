//! The complete argument lists of a render: the encoding pass and the
//! optional analysis pass. Pure: given the plan, the probed inputs, the
//! analysis findings and where files go, the same argv comes out, and the
//! files the graph refers to are returned for the caller to write.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use crate::domain::graph::{Format, RenderPlan};

use super::analysis::{Analysis, Tap};
use super::args::{
    check_codec, encoder_args, file_url, input_args, leading_args, output_args, output_extension,
    owned, path_str, seek_args,
};
use super::filters::{self, Context, InputRef, OutputStreams, TempFile};
use super::probe::{FrameRate, Probe};
use super::timeline::{InputSpan, Window, plan_seeks};
use super::{InputFile, MediaError};

/// Graphs longer than this go to a script file: one argument may be at
/// most 128 KiB on Linux, and silence removal on a long video writes long
/// expressions.
const INLINE_GRAPH_MAX: usize = 64 * 1024;

/// One input of a plan, ready for `-i`: its file, probe and read window.
#[derive(Clone, Debug)]
pub(super) struct PlanInput<'a> {
    pub id: String,
    pub path: &'a Path,
    pub probe: &'a Probe,
    pub window: Window,
}

/// The inputs of a plan (in `-i` order) and the trims input seeking does.
#[derive(Clone, Debug)]
pub(super) struct Prepared<'a> {
    pub inputs: Vec<PlanInput<'a>>,
    pub folded: HashSet<String>,
}

/// Where a job writes: outputs into `out_dir` named after `stem`, temp files
/// into `work_dir`.
#[derive(Clone, Copy, Debug)]
pub(super) struct JobPaths<'a> {
    pub out_dir: &'a Path,
    pub work_dir: &'a Path,
    pub stem: &'a str,
}

/// The encoding pass.
#[derive(Clone, Debug)]
pub(super) struct RenderJob {
    pub args: Vec<String>,
    pub outputs: Vec<PathBuf>,
    pub files: Vec<TempFile>,
}

/// The analysis pass.
#[derive(Clone, Debug)]
pub(super) struct AnalysisJob {
    pub args: Vec<String>,
    pub taps: Vec<Tap>,
    pub files: Vec<TempFile>,
}

/// Matches the plan's inputs with the given files and works out what each
/// `-i` reads.
pub(super) fn prepare<'a>(
    plan: &RenderPlan,
    files: &HashMap<String, InputFile<'a>>,
) -> Result<Prepared<'a>, MediaError> {
    let ids = plan.inputs();
    let mut spans = HashMap::new();
    for id in &ids {
        let file = files
            .get(id)
            .ok_or_else(|| MediaError::MissingInput(id.clone()))?;
        let span = InputSpan {
            duration_ms: file.probe.duration_ms,
            start_ms: file.start_ms,
            end_ms: file.end_ms,
        };
        spans.insert(id.clone(), span);
    }
    let seeks = plan_seeks(&plan.source, &spans)?;
    let mut inputs = Vec::with_capacity(ids.len());
    for id in ids {
        let (Some(file), Some(window)) = (files.get(&id), seeks.windows.get(&id)) else {
            return Err(MediaError::MissingInput(id));
        };
        inputs.push(PlanInput {
            window: *window,
            path: file.path,
            probe: file.probe,
            id,
        });
    }
    Ok(Prepared {
        inputs,
        folded: seeks.folded,
    })
}

/// The encoding pass: one process, every input decoded once, one filter
/// graph, one encode per output (per clip with `clips`).
pub(super) fn render_job(
    plan: &RenderPlan,
    prepared: &Prepared,
    analysis: &Analysis,
    frame_rates: &HashMap<String, FrameRate>,
    paths: JobPaths,
) -> Result<RenderJob, MediaError> {
    check_codec(&plan.render)?;
    let refs = input_refs(prepared);
    let ctx = Context {
        inputs: &refs,
        folded: &prepared.folded,
        analysis,
        frame_rates,
        work_dir: paths.work_dir,
    };
    let compiled = filters::encode_graph(plan, &ctx)?;
    let mut files = compiled.files;
    let mut args = leading_args();
    args.extend(inputs_args(prepared)?);
    args.extend(graph_args(compiled.graph, "encode", paths, &mut files)?);
    let outputs = output_paths(plan, compiled.outputs.len(), paths);
    for (streams, out) in compiled.outputs.iter().zip(&outputs) {
        args.extend(one_output_args(plan, streams, out)?);
    }
    Ok(RenderJob {
        args,
        outputs,
        files,
    })
}

/// The analysis pass, or None when nothing on the plan needs one.
pub(super) fn analysis_job(
    plan: &RenderPlan,
    prepared: &Prepared,
    paths: JobPaths,
) -> Result<Option<AnalysisJob>, MediaError> {
    let refs = input_refs(prepared);
    let ctx = Context {
        inputs: &refs,
        folded: &prepared.folded,
        analysis: &Analysis::default(),
        frame_rates: &HashMap::new(),
        work_dir: paths.work_dir,
    };
    let Some(compiled) = filters::analysis_graph(plan, &ctx)? else {
        return Ok(None);
    };
    let mut files = Vec::new();
    // Findings are logged at info level; progress lines are noise.
    let mut args = owned(&["-nostdin", "-hide_banner", "-nostats", "-v", "info", "-y"]);
    args.extend(inputs_args(prepared)?);
    args.extend(graph_args(compiled.graph, "analysis", paths, &mut files)?);
    for label in &compiled.outputs {
        args.extend(owned(&["-map", label]));
    }
    args.extend(owned(&["-f", "null", "-"]));
    Ok(Some(AnalysisJob {
        args,
        taps: compiled.taps,
        files,
    }))
}

fn input_refs<'p>(prepared: &'p Prepared) -> Vec<InputRef<'p>> {
    prepared
        .inputs
        .iter()
        .map(|input| InputRef {
            id: &input.id,
            probe: input.probe,
            window: input.window,
        })
        .collect()
}

/// `-ss`/`-t`, the guards and `-i` of every input, in order.
fn inputs_args(prepared: &Prepared) -> Result<Vec<String>, MediaError> {
    let mut args = Vec::new();
    for input in &prepared.inputs {
        args.extend(seek_args(input.window, input.probe.duration_ms));
        args.extend(input_args(input.path)?);
    }
    Ok(args)
}

/// `-filter_complex GRAPH`, or a script file holding it when it is long.
fn graph_args(
    graph: String,
    name: &str,
    paths: JobPaths,
    files: &mut Vec<TempFile>,
) -> Result<Vec<String>, MediaError> {
    if graph.len() <= INLINE_GRAPH_MAX {
        return Ok(vec!["-filter_complex".into(), graph]);
    }
    let path = paths.work_dir.join(format!("graph-{name}.txt"));
    let arg = file_url(path_str(&path)?);
    files.push(TempFile {
        path,
        contents: graph,
    });
    Ok(vec!["-filter_complex_script".into(), arg])
}

/// `stem.ext`, or `stem-clip01.ext`… when the plan has clips.
fn output_paths(plan: &RenderPlan, count: usize, paths: JobPaths) -> Vec<PathBuf> {
    let ext = output_extension(&plan.render);
    if plan.clips.is_none() {
        return vec![paths.out_dir.join(format!("{}.{ext}", paths.stem))];
    }
    (1..=count)
        .map(|i| {
            paths
                .out_dir
                .join(format!("{}-clip{i:02}.{ext}", paths.stem))
        })
        .collect()
}

fn one_output_args(
    plan: &RenderPlan,
    streams: &OutputStreams,
    out: &Path,
) -> Result<Vec<String>, MediaError> {
    let mut args = owned(&["-map", &streams.video]);
    if let Some(audio) = &streams.audio {
        args.extend(owned(&["-map", audio]));
    }
    args.extend(encoder_args(&plan.render, streams.audio.is_some()));
    // Drops container metadata such as the GPS position phones record.
    args.extend(owned(&["-map_metadata", "-1", "-map_chapters", "-1"]));
    if plan.render.format == Format::Webm {
        // Opus needs 48 kHz or less; loudnorm and friends may leave more.
        args.extend(owned(&["-ar", "48000"]));
    }
    args.extend(output_args(&plan.render, out)?);
    Ok(args)
}

#[cfg(test)]
mod tests;
