//! Dashboard sessions and CSRF protection.
//!
//! Logging in with an API key opens a session: the cookie carries a random
//! token, the store only its SHA-256, and the session ends when it expires,
//! on logout, or when the API key that opened it is revoked.
//!
//! Every form carries a CSRF token derived from the session token
//! (HMAC-SHA256), so it needs no storage and cannot be guessed without the
//! HttpOnly cookie. The login form, which has no session yet, uses a
//! double-submit token: a random cookie whose value the form must repeat.
//! Requests a browser marks as cross-site (`Sec-Fetch-Site`) or whose
//! `Origin` differs from the page's are refused before the token is checked.

use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use hmac::{Hmac, Mac};
use maud::html;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::layout::{PageError, bare_page};
use crate::api::AppState;
use crate::domain::ids::{ApiKeyId, UserId};
use crate::domain::signing::hash_api_key;
use crate::store::SessionRecord;

const SESSION_COOKIE: &str = "tessera_session";
const LOGIN_COOKIE: &str = "tessera_login";
const COOKIE_PATH: &str = "/dashboard";
/// Most bytes a dashboard form may send.
const FORM_LIMIT: usize = 64 * 1024;

/// The logged-in user of a dashboard request.
#[derive(Clone, Debug)]
pub struct Session {
    pub user_id: UserId,
    pub api_key_id: ApiKeyId,
    /// The token every form of this session must send back.
    pub csrf: String,
    token_hash: String,
}

impl FromRequestParts<AppState> for Session {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let to_login = || {
            let next = parts
                .uri
                .path_and_query()
                .map(|p| p.as_str())
                .filter(|p| parts.method == axum::http::Method::GET && safe_next(p))
                .unwrap_or("/dashboard");
            let target = format!(
                "/dashboard/login?next={}",
                url::form_urlencoded::byte_serialize(next.as_bytes()).collect::<String>()
            );
            Redirect::to(&target).into_response()
        };
        let Some(token) = cookie(&parts.headers, SESSION_COOKIE) else {
            return Err(to_login());
        };
        let token_hash = hex::encode(Sha256::digest(token.as_bytes()));
        let now = chrono::Utc::now().timestamp_millis();
        match state.store.session(&token_hash, now).await {
            Ok(Some(s)) => Ok(Session {
                user_id: s.user_id,
                api_key_id: s.api_key_id,
                csrf: csrf_token(token),
                token_hash,
            }),
            Ok(None) => Err(to_login()),
            Err(e) => Err(PageError::from(crate::api::error::ApiError::from(e)).into_response()),
        }
    }
}

/// A POSTed form whose CSRF token matched the session's.
pub struct Form<T>(pub Session, pub T);

#[derive(Deserialize)]
struct CsrfField {
    #[serde(default)]
    csrf: String,
}

impl<T: DeserializeOwned + Send> FromRequest<AppState> for Form<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = req.into_parts();
        let session = Session::from_request_parts(&mut parts, state).await?;
        same_origin(&parts.headers, state.config.public_url.as_ref())
            .map_err(IntoResponse::into_response)?;
        let bytes = read_form(&parts.headers, body).await?;
        let presented = serde_urlencoded::from_bytes::<CsrfField>(&bytes)
            .map(|f| f.csrf)
            .unwrap_or_default();
        if !equal(&presented, &session.csrf) {
            return Err(forbidden_csrf().into_response());
        }
        let form = serde_urlencoded::from_bytes::<T>(&bytes).map_err(|e| {
            PageError::bad_request(format!("the form is not valid: {e}")).into_response()
        })?;
        Ok(Form(session, form))
    }
}

async fn read_form(headers: &HeaderMap, body: axum::body::Body) -> Result<bytes::Bytes, Response> {
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return Err(PageError::bad_request("expected a submitted HTML form").into_response());
    }
    axum::body::to_bytes(body, FORM_LIMIT).await.map_err(|_| {
        PageError {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            message: "the form is too large".into(),
        }
        .into_response()
    })
}

fn forbidden_csrf() -> PageError {
    PageError {
        status: StatusCode::FORBIDDEN,
        message: "This form has expired or did not come from this dashboard. Go back, reload the page and try again.".into(),
    }
}

/// Refuse requests a browser says come from another site. A request's
/// `Origin` must name the host it was sent to (`Host`) or, behind a proxy
/// that rewrites `Host`, the configured public URL.
fn same_origin(headers: &HeaderMap, public_url: Option<&url::Url>) -> Result<(), PageError> {
    let cross = |v: &HeaderValue| v.to_str().map_or(true, |s| s == "cross-site");
    if headers.get("sec-fetch-site").is_some_and(cross) {
        return Err(forbidden_csrf());
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let origin = origin.to_str().unwrap_or("null");
    let origin_host = origin.split_once("://").map_or("", |(_, h)| h);
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let public = public_url.map(|u| u.origin().ascii_serialization());
    let matches_host = !host.is_empty() && origin_host.eq_ignore_ascii_case(host);
    let matches_public = public.is_some_and(|p| p.eq_ignore_ascii_case(origin));
    if origin == "null" || !(matches_host || matches_public) {
        return Err(forbidden_csrf());
    }
    Ok(())
}

fn csrf_token(session_token: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(session_token.as_bytes())
        .expect("HMAC takes keys of any length");
    mac.update(b"tessera dashboard csrf v1");
    hex::encode(mac.finalize().into_bytes())
}

fn equal(a: &str, b: &str) -> bool {
    !a.is_empty() && a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// The value of one cookie.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty())
}

/// Only local dashboard paths may be a post-login destination.
fn safe_next(next: &str) -> bool {
    next.starts_with("/dashboard")
        && !next.starts_with("//")
        && !next.contains('\\')
        && !next.chars().any(char::is_control)
}

fn set_cookie(state: &AppState, name: &str, value: &str, max_age_secs: u64) -> HeaderValue {
    let secure = state
        .config
        .public_url
        .as_ref()
        .is_some_and(|u| u.scheme() == "https");
    let mut c = format!(
        "{name}={value}; Path={COOKIE_PATH}; Max-Age={max_age_secs}; HttpOnly; SameSite=Lax"
    );
    if secure {
        c.push_str("; Secure");
    }
    HeaderValue::from_str(&c).expect("cookie values are hex")
}

fn random_token() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

#[derive(Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
}

/// `GET /dashboard/login`
pub async fn login_page(
    State(state): State<AppState>,
    super::extract::Query(q): super::extract::Query<LoginQuery>,
    headers: HeaderMap,
) -> Response {
    let token = cookie(&headers, LOGIN_COOKIE)
        .filter(|t| t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(str::to_owned)
        .unwrap_or_else(random_token);
    login_form(&state, &token, q.next.as_deref(), None, StatusCode::OK)
}

fn login_form(
    state: &AppState,
    token: &str,
    next: Option<&str>,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let next = next.filter(|n| safe_next(n)).unwrap_or("/dashboard");
    let body = html! {
        section.login {
            h1 { "Tessera" }
            p.muted { "Log in with one of your API keys. " code { "make run" } " prints the first key once when the server starts for the first time; " code { "tessera keys create" } " makes another." }
            @if let Some(e) = error { p.flash.error role="alert" { (e) } }
            form method="post" action="/dashboard/login" {
                input type="hidden" name="csrf" value=(token);
                input type="hidden" name="next" value=(next);
                label for="api_key" { "API key" }
                input #api_key type="password" name="api_key" autocomplete="current-password" required autofocus placeholder="mk_…";
                button type="submit" { "Log in" }
            }
        }
    };
    let mut response = (status, bare_page("Log in", body)).into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(state, LOGIN_COOKIE, token, 3600),
    );
    response
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    api_key: String,
    #[serde(default)]
    next: Option<String>,
}

/// `POST /dashboard/login`
pub async fn login(State(state): State<AppState>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    if let Err(e) = same_origin(&parts.headers, state.config.public_url.as_ref()) {
        return e.into_response();
    }
    let bytes = match read_form(&parts.headers, body).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let form: LoginForm = match serde_urlencoded::from_bytes(&bytes) {
        Ok(f) => f,
        Err(e) => {
            return PageError::bad_request(format!("the form is not valid: {e}")).into_response();
        }
    };
    let expected = cookie(&parts.headers, LOGIN_COOKIE).unwrap_or("");
    if !equal(&form.csrf, expected) {
        return forbidden_csrf().into_response();
    }
    let now = chrono::Utc::now().timestamp_millis();
    let key = form.api_key.trim();
    let found = if key.is_empty() {
        Ok(None)
    } else {
        state.store.authenticate(&hash_api_key(key), now).await
    };
    let record = match found {
        Ok(Some(r)) => r,
        Ok(None) => {
            tracing::info!("dashboard login refused: unknown or revoked API key");
            return login_form(
                &state,
                expected,
                form.next.as_deref(),
                Some("That API key is not valid."),
                StatusCode::UNAUTHORIZED,
            );
        }
        Err(e) => return PageError::from(crate::api::error::ApiError::from(e)).into_response(),
    };
    let token = random_token();
    let lifetime = state.config.dashboard_session;
    let session = SessionRecord {
        user_id: record.user_id,
        api_key_id: record.id,
        created_at: now,
        expires_at: now + lifetime.as_millis() as i64,
    };
    let hash = hex::encode(Sha256::digest(token.as_bytes()));
    if let Err(e) = state.store.create_session(&hash, &session).await {
        return PageError::from(crate::api::error::ApiError::from(e)).into_response();
    }
    tracing::info!(user = %record.user_id, key = %record.id, "dashboard login");
    let next = form
        .next
        .as_deref()
        .filter(|n| safe_next(n))
        .unwrap_or("/dashboard");
    let mut response = Redirect::to(next).into_response();
    let headers = response.headers_mut();
    headers.append(
        header::SET_COOKIE,
        set_cookie(&state, SESSION_COOKIE, &token, lifetime.as_secs()),
    );
    headers.append(header::SET_COOKIE, set_cookie(&state, LOGIN_COOKIE, "", 0));
    response
}

#[derive(Deserialize)]
pub struct Empty {}

/// `POST /dashboard/logout`
pub async fn logout(
    State(state): State<AppState>,
    Form(session, Empty {}): Form<Empty>,
) -> Response {
    if let Err(e) = state.store.delete_session(&session.token_hash).await {
        return PageError::from(crate::api::error::ApiError::from(e)).into_response();
    }
    let mut response = Redirect::to("/dashboard/login").into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(&state, SESSION_COOKIE, "", 0),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_dashboard_paths_are_login_destinations() {
        assert!(safe_next("/dashboard/runs?status=failed"));
        for bad in [
            "//evil.test",
            "https://evil.test",
            "/files/x",
            "/dashboard\n",
            "/dashboard/\\evil",
        ] {
            assert!(!safe_next(bad), "{bad}");
        }
    }

    #[test]
    fn csrf_tokens_depend_on_the_session_and_compare_strictly() {
        let a = csrf_token("one");
        assert_eq!(a, csrf_token("one"));
        assert_ne!(a, csrf_token("two"));
        assert!(equal(&a, &a.clone()));
        assert!(!equal("", ""));
        assert!(!equal(&a, &a[1..]));
    }

    #[test]
    fn cross_site_requests_are_refused() {
        let mut h = HeaderMap::new();
        h.insert("sec-fetch-site", HeaderValue::from_static("same-origin"));
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8080"));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://127.0.0.1:8080"),
        );
        assert!(same_origin(&h, None).is_ok());
        h.insert(header::ORIGIN, HeaderValue::from_static("http://evil.test"));
        assert!(same_origin(&h, None).is_err());
        h.insert(header::ORIGIN, HeaderValue::from_static("null"));
        assert!(same_origin(&h, None).is_err());
        h.remove(header::ORIGIN);
        h.insert("sec-fetch-site", HeaderValue::from_static("cross-site"));
        assert!(same_origin(&h, None).is_err());
    }

    #[test]
    fn behind_a_proxy_the_public_url_is_the_origin() {
        // A TLS proxy forwards to 127.0.0.1:8080 without passing `Host` on.
        let public = url::Url::parse("https://videos.example.com/").unwrap();
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8080"));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://videos.example.com"),
        );
        assert!(same_origin(&h, None).is_err());
        assert!(same_origin(&h, Some(&public)).is_ok());
        // The scheme counts: a plain-http page is another origin.
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://videos.example.com"),
        );
        assert!(same_origin(&h, Some(&public)).is_err());
    }

    #[test]
    fn cookies_are_found_by_exact_name() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("xtessera_session=no; tessera_session=yes"),
        );
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("yes"));
        assert_eq!(cookie(&h, LOGIN_COOKIE), None);
    }
}
