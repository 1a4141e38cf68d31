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

/// Presigns GET URLs and POST upload policies for objects under the
/// configured prefix.
pub struct Presigner {
    client: AmazonS3,
    prefix: ObjectPath,
    region: String,
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

    /// A presigned S3 POST policy (SigV4) that lets a browser-style form
    /// upload put one object at `key`, at most `max_bytes`, until
    /// `expires_unix`: the bucket URL and the form fields, in order.
    pub async fn presign_post(
        &self,
        key: &ObjectPath,
        content_type: &str,
        max_bytes: u64,
        now: chrono::DateTime<chrono::Utc>,
        expires_unix: i64,
    ) -> anyhow::Result<(String, Vec<(String, String)>)> {
        let full: ObjectPath = self.prefix.parts().chain(key.parts()).collect();
        // The bucket's URL as clients see it (endpoint, public endpoint,
        // path or virtual-hosted style): a presigned URL of the object
        // without the object's path.
        let object_url = url::Url::parse(&self.presign(key).await?)?;
        let encoded_key: Vec<String> = full
            .parts()
            .map(|p| super::url_encode_segment(p.as_ref()))
            .collect();
        let path = object_url.path();
        let bucket_path = path
            .strip_suffix(&encoded_key.join("/"))
            .context("unexpected presigned URL shape")?;
        let mut bucket_url = object_url.clone();
        bucket_url.set_query(None);
        bucket_url.set_path(bucket_path);
        let credential = self
            .client
            .credentials()
            .get_credential()
            .await
            .context("cannot read S3 credentials")?;
        let fields = post_policy_fields(
            &PostPolicy {
                bucket: bucket_of(&bucket_url, bucket_path),
                key: full.as_ref(),
                content_type,
                max_bytes,
                region: &self.region,
                now,
                expires_unix,
            },
            &credential.key_id,
            &credential.secret_key,
            credential.token.as_deref(),
        );
        Ok((bucket_url.into(), fields))
    }
}

/// The bucket name as the policy's `bucket` condition needs it: the first
/// path segment (path style) or the first host label (virtual-hosted).
fn bucket_of(bucket_url: &url::Url, bucket_path: &str) -> String {
    let from_path = bucket_path.trim_matches('/');
    if !from_path.is_empty() {
        return from_path.to_owned();
    }
    bucket_url
        .host_str()
        .and_then(|h| h.split('.').next())
        .unwrap_or_default()
        .to_owned()
}

/// What one S3 POST policy allows.
pub struct PostPolicy<'a> {
    pub bucket: String,
    pub key: &'a str,
    /// The object's `Content-Type` (a form field the policy fixes).
    pub content_type: &'a str,
    pub max_bytes: u64,
    pub region: &'a str,
    pub now: chrono::DateTime<chrono::Utc>,
    pub expires_unix: i64,
}

/// The form fields of an S3 POST policy signed with SigV4 (AWS's "browser
/// based uploads using POST"): the policy document lists every field as a
/// condition, `x-amz-signature` signs its base64 with the derived key.
pub fn post_policy_fields(
    p: &PostPolicy<'_>,
    key_id: &str,
    secret_key: &str,
    token: Option<&str>,
) -> Vec<(String, String)> {
    use base64::Engine as _;
    let date = p.now.format("%Y%m%d").to_string();
    let amz_date = p.now.format("%Y%m%dT%H%M%SZ").to_string();
    let credential = format!("{key_id}/{date}/{}/s3/aws4_request", p.region);
    let expiration = chrono::DateTime::from_timestamp(p.expires_unix, 0)
        .unwrap_or(p.now)
        .format("%Y-%m-%dT%H:%M:%S.000Z")
        .to_string();
    let mut conditions = vec![
        serde_json::json!({"bucket": p.bucket}),
        serde_json::json!({"key": p.key}),
        serde_json::json!({"Content-Type": p.content_type}),
        serde_json::json!(["content-length-range", 0, p.max_bytes]),
        serde_json::json!({"x-amz-algorithm": "AWS4-HMAC-SHA256"}),
        serde_json::json!({"x-amz-credential": credential}),
        serde_json::json!({"x-amz-date": amz_date}),
    ];
    if let Some(token) = token {
        conditions.push(serde_json::json!({"x-amz-security-token": token}));
    }
    let document = serde_json::json!({"expiration": expiration, "conditions": conditions});
    let policy = base64::engine::general_purpose::STANDARD.encode(document.to_string());
    let mut signing_key = hmac(format!("AWS4{secret_key}").as_bytes(), date.as_bytes());
    for part in [p.region, "s3", "aws4_request"] {
        signing_key = hmac(&signing_key, part.as_bytes());
    }
    let signature = hex::encode(hmac(&signing_key, policy.as_bytes()));
    let mut fields = vec![
        ("key".to_owned(), p.key.to_owned()),
        ("Content-Type".to_owned(), p.content_type.to_owned()),
        ("x-amz-algorithm".to_owned(), "AWS4-HMAC-SHA256".to_owned()),
        ("x-amz-credential".to_owned(), credential),
        ("x-amz-date".to_owned(), amz_date),
    ];
    if let Some(token) = token {
        fields.push(("x-amz-security-token".to_owned(), token.to_owned()));
    }
    fields.push(("policy".to_owned(), policy));
    fields.push(("x-amz-signature".to_owned(), signature));
    fields
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    use hmac::Mac as _;
    let mut mac = <hmac::Hmac<sha2::Sha256> as hmac::Mac>::new_from_slice(key)
        .expect("HMAC accepts keys of any length");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// Open the bucket and check that it answers.
pub async fn open(location: &S3Location) -> anyhow::Result<(Arc<dyn ObjectStore>, Presigner)> {
    let client = build_client(location, None).context("invalid S3 settings")?;
    let region = AmazonS3Builder::from_env()
        .get_config_value(&AmazonS3ConfigKey::Region)
        .unwrap_or_else(|| "us-east-1".to_owned());
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
            region,
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
