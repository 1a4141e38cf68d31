//! The ASS document `captions` burns in: our own style (DejaVu Sans, white
//! with a dark outline, bottom centre) sized in the video's pixels, and cue
//! texts escaped so that no override tag or escape reaches libass.

use crate::domain::graph::Cue;
use crate::media::size::Size;

/// libass reads `\N`, `\n`, `\h`, `\{` and `\}` as escapes; a word joiner
/// after every backslash keeps it a plain, visible backslash.
const WORD_JOINER: char = '\u{2060}';

/// An ASS script whose coordinates are the video's pixels, so `font_size`
/// and `margin` are pixels too.
pub(super) fn ass_document(cues: &[Cue], size: Size, font_size: u32, margin: u32) -> String {
    let outline = (font_size / 18).max(1);
    let mut doc = format!(
        "[Script Info]\n\
         ScriptType: v4.00+\n\
         PlayResX: {w}\n\
         PlayResY: {h}\n\
         WrapStyle: 0\n\
         ScaledBorderAndShadow: yes\n\
         \n\
         [V4+ Styles]\n\
         Format: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, BackColour, \
         Bold, Italic, Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, BorderStyle, Outline, \
         Shadow, Alignment, MarginL, MarginR, MarginV, Encoding\n\
         Style: Default,DejaVu Sans,{font_size},&H00FFFFFF,&H00FFFFFF,&H00000000,&H80000000,\
         0,0,0,0,100,100,0,0,1,{outline},0,2,{margin},{margin},{margin},1\n\
         \n\
         [Events]\n\
         Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text\n",
        w = size.width,
        h = size.height,
    );
    for cue in cues {
        doc.push_str(&format!(
            "Dialogue: 0,{},{},Default,,0,0,0,,{}\n",
            ass_time(cue.start_ms),
            ass_time(cue.end_ms),
            ass_text(&cue.text)
        ));
    }
    doc
}

/// `H:MM:SS.cc` (centiseconds, rounded down).
fn ass_time(ms: u64) -> String {
    let cs = ms / 10;
    format!(
        "{}:{:02}:{:02}.{:02}",
        cs / 360_000,
        cs / 6000 % 60,
        cs / 100 % 60,
        cs % 100
    )
}

/// Cue text as literal ASS text: braces escaped, backslashes defused,
/// newlines as `\N`, other control characters dropped.
fn ass_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\N"),
            '{' => out.push_str("\\{"),
            '}' => out.push_str("\\}"),
            '\\' => {
                out.push('\\');
                out.push(WORD_JOINER);
            }
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_centiseconds_with_hours() {
        assert_eq!(ass_time(0), "0:00:00.00");
        assert_eq!(ass_time(1_234), "0:00:01.23");
        assert_eq!(ass_time(3_723_459), "1:02:03.45");
    }

    #[test]
    fn hostile_text_stays_literal() {
        assert_eq!(
            ass_text("{\\b1}bold\\N}\nnext\r\u{7}"),
            "\\{\\\u{2060}b1\\}bold\\\u{2060}N\\}\\Nnext"
        );
    }

    #[test]
    fn the_document_uses_video_pixels_and_one_dialogue_per_cue() {
        let cues = [
            Cue {
                start_ms: 500,
                end_ms: 1500,
                text: "Hello, world".into(),
            },
            Cue {
                start_ms: 2000,
                end_ms: 3000,
                text: "Two\nlines".into(),
            },
        ];
        let size = Size {
            width: 640,
            height: 360,
        };
        let doc = ass_document(&cues, size, 36, 14);
        assert!(doc.contains("PlayResX: 640\nPlayResY: 360\n"), "{doc}");
        assert!(doc.contains("Style: Default,DejaVu Sans,36,"), "{doc}");
        assert!(doc.contains(",1,2,0,2,14,14,14,1\n"), "{doc}");
        assert!(doc.ends_with(
            "Dialogue: 0,0:00:00.50,0:00:01.50,Default,,0,0,0,,Hello, world\n\
             Dialogue: 0,0:00:02.00,0:00:03.00,Default,,0,0,0,,Two\\Nlines\n"
        ));
    }
}
