//! Streams a remote file to disk with a byte cap and one deadline over the
//! whole transfer; a failed download leaves no partial file behind.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::AsyncWriteExt as _;

use super::classify::{ErrorClass, classify, error_detail};

/// Why a download failed. Messages are user-facing: no URL (it may carry
/// tokens), no server paths.
#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    #[error("the download did not finish within {} seconds", .0.as_secs())]
    Timeout(Duration),
    #[error("the file is larger than the {limit}-byte limit")]
    TooLarge { limit: u64 },
    #[error("the server answered HTTP {0}")]
    Status(u16),
    #[error("the download failed: {detail}")]
    Transport { class: ErrorClass, detail: String },
    #[error("the downloaded file could not be stored")]
    Storage(#[source] io::Error),
}

impl DownloadError {
    /// The class stored with the failure.
    pub fn class(&self) -> ErrorClass {
        match self {
            Self::Timeout(_) => ErrorClass::Timeout,
            Self::TooLarge { .. } | Self::Storage(_) => ErrorClass::Body,
            Self::Status(_) => ErrorClass::Status,
            Self::Transport { class, .. } => *class,
        }
    }
}

impl From<reqwest::Error> for DownloadError {
    fn from(err: reqwest::Error) -> Self {
        Self::Transport {
            class: classify(&err),
            detail: error_detail(&err),
        }
    }
}

/// Streams `url` to `dest` (created or truncated) and returns the number of
/// bytes written.
///
/// Fails with [`DownloadError::TooLarge`] before reading when the announced
/// `Content-Length` exceeds `max_bytes`, and as soon as the body does;
/// non-2xx answers fail with their status. `timeout` bounds everything:
/// connect, redirects, headers and body. On any failure — and if the
/// returned future is dropped — the partial file is removed. The caller
/// checks the URL (`check_url`) first; redirects are checked by the
/// download client.
pub async fn download_to_file(
    client: &reqwest::Client,
    url: &url::Url,
    dest: &Path,
    max_bytes: u64,
    timeout: Duration,
) -> Result<u64, DownloadError> {
    let transfer = fetch(client, url, dest, max_bytes);
    tokio::time::timeout(timeout, transfer)
        .await
        .unwrap_or(Err(DownloadError::Timeout(timeout)))
}

async fn fetch(
    client: &reqwest::Client,
    url: &url::Url,
    dest: &Path,
    max_bytes: u64,
) -> Result<u64, DownloadError> {
    let mut response = client.get(url.clone()).send().await?;
    let status = response.status();
    if !status.is_success() {
        return Err(DownloadError::Status(status.as_u16()));
    }
    if response.content_length().is_some_and(|len| len > max_bytes) {
        return Err(DownloadError::TooLarge { limit: max_bytes });
    }
    let mut partial = PartialFile::create(dest).await?;
    let mut written: u64 = 0;
    while let Some(chunk) = response.chunk().await? {
        written += chunk.len() as u64;
        if written > max_bytes {
            return Err(DownloadError::TooLarge { limit: max_bytes });
        }
        partial
            .file
            .write_all(&chunk)
            .await
            .map_err(DownloadError::Storage)?;
    }
    partial.finish().await?;
    Ok(written)
}

/// A file being written that is deleted unless [`PartialFile::finish`] is
/// reached: covers errors, the deadline and the caller dropping the future.
struct PartialFile {
    file: tokio::fs::File,
    path: PathBuf,
    keep: bool,
}

impl PartialFile {
    async fn create(path: &Path) -> Result<Self, DownloadError> {
        let file = tokio::fs::File::create(path)
            .await
            .map_err(DownloadError::Storage)?;
        Ok(Self {
            file,
            path: path.to_owned(),
            keep: false,
        })
    }

    async fn finish(mut self) -> Result<(), DownloadError> {
        self.file.flush().await.map_err(DownloadError::Storage)?;
        self.keep = true;
        Ok(())
    }
}

impl Drop for PartialFile {
    fn drop(&mut self) {
        if !self.keep {
            // Drop cannot await; unlinking one file is quick enough to do
            // inline. A missing file is fine: there is nothing to clean.
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::Router;
    use axum::body::Body;
    use axum::http::StatusCode;
    use axum::routing::get;
    use bytes::Bytes;

    use super::*;
    use crate::net::download_client;
    use crate::net::test_support::{config, spawn_raw, spawn_router};

    const LONG: Duration = Duration::from_secs(10);

    async fn media_server() -> std::net::SocketAddr {
        let chunks = || {
            let parts = (0..10).map(|_| Ok::<_, io::Error>(Bytes::from(vec![7u8; 100])));
            Body::from_stream(futures_util::stream::iter(parts))
        };
        let router = Router::new()
            .route("/sized", get(|| async { vec![7u8; 1000] }))
            .route("/chunked", get(move || async move { chunks() }))
            .route("/missing", get(|| async { StatusCode::NOT_FOUND }));
        spawn_router(router).await
    }

    fn url(addr: std::net::SocketAddr, path: &str) -> url::Url {
        url::Url::parse(&format!("http://{addr}{path}?token=s3cret")).expect("valid url")
    }

    fn dest() -> (tempdir::Dir, PathBuf) {
        let dir = tempdir::Dir::new();
        let path = dir.0.join("input.mp4");
        (dir, path)
    }

    async fn download(path: &str, dest: &Path, max: u64) -> Result<u64, DownloadError> {
        let addr = media_server().await;
        let client = download_client(&config("127.0.0.1", ""));
        download_to_file(&client, &url(addr, path), dest, max, LONG).await
    }

    #[tokio::test]
    async fn a_body_within_the_cap_is_written_whole() {
        let (_dir, dest) = dest();
        assert_eq!(download("/chunked", &dest, 1000).await.expect("fits"), 1000);
        assert_eq!(std::fs::read(&dest).expect("written").len(), 1000);
    }

    #[tokio::test]
    async fn a_content_length_over_the_cap_fails_before_writing() {
        let (_dir, dest) = dest();
        let err = download("/sized", &dest, 999).await.expect_err("too large");
        assert!(matches!(err, DownloadError::TooLarge { limit: 999 }));
        assert!(!dest.exists());
    }

    #[tokio::test]
    async fn a_chunked_body_over_the_cap_is_aborted_and_the_partial_file_removed() {
        let (_dir, dest) = dest();
        let err = download("/chunked", &dest, 250)
            .await
            .expect_err("too large");
        assert!(matches!(err, DownloadError::TooLarge { limit: 250 }));
        assert_eq!(err.class(), ErrorClass::Body);
        assert!(!dest.exists());
    }

    #[tokio::test]
    async fn a_non_success_status_fails_with_that_status() {
        let (_dir, dest) = dest();
        let err = download("/missing", &dest, 1000).await.expect_err("404");
        assert!(matches!(err, DownloadError::Status(404)));
        assert_eq!(err.to_string(), "the server answered HTTP 404");
    }

    #[tokio::test]
    async fn the_deadline_covers_the_whole_transfer() {
        let addr = spawn_raw(|mut stream| async move {
            use tokio::io::AsyncWriteExt as _;
            crate::net::test_support::read_head(&mut stream).await;
            let head = "HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\npartial";
            let _ = stream.write_all(head.as_bytes()).await;
            std::future::pending::<()>().await;
        })
        .await;
        let (_dir, dest) = dest();
        let client = download_client(&config("127.0.0.1", ""));
        let short = Duration::from_millis(300);
        let err = download_to_file(&client, &url(addr, "/"), &dest, 5000, short)
            .await
            .expect_err("times out");
        assert_eq!(err.class(), ErrorClass::Timeout);
        assert!(!dest.exists(), "the partial file is removed");
    }

    #[tokio::test]
    async fn transport_errors_never_echo_the_url() {
        let (_dir, dest) = dest();
        let client = download_client(&config("false", "media.test=127.0.0.1"));
        let url = url::Url::parse("http://media.test/v.mp4?token=s3cret").expect("valid");
        let err = download_to_file(&client, &url, &dest, 10, LONG)
            .await
            .expect_err("refused");
        assert_eq!(err.class(), ErrorClass::RefusedAddress);
        assert!(!err.to_string().contains("s3cret"), "{err}");
    }

    /// A scratch directory under the system temp dir, removed on drop.
    mod tempdir {
        pub struct Dir(pub std::path::PathBuf);

        impl Dir {
            pub fn new() -> Self {
                let path =
                    std::env::temp_dir().join(format!("tessera-net-{}", uuid::Uuid::new_v4()));
                std::fs::create_dir_all(&path).expect("create temp dir");
                Self(path)
            }
        }

        impl Drop for Dir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
    }
}
