//! The API's error type and the JSON extractor that reports malformed bodies
//! in the same `{error, detail}` shape as every other failure.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::domain::graph::GraphError;
use crate::store::StoreError;

/// An error answered to an API client as `{"error": CODE, "detail": "…"}`.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: ErrorCode,
    pub detail: String,
}

/// The body of every error answer.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorCode,
    /// A sentence for humans: what was wrong and, where it helps, what to do.
    pub detail: String,
}

/// Machine-readable error kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// 400 (also 405): malformed input.
    ValidationError,
    /// 401: missing, unknown or revoked API key.
    InvalidApiKey,
    /// 403
    Forbidden,
    /// 404
    NotFound,
    /// 409: the resource is not in a state that allows this.
    Conflict,
    /// 413: the body is over the limit.
    PayloadTooLarge,
    /// 422: well-formed values outside their range.
    ParameterOutOfRange,
    /// 500: logged on the server.
    InternalServerError,
    /// 503: a tool or service this request needs is missing on this node
    /// (ffprobe, say); the detail names it.
    ServiceUnavailable,
}

impl ApiError {
    pub fn validation(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, ErrorCode::ValidationError, detail)
    }
    pub fn out_of_range(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::ParameterOutOfRange,
            detail,
        )
    }
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, ErrorCode::InvalidApiKey, detail)
    }
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, ErrorCode::Forbidden, detail)
    }
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, ErrorCode::NotFound, detail)
    }
    pub fn too_large(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::PayloadTooLarge,
            detail,
        )
    }
    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, ErrorCode::Conflict, detail)
    }
    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::ServiceUnavailable,
            detail,
        )
    }
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::InternalServerError,
            "something went wrong on our side; it has been logged",
        )
    }

    /// 500 for a failure in another part of the server (the object store,
    /// say): the cause is logged, the caller gets the generic message.
    pub fn logged(what: &str, e: anyhow::Error) -> Self {
        tracing::error!(error = format!("{e:#}"), "{what}");
        Self::internal()
    }

    fn new(status: StatusCode, code: ErrorCode, detail: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            detail: detail.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            axum::Json(ErrorBody {
                error: self.code,
                detail: self.detail,
            }),
        )
            .into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => ApiError::not_found("not found"),
            StoreError::Conflict(detail) => ApiError::conflict(detail),
            StoreError::Internal(e) => {
                tracing::error!(error = format!("{e:#}"), "store failure");
                ApiError::internal()
            }
        }
    }
}

impl From<GraphError> for ApiError {
    fn from(e: GraphError) -> Self {
        match e {
            GraphError::Invalid(detail) => ApiError::validation(detail),
            GraphError::OutOfRange(detail) => ApiError::out_of_range(detail),
        }
    }
}

/// Map a store error, answering `NotFound` with "`what` not found".
pub fn not_found_as(what: &'static str) -> impl Fn(StoreError) -> ApiError {
    move |e| match e {
        StoreError::NotFound => ApiError::not_found(format!("{what} not found")),
        other => other.into(),
    }
}

/// Log an unexpected failure with its context and answer a plain 500.
pub fn internal(context: &str, e: impl std::fmt::Display) -> ApiError {
    tracing::error!(error = %e, "{context}");
    ApiError::internal()
}

/// `axum::Json`, but a malformed body becomes a `validation_error`, and the
/// body must be a JSON object (serde would otherwise also read a struct from
/// an array of its fields in order).
pub struct Json<T>(pub T);

impl<T, S> FromRequest<S> for Json<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = has_json_content_type(req.headers());
        if !is_json {
            return Err(ApiError::validation(
                "the request body must be JSON with Content-Type: application/json",
            ));
        }
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| body_rejection(e.status(), &e.body_text()))?;
        parse_json_object(&bytes).map(Json)
    }
}

/// [`Json`] for a body that may be left out: no body at all gives
/// `T::default()`; a body must be JSON as for [`Json`].
pub struct OptionalJson<T>(pub T);

impl<T, S> FromRequest<S> for OptionalJson<T>
where
    T: serde::de::DeserializeOwned + Default,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = has_json_content_type(req.headers());
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| body_rejection(e.status(), &e.body_text()))?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalJson(T::default()));
        }
        if !is_json {
            return Err(ApiError::validation(
                "the request body must be JSON with Content-Type: application/json",
            ));
        }
        parse_json_object(&bytes).map(OptionalJson)
    }
}

fn has_json_content_type(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .is_some_and(|m| {
            m == "application/json" || (m.starts_with("application/") && m.ends_with("+json"))
        })
}

fn parse_json_object<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first.is_some_and(|b| *b != b'{') {
        return Err(ApiError::validation(
            "the request body must be a JSON object",
        ));
    }
    match axum::Json::<T>::from_bytes(bytes) {
        Ok(axum::Json(value)) => Ok(value),
        Err(rejection) => Err(match rejection {
            JsonRejection::JsonSyntaxError(e) => {
                ApiError::validation(format!("malformed JSON: {}", source_text(&e)))
            }
            JsonRejection::JsonDataError(e) => {
                ApiError::validation(format!("invalid request body: {}", source_text(&e)))
            }
            other => ApiError::validation(other.body_text()),
        }),
    }
}

/// serde's message without axum's generic prefix.
fn source_text(e: &dyn std::error::Error) -> String {
    let mut inner: &dyn std::error::Error = e;
    while let Some(next) = inner.source() {
        inner = next;
    }
    inner.to_string()
}

/// `axum::extract::Query`, but a malformed query string becomes a `validation_error`.
pub struct Query<T>(pub T);

impl<T, S> FromRequestParts<S> for Query<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(Query(value)),
            Err(QueryRejection::FailedToDeserializeQueryString(e)) => Err(ApiError::validation(
                format!("invalid query string: {}", source_text(&e)),
            )),
            Err(other) => Err(ApiError::validation(other.body_text())),
        }
    }
}

/// A raw request body, with the same error answers as [`Json`].
pub struct RawBody(pub bytes::Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, Self::Rejection> {
        bytes::Bytes::from_request(req, state)
            .await
            .map(RawBody)
            .map_err(|e| body_rejection(e.status(), &e.body_text()))
    }
}

/// A body that could not be read: too large (413) or broken (400).
fn body_rejection(status: StatusCode, text: &str) -> ApiError {
    if status == StatusCode::PAYLOAD_TOO_LARGE || text.contains("length limit") {
        ApiError::too_large("the request body is larger than the 2 MB limit")
    } else {
        ApiError::validation(format!("the request body could not be read: {text}"))
    }
}

/// `text` cut to `max` characters (with `…` when cut): for quoting a
/// caller's long value back, or showing it in a table.
pub fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        format!("{}…", text.chars().take(max).collect::<String>())
    }
}
