//! The page shell and small view helpers shared by every dashboard page.
//! Everything goes through maud, which escapes every interpolated value:
//! no page builds HTML by string concatenation.

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};

use super::session::Session;
use crate::api::error::ApiError;
use crate::store::{DeliveryStatus, RunStatus, StoreError};

/// Which section of the navigation is active.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Home,
    Runs,
    Webhooks,
    Agents,
    Triggers,
    Uploads,
    Settings,
}

const SECTIONS: [(Section, &str, &str); 7] = [
    (Section::Home, "Overview", "/dashboard"),
    (Section::Runs, "Runs", "/dashboard/runs"),
    (Section::Webhooks, "Webhooks", "/dashboard/webhooks"),
    (Section::Agents, "Agents", "/dashboard/agents"),
    (Section::Triggers, "Triggers", "/dashboard/triggers"),
    (Section::Uploads, "Uploads", "/dashboard/uploads"),
    (Section::Settings, "Settings", "/dashboard/settings"),
];

/// A full page for a logged-in user.
pub fn page(session: &Session, section: Section, title: &str, body: Markup) -> Html<String> {
    page_with(session, section, title, None, body)
}

/// A full page that reloads itself every `refresh` seconds (while work is pending).
pub fn page_with(
    session: &Session,
    section: Section,
    title: &str,
    refresh: Option<u32>,
    body: Markup,
) -> Html<String> {
    let shell = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                (head(title))
                @if let Some(secs) = refresh { meta http-equiv="refresh" content=(secs); }
            }
            body {
                header.top {
                    a.brand href="/dashboard" { "Tessera" }
                    nav {
                        @for (s, label, href) in SECTIONS {
                            a href=(href) aria-current=[(s == section).then_some("page")] { (label) }
                        }
                    }
                    form.logout method="post" action="/dashboard/logout" {
                        (csrf(session))
                        button.link type="submit" { "Log out" }
                    }
                }
                main { (body) }
            }
        }
    };
    Html(shell.into_string())
}

/// A page without navigation (login, errors without a session).
pub fn bare_page(title: &str, body: Markup) -> Html<String> {
    Html(
        html! {
            (DOCTYPE)
            html lang="en" {
                head { (head(title)) }
                body.bare { main { (body) } }
            }
        }
        .into_string(),
    )
}

fn head(title: &str) -> Markup {
    html! {
        meta charset="utf-8";
        meta name="viewport" content="width=device-width, initial-scale=1";
        meta name="referrer" content="same-origin";
        title { (title) " · Tessera" }
        link rel="stylesheet" href=(super::CSS_PATH);
    }
}

/// The hidden CSRF field every form carries.
pub fn csrf(session: &Session) -> Markup {
    html! { input type="hidden" name="csrf" value=(session.csrf); }
}

/// A small POST form with one button (resend, cancel, revoke…).
pub fn action_button(session: &Session, action: &str, label: &str, class: &str) -> Markup {
    html! {
        form.inline method="post" action=(action) {
            (csrf(session))
            button class=(class) type="submit" { (label) }
        }
    }
}

/// Milliseconds since the epoch as `2026-12-03 20:15:02 UTC`.
pub fn when(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_default()
}

pub fn when_opt(ms: Option<i64>) -> String {
    ms.map(when).unwrap_or_else(|| "—".into())
}

pub fn run_badge(status: RunStatus) -> Markup {
    let class = match status {
        RunStatus::Completed => "ok",
        RunStatus::Failed => "bad",
        RunStatus::PartialComplete | RunStatus::Cancelled => "warn",
        RunStatus::Queued | RunStatus::Running => "info",
    };
    html! { span class={"badge " (class)} { (status.as_str()) } }
}

pub fn delivery_badge(status: DeliveryStatus) -> Markup {
    let class = match status {
        DeliveryStatus::Succeeded => "ok",
        DeliveryStatus::Failed => "bad",
        DeliveryStatus::Pending => "info",
    };
    html! { span class={"badge " (class)} { (status.as_str()) } }
}

/// Paging links keeping the current filters: back to the newest page when
/// this is a later one, and on to older entries when there are more.
pub fn pager(
    base: &str,
    params: &[(&str, String)],
    later_page: bool,
    next_cursor: Option<String>,
) -> Markup {
    let href = |cursor: Option<&str>| {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in params.iter().filter(|(_, v)| !v.is_empty()) {
            query.append_pair(k, v);
        }
        if let Some(cursor) = cursor {
            query.append_pair("cursor", cursor);
        }
        let query = query.finish();
        if query.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{query}")
        }
    };
    html! {
        @if later_page || next_cursor.is_some() {
            p.pager {
                @if later_page { a rel="first" href=(href(None)) { "← Newest" } }
                @if later_page && next_cursor.is_some() { " · " }
                @if let Some(cursor) = &next_cursor { a rel="next" href=(href(Some(cursor))) { "Older →" } }
            }
        }
    }
}

/// The text shown for a secret-free, possibly long value, cut for tables.
pub use crate::api::error::shorten as short;

/// An error page. Messages are plain text (escaped when rendered).
#[derive(Debug)]
pub struct PageError {
    pub status: StatusCode,
    pub message: String,
}

impl PageError {
    pub fn bad_request(message: impl Into<String>) -> Self {
        PageError {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }

    pub fn not_found(what: &str) -> Self {
        PageError {
            status: StatusCode::NOT_FOUND,
            message: format!("{what} not found"),
        }
    }
}

impl From<ApiError> for PageError {
    fn from(e: ApiError) -> Self {
        PageError {
            status: e.status,
            message: e.detail,
        }
    }
}

impl From<StoreError> for PageError {
    fn from(e: StoreError) -> Self {
        ApiError::from(e).into()
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let title = self.status.canonical_reason().unwrap_or("Error").to_owned();
        let body = html! {
            section.error {
                h1 { (title) }
                p role="alert" { (self.message) }
                p { a href="/dashboard" { "Back to the dashboard" } }
            }
        };
        (self.status, bare_page(&title, body)).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pager_links_to_the_newest_and_older_pages_with_the_filters() {
        let filters = [("status", "failed".to_owned()), ("flag", String::new())];
        let first = pager("/dashboard/runs", &filters, false, Some("c1".into())).into_string();
        assert!(!first.contains("Newest"), "{first}");
        assert!(first.contains(r#"href="/dashboard/runs?status=failed&amp;cursor=c1""#));
        let middle = pager("/dashboard/runs", &filters, true, Some("c2".into())).into_string();
        assert!(middle.contains(r#"rel="first" href="/dashboard/runs?status=failed""#));
        assert!(middle.contains("cursor=c2"), "{middle}");
        let last = pager("/dashboard/runs", &[], true, None).into_string();
        assert!(last.contains(r#"href="/dashboard/runs""#) && !last.contains("Older"));
        assert!(
            pager("/dashboard/runs", &[], false, None)
                .into_string()
                .is_empty()
        );
    }
}
