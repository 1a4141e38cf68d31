//! SRT and WebVTT parsing for `captions`: strict about timings (a malformed
//! file is refused with its line number when the agent is saved), lenient
//! about text (styling tags and cue settings are dropped, not rendered).

use super::model::Cue;

/// Why a subtitles document was refused; `line` is 1-based.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub(super) struct SubtitleError {
    pub line: usize,
    pub message: String,
}

/// Parses an SRT or WebVTT document (WebVTT when it starts with `WEBVTT`)
/// into cues with plain text. A document without any cue is refused.
pub(super) fn parse_subtitles(text: &str) -> Result<Vec<Cue>, SubtitleError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let normalised = text.replace("\r\n", "\n").replace('\r', "\n");
    let lines: Vec<&str> = normalised.split('\n').collect();
    let is_vtt = lines
        .first()
        .is_some_and(|first| is_keyword(first, "WEBVTT"));
    let cues = if is_vtt {
        Parser::new(&lines, Syntax::WebVtt).parse_vtt()?
    } else {
        Parser::new(&lines, Syntax::Srt).parse_srt()?
    };
    if cues.is_empty() {
        return Err(SubtitleError {
            line: 1,
            message: "the subtitles contain no cue".into(),
        });
    }
    Ok(cues)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Syntax {
    Srt,
    WebVtt,
}

struct Parser<'a> {
    lines: &'a [&'a str],
    /// Index of the next line to read.
    at: usize,
    syntax: Syntax,
    cues: Vec<Cue>,
}

impl<'a> Parser<'a> {
    fn new(lines: &'a [&'a str], syntax: Syntax) -> Self {
        Self {
            lines,
            at: 0,
            syntax,
            cues: Vec::new(),
        }
    }

    fn parse_srt(mut self) -> Result<Vec<Cue>, SubtitleError> {
        while self.skip_blank_lines() {
            // The cue number is optional in practice; when present it is
            // followed by the timing.
            if self.current().trim().bytes().all(|b| b.is_ascii_digit()) {
                self.at += 1;
            }
            self.cue()?;
        }
        Ok(self.cues)
    }

    fn parse_vtt(mut self) -> Result<Vec<Cue>, SubtitleError> {
        // The header block runs to the first blank line.
        self.skip_block();
        while self.skip_blank_lines() {
            let line = self.current();
            if ["NOTE", "STYLE", "REGION"]
                .iter()
                .any(|k| is_keyword(line, k))
            {
                self.skip_block();
                continue;
            }
            let next = self.lines.get(self.at + 1).copied().unwrap_or("");
            if !line.contains("-->") && next.contains("-->") {
                // A cue identifier precedes the timing.
                self.at += 1;
            }
            self.cue()?;
        }
        Ok(self.cues)
    }

    /// Reads a timing line and the text lines after it.
    fn cue(&mut self) -> Result<(), SubtitleError> {
        let line_no = self.at + 1;
        let (start_ms, end_ms) = self
            .lines
            .get(self.at)
            .and_then(|line| parse_timing(line, self.syntax))
            .ok_or_else(|| SubtitleError {
                line: line_no,
                message: format!("expected a cue timing like {}", self.example()),
            })?;
        if end_ms <= start_ms {
            return Err(SubtitleError {
                line: line_no,
                message: "the cue must end after it starts".into(),
            });
        }
        self.at += 1;
        let mut text_lines = Vec::new();
        while self.at < self.lines.len() && !self.current().trim().is_empty() {
            let cleaned = clean_text(self.current());
            if !cleaned.is_empty() {
                text_lines.push(cleaned);
            }
            self.at += 1;
        }
        if !text_lines.is_empty() {
            self.cues.push(Cue {
                start_ms,
                end_ms,
                text: text_lines.join("\n"),
            });
        }
        Ok(())
    }

    fn example(&self) -> &'static str {
        match self.syntax {
            Syntax::Srt => "\"00:00:01,000 --> 00:00:04,000\"",
            Syntax::WebVtt => "\"00:01.000 --> 00:04.000\"",
        }
    }

    fn current(&self) -> &'a str {
        self.lines.get(self.at).copied().unwrap_or("")
    }

    /// Moves to the next non-blank line; false at the end.
    fn skip_blank_lines(&mut self) -> bool {
        while self.at < self.lines.len() && self.current().trim().is_empty() {
            self.at += 1;
        }
        self.at < self.lines.len()
    }

    /// Moves past the current block (to its terminating blank line).
    fn skip_block(&mut self) {
        while self.at < self.lines.len() && !self.current().trim().is_empty() {
            self.at += 1;
        }
    }
}

/// `line` is `keyword` alone or followed by a space or tab.
fn is_keyword(line: &str, keyword: &str) -> bool {
    line.strip_prefix(keyword)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t']))
}

/// `start --> end [settings]` → milliseconds. Cue settings are ignored.
fn parse_timing(line: &str, syntax: Syntax) -> Option<(u64, u64)> {
    let (start, rest) = line.split_once("-->")?;
    let end = rest.split_whitespace().next()?;
    Some((
        parse_timestamp(start.trim(), syntax)?,
        parse_timestamp(end, syntax)?,
    ))
}

/// `HH:MM:SS,mmm` (SRT; `.` accepted too) or `[HH:]MM:SS.mmm` (WebVTT).
fn parse_timestamp(text: &str, syntax: Syntax) -> Option<u64> {
    let (clock, millis) = text.split_once([',', '.'])?;
    let parts: Vec<&str> = clock.split(':').collect();
    let (hours, minutes, seconds) = match (parts.as_slice(), syntax) {
        ([h, m, s], _) => (number(h, 1..=6)?, number(m, 2..=2)?, number(s, 2..=2)?),
        ([m, s], Syntax::WebVtt) => (0, number(m, 2..=2)?, number(s, 2..=2)?),
        _ => return None,
    };
    if minutes > 59 || seconds > 59 {
        return None;
    }
    let millis = number(millis, 3..=3)?;
    Some(((hours * 60 + minutes) * 60 + seconds) * 1000 + millis)
}

/// Digits only, with a number of digits in `digits`.
fn number(text: &str, digits: std::ops::RangeInclusive<usize>) -> Option<u64> {
    if !digits.contains(&text.len()) || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// Plain text of a cue line: `<i>`-style tags and `{\an8}`-style override
/// blocks removed, the common HTML entities decoded, control characters
/// dropped.
fn clean_text(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(c) = rest.chars().next() {
        let skip = match c {
            '<' => rest.find('>').filter(|&end| !rest[1..end].contains('<')),
            '{' if rest[1..].starts_with('\\') => rest.find('}'),
            _ => None,
        };
        match skip {
            Some(end) => rest = &rest[end + 1..],
            None => {
                if !c.is_control() || c == '\t' {
                    out.push(c);
                }
                rest = &rest[c.len_utf8()..];
            }
        }
    }
    decode_entities(out.trim())
}

fn decode_entities(text: &str) -> String {
    const ENTITIES: &[(&str, &str)] = &[
        ("&lt;", "<"),
        ("&gt;", ">"),
        ("&nbsp;", "\u{a0}"),
        ("&quot;", "\""),
        ("&apos;", "'"),
        ("&lrm;", ""),
        ("&rlm;", ""),
        // Last, so that `&amp;lt;` becomes `&lt;` and not `<`.
        ("&amp;", "&"),
    ];
    ENTITIES
        .iter()
        .fold(text.to_owned(), |acc, (entity, plain)| {
            acc.replace(entity, plain)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cue(start_ms: u64, end_ms: u64, text: &str) -> Cue {
        Cue {
            start_ms,
            end_ms,
            text: text.into(),
        }
    }

    fn error_line(text: &str) -> usize {
        match parse_subtitles(text) {
            Err(e) => e.line,
            Ok(cues) => panic!("expected an error, got {cues:?}"),
        }
    }

    #[test]
    fn srt_cues_are_read_with_their_times_and_lines() {
        let srt = "1\n00:00:01,000 --> 00:00:04,500\nHello\nworld\n\n2\n00:00:05,000 --> 01:00:06,007\nSecond\n";
        assert_eq!(
            parse_subtitles(srt).expect("valid"),
            vec![
                cue(1000, 4500, "Hello\nworld"),
                cue(5000, 3_606_007, "Second")
            ]
        );
    }

    #[test]
    fn crlf_bom_and_missing_numbers_are_accepted() {
        let srt = "\u{feff}00:00:00,500 --> 00:00:01,000\r\nA\r\n\r\n\r\n3\r\n00:00:02,000 --> 00:00:03,000\r\nB";
        let cues = parse_subtitles(srt).expect("valid");
        assert_eq!(cues, vec![cue(500, 1000, "A"), cue(2000, 3000, "B")]);
    }

    #[test]
    fn webvtt_headers_notes_identifiers_and_settings_are_handled() {
        let vtt = "WEBVTT - a title\nKind: captions\n\nNOTE a comment\nspanning lines\n\nSTYLE\n::cue { color: red }\n\nintro\n00:01.000 --> 00:02.500 align:start position:10%\n<v Roger>Hi &amp; <b>bye</b>\n\n01:00:00.000 --> 01:00:01.000\nLate";
        assert_eq!(
            parse_subtitles(vtt).expect("valid"),
            vec![
                cue(1000, 2500, "Hi & bye"),
                cue(3_600_000, 3_601_000, "Late")
            ]
        );
    }

    #[test]
    fn markup_and_override_blocks_are_removed_but_plain_braces_stay() {
        assert_eq!(clean_text("{\\an8}<i>Top</i> {ok}"), "Top {ok}");
        assert_eq!(clean_text("a < b"), "a < b");
        assert_eq!(clean_text("&amp;lt; x\u{7}"), "&lt; x");
    }

    #[test]
    fn a_malformed_timing_names_its_line() {
        assert_eq!(error_line("1\n00:00:01 --> 00:00:02\nText\n"), 2);
        assert_eq!(
            error_line("1\n00:00:01,000 --> 00:00:02,000\nA\n\n2\nno timing here\n"),
            6
        );
        assert_eq!(error_line("WEBVTT\n\n00:01.000 -> 00:02.000\nx"), 3);
        assert_eq!(error_line("WEBVTT\n\nid\nnot a timing\nx"), 3);
        assert_eq!(error_line("00:61:00,000 --> 00:62:00,000\nx"), 1);
    }

    #[test]
    fn minutes_only_timestamps_are_webvtt_only() {
        assert_eq!(error_line("00:01,000 --> 00:02,000\nx"), 1);
        parse_subtitles("WEBVTT\n\n00:01.000 --> 00:02.000\nx").expect("valid");
    }

    #[test]
    fn a_cue_ending_before_it_starts_is_refused() {
        let err = parse_subtitles("00:00:02,000 --> 00:00:01,000\nx").unwrap_err();
        assert_eq!(err.to_string(), "line 1: the cue must end after it starts");
    }

    #[test]
    fn documents_without_cues_are_refused() {
        for empty in ["", "\n\n", "WEBVTT\n\nNOTE nothing\n", "WEBVTT"] {
            let err = parse_subtitles(empty).unwrap_err();
            assert!(err.message.contains("no cue"), "{empty:?}: {err}");
        }
    }

    #[test]
    fn cues_without_text_are_dropped() {
        let cues = parse_subtitles(
            "00:00:00,000 --> 00:00:01,000\n<i></i>\n\n00:00:01,000 --> 00:00:02,000\nB",
        )
        .expect("valid");
        assert_eq!(cues, vec![cue(1000, 2000, "B")]);
    }
}
