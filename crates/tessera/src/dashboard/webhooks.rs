//! Webhook deliveries: the list (with a Failed view and filters), one
//! delivery with every attempt, Resend, and Send test webhook.

use axum::extract::State;

use super::extract::{Path, Query};
use axum::response::{Html, IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;

use super::layout::{
    PageError, Section, action_button, csrf, delivery_badge, page, page_with, pager, short, when,
    when_opt,
};
use super::session::{Form, Session};
use crate::api::AppState;
use crate::api::webhooks::send_test;
use crate::domain::ids::{DeliveryId, RunId};
use crate::store::{AttemptRecord, DeliveryFilter, DeliveryStatus};

const PAGE: u32 = 25;
const FLAGS: [&str; 3] = ["RUN_STARTED", "RUN_FINISHED", "TEST"];

#[derive(Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    status: String,
    #[serde(default)]
    flag: String,
    #[serde(default)]
    run_id: String,
    #[serde(default)]
    cursor: String,
}

/// `GET /dashboard/webhooks`
pub async fn list(
    State(state): State<AppState>,
    session: Session,
    Query(q): Query<ListQuery>,
) -> Result<Html<String>, PageError> {
    let status = match q.status.as_str() {
        "" => None,
        s => Some(
            DeliveryStatus::parse(s)
                .ok_or_else(|| PageError::bad_request("unknown delivery status"))?,
        ),
    };
    let flag = match q.flag.as_str() {
        "" => None,
        f if FLAGS.contains(&f) => Some(f.to_owned()),
        _ => return Err(PageError::bad_request("unknown event type")),
    };
    let run_id = match q.run_id.trim() {
        "" => None,
        r => Some(
            r.parse::<RunId>()
                .map_err(|_| PageError::bad_request("the run id is not valid"))?,
        ),
    };
    let before = match q.cursor.as_str() {
        "" => None,
        c => Some(
            c.parse::<DeliveryId>()
                .map_err(|_| PageError::bad_request("the page cursor is not valid"))?,
        ),
    };
    let mut rows = state
        .store
        .list_deliveries(
            session.user_id,
            &DeliveryFilter {
                status,
                run_id,
                flag,
                before,
                limit: PAGE + 1,
            },
        )
        .await?;
    let more = rows.len() > PAGE as usize;
    rows.truncate(PAGE as usize);
    let failed_view = status == Some(DeliveryStatus::Failed);
    let body = html! {
        h1 { @if failed_view { "Failed webhooks" } @else { "Webhooks" } }
        p {
            a href="/dashboard/webhooks" aria-current=[(!failed_view).then_some("page")] { "All" } " · "
            a #failed-view href="/dashboard/webhooks?status=failed" aria-current=[failed_view.then_some("page")] { "Failed" } " · "
            a href="/dashboard/webhooks/test" { "Send test webhook" }
        }
        form.filters method="get" action="/dashboard/webhooks" {
            label { "Status " select name="status" {
                option value="" { "any" }
                @for s in [DeliveryStatus::Pending, DeliveryStatus::Succeeded, DeliveryStatus::Failed] {
                    option value=(s.as_str()) selected[status == Some(s)] { (s.as_str()) }
                }
            } }
            label { "Event " select name="flag" {
                option value="" { "any" }
                @for f in FLAGS { option value=(f) selected[q.flag == f] { (f) } }
            } }
            label { "Run " input type="text" name="run_id" value=(q.run_id) placeholder="run id" size="36"; }
            button.secondary type="submit" { "Filter" }
        }
        @if rows.is_empty() {
            p.muted { "No deliveries." }
        } @else {
            div.table-wrap { table #deliveries {
                thead { tr { th { "Delivery" } th { "Event" } th { "URL" } th { "Status" } th { "Attempts" } th.hide-narrow { "Created" } } }
                tbody { @for d in &rows { tr {
                    td { a.delivery-link href={"/dashboard/webhooks/" (d.id)} { (short(&d.id.to_string(), 13)) } }
                    td { (d.flag) }
                    td.mono { (short(&d.url, 60)) }
                    td { (delivery_badge(d.status)) }
                    td { (d.attempt_count) }
                    td.hide-narrow { (when(d.created_at)) }
                } } }
            } }
        }
        (pager("/dashboard/webhooks", &[("status", q.status.clone()), ("flag", q.flag.clone()), ("run_id", q.run_id.clone())], !q.cursor.is_empty(), more.then(|| rows.last().map(|d| d.id.to_string())).flatten()))
    };
    Ok(page(&session, Section::Webhooks, "Webhooks", body))
}

/// `GET /dashboard/webhooks/{id}`
pub async fn detail(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
) -> Result<Html<String>, PageError> {
    let id: DeliveryId = id.parse().map_err(|_| PageError::not_found("delivery"))?;
    let (d, attempts) = state
        .store
        .delivery(session.user_id, id)
        .await?
        .ok_or_else(|| PageError::not_found("delivery"))?;
    let pending = d.status == DeliveryStatus::Pending;
    let body = html! {
        h1 { "Delivery " span.mono { (d.id) } }
        div.card {
            dl.kv {
                dt { "Status" } dd #delivery-status { (delivery_badge(d.status)) }
                dt { "Event" } dd { (d.flag) " · " span.mono { (d.event_id) } }
                dt { "URL" } dd.mono #delivery-url { (d.url) }
                @if let Some(run) = d.run_id { dt { "Run" } dd { a href={"/dashboard/runs/" (run)} { (run) } } }
                dt { "Created" } dd { (when(d.created_at)) }
                dt { "Attempts" } dd #attempt-count { (d.attempt_count) }
                @if pending { dt { "Next attempt" } dd { (when_opt(d.next_attempt_at)) } }
            }
            p {
                @if pending {
                    (action_button(&session, &format!("/dashboard/webhooks/{}/resend", d.id), "Send now", "secondary"))
                    " " span.muted { "Attempts now instead of waiting for the next retry; the remaining retries are kept." }
                } @else {
                    (action_button(&session, &format!("/dashboard/webhooks/{}/resend", d.id), "Resend", ""))
                    " " span.muted { "Sends the same event (same " code { "webhook-id" } ") once more, freshly signed." }
                }
            }
        }
        h2 { "Attempts" }
        @if attempts.is_empty() { p.muted { "No attempt yet." } }
        div #attempts {
            @for (i, a) in attempts.iter().enumerate().rev() { (attempt(i + 1, a)) }
        }
    };
    let title = format!("Delivery {}", short(&d.id.to_string(), 13));
    Ok(page_with(
        &session,
        Section::Webhooks,
        &title,
        pending.then_some(2),
        body,
    ))
}

fn attempt(n: usize, a: &AttemptRecord) -> Markup {
    let ok = a.error.is_none();
    html! {
        div class={"attempt " (if ok { "ok" } else { "bad" })} data-attempt=(n) {
            h3 { "Attempt " (n) " · " (when(a.started_at)) " · " (a.duration_ms) " ms" }
            p.outcome { (outcome(a)) }
            details {
                summary { "Request headers" }
                (headers_table(&a.request_headers))
            }
            @if !a.response_headers.is_empty() {
                details {
                    summary { "Response headers" }
                    (headers_table(&a.response_headers))
                }
            }
            @if let Some(body) = &a.response_snippet {
                p.muted { "Response body" @if a.truncated { " (truncated)" } }
                pre.response { (body) }
            }
        }
    }
}

/// An attempt's result in one line: the status line as received, then
/// "delivered", "not accepted" or the error class and its detail.
fn outcome(a: &AttemptRecord) -> Markup {
    html! {
        @if let Some(code) = a.status_code {
            "HTTP " (code) " "
            @match &a.reason {
                Some(reason) => span.reason { (reason) },
                None => (reason_phrase(code)),
            }
            " · "
        }
        @match &a.error {
            None => span.ok { "delivered" },
            // A bad status needs no more words than the status line.
            Some(class) if class == "status" => span.bad { "not accepted" },
            Some(class) => span.bad { (class) @if let Some(detail) = &a.error_detail { ": " (detail) } },
        }
    }
}

fn reason_phrase(code: u16) -> &'static str {
    axum::http::StatusCode::from_u16(code)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("")
}

fn headers_table(headers: &[(String, String)]) -> Markup {
    html! {
        @if headers.is_empty() {
            p.muted { "Not recorded." }
        } @else {
            dl.kv.headers { @for (k, v) in headers { dt.mono { (k) } dd.mono { (v) } } }
        }
    }
}

/// `POST /dashboard/webhooks/{id}/resend`
pub async fn resend(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Form(session, _): Form<super::session::Empty>,
) -> Result<Response, PageError> {
    let id: DeliveryId = id.parse().map_err(|_| PageError::not_found("delivery"))?;
    let now = chrono::Utc::now().timestamp_millis();
    state
        .store
        .retry_delivery(session.user_id, id, now)
        .await
        .map_err(crate::api::error::not_found_as("delivery"))?;
    state.wake.deliveries.notify_one();
    Ok(Redirect::to(&format!("/dashboard/webhooks/{id}")).into_response())
}

/// `GET /dashboard/webhooks/test`
pub async fn test_form(session: Session) -> Html<String> {
    page(
        &session,
        Section::Webhooks,
        "Send test webhook",
        html! {
            h1 { "Send test webhook" }
            (test_form_markup(&session, ""))
        },
    )
}

fn test_form_markup(session: &Session, url: &str) -> Markup {
    html! {
        form.stack #test-webhook method="post" action="/dashboard/webhooks/test" {
            (csrf(session))
            label for="url" { "Receiver URL" }
            input #url type="url" name="url" required value=(url) placeholder="https://…/webhooks";
            button type="submit" { "Send test webhook" }
            p.muted { "Sends a " code { "TEST" } " event through the normal delivery path and shows the first attempt." }
        }
    }
}

#[derive(Deserialize)]
pub struct TestForm {
    #[serde(default)]
    url: String,
}

/// `POST /dashboard/webhooks/test`
pub async fn test(
    State(state): State<AppState>,
    Form(session, form): Form<TestForm>,
) -> Result<Response, PageError> {
    let (status, result) = match send_test(&state, session.user_id, &form.url).await {
        Ok(sent) => (
            axum::http::StatusCode::OK,
            html! {
                div #test-result {
                    @match &sent.first {
                        Some(a) => p class={"flash " (if a.error.is_none() { "success" } else { "error" })} role="status" {
                            (outcome(a)) " in " (a.duration_ms) " ms."
                            @if a.error.is_some() { " Retries follow the usual schedule." }
                        },
                        None => p.flash role="status" { "Queued; no attempt has finished yet." },
                    }
                    p { a #test-delivery href={"/dashboard/webhooks/" (sent.delivery_id)} { "See the delivery and its attempts" } }
                }
            },
        ),
        // Bad input is shown next to the form, which keeps what was typed.
        Err(e) if e.status.is_client_error() => (
            e.status,
            html! {
                p.flash.error #test-result role="alert" { (e.detail) }
            },
        ),
        Err(e) => return Err(e.into()),
    };
    let body = html! {
        h1 { "Send test webhook" }
        (result)
        (test_form_markup(&session, &form.url))
    };
    Ok((
        status,
        page(&session, Section::Webhooks, "Send test webhook", body),
    )
        .into_response())
}
