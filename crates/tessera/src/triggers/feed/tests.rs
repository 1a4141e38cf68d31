//! Tests of feed parsing: YouTube-shaped feeds here, hostile and broken
//! input in [`safety`].

mod safety;

use super::*;

const CHANNEL: &str = "UCuAXFkgsw1L7xaCfnd5JJOw";

/// A feed as YouTube serves it, around the given `<entry>` elements.
pub(super) fn feed_xml(entries: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<feed xmlns:yt="http://www.youtube.com/xml/schemas/2015" xmlns:media="http://search.yahoo.com/mrss/" xmlns="http://www.w3.org/2005/Atom">
 <link rel="self" href="http://www.youtube.com/feeds/videos.xml?channel_id={CHANNEL}"/>
 <id>yt:channel:uAXFkgsw1L7xaCfnd5JJOw</id>
 <yt:channelId>{CHANNEL}</yt:channelId>
 <title>Caf&#233; &amp; Code</title>
 <link rel="alternate" href="https://www.youtube.com/channel/{CHANNEL}"/>
 <author>
  <name>Caf&#233; &amp; Code</name>
  <uri>https://www.youtube.com/channel/{CHANNEL}</uri>
 </author>
 <published>2015-03-10T18:00:04+00:00</published>
{entries}
</feed>
"#
    )
}

/// One entry as YouTube shapes it, `media:group` included.
pub(super) fn entry_xml(video_id: &str, title: &str, updated: &str) -> String {
    format!(
        r#" <entry>
  <id>yt:video:{video_id}</id>
  <yt:videoId>{video_id}</yt:videoId>
  <yt:channelId>{CHANNEL}</yt:channelId>
  <title>{title}</title>
  <link rel="alternate" href="https://www.youtube.com/watch?v={video_id}&amp;feature=feed"/>
  <author>
   <name>Caf&#233; &amp; Code</name>
   <uri>https://www.youtube.com/channel/{CHANNEL}</uri>
  </author>
  <published>2026-03-01T17:00:06+00:00</published>
  <updated>{updated}</updated>
  <media:group>
   <media:title>{title}</media:title>
   <media:content url="https://www.youtube.com/v/{video_id}?version=3" type="application/x-shockwave-flash" width="640" height="390"/>
   <media:thumbnail url="https://i2.ytimg.com/vi/{video_id}/hqdefault.jpg" width="480" height="360"/>
   <media:description>Line one
Line two &lt;b&gt;not bold&lt;/b&gt;</media:description>
   <media:community>
    <media:starRating count="1234" average="5.00" min="1" max="5"/>
    <media:statistics views="98765"/>
   </media:community>
  </media:group>
 </entry>"#
    )
}

pub(super) fn parse(xml: &str) -> Result<Feed, FeedError> {
    parse_feed(xml.as_bytes())
}

fn time(text: &str) -> Option<DateTime<Utc>> {
    Some(text.parse().expect("test timestamp is RFC 3339"))
}

#[test]
fn a_youtube_feed_parses_to_its_channel_and_entries() {
    let xml = feed_xml(
        &[
            entry_xml(
                "dQw4w9WgXcQ",
                "Cr&#xE8;me br&#251;l&#233;e &amp; friends — part 2",
                "2026-03-02T09:15:00+00:00",
            ),
            entry_xml(
                "a_b-C1234yZ",
                "&lt;Live&gt; &quot;Q&amp;A&quot; &apos;26",
                "2026-02-20T08:00:00+01:00",
            ),
        ]
        .join("\n"),
    );
    let feed = parse(&xml).expect("feed parses");
    assert_eq!(feed.channel_id.as_deref(), Some(CHANNEL));
    assert_eq!(feed.title.as_deref(), Some("Café & Code"));
    assert_eq!(feed.entries.len(), 2);

    let first = &feed.entries[0];
    assert_eq!(first.video_id, "dQw4w9WgXcQ");
    assert_eq!(first.title, "Crème brûlée & friends — part 2");
    assert_eq!(
        first.url,
        "https://www.youtube.com/watch?v=dQw4w9WgXcQ&feature=feed"
    );
    assert_eq!(first.published, time("2026-03-01T17:00:06Z"));
    assert_eq!(first.updated, time("2026-03-02T09:15:00Z"));
    assert_eq!(first.channel_id.as_deref(), Some(CHANNEL));

    let second = &feed.entries[1];
    assert_eq!(second.video_id, "a_b-C1234yZ");
    assert_eq!(second.title, "<Live> \"Q&A\" '26");
    assert_eq!(second.updated, time("2026-02-20T07:00:00Z"));
}

#[test]
fn an_edited_entry_keeps_its_video_id_and_only_updated_changes() {
    let before = parse(&feed_xml(&entry_xml(
        "dQw4w9WgXcQ",
        "Draft",
        "2026-03-01T17:00:06+00:00",
    )));
    let after = parse(&feed_xml(&entry_xml(
        "dQw4w9WgXcQ",
        "Final",
        "2026-03-05T10:00:00+00:00",
    )));
    let (before, after) = (before.expect("parses"), after.expect("parses"));
    assert_eq!(before.entries[0].video_id, after.entries[0].video_id);
    assert_eq!(before.entries[0].published, after.entries[0].published);
    assert_ne!(before.entries[0].updated, after.entries[0].updated);
}

#[test]
fn a_feed_without_entries_is_an_empty_list() {
    let feed = parse(&feed_xml("")).expect("parses");
    assert!(feed.entries.is_empty());
    assert_eq!(feed.channel_id.as_deref(), Some(CHANNEL));
}

#[test]
fn the_video_id_falls_back_to_the_atom_id_and_entries_without_any_are_left_out() {
    let xml = feed_xml(
        r#"<entry><id>yt:video:abcDEF12345</id><title>Only an Atom id</title></entry>
           <entry><id>tag:example.com,2026:post-1</id><title>Not a video</title></entry>"#,
    );
    let feed = parse(&xml).expect("parses");
    assert_eq!(feed.entries.len(), 1);
    let entry = &feed.entries[0];
    assert_eq!(entry.video_id, "abcDEF12345");
    assert_eq!(entry.url, "https://www.youtube.com/watch?v=abcDEF12345");
    // Missing per-entry fields: the feed's channel, no times.
    assert_eq!(entry.channel_id.as_deref(), Some(CHANNEL));
    assert_eq!((entry.published, entry.updated), (None, None));
}

#[test]
fn a_link_that_is_not_http_is_replaced_by_the_watch_url() {
    let xml = feed_xml(
        r#"<entry><yt:videoId>abcDEF12345</yt:videoId>
             <link rel="enclosure" href="https://cdn.example/abc.mp4"/>
             <link href="javascript:alert(1)"/></entry>"#,
    );
    let feed = parse(&xml).expect("parses");
    assert_eq!(
        feed.entries[0].url,
        "https://www.youtube.com/watch?v=abcDEF12345"
    );
}

#[test]
fn namespaces_are_matched_by_uri_not_by_prefix() {
    let xml = r#"<a:feed xmlns:a="http://www.w3.org/2005/Atom" xmlns:y="http://www.youtube.com/xml/schemas/2015">
        <a:entry>
          <y:videoId>abcDEF12345</y:videoId>
          <videoId>NOT-THIS-ONE</videoId>
          <a:title><![CDATA[Tom & Jerry <3]]></a:title>
        </a:entry>
      </a:feed>"#;
    let feed = parse(xml).expect("parses");
    assert_eq!(feed.entries[0].video_id, "abcDEF12345");
    assert_eq!(feed.entries[0].title, "Tom & Jerry <3");
    assert_eq!(feed.channel_id, None);
}

#[test]
fn a_feed_in_another_namespace_is_not_an_atom_feed() {
    let rss = r#"<feed xmlns="http://example.com/not-atom"><entry/></feed>"#;
    assert_eq!(parse(rss), Err(FeedError::NotAFeed("feed".into())));
}
