//! The render plan model: what the engine and the media layer execute for one
//! `render` node. Built by [`super::render_plans`] from a validated graph.

/// Everything needed to produce the output(s) of one `render` node.
#[derive(Clone, Debug, PartialEq)]
pub struct RenderPlan {
    pub render_node: String,
    /// What feeds the render node, as a tree whose leaves are inputs.
    pub source: Source,
    pub render: RenderParams,
    /// Some when a `clips` node feeds the render: one output per clip.
    pub clips: Option<ClipSpec>,
}

impl RenderPlan {
    /// The `video_input` ids this plan reads, deduplicated, in tree order.
    pub fn inputs(&self) -> Vec<String> {
        let mut ids = Vec::new();
        self.source.visit(&mut |source| {
            if let Source::Input(id) = source {
                push_unique(&mut ids, id);
            }
        });
        ids
    }

    /// Every node id of this plan, inputs first and the render last.
    pub fn nodes(&self) -> Vec<String> {
        let mut ids = Vec::new();
        self.source.visit(&mut |source| {
            let id = match source {
                Source::Input(id) => id,
                Source::Step { node, .. } | Source::Concat { node, .. } => node,
            };
            push_unique(&mut ids, id);
        });
        if let Some(clips) = &self.clips {
            push_unique(&mut ids, &clips.node);
        }
        push_unique(&mut ids, &self.render_node);
        ids
    }
}

fn push_unique(ids: &mut Vec<String>, id: &str) {
    if !ids.iter().any(|known| known == id) {
        ids.push(id.to_owned());
    }
}

/// A video as a tree of operations. Inputs are leaves; a `Step` transforms
/// one source; a `Concat` joins several in order.
#[derive(Clone, Debug, PartialEq)]
pub enum Source {
    Input(String),
    Step {
        from: Box<Source>,
        node: String,
        step: Step,
    },
    Concat {
        node: String,
        parts: Vec<Source>,
    },
}

impl Source {
    /// Calls `f` on every source of the tree, children before parents and
    /// concat parts in order.
    pub fn visit<'a>(&'a self, f: &mut impl FnMut(&'a Source)) {
        match self {
            Source::Input(_) => {}
            Source::Step { from, .. } => from.visit(f),
            Source::Concat { parts, .. } => parts.iter().for_each(|p| p.visit(f)),
        }
        f(self);
    }
}

/// One transformation of the video on its way to a render.
#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    /// Keep `[start_ms, end_ms)`; `None` means "to the end".
    Trim { start_ms: u64, end_ms: Option<u64> },
    /// Scale keeping the aspect ratio; with both set, fit inside the box.
    Resize {
        width: Option<u32>,
        height: Option<u32>,
    },
    /// Change the aspect ratio by a centred crop or by padding.
    Reframe {
        aspect: AspectRatio,
        mode: ReframeMode,
    },
    /// Play `factor` times faster (below 1: slower); audio pitch is kept.
    Speed { factor: f64 },
    /// Cut passages quieter than `threshold_db` lasting at least
    /// `min_silence_ms`, keeping `padding_ms` of each side of every cut.
    RemoveSilence {
        threshold_db: f64,
        min_silence_ms: u64,
        padding_ms: u64,
    },
    /// Bring the integrated loudness to `target_lufs`.
    NormalizeAudio { target_lufs: f64 },
    /// Burn `text` in for the whole video.
    TextOverlay {
        text: String,
        position: Position,
        font_size: u32,
    },
    /// Burn subtitles in; cue times are relative to the video at this step.
    Captions { cues: Vec<Cue>, font_size: u32 },
}

/// A target aspect ratio such as 9:16.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AspectRatio {
    pub width: u32,
    pub height: u32,
}

/// How `reframe` reaches its aspect ratio.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReframeMode {
    /// Cut the edges away (centred).
    Crop,
    /// Add black bars (centred).
    Pad,
}

/// Where `text_overlay` puts its text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Position {
    Top,
    Center,
    Bottom,
    TopLeft,
    TopRight,
    BottomLeft,
    BottomRight,
}

/// One subtitle: shown from `start_ms` until `end_ms`. `text` is plain text
/// (markup removed) and may hold newlines.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cue {
    pub start_ms: u64,
    pub end_ms: u64,
    pub text: String,
}

/// A `clips` node on the way to a render: the video is cut into consecutive
/// clips of `clip_duration_ms` (the last may be shorter), at most `max_clips`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClipSpec {
    pub node: String,
    pub clip_duration_ms: u64,
    pub max_clips: u32,
}

/// Encoding settings of a `render` node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RenderParams {
    pub format: Format,
    pub video_codec: VideoCodec,
    pub crf: u8,
    pub max_height: Option<u32>,
}

/// Output container.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Mp4,
    Webm,
}

/// Output video codec.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VideoCodec {
    H264,
    Vp9,
}
