//! `/healthz` (the process is up), `/readyz` (database and ffmpeg usable),
//! `/metrics` (Prometheus) and `/whoami`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use super::auth::Auth;
use super::{AppState, iso};

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/healthz",
            get(|| async { Json(json!({ "status": "ok" })) }),
        )
        .route("/readyz", get(readyz))
        .route("/whoami", get(whoami))
        .route("/metrics", get(metrics))
}

async fn readyz(State(state): State<AppState>) -> Response {
    let mut problems = Vec::new();
    if let Err(e) = state.store.ready().await {
        tracing::warn!(error = %e, "readiness: database");
        problems.push("database unreachable or migrations not applied");
    }
    if let Some(media) = &state.media
        && let Err(e) = media.check_available().await
    {
        tracing::warn!(error = %e, "readiness: ffmpeg");
        problems.push("ffmpeg/ffprobe not available");
    }
    if problems.is_empty() {
        Json(json!({ "status": "ready" })).into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "not_ready", "problems": problems })),
        )
            .into_response()
    }
}

async fn whoami(auth: Auth) -> Json<serde_json::Value> {
    Json(json!({
        "user_id": auth.user_id,
        "api_key_id": auth.api_key_id,
        "created_at": iso(auth.key.created_at),
        "last_used_at": auth.key.last_used_at.map(iso),
    }))
}

async fn metrics(State(state): State<AppState>) -> Response {
    match state.metrics.render(&state.store).await {
        Ok(text) => (
            [(
                axum::http::header::CONTENT_TYPE,
                "text/plain; version=0.0.4",
            )],
            text,
        )
            .into_response(),
        Err(e) => super::error::ApiError::from(e).into_response(),
    }
}
