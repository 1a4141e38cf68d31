//! Objects in an S3-compatible bucket: a local S3 server (moto, started by
//! scripts/s3.sh in the PostgreSQL pass of `make test`) that Tessera talks
//! to over HTTP with signed requests, as it would to AWS. Webhooks and the
//! API hand out presigned URLs to the bucket; the dashboard keeps its own
//! `/files` URLs, served from the bucket.

use std::collections::HashMap;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use tessera::config::Config;

use crate::dashboard::Dash;
use crate::support::{
    API_KEY, FileServer, Receiver, TestApp, duration, ffprobe, fixtures_dir, s3_location,
    test_layer, trim_agent,
};

const RUN_DEADLINE: Duration = Duration::from_secs(120);

fn endpoint() -> String {
    std::env::var("AWS_ENDPOINT_URL")
        .expect("AWS_ENDPOINT_URL is set beside TESSERA_TEST_S3_BUCKET")
}

/// The query of a URL as a map.
fn query(url: &str) -> HashMap<String, String> {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}

/// A presigned GET to `location`'s bucket and prefix, valid for an hour.
fn assert_presigned(url: &str, base: &str) {
    assert!(url.starts_with(base), "{url} is not under {base}");
    let q = query(url);
    assert_eq!(q["X-Amz-Algorithm"], "AWS4-HMAC-SHA256", "{url}");
    assert_eq!(q["X-Amz-Expires"], "3600", "{url}");
    assert!(q["X-Amz-Credential"].ends_with("/s3/aws4_request"), "{url}");
    assert_eq!(q["X-Amz-Signature"].len(), 64, "{url}");
}

/// Whether a presigned GET URL carries the SigV4 signature that S3 would
/// compute for it with the test credentials (AWS's "Authenticating
/// Requests: Using Query Parameters", unsigned payload, `host` signed).
fn sigv4_valid(url: &str) -> bool {
    use hmac::{Hmac, Mac};
    use sha2::{Digest, Sha256};
    fn hmac(key: &[u8], data: &str) -> Vec<u8> {
        let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
        mac.update(data.as_bytes());
        mac.finalize().into_bytes().to_vec()
    }
    fn encode(s: &str) -> String {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect()
    }
    let url = url::Url::parse(url).unwrap();
    let q = query(url.as_str());
    let mut params: Vec<(String, String)> = url
        .query_pairs()
        .into_owned()
        .filter(|(k, _)| k != "X-Amz-Signature")
        .map(|(k, v)| (encode(&k), encode(&v)))
        .collect();
    params.sort();
    let canonical_query = params
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    let host = match url.port() {
        Some(port) => format!("{}:{port}", url.host_str().unwrap()),
        None => url.host_str().unwrap().to_owned(),
    };
    let canonical_request = format!(
        "GET\n{}\n{canonical_query}\nhost:{host}\n\nhost\nUNSIGNED-PAYLOAD",
        url.path()
    );
    let scope = q["X-Amz-Credential"].split_once('/').unwrap().1.to_owned();
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{}\n{scope}\n{}",
        q["X-Amz-Date"],
        hex::encode(Sha256::digest(canonical_request.as_bytes()))
    );
    let secret = std::env::var("AWS_SECRET_ACCESS_KEY").unwrap();
    let mut key = format!("AWS4{secret}").into_bytes();
    for part in scope.split('/') {
        key = hmac(&key, part);
    }
    hex::encode(hmac(&key, &string_to_sign)) == q["X-Amz-Signature"]
}

#[tokio::test]
async fn a_run_on_s3_hands_out_presigned_urls_that_download_the_right_bytes() {
    let Some(location) = s3_location() else {
        eprintln!("skipped: needs TESSERA_TEST_S3_BUCKET (the PostgreSQL pass)");
        return;
    };
    let base = format!(
        "{}/{}/",
        endpoint().trim_end_matches('/'),
        location.trim_start_matches("s3://")
    );
    let app = TestApp::spawn_with(|l| l.object_store = Some(location.clone())).await;
    let files = FileServer::start().await;
    let receiver = Receiver::start().await;
    let agent = app.create_agent(&trim_agent(1000, 3000, 320)).await;
    let (status, started) = app
        .post(
            &format!("/agent/{agent}/run"),
            &json!({"video_urls": [files.url("/videos/bigbuckbunny.mp4")], "callback_url": receiver.url("/hook")}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{started}");
    let run_id = started["run_id"].as_str().unwrap().to_owned();
    let hooks: Vec<Value> = receiver
        .wait_for(2, RUN_DEADLINE)
        .await
        .iter()
        .map(|r| r.json())
        .collect();
    assert_eq!(hooks[1]["flag"], "RUN_FINISHED");
    assert_eq!(hooks[1]["status"], "completed", "{}", hooks[1]);

    // Every URL in the payloads is a presigned URL into the bucket.
    let finished = &hooks[1];
    let urls = [
        &finished["inputs"][0]["video_url"],
        &finished["inputs"][0]["thumbnail_url"],
        &finished["outputs"][0]["video_url"],
        &finished["outputs"][0]["thumbnail_url"],
        &hooks[0]["inputs"][0]["video_url"],
    ];
    for url in urls {
        assert_presigned(url.as_str().unwrap(), &base);
    }

    // The input downloads from the bucket as the bytes that were served.
    let http = &app.http;
    let input_url = finished["inputs"][0]["video_url"].as_str().unwrap();
    let input = http.get(input_url).send().await.unwrap();
    assert_eq!(input.status(), StatusCode::OK);
    let original = std::fs::read(fixtures_dir().join("bigbuckbunny.mp4")).unwrap();
    assert_eq!(input.bytes().await.unwrap().as_ref(), &original[..]);

    // The output is the trimmed video; a player can seek in it.
    let output_url = finished["outputs"][0]["video_url"].as_str().unwrap();
    let output = http.get(output_url).send().await.unwrap();
    assert_eq!(output.status(), StatusCode::OK);
    // Stored with its media type, so a browser plays it.
    assert_eq!(output.headers()["content-type"], "video/mp4");
    let output = output.bytes().await.unwrap();
    let path = app.data_dir.path().join("from-s3.mp4");
    std::fs::write(&path, &output).unwrap();
    let duration = duration(&ffprobe(&path));
    assert!(
        (duration - 2.0).abs() < 0.15,
        "trimmed to 2 s, got {duration}"
    );
    let ranged = http
        .get(output_url)
        .header("Range", "bytes=0-99")
        .send()
        .await
        .unwrap();
    assert_eq!(ranged.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(ranged.bytes().await.unwrap().as_ref(), &output[..100]);
    let thumbnail = http
        .get(finished["outputs"][0]["thumbnail_url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(&thumbnail.bytes().await.unwrap()[..3], &[0xFF, 0xD8, 0xFF]);

    // The signatures are what AWS computes for these credentials (moto
    // does not check them, so the test does), and cover the object's path.
    for url in urls {
        assert!(sigv4_valid(url.as_str().unwrap()), "{url}");
    }
    assert!(!sigv4_valid(&output_url.replace("/outputs/", "/inputs/")));
    let unsigned = output_url.split('?').next().unwrap();

    // The API presigns too, with the same keys.
    let run = app.wait_for_run(&run_id, RUN_DEADLINE).await;
    let api_output = run["outputs"][0]["video_url"].as_str().unwrap();
    assert_presigned(api_output, &base);
    assert_eq!(api_output.split('?').next(), Some(unsigned));
    let (_, nodes) = app.get(&format!("/agent_run/{run_id}/nodes")).await;
    let node_output = nodes["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|n| n["outputs"].as_array().filter(|o| !o.is_empty()))
        .expect("a node with an output")[0]["video_url"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_presigned(&node_output, &base);

    // The dashboard's player and thumbnails stay on Tessera's own origin
    // (its Content-Security-Policy allows nothing else) and stream from
    // the bucket.
    let mut dash = Dash::login(&app, API_KEY).await;
    let page = dash.get(&format!("/dashboard/runs/{run_id}")).await;
    assert_eq!(page.status, StatusCode::OK);
    let files_url = page
        .body
        .split('"')
        .find(|s| s.starts_with("/files/") && s.contains("/outputs/") && s.contains(".mp4"))
        .unwrap_or_else(|| panic!("a /files URL to the output in {}", page.body))
        .replace("&amp;", "&");
    let via_tessera = http.get(app.url(&files_url)).send().await.unwrap();
    assert_eq!(via_tessera.status(), StatusCode::OK, "{files_url}");
    assert_eq!(via_tessera.bytes().await.unwrap(), output);
    app.stop().await;
}

#[tokio::test]
async fn presigned_urls_can_point_at_a_public_endpoint() {
    let Some(location) = s3_location() else {
        eprintln!("skipped: needs TESSERA_TEST_S3_BUCKET (the PostgreSQL pass)");
        return;
    };
    // The same server under another name, as receivers outside a private
    // network would reach it.
    let public = endpoint().replace("127.0.0.1", "localhost");
    let app = TestApp::spawn_with(|l| {
        l.object_store = Some(location.clone());
        l.s3_public_endpoint = Some(public.clone());
    })
    .await;
    let files = FileServer::start().await;
    let agent = app.create_agent(&trim_agent(0, 500, 160)).await;
    let (_, started) = app
        .post(
            &format!("/agent/{agent}/run"),
            &json!({"video_urls": [files.url("/videos/bigbuckbunny.mp4")]}),
        )
        .await;
    let run = app
        .wait_for_run(started["run_id"].as_str().unwrap(), RUN_DEADLINE)
        .await;
    assert_eq!(run["status"], "completed", "{run}");
    let url = run["outputs"][0]["video_url"].as_str().unwrap();
    assert_presigned(
        url,
        &format!("{public}/{}/", location.trim_start_matches("s3://")),
    );
    let response = app.http.get(url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    app.stop().await;
}

#[tokio::test]
async fn a_bucket_that_does_not_answer_stops_the_start_with_a_clear_error() {
    if s3_location().is_none() {
        eprintln!("skipped: needs TESSERA_TEST_S3_BUCKET (the PostgreSQL pass)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut layer = test_layer(dir.path());
    layer.object_store = Some("s3://no-such-bucket-here/x".into());
    let config = Config::resolve(layer, None).unwrap();
    let error = match tessera::app::start(config).await {
        Ok(_) => panic!("started on a missing bucket"),
        Err(e) => format!("{e:#}"),
    };
    assert!(error.contains("s3://no-such-bucket-here/x"), "{error}");
    assert!(!error.contains("AWS_SECRET"), "{error}");
    let secret = std::env::var("AWS_SECRET_ACCESS_KEY").unwrap();
    assert!(!error.contains(&secret), "the secret leaked: {error}");
}

/// With S3 storage the upload URL is the bucket itself: a presigned S3 POST
/// policy (SigV4), so a hosted-service client's form post goes straight to
/// the bucket; finalize and runs then read the object from there.
#[tokio::test]
async fn with_s3_uploads_go_straight_to_the_bucket_through_a_presigned_post_policy() {
    use base64::Engine as _;
    use hmac::{Hmac, Mac};
    let Some(location) = s3_location() else {
        eprintln!("skipped: needs TESSERA_TEST_S3_BUCKET (the PostgreSQL pass)");
        return;
    };
    let bucket_path = location.trim_start_matches("s3://");
    let (bucket, prefix) = bucket_path.split_once('/').unwrap();
    let app = TestApp::spawn_with(|l| l.object_store = Some(location.clone())).await;
    let receiver = Receiver::start().await;
    let agent = app.create_agent(&trim_agent(0, 1000, 160)).await;
    let video = std::fs::read(fixtures_dir().join("bigbuckbunny.mp4")).unwrap();

    let (status, target) = app
        .post("/videos/get_upload_url", &json!({"filename": "bunny.mp4"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{target}");
    let upload_url = target["upload_url"].as_str().unwrap();
    assert_eq!(
        upload_url.trim_end_matches('/'),
        format!("{}/{bucket}", endpoint().trim_end_matches('/'))
    );
    let fields = target["fields"].as_object().unwrap();
    let field = |name: &str| fields[name].as_str().unwrap().to_owned();
    assert!(
        field("key").starts_with(&format!("{prefix}/uploads/")),
        "{target}"
    );
    assert_eq!(field("x-amz-algorithm"), "AWS4-HMAC-SHA256");
    // The policy allows exactly this key, this bucket and at most 5 GB, and
    // is signed with the key SigV4 derives from the secret.
    let policy: Value = serde_json::from_slice(
        &base64::engine::general_purpose::STANDARD
            .decode(field("policy"))
            .unwrap(),
    )
    .unwrap();
    let conditions = policy["conditions"].as_array().unwrap();
    assert!(conditions.contains(&json!({"bucket": bucket})), "{policy}");
    assert!(
        conditions.contains(&json!({"key": field("key")})),
        "{policy}"
    );
    assert!(
        conditions.contains(&json!(["content-length-range", 0, 5_000_000_000u64])),
        "{policy}"
    );
    let scope = field("x-amz-credential");
    assert!(scope.starts_with("tessera-test-key/"), "{scope}");
    let secret = std::env::var("AWS_SECRET_ACCESS_KEY").unwrap();
    let mut key = format!("AWS4{secret}").into_bytes();
    for part in scope.split('/').skip(1) {
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
        mac.update(part.as_bytes());
        key = mac.finalize().into_bytes().to_vec();
    }
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
    mac.update(field("policy").as_bytes());
    assert_eq!(
        hex::encode(mac.finalize().into_bytes()),
        field("x-amz-signature")
    );

    // The client posts the form to the bucket, then finalizes.
    let post_form = |bytes: Vec<u8>| {
        let mut form = reqwest::multipart::Form::new();
        for (name, value) in fields {
            form = form.text(name.clone(), value.as_str().unwrap().to_owned());
        }
        let form = form.part(
            "file",
            reqwest::multipart::Part::bytes(bytes).file_name("bunny.mp4"),
        );
        app.http.post(upload_url).multipart(form).send()
    };
    let posted = post_form(video.clone()).await.unwrap();
    assert!(posted.status().is_success(), "{:?}", posted.text().await);
    let video_id = target["video_id"].as_str().unwrap();
    let (status, finalized) = app
        .post(
            "/uploads/video/finalize_upload",
            &json!({"video_id": video_id}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{finalized}");
    assert_eq!(finalized["size_bytes"], video.len() as u64);
    // The bucket still takes the form while its URL is valid, but what was
    // checked is not what the form writes: the run below gets the video.
    let posted = post_form(b"not a video, posted after finalizing".to_vec())
        .await
        .unwrap();
    assert!(posted.status().is_success(), "{:?}", posted.text().await);

    let (status, started) = app
        .post(
            &format!("/agent/{agent}/run"),
            &json!({"video_ids": [video_id], "callback_url": receiver.url("/hook")}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{started}");
    let finished = receiver
        .wait_for(2, RUN_DEADLINE)
        .await
        .iter()
        .map(|r| r.json())
        .find(|h| h["flag"] == "RUN_FINISHED")
        .unwrap();
    assert_eq!(finished["status"], "completed", "{finished}");
    let input_url = finished["inputs"][0]["video_url"].as_str().unwrap();
    assert!(sigv4_valid(input_url), "{input_url}");
    let downloaded = app.http.get(input_url).send().await.unwrap();
    assert_eq!(downloaded.status(), StatusCode::OK);
    assert_eq!(
        downloaded.headers()["content-type"],
        "video/mp4",
        "an upload plays like a downloaded input"
    );
    assert!(
        downloaded.bytes().await.unwrap() == video,
        "the uploaded bytes"
    );
    app.stop().await;
}
