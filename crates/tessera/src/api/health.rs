//! `/healthz` (the process is up), `/readyz` (database and ffmpeg usable),
//! `/metrics` (Prometheus) and `/whoami`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Auth;
use super::error::ErrorBody;
use super::{AppState, iso};
use crate::domain::ids::{ApiKeyId, UserId};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(whoami))
        .routes(routes!(metrics))
}

#[derive(Serialize, ToSchema)]
pub struct Health {
    /// `ok`, `ready` or `not_ready`.
    status: &'static str,
    /// What is not ready (only when not ready).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    problems: Vec<&'static str>,
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "operations", security(()),
    responses((status = 200, body = Health)))]
async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok",
        problems: Vec::new(),
    })
}

/// The database is migrated and reachable, and ffmpeg works (on worker nodes).
#[utoipa::path(get, path = "/readyz", tag = "operations", security(()),
    responses((status = 200, body = Health), (status = 503, body = Health)))]
async fn readyz(State(state): State<AppState>) -> Response {
    let mut problems = Vec::new();
    if let Err(e) = state.store.ready().await {
        tracing::warn!(error = %e, "readiness: database");
        problems.push("database unreachable or migrations not applied");
    }
    if state.config.roles.worker
        && let Err(e) = state.media.check_available().await
    {
        tracing::warn!(error = %e, "readiness: ffmpeg");
        problems.push("ffmpeg/ffprobe not available");
    }
    if problems.is_empty() {
        Json(Health {
            status: "ready",
            problems,
        })
        .into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(Health {
                status: "not_ready",
                problems,
            }),
        )
            .into_response()
    }
}

#[derive(Serialize, ToSchema)]
pub struct WhoAmI {
    user_id: UserId,
    api_key_id: ApiKeyId,
    /// When the key was created (ISO 8601 UTC).
    created_at: String,
    /// When the key was last used (recorded at most once a minute).
    last_used_at: Option<String>,
}

/// The user and API key of this request.
#[utoipa::path(get, path = "/whoami", tag = "operations",
    responses((status = 200, body = WhoAmI), (status = "4XX", body = ErrorBody)))]
async fn whoami(auth: Auth) -> Json<WhoAmI> {
    Json(WhoAmI {
        user_id: auth.user_id,
        api_key_id: auth.api_key_id,
        created_at: iso(auth.key.created_at),
        last_used_at: auth.key.last_used_at.map(iso),
    })
}

/// Prometheus metrics.
#[utoipa::path(get, path = "/metrics", tag = "operations", security(()),
    responses((status = 200, content_type = "text/plain", body = String)))]
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
