//! Pure tests of the size arithmetic.

use crate::domain::graph::{AspectRatio, ReframeMode};

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

fn size(width: u32, height: u32) -> Size {
    Size { width, height }
}

fn ratio(width: u32, height: u32) -> AspectRatio {
    AspectRatio { width, height }
}

#[test]
fn fitting_keeps_the_aspect_ratio() {
    assert_eq!(fit((1280.0, 720.0), Some(320.0), None), (320.0, 180.0));
    assert_eq!(fit((1280.0, 720.0), None, Some(360.0)), (640.0, 360.0));
    assert_eq!(fit((1280.0, 720.0), Some(400.0), Some(400.0)).0, 400.0);
    assert_eq!(fit((720.0, 1280.0), Some(400.0), Some(400.0)).1, 400.0);
}

#[test]
fn every_side_is_even_and_at_least_two() {
    assert_eq!((even(641.0), even(361.0)), (642, 362));
    assert_eq!((even(0.4), even(3.0)), (2, 4));
}

#[test]
fn a_wide_picture_cropped_to_portrait_keeps_its_height() {
    let r = reframe(size(1280, 720), ratio(9, 16), ReframeMode::Crop);
    assert_eq!(r.frame, size(406, 720));
    assert_eq!(r.inner, r.frame);
    assert_eq!((r.x, r.y), (436, 0));
}

#[test]
fn a_wide_picture_padded_to_portrait_keeps_its_width() {
    let r = reframe(size(1280, 720), ratio(9, 16), ReframeMode::Pad);
    assert_eq!(r.frame, size(1280, 2276));
    assert_eq!(r.inner, size(1280, 720));
    assert_eq!((r.x, r.y), (0, 778));
}

#[test]
fn a_tall_picture_is_cropped_or_padded_the_other_way() {
    let crop = reframe(size(720, 1280), ratio(1, 1), ReframeMode::Crop);
    assert_eq!((crop.frame, crop.x, crop.y), (size(720, 720), 0, 280));
    let pad = reframe(size(720, 1280), ratio(16, 9), ReframeMode::Pad);
    assert_eq!(pad.frame, size(2276, 1280));
    assert_eq!((pad.x, pad.y), (778, 0));
}

#[test]
fn reframing_to_the_same_ratio_changes_nothing() {
    for mode in [ReframeMode::Crop, ReframeMode::Pad] {
        let r = reframe(size(1280, 720), ratio(16, 9), mode);
        assert_eq!((r.frame, r.x, r.y), (size(1280, 720), 0, 0), "{mode:?}");
    }
}

#[test]
fn reframed_sides_and_offsets_are_even_and_close_to_the_ratio() {
    for (w, h) in [(640, 272), (1920, 1080), (2, 2), (1080, 1920), (642, 362)] {
        for aspect in [ratio(9, 16), ratio(1, 1), ratio(4, 5), ratio(16, 9)] {
            for mode in [ReframeMode::Crop, ReframeMode::Pad] {
                let r = reframe(size(w, h), aspect, mode);
                let f = r.frame;
                let even = [f.width, f.height, r.x, r.y].map(|v| v.is_multiple_of(2));
                assert_eq!(even, [true; 4], "{w}x{h} {aspect:?} {mode:?}");
                // The rounded side is at most 1 px from exact.
                let ratio = f64::from(aspect.width) / f64::from(aspect.height);
                let off_w = (f64::from(f.width) - f64::from(f.height) * ratio).abs();
                let off_h = (f64::from(f.height) - f64::from(f.width) / ratio).abs();
                assert!(
                    off_w <= 1.0 || off_h <= 1.0 || f.width <= 2 || f.height <= 2,
                    "{w}x{h} {aspect:?} {mode:?} → {f:?}"
                );
            }
        }
    }
}

#[test]
fn thumbnails_are_at_most_640_wide_and_even() {
    assert_eq!(thumbnail_size(&probe(1280, 720)), size(640, 360));
    assert_eq!(thumbnail_size(&probe(640, 272)), size(640, 272));
    assert_eq!(thumbnail_size(&probe(321, 241)), size(322, 242));
    assert_eq!(thumbnail_size(&probe(1920, 1081)), size(640, 360));
}
