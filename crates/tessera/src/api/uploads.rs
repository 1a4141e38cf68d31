//! Uploads: the hosted service's three steps, under both of its path forms.
//!
//! 1. `get_upload_url` records a pending upload and hands out where and what
//!    to post: Tessera's own `/upload` URL with a signed policy
//!    ([`UploadPolicy`]), or, with an S3 store, a presigned S3 POST policy.
//! 2. The client posts `multipart/form-data`: the policy's fields, then the
//!    file part. Tessera streams the file into the object store, counting
//!    bytes against the policy's limit (never buffering the file).
//! 3. `finalize_upload` checks the stored file (size, ffprobe, duration);
//!    finalized uploads are usable as `video_ids` in runs.

use axum::Json as JsonOut;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use futures_util::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Auth;
use super::error::{ApiError, ErrorBody, Json, OptionalJson};
use super::{AppState, iso};
use crate::domain::ids::{UserId, VideoId};
use crate::domain::upload_policy::{
    FILE_FIELD, KEY_FIELD, POLICY_FIELD, SIGNATURE_FIELD, UploadPolicy,
};
use crate::media::MediaError;
use crate::objects::PutError;
use crate::store::{UploadMedia, UploadRecord, UploadStatus};

/// The path of Tessera's own upload URL (no API key: the policy authenticates).
pub const UPLOAD_PATH: &str = "/upload";
/// Room for the form's fields and part headers around the file itself: the
/// most the server reads outside the file part (a preamble, names, headers).
const FORM_OVERHEAD: u64 = 64 * 1024;
/// After its first minute, an upload must average at least this many bytes
/// a second (a trickle would hold its slot for ever).
const MIN_UPLOAD_RATE: u64 = 1024;
/// An upload that sends nothing for this long is dropped.
const UPLOAD_IDLE: std::time::Duration = std::time::Duration::from_secs(60);
/// How long one finalize call may hold an upload (a fetch from S3 and a
/// probe); a call that died lets the next one in after this.
const FINALIZE_LEASE: std::time::Duration = std::time::Duration::from_secs(30 * 60);
/// Longest form field name quoted back in an error.
const QUOTED_NAME_CHARS: usize = 64;
/// Longest value of one policy field.
const MAX_FIELD_BYTES: usize = 8 * 1024;
/// Longest `filename` / `content_type` kept with an upload.
const MAX_NAME_CHARS: usize = 255;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_upload_url))
        .routes(routes!(get_upload_url_uploads))
        .routes(routes!(upload))
        .routes(routes!(finalize))
        .routes(routes!(finalize_uploads))
}

/// The optional body of `get_upload_url`.
#[derive(Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UploadRequest {
    /// The file's name, kept for display (at most 255 characters).
    #[serde(default)]
    filename: Option<String>,
    /// The file's media type, kept for display (at most 255 characters).
    #[serde(default)]
    content_type: Option<String>,
}

/// Where and how to upload one video.
#[derive(Serialize, ToSchema)]
pub struct UploadUrl {
    /// Pass to `finalize_upload`, then use in `video_ids`.
    video_id: VideoId,
    /// POST `multipart/form-data` here: every entry of `fields`, then the
    /// file as the part named `file`.
    upload_url: String,
    /// The signed upload policy's form fields, to post unchanged.
    #[schema(value_type = Object)]
    fields: Map<String, Value>,
    max_file_size_bytes: u64,
    /// When the upload URL stops accepting the file.
    expires_at: String,
}

/// Ask for an upload URL (hosted service path).
#[utoipa::path(post, path = "/videos/get_upload_url", tag = "uploads",
    request_body(content = Option<UploadRequest>, description = "Optional"),
    responses((status = 200, body = UploadUrl), (status = "4XX", body = ErrorBody)))]
async fn get_upload_url(
    State(state): State<AppState>,
    auth: Auth,
    OptionalJson(body): OptionalJson<UploadRequest>,
) -> Result<JsonOut<UploadUrl>, ApiError> {
    issue_upload_url(&state, auth.user_id, body)
        .await
        .map(JsonOut)
}

/// Ask for an upload URL (the `/uploads/video/…` path form).
#[utoipa::path(post, path = "/uploads/video/get_upload_url", tag = "uploads",
    request_body(content = Option<UploadRequest>, description = "Optional"),
    responses((status = 200, body = UploadUrl), (status = "4XX", body = ErrorBody)))]
async fn get_upload_url_uploads(
    State(state): State<AppState>,
    auth: Auth,
    OptionalJson(body): OptionalJson<UploadRequest>,
) -> Result<JsonOut<UploadUrl>, ApiError> {
    issue_upload_url(&state, auth.user_id, body)
        .await
        .map(JsonOut)
}

async fn issue_upload_url(
    state: &AppState,
    user: UserId,
    body: UploadRequest,
) -> Result<UploadUrl, ApiError> {
    let filename = checked_name(body.filename, "filename")?;
    let content_type = checked_name(body.content_type, "content_type")?;
    let now = chrono::Utc::now();
    let expires_unix = now.timestamp() + state.config.upload_url_validity.as_secs() as i64;
    let id = VideoId::new();
    let key = object_key(user, id, filename.as_deref());
    let max_bytes = state.config.upload_max_bytes;
    let expiration = chrono::DateTime::from_timestamp(expires_unix, 0)
        .map(crate::domain::payload::iso8601)
        .unwrap_or_default();
    let (upload_url, fields) = match state
        .objects
        .presigned_post(&key, max_bytes, now, expires_unix)
        .await
    {
        Some(presigned) => {
            presigned.map_err(|e| ApiError::logged("cannot presign an upload", e))?
        }
        None => {
            let policy = UploadPolicy {
                expiration: expiration.clone(),
                video_id: id,
                key: key.clone(),
                max_bytes,
            };
            let fields = policy
                .fields(state.objects.signing_secret())
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect();
            (upload_url(state), fields)
        }
    };
    state
        .store
        .create_upload(&UploadRecord {
            id,
            user_id: user,
            object_key: key,
            filename,
            content_type,
            status: UploadStatus::Pending,
            size_bytes: None,
            media: None,
            created_at: now.timestamp_millis(),
            expires_at: expires_unix * 1000,
            uploaded_at: None,
            finalized_at: None,
        })
        .await?;
    Ok(UploadUrl {
        video_id: id,
        upload_url,
        fields: fields
            .into_iter()
            .map(|(k, v)| (k, Value::String(v)))
            .collect(),
        max_file_size_bytes: max_bytes,
        expires_at: expiration,
    })
}

fn checked_name(value: Option<String>, what: &str) -> Result<Option<String>, ApiError> {
    let Some(value) = value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    // Direction overrides would let a name display as another one.
    let bidi = |c: char| matches!(c, '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{2028}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
    if value.chars().count() > MAX_NAME_CHARS || value.chars().any(|c| c.is_control() || bidi(c)) {
        return Err(ApiError::validation(format!(
            "{what} must be at most {MAX_NAME_CHARS} characters without control or text-direction characters"
        )));
    }
    Ok(Some(value))
}

/// `uploads/{user}/{video}/video.{ext}`: the extension (from the file name,
/// when it is a known video one) lets object stores serve the right type.
fn object_key(user: UserId, id: VideoId, filename: Option<&str>) -> String {
    let ext = filename
        .and_then(|f| f.rsplit_once('.'))
        .map(|(_, ext)| ext.to_ascii_lowercase())
        .filter(|ext| matches!(ext.as_str(), "mp4" | "m4v" | "mov" | "webm" | "mkv"));
    match ext {
        Some(ext) => format!("uploads/{user}/{id}/video.{ext}"),
        None => format!("uploads/{user}/{id}/video"),
    }
}

fn upload_url(state: &AppState) -> String {
    let base = state.objects.base_url();
    format!("{}{UPLOAD_PATH}", base.as_str().trim_end_matches('/'))
}

/// Receive an upload: `multipart/form-data` with the fields of
/// `get_upload_url` first and the file (`file`) last. Authenticated by the
/// signed policy in the fields, not by an API key.
#[utoipa::path(post, path = "/upload", tag = "uploads", security(()),
    request_body(content_type = "multipart/form-data", content = UploadForm),
    responses((status = 204, description = "Stored"), (status = "4XX", body = ErrorBody)))]
async fn upload(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<StatusCode, ApiError> {
    // Each upload holds a connection, a parser and a file: a node takes a
    // bounded number at once and says so to the rest.
    let Ok(_slot) = state.upload_slots.clone().try_acquire_owned() else {
        return Err(ApiError::unavailable(format!(
            "this server is receiving {} uploads already; try again shortly",
            state.config.upload_concurrency
        )));
    };
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let boundary = multer::parse_boundary(content_type).map_err(|_| {
        ApiError::validation("the upload must be multipart/form-data (with a boundary)")
    })?;
    // A declared length over the limit is refused before reading anything.
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let ceiling = state.config.upload_max_bytes.saturating_add(FORM_OVERHEAD);
    if declared.is_some_and(|n| n > ceiling) {
        return Err(ApiError::validation(format!(
            "the upload is larger than the policy allows ({} bytes)",
            state.config.upload_max_bytes
        )));
    }
    let meter = Meter::default();
    let mut form = multer::Multipart::new(metered(body, meter.clone()), boundary);
    let mut fields: Vec<(String, String)> = Vec::new();
    let file = loop {
        let field = form.next_field().await.map_err(form_error)?;
        let Some(mut field) = field else {
            return Err(ApiError::validation(
                "the form has no file part (post every field of `fields`, then `file`)",
            ));
        };
        let name = field.name().unwrap_or_default().to_owned();
        if name == FILE_FIELD {
            break field;
        }
        if ![KEY_FIELD, POLICY_FIELD, SIGNATURE_FIELD].contains(&name.as_str()) {
            return Err(ApiError::validation(format!(
                "unexpected form field {:?}: post exactly the fields of `fields`, then `file`",
                super::error::shorten(&name, QUOTED_NAME_CHARS)
            )));
        }
        if fields.iter().any(|(n, _)| *n == name) {
            return Err(ApiError::validation(format!(
                "the form field {name:?} is given twice"
            )));
        }
        let mut value = Vec::new();
        while let Some(chunk) = field.chunk().await.map_err(form_error)? {
            value.extend_from_slice(&chunk);
            if value.len() > MAX_FIELD_BYTES {
                return Err(ApiError::validation(format!(
                    "the form field {name:?} is too long"
                )));
            }
        }
        let value = String::from_utf8(value)
            .map_err(|_| ApiError::validation(format!("the form field {name:?} is not text")))?;
        fields.push((name, value));
    };
    let field = |name: &str| {
        fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    let policy = UploadPolicy::verify(
        field(KEY_FIELD),
        field(POLICY_FIELD),
        field(SIGNATURE_FIELD),
        state.objects.signing_secret(),
        chrono::Utc::now().timestamp(),
    )
    .map_err(|e| ApiError::validation(e.to_string()))?;
    let upload =
        state.store.upload(policy.video_id).await?.ok_or_else(|| {
            ApiError::validation("this upload no longer exists; ask for a new URL")
        })?;
    if upload.status == UploadStatus::Finalized {
        return Err(ApiError::conflict(
            "this upload is finalized; ask for a new URL to upload another file",
        ));
    }
    if upload.object_key != policy.key {
        return Err(ApiError::validation(
            "the upload policy's signature does not match: the fields were changed",
        ));
    }
    // The file part's own name, for uploads whose URL was asked without one
    // (an unusable name is simply not kept).
    let sent_name = checked_name(file.file_name().map(str::to_owned), "filename")
        .ok()
        .flatten();
    let reader = tokio_util::io::StreamReader::new(file.map_err(std::io::Error::other));
    meter.in_file(true);
    // The file goes to a key of this request's own and replaces the
    // upload's file only once the whole form was read and accepted: a
    // refused or broken-off form changes nothing.
    let staging = sibling_key(&policy.key, "incoming");
    let size = match state
        .objects
        .put_stream(&staging, reader, Some(policy.max_bytes))
        .await
    {
        Ok(size) => size,
        Err(PutError::TooLarge { limit }) => {
            return Err(ApiError::validation(format!(
                "the file is larger than the policy allows ({limit} bytes)"
            )));
        }
        Err(PutError::Source(e)) => {
            return Err(ApiError::validation(format!(
                "the upload broke off: {}",
                body_error_text(&e)
            )));
        }
        Err(PutError::Store(e)) => return Err(ApiError::logged("cannot store an upload", e)),
    };
    // The file is the last part, as S3 wants it: anything after it refuses
    // the whole form.
    meter.in_file(false);
    let after = match form.next_field().await {
        Ok(None) => None,
        Ok(Some(field)) => Some(format!(
            "the file must be the form's last part; {:?} follows it",
            super::error::shorten(field.name().unwrap_or_default(), QUOTED_NAME_CHARS)
        )),
        Err(e) => Some(form_error(e).detail),
    };
    if let Some(detail) = after {
        discard(&state, &staging).await;
        return Err(ApiError::validation(detail));
    }
    let now = chrono::Utc::now().timestamp_millis();
    let accepted = state
        .store
        .mark_uploaded(policy.video_id, size, sent_name, now)
        .await;
    if !matches!(accepted, Ok(true)) {
        discard(&state, &staging).await;
        return match accepted {
            Err(e) => Err(e.into()),
            _ => Err(ApiError::conflict(
                "this upload was finalized, is being finalized, or was removed while the file \
                 arrived; ask for a new URL to upload another file",
            )),
        };
    }
    if let Err(e) = state.objects.rename(&staging, &policy.key).await {
        discard(&state, &staging).await;
        state.store.reopen_upload(policy.video_id).await.ok();
        return Err(ApiError::logged("cannot store an upload", e));
    }
    tracing::info!(video_id = %policy.video_id, bytes = size, "upload received");
    Ok(StatusCode::NO_CONTENT)
}

/// Counts the bytes read outside the file part, so a form cannot make the
/// parser hold more than [`FORM_OVERHEAD`] (plus one chunk) in memory with
/// long names, part headers or preambles.
/// The handler says when the file part starts and ends.
#[derive(Clone, Default)]
struct Meter(Arc<MeterState>);

#[derive(Default)]
struct MeterState {
    outside: AtomicU64,
    in_file: AtomicBool,
}

impl Meter {
    fn in_file(&self, yes: bool) {
        self.0.in_file.store(yes, Ordering::Relaxed);
    }

    /// `false` once the bytes read outside the file passed the overhead.
    fn admit(&self, len: usize) -> bool {
        if self.0.in_file.load(Ordering::Relaxed) {
            return true;
        }
        // Checked before this chunk: the chunk that holds the file's first
        // bytes (read while its headers are parsed) never refuses a form.
        self.0.outside.fetch_add(len as u64, Ordering::Relaxed) <= FORM_OVERHEAD
    }
}

/// Why the request body stopped.
#[derive(Debug, thiserror::Error)]
enum BodyError {
    #[error("the form's fields and part headers take more than {FORM_OVERHEAD} bytes")]
    FormTooLong,
    #[error("nothing arrived for {} s", UPLOAD_IDLE.as_secs())]
    Idle,
    #[error("the upload arrives slower than {MIN_UPLOAD_RATE} bytes/s")]
    TooSlow,
    #[error("{0}")]
    Body(axum::Error),
}

/// The body as the multipart parser reads it: metered, dropped when idle,
/// and dropped when, past its first [`UPLOAD_IDLE`], it arrives slower than
/// [`MIN_UPLOAD_RATE`] on average (a trickle would hold its slot for ever).
fn metered(
    body: Body,
    meter: Meter,
) -> impl futures_util::Stream<Item = Result<bytes::Bytes, BodyError>> {
    let start = (
        body.into_data_stream(),
        meter,
        0u64,
        tokio::time::Instant::now(),
    );
    futures_util::stream::unfold(Some(start), |state| async move {
        let (mut body, meter, mut total, started) = state?;
        let too_slow = |total: u64| {
            let elapsed = started.elapsed();
            elapsed > UPLOAD_IDLE && (total as f64) < MIN_UPLOAD_RATE as f64 * elapsed.as_secs_f64()
        };
        let next = match tokio::time::timeout(UPLOAD_IDLE, body.next()).await {
            Err(_) => Err(BodyError::Idle),
            Ok(None) => return None,
            Ok(Some(Err(e))) => Err(BodyError::Body(e)),
            Ok(Some(Ok(chunk))) => {
                total += chunk.len() as u64;
                if too_slow(total) {
                    Err(BodyError::TooSlow)
                } else if meter.admit(chunk.len()) {
                    Ok(chunk)
                } else {
                    Err(BodyError::FormTooLong)
                }
            }
        };
        // After an error the stream ends.
        let rest = next.is_ok().then_some((body, meter, total, started));
        Some((next, rest))
    })
}

/// The text of a body failure: ours when the meter stopped it.
fn body_error_text(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = Some(e);
    while let Some(err) = cause {
        if let Some(ours) = err.downcast_ref::<BodyError>() {
            return ours.to_string();
        }
        cause = err.source();
    }
    e.to_string()
}

fn form_error(e: multer::Error) -> ApiError {
    ApiError::validation(format!(
        "the form could not be read: {}",
        body_error_text(&e)
    ))
}

/// The form `upload_url` accepts (documentation only: the fields come from
/// `get_upload_url`, with S3 storage they are S3's).
#[derive(ToSchema)]
#[allow(dead_code)]
struct UploadForm {
    key: String,
    policy: String,
    #[schema(rename = "x-tessera-signature")]
    signature: String,
    /// The video, after every other field.
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
}

/// The body of `finalize_upload`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FinalizeRequest {
    video_id: String,
}

/// An upload as the API shows it.
#[derive(Serialize, ToSchema)]
pub struct UploadView {
    video_id: VideoId,
    status: UploadStatus,
    filename: Option<String>,
    content_type: Option<String>,
    size_bytes: Option<u64>,
    duration_ms: Option<u64>,
    width: Option<u32>,
    height: Option<u32>,
    created_at: String,
    finalized_at: Option<String>,
}

pub fn upload_view(u: &UploadRecord) -> UploadView {
    UploadView {
        video_id: u.id,
        status: u.status,
        filename: u.filename.clone(),
        content_type: u.content_type.clone(),
        size_bytes: u.size_bytes,
        duration_ms: u.media.map(|m| m.duration_ms),
        width: u.media.map(|m| m.width),
        height: u.media.map(|m| m.height),
        created_at: iso(u.created_at),
        finalized_at: u.finalized_at.map(iso),
    }
}

/// Check an uploaded file and make it usable in `video_ids` (hosted service path).
#[utoipa::path(post, path = "/videos/finalize_upload", tag = "uploads",
    request_body = FinalizeRequest,
    responses((status = 200, body = UploadView), (status = 413, body = ErrorBody),
        (status = "4XX", body = ErrorBody),
        (status = 503, body = ErrorBody, description = "ffprobe is missing on this node")))]
async fn finalize(
    State(state): State<AppState>,
    auth: Auth,
    Json(body): Json<FinalizeRequest>,
) -> Result<JsonOut<UploadView>, ApiError> {
    finalize_upload(&state, auth.user_id, &body.video_id)
        .await
        .map(JsonOut)
}

/// Check an uploaded file (the `/uploads/video/…` path form).
#[utoipa::path(post, path = "/uploads/video/finalize_upload", tag = "uploads",
    request_body = FinalizeRequest,
    responses((status = 200, body = UploadView), (status = 413, body = ErrorBody),
        (status = "4XX", body = ErrorBody),
        (status = 503, body = ErrorBody, description = "ffprobe is missing on this node")))]
async fn finalize_uploads(
    State(state): State<AppState>,
    auth: Auth,
    Json(body): Json<FinalizeRequest>,
) -> Result<JsonOut<UploadView>, ApiError> {
    finalize_upload(&state, auth.user_id, &body.video_id)
        .await
        .map(JsonOut)
}

/// The caller's upload, or 404 (another user's upload does not exist for them).
pub async fn owned_upload(
    state: &AppState,
    user: UserId,
    raw_id: &str,
) -> Result<UploadRecord, ApiError> {
    let not_found = || ApiError::not_found("video not found");
    let id: VideoId = raw_id.trim().parse().map_err(|_| not_found())?;
    match state.store.upload(id).await? {
        Some(upload) if upload.user_id == user => Ok(upload),
        _ => Err(not_found()),
    }
}

async fn finalize_upload(
    state: &AppState,
    user: UserId,
    raw_id: &str,
) -> Result<UploadView, ApiError> {
    let upload = owned_upload(state, user, raw_id).await?;
    if upload.status == UploadStatus::Finalized {
        return Ok(upload_view(&upload));
    }
    let now = chrono::Utc::now().timestamp_millis();
    let lease = now + FINALIZE_LEASE.as_millis() as i64;
    if !state.store.begin_finalize(upload.id, now, lease).await? {
        let current = owned_upload(state, user, raw_id).await?;
        if current.status == UploadStatus::Finalized {
            return Ok(upload_view(&current));
        }
        return Err(ApiError::conflict(
            "another finalize_upload call is checking this upload; call again in a moment",
        ));
    }
    let result = check_and_finalize(state, user, raw_id, &upload).await;
    if let Err(e) = state.store.end_finalize(upload.id).await {
        tracing::warn!(error = %e, video_id = %upload.id, "cannot end finalizing an upload");
    }
    result
}

/// [`finalize_upload`] under its lease.
async fn check_and_finalize(
    state: &AppState,
    user: UserId,
    raw_id: &str,
    upload: &UploadRecord,
) -> Result<UploadView, ApiError> {
    // The file moves where no upload form can write before it is checked:
    // a form posted again while its URL is still valid (straight to the
    // bucket, with S3) cannot change a finalized video.
    let key = sibling_key(&upload.object_key, "checked");
    let moved = state
        .objects
        .rename(&upload.object_key, &key)
        .await
        .map_err(|e| ApiError::logged("cannot move an upload", e))?;
    if !moved {
        // Under the lease the upload is not finalized: nothing was sent.
        return Err(ApiError::validation(
            "no file has been uploaded for this video_id yet",
        ));
    }
    let size = match state.objects.size(&key).await {
        Ok(Some(size)) => size,
        Ok(None) => return Err(ApiError::validation("the uploaded file disappeared")),
        Err(e) => {
            put_back(state, &key, &upload.object_key).await;
            return Err(ApiError::logged("cannot stat an upload", e));
        }
    };
    let max = state.config.upload_max_bytes;
    if size > max {
        refuse(state, upload.id, &key).await;
        return Err(ApiError::too_large(format!(
            "size: the file is {size} bytes; the limit is {max} bytes"
        )));
    }
    let probe = match probe_upload(state, upload.id, &key).await {
        Ok(probe) => probe,
        Err(MediaError::NotAVideo(why)) => {
            refuse(state, upload.id, &key).await;
            return Err(ApiError::too_large(format!("not a video: {why}")));
        }
        Err(MediaError::TooLong {
            duration_ms,
            max_seconds,
        }) => {
            refuse(state, upload.id, &key).await;
            return Err(ApiError::too_large(format!(
                "duration: the video is {} s long; the limit is {max_seconds} s",
                duration_ms.div_ceil(1000)
            )));
        }
        Err(e) => {
            put_back(state, &key, &upload.object_key).await;
            return Err(match e {
                MediaError::Unavailable { .. } => {
                    tracing::error!(error = %e, "cannot probe an upload");
                    ApiError::unavailable(format!("{e}; install ffmpeg on this server (make deps)"))
                }
                e => ApiError::logged("cannot probe an upload", e.into()),
            });
        }
    };
    // A file sent without a known extension gets the one its container
    // has, so its URLs play instead of downloading.
    let key = match extension_for(&key, &probe) {
        Some(named) => match state.objects.rename(&key, &named).await {
            Ok(true) => named,
            _ => key,
        },
        None => key,
    };
    let media = UploadMedia {
        duration_ms: probe.duration_ms,
        width: probe.width,
        height: probe.height,
    };
    let now = chrono::Utc::now().timestamp_millis();
    let finalized = state
        .store
        .finalize_upload(upload.id, key.clone(), size, media, now)
        .await?;
    if !finalized {
        // The lease ran out and another call finalized it, or the upload
        // was cleaned up: this copy is nobody's.
        discard(state, &key).await;
    }
    let current = owned_upload(state, user, raw_id).await?;
    if current.status != UploadStatus::Finalized {
        return Err(ApiError::not_found("video not found"));
    }
    Ok(upload_view(&current))
}

/// A unique key beside the upload's, in the same folder: where a form's
/// file arrives (`incoming`) and where a file is checked and, once
/// finalized, kept (`checked`): `uploads/{user}/{video}/video.mp4` →
/// `uploads/{user}/{video}/checked-{unique}/video.mp4`.
fn sibling_key(upload_key: &str, what: &str) -> String {
    let (dir, name) = upload_key.rsplit_once('/').unwrap_or(("", upload_key));
    format!("{dir}/{what}-{}/{name}", uuid::Uuid::now_v7().simple())
}

/// `key` with the extension of the probed container, when it has none.
fn extension_for(key: &str, probe: &crate::media::Probe) -> Option<String> {
    let name = key.rsplit('/').next().unwrap_or(key);
    if name.contains('.') {
        return None;
    }
    let formats: Vec<&str> = probe.format_name.split(',').collect();
    let ext = if formats.contains(&"mp4") {
        "mp4"
    } else if formats.contains(&"webm")
        && matches!(probe.video_codec.as_str(), "vp8" | "vp9" | "av1")
    {
        "webm"
    } else if formats.contains(&"matroska") {
        "mkv"
    } else {
        return None;
    };
    Some(format!("{key}.{ext}"))
}

/// Probe the stored file: in place with a local store, from a temporary
/// copy with S3.
async fn probe_upload(
    state: &AppState,
    id: VideoId,
    key: &str,
) -> Result<crate::media::Probe, MediaError> {
    if let Some(path) = state.objects.local_path(key) {
        return state.media.probe(&path).await;
    }
    let dir = state.config.data_dir.join("tmp");
    tokio::fs::create_dir_all(&dir)
        .await
        .map_err(MediaError::io("create a temporary directory"))?;
    let path = dir.join(format!("upload-{id}-{}", uuid::Uuid::now_v7().simple()));
    let fetched = state.objects.fetch_to_file(key, &path).await;
    let probed = match fetched {
        Ok(()) => state.media.probe(&path).await,
        Err(e) => Err(MediaError::Io {
            context: "fetch the upload",
            source: std::io::Error::other(format!("{e:#}")),
        }),
    };
    let _ = tokio::fs::remove_file(&path).await;
    probed
}

/// A file that failed its checks is removed and the upload waits for a
/// file again: its URL (while valid) can take another one.
async fn refuse(state: &AppState, id: VideoId, key: &str) {
    discard(state, key).await;
    if let Err(e) = state.store.reopen_upload(id).await {
        tracing::warn!(error = %e, video_id = %id, "cannot reopen a refused upload");
    }
}

/// A file that could not be checked for the server's reasons goes back to
/// the upload's key, to be finalized later.
async fn put_back(state: &AppState, checked: &str, upload_key: &str) {
    if let Err(e) = state.objects.rename(checked, upload_key).await {
        tracing::warn!(error = format!("{e:#}"), "cannot move an upload back");
    }
}

/// Remove a file nothing will point at.
async fn discard(state: &AppState, key: &str) {
    if let Err(e) = state.objects.delete(key).await {
        tracing::warn!(error = format!("{e:#}"), "cannot remove a refused upload");
    }
}

#[cfg(test)]
mod tests {
    use super::extension_for;
    use crate::media::Probe;

    fn probe(format_name: &str, video_codec: &str) -> Probe {
        Probe {
            duration_ms: 1000,
            width: 640,
            height: 360,
            has_audio: true,
            video_codec: video_codec.into(),
            format_name: format_name.into(),
        }
    }

    #[test]
    fn a_file_without_an_extension_gets_its_containers() {
        let mp4 = probe("mov,mp4,m4a,3gp,3g2,mj2", "h264");
        let webm = probe("matroska,webm", "vp9");
        let mkv = probe("matroska,webm", "h264");
        let avi = probe("avi", "mpeg4");
        let key = "uploads/u/v/checked-1/video";
        assert_eq!(
            extension_for(key, &mp4).as_deref(),
            Some("uploads/u/v/checked-1/video.mp4")
        );
        assert_eq!(
            extension_for(key, &webm).as_deref(),
            Some("uploads/u/v/checked-1/video.webm")
        );
        assert_eq!(
            extension_for(key, &mkv).as_deref(),
            Some("uploads/u/v/checked-1/video.mkv")
        );
        assert_eq!(extension_for(key, &avi), None);
        assert_eq!(extension_for("uploads/u/v/checked-1/video.mov", &mp4), None);
    }
}
