//! The S3-compatible backend: `object_store`'s S3 client under a key prefix,
//! and SigV4 presigned GET URLs for payloads and API responses.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use object_store::ObjectStore;
use object_store::aws::{AmazonS3, AmazonS3Builder, AmazonS3ConfigKey};
use object_store::path::Path as ObjectPath;
use object_store::prefix::PrefixStore;
use object_store::signer::{Method, Signer};

use super::URL_VALIDITY_SECS;
use crate::config::S3Location;

/// How long the start-up check may wait for the bucket to answer.
const PROBE_TIMEOUT: Duration = Duration::from_secs(30);

/// Presigns GET URLs to objects under the configured prefix.
pub struct Presigner {
    client: AmazonS3,
    prefix: ObjectPath,
}

impl Presigner {
    /// A URL that downloads `key` without credentials for the next hour.
    pub async fn presign(&self, key: &ObjectPath) -> anyhow::Result<String> {
        let full: ObjectPath = self.prefix.parts().chain(key.parts()).collect();
        let url = self
            .client
            .signed_url(
                Method::GET,
                &full,
                Duration::from_secs(URL_VALIDITY_SECS as u64),
            )
            .await
            .context("cannot presign an object URL")?;
        Ok(url.into())
    }
}

/// Open the bucket and check that it answers.
pub async fn open(location: &S3Location) -> anyhow::Result<(Arc<dyn ObjectStore>, Presigner)> {
    let client = build_client(location, None).context("invalid S3 settings")?;
    let signing_client = match &location.public_endpoint {
        Some(endpoint) => {
            build_client(location, Some(endpoint)).context("invalid S3 public endpoint")?
        }
        None => client.clone(),
    };
    let prefix = ObjectPath::from(location.prefix.as_str());
    let store = PrefixStore::new(client, prefix.clone());
    match tokio::time::timeout(PROBE_TIMEOUT, store.list_with_delimiter(None)).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => {
            // The client's errors nest the response several times over: say
            // what the store answered, once.
            anyhow::bail!("cannot list {}: {}", location.describe(), innermost(&e));
        }
        Err(_) => anyhow::bail!(
            "{} did not answer within {} s (check AWS_ENDPOINT_URL, the credentials \
             (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or an instance role) and the network)",
            location.describe(),
            PROBE_TIMEOUT.as_secs()
        ),
    }
    Ok((
        Arc::new(store),
        Presigner {
            client: signing_client,
            prefix,
        },
    ))
}

/// A client from the standard AWS environment, for the bucket, optionally
/// with another endpoint.
fn build_client(location: &S3Location, endpoint: Option<&str>) -> object_store::Result<AmazonS3> {
    // The S3 client's TLS uses the process-wide rustls provider: ring, as
    // everywhere else in Tessera. Installing it twice is harmless (the
    // first one stays).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut builder = AmazonS3Builder::from_env().with_bucket_name(&location.bucket);
    if let Some(endpoint) = endpoint {
        // AWS_ENDPOINT_URL_S3 would otherwise take precedence.
        builder = builder
            .with_endpoint(endpoint)
            .with_config(AmazonS3ConfigKey::S3Endpoint, endpoint);
    }
    // An explicit http:// endpoint (MinIO on a private network, a local test
    // server) is the operator's choice; don't also demand AWS_ALLOW_HTTP.
    let effective = builder
        .get_config_value(&AmazonS3ConfigKey::S3Endpoint)
        .or_else(|| builder.get_config_value(&AmazonS3ConfigKey::Endpoint));
    if effective.is_some_and(|e| e.starts_with("http://")) {
        builder = builder.with_allow_http(true);
    }
    builder.build()
}

/// The innermost cause of `e`, shortened to one readable line.
fn innermost(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(inner) = cause.source() {
        cause = inner;
    }
    let text = cause
        .to_string()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    match text.char_indices().nth(300) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}
