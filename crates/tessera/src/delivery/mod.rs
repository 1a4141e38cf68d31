//! The webhook dispatcher (dispatcher role): the only code that sends
//! webhooks. It claims due deliveries from the outbox with a lease longer than
//! any attempt can last, sends each once, records the attempt and the next
//! due time in one write, and never sleeps on a retry: a retry is a row with a
//! due time.
//!
//! Isolation: each destination (`scheme://host:port`) has at most
//! `destination_concurrency` attempts in flight on this node, and claims skip
//! destinations that are full, so a slow or dead receiver only ever occupies
//! its own slots.
//!
//! Claims run ahead of the attempts: a destination holds claimed deliveries
//! in a local queue beside the ones in flight — as many as its slots get
//! through in a quarter of the lease margin at its recent pace (one round
//! while unknown, none for a receiver that slow) — and a slot that finishes
//! an attempt takes the next one from that queue at once, without waiting
//! for the database. A queued delivery is only sent while its lease still
//! covers a whole attempt; otherwise its lease is given back. Results are written in batches
//! (`recorder.rs`).

pub mod attempt;
mod recorder;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::app::{Services, Wakeups};
use crate::config::Config;
use crate::domain::address::check_url;
use crate::domain::ids::UserId;
use crate::domain::retry::{AttemptOutcome, Decision};
use crate::domain::signing::SigningKey;
use crate::metrics::Metrics;
use crate::net::{ErrorClass, webhook_client};
use crate::objects::Objects;
use crate::store::{
    AttemptRecord, ClaimLane, ClaimedDelivery, DestinationRoom, DynStore, NextState,
    RecordedAttempt, StoreResult,
};

/// Most attempts in flight on one node.
const MAX_IN_FLIGHT: usize = 256;
/// Most deliveries claimed in one batch.
const CLAIM_BATCH: usize = 256;
/// Deepest queue per destination, in rounds of `destination_concurrency`.
const MAX_ROUNDS: u32 = 8;
/// How often old delivery records are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

#[derive(Clone)]
pub struct Dispatcher {
    inner: Arc<Inner>,
}

struct Inner {
    store: DynStore,
    objects: Objects,
    client: reqwest::Client,
    config: Arc<Config>,
    owner: String,
    wake: Wakeups,
    metrics: Arc<Metrics>,
    slots: Arc<Semaphore>,
    /// Per destination: attempts in flight and claimed deliveries waiting.
    destinations: Mutex<HashMap<String, Destination>>,
    /// Set on shutdown: slots stop taking queued deliveries.
    stopping: std::sync::atomic::AtomicBool,
    /// A destination's queue is down to half a round: claim more.
    refill: tokio::sync::Notify,
    recorder: recorder::Recorder,
}

/// A user's credentials, read once per claimed batch.
struct Credentials {
    mosaic_secret: Option<String>,
    keys: Vec<SigningKey>,
}

impl Dispatcher {
    pub fn new(services: &Services) -> Self {
        let s = services.clone();
        Dispatcher {
            inner: Arc::new(Inner {
                client: webhook_client(&s.net),
                store: s.store,
                objects: s.objects,
                config: s.config,
                owner: s.owner,
                wake: s.wake,
                metrics: s.metrics,
                slots: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
                destinations: Mutex::new(HashMap::new()),
                stopping: std::sync::atomic::AtomicBool::new(false),
                refill: tokio::sync::Notify::new(),
                recorder: recorder::Recorder::start(
                    services.store.clone(),
                    services.owner.clone(),
                    services.wake.clone(),
                ),
            }),
        }
    }

    /// Claim and send until shutdown. In-flight attempts finish (each is
    /// bounded by the webhook timeout) and are recorded before returning.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut in_flight = tokio::task::JoinSet::new();
        let mut next_prune = tokio::time::Instant::now();
        loop {
            if tokio::time::Instant::now() >= next_prune {
                next_prune += PRUNE_EVERY;
                self.prune().await;
            }
            match self.try_next(&mut in_flight).await {
                Ok(n) if n > 0 && self.inner.slots.available_permits() > 0 => continue,
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "claiming deliveries failed"),
            }
            while in_flight.try_join_next().is_some() {}
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = self.inner.wake.deliveries.notified() => {}
                _ = self.inner.refill.notified() => {}
                _ = tokio::time::sleep(self.inner.config.poll_interval) => {}
                Some(_) = in_flight.join_next(), if !in_flight.is_empty() => {}
            }
        }
        self.inner
            .stopping
            .store(true, std::sync::atomic::Ordering::SeqCst);
        while in_flight.join_next().await.is_some() {}
        self.inner.recorder.flush().await;
        // Claimed but never sent: give them back so other nodes take them
        // at once rather than when the leases expire.
        let waiting: Vec<_> = self
            .lock_destinations()
            .values_mut()
            .flat_map(|d| d.queue.drain(..).map(|q| q.delivery.id))
            .collect();
        self.release(waiting).await;
    }

    /// How long a claimed delivery should wait in a queue at most: a
    /// quarter of the lease margin, so its lease still covers an attempt.
    fn queue_budget_ms(&self) -> f64 {
        self.inner.config.delivery_lease_margin.as_secs_f64() * 1000.0 / 4.0
    }

    fn lock_destinations(&self) -> std::sync::MutexGuard<'_, HashMap<String, Destination>> {
        self.inner
            .destinations
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    async fn release(&self, ids: Vec<crate::domain::ids::DeliveryId>) {
        if ids.is_empty() {
            return;
        }
        if let Err(e) = self
            .inner
            .store
            .release_deliveries(&self.inner.owner, ids)
            .await
        {
            tracing::warn!(error = %e, "could not give back claimed deliveries; their leases will expire");
        }
    }

    /// Claim one batch of due deliveries into the destinations' queues and
    /// start slots for them on `in_flight`. Returns how many were claimed.
    pub async fn try_next(&self, in_flight: &mut tokio::task::JoinSet<()>) -> StoreResult<usize> {
        let limit = self.inner.config.destination_concurrency as u32;
        let (room, free) = {
            let destinations = self.lock_destinations();
            let held: usize = destinations
                .values()
                .map(|d| d.in_flight as usize + d.queue.len())
                .sum();
            let room = DestinationRoom {
                // A destination not seen yet: one round in flight, one queued.
                per_destination: Destination::default().room(limit, self.queue_budget_ms()),
                busy: destinations
                    .iter()
                    .map(|(k, d)| (k.clone(), d.room(limit, self.queue_budget_ms())))
                    .collect(),
            };
            (room, (2 * MAX_IN_FLIGHT).saturating_sub(held))
        };
        let mut claimed = 0;
        if free > 0 {
            let now = chrono::Utc::now().timestamp_millis();
            let lease_until = now + self.inner.config.delivery_lease().as_millis() as i64;
            let batch = self
                .inner
                .store
                .claim_deliveries(
                    &self.inner.owner,
                    now,
                    lease_until,
                    free.min(CLAIM_BATCH) as u32,
                    &room,
                )
                .await?;
            claimed = batch.len();
            let mut credentials: HashMap<UserId, Arc<Credentials>> = HashMap::new();
            let mut queued = Vec::with_capacity(batch.len());
            for delivery in batch {
                let creds = match credentials.get(&delivery.user_id) {
                    Some(c) => c.clone(),
                    None => {
                        let c = Arc::new(self.credentials(delivery.user_id).await?);
                        credentials.insert(delivery.user_id, c.clone());
                        c
                    }
                };
                queued.push(Queued {
                    delivery,
                    creds,
                    lease_until,
                });
            }
            let mut destinations = self.lock_destinations();
            for q in queued {
                let queue = &mut destinations
                    .entry(q.delivery.destination.clone())
                    .or_default()
                    .queue;
                // The newest due go before what is already queued: behind a
                // backlog, a fresh event waits for one claim, not for the
                // whole queue (the oldest lane keeps the backlog moving).
                match q.delivery.lane {
                    ClaimLane::Newest => queue.push_front(q),
                    ClaimLane::Oldest => queue.push_back(q),
                }
            }
        }
        self.start_slots(in_flight, limit);
        Ok(claimed)
    }

    /// Start a slot for each destination with more deliveries waiting than
    /// slots about to take them, while it has room and the node has permits.
    fn start_slots(&self, in_flight: &mut tokio::task::JoinSet<()>, limit: u32) {
        let mut destinations = self.lock_destinations();
        for (key, d) in destinations.iter_mut() {
            while d.in_flight < limit && d.queue.len() as u32 > d.starting {
                let Ok(permit) = self.inner.slots.clone().try_acquire_owned() else {
                    return;
                };
                d.in_flight += 1;
                d.starting += 1;
                let slot = Slot {
                    dispatcher: self.clone(),
                    destination: key.clone(),
                };
                in_flight.spawn(async move {
                    slot.run().await;
                    drop(slot);
                    drop(permit);
                });
            }
        }
    }

    /// Remove delivery records older than the retention period, and expired
    /// dashboard sessions.
    async fn prune(&self) {
        let before =
            chrono::Utc::now().timestamp_millis() - self.inner.config.retention.as_millis() as i64;
        match self.inner.store.prune_deliveries(before).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(deliveries = n, "pruned old delivery records"),
            Err(e) => tracing::warn!(error = %e, "pruning delivery records failed"),
        }
        let now = chrono::Utc::now().timestamp_millis();
        if let Err(e) = self.inner.store.prune_sessions(now).await {
            tracing::warn!(error = %e, "pruning expired dashboard sessions failed");
        }
    }

    async fn credentials(&self, user: UserId) -> StoreResult<Credentials> {
        let now = chrono::Utc::now().timestamp_millis();
        let mosaic_secret = self.inner.store.webhook_secret(user).await?;
        let stored = self
            .inner
            .store
            .signing_keys(
                user,
                &crate::domain::signing::generate_signing_key().as_whsec(),
                now,
            )
            .await?;
        let keys = std::iter::once(stored.current)
            .chain(stored.previous.map(|(k, _)| k))
            .filter_map(|k| SigningKey::parse(&k).ok())
            .collect();
        Ok(Credentials {
            mosaic_secret,
            keys,
        })
    }

    /// Send one attempt and record it with the delivery's next state.
    async fn attempt(&self, d: ClaimedDelivery, creds: &Credentials) {
        let started_at = chrono::Utc::now();
        let mut request_headers = Vec::new();
        let sent = match check_url(&d.url, &self.inner.config.address_policy) {
            Err(e) => attempt::Sent::no_response(
                (ErrorClass::RefusedAddress, e.to_string()),
                Duration::ZERO,
            ),
            Ok(_) => {
                let now_secs = started_at.timestamp();
                let objects = &self.inner.objects;
                let payload = match objects
                    .with_urls(now_secs, |sign| d.body.render(sign))
                    .await
                {
                    Ok(payload) => payload,
                    Err(e) => {
                        // Credentials fetched from the environment (an
                        // instance role, say) can fail for a while: leave
                        // the delivery leased, so it is retried when the
                        // lease expires, without spending one of its attempts.
                        tracing::error!(delivery = %d.id, error = format!("{e:#}"), "cannot sign the payload's object URLs");
                        return;
                    }
                };
                let body = match serde_json::to_vec(&payload) {
                    Ok(b) => b,
                    Err(e) => {
                        tracing::error!(delivery = %d.id, error = %e, "payload does not serialise");
                        return;
                    }
                };
                let msg_id = d.event_id.to_string();
                let signatures = creds
                    .keys
                    .iter()
                    .map(|k| k.sign(&msg_id, now_secs, &body))
                    .collect::<Vec<_>>()
                    .join(" ");
                let headers = attempt::headers(
                    &msg_id,
                    now_secs,
                    &signatures,
                    creds.mosaic_secret.as_deref(),
                );
                request_headers = attempt::recorded_request_headers(&headers, &d.url, body.len());
                let mut sent = attempt::send(
                    &self.inner.client,
                    &d.url,
                    headers,
                    body,
                    self.inner.config.webhook_timeout,
                )
                .await;
                if let Some(secret) = &creds.mosaic_secret {
                    sent.redact(secret);
                }
                sent
            }
        };
        let outcome = match (sent.status, &sent.error) {
            (Some(code), None | Some((ErrorClass::Status, _))) => AttemptOutcome::Status {
                code,
                retry_after: sent.retry_after,
            },
            _ => AttemptOutcome::TransportError,
        };
        let attempts_made = d.attempt_count + 1;
        let decision = self.inner.config.retry.decide(
            outcome,
            attempts_made,
            d.attempts_allowed,
            rand::random::<f64>(),
        );
        let next = match decision {
            Decision::Delivered => NextState::Succeeded,
            Decision::GiveUp { .. } => NextState::Failed,
            Decision::RetryAfter(delay) => {
                NextState::RetryAt(chrono::Utc::now().timestamp_millis() + delay.as_millis() as i64)
            }
        };
        let record = AttemptRecord {
            started_at: started_at.timestamp_millis(),
            duration_ms: sent.duration.as_millis() as i64,
            status_code: sent.status,
            error: sent
                .error
                .as_ref()
                .map(|(class, _)| class.as_str().to_owned()),
            error_detail: sent.error.map(|(_, detail)| detail),
            response_snippet: sent.snippet,
            truncated: sent.truncated,
            request_headers,
            response_headers: sent.response_headers,
            reason: sent.reason,
        };
        let metrics = &self.inner.metrics;
        metrics.attempt(
            record.error.as_deref().unwrap_or("success"),
            sent.duration.as_secs_f64(),
        );
        // Paths and queries can carry tokens: logs name the destination only.
        let url = &d.destination;
        match &next {
            NextState::Failed => {
                metrics.delivery_final(false);
                tracing::warn!(delivery = %d.id, %url, attempts = attempts_made, error = ?record.error, status = ?record.status_code, "webhook delivery failed for good");
            }
            NextState::RetryAt(_) => {
                tracing::info!(delivery = %d.id, %url, attempts = attempts_made, error = ?record.error, status = ?record.status_code, "webhook attempt failed; retry scheduled");
            }
            NextState::Succeeded => {
                metrics.delivery_final(true);
                tracing::debug!(delivery = %d.id, %url, attempts = attempts_made, "webhook delivered");
            }
        }
        self.inner
            .recorder
            .record(RecordedAttempt {
                delivery: d.id,
                attempt: record,
                next,
            })
            .await;
    }
}

/// A claimed delivery waiting for a slot.
struct Queued {
    delivery: ClaimedDelivery,
    creds: Arc<Credentials>,
    lease_until: i64,
}

/// One destination's attempts in flight and deliveries waiting.
#[derive(Default)]
struct Destination {
    /// Slots running (each sends one attempt at a time).
    in_flight: u32,
    /// Slots started that have not taken their first delivery yet.
    starting: u32,
    queue: VecDeque<Queued>,
    /// Moving average of this destination's attempt times, in ms.
    average_ms: Option<f64>,
}

impl Destination {
    /// How many claimed deliveries may wait here: as many as the slots get
    /// through in `budget_ms` at the destination's recent pace (a fast
    /// receiver keeps a deep queue, so its slots never wait for a claim; a
    /// slow one none), one round while its pace is unknown.
    fn depth(&self, limit: u32, budget_ms: f64) -> u32 {
        match self.average_ms {
            None => limit,
            // Not even one attempt fits in the budget: a queued delivery
            // would wait for a slot longer than its lease allows.
            Some(ms) if ms > budget_ms => 0,
            Some(ms) => (f64::from(limit) * budget_ms / ms.max(0.05))
                .clamp(0.0, f64::from(MAX_ROUNDS * limit)) as u32,
        }
    }

    /// How many more deliveries a claim may add.
    fn room(&self, limit: u32, budget_ms: f64) -> u32 {
        (limit + self.depth(limit, budget_ms))
            .saturating_sub(self.in_flight + self.queue.len() as u32)
    }

    fn observe(&mut self, took: std::time::Duration) {
        let ms = took.as_secs_f64() * 1000.0;
        self.average_ms = Some(match self.average_ms {
            Some(avg) => avg * 0.8 + ms * 0.2,
            None => ms,
        });
    }
}

/// Sends a destination's queued deliveries one after another until the
/// queue is empty, counting as one attempt in flight meanwhile.
struct Slot {
    dispatcher: Dispatcher,
    destination: String,
}

impl Slot {
    async fn run(&self) {
        let inner = &self.dispatcher.inner;
        // A fresh lease covers the timeout plus the margin; a delivery that
        // waited in the queue for more than half the margin is given back.
        let needed_ms = (inner.config.webhook_timeout + inner.config.delivery_lease_margin / 2)
            .as_millis() as i64;
        let mut first = true;
        loop {
            let next = {
                let mut destinations = self.dispatcher.lock_destinations();
                let Some(d) = destinations.get_mut(&self.destination) else {
                    return;
                };
                if std::mem::take(&mut first) {
                    d.starting = d.starting.saturating_sub(1);
                }
                let next = d.queue.pop_front();
                let limit = inner.config.destination_concurrency as u32;
                if next.is_some()
                    && d.queue.len() as u32 <= d.depth(limit, self.dispatcher.queue_budget_ms()) / 2
                {
                    inner.refill.notify_one();
                }
                next
            };
            let Some(q) = next else { return };
            // Only send while the lease covers a whole attempt: a delivery
            // whose lease ran out mid-attempt could be claimed elsewhere and
            // be in flight twice.
            let stopping = inner.stopping.load(std::sync::atomic::Ordering::SeqCst);
            let now = chrono::Utc::now().timestamp_millis();
            if stopping || q.lease_until - now < needed_ms {
                self.dispatcher.release(vec![q.delivery.id]).await;
                continue;
            }
            let started = std::time::Instant::now();
            self.dispatcher.attempt(q.delivery, &q.creds).await;
            if let Some(d) = self
                .dispatcher
                .lock_destinations()
                .get_mut(&self.destination)
            {
                d.observe(started.elapsed());
            }
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut destinations = self.dispatcher.lock_destinations();
        if let Some(d) = destinations.get_mut(&self.destination) {
            d.in_flight = d.in_flight.saturating_sub(1);
            if d.in_flight == 0 && d.queue.is_empty() {
                destinations.remove(&self.destination);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queues_are_deep_for_fast_receivers_and_empty_for_slow_ones() {
        let mut d = Destination::default();
        // Unknown pace: one round.
        assert_eq!(d.depth(8, 7500.0), 8);
        assert_eq!(d.room(8, 7500.0), 16);
        // 1 ms attempts: capped at MAX_ROUNDS rounds.
        d.observe(std::time::Duration::from_millis(1));
        assert_eq!(d.depth(8, 7500.0), 8 * MAX_ROUNDS);
        // 30 s attempts (a receiver timing out): nothing waits.
        for _ in 0..50 {
            d.observe(std::time::Duration::from_secs(30));
        }
        assert_eq!(d.depth(8, 7500.0), 0);
        assert_eq!(d.room(8, 7500.0), 8);
        // 1 s attempts: what 8 slots get through in 7.5 s.
        for _ in 0..100 {
            d.observe(std::time::Duration::from_secs(1));
        }
        assert!(
            (58..=60).contains(&d.depth(8, 7500.0)),
            "{}",
            d.depth(8, 7500.0)
        );
    }
}
