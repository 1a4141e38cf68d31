//! The streaming pass: one `quick-xml` event at a time, keeping only a stack
//! of open elements (depth-capped) and the text of the field being read.

use std::mem;

use quick_xml::NsReader;
use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::{BytesDecl, BytesRef, BytesStart, Event};
use quick_xml::name::{Namespace, ResolveResult};

use super::draft::{Draft, Field};
use super::{Feed, FeedError, MAX_DEPTH, MAX_ENTRIES, MAX_FIELD_BYTES};

const ATOM: &str = "http://www.w3.org/2005/Atom";
const YOUTUBE: &str = "http://www.youtube.com/xml/schemas/2015";

/// Longest element name or entity quoted back in an error.
const MAX_QUOTED: usize = 64;

/// Elements the parser reacts to, by namespace and local name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Name {
    Feed,
    Entry,
    Id,
    Title,
    Link,
    Published,
    Updated,
    VideoId,
    ChannelId,
    Other,
}

fn classify(namespace: &ResolveResult<'_>, local: &str) -> Name {
    let ResolveResult::Bound(Namespace(namespace)) = namespace else {
        return Name::Other;
    };
    match (*namespace, local) {
        (ATOM, "feed") => Name::Feed,
        (ATOM, "entry") => Name::Entry,
        (ATOM, "id") => Name::Id,
        (ATOM, "title") => Name::Title,
        (ATOM, "link") => Name::Link,
        (ATOM, "published") => Name::Published,
        (ATOM, "updated") => Name::Updated,
        (YOUTUBE, "videoId") => Name::VideoId,
        (YOUTUBE, "channelId") => Name::ChannelId,
        _ => Name::Other,
    }
}

/// What an open element is to the parser.
#[derive(Clone, Copy, Debug)]
enum Open {
    Feed,
    Entry,
    /// A field whose text is being collected.
    Field(Field),
    /// Anything else (`media:group`, `author`, …): skipped with its content.
    Other,
}

pub(super) fn parse(text: &str) -> Result<Feed, FeedError> {
    let mut reader = NsReader::from_str(text);
    let mut parser = Parser::default();
    loop {
        let (name, event) = match reader.read_resolved_event() {
            Ok((namespace, event)) => {
                let name = match &event {
                    Event::Start(element) | Event::Empty(element) => {
                        classify(&namespace, element.local_name().as_ref())
                    }
                    _ => Name::Other,
                };
                (name, event)
            }
            Err(error) => {
                return Err(FeedError::Malformed {
                    position: reader.error_position(),
                    reason: error.to_string(),
                });
            }
        };
        match event {
            Event::Start(element) => parser.open(name, &element)?,
            Event::Empty(element) => {
                parser.open(name, &element)?;
                parser.close()?;
            }
            Event::End(_) => parser.close()?,
            Event::Text(text) => parser.text(&text.xml10_content())?,
            Event::CData(text) => parser.text(&text.xml10_content())?,
            Event::GeneralRef(reference) => parser.reference(&reference)?,
            // quick-xml never interprets a DTD; refusing it outright also
            // refuses every entity it could declare.
            Event::DocType(_) => return Err(FeedError::Doctype),
            Event::Decl(declaration) => check_encoding(&declaration)?,
            Event::Comment(_) | Event::PI(_) => {}
            Event::Eof => return parser.finish(),
        }
    }
}

/// The input was already checked to be UTF-8; a declaration claiming
/// anything else means the text would be misread.
fn check_encoding(declaration: &BytesDecl<'_>) -> Result<(), FeedError> {
    match declaration.encoding() {
        None => Ok(()),
        Some(Ok(encoding)) if matches_utf8(&encoding) => Ok(()),
        Some(Ok(encoding)) => Err(FeedError::UnsupportedEncoding(quote(&encoding))),
        Some(Err(error)) => Err(FeedError::BadAttribute(error.to_string())),
    }
}

fn matches_utf8(encoding: &str) -> bool {
    encoding.eq_ignore_ascii_case("utf-8") || encoding.eq_ignore_ascii_case("utf8")
}

#[derive(Default)]
struct Parser {
    stack: Vec<Open>,
    root_closed: bool,
    feed: Draft,
    entry: Draft,
    entries: Vec<Draft>,
    /// Text of the innermost open field.
    text: String,
}

impl Parser {
    fn open(&mut self, name: Name, element: &BytesStart<'_>) -> Result<(), FeedError> {
        if self.stack.len() >= MAX_DEPTH {
            return Err(FeedError::TooDeep { max: MAX_DEPTH });
        }
        let open = match self.stack.last() {
            None if self.root_closed => return Err(FeedError::ContentOutsideRoot),
            None if name == Name::Feed => Open::Feed,
            None => {
                return Err(FeedError::NotAFeed(quote(element.name().as_ref())));
            }
            Some(Open::Feed) => self.open_in_feed(name)?,
            Some(Open::Entry) => self.open_in_entry(name, element)?,
            Some(Open::Field(_) | Open::Other) => Open::Other,
        };
        if matches!(open, Open::Field(_)) {
            self.text.clear();
        }
        self.stack.push(open);
        Ok(())
    }

    fn open_in_feed(&mut self, name: Name) -> Result<Open, FeedError> {
        Ok(match name {
            Name::Entry => {
                if self.entries.len() >= MAX_ENTRIES {
                    return Err(FeedError::TooManyEntries { max: MAX_ENTRIES });
                }
                self.entry = Draft::default();
                Open::Entry
            }
            Name::Title => Open::Field(Field::Title),
            Name::ChannelId => Open::Field(Field::ChannelId),
            _ => Open::Other,
        })
    }

    fn open_in_entry(&mut self, name: Name, element: &BytesStart<'_>) -> Result<Open, FeedError> {
        Ok(match name {
            Name::Id => Open::Field(Field::Id),
            Name::VideoId => Open::Field(Field::VideoId),
            Name::ChannelId => Open::Field(Field::ChannelId),
            Name::Title => Open::Field(Field::Title),
            Name::Published => Open::Field(Field::Published),
            Name::Updated => Open::Field(Field::Updated),
            Name::Link => {
                self.link(element)?;
                Open::Other
            }
            _ => Open::Other,
        })
    }

    /// Keeps the first `alternate` link (Atom's default relation).
    fn link(&mut self, element: &BytesStart<'_>) -> Result<(), FeedError> {
        let rel = attribute(element, "rel")?;
        if rel.as_deref().is_some_and(|rel| rel != "alternate") || self.entry.link.is_some() {
            return Ok(());
        }
        if let Some(href) = attribute(element, "href")? {
            check_length(Field::Link, href.len())?;
            self.entry.link = Some(href);
        }
        Ok(())
    }

    fn close(&mut self) -> Result<(), FeedError> {
        match self.stack.pop() {
            Some(Open::Feed) => self.root_closed = true,
            Some(Open::Entry) => self.entries.push(mem::take(&mut self.entry)),
            Some(Open::Field(field)) => {
                let text = mem::take(&mut self.text);
                let target = match self.stack.last() {
                    Some(Open::Feed) => &mut self.feed,
                    _ => &mut self.entry,
                };
                target.set(field, text);
            }
            Some(Open::Other) | None => {}
        }
        Ok(())
    }

    fn text(&mut self, text: &str) -> Result<(), FeedError> {
        match self.stack.last() {
            Some(Open::Field(field)) => {
                check_length(*field, self.text.len() + text.len())?;
                self.text.push_str(text);
                Ok(())
            }
            Some(_) => Ok(()),
            None if is_xml_whitespace(text) => Ok(()),
            None => Err(FeedError::ContentOutsideRoot),
        }
    }

    /// `&name;` or `&#N;` in text: only the predefined five and numeric
    /// references exist, since no DTD can declare others.
    fn reference(&mut self, reference: &BytesRef<'_>) -> Result<(), FeedError> {
        let name: &str = reference;
        let mut buffer = [0; 4];
        let text = match reference.resolve_char_ref() {
            Ok(Some(character)) => &*character.encode_utf8(&mut buffer),
            Ok(None) => resolve_predefined_entity(name)
                .ok_or_else(|| FeedError::UnknownEntity(quote(name)))?,
            Err(_) => return Err(FeedError::InvalidCharacterReference(quote(name))),
        };
        self.text(text)
    }

    fn finish(self) -> Result<Feed, FeedError> {
        if !self.root_closed {
            return Err(if self.stack.is_empty() {
                FeedError::NoRoot
            } else {
                FeedError::Truncated
            });
        }
        let channel_id = self.feed.channel_id()?;
        let mut entries = Vec::with_capacity(self.entries.len());
        for draft in self.entries {
            if let Some(mut entry) = draft.into_entry()? {
                entry.channel_id = entry.channel_id.or_else(|| channel_id.clone());
                entries.push(entry);
            }
        }
        Ok(Feed {
            channel_id,
            title: self.feed.title,
            entries,
        })
    }
}

/// An attribute's value with the predefined entities decoded; unknown
/// entities are an error, as in text.
fn attribute(element: &BytesStart<'_>, key: &str) -> Result<Option<String>, FeedError> {
    let Some(attribute) = element
        .try_get_attribute(key)
        .map_err(|error| FeedError::BadAttribute(error.to_string()))?
    else {
        return Ok(None);
    };
    attribute
        .normalized_value(quick_xml::XmlVersion::Implicit1_0)
        .map(|value| Some(value.into_owned()))
        .map_err(|error| FeedError::BadAttribute(format!("`{key}`: {error}")))
}

fn check_length(field: Field, length: usize) -> Result<(), FeedError> {
    if length > MAX_FIELD_BYTES {
        return Err(FeedError::FieldTooLong {
            field: field.name(),
            max: MAX_FIELD_BYTES,
        });
    }
    Ok(())
}

fn is_xml_whitespace(text: &str) -> bool {
    text.bytes()
        .all(|byte| matches!(byte, b' ' | b'\t' | b'\r' | b'\n'))
}

/// `text` shortened for an error message.
pub(super) fn quote(text: &str) -> String {
    match text.char_indices().nth(MAX_QUOTED) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}
