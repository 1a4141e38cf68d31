//! Running a render plan: the optional analysis pass, then the one encoding
//! pass, with temp files written before and removed after, and no partial
//! output left behind on failure or cancellation.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use tokio_util::sync::CancellationToken;

use crate::domain::graph::{RenderPlan, Source, Step};

use super::analysis::{Analysis, parse_analysis};
use super::args::path_str;
use super::filters::{FONT_FILE, TempFile};
use super::job::{self, JobPaths, Prepared};
use super::probe::{self, FrameRate};
use super::process::{self, Job};
use super::{Media, MediaError, Probe, QUICK_JOB_TIMEOUT, check_written, quick_job};

/// The analysis log: a few lines per silence and per loudness measurement.
const ANALYSIS_STDERR_CAP: usize = 16 * 1024 * 1024;
/// The frame-rate probe prints two short lines.
const RATE_STDOUT_CAP: usize = 4096;

/// One input file of a render and the span of it the caller wants
/// (`input_clip_start_ms`/`input_clip_end_ms`; 0 and None for all of it).
#[derive(Clone, Copy, Debug)]
pub struct InputFile<'a> {
    pub path: &'a Path,
    pub probe: &'a Probe,
    pub start_ms: u64,
    pub end_ms: Option<u64>,
}

impl Media {
    /// Renders one plan. Returns the output files in order (one, or one per
    /// clip), written under `out_dir` with unique names. Exactly one
    /// encoding ffmpeg process, plus one audio-only analysis pass when
    /// `remove_silence`/`normalize_audio` are on the plan. Cancels (kills
    /// ffmpeg) when `cancel` fires; a failed or cancelled render leaves no
    /// output behind.
    pub async fn render(
        &self,
        plan: &RenderPlan,
        inputs: &HashMap<String, InputFile<'_>>,
        out_dir: &Path,
        cancel: &CancellationToken,
    ) -> Result<Vec<PathBuf>, MediaError> {
        let prepared = job::prepare(plan, inputs)?;
        check_font(plan).await?;
        let work = WorkDir::create(out_dir).await?;
        let stem = format!("{}-{}", plan.render_node, uuid::Uuid::new_v4().simple());
        let paths = JobPaths {
            out_dir,
            work_dir: &work.0,
            stem: &stem,
        };
        let analysis = self.analyse(plan, &prepared, paths, cancel).await?;
        let frame_rates = self.frame_rates(plan, &prepared).await;
        let job = job::render_job(plan, &prepared, &analysis, &frame_rates, paths)?;
        write_files(&job.files).await?;
        let owned = redactions(&prepared, &job.outputs, &work.0);
        let redact = borrowed(&owned);
        let _permit = self.permit(Some(cancel)).await?;
        self.inner.spawned.encodes.fetch_add(1, Ordering::Relaxed);
        let run = process::run(self.long_job(&job.args, 0, cancel, &redact)).await;
        let result = check_outputs(run, &job.outputs).await;
        if result.is_err() {
            remove_files(&job.outputs).await;
        }
        result.map(|()| job.outputs)
    }

    /// Runs the analysis pass if the plan needs one.
    async fn analyse(
        &self,
        plan: &RenderPlan,
        prepared: &Prepared<'_>,
        paths: JobPaths<'_>,
        cancel: &CancellationToken,
    ) -> Result<Analysis, MediaError> {
        let Some(job) = job::analysis_job(plan, prepared, paths)? else {
            return Ok(Analysis::default());
        };
        write_files(&job.files).await?;
        let owned = redactions(prepared, &[], paths.work_dir);
        let redact = borrowed(&owned);
        let _permit = self.permit(Some(cancel)).await?;
        self.inner.spawned.analyses.fetch_add(1, Ordering::Relaxed);
        let job_spec = self.long_job(&job.args, ANALYSIS_STDERR_CAP, cancel, &redact);
        let finished = process::run(job_spec).await?.success("ffmpeg")?;
        parse_analysis(&finished.stderr_raw, &job.taps)
    }

    /// Frame rates of the first input of every `concat` (what the parts are
    /// converted to). A failed probe means the default rate, not a failure.
    async fn frame_rates(
        &self,
        plan: &RenderPlan,
        prepared: &Prepared<'_>,
    ) -> HashMap<String, FrameRate> {
        let mut rates = HashMap::new();
        for id in concat_leaders(&plan.source) {
            let Some(input) = prepared.inputs.iter().find(|i| i.id == id) else {
                continue;
            };
            rates.insert(id, self.frame_rate(input.path).await);
        }
        rates
    }

    async fn frame_rate(&self, path: &Path) -> FrameRate {
        let Ok(input) = path_str(path) else {
            return FrameRate::default();
        };
        let args = probe::frame_rate_args(input);
        let redact = [(input, "input")];
        let cfg = &self.inner.cfg;
        let job = quick_job(
            "ffprobe",
            &cfg.ffprobe,
            &args,
            RATE_STDOUT_CAP,
            QUICK_JOB_TIMEOUT,
            &redact,
        );
        match process::run(job).await {
            Ok(done) if done.status.success() => probe::parse_frame_rate(&done.stdout),
            _ => FrameRate::default(),
        }
    }

    /// An ffmpeg run without time limit (renders take as long as they
    /// take) that `cancel` kills.
    fn long_job<'a>(
        &'a self,
        args: &'a [String],
        stderr_tail: usize,
        cancel: &'a CancellationToken,
        redact: &'a [(&'a str, &'static str)],
    ) -> Job<'a> {
        Job {
            tool: "ffmpeg",
            program: &self.inner.cfg.ffmpeg,
            args,
            stdout_tail: 0,
            stderr_tail,
            timeout: self.inner.cfg.job_timeout,
            cancel: Some(cancel),
            redact,
        }
    }
}

/// The leftmost input of every concat, whose frame rate the concat uses.
fn concat_leaders(source: &Source) -> Vec<String> {
    let mut leaders = Vec::new();
    source.visit(&mut |s| {
        if let Source::Concat { parts, .. } = s
            && let Some(first) = parts.first()
        {
            let mut leftmost = None;
            first.visit(&mut |p| {
                if let (None, Source::Input(id)) = (&leftmost, p) {
                    leftmost = Some(id.clone());
                }
            });
            leaders.extend(leftmost);
        }
    });
    leaders
}

/// Text and captions need the font the catalogue promises; without it
/// ffmpeg would fail late or pick another font.
async fn check_font(plan: &RenderPlan) -> Result<(), MediaError> {
    let mut draws_text = false;
    plan.source.visit(&mut |s| {
        if let Source::Step {
            step: Step::TextOverlay { .. } | Step::Captions { .. },
            ..
        } = s
        {
            draws_text = true;
        }
    });
    if draws_text && tokio::fs::metadata(FONT_FILE).await.is_err() {
        return Err(MediaError::Unavailable {
            tool: "fonts-dejavu-core",
            reason: format!("the font {FONT_FILE} is not installed"),
        });
    }
    Ok(())
}

/// Paths replaced in error messages, so users never see server paths.
fn redactions(
    prepared: &Prepared,
    outputs: &[PathBuf],
    work: &Path,
) -> Vec<(String, &'static str)> {
    let mut redact: Vec<(String, &'static str)> = Vec::new();
    let text = |p: &Path| p.to_string_lossy().into_owned();
    // Longer paths first, so a directory never eats part of a file name.
    redact.push((text(work), "work"));
    redact.extend(outputs.iter().map(|p| (text(p), "output")));
    redact.extend(prepared.inputs.iter().map(|i| (text(i.path), "input")));
    redact.sort_by_key(|(s, _)| std::cmp::Reverse(s.len()));
    redact
}

/// The pairs as `process::Job` takes them.
fn borrowed<'a>(pairs: &'a [(String, &'static str)]) -> Vec<(&'a str, &'static str)> {
    pairs.iter().map(|(s, r)| (s.as_str(), *r)).collect()
}

async fn write_files(files: &[TempFile]) -> Result<(), MediaError> {
    for file in files {
        tokio::fs::write(&file.path, &file.contents)
            .await
            .map_err(MediaError::io("writing a temp file for ffmpeg"))?;
    }
    Ok(())
}

/// ffmpeg must have succeeded and written every output.
async fn check_outputs(
    run: Result<process::Finished, MediaError>,
    outputs: &[PathBuf],
) -> Result<(), MediaError> {
    run?.success("ffmpeg")?;
    for out in outputs {
        check_written(out).await?;
    }
    Ok(())
}

async fn remove_files(paths: &[PathBuf]) {
    for path in paths {
        if let Err(e) = tokio::fs::remove_file(path).await
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(error = %e, "removing a partial media output");
        }
    }
}

/// A private directory for a render's temp files, removed on drop.
struct WorkDir(PathBuf);

impl WorkDir {
    async fn create(out_dir: &Path) -> Result<Self, MediaError> {
        let path = out_dir.join(format!(".work-{}", uuid::Uuid::new_v4().simple()));
        tokio::fs::create_dir_all(&path)
            .await
            .map_err(MediaError::io("creating a temp directory for ffmpeg"))?;
        Ok(Self(path))
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        // Small (a few text files); blocking briefly beats leaking it.
        if let Err(e) = std::fs::remove_dir_all(&self.0)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(error = %e, "removing a render's temp directory");
        }
    }
}
