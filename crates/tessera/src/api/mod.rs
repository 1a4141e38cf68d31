//! The HTTP API: one module per resource, each ending in `router()`. Handlers
//! read top to bottom: extract → parse into domain types → one store call →
//! response type. Wire DTOs live here, not in the domain.

pub mod agents;
pub mod auth;
pub mod contracts;
pub mod error;
pub mod files;
pub mod health;
pub mod openapi;
pub mod run_nodes;
pub mod runs;
pub mod targets;
pub mod triggers;
pub mod typescript;
pub mod uploads;
pub mod webhooks;
pub mod youtube;

use std::sync::Arc;

use axum::Router;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use crate::app::Wakeups;
use crate::config::Config;
use crate::media::Media;
use crate::net::NetConfig;
use crate::objects::Objects;
use crate::store::DynStore;
use error::ApiError;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub store: DynStore,
    pub objects: Objects,
    pub config: Arc<Config>,
    pub net: Arc<NetConfig>,
    pub wake: Wakeups,
    /// ffmpeg/ffprobe: finalizing an upload probes it; `/readyz` checks the
    /// tools on worker nodes.
    pub media: Media,
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Uploads being received (`upload_concurrency`).
    pub upload_slots: Arc<tokio::sync::Semaphore>,
}

/// The documented API: routes and their OpenAPI description, built together.
pub fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .merge(health::router())
        .merge(agents::router())
        .merge(runs::router())
        .merge(run_nodes::router())
        .merge(triggers::router())
        .merge(youtube::router())
        .merge(webhooks::router())
        .merge(uploads::router())
        .merge(contracts::router())
}

/// The OpenAPI 3.1 document of the whole API.
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    let mut doc = api().into_openapi();
    openapi::describe_server_errors(&mut doc);
    doc
}

/// What a node without the `api` role serves: health, readiness and metrics.
pub fn operations_router(state: AppState) -> Router {
    let (operations, _) = OpenApiRouter::new()
        .merge(health::router())
        .split_for_parts();
    operations
        .fallback(|| async { ApiError::not_found("this node does not serve the API (roles)") })
        .with_state(state)
}

/// The whole HTTP surface: the API, its description, signed files, the dashboard.
pub fn router(state: AppState) -> Router {
    let (api, _) = api().split_for_parts();
    api.merge(files::router())
        .merge(crate::dashboard::router())
        .fallback(|uri: axum::http::Uri| async move {
            if crate::dashboard::owns(uri.path()) {
                crate::dashboard::not_found()
            } else {
                ApiError::not_found("no such route").into_response()
            }
        })
        .method_not_allowed_fallback(|uri: axum::http::Uri| async move {
            if crate::dashboard::owns(uri.path()) {
                return crate::dashboard::method_not_allowed();
            }
            ApiError {
                status: StatusCode::METHOD_NOT_ALLOWED,
                code: error::ErrorCode::ValidationError,
                detail: "this route does not accept that HTTP method".into(),
            }
            .into_response()
        })
        .with_state(state)
}

/// Parse a path id; a malformed id is reported like an unknown one, so ids
/// reveal nothing about what exists.
pub fn parse_path_id<T: std::str::FromStr>(raw: &str, what: &str) -> Result<T, ApiError> {
    raw.parse()
        .map_err(|_| ApiError::not_found(format!("{what} not found")))
}

/// Milliseconds since the epoch → ISO 8601 UTC (the wire format of every timestamp).
pub fn iso(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(crate::domain::payload::iso8601)
        .unwrap_or_default()
}

/// Validate a `limit` query parameter (1–100, default 25).
pub fn page_limit(limit: Option<u32>) -> Result<u32, ApiError> {
    match limit {
        None => Ok(25),
        Some(n @ 1..=100) => Ok(n),
        Some(_) => Err(ApiError::out_of_range("limit must be between 1 and 100")),
    }
}

/// Distinguishes an absent field (`None`) from an explicit `null` (`Some(None)`).
pub mod double_option {
    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
    where
        D: Deserializer<'de>,
        T: Deserialize<'de>,
    {
        Option::<T>::deserialize(d).map(Some)
    }
}
