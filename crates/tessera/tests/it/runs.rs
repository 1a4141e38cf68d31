//! End to end: real videos served on loopback, real ffmpeg, real webhooks.

use std::collections::BTreeSet;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{
    FileServer, Received, Receiver, TestApp, duration, ffprobe, fixtures_dir, trim_agent,
};

const RUN_DEADLINE: Duration = Duration::from_secs(120);

/// The seed's fields for each flag, plus PRODUCT.md's documented additive ones.
fn assert_seed_shape(payload: &Value) {
    let keys: BTreeSet<&str> = payload
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let (required, additive): (&[&str], &[&str]) = match payload["flag"].as_str().unwrap() {
        "RUN_STARTED" => (
            &[
                "flag",
                "agent_id",
                "run_id",
                "status",
                "inputs",
                "triggered_by",
            ],
            &["errors", "status_message", "node_status_counts"],
        ),
        "RUN_FINISHED" => (
            &[
                "flag",
                "agent_id",
                "run_id",
                "status",
                "inputs",
                "outputs",
                "triggered_by",
            ],
            &[
                "errors",
                "status_message",
                "node_status_counts",
                "cancelled",
            ],
        ),
        other => panic!("unexpected flag {other}"),
    };
    for k in required {
        assert!(keys.contains(k), "missing {k} in {payload}");
    }
    for k in &keys {
        assert!(
            required.contains(k) || additive.contains(k),
            "unexpected field {k} in {payload}"
        );
    }
    for id in ["agent_id", "run_id"] {
        assert!(
            uuid::Uuid::parse_str(payload[id].as_str().unwrap()).is_ok(),
            "{id} is a UUID"
        );
    }
    for input in payload["inputs"].as_array().unwrap() {
        let keys: BTreeSet<_> = input.as_object().unwrap().keys().cloned().collect();
        assert_eq!(
            keys,
            BTreeSet::from(["video_url".to_owned(), "thumbnail_url".to_owned()])
        );
    }
    if let Some(outputs) = payload["outputs"].as_array() {
        for output in outputs {
            for k in ["video_url", "thumbnail_url", "completed_at"] {
                assert!(output[k].is_string(), "{k} in {output}");
            }
            assert!(
                chrono::DateTime::parse_from_rfc3339(output["completed_at"].as_str().unwrap())
                    .is_ok()
            );
        }
    }
    let trigger = &payload["triggered_by"];
    assert_eq!(trigger["type"], "manual");
    assert_eq!(trigger["source"], "api");
    assert!(uuid::Uuid::parse_str(trigger["user_id"].as_str().unwrap()).is_ok());
    assert!(
        chrono::DateTime::parse_from_rfc3339(trigger["triggered_at"].as_str().unwrap()).is_ok()
    );
}

async fn download(app: &TestApp, url: &str) -> (StatusCode, Vec<u8>) {
    let r = app.http.get(url).send().await.unwrap();
    (r.status(), r.bytes().await.unwrap().to_vec())
}

fn webhooks_in_order(received: &[Received]) -> Vec<Value> {
    received.iter().map(Received::json).collect()
}

#[tokio::test]
async fn a_run_on_a_real_video_delivers_both_webhooks_with_downloadable_files() {
    let app = TestApp::spawn().await;
    let files = FileServer::start().await;
    let receiver = Receiver::start().await;
    let (status, _) = app
        .put(
            "/webhook_secret",
            &json!({"secret": "s3cr3t-value-for-tests"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let agent = app.create_agent(&trim_agent(1000, 3000, 320)).await;

    let (status, started) = app
        .post(
            &format!("/agent/{agent}/run"),
            &json!({"video_urls": [files.url("/videos/bigbuckbunny.mp4")], "callback_url": receiver.url("/hook")}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{started}");
    let run_id = started["run_id"].as_str().unwrap().to_owned();

    let received = receiver.wait_for(2, RUN_DEADLINE).await;
    let hooks = webhooks_in_order(&received);
    assert_eq!(hooks[0]["flag"], "RUN_STARTED");
    assert_eq!(hooks[1]["flag"], "RUN_FINISHED");
    for (hook, raw) in hooks.iter().zip(&received) {
        assert_seed_shape(hook);
        assert_eq!(hook["run_id"], run_id.as_str());
        assert_eq!(hook["agent_id"], agent.as_str());
        assert_eq!(
            raw.header("x-mosaic-signature"),
            Some("s3cr3t-value-for-tests")
        );
        assert_eq!(raw.header("content-type"), Some("application/json"));
        assert!(raw.header("user-agent").unwrap().starts_with("Tessera/"));
        assert!(raw.header("webhook-id").is_some());
        assert!(raw.header("webhook-signature").unwrap().starts_with("v1,"));
    }
    assert_ne!(
        received[0].header("webhook-id"),
        received[1].header("webhook-id")
    );
    assert_eq!(hooks[0]["status"], "running");
    assert_eq!(hooks[1]["status"], "completed");
    assert_eq!(hooks[1]["inputs"].as_array().unwrap().len(), 1);
    assert_eq!(hooks[1]["outputs"].as_array().unwrap().len(), 1);

    // The input downloads as the same bytes that were served.
    let original = std::fs::read(fixtures_dir().join("bigbuckbunny.mp4")).unwrap();
    let (status, input) =
        download(&app, hooks[0]["inputs"][0]["video_url"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(input, original);

    // Thumbnails are JPEGs.
    for url in [
        &hooks[1]["inputs"][0]["thumbnail_url"],
        &hooks[1]["outputs"][0]["thumbnail_url"],
    ] {
        let (status, jpeg) = download(&app, url.as_str().unwrap()).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(&jpeg[..3], &[0xFF, 0xD8, 0xFF], "a JPEG");
    }

    // The output is a valid H.264/AAC video of the trimmed length and width.
    let output_url = hooks[1]["outputs"][0]["video_url"].as_str().unwrap();
    let (status, output) = download(&app, output_url).await;
    assert_eq!(status, StatusCode::OK);
    let path = app.data_dir.path().join("downloaded.mp4");
    std::fs::write(&path, &output).unwrap();
    let probe = ffprobe(&path);
    let duration = duration(&probe);
    assert!(
        (duration - 2.0).abs() < 0.15,
        "trimmed to 2 s, got {duration}"
    );
    let video = probe["streams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["codec_type"] == "video")
        .unwrap();
    assert_eq!(video["codec_name"], "h264");
    assert_eq!(video["width"], 320);
    assert_eq!(video["height"].as_u64().unwrap() % 2, 0);
    assert!(
        probe["streams"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["codec_name"] == "aac")
    );

    // Range requests work, so players can seek.
    let ranged = app
        .http
        .get(output_url)
        .header("Range", "bytes=0-99")
        .send()
        .await
        .unwrap();
    assert_eq!(ranged.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        ranged.headers()["content-range"],
        format!("bytes 0-99/{}", output.len()).as_str()
    );
    assert_eq!(ranged.bytes().await.unwrap().as_ref(), &output[..100]);

    // A tampered URL is refused.
    for tampered in [
        output_url.replace("signature=", "signature=0"),
        output_url.replace("expires=", "expires=9"),
        output_url.replace("/outputs/", "/inputs/"),
    ] {
        let (status, _) = download(&app, &tampered).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{tampered}");
    }
    let unsigned = output_url.split('?').next().unwrap();
    assert_eq!(download(&app, unsigned).await.0, StatusCode::FORBIDDEN);

    // The API agrees with the webhook.
    let run = app.wait_for_run(&run_id, RUN_DEADLINE).await;
    assert_eq!(run["status"], "completed");
    assert_eq!(
        run["node_status_counts"],
        json!({"completed": 4, "in_progress": 0, "failed": 0})
    );
    assert_eq!(run["outputs"][0]["id"], hooks[1]["outputs"][0]["id"]);
    let (_, deliveries) = app
        .get(&format!("/webhook_deliveries?run_id={run_id}"))
        .await;
    let deliveries = deliveries["deliveries"].as_array().unwrap();
    assert_eq!(deliveries.len(), 2);
    assert!(
        deliveries
            .iter()
            .all(|d| d["status"] == "succeeded" && d["attempt_count"] == 1)
    );
    app.stop().await;
}

#[tokio::test]
async fn one_good_and_one_bad_input_is_partial_complete_without_a_secret_header() {
    let app = TestApp::spawn().await;
    let files = FileServer::start().await;
    let receiver = Receiver::start().await;
    let agent = app.create_agent(&trim_agent(0, 1000, 160)).await;
    let (status, started) = app
        .post(
            &format!("/agent/{agent}/run"),
            &json!({
                "video_urls": [files.url("/videos/bikes.mp4"), files.url("/videos/missing.mp4")],
                "callback_url": receiver.url("/hook"),
            }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{started}");
    let received = receiver.wait_for(2, RUN_DEADLINE).await;
    let hooks = webhooks_in_order(&received);
    for (hook, raw) in hooks.iter().zip(&received) {
        assert_seed_shape(hook);
        assert_eq!(
            raw.header("x-mosaic-signature"),
            None,
            "no secret, no header"
        );
    }
    assert_eq!(
        hooks[0]["inputs"].as_array().unwrap().len(),
        1,
        "only the ingested input is listed"
    );
    let finished = &hooks[1];
    assert_eq!(finished["status"], "partial_complete");
    assert_eq!(finished["outputs"].as_array().unwrap().len(), 1);
    assert_eq!(finished["errors"][0]["input_index"], 1);
    assert!(
        finished["status_message"].as_str().unwrap().contains("404"),
        "{finished}"
    );

    // bikes.mp4 has no audio track: the output has none either, and is valid.
    let (_, output) = download(&app, finished["outputs"][0]["video_url"].as_str().unwrap()).await;
    let path = app.data_dir.path().join("bikes-out.mp4");
    std::fs::write(&path, output).unwrap();
    let probe = ffprobe(&path);
    assert!(
        probe["streams"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["codec_type"] != "audio")
    );
    app.stop().await;
}

#[tokio::test]
async fn when_every_input_is_bad_the_run_fails_with_a_clear_message() {
    let app = TestApp::spawn().await;
    let files = FileServer::start().await;
    let receiver = Receiver::start().await;
    let agent = app.create_agent(&trim_agent(0, 1000, 160)).await;
    let (_, started) = app
        .post(
            &format!("/agent/{agent}/run"),
            &json!({
                "video_urls": [files.url("/page.html"), files.url("/videos/nothing-here.mp4")],
                "callback_url": receiver.url("/hook"),
            }),
        )
        .await;
    let run_id = started["run_id"].as_str().unwrap().to_owned();
    let hooks = webhooks_in_order(&receiver.wait_for(2, RUN_DEADLINE).await);
    assert_seed_shape(&hooks[0]);
    assert_seed_shape(&hooks[1]);
    assert_eq!(hooks[0]["inputs"], json!([]));
    assert_eq!(hooks[1]["status"], "failed");
    assert_eq!(hooks[1]["outputs"], json!([]));
    let run = app.wait_for_run(&run_id, RUN_DEADLINE).await;
    assert_eq!(run["status"], "failed");
    let message = run["status_message"].as_str().unwrap();
    assert!(
        message.contains("input 0") && message.contains("input 1"),
        "{message}"
    );
    assert!(
        message.to_lowercase().contains("not a video") || message.contains("video"),
        "{message}"
    );
    app.stop().await;
}
