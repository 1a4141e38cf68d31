//! The filters of each step. Steps that only touch the picture do nothing
//! in the analysis pass; `remove_silence` and `normalize_audio` become taps
//! there and use the taps' findings in the encoding pass.

use crate::domain::graph::{Cue, Position, ReframeMode, Step};
use crate::media::MediaError;
use crate::media::analysis::{Loudness, Tap, TapKind};
use crate::media::silence;
use crate::media::size::{Size, fit, reframe};
use crate::media::timeline::{Window, trim};

use super::ass::ass_document;
use super::escape::{filter_value, num, secs};
use super::stream::{Chain, Stream};
use super::{Builder, FONT_FILE, FONTS_DIR, Mode, TempFile};

/// Highest true peak `normalize_audio` allows, in dBTP.
const TRUE_PEAK_DB: f64 = -1.5;
/// Loudness range target: wide, so the linear (constant gain) mode applies
/// to nearly everything.
const LOUDNESS_RANGE: f64 = 20.0;
/// `atempo` takes factors from 0.5 to 2 per instance.
const ATEMPO_MIN: f64 = 0.5;
const ATEMPO_MAX: f64 = 2.0;

impl Builder<'_> {
    pub(super) fn step(
        &mut self,
        mut stream: Stream,
        node: &str,
        step: &Step,
    ) -> Result<Stream, MediaError> {
        match step {
            Step::Trim { start_ms, end_ms } => {
                if !self.ctx.folded.contains(node) {
                    trim_stream(&mut stream, *start_ms, *end_ms)?;
                }
            }
            Step::Resize { width, height } => {
                stream.size = fit(stream.size, width.map(f64::from), height.map(f64::from));
            }
            Step::Reframe { aspect, mode } => {
                let r = reframe(stream.materialize()?, *aspect, *mode);
                stream.push_video(match mode {
                    ReframeMode::Crop => {
                        format!("crop={}:{}:{}:{}", r.inner.width, r.inner.height, r.x, r.y)
                    }
                    ReframeMode::Pad => format!(
                        "pad={}:{}:{}:{}:black",
                        r.frame.width, r.frame.height, r.x, r.y
                    ),
                });
                stream.set_pixels(r.frame);
            }
            Step::Speed { factor } => speed(&mut stream, *factor),
            Step::RemoveSilence {
                threshold_db,
                min_silence_ms,
                padding_ms,
            } => match self.mode {
                Mode::Analyse => {
                    let detect = format!(
                        "silencedetect=n={}dB:d={}",
                        num(*threshold_db),
                        secs(*min_silence_ms as f64)
                    );
                    // The instance name tells the taps' log lines apart.
                    self.tap(&mut stream, node, TapKind::Silence, |name| {
                        format!("{detect},ametadata@{name}=mode=print")
                    });
                }
                Mode::Encode => self.remove_silence(&mut stream, node, *padding_ms)?,
            },
            Step::NormalizeAudio { target_lufs } => match self.mode {
                Mode::Analyse => {
                    let measure = loudnorm_options(*target_lufs, None);
                    self.tap(&mut stream, node, TapKind::Loudness, |name| {
                        format!("loudnorm@{name}={measure}")
                    });
                }
                Mode::Encode => {
                    if let Some(measured) = self.ctx.analysis.loudness.get(node) {
                        let options = loudnorm_options(*target_lufs, Some(measured));
                        stream.push_audio(format!("loudnorm={options}"));
                        // loudnorm works at 192 kHz internally.
                        stream.push_audio("aresample=48000");
                    }
                }
            },
            Step::TextOverlay {
                text,
                position,
                font_size,
            } => {
                if self.mode == Mode::Encode {
                    self.text_overlay(&mut stream, text, *position, *font_size)?;
                }
            }
            Step::Captions { cues, font_size } => {
                if self.mode == Mode::Encode {
                    self.captions(&mut stream, cues, *font_size)?;
                }
            }
        }
        Ok(stream)
    }

    /// Splits the audio: one branch goes through the filter `make` builds
    /// for an instance name to the null output (its log is the finding),
    /// the other continues.
    fn tap(
        &mut self,
        stream: &mut Stream,
        node: &str,
        kind: TapKind,
        make: impl FnOnce(&str) -> String,
    ) {
        let Some(audio) = stream.audio.take() else {
            return;
        };
        let name = format!("t{}", self.taps.len() + 1);
        let (branch, rest) = (self.graph.label("x"), self.graph.label("r"));
        let mut chain = audio;
        chain.push("asplit=2");
        let split = chain.filters.join(",");
        self.graph
            .push(format!("{}{split}{branch}{rest}", chain.input));
        let output = Chain {
            input: branch,
            filters: vec![make(&name)],
        }
        .finish(&mut self.graph, "o", "anull");
        self.tap_outputs.push(output);
        self.taps.push(Tap {
            name,
            node: node.to_owned(),
            kind,
        });
        stream.audio = Some(Chain::from_label(rest));
    }

    fn remove_silence(
        &mut self,
        stream: &mut Stream,
        node: &str,
        padding_ms: u64,
    ) -> Result<(), MediaError> {
        if stream.audio.is_none() {
            return Ok(());
        }
        let Some(silences) = self.ctx.analysis.silences.get(node) else {
            return Ok(());
        };
        let duration_s = stream.duration_ms / 1000.0;
        let keeps = silence::keep_spans(silences, duration_s, padding_ms as f64 / 1000.0);
        if keeps.is_empty() {
            return Err(MediaError::AllSilent {
                node: node.to_owned(),
            });
        }
        if keeps.len() == 1 && keeps[0].start_s <= 0.0 && keeps[0].end_s >= duration_s {
            return Ok(());
        }
        for filter in silence::video_filters(&keeps) {
            stream.push_video(filter);
        }
        for filter in silence::audio_filters(&keeps) {
            stream.push_audio(filter);
        }
        stream.duration_ms = silence::kept_ms(&keeps);
        Ok(())
    }

    fn text_overlay(
        &mut self,
        stream: &mut Stream,
        text: &str,
        position: Position,
        font_size: u32,
    ) -> Result<(), MediaError> {
        let text = overlay_text(text);
        if text.is_empty() {
            return Ok(());
        }
        let size = stream.materialize()?;
        let path = self.temp_file("text", "txt", text);
        let (x, y) = placement(position, size);
        stream.push_video(format!(
            "drawtext=fontfile={}:textfile={}:expansion=none:fontsize={font_size}\
             :fontcolor=white:borderw={}:bordercolor=black@0.8:x={x}:y={y}",
            filter_value(FONT_FILE),
            filter_value(&path),
            (font_size / 16).max(1),
        ));
        Ok(())
    }

    fn captions(
        &mut self,
        stream: &mut Stream,
        cues: &[Cue],
        font_size: u32,
    ) -> Result<(), MediaError> {
        let size = stream.materialize()?;
        let document = ass_document(cues, size, font_size, margin(size));
        let path = self.temp_file("captions", "ass", document);
        stream.push_video(format!(
            "ass=filename={}:fontsdir={}",
            filter_value(&path),
            filter_value(FONTS_DIR)
        ));
        Ok(())
    }

    /// Registers a temp file in the work dir and returns its path as text.
    fn temp_file(&mut self, stem: &str, ext: &str, contents: String) -> String {
        let path = self
            .ctx
            .work_dir
            .join(format!("{stem}-{}.{ext}", self.files.len() + 1));
        let text = path.to_string_lossy().into_owned();
        self.files.push(TempFile { path, contents });
        text
    }
}

/// A trim inside the graph (after a step that changes timing).
fn trim_stream(stream: &mut Stream, start_ms: u64, end_ms: Option<u64>) -> Result<(), MediaError> {
    let whole = Window {
        start_ms: 0,
        length_ms: stream.duration_ms.round() as u64,
    };
    let kept = trim(whole, start_ms, end_ms)?;
    let end = if kept.start_ms + kept.length_ms < whole.length_ms {
        format!(":end={}", secs((kept.start_ms + kept.length_ms) as f64))
    } else {
        String::new()
    };
    let start = secs(kept.start_ms as f64);
    stream.push_video(format!("trim=start={start}{end},setpts=PTS-STARTPTS"));
    stream.push_audio(format!("atrim=start={start}{end},asetpts=PTS-STARTPTS"));
    stream.duration_ms = kept.length_ms as f64;
    Ok(())
}

fn speed(stream: &mut Stream, factor: f64) {
    if factor == 1.0 {
        return;
    }
    stream.push_video(format!("setpts=PTS/{}", num(factor)));
    for tempo in atempo_factors(factor) {
        stream.push_audio(format!("atempo={}", num(tempo)));
    }
    stream.duration_ms /= factor;
}

/// `atempo` instances whose product is `factor`, each within 0.5–2.
fn atempo_factors(factor: f64) -> Vec<f64> {
    let mut left = factor;
    let mut factors = Vec::new();
    while left > ATEMPO_MAX {
        factors.push(ATEMPO_MAX);
        left /= ATEMPO_MAX;
    }
    while left < ATEMPO_MIN {
        factors.push(ATEMPO_MIN);
        left /= ATEMPO_MIN;
    }
    factors.push(left);
    factors
}

/// `loudnorm` options (after `loudnorm=`) for measuring (first pass) or
/// applying a measurement linearly.
fn loudnorm_options(target_lufs: f64, measured: Option<&Loudness>) -> String {
    let mut filter = format!(
        "I={}:TP={}:LRA={}",
        num(target_lufs),
        num(TRUE_PEAK_DB),
        num(LOUDNESS_RANGE)
    );
    match measured {
        None => filter.push_str(":print_format=json"),
        Some(m) => filter.push_str(&format!(
            ":measured_I={}:measured_TP={}:measured_LRA={}:measured_thresh={}:offset={}\
             :linear=true:print_format=none",
            num(m.input_i.clamp(-99.0, 0.0)),
            num(m.input_tp.clamp(-99.0, 99.0)),
            num(m.input_lra.clamp(0.0, 99.0)),
            num(m.input_thresh.clamp(-99.0, 0.0)),
            num(m.target_offset.clamp(-99.0, 99.0)),
        )),
    }
    filter
}

/// The drawtext text: line breaks normalised, other control characters
/// (which draw as boxes) removed, trailing blank space trimmed.
fn overlay_text(text: &str) -> String {
    let normalised = text.replace("\r\n", "\n").replace('\r', "\n");
    let kept: String = normalised
        .chars()
        .map(|c| if c == '\t' { ' ' } else { c })
        .filter(|&c| c == '\n' || !c.is_control())
        .collect();
    kept.trim_end().to_owned()
}

/// Distance from the edges: 4% of the shorter side.
fn margin(size: Size) -> u32 {
    (size.width.min(size.height) * 4 / 100).max(4)
}

/// drawtext `x`/`y` expressions for a position.
fn placement(position: Position, size: Size) -> (String, String) {
    let m = margin(size);
    let left = m.to_string();
    let centre_x = "(w-text_w)/2".to_owned();
    let right = format!("w-text_w-{m}");
    let top = m.to_string();
    let centre_y = "(h-text_h)/2".to_owned();
    let bottom = format!("h-text_h-{m}");
    match position {
        Position::Top => (centre_x, top),
        Position::Center => (centre_x, centre_y),
        Position::Bottom => (centre_x, bottom),
        Position::TopLeft => (left, top),
        Position::TopRight => (right, top),
        Position::BottomLeft => (left, bottom),
        Position::BottomRight => (right, bottom),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atempo_factors_multiply_to_the_speed_and_stay_in_range() {
        for factor in [0.25, 0.3, 0.5, 0.75, 1.5, 2.0, 3.0, 4.0] {
            let parts = atempo_factors(factor);
            let product: f64 = parts.iter().product();
            assert!((product - factor).abs() < 1e-9, "{factor}: {parts:?}");
            assert!(
                parts.iter().all(|p| (ATEMPO_MIN..=ATEMPO_MAX).contains(p)),
                "{factor}: {parts:?}"
            );
        }
    }

    #[test]
    fn overlay_text_keeps_newlines_and_drops_other_control_characters() {
        assert_eq!(overlay_text("a\r\nb\tc\u{7}\n\n"), "a\nb c");
        assert_eq!(overlay_text("%{pts} 'q' \\"), "%{pts} 'q' \\");
    }

    #[test]
    fn positions_sit_inside_a_margin_of_the_shorter_side() {
        let size = Size {
            width: 1280,
            height: 720,
        };
        assert_eq!(
            placement(Position::BottomRight, size),
            ("w-text_w-28".to_owned(), "h-text_h-28".to_owned())
        );
        assert_eq!(
            placement(Position::Center, size),
            ("(w-text_w)/2".to_owned(), "(h-text_h)/2".to_owned())
        );
        assert_eq!(
            placement(Position::TopLeft, size),
            ("28".to_owned(), "28".to_owned())
        );
    }
}
