//! Webhook settings and the delivery log: the account's plaintext secret,
//! its Standard Webhooks signing key, test sends, and deliveries with their
//! attempts and a manual resend.

use std::time::Duration;

use axum::Json as JsonOut;
use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Auth;
use super::error::{ApiError, ErrorBody, Json, Query, RawBody, not_found_as};
use super::targets::check_target;
use super::{AppState, iso, page_limit, parse_path_id};
use crate::domain::ids::{DeliveryId, EventId, RunId, UserId};
use crate::domain::payload::EventBody;
use crate::domain::signing::generate_secret;
use crate::store::{
    AttemptRecord, DeliveryFilter, DeliveryRecord, DeliveryStatus, NewEvent, SigningKeys,
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(read_secret, set_secret, delete_secret))
        .routes(routes!(signing_key))
        .routes(routes!(rotate_signing_key))
        .routes(routes!(test))
        .routes(routes!(list_deliveries))
        .routes(routes!(get_delivery))
        .routes(routes!(retry))
}

/// Whether the account has a webhook secret (never the secret itself).
#[derive(Serialize, ToSchema)]
struct SecretStatus {
    configured: bool,
    /// The secret's last four characters, e.g. `••••k9Qz`.
    #[serde(skip_serializing_if = "Option::is_none")]
    secret_preview: Option<String>,
}

/// Whether a webhook secret is set: it is sent verbatim as `X-Mosaic-Signature`.
#[utoipa::path(get, path = "/webhook_secret", tag = "webhooks",
    responses((status = 200, body = SecretStatus), (status = "4XX", body = ErrorBody)))]
async fn read_secret(
    State(state): State<AppState>,
    auth: Auth,
) -> Result<JsonOut<SecretStatus>, ApiError> {
    let secret = state.store.webhook_secret(auth.user_id).await?;
    Ok(JsonOut(SecretStatus {
        configured: secret.is_some(),
        secret_preview: secret.as_deref().map(crate::domain::signing::mask_secret),
    }))
}

/// `PUT /webhook_secret`: no body (or no `secret`) generates one.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct SetSecret {
    /// 8 to 256 visible ASCII characters.
    #[serde(default)]
    #[schema(min_length = 8, max_length = 256)]
    secret: Option<String>,
}

/// The secret, shown this once.
#[derive(Serialize, ToSchema)]
struct SecretSet {
    secret: String,
}

/// Set the webhook secret, or generate one; the answer is the only time it is shown.
#[utoipa::path(put, path = "/webhook_secret", tag = "webhooks",
    request_body(content = SetSecret, description = "Optional: no body (or `{}`) generates a secret"),
    responses((status = 200, body = SecretSet), (status = "4XX", body = ErrorBody)))]
async fn set_secret(
    State(state): State<AppState>,
    auth: Auth,
    headers: axum::http::HeaderMap,
    RawBody(body): RawBody,
) -> Result<JsonOut<SecretSet>, ApiError> {
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
        if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Err(ApiError::validation(
                "the request body must be a JSON object",
            ));
        }
        serde_json::from_slice::<SetSecret>(&body)
            .map_err(|e| ApiError::validation(format!("invalid request body: {e}")))?
            .secret
    };
    let secret = set_webhook_secret(&state, auth.user_id, requested).await?;
    Ok(JsonOut(SecretSet { secret }))
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

/// Remove the webhook secret: webhooks go out without `X-Mosaic-Signature`.
#[utoipa::path(delete, path = "/webhook_secret", tag = "webhooks",
    responses((status = 200, body = SecretStatus), (status = "4XX", body = ErrorBody)))]
async fn delete_secret(
    State(state): State<AppState>,
    auth: Auth,
) -> Result<JsonOut<SecretStatus>, ApiError> {
    let now = chrono::Utc::now().timestamp_millis();
    state
        .store
        .set_webhook_secret(auth.user_id, None, now)
        .await?;
    Ok(JsonOut(SecretStatus {
        configured: false,
        secret_preview: None,
    }))
}

/// The Standard Webhooks signing key (`whsec_…`).
#[derive(Serialize, ToSchema)]
struct SigningKeyView {
    key: String,
    /// Until when the previous key still signs beside this one (after a rotation).
    previous_valid_until: Option<String>,
}

impl From<SigningKeys> for SigningKeyView {
    fn from(keys: SigningKeys) -> Self {
        Self {
            key: keys.current,
            previous_valid_until: keys.previous.map(|(_, until)| iso(until)),
        }
    }
}

/// The key that signs `webhook-signature` (created on first use).
#[utoipa::path(get, path = "/webhook_signing_key", tag = "webhooks",
    responses((status = 200, body = SigningKeyView), (status = "4XX", body = ErrorBody)))]
async fn signing_key(
    State(state): State<AppState>,
    auth: Auth,
) -> Result<JsonOut<SigningKeyView>, ApiError> {
    let now = chrono::Utc::now().timestamp_millis();
    let keys = state
        .store
        .signing_keys(
            auth.user_id,
            &crate::domain::signing::generate_signing_key().as_whsec(),
            now,
        )
        .await?;
    Ok(JsonOut(keys.into()))
}

/// A new key signs from now on; the old one keeps signing beside it for the
/// grace period so receivers can switch without dropping a webhook.
#[utoipa::path(post, path = "/webhook_signing_key/rotate", tag = "webhooks",
    responses((status = 200, body = SigningKeyView), (status = "4XX", body = ErrorBody)))]
async fn rotate_signing_key(
    State(state): State<AppState>,
    auth: Auth,
) -> Result<JsonOut<SigningKeyView>, ApiError> {
    let keys = rotate_key(&state, auth.user_id).await?;
    Ok(JsonOut(keys.into()))
}

/// Rotate the user's signing key (the old one signs beside it for the grace period).
pub async fn rotate_key(state: &AppState, user: UserId) -> Result<SigningKeys, ApiError> {
    let now = chrono::Utc::now().timestamp_millis();
    // Make sure a key exists, so the first rotation also has a previous key.
    state
        .store
        .signing_keys(
            user,
            &crate::domain::signing::generate_signing_key().as_whsec(),
            now,
        )
        .await?;
    let grace_until = now + state.config.signing_key_grace.as_millis() as i64;
    Ok(state
        .store
        .rotate_signing_key(
            user,
            &crate::domain::signing::generate_signing_key().as_whsec(),
            grace_until,
            now,
        )
        .await?)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct TestRequest {
    callback_url: String,
}

/// The first attempt of a test webhook.
#[derive(Serialize, ToSchema)]
struct TestResult {
    delivery_id: DeliveryId,
    success: bool,
    status_code: Option<u16>,
    duration_ms: Option<i64>,
    /// Error class of the first attempt, or `pending` if it has not happened yet.
    error: Option<String>,
}

/// Send a `TEST` webhook through the normal delivery path and report its first attempt.
#[utoipa::path(post, path = "/webhooks/test", tag = "webhooks", request_body = TestRequest,
    responses((status = 200, body = TestResult), (status = "4XX", body = ErrorBody)))]
async fn test(
    State(state): State<AppState>,
    auth: Auth,
    Json(body): Json<TestRequest>,
) -> Result<JsonOut<TestResult>, ApiError> {
    let outcome = send_test(&state, auth.user_id, &body.callback_url).await?;
    let first = outcome.first.as_ref();
    Ok(JsonOut(TestResult {
        delivery_id: outcome.delivery_id,
        success: first.is_some_and(|a| a.error.is_none()),
        status_code: first.and_then(|a| a.status_code),
        duration_ms: first.map(|a| a.duration_ms),
        error: match first {
            Some(a) => a.error.clone(),
            None => Some("pending".to_owned()),
        },
    }))
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
        // Look again when this delivery's attempt is recorded here, when
        // broadcasts were missed, or every 250 ms (another node's attempt);
        // not on every other delivery's attempt, which under load would
        // turn each waiting request into a loop of reads.
        let tick = tokio::time::sleep(Duration::from_millis(250));
        tokio::pin!(tick);
        loop {
            tokio::select! {
                got = attempts.recv() => match got {
                    Ok(other) if other != id => continue,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => (&mut tick).await,
                    _ => {}
                },
                _ = &mut tick => {}
                _ = tokio::time::sleep_until(deadline) => {
                    return Ok(TestOutcome { delivery_id: id, first: None });
                }
            }
            break;
        }
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// pending, succeeded or failed.
    status: Option<String>,
    /// Only this run's deliveries.
    run_id: Option<String>,
    /// RUN_STARTED, RUN_FINISHED or TEST.
    flag: Option<String>,
    /// 1–100 (default 25).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<u32>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// Which webhook a delivery carries.
#[derive(ToSchema)]
#[allow(dead_code, clippy::upper_case_acronyms, non_camel_case_types)]
enum WebhookFlag {
    RUN_STARTED,
    RUN_FINISHED,
    TEST,
}

/// One webhook to one URL, with its retries.
#[derive(Serialize, ToSchema)]
struct DeliveryView {
    id: DeliveryId,
    event_id: EventId,
    #[schema(value_type = WebhookFlag)]
    flag: String,
    run_id: Option<RunId>,
    url: String,
    status: DeliveryStatus,
    attempt_count: u32,
    /// When the next attempt is due (pending deliveries only).
    next_attempt_at: Option<String>,
    created_at: String,
}

/// A page of deliveries, newest first.
#[derive(Serialize, ToSchema)]
struct DeliveryPage {
    deliveries: Vec<DeliveryView>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    next_cursor: Option<DeliveryId>,
}

/// A delivery with every attempt.
#[derive(Serialize, ToSchema)]
struct DeliveryDetail {
    #[serde(flatten)]
    delivery: DeliveryView,
    attempts: Vec<AttemptView>,
}

/// One HTTP attempt.
#[derive(Serialize, ToSchema)]
struct AttemptView {
    started_at: String,
    duration_ms: i64,
    status_code: Option<u16>,
    /// Error class (`timeout`, `connect`, `dns`, `tls`, `refused_address`, `status`, …), `null` on success.
    error: Option<String>,
    error_detail: Option<String>,
    /// The start of the response body.
    response_snippet: Option<String>,
    /// Whether the response body was longer than the snippet.
    truncated: bool,
    /// The reason phrase, when the receiver sent a non-standard one.
    reason: Option<String>,
    /// The request's headers as sent, as `[name, value]` pairs, secrets masked.
    #[schema(value_type = Vec<Vec<String>>)]
    request_headers: Vec<(String, String)>,
    /// The response's headers as `[name, value]` pairs (capped).
    #[schema(value_type = Vec<Vec<String>>)]
    response_headers: Vec<(String, String)>,
}

/// The delivery log, newest first, with filters.
#[utoipa::path(get, path = "/webhook_deliveries", tag = "webhooks", params(ListQuery),
    responses((status = 200, body = DeliveryPage), (status = "4XX", body = ErrorBody)))]
async fn list_deliveries(
    State(state): State<AppState>,
    auth: Auth,
    Query(q): Query<ListQuery>,
) -> Result<JsonOut<DeliveryPage>, ApiError> {
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
    Ok(JsonOut(DeliveryPage {
        deliveries: page.iter().map(delivery_view).collect(),
        next_cursor: more.then(|| page.last().map(|d| d.id)).flatten(),
    }))
}

/// A delivery with every attempt: time, duration, status or error class, headers, response.
#[utoipa::path(get, path = "/webhook_deliveries/{id}", tag = "webhooks",
    params(("id" = String, Path, description = "Delivery id")),
    responses((status = 200, body = DeliveryDetail), (status = "4XX", body = ErrorBody)))]
async fn get_delivery(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<JsonOut<DeliveryDetail>, ApiError> {
    let id: DeliveryId = parse_path_id(&id, "delivery")?;
    let (delivery, attempts) = state
        .store
        .delivery(auth.user_id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("delivery not found"))?;
    Ok(JsonOut(DeliveryDetail {
        delivery: delivery_view(&delivery),
        attempts: attempts.into_iter().map(attempt_view).collect(),
    }))
}

#[derive(Serialize, ToSchema)]
struct RetryQueued {
    delivery_id: DeliveryId,
    status: DeliveryStatus,
}

/// Send a delivery again now (a finished one gets one more attempt).
#[utoipa::path(post, path = "/webhook_deliveries/{id}/retry", tag = "webhooks",
    params(("id" = String, Path, description = "Delivery id")),
    responses((status = 200, body = RetryQueued), (status = "4XX", body = ErrorBody)))]
async fn retry(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<JsonOut<RetryQueued>, ApiError> {
    let id: DeliveryId = parse_path_id(&id, "delivery")?;
    let now = chrono::Utc::now().timestamp_millis();
    state
        .store
        .retry_delivery(auth.user_id, id, now)
        .await
        .map_err(not_found_as("delivery"))?;
    state.wake.deliveries.notify_one();
    Ok(JsonOut(RetryQueued {
        delivery_id: id,
        status: DeliveryStatus::Pending,
    }))
}

fn delivery_view(d: &DeliveryRecord) -> DeliveryView {
    DeliveryView {
        id: d.id,
        event_id: d.event_id,
        flag: d.flag.clone(),
        run_id: d.run_id,
        url: d.url.clone(),
        status: d.status,
        attempt_count: d.attempt_count,
        next_attempt_at: d
            .next_attempt_at
            .filter(|_| d.status == DeliveryStatus::Pending)
            .map(iso),
        created_at: iso(d.created_at),
    }
}

fn attempt_view(a: AttemptRecord) -> AttemptView {
    AttemptView {
        started_at: iso(a.started_at),
        duration_ms: a.duration_ms,
        status_code: a.status_code,
        error: a.error,
        error_detail: a.error_detail,
        response_snippet: a.response_snippet,
        truncated: a.truncated,
        reason: a.reason,
        request_headers: a.request_headers,
        response_headers: a.response_headers,
    }
}
