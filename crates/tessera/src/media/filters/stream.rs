//! The building blocks of a filter graph: chains of filters that are only
//! written out when something needs their label, and the graph text itself.

use crate::media::MediaError;
use crate::media::size::{MAX_SIDE, Size, even};

/// The text of a filter graph under construction, with fresh labels.
#[derive(Default)]
pub(super) struct GraphText {
    statements: Vec<String>,
    next_label: usize,
}

impl GraphText {
    /// A label (`[v3]`) not used before.
    pub fn label(&mut self, prefix: &str) -> String {
        self.next_label += 1;
        format!("[{prefix}{}]", self.next_label)
    }

    /// Adds one `inputs filters outputs` statement.
    pub fn push(&mut self, statement: String) {
        self.statements.push(statement);
    }

    pub fn text(&self) -> String {
        self.statements.join(";")
    }
}

/// A stream label plus the filters still to apply to it. Filters of
/// consecutive steps accumulate here and become one statement when the
/// result needs a label (a split, a concat, an output).
#[derive(Clone, Debug)]
pub(super) struct Chain {
    /// `[0:V:0]`, `[v3]`, or empty for a source filter such as `anullsrc`.
    pub input: String,
    pub filters: Vec<String>,
}

impl Chain {
    pub fn from_label(input: String) -> Self {
        Self {
            input,
            filters: Vec::new(),
        }
    }

    /// A chain that starts with a source filter (no input label).
    pub fn from_source(filter: String) -> Self {
        Self {
            input: String::new(),
            filters: vec![filter],
        }
    }

    pub fn push(&mut self, filter: impl Into<String>) {
        self.filters.push(filter.into());
    }

    /// Writes the chain into `graph` and returns the label of its result.
    /// `pass` (`null`/`anull`) stands in when there is no filter, because
    /// only filter outputs can be mapped or joined.
    pub fn finish(self, graph: &mut GraphText, prefix: &str, pass: &str) -> String {
        let out = graph.label(prefix);
        let filters = if self.filters.is_empty() {
            pass.to_owned()
        } else {
            self.filters.join(",")
        };
        graph.push(format!("{}{filters}{out}", self.input));
        out
    }
}

/// A video (and maybe audio) under construction, with what we know of it.
#[derive(Clone, Debug)]
pub(super) struct Stream {
    /// None in analysis passes, which look at the audio only.
    pub video: Option<Chain>,
    /// None when there is no audio at this point.
    pub audio: Option<Chain>,
    /// Picture size as the steps so far define it; fractional until a
    /// filter needs whole pixels, so chained resizes do not compound
    /// rounding.
    pub size: (f64, f64),
    /// The size the frames in `video` really have, when known.
    pub pixels: Option<Size>,
    /// Expected duration in milliseconds (from the probe and the steps).
    pub duration_ms: f64,
}

impl Stream {
    /// Makes the frames have the (even) size of `self.size`, scaling only
    /// when they do not already. Returns that size.
    pub fn materialize(&mut self) -> Result<Size, MediaError> {
        let target = Size {
            width: even(self.size.0),
            height: even(self.size.1),
        };
        if target.width > MAX_SIDE || target.height > MAX_SIDE {
            return Err(MediaError::Unsupported(format!(
                "the video would be {}x{}; the largest side allowed is {MAX_SIDE}",
                target.width, target.height
            )));
        }
        if let Some(video) = &mut self.video
            && self.pixels != Some(target)
        {
            video.push(format!("scale={}:{},setsar=1", target.width, target.height));
        }
        self.set_pixels(target);
        Ok(target)
    }

    /// Records that the frames now have exactly `size`.
    pub fn set_pixels(&mut self, size: Size) {
        self.size = (f64::from(size.width), f64::from(size.height));
        self.pixels = Some(size);
    }

    pub fn push_video(&mut self, filter: impl Into<String>) {
        if let Some(video) = &mut self.video {
            video.push(filter);
        }
    }

    pub fn push_audio(&mut self, filter: impl Into<String>) {
        if let Some(audio) = &mut self.audio {
            audio.push(filter);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(w: f64, h: f64, pixels: Option<Size>) -> Stream {
        Stream {
            video: Some(Chain::from_label("[0:V:0]".into())),
            audio: None,
            size: (w, h),
            pixels,
            duration_ms: 1000.0,
        }
    }

    #[test]
    fn materialize_scales_to_even_sides_once() {
        let mut s = stream(641.0, 361.0, None);
        assert_eq!(
            s.materialize().expect("size"),
            Size {
                width: 642,
                height: 362
            }
        );
        s.materialize().expect("size");
        let video = s.video.expect("video");
        assert_eq!(video.filters, ["scale=642:362,setsar=1"]);
    }

    #[test]
    fn materialize_skips_the_scale_when_pixels_already_fit() {
        let size = Size {
            width: 320,
            height: 180,
        };
        let mut s = stream(320.0, 180.0, Some(size));
        s.materialize().expect("size");
        assert!(s.video.expect("video").filters.is_empty());
    }

    #[test]
    fn oversized_pictures_are_refused() {
        let err = stream(16.0, 9000.0, None).materialize().unwrap_err();
        assert!(matches!(err, MediaError::Unsupported(_)), "{err:?}");
    }

    #[test]
    fn chains_become_statements_with_fresh_labels() {
        let mut graph = GraphText::default();
        let mut chain = Chain::from_label("[0:a:0]".into());
        chain.push("atrim=start=1");
        chain.push("asetpts=PTS-STARTPTS");
        let first = chain.finish(&mut graph, "a", "anull");
        let second = Chain::from_label(first.clone()).finish(&mut graph, "a", "anull");
        assert_eq!((first.as_str(), second.as_str()), ("[a1]", "[a2]"));
        assert_eq!(
            graph.text(),
            "[0:a:0]atrim=start=1,asetpts=PTS-STARTPTS[a1];[a1]anull[a2]"
        );
    }
}
