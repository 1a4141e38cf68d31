//! The delivery engine against a fault-injecting receiver: outcome, attempt
//! count and error class for every kind of bad receiver; the retry schedule;
//! isolation from a dead receiver; signatures checked by an independent
//! Standard Webhooks implementation.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::faults::{Behaviour, FaultServer};
use crate::support::{Receiver, TestApp};

/// Whole-attempt deadline in these tests.
const TIMEOUT_MS: u64 = 1000;
const BACKOFF_MS: u64 = 100;

async fn app() -> TestApp {
    TestApp::spawn_with(|l| {
        l.webhook_timeout_ms = Some(TIMEOUT_MS);
        l.webhook_backoff_base_ms = Some(BACKOFF_MS);
        l.webhook_backoff_factor = Some(2.0);
        l.retry_after_cap_seconds = Some(2);
        l.poll_interval_ms = Some(20);
    })
    .await
}

/// Send a TEST webhook; returns the API's answer (the first attempt's outcome).
async fn send_test(app: &TestApp, url: &str) -> Value {
    let (status, answer) = app
        .post("/webhooks/test", &json!({ "callback_url": url }))
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    answer
}

/// Poll a delivery until it is no longer pending.
async fn wait_final(app: &TestApp, id: &str, deadline: Duration) -> Value {
    let until = Instant::now() + deadline;
    loop {
        let (_, d) = app.get(&format!("/webhook_deliveries/{id}")).await;
        if d["status"] != "pending" {
            return d;
        }
        assert!(Instant::now() < until, "delivery still pending: {d}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

struct Case {
    name: &'static str,
    behaviour: Option<Behaviour>,
    final_status: &'static str,
    attempts: usize,
    error: Option<&'static str>,
    status_code: Option<u16>,
}

fn case(
    name: &'static str,
    b: Behaviour,
    final_status: &'static str,
    attempts: usize,
    error: Option<&'static str>,
    code: Option<u16>,
) -> Case {
    Case {
        name,
        behaviour: Some(b),
        final_status,
        attempts,
        error,
        status_code: code,
    }
}

#[tokio::test]
async fn every_kind_of_receiver_failure_has_its_outcome_and_attempt_count() {
    use Behaviour::*;
    let app = app().await;
    let cases = vec![
        case("200", Status(200), "succeeded", 1, None, Some(200)),
        case("204", Status(204), "succeeded", 1, None, Some(204)),
        case("301", Redirect(301), "failed", 4, Some("status"), Some(301)),
        case("302", Redirect(302), "failed", 4, Some("status"), Some(302)),
        case("307", Redirect(307), "failed", 4, Some("status"), Some(307)),
        case("400", Status(400), "failed", 4, Some("status"), Some(400)),
        case("404", Status(404), "failed", 4, Some("status"), Some(404)),
        case(
            "410 stops at once",
            Status(410),
            "failed",
            1,
            Some("status"),
            Some(410),
        ),
        case("429", Status(429), "failed", 4, Some("status"), Some(429)),
        case("500", Status(500), "failed", 4, Some("status"), Some(500)),
        case("503", Status(503), "failed", 4, Some("status"), Some(503)),
        case(
            "reset mid-response",
            ResetMidResponse,
            "failed",
            4,
            Some("body"),
            Some(200),
        ),
        case(
            "accepts, never answers",
            Never,
            "failed",
            4,
            Some("timeout"),
            None,
        ),
        case(
            "headers, then stall",
            HeadersThenStall,
            "failed",
            4,
            Some("timeout"),
            Some(200),
        ),
        case(
            "slow trickle",
            Trickle,
            "failed",
            4,
            Some("timeout"),
            Some(200),
        ),
        case("huge body", Huge, "succeeded", 1, None, Some(200)),
        case(
            "non-UTF-8 body",
            NonUtf8,
            "failed",
            4,
            Some("status"),
            Some(400),
        ),
        Case {
            name: "connection refused",
            behaviour: None,
            final_status: "failed",
            attempts: 4,
            error: Some("connect"),
            status_code: None,
        },
    ];
    let runs = cases.into_iter().map(|c| {
        let app = &app;
        async move {
            let server = match &c.behaviour {
                Some(b) => Some(FaultServer::start(b.clone()).await),
                None => None,
            };
            let url = match &server {
                Some(s) => s.url(),
                None => format!("http://{}/hook", closed_port()),
            };
            let started = Instant::now();
            let first = send_test(app, &url).await;
            assert_eq!(first["success"], c.error.is_none(), "{}: {first}", c.name);
            assert_eq!(first["error"].as_str(), c.error, "{}: {first}", c.name);
            assert_eq!(
                first["status_code"].as_u64().map(|s| s as u16),
                c.status_code,
                "{}",
                c.name
            );
            let delivery = wait_final(
                app,
                first["delivery_id"].as_str().unwrap(),
                Duration::from_secs(30),
            )
            .await;
            let attempts = delivery["attempts"].as_array().unwrap();
            assert_eq!(delivery["status"], c.final_status, "{}: {delivery}", c.name);
            assert_eq!(attempts.len(), c.attempts, "{}: {delivery}", c.name);
            assert_eq!(delivery["attempt_count"], c.attempts, "{}", c.name);
            for a in attempts {
                assert_eq!(a["error"].as_str(), c.error, "{}: {a}", c.name);
                // No attempt outlives the deadline (plus scheduling noise).
                assert!(
                    a["duration_ms"].as_u64().unwrap() < TIMEOUT_MS + 500,
                    "{}: {a}",
                    c.name
                );
            }
            if let Some(server) = &server {
                assert_eq!(
                    server.hits_on("/hook"),
                    c.attempts,
                    "{}: the receiver saw every attempt",
                    c.name
                );
                assert_eq!(
                    server.hits_on("/target"),
                    0,
                    "{}: redirects are never followed",
                    c.name
                );
            }
            (c.name, delivery, started.elapsed())
        }
    });
    let results = futures_util::future::join_all(runs).await;
    for (name, delivery, _) in &results {
        let attempts = delivery["attempts"].as_array().unwrap();
        match *name {
            "huge body" => {
                assert_eq!(attempts[0]["truncated"], true);
                assert_eq!(
                    attempts[0]["response_snippet"].as_str().unwrap().len(),
                    4096
                );
            }
            "non-UTF-8 body" => {
                let snippet = attempts[0]["response_snippet"].as_str().unwrap();
                assert!(
                    snippet.contains('\u{fffd}') && snippet.contains("hi"),
                    "{snippet:?}"
                );
            }
            "500" => assert_schedule(attempts),
            _ => {}
        }
    }
    app.stop().await;
}

/// Gaps between attempts follow base·factor^n within the ±20 % jitter, plus
/// the poll interval and scheduling slack.
fn assert_schedule(attempts: &[Value]) {
    let at = |a: &Value| {
        chrono::DateTime::parse_from_rfc3339(a["started_at"].as_str().unwrap()).unwrap()
    };
    for (i, pair) in attempts.windows(2).enumerate() {
        let finished_prev =
            at(&pair[0]) + chrono::Duration::milliseconds(pair[0]["duration_ms"].as_i64().unwrap());
        let gap = (at(&pair[1]) - finished_prev).num_milliseconds() as f64;
        let nominal = BACKOFF_MS as f64 * 2f64.powi(i as i32);
        assert!(
            gap >= nominal * 0.8 - 5.0 && gap <= nominal * 1.2 + 400.0,
            "retry {} came after {gap} ms; expected ~{nominal} ms",
            i + 1
        );
    }
}

/// A port with nothing listening.
fn closed_port() -> std::net::SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

#[tokio::test]
async fn retry_after_on_429_and_503_is_honoured_within_the_cap() {
    let app = app().await;
    for code in [429, 503] {
        let server = FaultServer::start(Behaviour::StatusWithRetryAfter(code, 1)).await;
        let first = send_test(&app, &server.url()).await;
        assert_eq!(first["status_code"], code);
        let until = Instant::now() + Duration::from_secs(10);
        while server.hits().len() < 2 {
            assert!(Instant::now() < until, "no retry after Retry-After");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let hits = server.hits();
        let gap = hits[1].at - hits[0].at;
        // Backoff alone would retry after ~100 ms; Retry-After asks for 1 s.
        assert!(
            gap >= Duration::from_millis(950),
            "{code}: retried after {gap:?}"
        );
        assert!(
            gap < Duration::from_millis(2500),
            "{code}: retried after {gap:?}"
        );
    }
    // A Retry-After beyond the cap (2 s here) is capped.
    let server = FaultServer::start(Behaviour::StatusWithRetryAfter(503, 3600)).await;
    send_test(&app, &server.url()).await;
    let until = Instant::now() + Duration::from_secs(10);
    while server.hits().len() < 2 {
        assert!(Instant::now() < until, "a huge Retry-After was not capped");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let hits = server.hits();
    assert!(hits[1].at - hits[0].at < Duration::from_millis(3500));
    app.stop().await;
}

#[tokio::test]
async fn a_blackholed_receiver_does_not_delay_a_healthy_one() {
    let timeout_ms = 5_000;
    let app = TestApp::spawn_with(|l| {
        l.webhook_timeout_ms = Some(timeout_ms);
        l.poll_interval_ms = Some(20);
    })
    .await;
    let blackhole = FaultServer::start(Behaviour::Never).await;
    // Hundreds of deliveries to the dead receiver, all due now.
    let pending: Vec<_> = (0..300)
        .map(|_| {
            let client = app.http.clone();
            let url = app.url("/webhooks/test");
            let hook = blackhole.url();
            tokio::spawn(async move {
                let _ = client
                    .post(url)
                    .bearer_auth(crate::support::API_KEY)
                    .json(&json!({ "callback_url": hook }))
                    .send()
                    .await;
            })
        })
        .collect();
    let until = Instant::now() + Duration::from_secs(20);
    while blackhole.hits().len() < 8 {
        assert!(
            Instant::now() < until,
            "the blackhole never filled its slots"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let healthy = Receiver::start().await;
    let sent = Instant::now();
    let answer = send_test(&app, &healthy.url("/hook")).await;
    let took = sent.elapsed();
    assert_eq!(answer["success"], true, "{answer}");
    assert!(
        took < Duration::from_millis(2000),
        "the healthy delivery took {took:?}, though the dead receiver's first timeout is {timeout_ms} ms"
    );
    assert!(
        blackhole.hits().len() <= 8,
        "per-destination limit: {} in flight",
        blackhole.hits().len()
    );
    for p in pending {
        p.abort();
    }
    app.stop().await;
}

#[tokio::test]
async fn signatures_verify_with_an_independent_standard_webhooks_implementation() {
    let app = app().await;
    let receiver = Receiver::start().await;
    app.put("/webhook_secret", &json!({"secret": "plain-text-secret-1"}))
        .await;
    send_test(&app, &receiver.url("/hook")).await;
    let (_, key) = app.get("/webhook_signing_key").await;
    let key = key["key"].as_str().unwrap().to_owned();
    assert!(key.starts_with("whsec_"));
    let hook = receiver.received().remove(0);
    assert_eq!(
        hook.header("x-mosaic-signature"),
        Some("plain-text-secret-1")
    );
    assert!(
        python_verifies(&key, &hook),
        "standardwebhooks accepts the signature"
    );
    let mut tampered = hook.clone();
    tampered.body = format!("{} ", String::from_utf8_lossy(&hook.body))
        .into_bytes()
        .into();
    assert!(
        !python_verifies(&key, &tampered),
        "a tampered body is refused"
    );

    // After a rotation both keys sign, so receivers on the old key keep working.
    let (status, rotated) = app.post("/webhook_signing_key/rotate", &json!({})).await;
    assert_eq!(status, StatusCode::OK);
    let new_key = rotated["key"].as_str().unwrap().to_owned();
    assert_ne!(new_key, key);
    assert!(rotated["previous_valid_until"].is_string());
    send_test(&app, &receiver.url("/hook")).await;
    let hook = receiver.received().remove(1);
    assert_eq!(
        hook.header("webhook-signature").unwrap().split(' ').count(),
        2
    );
    assert!(python_verifies(&key, &hook));
    assert!(python_verifies(&new_key, &hook));
    app.stop().await;
}

fn python_verifies(key: &str, hook: &crate::support::Received) -> bool {
    let script = r#"
import json, sys
from standardwebhooks.webhooks import Webhook
key, headers, body = sys.argv[1], json.loads(sys.argv[2]), sys.stdin.buffer.read()
try:
    Webhook(key).verify(body, headers)
except Exception as e:
    print(e); sys.exit(3)
"#;
    let headers: serde_json::Map<String, Value> =
        ["webhook-id", "webhook-timestamp", "webhook-signature"]
            .iter()
            .map(|h| {
                (
                    h.to_string(),
                    Value::String(hook.header(h).unwrap().to_owned()),
                )
            })
            .collect();
    let mut child = std::process::Command::new("python3")
        .args(["-c", script, key, &Value::Object(headers).to_string()])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs (scripts/test-deps.sh installs standardwebhooks)");
    use std::io::Write;
    child.stdin.take().unwrap().write_all(&hook.body).unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("ModuleNotFoundError"),
        "install standardwebhooks: run scripts/test-deps.sh"
    );
    out.status.success()
}

#[tokio::test]
async fn run_finished_waits_until_run_started_is_resolved() {
    let app = app().await;
    let receiver = Receiver::start().await;
    // RUN_STARTED fails twice before it gets through.
    receiver.script(&[500, 500]);
    let agent = app
        .create_agent(&crate::support::trim_agent(0, 1000, 160))
        .await;
    let (status, _) = app
        .post(
            &format!("/agent/{agent}/run"),
            &json!({"video_urls": ["http://127.0.0.1:9/missing.mp4"], "callback_url": receiver.url("/hook")}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let seen = receiver.wait_for(4, Duration::from_secs(30)).await;
    let flags: Vec<(String, u16)> = seen
        .iter()
        .map(|r| (r.json()["flag"].as_str().unwrap().to_owned(), r.status))
        .collect();
    let expected = [
        ("RUN_STARTED", 500),
        ("RUN_STARTED", 500),
        ("RUN_STARTED", 200),
        ("RUN_FINISHED", 200),
    ];
    assert_eq!(
        flags,
        expected.map(|(f, s)| (f.to_owned(), s)),
        "order per run and URL"
    );
    assert_eq!(seen[3].json()["status"], "failed");
    app.stop().await;
}

#[tokio::test]
async fn callback_urls_whose_names_resolve_inward_are_refused_at_api_time() {
    let app = TestApp::spawn_with(|l| {
        l.dns_overrides =
            Some("inward.test=10.1.2.3,metadata.test=169.254.169.254,fine.test=127.0.0.1".into());
    })
    .await;
    for url in [
        "http://inward.test/hook",
        "http://metadata.test/latest/meta-data",
        "http://[::ffff:10.0.0.1]/",
    ] {
        let (status, body) = app
            .post("/webhooks/test", &json!({ "callback_url": url }))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{url}: {body}");
        assert_eq!(body["error"], "validation_error");
    }
    // The allow-list opens loopback, by name too.
    let receiver = Receiver::start().await;
    let url = format!("http://fine.test:{}/hook", receiver.addr.port());
    let answer = send_test(&app, &url).await;
    assert_eq!(answer["success"], true, "{answer}");
    app.stop().await;
}

#[tokio::test]
async fn metrics_count_attempts_and_report_the_queue() {
    let app = app().await;
    let receiver = Receiver::start().await;
    send_test(&app, &receiver.url("/hook")).await;
    let text = app
        .http
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "tessera_webhook_attempts_total{outcome=\"success\"} 1",
        "tessera_webhook_deliveries_total{outcome=\"succeeded\"} 1",
        "tessera_webhook_queue_depth 0",
        "tessera_webhook_attempt_duration_seconds_count 1",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
    assert!(text.contains("tessera_webhook_oldest_pending_age_seconds"));
    assert!(text.contains("tessera_runs{status=\"completed\"}"));
    app.stop().await;
}
