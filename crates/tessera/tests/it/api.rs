//! The API surface without ffmpeg: health, auth, agents, and bad input.

use std::collections::BTreeSet;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{API_KEY, TestApp, json_of, trim_agent};

#[tokio::test]
async fn health_and_readiness_answer_without_auth() {
    let app = TestApp::spawn().await;
    let r = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let (status, body) = json_of(app.http.get(app.url("/readyz")).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    app.stop().await;
}

#[tokio::test]
async fn whoami_accepts_bearer_and_x_api_key_and_refuses_bad_credentials() {
    let app = TestApp::spawn().await;
    let (status, me) = app.get("/whoami").await;
    assert_eq!(status, StatusCode::OK);
    assert!(uuid::Uuid::parse_str(me["user_id"].as_str().unwrap()).is_ok());
    assert!(me["created_at"].as_str().unwrap().ends_with('Z'));

    let via_header = app
        .http
        .get(app.url("/whoami"))
        .header("X-API-Key", API_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(via_header.status(), StatusCode::OK);
    let both = app
        .http
        .get(app.url("/whoami"))
        .header("X-API-Key", API_KEY)
        .bearer_auth(API_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(both.status(), StatusCode::OK);

    let cases: Vec<(&str, reqwest::RequestBuilder)> = vec![
        ("missing", app.http.get(app.url("/whoami"))),
        (
            "wrong",
            app.http
                .get(app.url("/whoami"))
                .bearer_auth("mk_wrongwrongwrongwrongwrong"),
        ),
        (
            "conflicting",
            app.http
                .get(app.url("/whoami"))
                .bearer_auth(API_KEY)
                .header("X-API-Key", "mk_otherotherotherotherother"),
        ),
    ];
    for (what, request) in cases {
        let (status, body) = json_of(request.send().await.unwrap()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}: {body}");
        assert_eq!(body["error"], "invalid_api_key", "{what}");
        assert!(
            body["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "{what}"
        );
        assert!(
            !body.to_string().contains("mk_wrong"),
            "the presented key is not echoed back"
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn an_agent_is_created_read_and_listed_with_defaults_filled_in() {
    let app = TestApp::spawn().await;
    let id = app.create_agent(&trim_agent(0, 2000, 320)).await;
    let (status, agent) = app.get(&format!("/agent/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(agent["agent"]["id"], id.as_str());
    assert_eq!(agent["agent"]["name"], "trim and shrink");
    let nodes = agent["agent_nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 4);
    let render = nodes.iter().find(|n| n["agent_node_id"] == "out").unwrap();
    assert_eq!(render["node_type"], "render");
    assert_eq!(
        render["params_used"]["format"], "mp4",
        "render defaults are filled in: {render}"
    );
    assert_eq!(agent["connections"].as_array().unwrap().len(), 3);

    let (status, list) = app.get("/agents").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["agents"][0]["id"], id.as_str());
    assert!(list["next_cursor"].is_null());

    let (status, types) = app.get("/node_types").await;
    assert_eq!(status, StatusCode::OK);
    let names: Vec<_> = types["node_types"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["type"].as_str().unwrap_or_default().to_owned())
        .collect();
    for expected in ["video_input", "trim", "resize", "render"] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} in {names:?}"
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn agents_are_paginated_with_a_cursor() {
    let app = TestApp::spawn().await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(app.create_agent(&trim_agent(0, 1000, 320)).await);
    }
    let (_, first) = app.get("/agents?limit=2").await;
    assert_eq!(first["agents"].as_array().unwrap().len(), 2);
    let cursor = first["next_cursor"].as_str().unwrap();
    let (_, second) = app.get(&format!("/agents?limit=2&cursor={cursor}")).await;
    assert_eq!(second["agents"].as_array().unwrap().len(), 1);
    assert_eq!(second["agents"][0]["id"], ids[0].as_str());
    assert!(second["next_cursor"].is_null());
    let (status, body) = app.get("/agents?limit=0").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    app.stop().await;
}

/// Every bad request gets a clear 4xx in the `{error, detail}` shape and
/// leaves nothing behind.
#[tokio::test]
async fn bad_input_gets_a_clear_4xx_and_writes_nothing() {
    let app = TestApp::spawn().await;
    let agent = app.create_agent(&trim_agent(0, 1000, 320)).await;
    let run = format!("/agent/{agent}/run");
    let missing = format!("/agent/{}/run", uuid::Uuid::now_v7());
    let good_video = "http://127.0.0.1:9/video.mp4";

    let invalid_graphs: Vec<(Value, StatusCode)> = vec![
        (
            json!({"name": "x", "nodes": [{"id": "a", "type": "warp", "params": {}}], "connections": []}),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"name": "x", "nodes": [], "connections": []}),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"name": "", "nodes": trim_agent(0, 1, 320)["nodes"], "connections": trim_agent(0, 1, 320)["connections"]}),
            StatusCode::BAD_REQUEST,
        ),
        (
            trim_agent(5000, 1000, 320),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"name": "cycle", "nodes": [
                {"id": "in", "type": "video_input"}, {"id": "a", "type": "trim", "params": {"start_ms": 0}},
                {"id": "b", "type": "trim", "params": {"start_ms": 0}}, {"id": "out", "type": "render"}],
              "connections": [{"source": "in", "target": "a"}, {"source": "a", "target": "b"},
                              {"source": "b", "target": "a"}, {"source": "b", "target": "out"}]}),
            StatusCode::BAD_REQUEST,
        ),
    ];
    for (body, expected) in invalid_graphs {
        let (status, answer) = app.post("/agent/create", &body).await;
        assert_eq!(status, expected, "{body} → {answer}");
        assert_error_shape(&answer);
    }

    let runs: Vec<(&str, Value, StatusCode)> = vec![
        (
            &run,
            json!({"video_urls": ["file:///etc/passwd"]}),
            StatusCode::BAD_REQUEST,
        ),
        (
            &run,
            json!({"video_urls": ["ftp://example.com/a.mp4"]}),
            StatusCode::BAD_REQUEST,
        ),
        (&run, json!({"video_urls": []}), StatusCode::BAD_REQUEST),
        (
            &run,
            json!({"video_urls": [good_video], "callback_url": "javascript:alert(1)"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            &run,
            json!({"video_urls": [good_video], "callback_url": "http://user:pw@127.0.0.1:9/hook"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            &run,
            json!({"video_urls": [good_video], "callback_url": "http://169.254.169.254/latest"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            &run,
            json!({"video_urls": [good_video], "update_params": {"nope": {"x": 1}}}),
            StatusCode::BAD_REQUEST,
        ),
        (
            &run,
            json!({"video_urls": [good_video], "update_params": {"cut": {"end_ms": "soon"}}}),
            StatusCode::BAD_REQUEST,
        ),
        (
            &run,
            json!({"video_urls": [good_video], "update_params": {"cut": {"end_ms": -5}}}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            &run,
            json!({"video_urls": [good_video], "update_params": {"small": {"width": 100000}}}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            &run,
            json!({"video_urls": "not-a-list"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            &run,
            json!({"video_urls": [good_video], "surprise": true}),
            StatusCode::BAD_REQUEST,
        ),
        (
            &missing,
            json!({"video_urls": [good_video]}),
            StatusCode::NOT_FOUND,
        ),
        (
            "/agent/not-a-uuid/run",
            json!({"video_urls": [good_video]}),
            StatusCode::NOT_FOUND,
        ),
    ];
    for (path, body, expected) in runs {
        let (status, answer) = app.post(path, &body).await;
        assert_eq!(status, expected, "{path} {body} → {answer}");
        assert_error_shape(&answer);
    }

    let malformed = app
        .http
        .post(app.url(&run))
        .bearer_auth(API_KEY)
        .header("content-type", "application/json")
        .body("{\"video_urls\": [")
        .send()
        .await
        .unwrap();
    let (status, answer) = json_of(malformed).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error_shape(&answer);

    let unauthenticated = app
        .http
        .post(app.url(&run))
        .json(&json!({"video_urls": [good_video]}))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthenticated.status(), StatusCode::UNAUTHORIZED);
    let (status, answer) = app.get(&format!("/agent/{}", uuid::Uuid::now_v7())).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_error_shape(&answer);

    // Nothing was written: still one agent, no deliveries, no runs queued.
    let (_, agents) = app.get("/agents").await;
    assert_eq!(agents["agents"].as_array().unwrap().len(), 1);
    let (_, deliveries) = app.get("/webhook_deliveries").await;
    assert_eq!(deliveries["deliveries"].as_array().unwrap().len(), 0);
    assert_eq!(count_rows(&app, "runs"), 0);
    app.stop().await;
}

fn assert_error_shape(answer: &Value) {
    let code = answer["error"]
        .as_str()
        .unwrap_or_else(|| panic!("no error code in {answer}"));
    assert!(!code.is_empty());
    assert!(
        answer["detail"].as_str().is_some_and(|d| d.len() > 5),
        "no detail in {answer}"
    );
}

fn count_rows(app: &TestApp, table: &str) -> i64 {
    crate::support::count_rows(app.data_dir.path(), table)
}

#[tokio::test]
async fn the_webhook_secret_is_shown_once_then_masked() {
    let app = TestApp::spawn().await;
    let (status, body) = app.get("/webhook_secret").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["configured"], false);
    let (status, set) = app
        .put(
            "/webhook_secret",
            &json!({"secret": "my-webhook-secret-123"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(set["secret"], "my-webhook-secret-123");
    let (_, shown) = app.get("/webhook_secret").await;
    assert_eq!(shown["configured"], true);
    assert!(!shown.to_string().contains("my-webhook-secret"), "{shown}");
    let (status, body) = app
        .put("/webhook_secret", &json!({"secret": "has space inside"}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let generated = app
        .http
        .put(app.url("/webhook_secret"))
        .bearer_auth(API_KEY)
        .send()
        .await
        .unwrap();
    let (status, generated) = json_of(generated).await;
    assert_eq!(status, StatusCode::OK);
    assert!(generated["secret"].as_str().unwrap().len() >= 24);
    let deleted = app
        .http
        .delete(app.url("/webhook_secret"))
        .bearer_auth(API_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::OK);
    let (_, after) = app.get("/webhook_secret").await;
    assert_eq!(after["configured"], false);
    app.stop().await;
}

#[tokio::test]
async fn keys_created_on_the_command_line_authenticate_against_the_same_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_tessera"));
    cmd.args(["keys", "create", "--name", "ci", "--data-dir"])
        .arg(dir.path())
        .env_remove("TESSERA_BOOTSTRAP_API_KEY");
    if let Some(url) = crate::support::database_url(dir.path()) {
        cmd.env("TESSERA_DATABASE_URL", url);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let key = stdout.trim();
    assert_eq!(
        stdout.lines().count(),
        1,
        "the key alone on one line: {stdout:?}"
    );
    assert!(key.starts_with("mk_"));

    let mut layer = crate::support::test_layer(dir.path());
    layer.bootstrap_api_key = None;
    let app = tessera::app::start(tessera::config::Config::resolve(layer, None).unwrap())
        .await
        .unwrap();
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let r = client
        .get(format!("http://{}/whoami", app.addr))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    app.shutdown().await;
}

#[tokio::test]
async fn a_test_webhook_reports_its_first_attempt_and_failures_are_retried_then_given_up() {
    let app = TestApp::spawn().await;
    let receiver = crate::support::Receiver::start().await;
    let (status, ok) = app
        .post(
            "/webhooks/test",
            &json!({"callback_url": receiver.url("/ok")}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{ok}");
    assert_eq!(ok["success"], true);
    assert_eq!(ok["status_code"], 200);
    let test = receiver.received()[0].json();
    assert_eq!(test["flag"], "TEST");
    assert_eq!(test["run_id"], "test");

    receiver.set_status(500);
    let (_, failed) = app
        .post(
            "/webhooks/test",
            &json!({"callback_url": receiver.url("/down")}),
        )
        .await;
    assert_eq!(failed["success"], false);
    assert_eq!(failed["status_code"], 500);
    assert_eq!(failed["error"], "status");
    // 1 + 3 retries with millisecond backoff, then the delivery is failed.
    let all = receiver
        .wait_for(5, std::time::Duration::from_secs(20))
        .await;
    let id = failed["delivery_id"].as_str().unwrap();
    let until = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    let delivery = loop {
        let (_, d) = app.get(&format!("/webhook_deliveries/{id}")).await;
        if d["status"] == "failed" {
            break d;
        }
        assert!(tokio::time::Instant::now() < until, "{d}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(delivery["attempt_count"], 4);
    assert_eq!(delivery["attempts"].as_array().unwrap().len(), 4);
    let ids: BTreeSet<_> = all[1..]
        .iter()
        .map(|r| r.header("webhook-id").unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 1, "every retry carries the same webhook-id");

    // A manual resend after the receiver is fixed delivers it.
    receiver.set_status(204);
    let (status, _) = app
        .post(&format!("/webhook_deliveries/{id}/retry"), &json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    receiver
        .wait_for(6, std::time::Duration::from_secs(20))
        .await;
    app.stop().await;
}

#[tokio::test]
async fn bodies_over_the_limit_get_a_json_413() {
    let app = TestApp::spawn().await;
    let huge = format!("{{\"name\": \"{}\"}}", "x".repeat(3 * 1024 * 1024));
    for (method, path) in [
        (reqwest::Method::POST, "/agent/create"),
        (reqwest::Method::PUT, "/webhook_secret"),
    ] {
        let r = app
            .http
            .request(method, app.url(path))
            .bearer_auth(API_KEY)
            .header("content-type", "application/json")
            .body(huge.clone())
            .send()
            .await
            .unwrap();
        let (status, body) = json_of(r).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{path}");
        assert_eq!(body["error"], "payload_too_large", "{path}: {body}");
    }
    app.stop().await;
}

#[tokio::test]
async fn bodies_must_be_json_objects() {
    let app = TestApp::spawn().await;
    // serde would read a struct from an array of its fields: refused.
    let (status, body) = app
        .post("/agent/create", &json!(["renamed", null, [], []]))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["detail"], "the request body must be a JSON object");
    for bad in [json!(null), json!(["a-secret-long-enough"])] {
        let (status, body) = app.put("/webhook_secret", &bad).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
    }
    let (_, agents) = app.get("/agents").await;
    assert!(agents["agents"].as_array().unwrap().is_empty());
    let (_, secret) = app.get("/webhook_secret").await;
    assert_eq!(secret["configured"], false);
    app.stop().await;
}
