//! Getting a run's inputs onto local disk: downloads (with the address policy,
//! a byte cap and a deadline), earlier renders, and inputs already ingested by
//! an earlier attempt. Each input is probed and thumbnailed; a bad input fails
//! alone, never the whole run.

use std::path::{Path, PathBuf};

use super::{Abort, Engine, Stop};
use crate::domain::address::check_url;
use crate::domain::payload::{FileRef, InputError, OutputRef};
use crate::media::{Probe, ytdlp};
use crate::net::download_to_file;
use crate::store::{IngestedInput, RunRecord, SourceKind, StoreError};

/// An input on local disk, ready for ffmpeg.
pub(super) struct LocalInput {
    pub input: IngestedInput,
    pub path: PathBuf,
    pub probe: Probe,
}

/// A run's working state: its inputs, what went wrong, what was produced.
#[derive(Default)]
pub(super) struct Ingested {
    pub inputs: Vec<LocalInput>,
    pub errors: Vec<InputError>,
    pub outputs: Vec<OutputRef>,
}

impl Ingested {
    /// The local inputs of a job, or `None` when one of them is missing.
    pub fn job_inputs(&self, job: &[usize]) -> Option<Vec<&LocalInput>> {
        job.iter()
            .map(|i| self.inputs.iter().find(|l| l.input.input_index == *i))
            .collect()
    }

    /// Whether the job led by `input_index` already has outputs of `render_node`.
    pub fn has_outputs(&self, input_index: usize, render_node: &str) -> bool {
        self.outputs
            .iter()
            .any(|o| o.input_index == input_index && o.render_node == render_node)
    }
}

impl Engine {
    /// Ingest every source; sources ingested by an earlier attempt are
    /// fetched back instead of downloaded again.
    pub(super) async fn ingest_all(
        &self,
        run: &RunRecord,
        dir: &Path,
        stop: &Stop,
    ) -> Result<Ingested, Abort> {
        let mut state = Ingested {
            outputs: run.outputs.clone(),
            ..Ingested::default()
        };
        for index in 0..run.sources.len() {
            if stop.token.is_cancelled() {
                if stop.cancelled_by_user() {
                    break;
                }
                return Err(Abort::Released);
            }
            let earlier = run.inputs.iter().find(|i| i.input_index == index);
            let result = match earlier {
                Some(input) => self.restore(input, dir).await.map_err(Abort::Store)?,
                // A download can take long: a cancel or shutdown stops it at once.
                None => match stopped_or(&stop.token, self.ingest(run, index, dir)).await {
                    Some(result) => result,
                    None if stop.cancelled_by_user() => break,
                    None => return Err(Abort::Released),
                },
            };
            match result {
                Ok(local) => state.inputs.push(local),
                Err(message) => {
                    tracing::info!(run_id = %run.id, input = index, %message, "input could not be ingested");
                    state.errors.push(InputError {
                        input_index: index,
                        source: run.sources[index].label(),
                        message,
                        node_id: None,
                    });
                }
            }
        }
        Ok(state)
    }

    /// After a takeover of a running run: fetch its recorded inputs back.
    pub(super) async fn restore_inputs(
        &self,
        run: &RunRecord,
        dir: &Path,
    ) -> Result<Ingested, Abort> {
        let mut state = Ingested {
            errors: run.errors.clone(),
            outputs: run.outputs.clone(),
            ..Ingested::default()
        };
        for input in &run.inputs {
            match self.restore(input, dir).await? {
                Ok(local) => state.inputs.push(local),
                Err(message) => {
                    return Err(Abort::Store(StoreError::Internal(anyhow::anyhow!(
                        "input {} of run {} cannot be read back: {message}",
                        input.input_index,
                        run.id
                    ))));
                }
            }
        }
        Ok(state)
    }

    /// Fetch an input that is already in the object store.
    async fn restore(
        &self,
        input: &IngestedInput,
        dir: &Path,
    ) -> Result<Result<LocalInput, String>, StoreError> {
        let path = dir.join(format!("input-{}", input.input_index));
        if let Err(e) = self
            .inner
            .objects
            .fetch_to_file(&input.files.video_key, &path)
            .await
        {
            tracing::error!(error = format!("{e:#}"), "stored input is unreadable");
            return Ok(Err("the stored input could not be read".into()));
        }
        Ok(match self.inner.media.probe(&path).await {
            Ok(probe) => Ok(LocalInput {
                input: input.clone(),
                path,
                probe,
            }),
            Err(e) => Err(e.to_string()),
        })
    }

    /// Ingest one new source.
    async fn ingest(
        &self,
        run: &RunRecord,
        index: usize,
        dir: &Path,
    ) -> Result<LocalInput, String> {
        let source = &run.sources[index];
        let path = dir.join(format!("input-{index}"));
        let existing = match &source.kind {
            SourceKind::Url { url } => {
                let url =
                    check_url(url, &self.inner.config.address_policy).map_err(|e| e.to_string())?;
                let cfg = &self.inner.config;
                if ytdlp::is_youtube(&url) {
                    ytdlp::fetch(
                        &cfg.ytdlp_path,
                        &url,
                        &path,
                        cfg.download_max_bytes,
                        cfg.download_timeout,
                    )
                    .await
                    .map_err(|e| e.to_string())?;
                } else {
                    download_to_file(
                        &self.inner.http,
                        &url,
                        &path,
                        cfg.download_max_bytes,
                        cfg.download_timeout,
                    )
                    .await
                    .map_err(|e| format!("could not download the video: {e}"))?;
                }
                Stored::New
            }
            SourceKind::Render { render_id } => {
                let files = self
                    .inner
                    .store
                    .render_files(run.user_id, *render_id)
                    .await
                    .map_err(|e| {
                        tracing::error!(error = %e, "reading a render failed");
                        "the render could not be read".to_string()
                    })?
                    .ok_or("no such render")?;
                self.inner
                    .objects
                    .fetch_to_file(&files.video_key, &path)
                    .await
                    .map_err(|e| {
                        tracing::error!(error = format!("{e:#}"), "stored render is unreadable");
                        "the render's file could not be read".to_string()
                    })?;
                Stored::Render(files)
            }
            SourceKind::Upload { video_id } => {
                let upload = self
                    .inner
                    .store
                    .upload(*video_id)
                    .await
                    .map_err(|e| {
                        tracing::error!(error = %e, "reading an upload failed");
                        "the upload could not be read".to_string()
                    })?
                    .filter(|u| u.user_id == run.user_id)
                    .ok_or("no such video")?;
                self.inner
                    .objects
                    .fetch_to_file(&upload.object_key, &path)
                    .await
                    .map_err(|e| {
                        tracing::error!(error = format!("{e:#}"), "stored upload is unreadable");
                        "the uploaded file could not be read".to_string()
                    })?;
                Stored::Upload(upload.object_key)
            }
        };
        let probe = self
            .inner
            .media
            .probe(&path)
            .await
            .map_err(|e| e.to_string())?;
        if matches!(&source.kind, SourceKind::Url { url } if url::Url::parse(url).is_ok_and(|u| ytdlp::is_youtube(&u)))
            && probe.duration_ms > ytdlp::YOUTUBE_MAX_SECONDS * 1000
        {
            return Err("YouTube videos longer than 1 hour are not accepted".into());
        }
        let base = format!("runs/{}/inputs/{index}", run.id);
        let files = match existing {
            // An earlier render keeps its files: nothing to copy.
            Stored::Render(files) => files,
            // An upload stays where it is; only its thumbnail is new.
            Stored::Upload(video_key) => {
                let files = FileRef {
                    video_key,
                    thumbnail_key: format!("{base}/thumbnail.jpg"),
                };
                self.store_thumbnail(&path, &probe, dir, index, &files.thumbnail_key)
                    .await?;
                files
            }
            Stored::New => {
                let files = FileRef {
                    video_key: format!("{base}/source.{}", container_extension(&probe)),
                    thumbnail_key: format!("{base}/thumbnail.jpg"),
                };
                self.store_file(&files.video_key, &path).await?;
                self.store_thumbnail(&path, &probe, dir, index, &files.thumbnail_key)
                    .await?;
                files
            }
        };
        Ok(LocalInput {
            input: IngestedInput {
                input_index: index,
                source: source.label(),
                files,
                duration_ms: probe.duration_ms,
            },
            path,
            probe,
        })
    }
}

/// Where an ingested input's video is stored.
enum Stored {
    /// Nowhere yet: store the downloaded file.
    New,
    /// An earlier render: its files are reused as they are.
    Render(FileRef),
    /// A finalized upload: the video stays under its key.
    Upload(String),
}

impl Engine {
    /// Extract an input's thumbnail and store it under `key`.
    async fn store_thumbnail(
        &self,
        video: &Path,
        probe: &Probe,
        dir: &Path,
        index: usize,
        key: &str,
    ) -> Result<(), String> {
        let thumb = dir.join(format!("input-{index}.jpg"));
        self.inner
            .media
            .thumbnail(video, probe, &thumb)
            .await
            .map_err(|e| e.to_string())?;
        self.store_file(key, &thumb).await
    }
}

/// File extension for a stored input, from what ffprobe found.
fn container_extension(probe: &Probe) -> &'static str {
    let f = probe.format_name.as_str();
    if f.contains("mp4") || f.contains("mov") {
        "mp4"
    } else if f.contains("webm") || f.contains("matroska") {
        if matches!(probe.video_codec.as_str(), "vp8" | "vp9" | "av1") {
            "webm"
        } else {
            "mkv"
        }
    } else if f.contains("mpegts") {
        "ts"
    } else if f.contains("avi") {
        "avi"
    } else if f.contains("flv") {
        "flv"
    } else {
        "bin"
    }
}

/// Run `work` unless `token` fires first (then `None`, and `work` is dropped).
async fn stopped_or<T>(
    token: &tokio_util::sync::CancellationToken,
    work: impl std::future::Future<Output = T>,
) -> Option<T> {
    tokio::select! {
        result = work => Some(result),
        _ = token.cancelled() => None,
    }
}
