//! ffprobe: what a local file contains, and whether it is a complete video
//! we accept. Pure parsing here; the process is run by `Media::probe`.

use serde::{Deserialize, Serialize};

use super::MediaError;
use super::args::{INPUT_GUARDS, file_url};

/// What the engine needs to know about an input video.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Probe {
    pub duration_ms: u64,
    /// Display width: sample aspect ratio and rotation applied.
    pub width: u32,
    /// Display height: sample aspect ratio and rotation applied.
    pub height: u32,
    pub has_audio: bool,
    pub video_codec: String,
    /// ffprobe's demuxer name, e.g. `mov,mp4,m4a,3gp,3g2,mj2`.
    pub format_name: String,
}

/// A video frame rate as a fraction, as ffmpeg's `fps` filter takes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct FrameRate {
    pub num: u32,
    pub den: u32,
}

impl Default for FrameRate {
    /// Used when an input's rate is unknown or absurd.
    fn default() -> Self {
        Self { num: 30, den: 1 }
    }
}

impl std::fmt::Display for FrameRate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.num, self.den)
    }
}

/// Rates outside this range (in frames per second) fall back to the default.
const FRAME_RATE_RANGE: std::ops::RangeInclusive<f64> = 1.0..=120.0;

/// ffprobe arguments printing the first video stream's average and base
/// frame rates (`25/1` lines).
pub(super) fn frame_rate_args(input: &str) -> Vec<String> {
    let mut args = strs(&["-hide_banner", "-v", "error"]);
    args.extend(strs(INPUT_GUARDS));
    args.extend(strs(&[
        "-select_streams",
        "V:0",
        "-show_entries",
        "stream=avg_frame_rate,r_frame_rate",
        "-of",
        "default=noprint_wrappers=1:nokey=1",
    ]));
    args.push(file_url(input));
    args
}

/// The first sensible rate among ffprobe's lines, or the default.
pub(super) fn parse_frame_rate(output: &[u8]) -> FrameRate {
    String::from_utf8_lossy(output)
        .lines()
        .filter_map(|line| {
            let (num, den) = line.trim().split_once('/')?;
            let rate = FrameRate {
                num: num.parse().ok()?,
                den: den.parse().ok()?,
            };
            let fps = f64::from(rate.num) / f64::from(rate.den.max(1));
            (rate.den > 0 && FRAME_RATE_RANGE.contains(&fps)).then_some(rate)
        })
        .next()
        .unwrap_or_default()
}

/// A parsed probe plus the container's start time, needed to read the tail.
#[derive(Debug)]
pub(super) struct Parsed {
    pub probe: Probe,
    pub start_ms: i64,
}

/// A file may end up to this much short of its declared duration: enough for
/// streams that end a little apart, far less than a cut-off download.
const TRUNCATION_SLACK_MS: u64 = 1000;
/// How far before the declared end the completeness check starts reading.
pub(super) const TAIL_WINDOW_MS: u64 = 3000;

/// ffprobe arguments listing the container and its streams as JSON.
pub(super) fn probe_args(input: &str) -> Vec<String> {
    let entries = "format=format_name,duration,start_time\
        :stream=codec_type,codec_name,width,height,sample_aspect_ratio,duration\
        :stream_disposition=attached_pic:stream_tags=rotate:stream_side_data=rotation";
    let mut args = strs(&["-hide_banner", "-v", "error"]);
    args.extend(strs(INPUT_GUARDS));
    args.extend(strs(&["-show_entries", entries, "-of", "json"]));
    args.push(file_url(input));
    args
}

/// ffprobe arguments listing the packets of the last seconds, as
/// `pts,dts,duration` CSV lines, to see whether the media really reaches its
/// declared end.
pub(super) fn tail_args(input: &str, parsed: &Parsed) -> Vec<String> {
    let from_ms = parsed.start_ms + parsed.probe.duration_ms.saturating_sub(TAIL_WINDOW_MS) as i64;
    let mut args = strs(&["-hide_banner", "-v", "error"]);
    args.extend(strs(INPUT_GUARDS));
    args.extend(strs(&[
        "-read_intervals",
        &format!("{}%", seconds(from_ms)),
        "-show_entries",
        "packet=pts_time,dts_time,duration_time",
        "-of",
        "csv=p=0",
    ]));
    args.push(file_url(input));
    args
}

/// Parses ffprobe's JSON into a [`Probe`]; anything without a usable video
/// stream or duration is [`MediaError::NotAVideo`].
pub(super) fn parse(json: &[u8]) -> Result<Parsed, MediaError> {
    let raw: RawProbe = serde_json::from_slice(json)
        .map_err(|_| MediaError::NotAVideo("the file could not be read as media".into()))?;
    let format = raw.format.unwrap_or_default();
    let video = raw
        .streams
        .iter()
        .find(|s| s.codec_type.as_deref() == Some("video") && !s.is_cover_art())
        .ok_or_else(|| MediaError::NotAVideo("the file has no video stream".into()))?;
    let (width, height) = display_size(video)
        .ok_or_else(|| MediaError::NotAVideo("the video stream has no picture size".into()))?;
    let duration_ms = parse_seconds(format.duration.as_deref())
        .or_else(|| parse_seconds(video.duration.as_deref()))
        .filter(|&ms| ms > 0)
        .ok_or_else(|| MediaError::NotAVideo("the video has no known duration".into()))?;
    let probe = Probe {
        duration_ms: u64::try_from(duration_ms).unwrap_or(0),
        width,
        height,
        has_audio: raw
            .streams
            .iter()
            .any(|s| s.codec_type.as_deref() == Some("audio")),
        video_codec: video.codec_name.clone().unwrap_or_default(),
        format_name: format.format_name.unwrap_or_default(),
    };
    Ok(Parsed {
        probe,
        start_ms: parse_seconds(format.start_time.as_deref()).unwrap_or(0),
    })
}

/// Checks the CSV of [`tail_args`]: the last packet must end near the
/// declared duration, otherwise the file was cut off.
pub(super) fn check_complete(csv: &[u8], parsed: &Parsed) -> Result<(), MediaError> {
    let text = String::from_utf8_lossy(csv);
    let reached = text.lines().filter_map(packet_end_ms).max();
    let declared = parsed.probe.duration_ms;
    let reached_ms = reached.map_or(0, |end| (end - parsed.start_ms).max(0) as u64);
    if reached_ms + TRUNCATION_SLACK_MS >= declared {
        return Ok(());
    }
    Err(MediaError::NotAVideo(format!(
        "the file is truncated: its media ends at {:.1} s of a declared {:.1} s",
        reached_ms as f64 / 1000.0,
        declared as f64 / 1000.0
    )))
}

/// `pts,dts,duration` (seconds, any may be `N/A`) → end of the packet in ms.
fn packet_end_ms(line: &str) -> Option<i64> {
    let mut fields = line.split(',').map(|f| parse_seconds(Some(f.trim())));
    let (pts, dts, duration) = (fields.next()?, fields.next()?, fields.next().flatten());
    Some(pts.or(dts)? + duration.unwrap_or(0))
}

/// `"5.312000"` → 5312 ms; `None` for absent, `N/A` and non-finite values.
fn parse_seconds(text: Option<&str>) -> Option<i64> {
    let secs: f64 = text?.parse().ok()?;
    secs.is_finite().then(|| (secs * 1000.0).round() as i64)
}

/// `1.000` style seconds for ffmpeg/ffprobe options.
pub(super) fn seconds(ms: i64) -> String {
    let sign = if ms < 0 { "-" } else { "" };
    let ms = ms.unsigned_abs();
    format!("{sign}{}.{:03}", ms / 1000, ms % 1000)
}

fn strs(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// Width and height as displayed: anamorphic pixels stretched, and sides
/// swapped for a quarter-turn rotation (phone videos).
fn display_size(stream: &RawStream) -> Option<(u32, u32)> {
    let (w, h) = (
        stream.width.filter(|&w| w > 0)?,
        stream.height.filter(|&h| h > 0)?,
    );
    let w = match stream.sample_aspect_ratio.as_deref().and_then(parse_ratio) {
        Some(sar) if sar > 0.0 => ((f64::from(w) * sar).round() as u32).max(1),
        _ => w,
    };
    let quarter_turn = stream.rotation().is_some_and(|r| r.rem_euclid(180) == 90);
    Some(if quarter_turn { (h, w) } else { (w, h) })
}

fn parse_ratio(text: &str) -> Option<f64> {
    let (num, den) = text.split_once(':')?;
    let (num, den): (f64, f64) = (num.parse().ok()?, den.parse().ok()?);
    (num > 0.0 && den > 0.0).then(|| num / den)
}

#[derive(Deserialize, Default)]
struct RawProbe {
    #[serde(default)]
    format: Option<RawFormat>,
    #[serde(default)]
    streams: Vec<RawStream>,
}

#[derive(Deserialize, Default)]
struct RawFormat {
    format_name: Option<String>,
    duration: Option<String>,
    start_time: Option<String>,
}

#[derive(Deserialize)]
struct RawStream {
    codec_type: Option<String>,
    codec_name: Option<String>,
    width: Option<u32>,
    height: Option<u32>,
    sample_aspect_ratio: Option<String>,
    duration: Option<String>,
    #[serde(default)]
    disposition: Option<RawDisposition>,
    #[serde(default)]
    tags: Option<RawTags>,
    #[serde(default)]
    side_data_list: Vec<RawSideData>,
}

impl RawStream {
    fn is_cover_art(&self) -> bool {
        self.disposition
            .as_ref()
            .is_some_and(|d| d.attached_pic == 1)
    }

    /// Degrees, from the display matrix or the older `rotate` tag.
    fn rotation(&self) -> Option<i64> {
        let from_matrix = self.side_data_list.iter().find_map(|s| s.rotation);
        let from_tag = || self.tags.as_ref()?.rotate.as_deref()?.parse::<f64>().ok();
        from_matrix.or_else(from_tag).map(|r| r.round() as i64)
    }
}

#[derive(Deserialize)]
struct RawDisposition {
    #[serde(default)]
    attached_pic: u8,
}

#[derive(Deserialize)]
struct RawTags {
    rotate: Option<String>,
}

#[derive(Deserialize)]
struct RawSideData {
    rotation: Option<f64>,
}

#[cfg(test)]
mod tests;
