//! YouTube channel feeds (`/feeds/videos.xml?channel_id=UC…`, Atom 1.0 with
//! YouTube's `yt:` extensions), parsed into the few fields the poller needs.
//! Pure: the poller fetches the bytes and keeps the seen-state.
//!
//! The feed comes from the network, so parsing is defensive:
//! - the input is capped at [`MAX_FEED_BYTES`] and must be UTF-8;
//! - any `<!DOCTYPE` is refused, so there are no DTDs, no entity declarations
//!   and nothing is ever read from a file or fetched (no XXE, no billion
//!   laughs); only the five predefined entities and numeric character
//!   references are decoded;
//! - parsing is streaming (`quick-xml`, no DOM) and bounded: at most
//!   [`MAX_ENTRIES`] entries, [`MAX_FIELD_BYTES`] per field, [`MAX_DEPTH`]
//!   levels of nesting;
//! - ids are checked to be YouTube-shaped (`[A-Za-z0-9_-]`), since they end up
//!   in URLs and yt-dlp command lines.
//!
//! An entry is identified by its video id: editing a video changes the
//! entry's `updated`, never its id. Entries without any video id (not a
//! video) are left out rather than failing the whole feed.

mod draft;
mod parser;
#[cfg(test)]
mod tests;

use chrono::{DateTime, Utc};

/// Largest feed accepted; YouTube's are about 30 KB for 15 entries.
pub const MAX_FEED_BYTES: usize = 2 * 1024 * 1024;

/// Most entries accepted in one feed; YouTube serves 15.
pub const MAX_ENTRIES: usize = 500;

/// Longest text accepted for one field (titles are at most 100 characters).
pub const MAX_FIELD_BYTES: usize = 8 * 1024;

/// Deepest element nesting accepted; YouTube's feeds are 4 levels deep.
pub const MAX_DEPTH: usize = 32;

/// A channel's feed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Feed {
    /// The feed's `yt:channelId` (`UC…`).
    pub channel_id: Option<String>,
    /// The feed's title: the channel name.
    pub title: Option<String>,
    /// The entries in document order (YouTube: newest first).
    pub entries: Vec<Entry>,
}

/// One video of the feed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// `yt:videoId`, or the id in `<id>yt:video:ID</id>`: the stable key.
    pub video_id: String,
    /// The video title, decoded; empty if the entry had none.
    pub title: String,
    /// The `alternate` link, or `https://www.youtube.com/watch?v=ID` when the
    /// entry has no http(s) link.
    pub url: String,
    pub published: Option<DateTime<Utc>>,
    /// Changes when the video is edited.
    pub updated: Option<DateTime<Utc>>,
    /// The entry's `yt:channelId`, else the feed's.
    pub channel_id: Option<String>,
}

/// Why a feed was refused. The poller treats every one as transient: the
/// next poll tries again and the seen-state is kept.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FeedError {
    #[error("feed is {size} bytes, more than the limit of {max}")]
    TooLarge { size: usize, max: usize },
    #[error("feed is not UTF-8 (invalid byte at {position})")]
    NotUtf8 { position: usize },
    #[error("feed declares encoding `{0}`; only UTF-8 is accepted")]
    UnsupportedEncoding(String),
    #[error("feed contains a DOCTYPE; DTDs are refused (no entities, nothing external)")]
    Doctype,
    #[error("unknown entity `&{0};`: only &lt; &gt; &amp; &apos; &quot; and numeric references")]
    UnknownEntity(String),
    #[error("invalid character reference `&{0};`")]
    InvalidCharacterReference(String),
    #[error("malformed XML at byte {position}: {reason}")]
    Malformed { position: u64, reason: String },
    #[error("malformed attribute: {0}")]
    BadAttribute(String),
    #[error("not an Atom feed: the root element is <{0}>")]
    NotAFeed(String),
    #[error("no XML element found; the body is empty or not XML")]
    NoRoot,
    #[error("content outside the root element; the body is not a single XML document")]
    ContentOutsideRoot,
    #[error("feed is truncated: it ends before its elements are closed")]
    Truncated,
    #[error("feed has more than {max} entries")]
    TooManyEntries { max: usize },
    #[error("{field} is longer than {max} bytes")]
    FieldTooLong { field: &'static str, max: usize },
    #[error("elements are nested more than {max} deep")]
    TooDeep { max: usize },
    #[error("{field} `{value}` is not a YouTube id")]
    InvalidId { field: &'static str, value: String },
    #[error("{field} `{value}` is not an RFC 3339 timestamp")]
    InvalidTimestamp { field: &'static str, value: String },
}

/// Parses a feed body. Never reads files or the network, and stops at the
/// first violation of the limits in the module docs.
pub fn parse_feed(bytes: &[u8]) -> Result<Feed, FeedError> {
    if bytes.len() > MAX_FEED_BYTES {
        return Err(FeedError::TooLarge {
            size: bytes.len(),
            max: MAX_FEED_BYTES,
        });
    }
    let text = std::str::from_utf8(bytes).map_err(|error| FeedError::NotUtf8 {
        position: error.valid_up_to(),
    })?;
    parser::parse(text)
}

/// The watch URL of a video, for entries without a usable link.
pub fn watch_url(video_id: &str) -> String {
    format!("https://www.youtube.com/watch?v={video_id}")
}
