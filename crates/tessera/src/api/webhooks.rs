//! Webhook settings and the delivery log: the account's plaintext secret,
//! its Standard Webhooks signing key, test sends, and deliveries with their
//! attempts and a manual resend.

use std::time::Duration;

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json as JsonOut, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::Auth;
use super::error::{ApiError, Json, Query, RawBody, not_found_as};
use super::targets::check_target;
use super::{AppState, iso, page_limit, parse_path_id};
use crate::domain::ids::{DeliveryId, EventId, RunId, UserId};
use crate::domain::payload::EventBody;
use crate::domain::signing::{SigningKey, generate_secret};
use crate::store::{
    AttemptRecord, DeliveryFilter, DeliveryRecord, DeliveryStatus, NewEvent, SigningKeys,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/webhook_secret",
            get(read_secret).put(set_secret).delete(delete_secret),
        )
        .route("/webhook_signing_key", get(signing_key))
        .route("/webhook_signing_key/rotate", post(rotate_signing_key))
        .route("/webhooks/test", post(test))
        .route("/webhook_deliveries", get(list))
        .route("/webhook_deliveries/{id}", get(read))
        .route("/webhook_deliveries/{id}/retry", post(retry))
}

async fn read_secret(
    State(state): State<AppState>,
    auth: Auth,
) -> Result<JsonOut<Value>, ApiError> {
    let secret = state.store.webhook_secret(auth.user_id).await?;
    Ok(JsonOut(json!({
        "configured": secret.is_some(),
        "secret_preview": secret.as_deref().map(crate::domain::signing::mask_secret),
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SetSecret {
    #[serde(default)]
    secret: Option<String>,
}

async fn set_secret(
    State(state): State<AppState>,
    auth: Auth,
    headers: axum::http::HeaderMap,
    RawBody(body): RawBody,
) -> Result<JsonOut<Value>, ApiError> {
    // The body is optional: no body (or `{}`) asks for a generated secret.
    let requested: Option<String> = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        let json = headers
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        if !json {
            return Err(ApiError::validation(
                "the request body must be JSON with Content-Type: application/json",
            ));
        }
        serde_json::from_slice::<SetSecret>(&body)
            .map_err(|e| ApiError::validation(format!("invalid request body: {e}")))?
            .secret
    };
    let secret = set_webhook_secret(&state, auth.user_id, requested).await?;
    Ok(JsonOut(json!({ "secret": secret })))
}

/// Store the given secret (checked) or a generated one; returns it.
pub async fn set_webhook_secret(
    state: &AppState,
    user: UserId,
    requested: Option<String>,
) -> Result<String, ApiError> {
    let secret = match requested {
        Some(s) => {
            // Sent verbatim as a header value: visible ASCII only.
            if !(8..=256).contains(&s.len()) || !s.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(ApiError::validation(
                    "secret must be 8 to 256 visible ASCII characters without spaces",
                ));
            }
            s
        }
        None => generate_secret("mws_"),
    };
    let now = chrono::Utc::now().timestamp_millis();
    state
        .store
        .set_webhook_secret(user, Some(&secret), now)
        .await?;
    Ok(secret)
}

async fn delete_secret(
    State(state): State<AppState>,
    auth: Auth,
) -> Result<JsonOut<Value>, ApiError> {
    let now = chrono::Utc::now().timestamp_millis();
    state
        .store
        .set_webhook_secret(auth.user_id, None, now)
        .await?;
    Ok(JsonOut(json!({ "configured": false })))
}

async fn signing_key(
    State(state): State<AppState>,
    auth: Auth,
) -> Result<JsonOut<Value>, ApiError> {
    let now = chrono::Utc::now().timestamp_millis();
    let keys = state
        .store
        .signing_keys(auth.user_id, &SigningKey::generate().as_whsec(), now)
        .await?;
    Ok(JsonOut(json!({
        "key": keys.current,
        "previous_valid_until": keys.previous.map(|(_, until)| iso(until)),
    })))
}

/// A new key signs from now on; the old one keeps signing beside it for the
/// grace period so receivers can switch without dropping a webhook.
async fn rotate_signing_key(
    State(state): State<AppState>,
    auth: Auth,
) -> Result<JsonOut<Value>, ApiError> {
    let keys = rotate_key(&state, auth.user_id).await?;
    Ok(JsonOut(json!({
        "key": keys.current,
        "previous_valid_until": keys.previous.map(|(_, until)| iso(until)),
    })))
}

/// Rotate the user's signing key (the old one signs beside it for the grace period).
pub async fn rotate_key(state: &AppState, user: UserId) -> Result<SigningKeys, ApiError> {
    let now = chrono::Utc::now().timestamp_millis();
    // Make sure a key exists, so the first rotation also has a previous key.
    state
        .store
        .signing_keys(user, &SigningKey::generate().as_whsec(), now)
        .await?;
    let grace_until = now + state.config.signing_key_grace.as_millis() as i64;
    Ok(state
        .store
        .rotate_signing_key(user, &SigningKey::generate().as_whsec(), grace_until, now)
        .await?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TestRequest {
    callback_url: String,
}

async fn test(
    State(state): State<AppState>,
    auth: Auth,
    Json(body): Json<TestRequest>,
) -> Result<JsonOut<Value>, ApiError> {
    let outcome = send_test(&state, auth.user_id, &body.callback_url).await?;
    Ok(JsonOut(json!({
        "delivery_id": outcome.delivery_id,
        "success": outcome.first.as_ref().is_some_and(|a| a.error.is_none()),
        "status_code": outcome.first.as_ref().and_then(|a| a.status_code),
        "duration_ms": outcome.first.as_ref().map(|a| a.duration_ms),
        "error": match &outcome.first {
            Some(a) => a.error.clone(),
            None => Some("pending".to_owned()),
        },
    })))
}

/// A test webhook's delivery and its first attempt (none if it did not
/// happen within the lease).
pub struct TestOutcome {
    pub delivery_id: DeliveryId,
    pub first: Option<AttemptRecord>,
}

/// Queue a `TEST` webhook to `url` and wait for its first attempt through
/// the normal delivery path.
pub async fn send_test(state: &AppState, user: UserId, url: &str) -> Result<TestOutcome, ApiError> {
    let url = check_target(url.trim(), &state.config.address_policy, &state.net)
        .await
        .map_err(|e| ApiError::validation(format!("callback_url: {e}")))?;
    let now = chrono::Utc::now();
    let event = NewEvent {
        id: EventId::new(),
        user_id: user,
        run_id: None,
        body: EventBody::Test {
            timestamp: now,
            user_id: user,
            message: "Test webhook from Tessera".into(),
            test_data: json!({
                "status": "test",
                "description": "This is a test webhook to verify your endpoint is reachable.",
            }),
        },
        destinations: vec![url.to_string()],
        attempts_allowed: state.config.retry.attempts_allowed(),
        created_at: now.timestamp_millis(),
    };
    let mut attempts = state.wake.attempts.subscribe();
    let ids = state.store.enqueue_event(event).await?;
    let id = ids[0];
    state.wake.deliveries.notify_one();
    // Wait for the first attempt through the normal path. The dispatcher may
    // run on another node, so the broadcast is a hint and the store the truth.
    let deadline =
        tokio::time::Instant::now() + state.config.delivery_lease() + Duration::from_secs(5);
    loop {
        if let Some((_, list)) = state.store.delivery(user, id).await?
            && let Some(first) = list.into_iter().next()
        {
            return Ok(TestOutcome {
                delivery_id: id,
                first: Some(first),
            });
        }
        tokio::select! {
            _ = attempts.recv() => {}
            _ = tokio::time::sleep(Duration::from_millis(250)) => {}
            _ = tokio::time::sleep_until(deadline) => {
                return Ok(TestOutcome { delivery_id: id, first: None });
            }
        }
    }
}

#[derive(Deserialize)]
struct ListQuery {
    status: Option<String>,
    run_id: Option<String>,
    flag: Option<String>,
    limit: Option<u32>,
    cursor: Option<String>,
}

async fn list(
    State(state): State<AppState>,
    auth: Auth,
    Query(q): Query<ListQuery>,
) -> Result<JsonOut<Value>, ApiError> {
    let limit = page_limit(q.limit)?;
    let filter = DeliveryFilter {
        status: q
            .status
            .map(|s| {
                DeliveryStatus::parse(&s).ok_or_else(|| {
                    ApiError::validation("status must be pending, succeeded or failed")
                })
            })
            .transpose()?,
        run_id: q
            .run_id
            .map(|r| {
                r.parse::<RunId>()
                    .map_err(|_| ApiError::validation("run_id must be a UUID"))
            })
            .transpose()?,
        flag: match q.flag {
            Some(f) if ["RUN_STARTED", "RUN_FINISHED", "TEST"].contains(&f.as_str()) => Some(f),
            Some(_) => {
                return Err(ApiError::validation(
                    "flag must be RUN_STARTED, RUN_FINISHED or TEST",
                ));
            }
            None => None,
        },
        before: q
            .cursor
            .map(|c| {
                c.parse::<DeliveryId>()
                    .map_err(|_| ApiError::validation("cursor is not valid"))
            })
            .transpose()?,
        limit: limit + 1,
    };
    let rows = state.store.list_deliveries(auth.user_id, &filter).await?;
    let more = rows.len() > limit as usize;
    let page = &rows[..rows.len().min(limit as usize)];
    Ok(JsonOut(json!({
        "deliveries": page.iter().map(delivery_json).collect::<Vec<_>>(),
        "next_cursor": more.then(|| page.last().map(|d| d.id)).flatten(),
    })))
}

async fn read(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<JsonOut<Value>, ApiError> {
    let id: DeliveryId = parse_path_id(&id, "delivery")?;
    let (delivery, attempts) = state
        .store
        .delivery(auth.user_id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("delivery not found"))?;
    let mut out = delivery_json(&delivery);
    out["attempts"] = attempts.iter().map(attempt_json).collect();
    Ok(JsonOut(out))
}

async fn retry(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<JsonOut<Value>, ApiError> {
    let id: DeliveryId = parse_path_id(&id, "delivery")?;
    let now = chrono::Utc::now().timestamp_millis();
    state
        .store
        .retry_delivery(auth.user_id, id, now)
        .await
        .map_err(not_found_as("delivery"))?;
    state.wake.deliveries.notify_one();
    Ok(JsonOut(json!({ "delivery_id": id, "status": "pending" })))
}

fn delivery_json(d: &DeliveryRecord) -> Value {
    json!({
        "id": d.id,
        "event_id": d.event_id,
        "flag": d.flag,
        "run_id": d.run_id,
        "url": d.url,
        "status": d.status.as_str(),
        "attempt_count": d.attempt_count,
        "next_attempt_at": d.next_attempt_at.filter(|_| d.status == DeliveryStatus::Pending).map(iso),
        "created_at": iso(d.created_at),
    })
}

fn attempt_json(a: &AttemptRecord) -> Value {
    json!({
        "started_at": iso(a.started_at),
        "duration_ms": a.duration_ms,
        "status_code": a.status_code,
        "error": a.error,
        "error_detail": a.error_detail,
        "response_snippet": a.response_snippet,
        "truncated": a.truncated,
        "reason": a.reason,
        "request_headers": headers_json(&a.request_headers),
        "response_headers": headers_json(&a.response_headers),
    })
}

/// Headers as a list of `[name, value]` pairs: names may repeat.
fn headers_json(headers: &[(String, String)]) -> Value {
    headers.iter().map(|(k, v)| json!([k, v])).collect()
}
