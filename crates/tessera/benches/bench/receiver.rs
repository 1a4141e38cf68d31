//! The receiver every delivery benchmark posts to.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::http::HeaderMap;
use axum::routing::post;

/// A receiver that answers 200 at once and counts distinct webhook ids.
pub struct Counter {
    pub url: String,
    seen: Arc<Mutex<HashSet<String>>>,
}

impl Counter {
    pub async fn start() -> anyhow::Result<Counter> {
        let seen: Arc<Mutex<HashSet<String>>> = Arc::default();
        let record = seen.clone();
        let router = Router::new().route(
            "/hook",
            post(move |headers: HeaderMap| {
                let record = record.clone();
                async move {
                    if let Some(id) = headers.get("webhook-id").and_then(|v| v.to_str().ok()) {
                        record.lock().unwrap().insert(id.to_owned());
                    }
                    "ok"
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}/hook", listener.local_addr()?);
        tokio::spawn(async move { axum::serve(listener, router).await });
        Ok(Counter { url, seen })
    }

    pub fn count(&self) -> usize {
        self.seen.lock().unwrap().len()
    }

    pub fn reset(&self) {
        self.seen.lock().unwrap().clear();
    }
}

/// The `message` of the `TEST` events benchmarks queue through the store
/// beforehand; the receiver counts these instead of timing them.
pub const QUEUED_MESSAGE: &str = "bench";

/// Records, for each webhook created while the benchmark runs, when it
/// arrived and how long after its payload's `timestamp`; webhooks queued
/// beforehand (message [`QUEUED_MESSAGE`]) are only counted, by distinct
/// `webhook-id` and by attempt.
pub struct LatencyReceiver {
    pub url: String,
    seen: Arc<Mutex<Vec<(Instant, f64)>>>,
    queued: Arc<Mutex<HashSet<u128>>>,
    attempts: Arc<AtomicUsize>,
}

impl LatencyReceiver {
    pub async fn start() -> anyhow::Result<LatencyReceiver> {
        let seen: Arc<Mutex<Vec<(Instant, f64)>>> = Arc::default();
        let queued: Arc<Mutex<HashSet<u128>>> = Arc::default();
        let attempts: Arc<AtomicUsize> = Arc::default();
        let (record, ids, count) = (seen.clone(), queued.clone(), attempts.clone());
        let router = Router::new().route(
            "/hook",
            post(move |headers: HeaderMap, body: Bytes| {
                let (record, ids, count) = (record.clone(), ids.clone(), count.clone());
                async move {
                    let now = chrono::Utc::now();
                    let Ok(v) = serde_json::from_slice::<serde_json::Value>(&body) else {
                        return "ok";
                    };
                    if v["message"] == QUEUED_MESSAGE {
                        count.fetch_add(1, Ordering::Relaxed);
                        if let Some(id) = headers
                            .get("webhook-id")
                            .and_then(|v| v.to_str().ok())
                            .and_then(|id| uuid::Uuid::parse_str(id).ok())
                        {
                            ids.lock().unwrap().insert(id.as_u128());
                        }
                    } else if let Some(stamp) = v["timestamp"]
                        .as_str()
                        .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
                    {
                        let ms =
                            (now - stamp.to_utc()).num_microseconds().unwrap_or(0) as f64 / 1000.0;
                        record.lock().unwrap().push((Instant::now(), ms));
                    }
                    "ok"
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}/hook", listener.local_addr()?);
        tokio::spawn(async move { axum::serve(listener, router).await });
        Ok(LatencyReceiver {
            url,
            seen,
            queued,
            attempts,
        })
    }

    /// Timed webhooks received since the last reset.
    pub fn count(&self) -> usize {
        self.seen.lock().unwrap().len()
    }

    /// Distinct queued webhooks received since the last reset.
    pub fn queued(&self) -> usize {
        self.queued.lock().unwrap().len()
    }

    /// Attempts of queued webhooks received since the last reset (a
    /// delivery sent twice counts twice).
    pub fn queued_attempts(&self) -> usize {
        self.attempts.load(Ordering::Relaxed)
    }

    pub fn reset(&self) {
        self.seen.lock().unwrap().clear();
        self.queued.lock().unwrap().clear();
        self.attempts.store(0, Ordering::Relaxed);
    }

    pub fn take(&self) -> Vec<(Instant, f64)> {
        std::mem::take(&mut self.seen.lock().unwrap())
    }
}
