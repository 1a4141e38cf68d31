//! Pure construction of ffmpeg argument pieces: the input guards, seeking,
//! encoders, containers and thumbnails. Nothing here runs a process.

use std::path::Path;

use crate::domain::graph::{Format, RenderParams, VideoCodec};

use super::MediaError;
use super::probe::{Probe, seconds};
use super::size::thumbnail_size;
use super::timeline::Window;

/// Demuxers we read: the mov/mp4 family, Matroska/WebM, MPEG-TS, AVI, FLV.
/// Playlist, concat and image demuxers are absent, so a file cannot make
/// ffmpeg open other files or URLs, nor pass an image off as a video.
pub(super) const DEMUXERS: &str = "mov,mp4,m4a,3gp,3g2,mj2,matroska,webm,mpegts,avi,flv";

/// Put before every `-i` (and on every ffprobe): read local files only, with
/// the demuxer allow-list.
pub(super) const INPUT_GUARDS: &[&str] =
    &["-protocol_whitelist", "file", "-format_whitelist", DEMUXERS];

/// The file extension of a render's output.
pub fn output_extension(render: &RenderParams) -> &'static str {
    match render.format {
        Format::Mp4 => "mp4",
        Format::Webm => "webm",
    }
}

/// The argv of a single-frame JPEG thumbnail taken at min(1 s, duration / 2).
pub(super) fn thumbnail_args(
    input: &Path,
    probe: &Probe,
    out: &Path,
) -> Result<Vec<String>, MediaError> {
    let at_ms = (probe.duration_ms / 2).min(1000);
    let size = thumbnail_size(probe);
    let mut args = leading_args();
    args.extend(owned(&["-ss", &seconds(at_ms as i64)]));
    args.extend(input_args(input)?);
    args.extend(owned(&[
        "-map",
        "0:V:0",
        "-frames:v",
        "1",
        "-vf",
        &format!("scale={}:{},setsar=1", size.width, size.height),
        "-q:v",
        "3",
        "-map_metadata",
        "-1",
        "-f",
        "image2",
        "-update",
        "1",
    ]));
    args.push(file_url(path_str(out)?));
    Ok(args)
}

/// `file:` in front of a path, so a name with a colon is never read as
/// another protocol.
pub(super) fn file_url(path: &str) -> String {
    format!("file:{path}")
}

/// Paths go to ffmpeg as text; a non-UTF-8 path is a server-side mistake.
pub(super) fn path_str(path: &Path) -> Result<&str, MediaError> {
    path.to_str().ok_or_else(|| MediaError::Io {
        context: "preparing a media job",
        source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "file path is not UTF-8"),
    })
}

pub(super) fn leading_args() -> Vec<String> {
    owned(&["-nostdin", "-hide_banner", "-v", "error", "-y"])
}

pub(super) fn input_args(input: &Path) -> Result<Vec<String>, MediaError> {
    let mut args = owned(INPUT_GUARDS);
    args.push("-i".into());
    args.push(file_url(path_str(input)?));
    Ok(args)
}

/// Input seeking: ffmpeg skips to `start` before decoding and stops reading
/// after `length`. Frame-accurate, because we re-encode.
pub(super) fn seek_args(window: Window, duration_ms: u64) -> Vec<String> {
    let mut args = Vec::new();
    if window.start_ms > 0 {
        args.extend(owned(&["-ss", &seconds(window.start_ms as i64)]));
    }
    if window.start_ms + window.length_ms < duration_ms {
        args.extend(owned(&["-t", &seconds(window.length_ms as i64)]));
    }
    args
}

/// Encoder settings of one output. Audio is stereo: browsers play it
/// everywhere, and 5.1 sources would otherwise stay 5.1.
pub(super) fn encoder_args(render: &RenderParams, has_audio: bool) -> Vec<String> {
    let crf = render.crf.to_string();
    let mut args = match render.video_codec {
        VideoCodec::H264 => owned(&[
            "-c:v", "libx264", "-preset", "veryfast", "-crf", &crf, "-pix_fmt", "yuv420p",
        ]),
        // Constant quality (`-b:v 0`) with the fastest settings libvpx has:
        // renders must not take many times the video's length.
        VideoCodec::Vp9 => owned(&[
            "-c:v",
            "libvpx-vp9",
            "-b:v",
            "0",
            "-crf",
            &crf,
            "-row-mt",
            "1",
            "-deadline",
            "realtime",
            "-cpu-used",
            "8",
            "-pix_fmt",
            "yuv420p",
        ]),
    };
    if has_audio {
        let codec = match render.format {
            Format::Mp4 => "aac",
            Format::Webm => "libopus",
        };
        args.extend(owned(&["-c:a", codec, "-b:a", "128k", "-ac", "2"]));
    } else {
        args.push("-an".into());
    }
    args
}

pub(super) fn output_args(render: &RenderParams, out: &Path) -> Result<Vec<String>, MediaError> {
    let mut args = match render.format {
        // The index up front lets browsers start playing before the download ends.
        Format::Mp4 => owned(&["-f", "mp4", "-movflags", "+faststart"]),
        Format::Webm => owned(&["-f", "webm"]),
    };
    args.push(file_url(path_str(out)?));
    Ok(args)
}

pub(super) fn check_codec(render: &RenderParams) -> Result<(), MediaError> {
    match (render.format, render.video_codec) {
        (Format::Mp4, VideoCodec::H264) | (Format::Webm, VideoCodec::Vp9) => Ok(()),
        (format, codec) => Err(MediaError::Unsupported(format!(
            "video codec {codec:?} cannot be written to {format:?}"
        ))),
    }
}

pub(super) fn owned(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

#[cfg(test)]
mod tests;
