//! The run engine (worker role): claims runs with a lease, ingests their
//! inputs (download → probe → thumbnail → object store), renders every output
//! path with one ffmpeg pass each, and records the result together with its
//! webhook event in one transaction.
//!
//! A run is owned through its lease, renewed while the run is alive. A node
//! that dies stops renewing; after the lease expires another node claims the
//! run and continues from the last recorded phase: a `queued` run is ingested
//! again, a `running` run (its RUN_STARTED already sent) is rendered again
//! from the inputs in the object store.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::app::{Services, Wakeups};
use crate::config::Config;
use crate::domain::graph::{RenderPlan, render_plans};
use crate::domain::ids::{EventId, RenderId};
use crate::domain::payload::{EventBody, FileRef, FinishedStatus, InputError, OutputRef};
use crate::media::{Media, MediaError, Probe, output_extension};
use crate::metrics::Metrics;
use crate::net::{download_client, download_to_file};
use crate::objects::Objects;
use crate::store::{
    DynStore, IngestedInput, NewEvent, RunFinished, RunRecord, RunStarted, RunStatus,
};

/// The worker: cheap to clone, every clone shares the same slots.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

struct Inner {
    store: DynStore,
    objects: Objects,
    media: Media,
    http: reqwest::Client,
    config: Arc<Config>,
    owner: String,
    wake: Wakeups,
    metrics: Arc<Metrics>,
    /// Runs in progress on this node; bounds claims.
    slots: Arc<Semaphore>,
}

/// Why a run stopped before finishing.
#[derive(Debug)]
enum Abort {
    /// The lease was lost or the node is shutting down: someone else (or a
    /// later start of this node) will take the run over.
    Released,
    Store(crate::store::StoreError),
}

impl From<crate::store::StoreError> for Abort {
    fn from(e: crate::store::StoreError) -> Self {
        Abort::Store(e)
    }
}

impl Engine {
    pub fn new(services: &Services, media: Media) -> Self {
        let s = services.clone();
        // Runs wait on downloads as much as on ffmpeg, so allow more runs in
        // flight than ffmpeg slots; `Media` bounds the ffmpeg processes.
        let slots = Arc::new(Semaphore::new(s.config.ffmpeg_jobs * 2));
        Engine {
            inner: Arc::new(Inner {
                http: download_client(&s.net),
                store: s.store,
                objects: s.objects,
                media,
                config: s.config,
                owner: s.owner,
                wake: s.wake,
                metrics: s.metrics,
                slots,
            }),
        }
    }

    /// The worker loop: claim, process in the background, wait for a wake-up
    /// or the poll interval. On shutdown, in-flight runs are cancelled and
    /// their leases released so another node can continue at once.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut running = tokio::task::JoinSet::new();
        loop {
            match self.claim().await {
                Ok(runs) => {
                    for (run, permit) in runs {
                        let engine = self.clone();
                        let cancel = shutdown.child_token();
                        running.spawn(async move {
                            engine.process(run, cancel).await;
                            drop(permit);
                        });
                    }
                }
                Err(e) => tracing::error!(error = %e, "claiming runs failed"),
            }
            while running.try_join_next().is_some() {}
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = self.inner.wake.runs.notified() => {}
                _ = tokio::time::sleep(self.inner.config.poll_interval) => {}
                Some(_) = running.join_next(), if !running.is_empty() => {}
            }
        }
        while running.join_next().await.is_some() {}
    }

    /// Claim as many runs as there are free slots.
    async fn claim(
        &self,
    ) -> Result<Vec<(RunRecord, tokio::sync::OwnedSemaphorePermit)>, crate::store::StoreError> {
        let free = self.inner.slots.available_permits();
        if free == 0 {
            return Ok(vec![]);
        }
        let now = now_ms();
        let until = now + self.inner.config.run_lease.as_millis() as i64;
        let runs = self
            .inner
            .store
            .claim_runs(&self.inner.owner, now, until, free as u32)
            .await?;
        Ok(runs
            .into_iter()
            .filter_map(|run| {
                self.inner
                    .slots
                    .clone()
                    .try_acquire_owned()
                    .ok()
                    .map(|p| (run, p))
            })
            .collect())
    }

    /// Process one claimed run to the end, keeping its lease alive.
    async fn process(&self, run: RunRecord, cancel: CancellationToken) {
        let id = run.id;
        let keeper = self.keep_lease(id, cancel.clone());
        let work_dir = self
            .inner
            .config
            .data_dir
            .join("tmp")
            .join(format!("{id}-{}", self.inner.owner));
        let outcome = match tokio::fs::create_dir_all(&work_dir).await {
            Ok(()) => self.execute(run, &work_dir, &cancel).await,
            Err(e) => Err(Abort::Store(crate::store::StoreError::Internal(
                anyhow::Error::new(e).context("cannot create the run's work directory"),
            ))),
        };
        keeper.abort();
        if let Err(e) = tokio::fs::remove_dir_all(&work_dir).await
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(run_id = %id, error = %e, "could not remove the run's temporary files");
        }
        match outcome {
            Ok(()) => {}
            Err(Abort::Released) => {
                // Let another node (or this one, later) take over now rather
                // than after the lease runs out.
                let _ = self
                    .inner
                    .store
                    .renew_run_lease(id, &self.inner.owner, 0)
                    .await;
                tracing::info!(run_id = %id, "run released");
            }
            Err(Abort::Store(e)) => {
                tracing::error!(run_id = %id, error = %e, "run failed to record; it will be retried after its lease expires")
            }
        }
    }

    /// Renew the lease every third of its length; cancel the run if it is lost.
    fn keep_lease(
        &self,
        id: crate::domain::ids::RunId,
        cancel: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        let inner = self.inner.clone();
        tokio::spawn(async move {
            let lease = inner.config.run_lease;
            loop {
                tokio::time::sleep(lease / 3).await;
                let until = now_ms() + lease.as_millis() as i64;
                match inner.store.renew_run_lease(id, &inner.owner, until).await {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::warn!(run_id = %id, "run lease lost; stopping work on it");
                        cancel.cancel();
                        return;
                    }
                    Err(e) => {
                        tracing::warn!(run_id = %id, error = %e, "could not renew the run lease")
                    }
                }
            }
        })
    }

    async fn execute(
        &self,
        run: RunRecord,
        dir: &Path,
        cancel: &CancellationToken,
    ) -> Result<(), Abort> {
        let (inputs, mut errors) = match run.status {
            RunStatus::Queued => {
                let (inputs, errors) = self.ingest_all(&run, dir, cancel).await?;
                let started = RunStarted {
                    id: run.id,
                    owner: self.inner.owner.clone(),
                    inputs: inputs.iter().map(|(i, _, _)| i.clone()).collect(),
                    errors: errors.clone(),
                    status_message: ingest_message(run.sources.len(), &errors),
                    at: now_ms(),
                };
                let event = self.event(
                    &run,
                    EventBody::RunStarted {
                        agent_id: run.agent_id,
                        run_id: run.id,
                        inputs: inputs.iter().map(|(i, _, _)| i.files.clone()).collect(),
                        triggered_by: Some(run.triggered_by.clone()),
                        errors: errors.clone(),
                    },
                );
                if !self.inner.store.start_run(started, event).await? {
                    return Err(Abort::Released);
                }
                self.inner.wake.deliveries.notify_one();
                (inputs, errors)
            }
            RunStatus::Running => (self.restore_inputs(&run, dir).await?, run.errors.clone()),
            _ => return Ok(()),
        };
        let plans = render_plans(&run.graph);
        let mut outputs = Vec::new();
        let mut succeeded = 0;
        for (input, path, probe) in &inputs {
            if cancel.is_cancelled() {
                return Err(Abort::Released);
            }
            match self
                .render_input(&run, input, path, probe, &plans, dir, cancel)
                .await
            {
                Ok(mut produced) => {
                    succeeded += 1;
                    outputs.append(&mut produced);
                }
                Err((mut produced, message)) => {
                    if cancel.is_cancelled() {
                        return Err(Abort::Released);
                    }
                    outputs.append(&mut produced);
                    errors.push(InputError {
                        input_index: input.input_index,
                        source: input.source.clone(),
                        message,
                    });
                }
            }
        }
        errors.sort_by_key(|e| e.input_index);
        let status = FinishedStatus::from_counts(run.sources.len(), succeeded, outputs.len());
        let status_message =
            finish_message(status, run.sources.len(), succeeded, outputs.len(), &errors);
        let finished = RunFinished {
            id: run.id,
            owner: self.inner.owner.clone(),
            status,
            outputs: outputs.clone(),
            errors: errors.clone(),
            status_message: Some(status_message.clone()),
            at: now_ms(),
        };
        let event = self.event(
            &run,
            EventBody::RunFinished {
                agent_id: run.agent_id,
                run_id: run.id,
                status,
                inputs: inputs.iter().map(|(i, _, _)| i.files.clone()).collect(),
                outputs,
                triggered_by: Some(run.triggered_by.clone()),
                status_message: Some(status_message),
                errors,
            },
        );
        if !self.inner.store.finish_run(finished, event).await? {
            return Err(Abort::Released);
        }
        self.inner.wake.deliveries.notify_one();
        tracing::info!(run_id = %run.id, status = status.as_str(), "run finished");
        Ok(())
    }

    fn event(&self, run: &RunRecord, body: EventBody) -> NewEvent {
        NewEvent {
            id: EventId::new(),
            user_id: run.user_id,
            run_id: Some(run.id),
            body,
            destinations: run.callback_url.iter().cloned().collect(),
            attempts_allowed: self.inner.config.retry.attempts_allowed(),
            created_at: now_ms(),
        }
    }

    /// Download, probe and thumbnail every input; failures are per input.
    async fn ingest_all(
        &self,
        run: &RunRecord,
        dir: &Path,
        cancel: &CancellationToken,
    ) -> Result<(Vec<(IngestedInput, PathBuf, Probe)>, Vec<InputError>), Abort> {
        let mut ingested = Vec::new();
        let mut errors = Vec::new();
        for (index, source) in run.sources.iter().enumerate() {
            if cancel.is_cancelled() {
                return Err(Abort::Released);
            }
            match self.ingest(run, index, source, dir).await {
                Ok(done) => ingested.push(done),
                Err(message) => {
                    tracing::info!(run_id = %run.id, input = index, %message, "input could not be ingested");
                    errors.push(InputError {
                        input_index: index,
                        source: source.clone(),
                        message,
                    });
                }
            }
        }
        Ok((ingested, errors))
    }

    async fn ingest(
        &self,
        run: &RunRecord,
        index: usize,
        source: &str,
        dir: &Path,
    ) -> Result<(IngestedInput, PathBuf, Probe), String> {
        let url = crate::domain::address::check_url(source, &self.inner.config.address_policy)
            .map_err(|e| e.to_string())?;
        let path = dir.join(format!("input-{index}"));
        download_to_file(
            &self.inner.http,
            &url,
            &path,
            self.inner.config.download_max_bytes,
            self.inner.config.download_timeout,
        )
        .await
        .map_err(|e| format!("could not download the video: {e}"))?;
        let probe = self
            .inner
            .media
            .probe(&path)
            .await
            .map_err(|e| e.to_string())?;
        let thumb = dir.join(format!("input-{index}.jpg"));
        self.inner
            .media
            .thumbnail(&path, &probe, &thumb)
            .await
            .map_err(|e| e.to_string())?;
        let base = format!("runs/{}/inputs/{index}", run.id);
        let files = FileRef {
            video_key: format!("{base}/source.{}", container_extension(&probe)),
            thumbnail_key: format!("{base}/thumbnail.jpg"),
        };
        self.store_file(&files.video_key, &path).await?;
        self.store_file(&files.thumbnail_key, &thumb).await?;
        let input = IngestedInput {
            input_index: index,
            source: source.to_owned(),
            files,
            duration_ms: probe.duration_ms,
        };
        Ok((input, path, probe))
    }

    /// After a takeover: fetch the recorded inputs back from the object store.
    async fn restore_inputs(
        &self,
        run: &RunRecord,
        dir: &Path,
    ) -> Result<Vec<(IngestedInput, PathBuf, Probe)>, Abort> {
        let mut restored = Vec::new();
        for input in &run.inputs {
            let path = dir.join(format!("input-{}", input.input_index));
            let fetched = self
                .inner
                .objects
                .fetch_to_file(&input.files.video_key, &path)
                .await;
            let probe = match fetched {
                Ok(()) => self.inner.media.probe(&path).await.ok(),
                Err(e) => {
                    tracing::error!(run_id = %run.id, error = %e, "stored input is unreadable");
                    None
                }
            };
            match probe {
                Some(probe) => restored.push((input.clone(), path, probe)),
                None => {
                    return Err(Abort::Store(crate::store::StoreError::Internal(
                        anyhow::anyhow!(
                            "input {} of run {} cannot be read back from the object store",
                            input.input_index,
                            run.id
                        ),
                    )));
                }
            }
        }
        Ok(restored)
    }

    /// Render every output path of one input. On failure, returns what was
    /// produced before it and a message for the user.
    #[allow(clippy::too_many_arguments)]
    async fn render_input(
        &self,
        run: &RunRecord,
        input: &IngestedInput,
        path: &Path,
        probe: &Probe,
        plans: &[RenderPlan],
        dir: &Path,
        cancel: &CancellationToken,
    ) -> Result<Vec<OutputRef>, (Vec<OutputRef>, String)> {
        let mut produced = Vec::new();
        for plan in plans {
            match self
                .render_one(run, input, path, probe, plan, dir, cancel)
                .await
            {
                Ok(output) => produced.push(output),
                Err(message) => {
                    return Err((
                        produced,
                        format!("render {:?}: {message}", plan.render_node),
                    ));
                }
            }
        }
        Ok(produced)
    }

    #[allow(clippy::too_many_arguments)]
    async fn render_one(
        &self,
        run: &RunRecord,
        input: &IngestedInput,
        path: &Path,
        probe: &Probe,
        plan: &RenderPlan,
        dir: &Path,
        cancel: &CancellationToken,
    ) -> Result<OutputRef, String> {
        let id = RenderId::new();
        let ext = output_extension(&plan.render);
        let out = dir.join(format!("output-{id}.{ext}"));
        let media = &self.inner.media;
        let job = std::time::Instant::now();
        media
            .render(plan, path, probe, &out, cancel)
            .await
            .map_err(|e: MediaError| e.to_string())?;
        self.inner.metrics.ffmpeg_job(job.elapsed().as_secs_f64());
        let out_probe = media
            .probe(&out)
            .await
            .map_err(|e| format!("the rendered file is unreadable: {e}"))?;
        let thumb = dir.join(format!("output-{id}.jpg"));
        media
            .thumbnail(&out, &out_probe, &thumb)
            .await
            .map_err(|e| e.to_string())?;
        let files = FileRef {
            video_key: format!("runs/{}/outputs/{id}.{ext}", run.id),
            thumbnail_key: format!("runs/{}/outputs/{id}.jpg", run.id),
        };
        self.store_file(&files.video_key, &out).await?;
        self.store_file(&files.thumbnail_key, &thumb).await?;
        let _ = tokio::fs::remove_file(&out).await;
        Ok(OutputRef {
            id,
            files,
            completed_at: chrono::Utc::now(),
            input_index: input.input_index,
            render_node: plan.render_node.clone(),
        })
    }

    async fn store_file(&self, key: &str, path: &Path) -> Result<(), String> {
        self.inner
            .objects
            .put_file(key, path)
            .await
            .map(|_| ())
            .map_err(|e| {
                tracing::error!(error = format!("{e:#}"), key, "object store write failed");
                "the file could not be stored".to_string()
            })
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
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

fn plural(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

fn ingest_message(total: usize, errors: &[InputError]) -> Option<String> {
    if errors.is_empty() {
        return None;
    }
    let mut msg = format!(
        "{} of {} could not be used",
        errors.len(),
        plural(total, "input")
    );
    for e in errors {
        msg.push_str(&format!("; input {}: {}", e.input_index, e.message));
    }
    Some(msg)
}

fn finish_message(
    status: FinishedStatus,
    total: usize,
    succeeded: usize,
    outputs: usize,
    errors: &[InputError],
) -> String {
    let head = match status {
        FinishedStatus::Completed => {
            format!("all {total} inputs processed; {outputs} outputs rendered")
        }
        FinishedStatus::PartialComplete => {
            format!("{succeeded} of {total} inputs processed; {outputs} outputs rendered")
        }
        FinishedStatus::Failed => format!("no output was produced from {total} inputs"),
    };
    errors.iter().fold(head, |mut msg, e| {
        msg.push_str(&format!("; input {}: {}", e.input_index, e.message));
        msg
    })
}
