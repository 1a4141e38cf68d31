//! What a user may name a channel by, and how it becomes a `UC…` id.
//!
//! `UC…` ids and `/channel/UC…` URLs are used as given. Handles (`@name`)
//! and the older `/c/name` and `/user/name` URLs are resolved by fetching
//! the channel page (the `youtube_channel_url` template) and reading its
//! canonical channel id. Names are checked against a strict character set
//! before they go into the template, so nothing but a path segment can be
//! injected.

use std::path::Path;
use std::time::Duration;

use super::{fetch_capped, is_channel_id};
use crate::domain::address::AddressPolicy;

/// Largest channel page read.
pub const MAX_PAGE_BYTES: u64 = 2 * 1024 * 1024;
/// Deadline for fetching one channel page.
pub const PAGE_TIMEOUT: Duration = Duration::from_secs(10);

/// A channel as the user named it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChannelRef {
    /// A channel id, usable as is.
    Id(String),
    /// A page path to resolve: `@name`, `c/name` or `user/name`.
    Page(String),
}

/// Understand one entry of `youtube_channels`.
pub fn parse_channel_ref(raw: &str) -> Result<ChannelRef, String> {
    let raw = raw.trim();
    if is_channel_id(raw) {
        return Ok(ChannelRef::Id(raw.to_owned()));
    }
    if let Some(handle) = raw.strip_prefix('@') {
        return handle_ref(handle);
    }
    let lower = raw.to_ascii_lowercase();
    let with_scheme = if ["youtube.com/", "www.youtube.com/", "m.youtube.com/"]
        .iter()
        .any(|p| lower.starts_with(p))
    {
        format!("https://{raw}")
    } else {
        raw.to_owned()
    };
    match url::Url::parse(&with_scheme) {
        Ok(url) if is_channel_host(&url) => url_ref(&url),
        _ => Err("expected a channel id (UC…), a YouTube channel URL or an @handle".into()),
    }
}

fn is_channel_host(url: &url::Url) -> bool {
    matches!(url.scheme(), "http" | "https")
        && matches!(
            url.host_str()
                .map(|h| h.trim_end_matches('.').to_ascii_lowercase())
                .as_deref(),
            Some("youtube.com" | "www.youtube.com" | "m.youtube.com")
        )
}

fn url_ref(url: &url::Url) -> Result<ChannelRef, String> {
    let segments: Vec<&str> = url
        .path_segments()
        .map(|s| s.filter(|p| !p.is_empty()).collect())
        .unwrap_or_default();
    match segments.as_slice() {
        ["channel", id, ..] if is_channel_id(id) => Ok(ChannelRef::Id((*id).to_owned())),
        ["channel", ..] => Err("the URL's channel id is not a YouTube channel id".into()),
        [first, ..] if first.starts_with('@') => handle_ref(&first[1..]),
        [kind @ ("c" | "user"), name, ..] if is_name(name, 100) => {
            Ok(ChannelRef::Page(format!("{kind}/{name}")))
        }
        _ => {
            Err("the URL does not name a channel (/channel/UC…, /@handle, /c/… or /user/…)".into())
        }
    }
}

fn handle_ref(handle: &str) -> Result<ChannelRef, String> {
    if is_name(handle, 30) && handle.len() >= 3 {
        Ok(ChannelRef::Page(format!("@{handle}")))
    } else {
        Err("a handle is @ and 3 to 30 letters, digits, `_`, `-` or `.`".into())
    }
}

fn is_name(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// The canonical channel id a channel page declares: its canonical link,
/// its `identifier` meta tag, or the `"channelId"` in its embedded data.
pub fn channel_id_in_page(html: &str) -> Option<String> {
    tag_value(html, "<link", "rel=\"canonical\"", "/channel/")
        .or_else(|| tag_value(html, "<meta", "itemprop=\"identifier\"", "content=\""))
        .or_else(|| after(html, "\"channelId\":\""))
}

/// The id following `marker` inside the first `<tag …>` that contains `needle`.
fn tag_value(html: &str, tag: &str, needle: &str, marker: &str) -> Option<String> {
    html.match_indices(tag).find_map(|(start, _)| {
        let rest = &html[start..];
        let element = &rest[..rest.find('>')?];
        element
            .contains(needle)
            .then(|| after(element, marker))
            .flatten()
    })
}

/// The first channel id directly after an occurrence of `marker`.
fn after(text: &str, marker: &str) -> Option<String> {
    text.match_indices(marker).find_map(|(i, _)| {
        let candidate = text.get(i + marker.len()..i + marker.len() + 24)?;
        is_channel_id(candidate).then(|| candidate.to_owned())
    })
}

/// Resolve a page path (`@name`, `c/name`, `user/name`) to a channel id by
/// fetching the channel page.
pub async fn resolve_page(
    client: &reqwest::Client,
    policy: &AddressPolicy,
    tmp_dir: &Path,
    template: &str,
    path: &str,
) -> Result<String, String> {
    let url = url::Url::parse(&template.replace("{handle_or_path}", path))
        .map_err(|e| format!("the channel URL template gives no valid URL ({e})"))?;
    let page = fetch_capped(client, policy, tmp_dir, &url, MAX_PAGE_BYTES, PAGE_TIMEOUT)
        .await
        .map_err(|e| format!("could not fetch the channel page of {path}: {e}"))?;
    channel_id_in_page(&String::from_utf8_lossy(&page))
        .ok_or_else(|| format!("the channel page of {path} names no channel id"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "UCabcdefghijklmnopqrstuv";

    #[test]
    fn ids_urls_and_handles_are_understood() {
        let page = |p: &str| Ok(ChannelRef::Page(p.into()));
        for (raw, want) in [
            (ID.to_owned(), Ok(ChannelRef::Id(ID.into()))),
            (
                format!("https://www.youtube.com/channel/{ID}/videos"),
                Ok(ChannelRef::Id(ID.into())),
            ),
            (
                format!("youtube.com/channel/{ID}"),
                Ok(ChannelRef::Id(ID.into())),
            ),
            ("@Some.Name_1".into(), page("@Some.Name_1")),
            (
                "https://m.youtube.com/@handle/videos".into(),
                page("@handle"),
            ),
            ("https://www.youtube.com/c/Legacy".into(), page("c/Legacy")),
            (
                "https://youtube.com/user/old-name".into(),
                page("user/old-name"),
            ),
        ] {
            assert_eq!(parse_channel_ref(&raw), want, "{raw}");
        }
        for bad in [
            "",
            "@x",
            "@bad/../path",
            "https://evil.test/@handle",
            "https://www.youtube.com/watch?v=abc",
            "https://www.youtube.com/channel/UCshort",
            "file:///etc/passwd",
            "UCabcdefghijklmnopqrst",
        ] {
            assert!(parse_channel_ref(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_canonical_id_is_read_from_the_page() {
        let canonical = format!(
            r#"<html><head><link href="https://www.youtube.com/channel/{ID}" rel="canonical"></head>"#
        );
        assert_eq!(channel_id_in_page(&canonical).as_deref(), Some(ID));
        let meta = format!(r#"<meta itemprop="identifier" content="{ID}">"#);
        assert_eq!(channel_id_in_page(&meta).as_deref(), Some(ID));
        let data = format!(r#"var ytInitialData = {{"channelId":"{ID}"}};"#);
        assert_eq!(channel_id_in_page(&data).as_deref(), Some(ID));
        assert_eq!(
            channel_id_in_page(r#"<link rel="canonical" href="/watch?v=x">"#),
            None
        );
        assert_eq!(channel_id_in_page(r#""channelId":"UCtooshort""#), None);
    }
}
