//! Output picture sizes, computed from the probe: resizes keep the aspect
//! ratio, `max_height` caps the height, and both sides end up even (H.264
//! `yuv420p` needs it).

use crate::domain::graph::{RenderPlan, Step};

use super::MediaError;
use super::probe::Probe;

/// Largest side we encode; libx264 and browsers handle up to 8K.
const MAX_SIDE: u32 = 8192;
/// Thumbnails are at most this wide.
const THUMBNAIL_MAX_WIDTH: u32 = 640;

/// A picture size in pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Size {
    pub width: u32,
    pub height: u32,
}

/// The size a plan renders at: every resize in order (each keeps the aspect
/// ratio, fitting inside the box when both sides are given), then the
/// render's `max_height`, then rounding to even sides.
pub fn output_size(plan: &RenderPlan, probe: &Probe) -> Result<Size, MediaError> {
    // Floats until the end, so that chained resizes do not compound rounding.
    let mut size = (f64::from(probe.width), f64::from(probe.height));
    for step in &plan.steps {
        if let Step::Resize { width, height } = *step {
            size = fit(size, width.map(f64::from), height.map(f64::from));
        }
    }
    if let Some(max) = plan.render.max_height.map(f64::from)
        && size.1 > max
    {
        size = fit(size, None, Some(max));
    }
    let out = Size {
        width: even(size.0),
        height: even(size.1),
    };
    if out.width > MAX_SIDE || out.height > MAX_SIDE {
        return Err(MediaError::Unsupported(format!(
            "the output would be {}x{}; the largest side allowed is {MAX_SIDE}",
            out.width, out.height
        )));
    }
    Ok(out)
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
fn fit((w, h): (f64, f64), width: Option<f64>, height: Option<f64>) -> (f64, f64) {
    let scale = match (width, height) {
        (Some(tw), Some(th)) => (tw / w).min(th / h),
        (Some(tw), None) => tw / w,
        (None, Some(th)) => th / h,
        (None, None) => 1.0,
    };
    (w * scale, h * scale)
}

/// The nearest even number, at least 2.
fn even(x: f64) -> u32 {
    let halves = (x / 2.0).round().max(1.0);
    // The float is positive and small (sides are capped elsewhere); saturating cast.
    (halves as u32).saturating_mul(2)
}

/// Like [`even`] but never above `max` (itself even).
fn even_at_most(x: f64, max: u32) -> u32 {
    even(x).min(max)
}

#[cfg(test)]
mod tests {
    use crate::domain::graph::{Format, RenderParams, VideoCodec};

    use super::*;

    fn probe(width: u32, height: u32) -> Probe {
        Probe {
            duration_ms: 10_000,
            width,
            height,
            has_audio: false,
            video_codec: "h264".into(),
            format_name: "mov,mp4,m4a,3gp,3g2,mj2".into(),
        }
    }

    fn plan(steps: Vec<Step>, max_height: Option<u32>) -> RenderPlan {
        RenderPlan {
            input_node: "in".into(),
            render_node: "out".into(),
            steps,
            render: RenderParams {
                format: Format::Mp4,
                video_codec: VideoCodec::H264,
                crf: 23,
                max_height,
            },
        }
    }

    fn resize(width: Option<u32>, height: Option<u32>) -> Step {
        Step::Resize { width, height }
    }

    fn size_of(steps: Vec<Step>, max_height: Option<u32>, w: u32, h: u32) -> (u32, u32) {
        let s = output_size(&plan(steps, max_height), &probe(w, h)).expect("size");
        (s.width, s.height)
    }

    #[test]
    fn without_resize_the_display_size_is_kept() {
        assert_eq!(size_of(vec![], None, 1280, 720), (1280, 720));
    }

    #[test]
    fn odd_sources_are_rounded_to_even() {
        assert_eq!(size_of(vec![], None, 641, 361), (642, 362));
    }

    #[test]
    fn width_alone_keeps_the_aspect_ratio() {
        assert_eq!(
            size_of(vec![resize(Some(320), None)], None, 1280, 720),
            (320, 180)
        );
        assert_eq!(
            size_of(vec![resize(Some(320), None)], None, 640, 272),
            (320, 136)
        );
    }

    #[test]
    fn height_alone_keeps_the_aspect_ratio() {
        assert_eq!(
            size_of(vec![resize(None, Some(360))], None, 1280, 720),
            (640, 360)
        );
    }

    #[test]
    fn both_sides_fit_inside_the_box() {
        let wide = size_of(vec![resize(Some(400), Some(400))], None, 1280, 720);
        assert_eq!(wide, (400, 226));
        let tall = size_of(vec![resize(Some(400), Some(400))], None, 720, 1280);
        assert_eq!(tall, (226, 400));
    }

    #[test]
    fn resizes_may_enlarge() {
        assert_eq!(
            size_of(vec![resize(Some(1280), None)], None, 640, 272),
            (1280, 544)
        );
    }

    #[test]
    fn chained_resizes_do_not_compound_rounding() {
        let steps = vec![resize(Some(33), None), resize(Some(1280), None)];
        assert_eq!(size_of(steps, None, 1280, 720), (1280, 720));
    }

    #[test]
    fn max_height_caps_the_height_keeping_the_aspect_ratio() {
        assert_eq!(size_of(vec![], Some(360), 1280, 720), (640, 360));
        assert_eq!(size_of(vec![], Some(1080), 1280, 720), (1280, 720));
        let after_resize = size_of(vec![resize(Some(1920), None)], Some(720), 1280, 720);
        assert_eq!(after_resize, (1280, 720));
    }

    #[test]
    fn every_side_is_even_and_at_least_two() {
        for (w, h) in [(1, 1), (3, 5), (17, 9), (7679, 4321)] {
            let (ow, oh) = size_of(vec![resize(Some(17), None)], None, w, h);
            assert!(
                ow % 2 == 0 && oh % 2 == 0 && ow >= 2 && oh >= 2,
                "{w}x{h} → {ow}x{oh}"
            );
        }
    }

    #[test]
    fn absurd_aspect_ratios_are_refused() {
        let err = output_size(
            &plan(vec![resize(Some(7680), None)], None),
            &probe(16, 9000),
        );
        assert!(matches!(err, Err(MediaError::Unsupported(_))), "{err:?}");
    }

    #[test]
    fn thumbnails_are_at_most_640_wide_and_even() {
        assert_eq!(
            thumbnail_size(&probe(1280, 720)),
            Size {
                width: 640,
                height: 360
            }
        );
        assert_eq!(
            thumbnail_size(&probe(640, 272)),
            Size {
                width: 640,
                height: 272
            }
        );
        assert_eq!(
            thumbnail_size(&probe(321, 241)),
            Size {
                width: 322,
                height: 242
            }
        );
        assert_eq!(
            thumbnail_size(&probe(1920, 1081)),
            Size {
                width: 640,
                height: 360
            }
        );
    }
}
