//! YouTube inputs: fetched with `yt-dlp` when it is installed. yt-dlp is only
//! ever run for YouTube hosts, with a size and duration limit, no playlists,
//! no config files, and a deadline; it writes one local file that then goes
//! through the same probing as every other input.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::process::Command;

/// Longest YouTube video accepted (PRODUCT.md §2).
pub const YOUTUBE_MAX_SECONDS: u64 = 3600;

/// Hosts whose watch URLs go to yt-dlp instead of a plain download.
pub fn is_youtube(url: &url::Url) -> bool {
    matches!(
        url.host_str()
            .map(|h| h.trim_end_matches('.').to_ascii_lowercase())
            .as_deref(),
        Some(
            "youtube.com" | "www.youtube.com" | "m.youtube.com" | "music.youtube.com" | "youtu.be"
        )
    )
}

/// Why a YouTube fetch failed, in words for `status_message`.
#[derive(Debug, thiserror::Error)]
pub enum YtDlpError {
    #[error("YouTube inputs need yt-dlp, which is not installed on this server")]
    NotInstalled,
    #[error("yt-dlp did not finish within {} seconds", .0.as_secs())]
    Timeout(Duration),
    #[error("yt-dlp could not fetch the video: {0}")]
    Failed(String),
}

/// Fetch one YouTube video to `dest`.
pub async fn fetch(
    ytdlp: &Path,
    url: &url::Url,
    dest: &Path,
    max_bytes: u64,
    timeout: Duration,
) -> Result<(), YtDlpError> {
    let mut cmd = Command::new(ytdlp);
    cmd.args([
        "--ignore-config",
        "--no-playlist",
        "--no-progress",
        "--quiet",
        "--no-warnings",
    ])
    .args(["--format", "b[ext=mp4]/b"])
    .args(["--max-filesize", &max_bytes.to_string()])
    .args([
        "--match-filter",
        &format!("duration <= {YOUTUBE_MAX_SECONDS}"),
    ])
    .arg("--output")
    .arg(dest)
    .arg("--")
    .arg(url.as_str())
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .kill_on_drop(true);
    tracing::debug!(command = ?cmd.as_std(), "running yt-dlp");
    let mut child = match cmd.spawn() {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(YtDlpError::NotInstalled),
        Err(e) => return Err(YtDlpError::Failed(format!("could not start it ({e})"))),
    };
    let mut stderr = child.stderr.take();
    let finished = tokio::time::timeout(timeout, async {
        let mut text = String::new();
        if let Some(err) = stderr.as_mut() {
            let _ = err.take(16 * 1024).read_to_string(&mut text).await;
        }
        (child.wait().await, text)
    })
    .await;
    let outcome = match finished {
        Err(_) => Err(YtDlpError::Timeout(timeout)),
        Ok((Ok(status), _)) if status.success() && dest.exists() => Ok(()),
        Ok((Ok(_), text)) => {
            let last = text
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("no output file");
            Err(YtDlpError::Failed(last.chars().take(300).collect()))
        }
        Ok((Err(e), _)) => Err(YtDlpError::Failed(e.to_string())),
    };
    if outcome.is_err() {
        let _ = tokio::fs::remove_file(dest).await;
    }
    outcome
}

/// Most metadata read from `--dump-json` (it lists every format, so it can
/// be a few hundred KB; anything beyond this is not yt-dlp talking).
const MAX_METADATA_BYTES: u64 = 16 * 1024 * 1024;

/// The real duration of a YouTube video in seconds, from yt-dlp's metadata
/// (`--dump-json --skip-download`). `Ok(None)` when yt-dlp knows no
/// duration (a live stream or an upcoming premiere).
pub async fn duration(
    ytdlp: &Path,
    url: &url::Url,
    timeout: Duration,
) -> Result<Option<f64>, YtDlpError> {
    let mut cmd = Command::new(ytdlp);
    cmd.args([
        "--ignore-config",
        "--no-playlist",
        "--dump-json",
        "--skip-download",
        "--no-warnings",
        "--",
        url.as_str(),
    ])
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .kill_on_drop(true);
    let child = match cmd.spawn() {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(YtDlpError::NotInstalled),
        Err(e) => return Err(YtDlpError::Failed(format!("could not start it ({e})"))),
    };
    let (status, stdout, stderr) = tokio::time::timeout(timeout, collect(child))
        .await
        .map_err(|_| YtDlpError::Timeout(timeout))?
        .map_err(|e| YtDlpError::Failed(e.to_string()))?;
    if !status.success() {
        return Err(YtDlpError::Failed(last_line(&stderr, "no metadata")));
    }
    parse_duration(&stdout)
}

/// Wait for the process, reading its (capped) stdout and stderr meanwhile so
/// a chatty yt-dlp never blocks on a full pipe.
async fn collect(
    mut child: tokio::process::Child,
) -> std::io::Result<(std::process::ExitStatus, Vec<u8>, String)> {
    let mut stdout = Vec::new();
    let mut stderr = String::new();
    let out = child.stdout.take();
    let err = child.stderr.take();
    let read_out = async {
        if let Some(out) = out {
            out.take(MAX_METADATA_BYTES)
                .read_to_end(&mut stdout)
                .await?;
        }
        Ok::<_, std::io::Error>(())
    };
    let read_err = async {
        if let Some(err) = err {
            let _ = err.take(16 * 1024).read_to_string(&mut stderr).await;
        }
        Ok::<_, std::io::Error>(())
    };
    tokio::try_join!(read_out, read_err)?;
    let status = child.wait().await?;
    Ok((status, stdout, stderr))
}

fn parse_duration(stdout: &[u8]) -> Result<Option<f64>, YtDlpError> {
    #[derive(serde::Deserialize)]
    struct Metadata {
        duration: Option<f64>,
    }
    let meta: Metadata = serde_json::from_slice(stdout)
        .map_err(|e| YtDlpError::Failed(format!("unreadable metadata ({e})")))?;
    Ok(meta.duration.filter(|d| d.is_finite() && *d >= 0.0))
}

fn last_line(text: &str, fallback: &str) -> String {
    text.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or(fallback)
        .chars()
        .take(300)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_youtube_hosts_go_to_yt_dlp() {
        for yes in [
            "https://www.youtube.com/watch?v=abc",
            "https://youtu.be/abc",
            "https://m.youtube.com/watch?v=x",
        ] {
            assert!(is_youtube(&url::Url::parse(yes).unwrap()), "{yes}");
        }
        for no in [
            "https://example.com/watch?v=abc",
            "https://youtube.com.evil.test/x",
            "https://notyoutube.com/",
        ] {
            assert!(!is_youtube(&url::Url::parse(no).unwrap()), "{no}");
        }
    }

    #[tokio::test]
    async fn a_missing_yt_dlp_is_reported_clearly() {
        let dest = std::env::temp_dir().join(format!("ytdlp-{}", uuid::Uuid::new_v4()));
        let err = fetch(
            Path::new("/nonexistent/yt-dlp"),
            &url::Url::parse("https://www.youtube.com/watch?v=abc").unwrap(),
            &dest,
            1000,
            Duration::from_secs(5),
        )
        .await
        .unwrap_err();
        assert!(matches!(err, YtDlpError::NotInstalled));
    }

    #[test]
    fn the_duration_comes_from_the_metadata() {
        assert_eq!(
            parse_duration(br#"{"id":"x","duration":212.5,"formats":[]}"#).unwrap(),
            Some(212.5)
        );
        assert_eq!(
            parse_duration(br#"{"id":"x","duration":null}"#).unwrap(),
            None
        );
        assert!(parse_duration(b"not json").is_err());
    }
}
