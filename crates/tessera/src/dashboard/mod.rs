//! The operator dashboard: server-rendered pages under `/dashboard`.
//!
//! Plain HTML forms, no JavaScript, one embedded stylesheet: pages work with
//! no outside network and under a Content-Security-Policy that allows no
//! script at all. Every page reads through the same store calls as the API,
//! and every action goes through the same operations as the API
//! (`api::runs::start_run`, `api::webhooks::send_test`, …), so the dashboard
//! cannot do anything the API would refuse.

mod agents;
mod extract;
mod home;
mod layout;
mod runs;
mod session;
mod settings;
mod triggers;
mod uploads;
mod webhooks;

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};

use crate::api::AppState;
pub use layout::PageError;

const CSS: &str = include_str!("app.css");
/// The stylesheet's path carries the version, so an upgrade is never served a stale copy.
const CSS_PATH: &str = concat!("/dashboard/assets/app-", env!("CARGO_PKG_VERSION"), ".css");

/// No script, no plugin, nothing from another origin; images and video
/// only from this server (signed file URLs).
const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; media-src 'self'; \
                   form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/dashboard", get(home::page_handler))
        .route(
            "/dashboard/",
            get(|| async { Redirect::permanent("/dashboard") }),
        )
        .route(
            "/dashboard/login",
            get(session::login_page).post(session::login),
        )
        .route("/dashboard/logout", post(session::logout))
        .route("/dashboard/runs", get(runs::list).post(runs::start))
        .route("/dashboard/runs/new", get(runs::new_run))
        .route("/dashboard/runs/{id}", get(runs::detail))
        .route("/dashboard/runs/{id}/cancel", post(runs::cancel))
        .route("/dashboard/webhooks", get(webhooks::list))
        .route(
            "/dashboard/webhooks/test",
            get(webhooks::test_form).post(webhooks::test),
        )
        .route("/dashboard/webhooks/{id}", get(webhooks::detail))
        .route("/dashboard/webhooks/{id}/resend", post(webhooks::resend))
        .route("/dashboard/agents", get(agents::list))
        .route("/dashboard/agents/{id}", get(agents::detail))
        .route("/dashboard/triggers", get(triggers::list))
        .route("/dashboard/uploads", get(uploads::list))
        .route("/dashboard/settings", get(settings::page_handler))
        .route("/dashboard/settings/secret", post(settings::secret))
        .route(
            "/dashboard/settings/signing_key",
            post(settings::signing_key),
        )
        .route("/dashboard/settings/keys", post(settings::create_key))
        .route(
            "/dashboard/settings/keys/{id}/revoke",
            post(settings::revoke_key),
        )
        .route(CSS_PATH, get(stylesheet))
        .layer(middleware::from_fn(security_headers))
}

/// Whether `path` is one of the dashboard's (its errors are pages, not JSON).
pub fn owns(path: &str) -> bool {
    path == "/dashboard" || path.starts_with("/dashboard/")
}

/// An unknown `/dashboard/…` path: an HTML 404 instead of the API's JSON one.
pub fn not_found() -> Response {
    let mut response = PageError::not_found("page").into_response();
    secure(&mut response);
    response
}

/// A dashboard path asked with a method it does not take.
pub fn method_not_allowed() -> Response {
    let mut response = PageError {
        status: axum::http::StatusCode::METHOD_NOT_ALLOWED,
        message: "This page does not accept that kind of request.".into(),
    }
    .into_response();
    secure(&mut response);
    response
}

async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        CSS,
    )
        .into_response()
}

/// Headers every dashboard response carries. Pages show account data and
/// one-time secrets, so nothing but the stylesheet is cached. Referrers stay
/// on this origin (signed URLs never leak to another site), and same-origin
/// form posts keep a real `Origin` header, which the CSRF check reads.
async fn security_headers(req: Request, next: Next) -> Response {
    let mut response = next.run(req).await;
    secure(&mut response);
    response
}

fn secure(response: &mut Response) {
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
}
