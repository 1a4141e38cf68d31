//! Overview: the last 24 hours at a glance and the latest failures.

use axum::extract::State;
use axum::response::Html;
use maud::html;

use super::layout::{PageError, Section, delivery_badge, page, run_badge, short, when};
use super::session::Session;
use crate::api::AppState;
use crate::store::{DeliveryFilter, DeliveryStatus, RunFilter, RunStatus};

const DAY_MS: i64 = 86_400_000;

/// `GET /dashboard`
pub async fn page_handler(
    State(state): State<AppState>,
    session: Session,
) -> Result<Html<String>, PageError> {
    let now = chrono::Utc::now().timestamp_millis();
    let activity = state.store.activity(session.user_id, now - DAY_MS).await?;
    let failed_runs = state
        .store
        .list_runs(
            session.user_id,
            &RunFilter {
                statuses: vec![RunStatus::Failed, RunStatus::PartialComplete],
                limit: 10,
                ..Default::default()
            },
        )
        .await?;
    let failed_deliveries = state
        .store
        .list_deliveries(
            session.user_id,
            &DeliveryFilter {
                status: Some(DeliveryStatus::Failed),
                limit: 10,
                ..Default::default()
            },
        )
        .await?;
    let run_count = |s: RunStatus| {
        activity
            .runs
            .iter()
            .find(|(k, _)| *k == s)
            .map_or(0, |(_, n)| *n)
    };
    let delivery_count = |s: DeliveryStatus| {
        activity
            .deliveries
            .iter()
            .find(|(k, _)| *k == s)
            .map_or(0, |(_, n)| *n)
    };
    let body = html! {
        h1 { "Overview" }
        div.grid {
            div.card #runs-24h {
                h2 { "Runs, last 24 hours" }
                dl.kv {
                    @for s in [RunStatus::Queued, RunStatus::Running, RunStatus::Completed, RunStatus::PartialComplete, RunStatus::Failed, RunStatus::Cancelled] {
                        dt { a href={"/dashboard/runs?status=" (s.as_str())} { (run_badge(s)) } }
                        dd data-count=(s.as_str()) { (run_count(s)) }
                    }
                }
            }
            div.card #deliveries-24h {
                h2 { "Webhook deliveries, last 24 hours" }
                dl.kv {
                    @for s in [DeliveryStatus::Succeeded, DeliveryStatus::Pending, DeliveryStatus::Failed] {
                        dt { a href={"/dashboard/webhooks?status=" (s.as_str())} { (delivery_badge(s)) } }
                        dd data-count=(s.as_str()) { (delivery_count(s)) }
                    }
                }
            }
        }
        h2 { "Latest failed webhooks" }
        @if failed_deliveries.is_empty() {
            p.muted { "No failed deliveries." }
        } @else {
            div.table-wrap { table #failed-deliveries {
                thead { tr { th { "Delivery" } th { "Event" } th { "URL" } th.hide-narrow { "Created" } } }
                tbody {
                    @for d in &failed_deliveries {
                        tr {
                            td { a href={"/dashboard/webhooks/" (d.id)} { (short(&d.id.to_string(), 13)) } }
                            td { (d.flag) }
                            td.mono { (short(&d.url, 60)) }
                            td.hide-narrow { (when(d.created_at)) }
                        }
                    }
                }
            } }
            p { a href="/dashboard/webhooks?status=failed" { "All failed deliveries →" } }
        }
        h2 { "Latest failed runs" }
        @if failed_runs.is_empty() {
            p.muted { "No failed runs." }
        } @else {
            div.table-wrap { table #failed-runs {
                thead { tr { th { "Run" } th { "Status" } th { "Message" } th.hide-narrow { "Created" } } }
                tbody {
                    @for r in &failed_runs {
                        tr {
                            td { a href={"/dashboard/runs/" (r.id)} { (short(&r.id.to_string(), 13)) } }
                            td { (run_badge(r.status)) }
                            td { (short(r.status_message.as_deref().unwrap_or(""), 80)) }
                            td.hide-narrow { (when(r.created_at)) }
                        }
                    }
                }
            } }
        }
    };
    Ok(page(&session, Section::Home, "Overview", body))
}
