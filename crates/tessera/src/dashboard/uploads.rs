//! Uploads: the user's uploaded videos, newest first, with their state
//! (waiting for the file, received, finalized) and what finalizing learned.

use axum::extract::State;
use axum::response::Html;
use maud::{Markup, html};

use super::layout::{PageError, Section, page, short, when, when_opt};
use super::runs::local;
use super::session::Session;
use crate::api::AppState;
use crate::store::{UploadRecord, UploadStatus};

/// How many uploads the page lists.
const SHOWN: u32 = 200;

/// `GET /dashboard/uploads`
pub async fn list(
    State(state): State<AppState>,
    session: Session,
) -> Result<Html<String>, PageError> {
    let uploads = state.store.list_uploads(session.user_id, SHOWN).await?;
    let now = chrono::Utc::now();
    let (now_ms, now_unix) = (now.timestamp_millis(), now.timestamp());
    let body = html! {
        h1 { "Uploads" }
        @if uploads.is_empty() {
            p.muted { "No uploads yet. Upload with " code { "POST /videos/get_upload_url" } ", the signed form, then "
                code { "POST /videos/finalize_upload" } "; run agents on the " code { "video_id" } "." }
        } @else {
            div.table-wrap { table #uploads {
                thead { tr {
                    th { "Video id" } th { "File" } th { "State" } th { "Size" } th { "Video" }
                    th.hide-narrow { "Created" } th {}
                } }
                tbody { @for u in &uploads { tr {
                    td.mono { (u.id) }
                    td { @match (&u.status, &u.filename) {
                        (UploadStatus::Finalized, name) => a href=(local(state.objects.file_url(&u.object_key, now_unix))) {
                            (short(name.as_deref().unwrap_or("video"), 60))
                        },
                        (_, Some(name)) => (short(name, 60)),
                        (_, None) => span.muted { "—" },
                    } }
                    td { (state_cell(u, now_ms)) }
                    td { (u.size_bytes.map(size).unwrap_or_else(|| "—".into())) }
                    td { @match u.media {
                        Some(m) => (format!("{}×{}, {}", m.width, m.height, duration(m.duration_ms))),
                        None => span.muted { "—" },
                    } }
                    td.hide-narrow { (when(u.created_at)) }
                    td { @if u.status == UploadStatus::Finalized {
                        a href={"/dashboard/runs/new?video=" (u.id)} { "Start a run" }
                    } }
                } } }
            } }
            @if uploads.len() == SHOWN as usize { p.muted { "Showing the newest " (SHOWN) " uploads." } }
        }
    };
    Ok(page(&session, Section::Uploads, "Uploads", body))
}

fn state_cell(u: &UploadRecord, now_ms: i64) -> Markup {
    match u.status {
        UploadStatus::Finalized => html! {
            span.badge.ok { "finalized" } " " span.muted { (when_opt(u.finalized_at)) }
        },
        UploadStatus::Uploaded => html! {
            span.badge.info { "uploaded" } " " span.muted { "not finalized" }
        },
        UploadStatus::Pending if u.expires_at <= now_ms => html! {
            span.badge.warn { "expired" } " " span.muted { "no file arrived; removed after the retention" }
        },
        UploadStatus::Pending => html! {
            span.badge.info { "waiting for the file" } " " span.muted { "until " (when(u.expires_at)) }
        },
    }
}

/// Bytes in binary units, one decimal: `1.4 GiB`.
fn size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// `1:02:03`, `4:05` or `0:07` (tenths dropped).
fn duration(ms: u64) -> String {
    let secs = ms / 1000;
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{m}:{s:02}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_durations_read_like_a_file_manager() {
        assert_eq!(size(0), "0 B");
        assert_eq!(size(1023), "1023 B");
        assert_eq!(size(1536), "1.5 KiB");
        assert_eq!(size(5_000_000_000), "4.7 GiB");
        assert_eq!(duration(7_400), "0:07");
        assert_eq!(duration(245_000), "4:05");
        assert_eq!(duration(3_723_000), "1:02:03");
    }
}
