//! The contracts integrators build on: the OpenAPI document and TypeScript
//! definitions (committed, served, and in step with the code), real payloads
//! that type-check with `tsc --strict`, and the receiver crate verifying real
//! deliveries. Set `TESSERA_UPDATE_CONTRACTS=1` to rewrite `contracts/` after
//! an intended API change.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use tessera::api::contracts;
use tessera_webhook::{Verifier, VerifyError, mosaic_signature_matches};

use crate::support::{FileServer, Received, Receiver, TestApp, trim_agent};

const DEADLINE: Duration = Duration::from_secs(60);

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[tokio::test]
async fn the_committed_and_served_contracts_match_the_code() {
    let dir = repo_root().join("contracts");
    let generated = [
        (contracts::OPENAPI_FILE, contracts::openapi_json()),
        (contracts::TYPESCRIPT_FILE, contracts::typescript()),
    ];
    if std::env::var_os("TESSERA_UPDATE_CONTRACTS").is_some() {
        contracts::write(&dir).expect("contracts written");
    }
    for (name, text) in &generated {
        let committed = std::fs::read_to_string(dir.join(name)).unwrap_or_default();
        assert!(
            committed == *text,
            "contracts/{name} is out of date: run `make contracts` (or \
             TESSERA_UPDATE_CONTRACTS=1 cargo nextest run contracts) and commit it"
        );
    }

    let app = TestApp::spawn().await;
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    for (path, name, text) in [
        ("/openapi.json", "json", &generated[0].1),
        (contracts::TYPESCRIPT_PATH, "typescript", &generated[1].1),
        ("/types/webhooks.d.ts", "typescript", &generated[1].1),
    ] {
        // No API key needed: the contracts are public.
        let response = http.get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let content_type = response.headers()["content-type"].to_str().unwrap();
        assert!(content_type.contains(name), "{path}: {content_type}");
        assert_eq!(&response.text().await.unwrap(), text, "{path}");
    }
    app.stop().await;
}

#[test]
fn the_document_describes_auth_errors_and_the_seed_types() {
    let doc: Value = serde_json::from_str(&contracts::openapi_json()).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["bearer"]["scheme"], "bearer");
    assert_eq!(schemes["api_key"]["name"], "X-API-Key");
    let schemas = &doc["components"]["schemas"];
    for name in [
        "WebhookPayload",
        "RunStartedWebhook",
        "RunFinishedWebhook",
        "TestWebhook",
        "VideoInput",
        "VideoOutput",
        "TriggerInfo",
        "YouTubeTriggerInfo",
        "ScheduleTriggerInfo",
        "ManualTriggerInfo",
        "ErrorBody",
    ] {
        assert!(schemas.get(name).is_some(), "{name} is not in the document");
    }
    // Every operation that needs a key says so and documents its errors, and
    // operation ids are unique (client generators name methods after them).
    let mut operations = 0;
    let mut ids = std::collections::HashSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            operations += 1;
            let id = op["operationId"].as_str().unwrap_or_default().to_owned();
            assert!(ids.insert(id.clone()), "operationId {id:?} is used twice");
            assert!(
                op["responses"].get("5XX").is_some(),
                "{method} {path} does not document server errors"
            );
            let public = op.get("security") == Some(&json!([{}]));
            if public {
                continue;
            }
            let errors = &op["responses"]["4XX"]["content"]["application/json"]["schema"];
            assert_eq!(
                errors["$ref"], "#/components/schemas/ErrorBody",
                "{method} {path} does not document its errors"
            );
        }
    }
    assert!(operations >= 34, "{operations} operations");
}

/// What a run and a test send to a receiver: RUN_STARTED and RUN_FINISHED of
/// a run with one good and one missing input, and a TEST.
struct Captured {
    deliveries: Vec<Received>,
    signing_key: String,
    secret: String,
}

async fn capture(app: &TestApp) -> Captured {
    let files = FileServer::start().await;
    let hook = Receiver::start().await;
    let secret = "contract-secret-0123456789";
    let (status, _) = app
        .put("/webhook_secret", &json!({ "secret": secret }))
        .await;
    assert_eq!(status, StatusCode::OK);
    let agent = app.create_agent(&trim_agent(0, 1000, 160)).await;
    let (status, run) = app
        .post(
            &format!("/agent/{agent}/run"),
            &json!({
                "video_urls": [files.url("/videos/bigbuckbunny.mp4"), files.url("/videos/missing.mp4")],
                "callback_url": hook.url("/run"),
            }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{run}");
    app.wait_for_run(run["run_id"].as_str().unwrap(), DEADLINE)
        .await;
    hook.wait_for(2, DEADLINE).await;
    let (status, test) = app
        .post(
            "/webhooks/test",
            &json!({ "callback_url": hook.url("/test") }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{test}");
    let deliveries = hook.wait_for(3, DEADLINE).await;
    let (_, key) = app.get("/webhook_signing_key").await;
    Captured {
        deliveries,
        signing_key: key["key"].as_str().unwrap().to_owned(),
        secret: secret.to_owned(),
    }
}

#[tokio::test]
async fn real_payloads_type_check_with_tsc_and_the_receiver_crate_verifies_them() {
    let app = TestApp::spawn().await;
    let captured = capture(&app).await;
    app.stop().await;
    let flags: Vec<String> = captured
        .deliveries
        .iter()
        .map(|d| d.json()["flag"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(flags, ["RUN_STARTED", "RUN_FINISHED", "TEST"]);
    let finished = captured.deliveries[1].json();
    assert_eq!(finished["status"], "partial_complete", "{finished}");

    verify_with_the_receiver_crate(&captured);
    type_check(&captured.deliveries);
}

fn verify_with_the_receiver_crate(captured: &Captured) {
    let verifier = Verifier::new(&captured.signing_key).expect("the served key parses");
    for d in &captured.deliveries {
        let header = |name: &str| d.header(name);
        let payload = verifier
            .verify_and_parse(header, &d.body)
            .unwrap_or_else(|e| panic!("a real delivery does not verify: {e}"));
        assert_eq!(payload.flag(), d.json()["flag"].as_str().unwrap());
        let mosaic = d.header("x-mosaic-signature").expect("X-Mosaic-Signature");
        assert!(mosaic_signature_matches(&captured.secret, mosaic));
        assert!(!mosaic_signature_matches(
            "another-secret-0123456789",
            mosaic
        ));

        // A body changed by one byte.
        let mut tampered = d.body.to_vec();
        let at = tampered.iter().position(|b| *b == b'"').unwrap();
        tampered.insert(at, b' ');
        assert!(matches!(
            verifier.verify(header, &tampered),
            Err(VerifyError::NoMatch)
        ));
        // Another key.
        let stranger = Verifier::new(
            &tessera_webhook::SigningKey::from_bytes(vec![7; 32])
                .unwrap()
                .as_whsec(),
        )
        .unwrap();
        assert!(matches!(
            stranger.verify(header, &d.body),
            Err(VerifyError::NoMatch)
        ));
        // Replayed ten minutes later.
        let sent_at: i64 = d.header("webhook-timestamp").unwrap().parse().unwrap();
        assert!(matches!(
            verifier.verify_at(header, &d.body, sent_at + 600),
            Err(VerifyError::TimestampTooOld)
        ));
    }
}

/// `tsc`, installed by scripts/test-deps.sh (or `TESSERA_TSC`).
fn tsc() -> PathBuf {
    if let Some(path) = std::env::var_os("TESSERA_TSC") {
        return path.into();
    }
    let path = repo_root().join("target/test-tools/node_modules/.bin/tsc");
    assert!(
        path.exists(),
        "TypeScript is missing: run scripts/test-deps.sh (or set TESSERA_TSC)"
    );
    path
}

fn run_tsc(dir: &Path, file: &str) -> (bool, String) {
    let out = Command::new(tsc())
        .current_dir(dir)
        .args([
            "--strict", "--noEmit", "--target", "es2020", "--module", "es2020",
        ])
        .arg(file)
        .output()
        .expect("tsc runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn type_check(deliveries: &[Received]) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("tessera.d.ts"), contracts::typescript()).unwrap();
    let [started, finished, test] = [0, 1, 2].map(|i| deliveries[i].json());
    let good = format!(
        "import type {{ WebhookPayload, RunStartedWebhook, RunFinishedWebhook, TestWebhook, \
         TriggerInfo, VideoInput, VideoOutput }} from \"./tessera\";\n\
         const started: RunStartedWebhook = {started};\n\
         const finished: RunFinishedWebhook = {finished};\n\
         const test: TestWebhook = {test};\n\
         const all: WebhookPayload[] = [started, finished, test];\n\
         const inputs: VideoInput[] = finished.inputs;\n\
         const outputs: VideoOutput[] = finished.outputs;\n\
         const trigger: TriggerInfo | undefined = started.triggered_by;\n\
         // The union narrows on `flag`, as receivers written for the seed do.\n\
         export function describe(p: WebhookPayload): string {{\n\
           switch (p.flag) {{\n\
             case \"RUN_STARTED\": return p.run_id;\n\
             case \"RUN_FINISHED\": return p.status;\n\
             case \"TEST\": return p.message;\n\
           }}\n\
         }}\n\
         export {{ all, inputs, outputs, trigger }};\n"
    );
    std::fs::write(dir.path().join("good.ts"), &good).unwrap();
    let (ok, out) = run_tsc(dir.path(), "good.ts");
    assert!(ok, "real payloads do not type-check:\n{out}\n{good}");

    let mut wrong = finished.clone();
    wrong["status"] = json!("exploded");
    let bad = format!(
        "import type {{ RunFinishedWebhook }} from \"./tessera\";\n\
         export const finished: RunFinishedWebhook = {wrong};\n"
    );
    std::fs::write(dir.path().join("bad.ts"), bad).unwrap();
    let (ok, out) = run_tsc(dir.path(), "bad.ts");
    assert!(!ok, "a wrong enum value type-checks");
    assert!(out.contains("exploded"), "{out}");
}
