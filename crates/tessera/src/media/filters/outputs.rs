//! The end of the encoding graph: `max_height`, even sides and `yuv420p`,
//! then one labelled stream pair per output file. With `clips`, the video
//! is split once and each branch trimmed to its clip (one decode, one
//! encode per clip, all in the same process).

use crate::domain::graph::{ClipSpec, RenderPlan};
use crate::media::MediaError;
use crate::media::size::fit;

use super::escape::secs;
use super::stream::{Chain, Stream};
use super::{Builder, OutputStreams};

/// A last clip shorter than this is dropped rather than encoded: it would
/// be a flash, or empty when the duration estimate is a little long.
const MIN_LAST_CLIP_MS: f64 = 500.0;

impl Builder<'_> {
    pub(super) fn outputs(
        &mut self,
        mut stream: Stream,
        plan: &RenderPlan,
    ) -> Result<Vec<OutputStreams>, MediaError> {
        if let Some(max) = plan.render.max_height.map(f64::from)
            && stream.size.1 > max
        {
            stream.size = fit(stream.size, None, Some(max));
        }
        stream.materialize()?;
        stream.push_video("format=yuv420p");
        let Some(clips) = &plan.clips else {
            return Ok(vec![self.finish(stream)]);
        };
        let spans = clip_spans(stream.duration_ms, clips);
        let videos = self.split(stream.video.take(), false, spans.len());
        let audios = self.split(stream.audio.take(), true, spans.len());
        let mut outputs = Vec::with_capacity(spans.len());
        for (i, (start_ms, end_ms)) in spans.into_iter().enumerate() {
            let window = format!("start={}:end={}", secs(start_ms), secs(end_ms));
            let mut clip = stream.clone();
            clip.video = videos.get(i).cloned().map(|label| {
                let mut chain = Chain::from_label(label);
                chain.push(format!("trim={window},setpts=PTS-STARTPTS"));
                chain
            });
            clip.audio = audios.get(i).cloned().map(|label| {
                let mut chain = Chain::from_label(label);
                chain.push(format!("atrim={window},asetpts=PTS-STARTPTS"));
                chain
            });
            outputs.push(self.finish(clip));
        }
        Ok(outputs)
    }

    fn finish(&mut self, stream: Stream) -> OutputStreams {
        let video = stream
            .video
            .map(|v| v.finish(&mut self.graph, "out_v", "null"))
            .unwrap_or_default();
        let audio = stream
            .audio
            .map(|a| a.finish(&mut self.graph, "out_a", "anull"));
        OutputStreams { video, audio }
    }

    /// `count` labels carrying `chain`; a split only when there are several.
    fn split(&mut self, chain: Option<Chain>, audio: bool, count: usize) -> Vec<String> {
        let Some(mut chain) = chain else {
            return Vec::new();
        };
        let (filter, prefix, pass) = if audio {
            ("asplit", "a", "anull")
        } else {
            ("split", "v", "null")
        };
        if count <= 1 {
            return vec![chain.finish(&mut self.graph, prefix, pass)];
        }
        let labels: Vec<String> = (0..count).map(|_| self.graph.label(prefix)).collect();
        chain.push(format!("{filter}={count}"));
        self.graph.push(format!(
            "{}{}{}",
            chain.input,
            chain.filters.join(","),
            labels.concat()
        ));
        labels
    }
}

/// The `[start, end)` of each clip, in milliseconds: consecutive clips of
/// the clip length from the start, at most `max_clips`, the last possibly
/// shorter (but not shorter than half a second, unless it is the only one).
fn clip_spans(duration_ms: f64, spec: &ClipSpec) -> Vec<(f64, f64)> {
    let length = spec.clip_duration_ms as f64;
    let mut spans = Vec::new();
    let mut start = 0.0;
    while start < duration_ms && spans.len() < spec.max_clips as usize {
        let end = (start + length).min(duration_ms);
        if end - start < MIN_LAST_CLIP_MS && !spans.is_empty() {
            break;
        }
        spans.push((start, end));
        start += length;
    }
    spans
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(clip_duration_ms: u64, max_clips: u32) -> ClipSpec {
        ClipSpec {
            node: "c".into(),
            clip_duration_ms,
            max_clips,
        }
    }

    #[test]
    fn ten_seconds_in_three_second_clips_are_four_clips() {
        assert_eq!(
            clip_spans(10_000.0, &spec(3000, 10)),
            vec![
                (0.0, 3000.0),
                (3000.0, 6000.0),
                (6000.0, 9000.0),
                (9000.0, 10_000.0)
            ]
        );
    }

    #[test]
    fn max_clips_caps_the_count() {
        assert_eq!(clip_spans(10_000.0, &spec(3000, 2)).len(), 2);
    }

    #[test]
    fn a_sliver_at_the_end_is_not_a_clip() {
        assert_eq!(clip_spans(9_020.0, &spec(3000, 10)).len(), 3);
        assert_eq!(clip_spans(300.0, &spec(3000, 10)), vec![(0.0, 300.0)]);
    }

    #[test]
    fn an_exact_multiple_has_no_empty_clip() {
        assert_eq!(clip_spans(9_000.0, &spec(3000, 10)).len(), 3);
    }
}
