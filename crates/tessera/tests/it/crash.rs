//! Durability: kill -9 the server with a backlog owed to a dead receiver,
//! restart it, bring the receiver up: every delivery arrives, none was in
//! flight twice at once, and the log's attempts match what the receiver saw.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use futures_util::StreamExt;
use serde_json::{Value, json};

use crate::process::ServerProcess;
use crate::support::API_KEY;

const DELIVERIES: usize = 1000;

#[derive(Default)]
pub(crate) struct Seen {
    pub(crate) in_flight: HashSet<String>,
    pub(crate) received: HashMap<String, usize>,
    pub(crate) overlaps: usize,
}

/// A receiver that notices a webhook-id arriving while the same id is still
/// being answered (a delivery in flight twice at once). A request ends when
/// its answer is sent or its connection dies (a killed sender): the guard
/// clears it either way, since the server drops the handler on disconnect.
pub(crate) async fn start_receiver(addr: SocketAddr) -> Arc<Mutex<Seen>> {
    struct InFlight(Arc<Mutex<Seen>>, String);
    impl Drop for InFlight {
        fn drop(&mut self) {
            if let Ok(mut seen) = self.0.lock() {
                seen.in_flight.remove(&self.1);
            }
        }
    }
    async fn hook(State(seen): State<Arc<Mutex<Seen>>>, headers: HeaderMap) -> &'static str {
        let id = headers["webhook-id"].to_str().unwrap().to_owned();
        {
            let mut s = seen.lock().unwrap();
            if !s.in_flight.insert(id.clone()) {
                s.overlaps += 1;
            }
            *s.received.entry(id.clone()).or_default() += 1;
        }
        let _in_flight = InFlight(seen, id);
        tokio::time::sleep(Duration::from_millis(5)).await;
        "ok"
    }
    let seen = Arc::new(Mutex::new(Seen::default()));
    let router = Router::new()
        .route("/hook", post(hook))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .expect("the receiver's port is free again");
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    seen
}

#[tokio::test]
async fn a_backlog_survives_kill_9_and_is_delivered_exactly_as_logged() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let hook = format!("http://{port}/hook");
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("TESSERA_WEBHOOK_TIMEOUT_MS", "2000"),
        ("TESSERA_WEBHOOK_MAX_RETRIES", "50"),
        ("TESSERA_WEBHOOK_BACKOFF_BASE_MS", "300"),
        ("TESSERA_WEBHOOK_BACKOFF_FACTOR", "1.2"),
        ("TESSERA_DELIVERY_LEASE_MARGIN_MS", "1000"),
        ("TESSERA_POLL_INTERVAL_MS", "20"),
    ];
    let client = reqwest::Client::builder().no_proxy().build().unwrap();

    // Phase 1: the receiver is down; queue the backlog, then SIGKILL.
    let first = ServerProcess::start(dir.path(), &env);
    let test_url = first.url("/webhooks/test");
    let queued: Vec<Value> = futures_util::stream::iter(0..DELIVERIES)
        .map(|_| {
            let (client, url, hook) = (client.clone(), test_url.clone(), hook.clone());
            async move {
                let r = client
                    .post(url)
                    .bearer_auth(API_KEY)
                    .json(&json!({"callback_url": hook}))
                    .send()
                    .await
                    .unwrap();
                r.json::<Value>().await.unwrap()
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    // Nothing answers: each first attempt failed to connect, or (on a
    // loaded machine) has not happened yet or ran out of time.
    let outcomes: std::collections::BTreeSet<String> =
        queued.iter().map(|a| a["error"].to_string()).collect();
    assert!(
        queued
            .iter()
            .all(|a| a["success"] == false && a["status_code"].is_null())
            && outcomes
                .iter()
                .all(|e| ["\"connect\"", "\"pending\"", "\"timeout\""].contains(&e.as_str())),
        "the receiver is down while queueing, yet: {outcomes:?}"
    );
    first.kill_9();

    // Phase 2: receiver up, server restarted on the same database.
    let seen = start_receiver(port).await;
    let second = ServerProcess::start(dir.path(), &env);
    let until = Instant::now() + Duration::from_secs(120);
    loop {
        let delivered = seen.lock().unwrap().received.len();
        if delivered == DELIVERIES && pending(&client, &second).await == 0 {
            break;
        }
        assert!(
            Instant::now() < until,
            "only {delivered} of {DELIVERIES} delivered"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let (overlaps, received_by_id) = {
        let seen = seen.lock().unwrap();
        (seen.overlaps, seen.received.clone())
    };
    assert_eq!(overlaps, 0, "a delivery was in flight twice at once");
    let deliveries = all_deliveries(&client, &second).await;
    assert_eq!(deliveries.len(), DELIVERIES);
    let mut checked = 0;
    for d in &deliveries {
        assert_eq!(d["status"], "succeeded", "{d}");
        let detail: Value = second
            .get_json(
                &client,
                &format!("/webhook_deliveries/{}", d["id"].as_str().unwrap()),
            )
            .await;
        let logged_ok = detail["attempts"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["status_code"] == 200)
            .count();
        let received = received_by_id
            .get(d["event_id"].as_str().unwrap())
            .copied()
            .unwrap_or(0);
        assert_eq!(
            logged_ok, received,
            "attempts logged vs received for {}",
            d["event_id"]
        );
        assert_eq!(received, 1);
        checked += 1;
    }
    assert_eq!(checked, DELIVERIES);
}

async fn pending(client: &reqwest::Client, server: &ServerProcess) -> usize {
    let page: Value = server
        .get_json(client, "/webhook_deliveries?status=pending&limit=100")
        .await;
    page["deliveries"].as_array().unwrap().len()
}

pub(crate) async fn all_deliveries(client: &reqwest::Client, server: &ServerProcess) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = server.url("/webhook_deliveries?limit=100");
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let page: Value = client
            .get(url)
            .bearer_auth(API_KEY)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        out.extend(page["deliveries"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return out,
        }
    }
}

/// Processes whose command line mentions `needle`.
fn processes_mentioning(needle: &str) -> Vec<String> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| {
            let e = e.ok()?;
            let cmd = std::fs::read(e.path().join("cmdline")).ok()?;
            String::from_utf8_lossy(&cmd)
                .contains(needle)
                .then(|| e.file_name().to_string_lossy().into_owned())
        })
        .collect()
}

async fn wait_until(what: &str, deadline: Duration, mut check: impl FnMut() -> bool) {
    let until = Instant::now() + deadline;
    while !check() {
        assert!(Instant::now() < until, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_run_whose_server_was_killed_is_taken_over_at_once_on_restart() {
    let files = crate::support::FileServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let env = [("TESSERA_POLL_INTERVAL_MS", "50")];
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let first = ServerProcess::start(dir.path(), &env);
    // Upscaling to 4K at crf 0 keeps ffmpeg busy for a long while.
    let agent: Value = client
        .post(first.url("/agent/create"))
        .bearer_auth(API_KEY)
        .json(&json!({
            "name": "slow",
            "nodes": [{"id": "in", "type": "video_input"}, {"id": "big", "type": "resize", "params": {"width": 3840}},
                      {"id": "out", "type": "render", "params": {"crf": 0}}],
            "connections": [{"source": "in", "target": "big"}, {"source": "big", "target": "out"}]
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let run: Value = client
        .post(first.url(&format!("/agent/{}/run", agent["id"].as_str().unwrap())))
        .bearer_auth(API_KEY)
        .json(&json!({"video_urls": [files.url("/videos/bigbuckbunny.mp4")]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let run_id = run["run_id"].as_str().unwrap().to_owned();
    wait_until("ffmpeg renders the run", Duration::from_secs(60), || {
        !processes_mentioning(&run_id).is_empty()
    })
    .await;
    let orphans = processes_mentioning(&run_id);
    first.kill_9();
    assert!(
        !processes_mentioning(&run_id).is_empty(),
        "kill -9 leaves ffmpeg behind: {orphans:?}"
    );

    // The default run lease is 120 s; the restarted server must not wait for it.
    let second = ServerProcess::start(dir.path(), &env);
    wait_until(
        "the orphaned ffmpeg is stopped",
        Duration::from_secs(10),
        || {
            orphans
                .iter()
                .all(|pid| !std::path::Path::new(&format!("/proc/{pid}")).exists())
        },
    )
    .await;
    wait_until(
        "the run renders again on the new server",
        Duration::from_secs(20),
        || !processes_mentioning(&run_id).is_empty(),
    )
    .await;
    let tmp: Vec<String> = std::fs::read_dir(dir.path().join("tmp"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        tmp.len(),
        1,
        "only the new server's work directory remains: {tmp:?}"
    );

    let cancel = client
        .post(second.url(&format!("/agent_run/{run_id}/cancel")))
        .bearer_auth(API_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(cancel.status(), reqwest::StatusCode::OK);
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        let state: Value = second
            .get_json(&client, &format!("/agent_run/{run_id}"))
            .await;
        if state["status"] == "cancelled" {
            break;
        }
        assert!(Instant::now() < until, "{state}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    wait_until("no ffmpeg is left", Duration::from_secs(10), || {
        processes_mentioning(&run_id).is_empty()
    })
    .await;
}

#[tokio::test]
async fn sigterm_stops_the_server_even_with_a_client_stuck_mid_request() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(dir.path(), &[("TESSERA_WEBHOOK_TIMEOUT_MS", "1000")]);
    // A client that sends half a request and then nothing.
    let mut stuck = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut stuck, b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    // Grace = webhook timeout (1 s) + 5 s; the process must be gone soon after.
    let exited = tokio::task::spawn_blocking(move || server.terminate(Duration::from_secs(15)))
        .await
        .unwrap();
    assert!(exited, "the server hung on shutdown");
    drop(stuck);
}
