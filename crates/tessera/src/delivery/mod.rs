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

pub mod attempt;

use std::collections::HashMap;
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
    AttemptRecord, ClaimedDelivery, DestinationRoom, DynStore, NextState, StoreResult,
};

/// Most attempts in flight on one node.
const MAX_IN_FLIGHT: usize = 256;
/// Most deliveries claimed in one batch.
const CLAIM_BATCH: usize = 64;
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
    /// Attempts in flight per destination on this node.
    in_flight: Mutex<HashMap<String, u32>>,
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
                in_flight: Mutex::new(HashMap::new()),
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
                _ = tokio::time::sleep(self.inner.config.poll_interval) => {}
                Some(_) = in_flight.join_next(), if !in_flight.is_empty() => {}
            }
        }
        while in_flight.join_next().await.is_some() {}
    }

    /// Claim one batch of due deliveries and start their attempts on
    /// `in_flight`. Returns how many were claimed.
    pub async fn try_next(&self, in_flight: &mut tokio::task::JoinSet<()>) -> StoreResult<usize> {
        let free = self.inner.slots.available_permits();
        if free == 0 {
            return Ok(0);
        }
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
                &self.room(),
            )
            .await?;
        let claimed = batch.len();
        let mut credentials: HashMap<UserId, Arc<Credentials>> = HashMap::new();
        for delivery in batch {
            let creds = match credentials.get(&delivery.user_id) {
                Some(c) => c.clone(),
                None => {
                    let c = Arc::new(self.credentials(delivery.user_id).await?);
                    credentials.insert(delivery.user_id, c.clone());
                    c
                }
            };
            // Claims never exceed the free slots, so a permit is always there.
            let Ok(permit) = self.inner.slots.clone().try_acquire_owned() else {
                break;
            };
            let guard = InFlight::enter(self.clone(), delivery.destination.clone());
            in_flight.spawn(async move {
                guard.dispatcher.attempt(delivery, &creds).await;
                drop(guard);
                drop(permit);
            });
        }
        Ok(claimed)
    }

    /// Room per destination for the next claim.
    fn room(&self) -> DestinationRoom {
        let limit = self.inner.config.destination_concurrency as u32;
        let busy = self
            .inner
            .in_flight
            .lock()
            .map(|m| {
                m.iter()
                    .map(|(d, n)| (d.clone(), limit.saturating_sub(*n)))
                    .collect()
            })
            .unwrap_or_default();
        DestinationRoom {
            per_destination: limit,
            busy,
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
        if let Err(e) = self
            .inner
            .store
            .record_attempt(d.id, &self.inner.owner, &record, next)
            .await
        {
            // The lease will expire and the delivery will be attempted again:
            // at-least-once, never lost.
            tracing::error!(delivery = %d.id, error = %e, "could not record a webhook attempt");
            return;
        }
        let _ = self.inner.wake.attempts.send(d.id);
        if matches!(next, NextState::Succeeded | NextState::Failed) {
            // A later event of the same run may have been waiting on this one.
            self.inner.wake.deliveries.notify_one();
        }
    }
}

/// Counts one attempt against its destination while it is in flight.
struct InFlight {
    dispatcher: Dispatcher,
    destination: String,
}

impl InFlight {
    fn enter(dispatcher: Dispatcher, destination: String) -> Self {
        if let Ok(mut m) = dispatcher.inner.in_flight.lock() {
            *m.entry(destination.clone()).or_insert(0) += 1;
        }
        InFlight {
            dispatcher,
            destination,
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Ok(mut m) = self.dispatcher.inner.in_flight.lock()
            && let Some(n) = m.get_mut(&self.destination)
        {
            *n -= 1;
            if *n == 0 {
                m.remove(&self.destination);
            }
        }
    }
}
