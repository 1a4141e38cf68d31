//! Figure 4: API latency at a fixed request rate.
//!
//! An API-only node on SQLite (runs queue; no worker takes them, so ffmpeg
//! does not share the CPU) gets `POST /agent/{id}/run` and then
//! `GET /agent_run/{id}` at fixed rates, open loop. Latency is measured by
//! the client, from sending to the whole answer. The baseline is `GET
//! /healthz` on the same server at the same rate: the HTTP stack's floor.

use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::{Value, json};

use crate::nodes::Node;
use crate::report::{Figure, percentile};

const API_KEY: &str = "mk_benchkey0123456789abcdefghijklmnop";

pub async fn run(smoke: bool) -> anyhow::Result<Vec<Figure>> {
    let (post_rate, get_rate, seconds) = if smoke { (20, 50, 1) } else { (100, 500, 5) };
    let dir = tempfile::tempdir()?;
    let node = Node::start_with(
        dir.path(),
        &[
            ("TESSERA_BOOTSTRAP_API_KEY", API_KEY),
            ("TESSERA_ROLES", "api"),
        ],
    )?;
    let base = format!("http://{}", node.addr);
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()?;
    let agent: Value = client
        .post(format!("{base}/agent/create"))
        .bearer_auth(API_KEY)
        .json(&json!({
            "name": "bench",
            "nodes": [
                {"id": "in", "type": "video_input", "params": {}},
                {"id": "cut", "type": "trim", "params": {"start_ms": 0, "end_ms": 1000}},
                {"id": "out", "type": "render", "params": {}}
            ],
            "connections": [{"source": "in", "target": "cut"}, {"source": "cut", "target": "out"}]
        }))
        .send()
        .await?
        .json()
        .await?;
    let agent = agent["id"].as_str().context("agent id")?.to_owned();

    let run_url = format!("{base}/agent/{agent}/run");
    let body = json!({"video_urls": ["http://127.0.0.1:9/input.mp4"]});
    let health = format!("{base}/healthz");
    let mut floor = at_rate(post_rate, seconds, || client.get(&health)).await?;
    let (mut posts, run_ids) = {
        let mut ids = Vec::new();
        let samples = at_rate_collect(post_rate, seconds, &mut ids, || {
            client.post(&run_url).bearer_auth(API_KEY).json(&body)
        })
        .await?;
        (samples, ids)
    };
    anyhow::ensure!(!run_ids.is_empty(), "no run was created");
    let mut next = 0usize;
    let mut gets = at_rate(get_rate, seconds, || {
        next = (next + 1) % run_ids.len();
        client
            .get(format!("{base}/agent_run/{}", run_ids[next]))
            .bearer_auth(API_KEY)
    })
    .await?;
    let mut floor_get = at_rate(get_rate, seconds, || client.get(&health)).await?;
    drop(node);

    let (f50, f99) = (percentile(&mut floor, 0.5), percentile(&mut floor, 0.99));
    let (g50, g99) = (
        percentile(&mut floor_get, 0.5),
        percentile(&mut floor_get, 0.99),
    );
    let mut figures = Vec::new();
    for (name, rate, samples, b50, b99) in [
        ("POST /agent/{id}/run", post_rate, &mut posts, f50, f99),
        ("GET /agent_run/{id}", get_rate, &mut gets, g50, g99),
    ] {
        let (p50, p99) = (percentile(samples, 0.5), percentile(samples, 0.99));
        figures.push(Figure {
            name: format!("API {name} at {rate}/s"),
            tessera: format!("p50 {p50:.1} ms, p99 {p99:.1} ms"),
            baseline: format!("p50 {b50:.1} ms, p99 {b99:.1} ms (GET /healthz)"),
            ratio: p99 / b99.max(0.05),
            target: "reported".into(),
            met: true,
            note: if figures.is_empty() {
                format!(
                    "An API-only node on SQLite, {seconds} s per operation at a fixed rate (open loop), latency \
                     from sending to the whole answer as the client sees it; the ratio compares p99s. \
                     The runs only queue (no worker), so no ffmpeg shares the CPU. Baseline: GET /healthz \
                     on the same server at the same rate."
                )
            } else {
                String::new()
            },
        });
    }
    Ok(figures)
}

/// Latencies (ms) of requests sent `rate` times a second for `seconds`.
async fn at_rate(
    rate: u64,
    seconds: u64,
    request: impl FnMut() -> reqwest::RequestBuilder,
) -> anyhow::Result<Vec<f64>> {
    at_rate_collect(rate, seconds, &mut Vec::new(), request).await
}

/// As [`at_rate`], also collecting the `run_id` of JSON answers.
async fn at_rate_collect(
    rate: u64,
    seconds: u64,
    run_ids: &mut Vec<String>,
    mut request: impl FnMut() -> reqwest::RequestBuilder,
) -> anyhow::Result<Vec<f64>> {
    let mut ticks = tokio::time::interval(Duration::from_micros(1_000_000 / rate));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut sent = tokio::task::JoinSet::new();
    for _ in 0..rate * seconds {
        ticks.tick().await;
        let r = request();
        sent.spawn(async move {
            let started = Instant::now();
            let response = r.send().await?;
            let ok = response.status().is_success();
            let body = response.bytes().await?;
            let ms = started.elapsed().as_secs_f64() * 1000.0;
            let run_id = serde_json::from_slice::<Value>(&body)
                .ok()
                .and_then(|v| v["run_id"].as_str().map(str::to_owned));
            anyhow::Ok((ok, ms, run_id))
        });
    }
    let mut samples = Vec::new();
    while let Some(answer) = sent.join_next().await {
        let (ok, ms, run_id) = answer??;
        anyhow::ensure!(ok, "a request was refused");
        samples.push(ms);
        run_ids.extend(run_id);
    }
    Ok(samples)
}
