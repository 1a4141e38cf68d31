//! ffprobe and ffmpeg: the only code that spawns them.
//!
//! Invariants:
//! - Every ffprobe/ffmpeg reads only a local file: `file` is the only allowed
//!   protocol and the demuxers are an allow-list (no playlists, concat or
//!   images), so a hostile "video" cannot make ffmpeg fetch anything.
//! - A render is exactly one encoding ffmpeg process (each input decoded
//!   once, one filter graph, one encode per output), plus at most one
//!   audio-only analysis process when `remove_silence`/`normalize_audio` are
//!   on the plan. Argument lists are built by pure functions (`job.rs`) and
//!   logged at debug level.
//! - At most `jobs` ffmpeg processes run at once (renders and thumbnails);
//!   ffprobe runs are short and not counted.
//! - Processes die with their job: cancellation, timeouts and dropped futures
//!   all kill them.

mod analysis;
mod args;
mod error;
mod filters;
mod job;
mod probe;
mod process;
mod render;
mod silence;
mod size;
mod timeline;
pub mod ytdlp;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

use tokio::sync::Semaphore;

pub use args::output_extension;
pub use error::MediaError;
pub use probe::Probe;
pub use process::stop_processes_using;
pub use render::InputFile;
pub use size::Size;
pub use timeline::Window;

use process::Job;

/// ffprobe runs and thumbnails are quick; a file that keeps them busy this
/// long is hostile or broken.
const QUICK_JOB_TIMEOUT: Duration = Duration::from_secs(120);
/// `-version` answers at once.
const VERSION_TIMEOUT: Duration = Duration::from_secs(10);
/// The probe's JSON is small; the tail check lists a few seconds of packets.
const PROBE_STDOUT_CAP: usize = 1024 * 1024;
const TAIL_STDOUT_CAP: usize = 64 * 1024;

/// Settings of the media layer.
#[derive(Clone, Debug)]
pub struct MediaConfig {
    pub ffmpeg: PathBuf,
    pub ffprobe: PathBuf,
    /// Concurrent ffmpeg processes (at least 1).
    pub jobs: usize,
    /// Longest input accepted, in seconds of media.
    pub max_media_seconds: u64,
    /// Longest one render's ffmpeg process may run; `None` = until cancelled.
    pub job_timeout: Option<std::time::Duration>,
}

/// Runs ffprobe and ffmpeg. Cheap to clone: clones share the job limit.
#[derive(Clone)]
pub struct Media {
    inner: Arc<Inner>,
}

struct Inner {
    cfg: MediaConfig,
    /// One permit per running ffmpeg process.
    jobs: Semaphore,
    /// ffmpeg processes started by renders, by kind (for tests and debugging).
    spawned: Spawned,
}

/// Counts of ffmpeg processes started by renders.
#[derive(Default)]
struct Spawned {
    encodes: AtomicUsize,
    analyses: AtomicUsize,
}

impl Media {
    pub fn new(cfg: MediaConfig) -> Self {
        let jobs = Semaphore::new(cfg.jobs.max(1));
        Self {
            inner: Arc::new(Inner {
                cfg,
                jobs,
                spawned: Spawned::default(),
            }),
        }
    }

    /// Succeeds when `ffmpeg -version` and `ffprobe -version` do (for `/readyz`).
    pub async fn check_available(&self) -> Result<(), MediaError> {
        let cfg = &self.inner.cfg;
        for (tool, program) in [("ffmpeg", &cfg.ffmpeg), ("ffprobe", &cfg.ffprobe)] {
            let args = ["-hide_banner".to_owned(), "-version".to_owned()];
            let job = quick_job(tool, program, &args, 4096, VERSION_TIMEOUT, &[]);
            let finished = process::run(job).await?;
            if !finished.status.success() {
                return Err(MediaError::Unavailable {
                    tool,
                    reason: format!("`{tool} -version` exited with {}", finished.status),
                });
            }
        }
        Ok(())
    }

    /// Probes a local file. Non-video, refused containers, truncated files and
    /// files without a video stream are [`MediaError::NotAVideo`]; media
    /// longer than `max_media_seconds` is [`MediaError::TooLong`].
    pub async fn probe(&self, path: &Path) -> Result<Probe, MediaError> {
        self.probe_with(path, true).await
    }

    /// Probe a file ffmpeg just wrote for us: one ffprobe, without the
    /// truncation check that untrusted inputs need.
    pub async fn probe_output(&self, path: &Path) -> Result<Probe, MediaError> {
        self.probe_with(path, false).await
    }

    async fn probe_with(&self, path: &Path, check_complete: bool) -> Result<Probe, MediaError> {
        let cfg = &self.inner.cfg;
        let input = args::path_str(path)?;
        // A missing file is our own mistake, not the user's "not a video".
        tokio::fs::metadata(path)
            .await
            .map_err(MediaError::io("reading the input file"))?;
        let redact = [(input, "input")];
        let probe_args = probe::probe_args(input);
        let job = quick_job(
            "ffprobe",
            &cfg.ffprobe,
            &probe_args,
            PROBE_STDOUT_CAP,
            QUICK_JOB_TIMEOUT,
            &redact,
        );
        let finished = process::run(job).await?;
        if !finished.status.success() {
            return Err(not_a_video(&finished.stderr));
        }
        let parsed = probe::parse(&finished.stdout)?;
        let max_ms = cfg.max_media_seconds.saturating_mul(1000);
        if parsed.probe.duration_ms > max_ms {
            return Err(MediaError::TooLong {
                duration_ms: parsed.probe.duration_ms,
                max_seconds: cfg.max_media_seconds,
            });
        }
        if !check_complete {
            return Ok(parsed.probe);
        }
        let tail_args = probe::tail_args(input, &parsed);
        let job = quick_job(
            "ffprobe",
            &cfg.ffprobe,
            &tail_args,
            TAIL_STDOUT_CAP,
            QUICK_JOB_TIMEOUT,
            &redact,
        );
        let finished = process::run(job).await?;
        if !finished.status.success() {
            return Err(not_a_video(&finished.stderr));
        }
        probe::check_complete(&finished.stdout, &parsed)?;
        Ok(parsed.probe)
    }

    /// Writes a single-frame JPEG (at most 640 wide, even sides) taken at
    /// min(1 s, duration / 2).
    pub async fn thumbnail(
        &self,
        input: &Path,
        probe: &Probe,
        out_jpg: &Path,
    ) -> Result<(), MediaError> {
        let args = args::thumbnail_args(input, probe, out_jpg)?;
        let redact = [
            (args::path_str(input)?, "input"),
            (args::path_str(out_jpg)?, "output"),
        ];
        let _permit = self.permit(None).await?;
        let job = quick_job(
            "ffmpeg",
            &self.inner.cfg.ffmpeg,
            &args,
            0,
            QUICK_JOB_TIMEOUT,
            &redact,
        );
        let result = finish_output(process::run(job).await, out_jpg).await;
        remove_on_error(result, out_jpg).await
    }

    /// Waits for an ffmpeg slot, giving up when `cancel` fires.
    async fn permit(
        &self,
        cancel: Option<&tokio_util::sync::CancellationToken>,
    ) -> Result<tokio::sync::SemaphorePermit<'_>, MediaError> {
        let acquire = self.inner.jobs.acquire();
        let permit = match cancel {
            Some(cancel) => tokio::select! {
                permit = acquire => permit,
                () = cancel.cancelled() => return Err(MediaError::Cancelled),
            },
            None => acquire.await,
        };
        // The semaphore is never closed, so acquiring cannot fail in practice.
        permit.map_err(|_| MediaError::Unavailable {
            tool: "ffmpeg",
            reason: "the media layer is shutting down".into(),
        })
    }
}

fn quick_job<'a>(
    tool: &'static str,
    program: &'a Path,
    args: &'a [String],
    stdout_tail: usize,
    timeout: Duration,
    redact: &'a [(&'a str, &'static str)],
) -> Job<'a> {
    Job {
        tool,
        program,
        args,
        stdout_tail,
        stderr_tail: 0,
        timeout: Some(timeout),
        cancel: None,
        redact,
    }
}

/// ffprobe refused the file: say why in words a user understands.
fn not_a_video(stderr: &str) -> MediaError {
    let reason = if stderr.contains("not on whitelist") {
        let format = stderr
            .strip_prefix('[')
            .and_then(|s| s.split_once(']'))
            .map_or("this", |(name, _)| name.trim());
        format!(
            "the {format} format is not accepted (accepted: MP4/MOV, Matroska/WebM, MPEG-TS, AVI, FLV)"
        )
    } else if stderr.contains("moov atom not found") {
        "the file is not a complete MP4/MOV video (no index found: truncated, or not a video at all)".to_owned()
    } else if stderr.is_empty() {
        "the file could not be read as media".to_owned()
    } else {
        format!(
            "the file could not be read as media ({})",
            stderr.replace("input: ", "")
        )
    };
    MediaError::NotAVideo(reason)
}

/// A zero exit status is not enough: the output file must exist and hold data.
async fn finish_output(
    result: Result<process::Finished, MediaError>,
    out: &Path,
) -> Result<(), MediaError> {
    result?.success("ffmpeg")?;
    check_written(out).await
}

async fn check_written(out: &Path) -> Result<(), MediaError> {
    let len = tokio::fs::metadata(out)
        .await
        .map_err(MediaError::io("reading the ffmpeg output"))?
        .len();
    if len == 0 {
        return Err(MediaError::Failed {
            tool: "ffmpeg",
            status: "exit status: 0".into(),
            detail: "no output was written".into(),
        });
    }
    Ok(())
}

/// Deletes a partial output after a failure, so callers never upload one.
async fn remove_on_error(result: Result<(), MediaError>, out: &Path) -> Result<(), MediaError> {
    if result.is_err()
        && let Err(e) = tokio::fs::remove_file(out).await
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(error = %e, "removing a partial media output");
    }
    result
}

#[cfg(test)]
mod tests;
