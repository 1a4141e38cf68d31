//! The media error type. Display texts are shown to users in a run's
//! `status_message`, so they say what went wrong without server paths.

/// Why a media operation failed.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// The file is not a video we accept: not media, a refused container
    /// (playlists, images), truncated, or without a video stream.
    #[error("not a supported video: {0}")]
    NotAVideo(String),
    /// Longer than `max_media_seconds`.
    #[error("the video is {} s long; the limit is {max_seconds} s", duration_ms.div_ceil(1000))]
    TooLong { duration_ms: u64, max_seconds: u64 },
    /// A trim starts at or after the end of the video (as it is at that step).
    #[error("trim starts at {start_ms} ms, but the video is only {duration_ms} ms long")]
    TrimOutOfRange { start_ms: u64, duration_ms: u64 },
    /// The plan reads a `video_input` for which no file was given.
    #[error("no video was given for input node {0:?}")]
    MissingInput(String),
    /// `remove_silence` found nothing but silence.
    #[error(
        "node {node:?}: the audio is silent throughout, so removing the silence would leave nothing"
    )]
    AllSilent { node: String },
    /// The plan asks for something the encoder side cannot do.
    #[error("unsupported render: {0}")]
    Unsupported(String),
    /// ffmpeg or ffprobe cannot be started or does not work.
    #[error("{tool} is not available: {reason}")]
    Unavailable { tool: &'static str, reason: String },
    /// The tool ran and failed; `detail` is the end of its stderr, with
    /// file paths replaced by `input`/`output`.
    #[error("{tool} failed ({status}): {detail}")]
    Failed {
        tool: &'static str,
        status: String,
        detail: String,
    },
    /// The tool ran past its time limit and was killed.
    #[error("{tool} did not finish within {seconds} s")]
    TimedOut { tool: &'static str, seconds: u64 },
    /// The caller cancelled the job; the process was killed.
    #[error("cancelled")]
    Cancelled,
    /// Local file handling around a job failed.
    #[error("{context}: {source}")]
    Io {
        context: &'static str,
        #[source]
        source: std::io::Error,
    },
}

impl MediaError {
    pub(crate) fn io(context: &'static str) -> impl FnOnce(std::io::Error) -> Self {
        move |source| MediaError::Io { context, source }
    }
}
