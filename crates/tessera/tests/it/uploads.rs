//! Uploads: the hosted service's three-step flow (get_upload_url → form POST
//! → finalize_upload), `video_ids` in runs, the policy's refusals, the
//! finalize checks, and the cleanup of abandoned uploads.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};

use crate::support::{API_KEY, Receiver, TestApp, count_rows, fixtures_dir, json_of, trim_agent};

/// The form a hosted-service client posts: every field as given, then the file.
fn form(fields: &Value, file: Part) -> Form {
    let mut form = Form::new();
    for (name, value) in fields.as_object().expect("fields is an object") {
        form = form.text(name.clone(), value.as_str().unwrap().to_owned());
    }
    form.part("file", file)
}

fn file_part(bytes: Vec<u8>, name: &str) -> Part {
    Part::bytes(bytes)
        .file_name(name.to_owned())
        .mime_str("video/mp4")
        .unwrap()
}

async fn get_upload_url(app: &TestApp, path: &str, body: Option<Value>) -> Value {
    let mut request = app.http.post(app.url(path)).bearer_auth(API_KEY);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let (status, answer) = json_of(request.send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    answer
}

async fn post_form(app: &TestApp, url: &str, form: Form) -> (StatusCode, Value) {
    json_of(app.http.post(url).multipart(form).send().await.unwrap()).await
}

async fn finalize(app: &TestApp, video_id: &str) -> (StatusCode, Value) {
    app.post("/videos/finalize_upload", &json!({"video_id": video_id}))
        .await
}

/// Upload `bytes` through a fresh upload URL; returns the video id.
async fn upload(app: &TestApp, bytes: Vec<u8>, name: &str) -> String {
    let target = get_upload_url(
        app,
        "/videos/get_upload_url",
        Some(json!({"filename": name})),
    )
    .await;
    let url = target["upload_url"].as_str().unwrap();
    let (status, body) = post_form(app, url, form(&target["fields"], file_part(bytes, name))).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    target["video_id"].as_str().unwrap().to_owned()
}

type Chunks = tokio::sync::mpsc::Sender<Result<bytes::Bytes, std::io::Error>>;

/// Post the upload form of `target` with a file whose bytes come from the
/// returned sender, as they are sent (dropping it ends the file).
fn post_streaming(
    app: &TestApp,
    target: &Value,
    name: &str,
) -> (
    Chunks,
    tokio::task::JoinHandle<reqwest::Result<reqwest::Response>>,
) {
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let file = Part::stream(reqwest::Body::wrap_stream(futures_util::stream::unfold(
        rx,
        |mut rx: tokio::sync::mpsc::Receiver<Result<bytes::Bytes, std::io::Error>>| async move {
            rx.recv().await.map(|chunk| (chunk, rx))
        },
    )))
    .file_name(name.to_owned());
    let form = form(&target["fields"], file);
    let (http, url) = (
        app.http.clone(),
        target["upload_url"].as_str().unwrap().to_owned(),
    );
    let sent = tokio::spawn(async move { http.post(url).multipart(form).send().await });
    (tx, sent)
}

fn assert_error(status: StatusCode, body: &Value, want: StatusCode, detail_has: &str) {
    assert_eq!(status, want, "{body}");
    assert!(body["error"].is_string(), "{body}");
    let detail = body["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains(detail_has),
        "detail {detail:?} should mention {detail_has:?}"
    );
}

/// Written as a client of the hosted service writes it: plain HTTP, both
/// auth headers, the `/videos/…` and `/uploads/video/…` path forms.
#[tokio::test]
async fn a_hosted_service_client_uploads_a_video_and_runs_an_agent_on_its_video_id() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    let agent = app.create_agent(&trim_agent(0, 2_000, 320)).await;
    let video = std::fs::read(fixtures_dir().join("bigbuckbunny.mp4")).unwrap();
    let http = reqwest::Client::builder().no_proxy().build().unwrap();

    // 1. Ask for an upload URL (a client may send both auth headers).
    let (status, target) = json_of(
        http.post(app.url("/videos/get_upload_url"))
            .header("Authorization", format!("Bearer {API_KEY}"))
            .header("X-API-Key", API_KEY)
            .json(&json!({"filename": "bigbuckbunny.mp4", "content_type": "video/mp4"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{target}");
    assert_eq!(target["max_file_size_bytes"], 5_000_000_000u64);
    let video_id = target["video_id"].as_str().unwrap();
    assert!(uuid::Uuid::parse_str(video_id).is_ok());

    // 2. Post the form: the fields as given, the file last.
    let (status, body) = json_of(
        http.post(target["upload_url"].as_str().unwrap())
            .multipart(form(
                &target["fields"],
                file_part(video.clone(), "bigbuckbunny.mp4"),
            ))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");

    // 3. Finalize (the other path form, the other auth header).
    let (status, finalized) = json_of(
        http.post(app.url("/uploads/video/finalize_upload"))
            .header("X-API-Key", API_KEY)
            .json(&json!({"video_id": video_id}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{finalized}");
    assert_eq!(finalized["status"], "finalized");
    assert_eq!(finalized["size_bytes"], video.len() as u64);
    assert!(
        finalized["duration_ms"].as_u64().unwrap() > 2_000,
        "{finalized}"
    );

    // Run the agent on the video_id with a callback.
    let (status, started) = json_of(
        http.post(app.url(&format!("/agent/{agent}/run")))
            .header("X-API-Key", API_KEY)
            .json(&json!({"video_ids": [video_id], "callback_url": receiver.url("/hook")}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{started}");
    let hooks = receiver.wait_for(2, Duration::from_secs(120)).await;
    let finished = hooks
        .iter()
        .map(|h| h.json())
        .find(|h| h["flag"] == "RUN_FINISHED")
        .expect("RUN_FINISHED arrives");
    assert_eq!(finished["status"], "completed", "{finished}");
    let inputs = finished["inputs"].as_array().unwrap();
    assert_eq!(inputs.len(), 1, "{finished}");
    // The input URL downloads exactly the bytes that were uploaded.
    let downloaded = http
        .get(inputs[0]["video_url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(downloaded.status(), StatusCode::OK);
    assert!(downloaded.bytes().await.unwrap() == video, "same bytes");
    let thumbnail = http
        .get(inputs[0]["thumbnail_url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(thumbnail.status(), StatusCode::OK);
    assert!(thumbnail.bytes().await.unwrap().starts_with(&[0xFF, 0xD8]));
    let outputs = finished["outputs"].as_array().unwrap();
    assert_eq!(outputs.len(), 1, "{finished}");
    let run = app
        .wait_for_run(started["run_id"].as_str().unwrap(), Duration::from_secs(10))
        .await;
    assert_eq!(run["status"], "completed");
    app.stop().await;
}

#[tokio::test]
async fn the_upload_url_refuses_tampered_incomplete_and_foreign_forms() {
    let app = TestApp::spawn().await;
    let target = get_upload_url(&app, "/uploads/video/get_upload_url", None).await;
    let url = target["upload_url"].as_str().unwrap();
    let fields = &target["fields"];
    let small = || file_part(b"not yet checked".to_vec(), "a.mp4");
    let with = |name: &str, value: &str| {
        let mut f = fields.clone();
        f[name] = json!(value);
        f
    };

    // Another key than the signed one: another user's or video's object.
    let (status, body) =
        post_form(&app, url, form(&with("key", "uploads/x/y/video"), small())).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "signature");
    // A policy with a bigger limit, re-encoded without the server's secret.
    let policy = fields["policy"].as_str().unwrap();
    let decoded = base64_decode(policy);
    let mut doc: Value = serde_json::from_slice(&decoded).unwrap();
    doc["max_bytes"] = json!(6_000_000_000u64);
    let forged = base64_encode(&serde_json::to_vec(&doc).unwrap());
    let (status, body) = post_form(&app, url, form(&with("policy", &forged), small())).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "signature");
    let (status, body) = post_form(
        &app,
        url,
        form(&with("x-tessera-signature", "00ff"), small()),
    )
    .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "signature");
    // A missing field, an extra field, no file, not a form.
    let mut missing = fields.clone();
    missing.as_object_mut().unwrap().remove("policy");
    let (status, body) = post_form(&app, url, form(&missing, small())).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "policy");
    let (status, body) = post_form(&app, url, form(&with("acl", "public-read"), small())).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "acl");
    let mut no_file = Form::new();
    for (name, value) in fields.as_object().unwrap() {
        no_file = no_file.text(name.clone(), value.as_str().unwrap().to_owned());
    }
    let (status, body) = post_form(&app, url, no_file).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "file");
    let (status, body) = json_of(app.http.post(url).json(fields).send().await.unwrap()).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "multipart");

    // Nothing was stored by any of them.
    let video_id = target["video_id"].as_str().unwrap();
    let (status, body) = finalize(&app, video_id).await;
    assert_error(
        status,
        &body,
        StatusCode::BAD_REQUEST,
        "no file has been uploaded",
    );
    // The intact form still works.
    let (status, body) = post_form(&app, url, form(fields, small())).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    app.stop().await;
}

#[tokio::test]
async fn an_expired_upload_policy_is_refused() {
    let app = TestApp::spawn_with(|l| l.upload_url_seconds = Some(1)).await;
    let target = get_upload_url(&app, "/videos/get_upload_url", None).await;
    let expires = chrono::DateTime::parse_from_rfc3339(target["expires_at"].as_str().unwrap())
        .unwrap()
        .timestamp_millis();
    // Wait for the policy's own expiry time to pass (a wall-clock condition).
    let wait = expires - chrono::Utc::now().timestamp_millis() + 50;
    tokio::time::sleep(Duration::from_millis(wait.max(0) as u64)).await;
    let (status, body) = post_form(
        &app,
        target["upload_url"].as_str().unwrap(),
        form(&target["fields"], file_part(b"late".to_vec(), "late.mp4")),
    )
    .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "expired");
    app.stop().await;
}

#[tokio::test]
async fn finalize_checks_the_file_and_runs_take_only_finalized_uploads_of_their_user() {
    let app = TestApp::spawn_with(|l| l.max_media_seconds = Some(3)).await;
    let agent = app.create_agent(&trim_agent(0, 1_000, 160)).await;

    // Not a video: 413 naming the check; the file is removed.
    let text = upload(&app, b"hello, this is not a video".to_vec(), "notes.mp4").await;
    let (status, body) = finalize(&app, &text).await;
    assert_error(status, &body, StatusCode::PAYLOAD_TOO_LARGE, "not a video");
    // The upload waits for a file again (it no longer looks uploaded).
    let refused = app
        .store()
        .upload(text.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(refused.status, tessera::store::UploadStatus::Pending);
    assert_eq!(refused.size_bytes, None);
    let (status, body) = finalize(&app, &text).await;
    assert_error(
        status,
        &body,
        StatusCode::BAD_REQUEST,
        "no file has been uploaded",
    );

    // Longer than the (here 3 s) media limit: 413 naming "duration".
    let long = std::fs::read(fixtures_dir().join("bigbuckbunny.mp4")).unwrap();
    let long_id = upload(&app, long, "long.mp4").await;
    let (status, body) = finalize(&app, &long_id).await;
    assert_error(status, &body, StatusCode::PAYLOAD_TOO_LARGE, "duration");
    assert!(
        body["detail"].as_str().unwrap().starts_with("duration"),
        "{body}"
    );

    // Uploaded but not finalized: a run refuses it with 400.
    let pending = upload(&app, b"pending".to_vec(), "p.mp4").await;
    let (status, body) = app
        .post(
            &format!("/agent/{agent}/run"),
            &json!({"video_ids": [pending]}),
        )
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "not finalized");

    // Unknown, malformed and another user's ids: 404 / 400, nothing queued.
    let (status, body) = app
        .post(
            &format!("/agent/{agent}/run"),
            &json!({"video_ids": [uuid::Uuid::new_v4().to_string()]}),
        )
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not found");
    let (status, body) = app
        .post(
            &format!("/agent/{agent}/run"),
            &json!({"video_ids": ["nope"]}),
        )
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "UUID");
    let (status, body) = finalize(&app, &uuid::Uuid::new_v4().to_string()).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not found");

    let store = app.store();
    let now = chrono::Utc::now().timestamp_millis();
    let other = store.create_user(now).await.unwrap();
    let other_key = "mk_otheruser0123456789abcdefghijkl";
    store
        .create_api_key(tessera::store::NewApiKey {
            user_id: other,
            name: "other".into(),
            key_hash: tessera::domain::signing::hash_api_key(other_key),
            created_at: now,
        })
        .await
        .unwrap();
    let (status, body) = json_of(
        app.http
            .post(app.url("/videos/finalize_upload"))
            .bearer_auth(other_key)
            .json(&json!({"video_id": pending}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not found");
    let (status, other_agent) = json_of(
        app.http
            .post(app.url("/agent/create"))
            .bearer_auth(other_key)
            .json(&trim_agent(0, 1_000, 160))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{other_agent}");
    let (status, body) = json_of(
        app.http
            .post(app.url(&format!(
                "/agent/{}/run",
                other_agent["id"].as_str().unwrap()
            )))
            .bearer_auth(other_key)
            .json(&json!({"video_ids": [pending]}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not found");
    assert_eq!(count_rows(app.data_dir.path(), "runs"), 0);
    app.stop().await;
}

fn rss_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// 6 GB of zeros, generated as it is sent (never held by the client).
fn six_gigabytes() -> reqwest::Body {
    const CHUNK: usize = 1024 * 1024;
    let chunks = 6 * 1024;
    let zeros = bytes::Bytes::from(vec![0u8; CHUNK]);
    reqwest::Body::wrap_stream(futures_util::stream::iter(
        (0..chunks).map(move |_| Ok::<_, std::io::Error>(zeros.clone())),
    ))
}

/// Files stored under the app's object directory (uploads and staging files).
fn stored_files(app: &TestApp) -> Vec<std::path::PathBuf> {
    fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(
        &app.data_dir.path().join("objects").join("uploads"),
        &mut out,
    );
    out
}

/// The server runs in this process (each test is its own process under
/// nextest), so this process's peak RSS bounds what the server buffered.
#[tokio::test]
async fn a_6_gb_upload_is_refused_by_the_policy_without_being_buffered() {
    // A 32 MiB policy makes the streamed refusal quick; the declared-length
    // case uses the default 5 GB policy.
    let app = TestApp::spawn().await;
    let small = TestApp::spawn_with(|l| l.upload_max_bytes = Some(32 * 1024 * 1024)).await;
    let before = rss_kib("VmRSS:");

    // Declared 6 GB: refused from the Content-Length, before the body is read.
    let target = get_upload_url(&app, "/videos/get_upload_url", None).await;
    let boundary = "tessera-test-boundary";
    let mut head = String::new();
    for (name, value) in target["fields"].as_object().unwrap() {
        head.push_str(&format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{}\r\n",
            value.as_str().unwrap()
        ));
    }
    head.push_str(&format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.mp4\"\r\n\r\n"
    ));
    let tail = format!("\r\n--{boundary}--\r\n");
    let total = head.len() as u64 + 6 * 1024 * 1024 * 1024 + tail.len() as u64;
    let zeros = bytes::Bytes::from(vec![0u8; 1024 * 1024]);
    let chunks = std::iter::once(bytes::Bytes::from(head.into_bytes()))
        .chain((0..6 * 1024).map(move |_| zeros.clone()))
        .chain(std::iter::once(bytes::Bytes::from(tail.into_bytes())))
        .map(Ok::<_, std::io::Error>);
    let body = reqwest::Body::wrap_stream(futures_util::stream::iter(chunks));
    let sent = app
        .http
        .post(target["upload_url"].as_str().unwrap())
        .header(
            "Content-Type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .header("Content-Length", total)
        .body(body)
        .send()
        .await;
    refused(sent).await;

    // Streamed without a length: refused once the policy's limit is passed.
    let target = get_upload_url(&small, "/videos/get_upload_url", None).await;
    assert_eq!(target["max_file_size_bytes"], 32 * 1024 * 1024);
    let sent = small
        .http
        .post(target["upload_url"].as_str().unwrap())
        .multipart(form(
            &target["fields"],
            Part::stream(six_gigabytes()).file_name("big.mp4"),
        ))
        .send()
        .await;
    refused(sent).await;

    let grown_mib = rss_kib("VmHWM:").saturating_sub(before) / 1024;
    assert!(
        grown_mib < 150,
        "the server's memory grew by {grown_mib} MiB while refusing 6 GB uploads"
    );
    // Nothing of either attempt is left in the store.
    assert_eq!(stored_files(&app), Vec::<std::path::PathBuf>::new());
    assert_eq!(stored_files(&small), Vec::<std::path::PathBuf>::new());
    let (status, body) = finalize(&small, target["video_id"].as_str().unwrap()).await;
    assert_error(
        status,
        &body,
        StatusCode::BAD_REQUEST,
        "no file has been uploaded",
    );
    app.stop().await;
    small.stop().await;
}

/// A refused upload: a 400 naming the limit, or — when the server answered
/// and closed while the client was still sending — a broken connection.
async fn refused(sent: reqwest::Result<reqwest::Response>) {
    refused_because(sent, "larger than the policy allows").await
}

async fn refused_because(sent: reqwest::Result<reqwest::Response>, detail: &str) {
    match sent {
        Ok(r) => {
            let (status, body) = json_of(r).await;
            assert_error(status, &body, StatusCode::BAD_REQUEST, detail);
            assert!(body.to_string().len() < 1024, "a short answer");
        }
        Err(e) => assert!(
            e.is_request() || e.is_body() || e.is_connect(),
            "unexpected client error: {e:?}"
        ),
    }
}

#[tokio::test]
async fn abandoned_uploads_are_removed_after_the_retention_period() {
    // URLs valid 1 s; unfinalized uploads kept 1.8 s (0.0005 h).
    let app = TestApp::spawn_with(|l| {
        l.upload_url_seconds = Some(1);
        l.upload_retention_hours = Some(0.0005);
    })
    .await;
    let bikes = std::fs::read(fixtures_dir().join("bikes.mp4")).unwrap();
    let abandoned = upload(&app, bikes.clone(), "abandoned.mp4").await;
    let kept = upload(&app, bikes, "kept.mp4").await;
    let (status, body) = finalize(&app, &kept).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let never_sent = get_upload_url(&app, "/videos/get_upload_url", None).await;
    assert_eq!(stored_files(&app).len(), 2);
    // A stray beside the finalized file (as a form posted again straight to
    // a bucket leaves) goes too.
    let kept_file = stored_files(&app)
        .into_iter()
        .find(|f| f.to_string_lossy().contains(&kept))
        .unwrap();
    let stray = kept_file
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("video.mp4");
    std::fs::write(&stray, b"posted again").unwrap();

    let until = tokio::time::Instant::now() + Duration::from_secs(20);
    while count_rows(app.data_dir.path(), "uploads") > 1 {
        assert!(
            tokio::time::Instant::now() < until,
            "abandoned uploads were not removed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Not before the retention period has passed since the URL expired.
    let expired: chrono::DateTime<chrono::Utc> =
        never_sent["expires_at"].as_str().unwrap().parse().unwrap();
    assert!(chrono::Utc::now() >= expired + chrono::Duration::milliseconds(1800));
    let (status, body) = finalize(&app, &abandoned).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not found");
    let (status, body) = finalize(&app, never_sent["video_id"].as_str().unwrap()).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not found");
    // The finalized upload and its file stay.
    let (status, body) = finalize(&app, &kept).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "finalized");
    let until = tokio::time::Instant::now() + Duration::from_secs(20);
    while stray.exists() {
        assert!(
            tokio::time::Instant::now() < until,
            "the stray was not removed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(stored_files(&app), vec![kept_file]);
    app.stop().await;
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}

fn base64_encode(b: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(b)
}

/// The dashboard lists the user's uploads with their state; a finalized one
/// links to its file; names are escaped; another user's uploads stay hidden.
#[tokio::test]
async fn the_dashboard_lists_a_users_uploads_with_their_state() {
    use crate::dashboard::{Dash, second_user};

    let app = TestApp::spawn().await;
    let video = std::fs::read(fixtures_dir().join("bikes.mp4")).unwrap();
    let hostile = "<script>alert(1)</script>.mp4";
    // A name that would display reversed is refused.
    let (status, body) = app
        .post(
            "/videos/get_upload_url",
            &json!({"filename": "\u{202e}4pm.exe"}),
        )
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "text-direction");
    let done = upload(&app, video.clone(), hostile).await;
    let (status, body) = finalize(&app, &done).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let received = upload(&app, b"not finalized".to_vec(), "later.mp4").await;
    let waiting = get_upload_url(&app, "/uploads/video/get_upload_url", None).await;
    let waiting = waiting["video_id"].as_str().unwrap();
    // Asked without a name: the form's file name is shown.
    let unnamed = get_upload_url(&app, "/videos/get_upload_url", None).await;
    let url = unnamed["upload_url"].as_str().unwrap();
    let part = file_part(b"x".to_vec(), "named-by-the-form.mp4");
    let (status, body) = post_form(&app, url, form(&unnamed["fields"], part)).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");

    const OTHER_KEY: &str = "tsk_second_user_key_for_the_uploads_page_0000";
    second_user(&app, OTHER_KEY).await;
    let theirs = app
        .http
        .post(app.url("/videos/get_upload_url"))
        .header("x-api-key", OTHER_KEY)
        .send()
        .await
        .unwrap();
    let (status, theirs) = json_of(theirs).await;
    assert_eq!(status, StatusCode::OK, "{theirs}");
    let theirs = theirs["video_id"].as_str().unwrap();

    let mut dash = Dash::login(&app, API_KEY).await;
    let page = dash.get("/dashboard/uploads").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let html = &page.body;
    for id in [done.as_str(), received.as_str(), waiting] {
        assert!(html.contains(id), "upload {id} listed: {html}");
    }
    assert!(!html.contains(theirs), "another user's upload is hidden");
    assert!(!html.contains("<script>alert"), "the name is escaped");
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;.mp4"));
    assert!(
        html.contains("finalized") && html.contains("640×272"),
        "{html}"
    );
    assert!(html.contains("not finalized") && html.contains("waiting for the file"));
    assert!(html.contains("named-by-the-form.mp4"), "{html}");

    // The finalized upload links to a signed URL serving the uploaded bytes.
    let link = html
        .split("href=\"")
        .map(|s| s.split('"').next().unwrap().replace("&amp;", "&"))
        .find(|href| href.starts_with("/files/") && href.contains("signature="))
        .expect("a signed link to the finalized upload");
    let served = app.http.get(app.url(&link)).send().await.unwrap();
    assert_eq!(served.status(), StatusCode::OK);
    assert!(
        served.bytes().await.unwrap() == video,
        "the link serves the upload"
    );

    // A finalized upload starts a run from the dashboard (`triggered_by.source = "ui"`).
    assert!(
        html.contains(&format!("/dashboard/runs/new?video={done}")),
        "{html}"
    );
    let agent = app.create_agent(&trim_agent(0, 1_000, 160)).await;
    let form = dash.get(&format!("/dashboard/runs/new?video={done}")).await;
    assert!(form.body.contains(&done), "the form is filled in");
    let agent = agent.to_string();
    let started = dash
        .post(
            "/dashboard/runs",
            &[("agent_id", &agent), ("video_urls", &done)],
        )
        .await;
    assert_eq!(started.status, StatusCode::SEE_OTHER, "{}", started.body);
    let run_id = started.location().rsplit('/').next().unwrap().to_owned();
    let (status, run) = app.get(&format!("/agent_run/{run_id}")).await;
    assert_eq!(status, StatusCode::OK, "{run}");
    assert_eq!(run["triggered_by"]["source"], "ui");

    let other = Dash::login(&app, OTHER_KEY)
        .await
        .get("/dashboard/uploads")
        .await;
    assert!(other.body.contains(theirs) && !other.body.contains(&done));
}

/// A node without ffprobe cannot check uploads: 503 naming the tool, and the
/// upload stays as it was (finalizable once ffprobe is there).
#[tokio::test]
async fn finalizing_on_a_node_without_ffprobe_says_so() {
    let app = TestApp::spawn_with(|l| {
        l.ffprobe_path = Some("/nonexistent/tessera-test/ffprobe".into());
    })
    .await;
    let video = std::fs::read(fixtures_dir().join("bikes.mp4")).unwrap();
    let id = upload(&app, video, "bikes.mp4").await;
    let (status, body) = finalize(&app, &id).await;
    assert_error(status, &body, StatusCode::SERVICE_UNAVAILABLE, "ffprobe");
    assert_eq!(body["error"], "service_unavailable", "{body}");
    let kept = app.store().upload(id.parse().unwrap()).await.unwrap();
    assert_eq!(
        kept.map(|u| u.status),
        Some(tessera::store::UploadStatus::Uploaded)
    );
}

/// `head`, then `filler` bytes of `byte`, then `tail`, generated as sent.
fn padded_body(head: String, byte: u8, filler: usize, tail: String) -> reqwest::Body {
    const CHUNK: usize = 256 * 1024;
    let block = bytes::Bytes::from(vec![byte; CHUNK]);
    let chunks = std::iter::once(bytes::Bytes::from(head.into_bytes()))
        .chain((0..filler / CHUNK).map(move |_| block.clone()))
        .chain(std::iter::once(bytes::Bytes::from(tail.into_bytes())))
        .map(Ok::<_, std::io::Error>);
    reqwest::Body::wrap_stream(futures_util::stream::iter(chunks))
}

/// Forms that try to make the parser hold a lot outside the file (huge
/// names, header lines, preambles) are cut off at the form overhead, with
/// a short answer; the file must be the last and only file part.
#[tokio::test]
async fn hostile_forms_are_refused_without_being_held_in_memory() {
    let app = TestApp::spawn().await;
    let target = get_upload_url(&app, "/videos/get_upload_url", None).await;
    let url = target["upload_url"].as_str().unwrap();
    let boundary = "tessera-hostile";
    let content_type = format!("multipart/form-data; boundary={boundary}");
    let before = rss_kib("VmRSS:");
    const HUGE: usize = 200 * 1024 * 1024;
    let cases = [
        // A field name that never ends.
        (
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\""),
            format!("\"\r\n\r\nv\r\n--{boundary}--\r\n"),
        ),
        // A part header line that never ends.
        (
            format!("--{boundary}\r\nX-Padding: "),
            format!(
                "\r\nContent-Disposition: form-data; name=\"key\"\r\n\r\nv\r\n--{boundary}--\r\n"
            ),
        ),
        // A preamble before the first boundary.
        (String::new(), format!("\r\n--{boundary}--\r\n")),
    ];
    for (head, tail) in cases {
        let sent = app
            .http
            .post(url)
            .header("Content-Type", &content_type)
            .body(padded_body(head, b'B', HUGE, tail))
            .send()
            .await;
        refused_because(sent, "take more than 65536 bytes").await;
    }
    let grown_mib = rss_kib("VmHWM:").saturating_sub(before) / 1024;
    assert!(grown_mib < 64, "memory grew by {grown_mib} MiB");

    // Two file parts, or a field after the file: refused, nothing kept.
    let video = std::fs::read(fixtures_dir().join("bikes.mp4")).unwrap();
    let twice = form(&target["fields"], file_part(video.clone(), "a.mp4"))
        .part("file", file_part(b"second".to_vec(), "b.mp4"));
    let (status, body) = post_form(&app, url, twice).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "last part");
    let trailing = form(&target["fields"], file_part(video, "a.mp4")).text("note", "late");
    let (status, body) = post_form(&app, url, trailing).await;
    assert_error(
        status,
        &body,
        StatusCode::BAD_REQUEST,
        "\"note\" follows it",
    );
    assert_eq!(stored_files(&app), Vec::<std::path::PathBuf>::new());
    let (status, body) = finalize(&app, target["video_id"].as_str().unwrap()).await;
    assert_error(
        status,
        &body,
        StatusCode::BAD_REQUEST,
        "no file has been uploaded",
    );
    app.stop().await;
}

/// A form posted again while the upload is being finalized cannot replace
/// the file that was checked: finalize checks (and keeps) a moved copy.
#[tokio::test]
async fn a_file_posted_during_finalize_does_not_replace_the_checked_one() {
    let app = TestApp::spawn().await;
    let video = std::fs::read(fixtures_dir().join("bikes.mp4")).unwrap();
    let target = get_upload_url(&app, "/videos/get_upload_url", None).await;
    let url = target["upload_url"].as_str().unwrap().to_owned();
    let (status, body) = post_form(
        &app,
        &url,
        form(&target["fields"], file_part(video.clone(), "v.mp4")),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");

    // A second post starts streaming and stalls mid-file.
    let (tx, pending) = post_streaming(&app, &target, "v.mp4");
    tx.send(Ok(bytes::Bytes::from_static(b"NOT A VIDEO ")))
        .await
        .unwrap();

    let (status, body) = finalize(&app, target["video_id"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    tx.send(Ok(bytes::Bytes::from(vec![b'x'; 100_000])))
        .await
        .unwrap();
    drop(tx);
    let (status, body) = json_of(pending.await.unwrap().unwrap()).await;
    assert_error(status, &body, StatusCode::CONFLICT, "finalized");

    let upload = app
        .store()
        .upload(target["video_id"].as_str().unwrap().parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    let files = stored_files(&app);
    assert_eq!(files.len(), 1, "only the checked file is kept: {files:?}");
    assert!(files[0].ends_with(&upload.object_key), "{files:?}");
    assert!(
        std::fs::read(&files[0]).unwrap() == video,
        "the checked bytes"
    );
    app.stop().await;
}

/// Schedules take `video_ids` wherever they take `video_urls`: only
/// finalized uploads of the caller; each slot's run works on the upload.
#[tokio::test]
async fn schedules_run_agents_on_uploads() {
    let app = TestApp::spawn().await;
    let agent = app.create_agent(&trim_agent(0, 1_000, 160)).await;
    let path = format!("/agent/{agent}/triggers/add_schedule");
    let video = std::fs::read(fixtures_dir().join("bikes.mp4")).unwrap();
    let done = upload(&app, video.clone(), "bikes.mp4").await;
    let (status, body) = finalize(&app, &done).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let unfinalized = upload(&app, b"later".to_vec(), "later.mp4").await;

    let every_second = "* * * * * *";
    let (status, body) = app
        .post(
            &path,
            &json!({"cron_expression": every_second, "video_ids": [unfinalized]}),
        )
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "not finalized");
    let unknown = uuid::Uuid::now_v7().to_string();
    let (status, body) = app
        .post(
            &path,
            &json!({"cron_expression": every_second, "video_ids": [unknown]}),
        )
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "video_ids[0]");
    let (status, body) = app
        .post(&path, &json!({"cron_expression": every_second}))
        .await;
    assert_error(
        status,
        &body,
        StatusCode::BAD_REQUEST,
        "give 1 to 50 videos",
    );
    let (_, listed) = app.get(&format!("/agent/{agent}/triggers")).await;
    assert_eq!(listed, json!([]), "refused schedules are not kept");

    let (status, added) = app
        .post(
            &path,
            &json!({"cron_expression": every_second, "video_ids": [done]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{added}");
    let schedule = added["schedule_id"].as_str().unwrap();
    let (_, listed) = app.get(&format!("/agent/{agent}/triggers")).await;
    assert_eq!(listed[0]["video_ids"], json!([done]));
    assert_eq!(listed[0]["video_urls"], json!([]));

    let until = tokio::time::Instant::now() + Duration::from_secs(30);
    let run = loop {
        let (_, runs) = app.get(&format!("/trigger/{schedule}/runs")).await;
        let finished = runs["runs"].as_array().and_then(|runs| {
            runs.iter()
                .find(|r| r["status"] == "completed" || r["status"] == "failed")
                .cloned()
        });
        if let Some(run) = finished {
            break run;
        }
        assert!(
            tokio::time::Instant::now() < until,
            "no scheduled run finished"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let id = run["run_id"].as_str().unwrap();
    let (_, run) = app.get(&format!("/agent_run/{id}")).await;
    assert_eq!(run["status"], "completed", "{run}");
    assert_eq!(run["triggered_by"]["type"], "schedule");
    let input = run["inputs"][0]["video_url"].as_str().unwrap();
    let served = app.http.get(input).send().await.unwrap();
    assert!(
        served.bytes().await.unwrap() == video,
        "the run's input is the upload"
    );
    app.stop().await;
}

/// A form refused after its file arrived (a part after the file, a body that
/// breaks off) leaves the file accepted before it as it was.
#[tokio::test]
async fn a_refused_form_leaves_the_accepted_file_alone() {
    let app = TestApp::spawn().await;
    let video = std::fs::read(fixtures_dir().join("bikes.mp4")).unwrap();
    let target = get_upload_url(&app, "/videos/get_upload_url", None).await;
    let url = target["upload_url"].as_str().unwrap();
    let (status, body) = post_form(
        &app,
        url,
        form(&target["fields"], file_part(video.clone(), "v.mp4")),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let trailing = form(&target["fields"], file_part(b"other".to_vec(), "o.mp4")).text("late", "x");
    let (status, body) = post_form(&app, url, trailing).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "last part");

    let (status, body) = finalize(&app, target["video_id"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["size_bytes"], video.len() as u64);
    let files = stored_files(&app);
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(std::fs::read(&files[0]).unwrap() == video);
    app.stop().await;
}

/// One finalize call at a time: another call, or a file posted meanwhile,
/// is a 409 while the first checks the file.
#[tokio::test]
async fn finalize_holds_the_upload_while_it_checks_the_file() {
    let gate = tempfile::tempdir().unwrap();
    let script = gate.path().join("ffprobe");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\ncase \"$*\" in *-version*) exec ffprobe \"$@\";; esac\ntouch '{dir}/started'\nwhile [ ! -e '{dir}/release' ]; do sleep 0.05; done\nexec ffprobe \"$@\"\n",
            dir = gate.path().display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let app =
        std::sync::Arc::new(TestApp::spawn_with(|l| l.ffprobe_path = Some(script.clone())).await);
    let video = std::fs::read(fixtures_dir().join("bikes.mp4")).unwrap();
    let target = get_upload_url(&app, "/videos/get_upload_url", None).await;
    let id = target["video_id"].as_str().unwrap().to_owned();
    let (status, body) = post_form(
        &app,
        target["upload_url"].as_str().unwrap(),
        form(&target["fields"], file_part(video.clone(), "v.mp4")),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");

    let first = tokio::spawn({
        let (app, id) = (app.clone(), id.clone());
        async move { finalize(&app, &id).await }
    });
    let until = tokio::time::Instant::now() + Duration::from_secs(20);
    while !gate.path().join("started").exists() {
        assert!(
            tokio::time::Instant::now() < until,
            "the probe never started"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (status, body) = finalize(&app, &id).await;
    assert_error(
        status,
        &body,
        StatusCode::CONFLICT,
        "another finalize_upload call",
    );
    let (status, body) = post_form(
        &app,
        target["upload_url"].as_str().unwrap(),
        form(&target["fields"], file_part(b"late".to_vec(), "late.mp4")),
    )
    .await;
    assert_error(status, &body, StatusCode::CONFLICT, "being finalized");

    std::fs::write(gate.path().join("release"), b"").unwrap();
    let (status, body) = first.await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["size_bytes"], video.len() as u64);
    let files = stored_files(&app);
    assert_eq!(files.len(), 1, "the late file was not kept: {files:?}");
}

/// A node receives at most `upload_concurrency` uploads at once; the next
/// one is told to come back (503), not queued behind a slow sender.
#[tokio::test]
async fn uploads_beyond_the_nodes_concurrency_are_turned_away() {
    let app = TestApp::spawn_with(|l| l.upload_concurrency = Some(1)).await;
    let target = get_upload_url(&app, "/videos/get_upload_url", None).await;
    let url = target["upload_url"].as_str().unwrap().to_owned();
    let (tx, held) = post_streaming(&app, &target, "slow.mp4");
    tx.send(Ok(bytes::Bytes::from_static(b"first bytes")))
        .await
        .unwrap();

    // Once the slow upload holds the node's one slot, others get a 503.
    let until = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (status, body) = json_of(app.http.post(&url).body("x").send().await.unwrap()).await;
        if status == StatusCode::SERVICE_UNAVAILABLE {
            assert!(
                body["detail"].as_str().unwrap().contains("uploads already"),
                "{body}"
            );
            break;
        }
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert!(
            tokio::time::Instant::now() < until,
            "the slow upload never held the slot"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(tx);
    let (status, body) = json_of(held.await.unwrap().unwrap()).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    // The slot is free again.
    let (status, _) = json_of(app.http.post(&url).body("x").send().await.unwrap()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}
