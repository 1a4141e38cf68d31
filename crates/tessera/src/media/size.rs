//! Picture sizes: resizes keep the aspect ratio, reframes reach an exact
//! ratio by cropping or padding, and every side we encode is even (H.264
//! `yuv420p` needs it).

use crate::domain::graph::{AspectRatio, ReframeMode};

use super::probe::Probe;

/// Largest side we encode; libx264 and browsers handle up to 8K.
pub(super) const MAX_SIDE: u32 = 8192;
/// Thumbnails are at most this wide.
const THUMBNAIL_MAX_WIDTH: u32 = 640;

/// A picture size in pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Size {
    pub width: u32,
    pub height: u32,
}

/// The thumbnail size: the display size, at most 640 wide, even sides.
pub fn thumbnail_size(probe: &Probe) -> Size {
    let (w, h) = (f64::from(probe.width), f64::from(probe.height));
    let (w, h) = if probe.width > THUMBNAIL_MAX_WIDTH {
        fit((w, h), Some(f64::from(THUMBNAIL_MAX_WIDTH)), None)
    } else {
        (w, h)
    };
    // A very tall picture at 640 wide could still be huge; cap the height too.
    let (w, h) = if h > f64::from(MAX_SIDE) {
        fit((w, h), None, Some(f64::from(MAX_SIDE)))
    } else {
        (w, h)
    };
    Size {
        width: even_at_most(w, THUMBNAIL_MAX_WIDTH),
        height: even(h),
    }
}

/// Scales `(w, h)` keeping its aspect ratio: to the given width, the given
/// height, or to fit inside both.
pub(super) fn fit((w, h): (f64, f64), width: Option<f64>, height: Option<f64>) -> (f64, f64) {
    let scale = match (width, height) {
        (Some(tw), Some(th)) => (tw / w).min(th / h),
        (Some(tw), None) => tw / w,
        (None, Some(th)) => th / h,
        (None, None) => 1.0,
    };
    (w * scale, h * scale)
}

/// The nearest even number, at least 2.
pub(super) fn even(x: f64) -> u32 {
    let halves = (x / 2.0).round().max(1.0);
    // The float is positive and small (sides are capped elsewhere); saturating cast.
    (halves as u32).saturating_mul(2)
}

/// Where a reframe puts the picture: the new frame size and the offset of
/// the crop window (crop) or of the picture inside the frame (pad).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Reframe {
    pub frame: Size,
    /// The cropped window (crop) or the picture (pad) size.
    pub inner: Size,
    pub x: u32,
    pub y: u32,
}

/// Geometry of a centred crop or pad of `from` (even sides) to `aspect`.
/// The changed side is the nearest even number to the exact one (at most
/// 1 px off); sides and offsets are even, so chroma planes stay aligned.
pub(super) fn reframe(from: Size, aspect: AspectRatio, mode: ReframeMode) -> Reframe {
    let (w, h) = (f64::from(from.width), f64::from(from.height));
    let ratio = f64::from(aspect.width) / f64::from(aspect.height);
    let wider = w / h > ratio;
    let target = match (mode, wider) {
        (ReframeMode::Crop, true) => Size {
            width: even(h * ratio).min(from.width),
            height: from.height,
        },
        (ReframeMode::Crop, false) => Size {
            width: from.width,
            height: even(w / ratio).min(from.height),
        },
        (ReframeMode::Pad, true) => Size {
            width: from.width,
            height: even(w / ratio).max(from.height),
        },
        (ReframeMode::Pad, false) => Size {
            width: even(h * ratio).max(from.width),
            height: from.height,
        },
    };
    let (big, small) = match mode {
        ReframeMode::Crop => (from, target),
        ReframeMode::Pad => (target, from),
    };
    Reframe {
        frame: target,
        inner: small,
        x: even_floor_or_zero((big.width - small.width) / 2),
        y: even_floor_or_zero((big.height - small.height) / 2),
    }
}

fn even_floor_or_zero(x: u32) -> u32 {
    x & !1
}

/// Like [`even`] but never above `max` (itself even).
fn even_at_most(x: f64, max: u32) -> u32 {
    even(x).min(max)
}

#[cfg(test)]
mod tests;
