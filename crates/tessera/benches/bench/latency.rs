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

use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::json;

use crate::nodes::Node;
use crate::receiver::LatencyReceiver;
use crate::report::{Figure, percentile};

pub const API_KEY: &str = "mk_benchkey0123456789abcdefghijklmnop";
/// The first second's samples are left out (connections warming up).
const WARM_UP: Duration = Duration::from_secs(1);

pub async fn run(smoke: bool) -> anyhow::Result<Vec<Figure>> {
    let (rate, seconds) = if smoke { (50, 2) } else { (500, 10) };
    let receiver = LatencyReceiver::start().await?;
    let dir = tempfile::tempdir()?;
    let node = Node::start_with(dir.path(), &[("TESSERA_BOOTSTRAP_API_KEY", API_KEY)])?;
    let total = rate * seconds;
    let mut tessera = drive(
        &receiver,
        rate,
        |sent| sent < total,
        WARM_UP,
        |client, _stamp| test_event(client, &node, &receiver.url),
    )
    .await?;
    let mut baseline = drive(
        &receiver,
        rate,
        |sent| sent < total,
        WARM_UP,
        |client, stamp| {
            client
                .post(&receiver.url)
                .header("content-type", "application/json")
                .json(
                    &json!({"flag": "TEST", "timestamp": stamp, "message": "timed",
                          "test_data": {"status": "test"}}),
                )
        },
    )
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

/// `POST /webhooks/test` to `node`: a `TEST` event for `url`, stamped as it
/// is created.
pub fn test_event(client: &reqwest::Client, node: &Node, url: &str) -> reqwest::RequestBuilder {
    client
        .post(format!("http://{}/webhooks/test", node.addr))
        .bearer_auth(API_KEY)
        .json(&json!({ "callback_url": url }))
}

/// Send `rate` requests a second (open loop) while `keep_going(sent so far)`
/// holds, wait until the receiver has a webhook for each, and return the latencies the receiver saw after `warm_up`, in milliseconds
/// (and takes them from the receiver).
pub async fn drive(
    receiver: &LatencyReceiver,
    rate: u64,
    mut keep_going: impl FnMut(u64) -> bool,
    warm_up: Duration,
    request: impl Fn(&reqwest::Client, &str) -> reqwest::RequestBuilder,
) -> anyhow::Result<Vec<f64>> {
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(60))
        .build()?;
    let started = Instant::now();
    let mut ticks = tokio::time::interval(Duration::from_micros(1_000_000 / rate));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut sent = tokio::task::JoinSet::new();
    let mut total = 0;
    while keep_going(total) {
        total += 1;
        ticks.tick().await;
        let stamp = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        let r = request(&client, &stamp);
        // A request that times out (its own `timeout`) waiting for the first
        // attempt is fine: the receiver's count below catches an event that
        // was never created.
        sent.spawn(async move {
            match r.send().await {
                Ok(r) => Ok(r.status().is_success()),
                Err(e) if e.is_timeout() => Ok(true),
                Err(e) => Err(e),
            }
        });
        while let Some(answer) = sent.try_join_next() {
            anyhow::ensure!(answer?.context("request")?, "a request was refused");
        }
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
    let warm = started + warm_up;
    Ok(receiver
        .take()
        .into_iter()
        .filter(|(at, _)| *at >= warm)
        .map(|(_, ms)| ms)
        .collect())
}
