//! The run engine (worker role): claims runs with a lease, ingests their
//! inputs (download → probe → thumbnail → object store), renders every
//! output of every job with one ffmpeg pass each, and records the result
//! together with its webhook event in one transaction.
//!
//! A run is owned through its lease. Its owner checks in every poll interval:
//! that renews the lease when due and tells it about cancel requests. A node
//! that dies stops checking in; after the lease expires another node claims
//! the run and continues from the last recorded phase: a `queued` run is
//! ingested (sources already ingested by an earlier attempt are reused), a
//! `running` run is rendered from the inputs in the object store. Renders
//! that already produced their outputs are never redone.

mod ingest;
mod recover;
mod render;
mod report;
pub mod uploads;

pub use recover::{host_name, recover_local};

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::app::{Services, Wakeups};
use crate::config::Config;
use crate::domain::graph::render_plans;
use crate::domain::ids::{EventId, RunId};
use crate::domain::payload::{EventBody, InputError};
use crate::media::Media;
use crate::metrics::Metrics;
use crate::net::download_client;
use crate::objects::Objects;
use crate::store::{DynStore, NewEvent, RunFinished, RunRecord, RunStarted, RunStatus, StoreError};
use ingest::Ingested;

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

/// Why a run stopped before finishing normally.
#[derive(Debug)]
enum Abort {
    /// The lease was lost or the node is shutting down: someone else (or a
    /// later start of this node) will take the run over.
    Released,
    Store(StoreError),
}

impl From<StoreError> for Abort {
    fn from(e: StoreError) -> Self {
        Abort::Store(e)
    }
}

/// How the work on one run is stopped from outside.
#[derive(Clone)]
struct Stop {
    /// Fires on shutdown, a lost lease, or a cancel request.
    token: CancellationToken,
    /// Set when the user asked to cancel (as opposed to a release).
    by_user: Arc<AtomicBool>,
}

impl Stop {
    fn cancelled_by_user(&self) -> bool {
        self.by_user.load(Ordering::SeqCst)
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
    /// or the poll interval. On shutdown, in-flight runs are stopped and
    /// their leases released so another node can continue at once.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut running = tokio::task::JoinSet::new();
        loop {
            match self.claim().await {
                Ok(runs) => {
                    for (run, permit) in runs {
                        let engine = self.clone();
                        let token = shutdown.child_token();
                        running.spawn(async move {
                            engine.process(run, token).await;
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
    ) -> Result<Vec<(RunRecord, tokio::sync::OwnedSemaphorePermit)>, StoreError> {
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

    /// Process one claimed run to the end, checking in while it lasts.
    async fn process(&self, run: RunRecord, token: CancellationToken) {
        let id = run.id;
        let stop = Stop {
            token,
            by_user: Arc::new(AtomicBool::new(run.cancel_requested)),
        };
        if run.cancel_requested {
            stop.token.cancel();
        }
        let keeper = self.check_in_loop(id, stop.clone());
        let work_dir = self
            .inner
            .config
            .data_dir
            .join("tmp")
            .join(format!("{id}-{}", self.inner.owner));
        let outcome = match tokio::fs::create_dir_all(&work_dir).await {
            Ok(()) => self.execute(run, &work_dir, &stop).await,
            Err(e) => Err(Abort::Store(StoreError::Internal(
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
                let _ = self.inner.store.release_run(id, &self.inner.owner).await;
                tracing::info!(run_id = %id, "run released");
            }
            Err(Abort::Store(e)) => {
                tracing::error!(run_id = %id, error = %e, "run failed to record; it will be retried after its lease expires")
            }
        }
    }

    /// Check in every poll interval: renew the lease every third of its
    /// length, stop the work when the lease is lost or a cancel was requested.
    fn check_in_loop(&self, id: RunId, stop: Stop) -> tokio::task::JoinHandle<()> {
        let inner = self.inner.clone();
        tokio::spawn(async move {
            let lease = inner.config.run_lease;
            let mut renewed = tokio::time::Instant::now();
            loop {
                tokio::time::sleep(inner.config.poll_interval.min(lease / 3)).await;
                let renew = renewed.elapsed() >= lease / 3;
                let until = renew.then(|| now_ms() + lease.as_millis() as i64);
                match inner.store.check_in_run(id, &inner.owner, until).await {
                    Ok(control) if !control.held => {
                        tracing::warn!(run_id = %id, "run lease lost; stopping work on it");
                        stop.token.cancel();
                        return;
                    }
                    Ok(control) => {
                        if renew {
                            renewed = tokio::time::Instant::now();
                        }
                        if control.cancel_requested && !stop.cancelled_by_user() {
                            tracing::info!(run_id = %id, "cancel requested; stopping the run");
                            stop.by_user.store(true, Ordering::SeqCst);
                            stop.token.cancel();
                        }
                    }
                    Err(e) => {
                        tracing::warn!(run_id = %id, error = %e, "could not check in on the run")
                    }
                }
            }
        })
    }

    async fn execute(&self, run: RunRecord, dir: &Path, stop: &Stop) -> Result<(), Abort> {
        let mut state = match run.status {
            RunStatus::Queued => {
                let state = self.ingest_all(&run, dir, stop).await?;
                if stop.cancelled_by_user() {
                    return self.finish(&run, state, true).await;
                }
                let message = report::ingest_message(run.sources.len(), &state.errors);
                let started = RunStarted {
                    id: run.id,
                    owner: self.inner.owner.clone(),
                    inputs: state.inputs.iter().map(|i| i.input.clone()).collect(),
                    errors: state.errors.clone(),
                    status_message: message.clone(),
                    at: now_ms(),
                };
                let event = self.event(
                    &run,
                    EventBody::RunStarted {
                        agent_id: run.agent_id,
                        run_id: run.id,
                        inputs: state.inputs.iter().map(|i| i.input.files.clone()).collect(),
                        triggered_by: Some(run.triggered_by.clone()),
                        status_message: message,
                        errors: state.errors.clone(),
                    },
                );
                if !self.inner.store.start_run(started, event).await? {
                    return Err(Abort::Released);
                }
                self.inner.wake.deliveries.notify_one();
                state
            }
            RunStatus::Running => self.restore_inputs(&run, dir).await?,
            _ => return Ok(()),
        };
        self.render_jobs(&run, &mut state, dir, stop).await?;
        self.finish(&run, state, stop.cancelled_by_user()).await
    }

    /// Render every job whose inputs are all there; skip outputs that exist.
    async fn render_jobs(
        &self,
        run: &RunRecord,
        state: &mut Ingested,
        dir: &Path,
        stop: &Stop,
    ) -> Result<(), Abort> {
        let plans = render_plans(&run.graph);
        for job in run.jobs() {
            let Some(inputs) = state.job_inputs(&job) else {
                continue; // an input of this job failed to ingest: already reported
            };
            let (mut produced, mut failed) = (Vec::new(), Vec::new());
            for plan in &plans {
                if state.has_outputs(job[0], &plan.render_node) {
                    continue;
                }
                if stop.token.is_cancelled() {
                    break;
                }
                match self.render_one(run, &inputs, plan, dir, &stop.token).await {
                    Ok(mut outputs) => produced.append(&mut outputs),
                    Err(_) if stop.token.is_cancelled() => break,
                    Err(message) => failed.extend(job.iter().map(|&i| InputError {
                        input_index: i,
                        source: run.sources[i].label(),
                        message: format!("render {:?}: {message}", plan.render_node),
                        node_id: Some(plan.render_node.clone()),
                    })),
                }
            }
            state.outputs.append(&mut produced);
            state.errors.append(&mut failed);
            if stop.token.is_cancelled() {
                // A user's cancel finishes the run with what exists; anything
                // else hands it over.
                return if stop.cancelled_by_user() {
                    Ok(())
                } else {
                    Err(Abort::Released)
                };
            }
        }
        Ok(())
    }

    /// Record the end of the run with its RUN_FINISHED event.
    async fn finish(
        &self,
        run: &RunRecord,
        mut state: Ingested,
        cancelled: bool,
    ) -> Result<(), Abort> {
        state.errors.sort_by_key(|e| e.input_index);
        let plans = render_plans(&run.graph);
        let succeeded = run
            .jobs()
            .iter()
            .filter(|job| {
                plans
                    .iter()
                    .all(|p| state.has_outputs(job[0], &p.render_node))
            })
            .map(Vec::len)
            .sum();
        let status = crate::domain::payload::finished_status(
            run.sources.len(),
            succeeded,
            state.outputs.len(),
        );
        let mut message = report::finish_message(
            status,
            run.sources.len(),
            succeeded,
            state.outputs.len(),
            &state.errors,
        );
        if cancelled {
            message = format!("cancelled by request; {message}");
        }
        let finished = RunFinished {
            id: run.id,
            owner: self.inner.owner.clone(),
            status,
            cancelled,
            outputs: state.outputs.clone(),
            errors: state.errors.clone(),
            status_message: Some(message.clone()),
            at: now_ms(),
        };
        let event = self.event(
            run,
            EventBody::RunFinished {
                agent_id: run.agent_id,
                run_id: run.id,
                status,
                inputs: state.inputs.iter().map(|i| i.input.files.clone()).collect(),
                outputs: state.outputs,
                triggered_by: Some(run.triggered_by.clone()),
                status_message: Some(message),
                errors: state.errors,
                cancelled,
            },
        );
        if !self.inner.store.finish_run(finished, event).await? {
            return Err(Abort::Released);
        }
        self.inner.wake.deliveries.notify_one();
        tracing::info!(run_id = %run.id, status = status.as_str(), cancelled, "run finished");
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
