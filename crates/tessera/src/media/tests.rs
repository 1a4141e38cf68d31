//! Tests that run the real ffmpeg/ffprobe on the shared fixtures and on small
//! files generated into a temporary directory: probing and its safety here,
//! renders in `tests/renders.rs` and `tests/nodes.rs`.

mod nodes;
mod renders;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use super::*;

/// The shared fixtures beside the repository (`../shared/fixtures/video`).
const FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/fixtures/video"
);

/// A fixture video, or `None` (with a note) when the fixtures are absent.
/// A sample video: the shared fixture, or (on a lone clone) a look-alike
/// generated once — 1280×720 with audio for `bigbuckbunny.mp4`, 640×272
/// without audio for `bikes.mp4` — so these tests always run.
pub(super) fn fixture(name: &str) -> Option<PathBuf> {
    let path = Path::new(FIXTURES).join(name);
    if path.exists() {
        return Some(path);
    }
    static GENERATED: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    let dir = GENERATED.get_or_init(|| {
        let dir =
            std::env::temp_dir().join(format!("tessera-media-fixtures-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let make = |file: &str, video: &str, audio: bool, seconds: &str| {
            let mut cmd = std::process::Command::new("ffmpeg");
            cmd.args(["-nostdin", "-y", "-v", "error", "-f", "lavfi", "-i", video]);
            if audio {
                cmd.args(["-f", "lavfi", "-i", "sine=frequency=440", "-c:a", "aac"]);
            }
            let status = cmd
                .args([
                    "-t", seconds, "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p",
                ])
                .arg(dir.join(file))
                .status()
                .expect("ffmpeg runs");
            assert!(status.success(), "generating {file}");
        };
        make(
            "bigbuckbunny.mp4",
            "testsrc2=size=1280x720:rate=25",
            true,
            "5.312",
        );
        make("bikes.mp4", "testsrc=size=640x272:rate=25", false, "10");
        dir
    });
    Some(dir.join(name))
}

pub(super) fn media(max_media_seconds: u64) -> Media {
    Media::new(MediaConfig {
        ffmpeg: "ffmpeg".into(),
        ffprobe: "ffprobe".into(),
        jobs: 2,
        max_media_seconds,
        job_timeout: None,
    })
}

/// A temporary directory removed on drop.
pub(super) struct TempDir(pub(super) PathBuf);

impl TempDir {
    pub(super) fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("tessera-media-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        Self(dir)
    }

    pub(super) fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs ffmpeg directly to make a test input.
pub(super) fn ffmpeg(args: &[&str]) {
    let status = Command::new("ffmpeg")
        .args(["-nostdin", "-hide_banner", "-v", "error", "-y"])
        .args(args)
        .status()
        .expect("run ffmpeg");
    assert!(status.success(), "ffmpeg {args:?}");
}

/// ffprobe's view of an output: `(duration_s, streams as (codec, width, height))`.
pub(super) fn inspect(path: &Path) -> (f64, Vec<(String, u64, u64)>) {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-of", "json", "-show_entries"])
        .arg("format=duration:stream=codec_name,width,height")
        .arg(path)
        .output()
        .expect("run ffprobe");
    let doc: Value = serde_json::from_slice(&out.stdout).expect("json");
    let duration = doc["format"]["duration"]
        .as_str()
        .and_then(|d| d.parse().ok())
        .expect("duration");
    let streams = doc["streams"]
        .as_array()
        .expect("streams")
        .iter()
        .map(|s| {
            (
                s["codec_name"].as_str().unwrap_or_default().to_owned(),
                s["width"].as_u64().unwrap_or(0),
                s["height"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    (duration, streams)
}

#[tokio::test]
async fn ffmpeg_and_ffprobe_are_available() {
    media(60).check_available().await.expect("available");
    let missing = Media::new(MediaConfig {
        ffmpeg: "/nonexistent/ffmpeg".into(),
        ..media(60).inner.cfg.clone()
    });
    let err = missing.check_available().await.unwrap_err();
    assert!(
        matches!(err, MediaError::Unavailable { tool: "ffmpeg", .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn probes_a_video_with_audio() {
    let Some(bunny) = fixture("bigbuckbunny.mp4") else {
        return;
    };
    let probe = media(60).probe(&bunny).await.expect("probe");
    assert_eq!((probe.width, probe.height), (1280, 720));
    assert!(probe.has_audio);
    assert_eq!(probe.video_codec, "h264");
    assert!(probe.format_name.contains("mp4"), "{}", probe.format_name);
    assert!(
        (5000..5600).contains(&probe.duration_ms),
        "{}",
        probe.duration_ms
    );
}

#[tokio::test]
async fn probes_a_video_without_audio() {
    let Some(bikes) = fixture("bikes.mp4") else {
        return;
    };
    let probe = media(60).probe(&bikes).await.expect("probe");
    assert_eq!((probe.width, probe.height), (640, 272));
    assert!(!probe.has_audio);
    assert_eq!(probe.duration_ms, 10_000);
}

#[tokio::test]
async fn videos_over_the_length_limit_are_too_long() {
    let Some(bunny) = fixture("bigbuckbunny.mp4") else {
        return;
    };
    let err = media(3).probe(&bunny).await.unwrap_err();
    assert!(
        matches!(err, MediaError::TooLong { max_seconds: 3, .. }),
        "{err:?}"
    );
    assert_eq!(err.to_string(), "the video is 6 s long; the limit is 3 s");
}

#[tokio::test]
async fn thumbnails_are_jpegs() {
    let Some(bunny) = fixture("bigbuckbunny.mp4") else {
        return;
    };
    let tmp = TempDir::new();
    let media = media(60);
    let probe = media.probe(&bunny).await.expect("probe");
    let jpg = tmp.path("thumb.jpg");
    media
        .thumbnail(&bunny, &probe, &jpg)
        .await
        .expect("thumbnail");
    let bytes = std::fs::read(&jpg).expect("read");
    assert_eq!(&bytes[..2], &[0xFF, 0xD8]);
    let (_, streams) = inspect(&jpg);
    assert_eq!((streams[0].1, streams[0].2), (640, 360));
}

async fn assert_not_a_video(path: &Path) -> String {
    match media(60).probe(path).await {
        Err(MediaError::NotAVideo(reason)) => reason,
        other => panic!("{}: expected NotAVideo, got {other:?}", path.display()),
    }
}

#[tokio::test]
async fn html_pages_are_not_videos() {
    let tmp = TempDir::new();
    let html = tmp.path("page.mp4");
    std::fs::write(&html, "<!doctype html><html><body>Not here</body></html>").expect("write");
    let reason = assert_not_a_video(&html).await;
    assert!(
        !reason.contains(&*tmp.0.to_string_lossy()),
        "path leaked: {reason}"
    );
}

#[tokio::test]
async fn images_are_not_videos() {
    let tmp = TempDir::new();
    let jpg = tmp.path("photo.jpg");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc=s=64x64:d=1",
        "-frames:v",
        "1",
        &jpg.to_string_lossy(),
    ]);
    let reason = assert_not_a_video(&jpg).await;
    assert!(reason.contains("not accepted"), "{reason}");
}

#[tokio::test]
async fn truncated_mp4s_are_not_videos() {
    let Some(bunny) = fixture("bigbuckbunny.mp4") else {
        return;
    };
    let tmp = TempDir::new();
    let bytes = std::fs::read(&bunny).expect("read");
    // The fixture keeps its index at the end: cutting it loses the index.
    let cut = tmp.path("cut.mp4");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).expect("write");
    assert_not_a_video(&cut).await;
    // With the index up front the header is intact but the media is missing.
    let faststart = tmp.path("faststart.mp4");
    let (src, dst) = (bunny.to_string_lossy(), faststart.to_string_lossy());
    ffmpeg(&["-i", &src, "-c", "copy", "-movflags", "+faststart", &dst]);
    let bytes = std::fs::read(&faststart).expect("read");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).expect("write");
    let reason = assert_not_a_video(&cut).await;
    assert!(reason.contains("truncated"), "{reason}");
}

#[tokio::test]
async fn playlists_are_refused_without_fetching_anything() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    let port = listener.local_addr().expect("addr").port();
    let tmp = TempDir::new();
    let playlist = tmp.path("video.mp4");
    std::fs::write(
        &playlist,
        format!(
            "#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\nhttp://127.0.0.1:{port}/x.ts\n\
             #EXTINF:10,\nhttp://127.0.0.1:9/x.ts\n#EXT-X-ENDLIST\n"
        ),
    )
    .expect("write");
    let reason = assert_not_a_video(&playlist).await;
    assert!(reason.contains("hls"), "{reason}");
    let accepted = listener.accept();
    assert!(
        matches!(&accepted, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "something connected: {accepted:?}"
    );
}
