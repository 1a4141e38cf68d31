//! YouTube channel triggers: resolving what users give us (`UC…` ids,
//! channel URLs, `@handles`) to channel ids ([`resolve`]), and the poller
//! role that watches each channel's Atom feed and starts one run per new
//! video ([`Poller`]).
//!
//! Everything fetched goes through the download client (address policy,
//! byte cap, one deadline) into a temporary file that is read and removed;
//! the URL templates come from the configuration, and only validated ids
//! and names are ever substituted into them.

mod poller;
pub mod resolve;

use std::path::Path;
use std::time::Duration;

pub use poller::Poller;

use crate::domain::address::{AddressPolicy, check_parsed};
use crate::net::download_to_file;

/// Whether `s` is shaped like a channel id: `UC` and 22 of `[A-Za-z0-9_-]`.
pub fn is_channel_id(s: &str) -> bool {
    s.len() == 24
        && s.starts_with("UC")
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The feed URL of a (validated) channel id.
pub fn feed_url(template: &str, channel_id: &str) -> Result<url::Url, String> {
    url::Url::parse(&template.replace("{channel_id}", channel_id))
        .map_err(|e| format!("the feed URL template gives no valid URL ({e})"))
}

/// GET `url` with the download client into memory, at most `max_bytes`
/// within `timeout`. Errors are user-facing and never contain the URL.
pub(crate) async fn fetch_capped(
    client: &reqwest::Client,
    policy: &AddressPolicy,
    tmp_dir: &Path,
    url: &url::Url,
    max_bytes: u64,
    timeout: Duration,
) -> Result<Vec<u8>, String> {
    // IP literals never reach the resolver, so the policy is checked here.
    check_parsed(url, policy).map_err(|e| e.to_string())?;
    tokio::fs::create_dir_all(tmp_dir)
        .await
        .map_err(|e| format!("cannot create a temporary file ({e})"))?;
    let dest = tmp_dir.join(format!("yt-{}", uuid::Uuid::new_v4().simple()));
    let fetched = download_to_file(client, url, &dest, max_bytes, timeout).await;
    let bytes = match fetched {
        Ok(_) => tokio::fs::read(&dest)
            .await
            .map_err(|e| format!("cannot read the downloaded body ({e})")),
        Err(e) => Err(e.to_string()),
    };
    // download_to_file removes partial files itself; a complete one is ours.
    let _ = tokio::fs::remove_file(&dest).await;
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_ids_have_youtubes_shape() {
        assert!(is_channel_id("UCabcdefghijklmnopqrst_-"));
        for no in [
            "UCshort",
            "XXabcdefghijklmnopqrst_-",
            "UCabcdefghijklmnopqrst_/",
            "UCabcdefghijklmnopqrst_-x",
        ] {
            assert!(!is_channel_id(no), "{no}");
        }
    }
}
