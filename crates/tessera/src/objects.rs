//! Object storage for inputs, outputs and thumbnails, and the signed URLs
//! that hand them out.
//!
//! Everything goes through the `object_store` crate: a local directory by
//! default, or an S3-compatible bucket (`s3://bucket/prefix`). Files move
//! between the store and local disk in bounded chunks: a 5 GB input never
//! sits in memory.
//!
//! Two kinds of URL point at objects. Webhook payloads and API responses
//! carry *public* URLs ([`Objects::with_urls`]): with a local store they are
//! Tessera's own `/files/…` URLs signed with an HMAC; with S3 they are SigV4
//! presigned GET URLs to the bucket, so receivers download straight from the
//! store. The dashboard always uses `/files/…` ([`Objects::file_url`]): the
//! page's Content-Security-Policy allows only its own origin, and `/files`
//! streams from whichever store is configured.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use object_store::path::Path as ObjectPath;
use object_store::{GetOptions, GetRange, ObjectStore, ObjectStoreExt, WriteMultipart};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::domain::signing;

#[cfg(feature = "s3")]
mod s3;

/// How long a signed file URL stays valid.
pub const URL_VALIDITY_SECS: i64 = 3600;
const CHUNK: usize = 8 * 1024 * 1024;

/// The object store plus what is needed to sign URLs to its objects.
#[derive(Clone)]
pub struct Objects {
    store: Arc<dyn ObjectStore>,
    /// The directory of a local store: files are hard-linked in, not copied.
    local_root: Option<Arc<std::path::PathBuf>>,
    /// Presigns public URLs when the store is S3.
    #[cfg(feature = "s3")]
    presigner: Option<Arc<s3::Presigner>>,
    secret: Arc<[u8]>,
    base: url::Url,
}

/// Why streaming into the store failed.
#[derive(Debug, thiserror::Error)]
pub enum PutError {
    /// More than the allowed bytes arrived; nothing was stored.
    #[error("the file is larger than the {limit}-byte limit")]
    TooLarge { limit: u64 },
    /// Reading what was to be stored failed (a broken upload).
    #[error("reading the file failed: {0}")]
    Source(std::io::Error),
    /// The store refused or failed.
    #[error("{0:#}")]
    Store(anyhow::Error),
}

/// A byte range of an object, ready to stream.
pub struct ObjectRange {
    pub total: u64,
    pub start: u64,
    pub end_exclusive: u64,
    pub body: BoxStream<'static, object_store::Result<Bytes>>,
}

impl Objects {
    /// A store in a local directory (created if missing).
    pub fn local(dir: &Path, secret: &[u8], base: url::Url) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create object directory {}", dir.display()))?;
        let store = object_store::local::LocalFileSystem::new_with_prefix(dir)
            .context("cannot open the object directory")?
            .with_automatic_cleanup(true);
        Ok(Objects {
            store: Arc::new(store),
            local_root: Some(Arc::new(dir.to_path_buf())),
            #[cfg(feature = "s3")]
            presigner: None,
            secret: secret.into(),
            base,
        })
    }

    /// A store in an S3-compatible bucket, configured from the standard AWS
    /// environment (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
    /// `AWS_SESSION_TOKEN`, `AWS_REGION`, `AWS_ENDPOINT_URL`, …). Checks that
    /// the bucket answers before returning, so a wrong name, endpoint or
    /// credential stops the start with a clear error.
    #[cfg(feature = "s3")]
    pub async fn s3(
        location: &crate::config::S3Location,
        secret: &[u8],
        base: url::Url,
    ) -> anyhow::Result<Self> {
        let (store, presigner) = s3::open(location).await?;
        Ok(Objects {
            store,
            local_root: None,
            presigner: Some(Arc::new(presigner)),
            secret: secret.into(),
            base,
        })
    }

    /// Open the configured store.
    pub async fn open(
        config: &crate::config::ObjectStoreConfig,
        secret: &[u8],
        base: url::Url,
    ) -> anyhow::Result<Self> {
        match config {
            crate::config::ObjectStoreConfig::Local(dir) => Self::local(dir, secret, base),
            #[cfg(feature = "s3")]
            crate::config::ObjectStoreConfig::S3(location) => {
                Self::s3(location, secret, base).await
            }
            #[cfg(not(feature = "s3"))]
            crate::config::ObjectStoreConfig::S3(location) => anyhow::bail!(
                "{} needs S3 support: build with `--features s3`",
                location.describe()
            ),
        }
    }

    /// Build something that embeds public URLs to objects (a webhook
    /// payload, an API view): `render` gets a function from object key to a
    /// URL valid for an hour from `now_unix`.
    ///
    /// Presigning an S3 URL may need credentials fetched over the network,
    /// so it is async, while the views are plain functions: with S3, `render`
    /// runs once to learn the keys it needs, the keys are presigned, and it
    /// runs again with the URLs. `render` must therefore ask for the same
    /// keys each time (it is a pure function of its data everywhere here).
    pub async fn with_urls<T>(
        &self,
        now_unix: i64,
        render: impl Fn(&dyn Fn(&str) -> String) -> T,
    ) -> anyhow::Result<T> {
        #[cfg(feature = "s3")]
        if let Some(presigner) = &self.presigner {
            let wanted = std::cell::RefCell::new(Vec::new());
            render(&|key| {
                wanted.borrow_mut().push(key.to_owned());
                String::new()
            });
            let mut urls = std::collections::HashMap::new();
            for key in wanted.into_inner() {
                if let std::collections::hash_map::Entry::Vacant(slot) = urls.entry(key) {
                    let url = presigner.presign(&object_path(slot.key())?).await?;
                    slot.insert(url);
                }
            }
            return Ok(render(&|key| urls.get(key).cloned().unwrap_or_default()));
        }
        Ok(render(&|key| self.file_url(key, now_unix)))
    }

    /// Upload a local file under `key`, streaming it in chunks.
    pub async fn put_file(&self, key: &str, file: &Path) -> anyhow::Result<u64> {
        let location = object_path(key)?;
        if let Some(size) = self.link_into_local_store(&location, file).await {
            return Ok(size);
        }
        let reader = tokio::fs::File::open(file)
            .await
            .with_context(|| format!("cannot open {}", file.display()))?;
        self.put_stream(key, reader, None)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))
    }

    /// Stream `reader` into the object `key`, in bounded chunks, refusing
    /// (and leaving nothing behind) once more than `limit` bytes arrive.
    pub async fn put_stream(
        &self,
        key: &str,
        mut reader: impl tokio::io::AsyncRead + Unpin,
        limit: Option<u64>,
    ) -> Result<u64, PutError> {
        let location = object_path(key).map_err(PutError::Store)?;
        // Remote stores hand files out directly: say what they are, so a
        // browser plays a video_url rather than downloading it.
        let mut options = object_store::PutMultipartOptions::default();
        if self.local_root.is_none()
            && let Some(content_type) = content_type(key)
        {
            options
                .attributes
                .insert(object_store::Attribute::ContentType, content_type.into());
        }
        let upload = self
            .store
            .put_multipart_opts(&location, options)
            .await
            .map_err(|e| PutError::Store(anyhow::Error::new(e).context("start upload")))?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, CHUNK);
        let mut buf = vec![0u8; 1024 * 1024];
        let mut total = 0u64;
        let copied: Result<(), PutError> = async {
            loop {
                let n = reader.read(&mut buf).await.map_err(PutError::Source)?;
                if n == 0 {
                    return Ok(());
                }
                total += n as u64;
                if let Some(limit) = limit
                    && total > limit
                {
                    return Err(PutError::TooLarge { limit });
                }
                writer
                    .wait_for_capacity(2)
                    .await
                    .map_err(|e| PutError::Store(anyhow::Error::new(e).context("upload chunk")))?;
                writer.write(&buf[..n]);
            }
        }
        .await;
        if let Err(e) = copied {
            // An S3 multipart upload left open keeps its parts (and their
            // cost) until aborted; a local one leaves a staging file.
            if let Err(abort) = writer.abort().await {
                tracing::warn!(error = %abort, key, "could not abort a failed upload");
            }
            return Err(e);
        }
        writer
            .finish()
            .await
            .map_err(|e| PutError::Store(anyhow::Error::new(e).context("finish upload")))?;
        Ok(total)
    }

    /// Remove an object; a missing one is not an error.
    pub async fn delete(&self, key: &str) -> anyhow::Result<()> {
        self.delete_location(&object_path(key)?).await
    }

    async fn delete_location(&self, location: &ObjectPath) -> anyhow::Result<()> {
        match self.store.delete(location).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e).context("delete object"),
        }
    }

    /// Move an object (a rename on a local store, copy and delete on S3);
    /// `false` when there is nothing at `from`.
    pub async fn rename(&self, from: &str, to: &str) -> anyhow::Result<bool> {
        match self
            .store
            .rename(&object_path(from)?, &object_path(to)?)
            .await
        {
            Ok(()) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(e).context("move object"),
        }
    }

    /// Remove every object under `prefix` (a directory of keys) but `keep`.
    pub async fn delete_prefix(&self, prefix: &str, keep: Option<&str>) -> anyhow::Result<()> {
        use futures_util::TryStreamExt;
        let prefix = object_path(prefix)?;
        let keep = keep.map(object_path).transpose()?;
        let keys: Vec<ObjectPath> = self
            .store
            .list(Some(&prefix))
            .map_ok(|meta| meta.location)
            .try_collect()
            .await
            .context("list objects")?;
        for key in keys.into_iter().filter(|k| Some(k) != keep.as_ref()) {
            self.delete_location(&key).await?;
        }
        Ok(())
    }

    /// Where a local store keeps `key` on disk (`None` with S3): ffprobe can
    /// read it in place.
    pub fn local_path(&self, key: &str) -> Option<std::path::PathBuf> {
        let root = self.local_root.as_ref()?;
        let location = object_path(key).ok()?;
        Some(
            location
                .parts()
                .fold(root.to_path_buf(), |p, part| p.join(part.as_ref())),
        )
    }

    /// Where and what to post to upload one file under `key` straight to an
    /// S3 bucket (a presigned POST policy); `None` with a local store, whose
    /// uploads go through Tessera's own upload URL.
    pub async fn presigned_post(
        &self,
        key: &str,
        max_bytes: u64,
        now: chrono::DateTime<chrono::Utc>,
        expires_unix: i64,
    ) -> Option<anyhow::Result<(String, Vec<(String, String)>)>> {
        #[cfg(feature = "s3")]
        if let Some(presigner) = &self.presigner {
            let location = match object_path(key) {
                Ok(location) => location,
                Err(e) => return Some(Err(e)),
            };
            return Some(
                presigner
                    .presign_post(
                        &location,
                        content_type(key).unwrap_or("video/mp4"),
                        max_bytes,
                        now,
                        expires_unix,
                    )
                    .await,
            );
        }
        let _ = (key, max_bytes, now, expires_unix);
        None
    }

    /// The public base URL of this Tessera (signed URLs start with it).
    pub fn base_url(&self) -> &url::Url {
        &self.base
    }

    /// The secret that signs file URLs and Tessera's upload policies.
    pub fn signing_secret(&self) -> &[u8] {
        &self.secret
    }

    /// With a local store on the same filesystem, a hard link stores the file
    /// without copying a byte; `None` means "fall back to streaming".
    async fn link_into_local_store(&self, location: &ObjectPath, file: &Path) -> Option<u64> {
        let dest = self.local_path(location.as_ref())?;
        tokio::fs::create_dir_all(dest.parent()?).await.ok()?;
        let _ = tokio::fs::remove_file(&dest).await;
        tokio::fs::hard_link(file, &dest).await.ok()?;
        tokio::fs::metadata(&dest).await.ok().map(|m| m.len())
    }

    /// Download `key` to a local file (a hard link with a local store on
    /// the same filesystem: ffmpeg only reads it).
    pub async fn fetch_to_file(&self, key: &str, file: &Path) -> anyhow::Result<()> {
        // Never write through an old link into the stored object.
        let _ = tokio::fs::remove_file(file).await;
        if let Some(stored) = self.local_path(key)
            && tokio::fs::hard_link(&stored, file).await.is_ok()
        {
            return Ok(());
        }
        let result = self
            .store
            .get(&object_path(key)?)
            .await
            .context("read object")?;
        let mut stream = result.into_stream();
        let mut out = tokio::fs::File::create(file)
            .await
            .with_context(|| format!("cannot create {}", file.display()))?;
        while let Some(chunk) = stream.next().await {
            out.write_all(&chunk.context("read object")?).await?;
        }
        out.flush().await?;
        Ok(())
    }

    /// Tessera's own `/files/…` URL to `key`, valid for an hour from
    /// `now_unix`, whatever the store (the dashboard's URLs).
    pub fn file_url(&self, key: &str, now_unix: i64) -> String {
        let expires = now_unix + URL_VALIDITY_SECS;
        let signature = signing::file_signature(&self.secret, key, expires);
        let mut url = self.base.clone();
        let encoded: Vec<String> = key.split('/').map(url_encode_segment).collect();
        let base_path = url.path().trim_end_matches('/').to_owned();
        url.set_path(&format!("{base_path}/files/{}", encoded.join("/")));
        url.query_pairs_mut()
            .clear()
            .append_pair("expires", &expires.to_string())
            .append_pair("signature", &signature);
        url.into()
    }

    /// Whether a `/files` request carries a valid, unexpired signature.
    pub fn verify(&self, key: &str, expires: i64, signature: &str, now_unix: i64) -> bool {
        signing::verify_file_signature(&self.secret, key, expires, signature, now_unix)
    }

    /// Size of an object, or `None` when it does not exist.
    pub async fn size(&self, key: &str) -> anyhow::Result<Option<u64>> {
        match self.store.head(&object_path(key)?).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e).context("stat object"),
        }
    }

    /// Stream bytes `start..end_exclusive` of an object of size `total`.
    pub async fn read_range(
        &self,
        key: &str,
        total: u64,
        start: u64,
        end_exclusive: u64,
    ) -> anyhow::Result<ObjectRange> {
        let options = GetOptions {
            range: (total > 0).then_some(GetRange::Bounded(start..end_exclusive)),
            ..GetOptions::default()
        };
        let result = self
            .store
            .get_opts(&object_path(key)?, options)
            .await
            .context("read object")?;
        Ok(ObjectRange {
            total,
            start,
            end_exclusive,
            body: result.into_stream(),
        })
    }
}

/// The media type of an object, from its key's extension.
fn content_type(key: &str) -> Option<&'static str> {
    let extension = key.rsplit_once('.')?.1.to_ascii_lowercase();
    Some(match extension.as_str() {
        "mp4" | "m4v" => "video/mp4",
        "mov" => "video/quicktime",
        "webm" => "video/webm",
        "mkv" => "video/x-matroska",
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        _ => return None,
    })
}

fn object_path(key: &str) -> anyhow::Result<ObjectPath> {
    ObjectPath::parse(key).with_context(|| format!("invalid object key {key:?}"))
}

pub(crate) fn url_encode_segment(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn objects(dir: &Path) -> Objects {
        Objects::local(
            dir,
            b"secret",
            url::Url::parse("http://127.0.0.1:7700").unwrap(),
        )
        .unwrap()
    }

    #[tokio::test]
    async fn a_file_round_trips_and_its_signed_url_verifies() {
        let dir = std::env::temp_dir().join(format!("tessera-objects-{}", uuid::Uuid::new_v4()));
        let objects = objects(&dir);
        let src = dir.join("src.bin");
        std::fs::write(&src, vec![7u8; 3 * 1024 * 1024 + 5]).unwrap();
        assert_eq!(
            objects.put_file("runs/a/in.mp4", &src).await.unwrap(),
            3 * 1024 * 1024 + 5
        );
        assert_eq!(
            objects.size("runs/a/in.mp4").await.unwrap(),
            Some(3 * 1024 * 1024 + 5)
        );
        assert_eq!(objects.size("runs/a/missing").await.unwrap(), None);

        let url = url::Url::parse(&objects.file_url("runs/a/in.mp4", 1000)).unwrap();
        assert_eq!(url.path(), "/files/runs/a/in.mp4");
        let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
        assert_eq!(q["expires"], "4600");
        assert!(objects.verify("runs/a/in.mp4", 4600, &q["signature"], 1000));
        assert!(!objects.verify("runs/a/other.mp4", 4600, &q["signature"], 1000));
        assert!(!objects.verify("runs/a/in.mp4", 4600, &q["signature"], 4601));

        let back = dir.join("back.bin");
        objects.fetch_to_file("runs/a/in.mp4", &back).await.unwrap();
        assert_eq!(std::fs::read(&back).unwrap(), std::fs::read(&src).unwrap());
        std::fs::remove_dir_all(&dir).ok();
    }
}
