//! Several Tessera processes sharing one PostgreSQL and one object store,
//! with different roles, one of them killed with SIGKILL mid-work. Runs in
//! the PostgreSQL pass of `make test` (`TESSERA_TEST_DATABASE_URL`); the
//! SQLite pass has no shared database to test this on and skips it.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use serde_json::{Value, json};

use crate::crash::{all_deliveries, start_receiver};
use crate::process::ServerProcess;
use crate::support::{API_KEY, FileServer, database_url, s3_location, trim_agent};

const RUNS: usize = 6;
const TESTS: usize = 150;
const DEADLINE: Duration = Duration::from_secs(180);

#[tokio::test]
async fn three_nodes_share_the_work_and_lose_nothing_when_one_is_killed() {
    if std::env::var_os("TESSERA_TEST_DATABASE_URL").is_none() {
        eprintln!("skipped: needs TESSERA_TEST_DATABASE_URL (the PostgreSQL pass)");
        return;
    }
    let shared = tempfile::tempdir().unwrap();
    let url = database_url(shared.path()).unwrap();
    // One bucket for all nodes (a shared directory where no S3 server runs).
    let s3 = s3_location();
    let objects = s3
        .clone()
        .unwrap_or_else(|| shared.path().join("objects").display().to_string());
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let seen = start_receiver(port).await;
    let hook = format!("http://{port}/hook");
    let common = [
        ("TESSERA_DATABASE_URL", url.as_str()),
        ("TESSERA_OBJECT_STORE", objects.as_str()),
        ("TESSERA_WEBHOOK_TIMEOUT_MS", "2000"),
        ("TESSERA_WEBHOOK_MAX_RETRIES", "50"),
        ("TESSERA_WEBHOOK_BACKOFF_BASE_MS", "300"),
        ("TESSERA_WEBHOOK_BACKOFF_FACTOR", "1.2"),
        ("TESSERA_DELIVERY_LEASE_MARGIN_MS", "1000"),
        ("TESSERA_RUN_LEASE_SECONDS", "2"),
        ("TESSERA_POLL_INTERVAL_MS", "50"),
        ("TESSERA_FFMPEG_JOBS", "1"),
    ];
    let node = |roles: &'static str| {
        let dir = tempfile::tempdir().unwrap();
        let mut env = common.to_vec();
        env.push(("TESSERA_ROLES", roles));
        (ServerProcess::start(dir.path(), &env), dir)
    };
    // Two schedulers race for every slot; two workers share runs and
    // webhooks. The second worker starts once the first holds a run, so the
    // killed node certainly had work in hand.
    let (api, _a) = node("api,scheduler");
    let (doomed, _b) = node("worker,scheduler");
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let post = |path: &str, body: Value| {
        let request = client.post(api.url(path)).bearer_auth(API_KEY).json(&body);
        async move {
            let r = request.send().await.unwrap();
            let status = r.status();
            let body: Value = r.json().await.unwrap();
            assert!(status.is_success(), "{status}: {body}");
            body
        }
    };

    let files = FileServer::start().await;
    let agent = post("/agent/create", trim_agent(0, 1500, 160)).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut runs = Vec::new();
    for _ in 0..RUNS {
        let run = post(
            &format!("/agent/{agent}/run"),
            json!({"video_urls": [files.url("/videos/bigbuckbunny.mp4")], "callback_url": hook}),
        )
        .await;
        runs.push(run["run_id"].as_str().unwrap().to_owned());
    }
    // A schedule firing every second, on an input that fails fast.
    let schedule = post(
        &format!("/agent/{agent}/triggers/add_schedule"),
        json!({"cron_expression": "* * * * * *", "video_urls": [files.url("/videos/missing.mp4")]}),
    )
    .await["schedule_id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Webhook-heavy load beside the runs, still going when the node dies.
    let load = {
        let (client, test_url, hook) = (client.clone(), api.url("/webhooks/test"), hook.clone());
        tokio::spawn(async move {
            futures_util::stream::iter(0..TESTS)
                .map(|_| {
                    let request = client
                        .post(test_url.clone())
                        .bearer_auth(API_KEY)
                        .json(&json!({ "callback_url": hook }));
                    async move { request.send().await.unwrap().status() }
                })
                .buffer_unordered(8)
                .for_each(|status| async move { assert!(status.is_success()) })
                .await;
        })
    };

    // Kill the first worker while it runs a job.
    wait_until("a run is in progress", || async {
        let page = get(&client, &api, "/agent_runs?status=running&limit=1").await;
        !page["runs"].as_array().unwrap().is_empty()
    })
    .await;
    let (worker, _c) = node("worker");
    doomed.kill_9();
    load.await.unwrap();

    // Every run finishes, on the survivors.
    for run in &runs {
        let path = format!("/agent_run/{run}");
        wait_until("every run finishes", || async {
            let run = get(&client, &api, &path).await;
            !matches!(run["status"].as_str(), Some("queued" | "running"))
        })
        .await;
        let run = get(&client, &api, &path).await;
        assert_eq!(run["status"], "completed", "{run}");
        // Outputs written by one node download through the URL the API
        // node hands out: presigned into the bucket with S3.
        let video = run["outputs"][0]["video_url"].as_str().unwrap();
        if s3.is_some() {
            assert!(video.contains("X-Amz-Signature="), "{video}");
        }
        let bytes = client.get(video).send().await.unwrap();
        assert_eq!(bytes.status(), 200, "{video}");
        assert!(bytes.bytes().await.unwrap().len() > 1000);
    }
    post(
        &format!("/agent/{agent}/triggers/remove_schedule"),
        json!({ "schedule_id": schedule }),
    )
    .await;

    // Every webhook delivered, none in flight twice at once.
    let until = Instant::now() + DEADLINE;
    let deliveries = loop {
        let all = all_deliveries(&client, &api).await;
        if all.iter().all(|d| d["status"] == "succeeded") {
            break all;
        }
        assert!(Instant::now() < until, "deliveries still pending or failed");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(deliveries.len() >= TESTS + 2 * RUNS);
    {
        let seen = seen.lock().unwrap();
        assert_eq!(seen.overlaps, 0, "a delivery was in flight twice at once");
        for d in &deliveries {
            let id = d["event_id"].as_str().unwrap();
            assert!(seen.received.get(id).is_some_and(|n| *n >= 1), "{d}");
        }
    }

    // Each schedule slot started exactly one run, whoever fired it.
    let fired = get(
        &client,
        &api,
        &format!("/trigger/{schedule}/runs?limit=100"),
    )
    .await;
    let slots: Vec<&str> = fired["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["triggered_by"]["scheduled_at"].as_str().unwrap())
        .collect();
    assert!(!slots.is_empty(), "the schedule never fired");
    let distinct: HashSet<&&str> = slots.iter().collect();
    assert_eq!(distinct.len(), slots.len(), "a slot fired twice: {slots:?}");
    drop(worker);
}

/// A run queued on an API node starts on a worker node at once: the queueing
/// transaction notifies the worker, which would otherwise only look again at
/// its next poll, a minute later.
#[tokio::test]
async fn work_queued_on_one_node_wakes_another_before_its_next_poll() {
    if std::env::var_os("TESSERA_TEST_DATABASE_URL").is_none() {
        eprintln!("skipped: needs TESSERA_TEST_DATABASE_URL (the PostgreSQL pass)");
        return;
    }
    const POLL: Duration = Duration::from_secs(60);
    let shared = tempfile::tempdir().unwrap();
    let url = database_url(shared.path()).unwrap();
    let objects = shared.path().join("objects");
    let poll_ms = POLL.as_millis().to_string();
    let node = |roles: &'static str| {
        let dir = tempfile::tempdir().unwrap();
        let env = [
            ("TESSERA_DATABASE_URL", url.as_str()),
            ("TESSERA_OBJECT_STORE", objects.to_str().unwrap()),
            ("TESSERA_POLL_INTERVAL_MS", poll_ms.as_str()),
            ("TESSERA_ROLES", roles),
        ];
        (ServerProcess::start(dir.path(), &env), dir)
    };
    let (api, _a) = node("api");
    let (worker, _w) = node("worker");
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let files = FileServer::start().await;
    let agent: Value = client
        .post(api.url("/agent/create"))
        .bearer_auth(API_KEY)
        .json(&trim_agent(0, 500, 160))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let start_run = || async {
        let run: Value = client
            .post(api.url(&format!("/agent/{}/run", agent["id"].as_str().unwrap())))
            .bearer_auth(API_KEY)
            .json(&json!({"video_urls": [files.url("/videos/bigbuckbunny.mp4")]}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        format!("/agent_run/{}", run["run_id"].as_str().unwrap())
    };
    // A first run, so the worker is past its start-up claims and idle.
    let first = start_run().await;
    wait_until("the first run finishes", || async {
        get(&client, &api, &first).await["status"] == "completed"
    })
    .await;
    // The second run can only start this soon if the worker is told.
    let started = Instant::now();
    let second = start_run().await;
    while get(&client, &api, &second).await["status"] == "queued" {
        assert!(
            started.elapsed() < POLL / 2,
            "the worker did not pick the run up before its next poll"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(worker);
}

async fn get(client: &reqwest::Client, server: &ServerProcess, path: &str) -> Value {
    server.get_json(client, path).await
}

async fn wait_until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let until = Instant::now() + DEADLINE;
    while !check().await {
        assert!(Instant::now() < until, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
