//! Hostile, oversized and broken input: each is refused with a clear error,
//! quickly, and without reading anything but the given bytes.

use std::io::Write;
use std::time::{Duration, Instant};

use super::*;

const BILLION_LAUGHS: &str = r#"<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<feed xmlns="http://www.w3.org/2005/Atom"><title>&lol9;</title></feed>"#;

#[test]
fn a_billion_laughs_document_is_refused_at_its_doctype_quickly() {
    let started = Instant::now();
    assert_eq!(parse(BILLION_LAUGHS), Err(FeedError::Doctype));
    // Expanding lol9 would take gigabytes; refusing it takes microseconds.
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[test]
fn an_external_entity_is_refused_without_reading_the_file() {
    let mut secret = tempfile::NamedTempFile::new().expect("temp file");
    secret
        .write_all(b"TOP-SECRET-CONTENT")
        .expect("write secret");
    let path = secret.path().display();
    let xxe = format!(
        r#"<?xml version="1.0"?>
<!DOCTYPE feed [<!ENTITY xxe SYSTEM "file://{path}">]>
<feed xmlns="http://www.w3.org/2005/Atom"><entry><yt:videoId xmlns:yt="http://www.youtube.com/xml/schemas/2015">abcDEF12345</yt:videoId><title>&xxe;</title></entry></feed>"#
    );
    let error = parse(&xxe).expect_err("refused");
    assert_eq!(error, FeedError::Doctype);
    assert!(!format!("{error:?}").contains("TOP-SECRET"));
}

#[test]
fn an_external_dtd_and_a_lowercase_doctype_are_refused_too() {
    let external = r#"<!DOCTYPE feed SYSTEM "http://attacker.example/evil.dtd"><feed xmlns="http://www.w3.org/2005/Atom"/>"#;
    assert_eq!(parse(external), Err(FeedError::Doctype));
    let lowercase = r#"<!doctype feed><feed xmlns="http://www.w3.org/2005/Atom"/>"#;
    assert_eq!(parse(lowercase), Err(FeedError::Doctype));
}

#[test]
fn an_undeclared_entity_is_refused_rather_than_kept_or_dropped() {
    let xml = feed_xml(&entry_xml(
        "abcDEF12345",
        "caf&eacute;",
        "2026-03-01T17:00:06+00:00",
    ));
    assert_eq!(parse(&xml), Err(FeedError::UnknownEntity("eacute".into())));
    let xml = feed_xml(&entry_xml(
        "abcDEF12345",
        "nul &#0;",
        "2026-03-01T17:00:06+00:00",
    ));
    assert_eq!(
        parse(&xml),
        Err(FeedError::InvalidCharacterReference("#0".into()))
    );
}

#[test]
fn input_over_the_size_cap_is_refused_before_parsing() {
    let oversized = vec![b' '; MAX_FEED_BYTES + 1];
    assert_eq!(
        parse_feed(&oversized),
        Err(FeedError::TooLarge {
            size: MAX_FEED_BYTES + 1,
            max: MAX_FEED_BYTES
        })
    );
}

#[test]
fn input_exactly_at_the_size_cap_is_accepted() {
    let mut xml = feed_xml(&entry_xml(
        "abcDEF12345",
        "Padded",
        "2026-03-01T17:00:06+00:00",
    ));
    let padding = MAX_FEED_BYTES - xml.len() - "<!---->".len();
    xml.push_str(&format!("<!--{}-->", "x".repeat(padding)));
    assert_eq!(xml.len(), MAX_FEED_BYTES);
    assert_eq!(parse(&xml).expect("parses").entries.len(), 1);
}

#[test]
fn an_html_page_is_not_a_feed() {
    let page = "<!DOCTYPE html>\n<html><head><title>YouTube</title></head><body></body></html>";
    assert_eq!(parse(page), Err(FeedError::Doctype));
    let page = "<html><head><title>Error 404 (Not Found)</title></head></html>";
    assert_eq!(parse(page), Err(FeedError::NotAFeed("html".into())));
}

#[test]
fn garbage_empty_and_non_utf8_bodies_are_refused() {
    assert_eq!(parse("not xml at all"), Err(FeedError::ContentOutsideRoot));
    assert_eq!(
        parse(r#"{"error": "quota"}"#),
        Err(FeedError::ContentOutsideRoot)
    );
    assert_eq!(parse(""), Err(FeedError::NoRoot));
    assert_eq!(parse("  \n "), Err(FeedError::NoRoot));
    assert_eq!(
        parse_feed(b"<feed>\xff\xfe</feed>"),
        Err(FeedError::NotUtf8 { position: 6 })
    );
    let latin1 =
        r#"<?xml version="1.0" encoding="ISO-8859-1"?><feed xmlns="http://www.w3.org/2005/Atom"/>"#;
    assert_eq!(
        parse(latin1),
        Err(FeedError::UnsupportedEncoding("ISO-8859-1".into()))
    );
}

#[test]
fn truncated_xml_is_refused_wherever_it_is_cut() {
    let xml = feed_xml(&entry_xml(
        "abcDEF12345",
        "Cut",
        "2026-03-01T17:00:06+00:00",
    ));
    let cut_after_entry = xml.find("</entry>").expect("has an entry") + "</entry>".len();
    assert_eq!(parse(&xml[..cut_after_entry]), Err(FeedError::Truncated));
    // Every proper prefix of the document (trailing whitespace aside).
    for cut in (1..xml.trim_end().len()).step_by(97) {
        let Some(prefix) = xml.get(..cut) else {
            continue;
        };
        assert!(parse(prefix).is_err(), "accepted a feed cut at byte {cut}");
    }
}

#[test]
fn mismatched_tags_and_a_second_root_are_refused() {
    let mismatched = r#"<feed xmlns="http://www.w3.org/2005/Atom"><title>x</entry></feed>"#;
    assert!(matches!(
        parse(mismatched),
        Err(FeedError::Malformed { .. })
    ));
    let two_roots = format!(
        "{}<feed xmlns=\"http://www.w3.org/2005/Atom\"/>",
        feed_xml("")
    );
    assert_eq!(parse(&two_roots), Err(FeedError::ContentOutsideRoot));
}

#[test]
fn more_entries_than_the_cap_are_refused_and_the_cap_itself_is_accepted() {
    let entry = "<entry><yt:videoId>abcDEF12345</yt:videoId></entry>";
    let at_cap = feed_xml(&entry.repeat(MAX_ENTRIES));
    assert_eq!(parse(&at_cap).expect("parses").entries.len(), MAX_ENTRIES);
    let over = feed_xml(&entry.repeat(MAX_ENTRIES + 1));
    assert_eq!(
        parse(&over),
        Err(FeedError::TooManyEntries { max: MAX_ENTRIES })
    );
}

#[test]
fn a_field_over_the_length_cap_is_refused_even_when_built_from_references() {
    let too_long = FeedError::FieldTooLong {
        field: "title",
        max: MAX_FIELD_BYTES,
    };
    let plain = "x".repeat(MAX_FIELD_BYTES + 1);
    let xml = feed_xml(&entry_xml(
        "abcDEF12345",
        &plain,
        "2026-03-01T17:00:06+00:00",
    ));
    assert_eq!(parse(&xml), Err(too_long.clone()));
    let references = "&amp;".repeat(MAX_FIELD_BYTES + 1);
    let xml = feed_xml(&entry_xml(
        "abcDEF12345",
        &references,
        "2026-03-01T17:00:06+00:00",
    ));
    assert_eq!(parse(&xml), Err(too_long));
}

#[test]
fn nesting_deeper_than_the_cap_is_refused() {
    let depth = MAX_DEPTH + 1;
    let xml = feed_xml(&format!("{}{}", "<x>".repeat(depth), "</x>".repeat(depth)));
    assert_eq!(parse(&xml), Err(FeedError::TooDeep { max: MAX_DEPTH }));
}

#[test]
fn ids_outside_youtubes_alphabet_are_refused() {
    let xml = feed_xml("<entry><yt:videoId>--exec=rm -rf /</yt:videoId></entry>");
    assert_eq!(
        parse(&xml),
        Err(FeedError::InvalidId {
            field: "yt:videoId",
            value: "--exec=rm -rf /".into()
        })
    );
    let xml = feed_xml(
        "<entry><yt:videoId>abcDEF12345</yt:videoId><yt:channelId>UC/../x</yt:channelId></entry>",
    );
    assert!(matches!(
        parse(&xml),
        Err(FeedError::InvalidId {
            field: "yt:channelId",
            ..
        })
    ));
}

#[test]
fn a_timestamp_that_is_not_rfc_3339_is_refused() {
    let xml = feed_xml(&entry_xml("abcDEF12345", "When?", "yesterday"));
    assert_eq!(
        parse(&xml),
        Err(FeedError::InvalidTimestamp {
            field: "updated",
            value: "yesterday".into()
        })
    );
}

#[test]
fn error_messages_say_what_was_wrong() {
    let cases = [
        (FeedError::Doctype, "DOCTYPE"),
        (FeedError::NotAFeed("html".into()), "root element is <html>"),
        (FeedError::Truncated, "truncated"),
        (
            FeedError::UnknownEntity("xxe".into()),
            "unknown entity `&xxe;`",
        ),
        (
            FeedError::TooLarge { size: 3, max: 2 },
            "feed is 3 bytes, more than the limit of 2",
        ),
    ];
    for (error, expected) in cases {
        assert!(error.to_string().contains(expected), "{error}");
    }
}
