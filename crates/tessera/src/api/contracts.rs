//! The API's contracts as files: the OpenAPI document and TypeScript
//! definitions generated from it. Both are committed under `contracts/` (a
//! test keeps them in step with the code) and served at `/openapi.json` and
//! `/openapi/tessera.d.ts`.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::Context as _;
use axum::http::header;
use axum::response::IntoResponse;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;

/// File name of the OpenAPI document.
pub const OPENAPI_FILE: &str = "openapi.json";
/// File name of the TypeScript definitions.
pub const TYPESCRIPT_FILE: &str = "tessera.d.ts";

/// Where the TypeScript definitions are served.
pub const TYPESCRIPT_PATH: &str = "/openapi/tessera.d.ts";

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(openapi))
        .routes(routes!(typescript_definitions))
        .routes(routes!(webhook_type_definitions))
}

/// This document: the OpenAPI 3.1 description of the whole API.
#[utoipa::path(get, path = "/openapi.json", tag = "operations", security(()),
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json", body = Object)))]
async fn openapi() -> impl IntoResponse {
    static DOC: OnceLock<String> = OnceLock::new();
    (
        [(header::CONTENT_TYPE, "application/json")],
        DOC.get_or_init(openapi_json).as_str(),
    )
}

/// TypeScript definitions of every schema in this document: the webhook
/// payloads (`WebhookPayload`, `RunStartedWebhook`, …, `TriggerInfo`) and
/// the API's request and response bodies.
#[utoipa::path(get, path = "/openapi/tessera.d.ts", tag = "operations", security(()),
    responses((status = 200, description = "TypeScript definitions", content_type = "application/typescript", body = String)))]
async fn typescript_definitions() -> impl IntoResponse {
    static TS: OnceLock<String> = OnceLock::new();
    (
        [(
            header::CONTENT_TYPE,
            "application/typescript; charset=utf-8",
        )],
        TS.get_or_init(typescript).as_str(),
    )
}

/// The same definitions at the path PRODUCT.md names for the webhook types.
#[utoipa::path(get, path = "/types/webhooks.d.ts", tag = "operations", security(()),
    responses((status = 200, description = "TypeScript definitions (the same file as /openapi/tessera.d.ts)", content_type = "application/typescript", body = String)))]
async fn webhook_type_definitions() -> impl IntoResponse {
    typescript_definitions().await
}

/// The OpenAPI document as pretty JSON with a trailing newline.
pub fn openapi_json() -> String {
    let mut json = super::openapi_document()
        .to_pretty_json()
        .expect("the OpenAPI document serialises");
    json.push('\n');
    json
}

/// The TypeScript definitions of every schema in the OpenAPI document.
pub fn typescript() -> String {
    let value: serde_json::Value =
        serde_json::from_str(&openapi_json()).expect("the OpenAPI document is JSON");
    super::typescript::generate(&value)
}

/// Writes both files into `dir` (created if missing); returns their paths.
pub fn write(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut written = Vec::new();
    for (name, text) in [
        (OPENAPI_FILE, openapi_json()),
        (TYPESCRIPT_FILE, typescript()),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}
