//! Figure 2: latency from the state change that creates an event to the
//! receiver holding it, at a steady moderate rate.
//!
//! A Tessera node on SQLite gets `POST /webhooks/test` at a fixed rate (open
//! loop: a request every 1/rate s whatever the answers do). Each call
//! creates a `TEST` event whose `timestamp` is taken as the event is created;
//! the receiver, in this process on the same clock, records how long after
//! that timestamp each webhook reached it. The baseline is a plain reqwest
//! client posting the same payload to the same receiver at the same rate,
//! stamped as it sends.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::Router;
use axum::body::Bytes;
use axum::routing::post;
use serde_json::json;

use crate::nodes::Node;
use crate::report::{Figure, percentile};

const API_KEY: &str = "mk_benchkey0123456789abcdefghijklmnop";
/// The first second's samples are left out (connections warming up).
const WARM_UP: Duration = Duration::from_secs(1);

pub async fn run(smoke: bool) -> anyhow::Result<Vec<Figure>> {
    let (rate, seconds) = if smoke { (50, 2) } else { (500, 10) };
    let receiver = LatencyReceiver::start().await?;
    let dir = tempfile::tempdir()?;
    let node = Node::start_with(dir.path(), &[("TESSERA_BOOTSTRAP_API_KEY", API_KEY)])?;
    let mut tessera = drive(&receiver, rate, seconds, |client, _stamp| {
        client
            .post(format!("http://{}/webhooks/test", node.addr))
            .bearer_auth(API_KEY)
            .json(&json!({ "callback_url": receiver.url }))
    })
    .await?;
    let mut baseline = drive(&receiver, rate, seconds, |client, stamp| {
        client
            .post(&receiver.url)
            .header("content-type", "application/json")
            .json(
                &json!({"flag": "TEST", "timestamp": stamp, "message": "bench",
                          "test_data": {"status": "test"}}),
            )
    })
    .await?;
    drop(node);
    let (p50, p99) = (
        percentile(&mut tessera, 0.50),
        percentile(&mut tessera, 0.99),
    );
    let (b50, b99) = (
        percentile(&mut baseline, 0.50),
        percentile(&mut baseline, 0.99),
    );
    let note = format!(
        "{rate} `TEST` events/s for {seconds} s through `POST /webhooks/test` on one SQLite node (open loop), \
         measured from the event's creation timestamp (millisecond precision) to its arrival at a local \
         receiver; the first second is left out. Baseline: a bare reqwest client posting to the same \
         receiver at the same rate. {} and {} samples.",
        tessera.len(),
        baseline.len()
    );
    Ok(vec![
        Figure {
            name: format!("Latency p50, event → receiver, {rate}/s"),
            tessera: format!("{p50:.1} ms"),
            baseline: format!("{b50:.1} ms (plain client)"),
            ratio: p50 / b50.max(0.1),
            target: "reported".into(),
            met: true,
            note,
        },
        Figure {
            name: format!("Latency p99, event → receiver, {rate}/s"),
            tessera: format!("{p99:.1} ms"),
            baseline: format!("{b99:.1} ms (plain client)"),
            ratio: p99 / b99.max(0.1),
            target: "p99 ≤ 20 ms".into(),
            met: p99 <= 20.0,
            note: String::new(),
        },
    ])
}

/// Send `rate` requests a second for `seconds` and return the latencies the
/// receiver saw after the warm-up, in milliseconds.
async fn drive(
    receiver: &LatencyReceiver,
    rate: u64,
    seconds: u64,
    request: impl Fn(&reqwest::Client, &str) -> reqwest::RequestBuilder,
) -> anyhow::Result<Vec<f64>> {
    receiver.reset();
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(60))
        .build()?;
    let total = rate * seconds;
    let started = Instant::now();
    let mut ticks = tokio::time::interval(Duration::from_micros(1_000_000 / rate));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut sent = tokio::task::JoinSet::new();
    for _ in 0..total {
        ticks.tick().await;
        let stamp = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        let r = request(&client, &stamp);
        sent.spawn(async move { r.send().await.map(|r| r.status().is_success()) });
    }
    while let Some(answer) = sent.join_next().await {
        anyhow::ensure!(answer?.context("request")?, "a request was refused");
    }
    let until = Instant::now() + Duration::from_secs(60);
    while receiver.count() < total as usize {
        anyhow::ensure!(
            Instant::now() < until,
            "the receiver saw {} of {total}",
            receiver.count()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let warm = started + WARM_UP;
    Ok(receiver
        .take()
        .into_iter()
        .filter(|(at, _)| *at >= warm)
        .map(|(_, ms)| ms)
        .collect())
}

/// Records, for each webhook, when it arrived and how long after its
/// payload's `timestamp`.
struct LatencyReceiver {
    url: String,
    seen: Arc<Mutex<Vec<(Instant, f64)>>>,
}

impl LatencyReceiver {
    async fn start() -> anyhow::Result<LatencyReceiver> {
        let seen: Arc<Mutex<Vec<(Instant, f64)>>> = Arc::default();
        let record = seen.clone();
        let router = Router::new().route(
            "/hook",
            post(move |body: Bytes| {
                let record = record.clone();
                async move {
                    let now = chrono::Utc::now();
                    let stamp = serde_json::from_slice::<serde_json::Value>(&body)
                        .ok()
                        .and_then(|v| {
                            chrono::DateTime::parse_from_rfc3339(v["timestamp"].as_str()?).ok()
                        });
                    if let Some(stamp) = stamp {
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
        Ok(LatencyReceiver { url, seen })
    }

    fn count(&self) -> usize {
        self.seen.lock().unwrap().len()
    }

    fn reset(&self) {
        self.seen.lock().unwrap().clear();
    }

    fn take(&self) -> Vec<(Instant, f64)> {
        std::mem::take(&mut self.seen.lock().unwrap())
    }
}
