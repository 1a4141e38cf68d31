//! Attempt results written in batches: one transaction for every attempt
//! that finished while the previous write was running (group commit).
//!
//! An attempt's delivery stays leased by this node until its record is
//! written, so no node claims it in between; the attempt's slot (its
//! destination's concurrency) is free as soon as the response is in. If the
//! node dies with results not yet written, their leases expire and the
//! deliveries are sent again, with the same `webhook-id`: at-least-once, as
//! for an attempt cut off mid-request.

use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::app::Wakeups;
use crate::store::{DynStore, NextState, RecordedAttempt};

/// Most attempts written in one transaction.
const BATCH: usize = 512;
/// Results waiting to be written before `record` waits (back-pressure).
const QUEUE: usize = 4096;
/// Tries per batch before its leases are left to expire.
const TRIES: u32 = 3;

enum Message {
    Attempt(RecordedAttempt),
    Flush(oneshot::Sender<()>),
}

/// The handle attempts report to.
#[derive(Clone)]
pub struct Recorder {
    tx: mpsc::Sender<Message>,
}

impl Recorder {
    /// Start the writer task (on the current runtime).
    pub fn start(store: DynStore, owner: String, wake: Wakeups) -> Recorder {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(write_batches(rx, store, owner, wake));
        Recorder { tx }
    }

    /// Queue one attempt's record.
    pub async fn record(&self, attempt: RecordedAttempt) {
        if self.tx.send(Message::Attempt(attempt)).await.is_err() {
            tracing::error!("the attempt recorder has stopped; the lease will expire");
        }
    }

    /// Wait until everything queued so far is written (or given up on).
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Message::Flush(done)).await.is_ok() {
            let _ = wait.await;
        }
    }
}

async fn write_batches(
    mut rx: mpsc::Receiver<Message>,
    store: DynStore,
    owner: String,
    wake: Wakeups,
) {
    let mut messages = Vec::with_capacity(BATCH);
    loop {
        if rx.recv_many(&mut messages, BATCH).await == 0 {
            return;
        }
        let mut flushes = Vec::new();
        let batch: Vec<RecordedAttempt> = messages
            .drain(..)
            .filter_map(|m| match m {
                Message::Attempt(a) => Some(a),
                Message::Flush(done) => {
                    flushes.push(done);
                    None
                }
            })
            .collect();
        if !batch.is_empty() {
            write(&store, &owner, &wake, batch).await;
        }
        for done in flushes {
            let _ = done.send(());
        }
    }
}

async fn write(store: &DynStore, owner: &str, wake: &Wakeups, batch: Vec<RecordedAttempt>) {
    let batch: std::sync::Arc<[RecordedAttempt]> = batch.into();
    let mut tries = 0;
    loop {
        tries += 1;
        match store.record_attempts(owner, batch.clone()).await {
            Ok(()) => break,
            Err(e) if tries < TRIES => {
                tracing::warn!(error = %e, attempts = batch.len(), "recording webhook attempts failed; retrying");
                tokio::time::sleep(Duration::from_millis(100 * u64::from(tries))).await;
            }
            Err(e) => {
                // The leases will expire and the deliveries will be attempted
                // again: at-least-once, never lost.
                tracing::error!(error = %e, attempts = batch.len(), "could not record webhook attempts");
                return;
            }
        }
    }
    let mut resolved = false;
    for a in batch.iter() {
        let _ = wake.attempts.send(a.delivery);
        resolved |= matches!(a.next, NextState::Succeeded | NextState::Failed);
    }
    if resolved {
        // A later event of the same run may have been waiting on one of these.
        wake.deliveries.notify_one();
    }
}
