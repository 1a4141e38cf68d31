//! `concat`: every part scaled and padded to the first part's size and set
//! to the first input's frame rate; parts without audio get silence when
//! any part has audio, so the result keeps its sound.

use crate::domain::graph::Source;
use crate::media::MediaError;
use crate::media::probe::FrameRate;
use crate::media::size::{Size, even, fit};

use super::escape::secs;
use super::stream::{Chain, Stream};
use super::{Builder, Mode};

/// The audio format every part is brought to before joining.
const AUDIO_FORMAT: &str = "aresample=48000,aformat=sample_fmts=fltp:channel_layouts=stereo";

impl Builder<'_> {
    pub(super) fn concat(
        &mut self,
        node: &str,
        source: &Source,
        mut parts: Vec<Stream>,
    ) -> Result<Stream, MediaError> {
        let Some(first) = parts.first_mut() else {
            return Err(MediaError::Unsupported(format!(
                "concat {node:?} has no parts"
            )));
        };
        let target = first.materialize()?;
        let rate = self.frame_rate_of(source);
        let with_audio = parts.iter().any(|p| p.audio.is_some());
        let mut labels = Vec::new();
        let mut duration_ms = 0.0;
        for mut part in parts {
            duration_ms += part.duration_ms;
            if self.mode == Mode::Encode {
                fit_into(&mut part, target)?;
                part.push_video(format!("fps={rate}"));
                if let Some(video) = part.video.take() {
                    labels.push(video.finish(&mut self.graph, "v", "null"));
                }
            }
            if with_audio {
                let audio = part.audio.take().map_or_else(
                    || {
                        Chain::from_source(format!(
                            "anullsrc=r=48000:cl=stereo,atrim=duration={}",
                            secs(part.duration_ms)
                        ))
                    },
                    |mut audio| {
                        audio.push(AUDIO_FORMAT);
                        audio
                    },
                );
                labels.push(audio.finish(&mut self.graph, "a", "anull"));
            }
        }
        self.join(labels, target, duration_ms, with_audio)
    }

    /// Writes the `concat` filter and returns its result.
    fn join(
        &mut self,
        labels: Vec<String>,
        target: Size,
        duration_ms: f64,
        with_audio: bool,
    ) -> Result<Stream, MediaError> {
        let per_part = usize::from(self.mode == Mode::Encode) + usize::from(with_audio);
        let count = labels.len() / per_part.max(1);
        let video_out = (self.mode == Mode::Encode).then(|| self.graph.label("v"));
        let audio_out = with_audio.then(|| self.graph.label("a"));
        if per_part > 0 {
            self.graph.push(format!(
                "{}concat=n={count}:v={}:a={}{}{}",
                labels.concat(),
                usize::from(video_out.is_some()),
                usize::from(audio_out.is_some()),
                video_out.as_deref().unwrap_or_default(),
                audio_out.as_deref().unwrap_or_default(),
            ));
        }
        let mut stream = Stream {
            video: video_out.map(Chain::from_label),
            audio: audio_out.map(Chain::from_label),
            size: (0.0, 0.0),
            pixels: None,
            duration_ms,
        };
        stream.set_pixels(target);
        Ok(stream)
    }

    /// The frame rate of the concat's first input (30 when unknown).
    fn frame_rate_of(&self, source: &Source) -> FrameRate {
        let mut first = None;
        source.visit(&mut |s| {
            if let (None, Source::Input(id)) = (&first, s) {
                first = Some(id.clone());
            }
        });
        first
            .and_then(|id| self.ctx.frame_rates.get(&id).copied())
            .unwrap_or_default()
    }
}

/// Scales a part to fit inside `target` (keeping its aspect ratio) and pads
/// it to exactly `target`, centred.
fn fit_into(part: &mut Stream, target: Size) -> Result<(), MediaError> {
    let own = part.materialize()?;
    if own != target {
        let (w, h) = fit(
            (f64::from(own.width), f64::from(own.height)),
            Some(f64::from(target.width)),
            Some(f64::from(target.height)),
        );
        let inner = Size {
            width: even(w).min(target.width),
            height: even(h).min(target.height),
        };
        part.push_video(format!(
            "scale={}:{},setsar=1,pad={}:{}:{}:{}:black",
            inner.width,
            inner.height,
            target.width,
            target.height,
            ((target.width - inner.width) / 2) & !1,
            ((target.height - inner.height) / 2) & !1,
        ));
        part.set_pixels(target);
    }
    Ok(())
}
