//! Signed downloads: `GET /files/{key}?expires=…&signature=…` with HTTP Range
//! support, so players can seek and clients can resume.

use std::collections::HashMap;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::AppState;
use super::error::{ApiError, internal};

pub fn router() -> Router<AppState> {
    Router::new().route("/files/{*key}", get(download))
}

/// The bytes of a file (its schema only: handlers stream the body).
#[derive(utoipa::ToSchema)]
#[schema(value_type = String, format = Binary)]
pub struct FileBytes(#[allow(dead_code)] Vec<u8>);

/// Download a stored video or thumbnail through a signed URL (as found in
/// webhooks and run details; valid for one hour). Supports `Range`.
#[utoipa::path(get, path = "/files/{key}", tag = "files", security(()),
    params(
        ("key" = String, Path, description = "Object key (may contain `/`)"),
        ("expires" = i64, Query, description = "Unix seconds after which the URL stops working"),
        ("signature" = String, Query, description = "HMAC of the key and expiry"),
        ("range" = Option<String>, Header, description = "`bytes=start-end`"),
    ),
    responses(
        (status = 200, description = "The whole file", content_type = "application/octet-stream", body = FileBytes),
        (status = 206, description = "The requested range", content_type = "application/octet-stream", body = FileBytes),
        (status = 416, description = "The range is outside the file"),
        (status = "4XX", body = super::error::ErrorBody),
    ))]
pub async fn download(
    State(state): State<AppState>,
    Path(key): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let expires = q.get("expires").and_then(|e| e.parse::<i64>().ok());
    let signature = q.get("signature");
    let now = chrono::Utc::now().timestamp();
    let (Some(expires), Some(signature)) = (expires, signature) else {
        return Err(ApiError::forbidden("this file URL is not signed"));
    };
    if !state.objects.verify(&key, expires, signature, now) {
        return Err(ApiError::forbidden(
            "this file URL is invalid or has expired",
        ));
    }
    let total = state
        .objects
        .size(&key)
        .await
        .map_err(|e| internal("stat file", format!("{e:#}")))?
        .ok_or_else(|| ApiError::not_found("file not found"))?;
    let range = match headers.get(header::RANGE).and_then(|v| v.to_str().ok()) {
        Some(spec) => match parse_range(spec, total) {
            RangeRequest::Satisfiable(start, end) => Some((start, end)),
            RangeRequest::Ignore => None,
            RangeRequest::Unsatisfiable => {
                return Ok((
                    StatusCode::RANGE_NOT_SATISFIABLE,
                    [(header::CONTENT_RANGE, format!("bytes */{total}"))],
                )
                    .into_response());
            }
        },
        None => None,
    };
    let (start, end) = range.unwrap_or((0, total));
    let object = state
        .objects
        .read_range(&key, total, start, end)
        .await
        .map_err(|e| internal("read file", format!("{e:#}")))?;
    let mut response = Response::new(Body::from_stream(object.body));
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(&key)),
    );
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(end - start));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=3600"),
    );
    if range.is_some() {
        *response.status_mut() = StatusCode::PARTIAL_CONTENT;
        let value = format!("bytes {start}-{}/{total}", end.saturating_sub(1));
        if let Ok(v) = HeaderValue::from_str(&value) {
            response.headers_mut().insert(header::CONTENT_RANGE, v);
        }
    }
    Ok(response)
}

fn content_type(key: &str) -> &'static str {
    match key.rsplit('.').next() {
        Some("mp4") => "video/mp4",
        Some("webm") => "video/webm",
        Some("mov") => "video/quicktime",
        Some("mkv") => "video/x-matroska",
        Some("jpg" | "jpeg") => "image/jpeg",
        _ => "application/octet-stream",
    }
}

/// What to do with a `Range` header.
#[derive(Debug, PartialEq, Eq)]
enum RangeRequest {
    /// Serve bytes `start..end` (end exclusive) with 206.
    Satisfiable(u64, u64),
    /// Serve the whole file with 200 (unsupported or malformed ranges; RFC 9110 allows ignoring them).
    Ignore,
    /// 416.
    Unsatisfiable,
}

/// Parse a single `bytes=` range against an object of `total` bytes.
fn parse_range(spec: &str, total: u64) -> RangeRequest {
    let Some(spec) = spec.trim().strip_prefix("bytes=") else {
        return RangeRequest::Ignore;
    };
    if spec.contains(',') {
        return RangeRequest::Ignore;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return RangeRequest::Ignore;
    };
    let (a, b) = (a.trim(), b.trim());
    let parsed = match (a.is_empty(), b.is_empty()) {
        // Suffix: the last n bytes.
        (true, false) => b
            .parse::<u64>()
            .ok()
            .map(|n| (total.saturating_sub(n), total, n == 0)),
        (false, _) => a.parse::<u64>().ok().and_then(|start| {
            let end = if b.is_empty() {
                Some(total)
            } else {
                // A last position before the first makes the header invalid: ignore it.
                b.parse::<u64>()
                    .ok()
                    .filter(|e| *e >= start)
                    .map(|e| e.saturating_add(1).min(total))
            };
            end.map(|end| (start, end, start >= total))
        }),
        (true, true) => None,
    };
    match parsed {
        None => RangeRequest::Ignore,
        Some((_, _, true)) => RangeRequest::Unsatisfiable,
        Some((start, end, false)) => RangeRequest::Satisfiable(start, end),
    }
}

#[cfg(test)]
mod tests {
    use super::RangeRequest::*;
    use super::*;

    #[test]
    fn single_byte_ranges_are_parsed_against_the_size() {
        assert_eq!(parse_range("bytes=0-99", 1000), Satisfiable(0, 100));
        assert_eq!(parse_range("bytes=900-", 1000), Satisfiable(900, 1000));
        assert_eq!(parse_range("bytes=-100", 1000), Satisfiable(900, 1000));
        assert_eq!(parse_range("bytes=990-5000", 1000), Satisfiable(990, 1000));
        assert_eq!(parse_range("bytes=-5000", 1000), Satisfiable(0, 1000));
    }

    #[test]
    fn impossible_ranges_are_unsatisfiable_and_odd_ones_ignored() {
        assert_eq!(parse_range("bytes=1000-", 1000), Unsatisfiable);
        assert_eq!(parse_range("bytes=-0", 1000), Unsatisfiable);
        assert_eq!(parse_range("bytes=50-10", 1000), Ignore);
        assert_eq!(
            parse_range("bytes=0-18446744073709551615", 1000),
            Satisfiable(0, 1000)
        );
        assert_eq!(parse_range("bytes=0-1,5-6", 1000), Ignore);
        assert_eq!(parse_range("items=0-1", 1000), Ignore);
        assert_eq!(parse_range("bytes=x-1", 1000), Ignore);
    }
}
