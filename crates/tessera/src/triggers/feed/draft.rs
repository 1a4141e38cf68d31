//! An entry (or the feed's own fields) as collected from the XML, and the
//! checks that turn it into an [`Entry`].

use chrono::{DateTime, Utc};

use super::parser::quote;
use super::{Entry, FeedError, watch_url};

/// Longest id accepted; YouTube's are 11 (videos) and 24 (channels) characters.
const MAX_ID_CHARS: usize = 64;

/// A text field the parser collects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Field {
    Id,
    VideoId,
    ChannelId,
    Title,
    Link,
    Published,
    Updated,
}

impl Field {
    pub(super) fn name(self) -> &'static str {
        match self {
            Self::Id => "id",
            Self::VideoId => "yt:videoId",
            Self::ChannelId => "yt:channelId",
            Self::Title => "title",
            Self::Link => "link href",
            Self::Published => "published",
            Self::Updated => "updated",
        }
    }
}

/// Raw field texts; the last occurrence of a repeated field wins, except the
/// link, where the parser keeps the first `alternate` one.
#[derive(Debug, Default)]
pub(super) struct Draft {
    id: Option<String>,
    video_id: Option<String>,
    channel_id: Option<String>,
    pub(super) title: Option<String>,
    pub(super) link: Option<String>,
    published: Option<String>,
    updated: Option<String>,
}

impl Draft {
    pub(super) fn set(&mut self, field: Field, text: String) {
        let slot = match field {
            Field::Id => &mut self.id,
            Field::VideoId => &mut self.video_id,
            Field::ChannelId => &mut self.channel_id,
            Field::Title => &mut self.title,
            Field::Link => &mut self.link,
            Field::Published => &mut self.published,
            Field::Updated => &mut self.updated,
        };
        *slot = Some(text);
    }

    pub(super) fn channel_id(&self) -> Result<Option<String>, FeedError> {
        self.channel_id
            .as_deref()
            .map(|id| checked_id(Field::ChannelId, id))
            .transpose()
    }

    /// The entry, or `None` when it names no video at all.
    pub(super) fn into_entry(self) -> Result<Option<Entry>, FeedError> {
        let from_atom_id = self
            .id
            .as_deref()
            .and_then(|id| id.trim().strip_prefix("yt:video:"));
        let Some(video_id) = self.video_id.as_deref().or(from_atom_id) else {
            return Ok(None);
        };
        let video_id = checked_id(Field::VideoId, video_id)?;
        let channel_id = self.channel_id()?;
        let url = match self.link {
            Some(link) if is_http(link.trim()) => link.trim().to_owned(),
            _ => watch_url(&video_id),
        };
        Ok(Some(Entry {
            title: self.title.unwrap_or_default(),
            url,
            published: timestamp(Field::Published, self.published)?,
            updated: timestamp(Field::Updated, self.updated)?,
            channel_id,
            video_id,
        }))
    }
}

/// Ids end up in URLs and command lines: only YouTube's alphabet passes.
fn checked_id(field: Field, id: &str) -> Result<String, FeedError> {
    let id = id.trim();
    let shaped = (1..=MAX_ID_CHARS).contains(&id.len())
        && id
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_');
    if !shaped {
        return Err(FeedError::InvalidId {
            field: field.name(),
            value: quote(id),
        });
    }
    Ok(id.to_owned())
}

fn timestamp(field: Field, text: Option<String>) -> Result<Option<DateTime<Utc>>, FeedError> {
    let Some(text) = text else {
        return Ok(None);
    };
    DateTime::parse_from_rfc3339(text.trim())
        .map(|time| Some(time.with_timezone(&Utc)))
        .map_err(|_| FeedError::InvalidTimestamp {
            field: field.name(),
            value: quote(text.trim()),
        })
}

fn is_http(url: &str) -> bool {
    let scheme = |prefix: &str| {
        url.get(..prefix.len())
            .is_some_and(|start| start.eq_ignore_ascii_case(prefix))
    };
    scheme("https://") || scheme("http://")
}
