//! One typed configuration, assembled from flags, `TESSERA_*` environment
//! variables and an optional TOML file, in that order of precedence.
//!
//! Every option follows one naming rule: flag `--a-b` ↔ env `TESSERA_A_B` ↔
//! TOML key `a_b`. [`Layer`] is that list, written once: clap fills it from
//! flags and env, serde fills it from TOML, and [`Config::resolve`] merges the
//! two over the defaults. The README's option table mirrors the doc comments.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use serde::Deserialize;

use crate::domain::address::AddressPolicy;
use crate::domain::retry::RetryPolicy;

/// One layer of settings. `None` means "not set in this layer".
#[derive(clap::Args, Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Layer {
    /// Address the HTTP server binds (default 127.0.0.1:7700; port 0 picks a free port).
    #[arg(long, env = "TESSERA_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Base URL used in signed file URLs (default: the address actually bound).
    #[arg(long, env = "TESSERA_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Directory for the SQLite database, objects and temporary files (default ./data).
    #[arg(long, env = "TESSERA_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// What this node does: a comma-separated subset of `api` (the HTTP API
    /// and dashboard), `worker` (runs and webhook deliveries) and
    /// `scheduler` (cron schedules and YouTube polls). Default: all three.
    #[arg(long, env = "TESSERA_ROLES")]
    pub roles: Option<String>,
    /// Database URL (default sqlite://<data-dir>/tessera.db).
    #[arg(long, env = "TESSERA_DATABASE_URL")]
    pub database_url: Option<String>,
    /// Object store: a directory path, a file:// URL, or `s3://bucket/prefix`
    /// for an S3-compatible bucket configured by the standard AWS settings
    /// (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION,
    /// AWS_ENDPOINT_URL, …) (default <data-dir>/objects).
    #[arg(long, env = "TESSERA_OBJECT_STORE")]
    pub object_store: Option<String>,
    /// With S3: the endpoint that presigned URLs point at, when receivers
    /// reach the store at another address than Tessera does (default: the
    /// endpoint Tessera uses).
    #[arg(long, env = "TESSERA_S3_PUBLIC_ENDPOINT")]
    pub s3_public_endpoint: Option<String>,
    /// An `mk_…` key created on start when no key exists (automation, tests).
    #[arg(long, env = "TESSERA_BOOTSTRAP_API_KEY", hide_env_values = true)]
    pub bootstrap_api_key: Option<String>,
    /// `false` (default), `true`, or a comma-separated CIDR list of non-public
    /// addresses that webhooks and downloads may reach.
    #[arg(long, env = "TESSERA_ALLOW_PRIVATE_TARGETS")]
    pub allow_private_targets: Option<String>,
    /// Test hook: `host=ip,host2=ip` answers for the resolver; `*=ip` answers
    /// every other name (no DNS query is sent).
    #[arg(long, env = "TESSERA_DNS_OVERRIDES")]
    pub dns_overrides: Option<String>,
    /// Whole-attempt webhook deadline in milliseconds (default 30000).
    #[arg(long, env = "TESSERA_WEBHOOK_TIMEOUT_MS")]
    pub webhook_timeout_ms: Option<u64>,
    /// Retries after the first attempt (default 3).
    #[arg(long, env = "TESSERA_WEBHOOK_MAX_RETRIES")]
    pub webhook_max_retries: Option<u32>,
    /// First retry delay in milliseconds (default 30000).
    #[arg(long, env = "TESSERA_WEBHOOK_BACKOFF_BASE_MS")]
    pub webhook_backoff_base_ms: Option<u64>,
    /// Growth factor between retry delays (default 4).
    #[arg(long, env = "TESSERA_WEBHOOK_BACKOFF_FACTOR")]
    pub webhook_backoff_factor: Option<f64>,
    /// Longest `Retry-After` honoured, in seconds (default 3600).
    #[arg(long, env = "TESSERA_RETRY_AFTER_CAP_SECONDS")]
    pub retry_after_cap_seconds: Option<u64>,
    /// Deliveries in flight per scheme+host+port (default 8).
    #[arg(long, env = "TESSERA_DESTINATION_CONCURRENCY")]
    pub destination_concurrency: Option<usize>,
    /// Added to the webhook timeout to form the delivery lease (default 30000).
    #[arg(long, env = "TESSERA_DELIVERY_LEASE_MARGIN_MS")]
    pub delivery_lease_margin_ms: Option<u64>,
    /// Run lease, renewed while a run is alive (default 120).
    #[arg(long, env = "TESSERA_RUN_LEASE_SECONDS")]
    pub run_lease_seconds: Option<u64>,
    /// Hours a rotated signing key keeps signing beside the new one (default 24).
    #[arg(long, env = "TESSERA_SIGNING_KEY_GRACE_HOURS")]
    pub signing_key_grace_hours: Option<u64>,
    /// Hours a dashboard login lasts (default 12).
    #[arg(long, env = "TESSERA_DASHBOARD_SESSION_HOURS")]
    pub dashboard_session_hours: Option<u64>,
    /// Days finished delivery records are kept (default 30).
    #[arg(long, env = "TESSERA_RETENTION_DAYS")]
    pub retention_days: Option<u64>,
    /// How often idle workers look for due work, in milliseconds (default 1000).
    /// New work in this process wakes them at once; this bounds the delay for
    /// retries coming due and for work created by other nodes.
    #[arg(long, env = "TESSERA_POLL_INTERVAL_MS")]
    pub poll_interval_ms: Option<u64>,
    /// Concurrent ffmpeg jobs (default: number of CPU cores).
    #[arg(long, env = "TESSERA_FFMPEG_JOBS")]
    pub ffmpeg_jobs: Option<usize>,
    /// ffmpeg binary (default `ffmpeg` on PATH).
    #[arg(long, env = "TESSERA_FFMPEG_PATH")]
    pub ffmpeg_path: Option<PathBuf>,
    /// ffprobe binary (default `ffprobe` on PATH).
    #[arg(long, env = "TESSERA_FFPROBE_PATH")]
    pub ffprobe_path: Option<PathBuf>,
    /// yt-dlp binary for YouTube inputs (default `yt-dlp` on PATH).
    #[arg(long, env = "TESSERA_YTDLP_PATH")]
    pub ytdlp_path: Option<PathBuf>,
    /// Longest an ffmpeg job may run, in seconds (default 7200).
    #[arg(long, env = "TESSERA_FFMPEG_TIMEOUT_SECONDS")]
    pub ffmpeg_timeout_seconds: Option<u64>,
    /// Largest input download in bytes (default 5000000000).
    #[arg(long, env = "TESSERA_DOWNLOAD_MAX_BYTES")]
    pub download_max_bytes: Option<u64>,
    /// Deadline for one input download, in seconds (default 3600).
    #[arg(long, env = "TESSERA_DOWNLOAD_TIMEOUT_SECONDS")]
    pub download_timeout_seconds: Option<u64>,
    /// Longest input media accepted, in seconds (default 10800).
    #[arg(long, env = "TESSERA_MAX_MEDIA_SECONDS")]
    pub max_media_seconds: Option<u64>,
    /// Largest upload in bytes, enforced by the upload policy (default 5000000000).
    #[arg(long, env = "TESSERA_UPLOAD_MAX_BYTES")]
    pub upload_max_bytes: Option<u64>,
    /// Seconds an upload URL accepts its file (default 3600).
    #[arg(long, env = "TESSERA_UPLOAD_URL_SECONDS")]
    pub upload_url_seconds: Option<u64>,
    /// Hours an upload that was never finalized is kept after its upload URL
    /// expired; then it and its file are removed (default 24; fractions allowed).
    #[arg(long, env = "TESSERA_UPLOAD_RETENTION_HOURS")]
    pub upload_retention_hours: Option<f64>,
    /// Uploads one node receives at once; more wait for a 503 (default 64).
    #[arg(long, env = "TESSERA_UPLOAD_CONCURRENCY")]
    pub upload_concurrency: Option<u32>,
    /// Seconds between two polls of a watched YouTube channel's feed (default 900).
    #[arg(long, env = "TESSERA_YOUTUBE_POLL_SECONDS")]
    pub youtube_poll_seconds: Option<u64>,
    /// YouTube feed URL template; `{channel_id}` is replaced (default
    /// `https://www.youtube.com/feeds/videos.xml?channel_id={channel_id}`).
    #[arg(long, env = "TESSERA_YOUTUBE_FEED_URL")]
    pub youtube_feed_url: Option<String>,
    /// Channel page URL template used to resolve handles and channel URLs;
    /// `{handle_or_path}` is replaced by `@name`, `c/name`, `user/name`, …
    /// (default `https://www.youtube.com/{handle_or_path}`).
    #[arg(long, env = "TESSERA_YOUTUBE_CHANNEL_URL")]
    pub youtube_channel_url: Option<String>,
}

impl Layer {
    /// Fill every field unset here from `other`.
    fn or(self, other: Layer) -> Layer {
        macro_rules! merge {
            ($($f:ident),* $(,)?) => { Layer { $($f: self.$f.or(other.$f)),* } };
        }
        merge!(
            listen,
            public_url,
            data_dir,
            roles,
            database_url,
            object_store,
            s3_public_endpoint,
            bootstrap_api_key,
            allow_private_targets,
            dns_overrides,
            webhook_timeout_ms,
            webhook_max_retries,
            webhook_backoff_base_ms,
            webhook_backoff_factor,
            retry_after_cap_seconds,
            destination_concurrency,
            delivery_lease_margin_ms,
            run_lease_seconds,
            signing_key_grace_hours,
            dashboard_session_hours,
            retention_days,
            poll_interval_ms,
            ffmpeg_jobs,
            ffmpeg_path,
            ffprobe_path,
            ytdlp_path,
            ffmpeg_timeout_seconds,
            download_max_bytes,
            download_timeout_seconds,
            max_media_seconds,
            upload_max_bytes,
            upload_url_seconds,
            upload_retention_hours,
            upload_concurrency,
            youtube_poll_seconds,
            youtube_feed_url,
            youtube_channel_url,
        )
    }
}

/// A string that must never be printed: `Debug` shows a mask.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// The parts of Tessera a node runs. Every node serves `/healthz`,
/// `/readyz` and `/metrics`; only `api` nodes serve the API and dashboard.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Roles {
    pub api: bool,
    pub worker: bool,
    pub scheduler: bool,
}

impl Roles {
    pub const ALL: Roles = Roles {
        api: true,
        worker: true,
        scheduler: true,
    };

    pub fn parse(s: &str) -> anyhow::Result<Roles> {
        let mut roles = Roles {
            api: false,
            worker: false,
            scheduler: false,
        };
        for role in s.split(',').map(str::trim).filter(|r| !r.is_empty()) {
            match role {
                "api" => roles.api = true,
                "worker" => roles.worker = true,
                "scheduler" => roles.scheduler = true,
                other => bail!("unknown role {other:?}: roles are api, worker and scheduler"),
            }
        }
        if !(roles.api || roles.worker || roles.scheduler) {
            bail!("roles must name at least one of api, worker and scheduler");
        }
        Ok(roles)
    }
}

impl fmt::Display for Roles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = [
            (self.api, "api"),
            (self.worker, "worker"),
            (self.scheduler, "scheduler"),
        ]
        .into_iter()
        .filter_map(|(on, name)| on.then_some(name))
        .collect();
        f.write_str(&names.join(","))
    }
}

/// Where the database lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DatabaseUrl {
    Sqlite(PathBuf),
    /// A `postgres://` URL (it may hold a password: never print it whole).
    Postgres(String),
}

/// The resolved configuration every part of the app reads.
#[derive(Clone, Debug)]
pub struct Config {
    pub listen: SocketAddr,
    pub roles: Roles,
    pub public_url: Option<url::Url>,
    pub data_dir: PathBuf,
    pub database: DatabaseUrl,
    pub object_store: ObjectStoreConfig,
    pub bootstrap_api_key: Option<Secret>,
    pub address_policy: AddressPolicy,
    pub dns_overrides: String,
    pub webhook_timeout: Duration,
    pub retry: RetryPolicy,
    pub destination_concurrency: usize,
    pub delivery_lease_margin: Duration,
    pub run_lease: Duration,
    pub signing_key_grace: Duration,
    pub dashboard_session: Duration,
    pub retention: Duration,
    pub poll_interval: Duration,
    pub ffmpeg_jobs: usize,
    pub ffmpeg_path: PathBuf,
    pub ffprobe_path: PathBuf,
    pub ytdlp_path: PathBuf,
    pub ffmpeg_timeout: Duration,
    pub download_max_bytes: u64,
    pub download_timeout: Duration,
    pub max_media_seconds: u64,
    pub upload_max_bytes: u64,
    pub upload_url_validity: Duration,
    pub upload_retention: Duration,
    pub upload_concurrency: usize,
    pub youtube_poll_interval: Duration,
    /// Contains `{channel_id}`.
    pub youtube_feed_url: String,
    /// Contains `{handle_or_path}`.
    pub youtube_channel_url: String,
}

impl Config {
    /// Merge flags/env over the TOML file (if any) over the defaults, and
    /// validate every value once so the rest of the app can trust it.
    pub fn resolve(cli: Layer, config_file: Option<&Path>) -> anyhow::Result<Config> {
        let file = match config_file {
            Some(path) => read_toml(path)?,
            None => Layer::default(),
        };
        Self::from_layer(cli.or(file))
    }

    fn from_layer(l: Layer) -> anyhow::Result<Config> {
        let data_dir = l.data_dir.unwrap_or_else(|| PathBuf::from("./data"));
        let database = parse_database_url(l.database_url.as_deref(), &data_dir)?;
        let roles = Roles::parse(l.roles.as_deref().unwrap_or("api,worker,scheduler"))?;
        let object_store = parse_object_store(
            l.object_store.as_deref(),
            l.s3_public_endpoint.as_deref(),
            &data_dir,
        )?;
        let public_url = l
            .public_url
            .map(|u| parse_public_url(&u))
            .transpose()
            .context("invalid --public-url")?;
        if let Some(key) = &l.bootstrap_api_key
            && !crate::domain::ids::looks_like_api_key(key)
        {
            bail!(
                "TESSERA_BOOTSTRAP_API_KEY must look like mk_ followed by 20 to 128 letters or digits"
            );
        }
        let address_policy =
            AddressPolicy::parse(l.allow_private_targets.as_deref().unwrap_or("false"))
                .map_err(|e| anyhow::anyhow!("invalid TESSERA_ALLOW_PRIVATE_TARGETS: {e}"))?;
        let retry = RetryPolicy {
            max_retries: l.webhook_max_retries.unwrap_or(3),
            base: Duration::from_millis(l.webhook_backoff_base_ms.unwrap_or(30_000)),
            factor: l.webhook_backoff_factor.unwrap_or(4.0),
            jitter: 0.2,
            retry_after_cap: Duration::from_secs(l.retry_after_cap_seconds.unwrap_or(3600)),
        };
        if !(retry.factor.is_finite() && retry.factor >= 1.0) {
            bail!("webhook_backoff_factor must be a number ≥ 1");
        }
        let webhook_timeout = Duration::from_millis(l.webhook_timeout_ms.unwrap_or(30_000));
        if webhook_timeout.is_zero() {
            bail!("webhook_timeout_ms must be positive");
        }
        let youtube_feed_url = url_template(
            l.youtube_feed_url,
            DEFAULT_YOUTUBE_FEED_URL,
            "{channel_id}",
            "youtube_feed_url",
        )?;
        let youtube_channel_url = url_template(
            l.youtube_channel_url,
            DEFAULT_YOUTUBE_CHANNEL_URL,
            "{handle_or_path}",
            "youtube_channel_url",
        )?;
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Ok(Config {
            listen: l
                .listen
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 7700))),
            roles,
            public_url,
            database,
            object_store,
            bootstrap_api_key: l.bootstrap_api_key.map(Secret),
            address_policy,
            dns_overrides: l.dns_overrides.unwrap_or_default(),
            webhook_timeout,
            retry,
            destination_concurrency: l.destination_concurrency.unwrap_or(8).max(1),
            delivery_lease_margin: Duration::from_millis(
                l.delivery_lease_margin_ms.unwrap_or(30_000),
            ),
            run_lease: Duration::from_secs(l.run_lease_seconds.unwrap_or(120).max(1)),
            signing_key_grace: Duration::from_secs(3600 * l.signing_key_grace_hours.unwrap_or(24)),
            dashboard_session: Duration::from_secs(
                3600 * l.dashboard_session_hours.unwrap_or(12).max(1),
            ),
            retention: Duration::from_secs(86_400 * l.retention_days.unwrap_or(30).max(1)),
            poll_interval: Duration::from_millis(l.poll_interval_ms.unwrap_or(1000).max(10)),
            ffmpeg_jobs: l.ffmpeg_jobs.unwrap_or(cores).max(1),
            ffmpeg_path: l.ffmpeg_path.unwrap_or_else(|| PathBuf::from("ffmpeg")),
            ffprobe_path: l.ffprobe_path.unwrap_or_else(|| PathBuf::from("ffprobe")),
            ytdlp_path: l.ytdlp_path.unwrap_or_else(|| PathBuf::from("yt-dlp")),
            ffmpeg_timeout: Duration::from_secs(l.ffmpeg_timeout_seconds.unwrap_or(7200).max(1)),
            download_max_bytes: l.download_max_bytes.unwrap_or(5_000_000_000),
            download_timeout: Duration::from_secs(l.download_timeout_seconds.unwrap_or(3600)),
            max_media_seconds: l.max_media_seconds.unwrap_or(10_800),
            upload_max_bytes: l.upload_max_bytes.unwrap_or(5_000_000_000).max(1),
            upload_url_validity: Duration::from_secs(l.upload_url_seconds.unwrap_or(3600).max(1)),
            upload_retention: {
                let hours = l.upload_retention_hours.unwrap_or(24.0);
                anyhow::ensure!(
                    hours.is_finite() && hours > 0.0 && hours <= 24.0 * 3650.0,
                    "TESSERA_UPLOAD_RETENTION_HOURS must be a positive number of hours"
                );
                Duration::from_secs_f64(hours * 3600.0)
            },
            upload_concurrency: l.upload_concurrency.unwrap_or(64).max(1) as usize,
            youtube_poll_interval: Duration::from_secs(
                l.youtube_poll_seconds.unwrap_or(900).max(1),
            ),
            youtube_feed_url,
            youtube_channel_url,
            data_dir,
        })
    }

    /// Where the database is, for messages (never includes credentials).
    pub fn database_description(&self) -> String {
        match &self.database {
            DatabaseUrl::Sqlite(path) => path.display().to_string(),
            DatabaseUrl::Postgres(url) => redact_password(url),
        }
    }

    /// Where objects are, for messages.
    pub fn object_store_description(&self) -> String {
        match &self.object_store {
            ObjectStoreConfig::Local(dir) => dir.display().to_string(),
            ObjectStoreConfig::S3(location) => location.describe(),
        }
    }

    /// The lease a dispatcher takes on a delivery: longer than any attempt can last.
    pub fn delivery_lease(&self) -> Duration {
        self.webhook_timeout + self.delivery_lease_margin
    }
}

const DEFAULT_YOUTUBE_FEED_URL: &str =
    "https://www.youtube.com/feeds/videos.xml?channel_id={channel_id}";
const DEFAULT_YOUTUBE_CHANNEL_URL: &str = "https://www.youtube.com/{handle_or_path}";

/// A URL template: must contain `placeholder` and be an http(s) URL once
/// it is filled in.
fn url_template(
    raw: Option<String>,
    default: &str,
    placeholder: &str,
    name: &str,
) -> anyhow::Result<String> {
    let template = raw.unwrap_or_else(|| default.to_owned());
    if !template.contains(placeholder) {
        bail!("{name} must contain {placeholder}");
    }
    let sample = url::Url::parse(&template.replace(placeholder, "x"))
        .with_context(|| format!("invalid {name}"))?;
    if !matches!(sample.scheme(), "http" | "https") || sample.host().is_none() {
        bail!("{name} must be an absolute http(s) URL");
    }
    Ok(template)
}

fn read_toml(path: &Path) -> anyhow::Result<Layer> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config file {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("invalid config file {}", path.display()))
}

fn parse_database_url(raw: Option<&str>, data_dir: &Path) -> anyhow::Result<DatabaseUrl> {
    let Some(raw) = raw else {
        return Ok(DatabaseUrl::Sqlite(data_dir.join("tessera.db")));
    };
    if let Some(path) = raw.strip_prefix("sqlite://") {
        return Ok(DatabaseUrl::Sqlite(PathBuf::from(path)));
    }
    if raw.starts_with("postgres://") || raw.starts_with("postgresql://") {
        raw.parse::<postgres::Config>()
            .map_err(|e| anyhow::anyhow!("database_url is not a valid PostgreSQL URL: {e}"))?;
        return Ok(DatabaseUrl::Postgres(raw.to_owned()));
    }
    bail!("database_url must start with sqlite:// or postgres://")
}

/// `postgres://user:secret@host/db` → `postgres://user:•••@host/db`.
fn redact_password(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("•••"));
            parsed.to_string()
        }
        Ok(parsed) => parsed.to_string(),
        Err(_) => "postgres://…".into(),
    }
}

fn parse_object_store(
    raw: Option<&str>,
    public_endpoint: Option<&str>,
    data_dir: &Path,
) -> anyhow::Result<ObjectStoreConfig> {
    let store = match raw {
        None => ObjectStoreConfig::Local(data_dir.join("objects")),
        Some(s) if s.starts_with("s3://") => ObjectStoreConfig::S3(S3Location::parse(s)?),
        // Anything that looks like a URL but is not one we take (`s3:/x`,
        // `gs://x`, `s3:bucket`) is a mistake, not a directory name.
        Some(s) if !s.starts_with("file://") && looks_like_a_url(s) => bail!(
            "invalid --object-store {s:?}: use a directory, file:///path or s3://bucket/prefix"
        ),
        Some(s) => ObjectStoreConfig::Local(PathBuf::from(s.strip_prefix("file://").unwrap_or(s))),
    };
    match (&store, public_endpoint) {
        (_, None) => Ok(store),
        (ObjectStoreConfig::S3(location), Some(endpoint)) => {
            let url = url::Url::parse(endpoint)
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
                .with_context(|| {
                    format!("invalid --s3-public-endpoint {endpoint:?}: must be an http(s) URL")
                })?;
            Ok(ObjectStoreConfig::S3(S3Location {
                public_endpoint: Some(url.as_str().trim_end_matches('/').to_owned()),
                ..location.clone()
            }))
        }
        (ObjectStoreConfig::Local(_), Some(_)) => {
            bail!("--s3-public-endpoint is set but --object-store is not an s3:// URL")
        }
    }
}

/// Whether `s` starts with a URL scheme (`name:`).
fn looks_like_a_url(s: &str) -> bool {
    s.split_once(':').is_some_and(|(scheme, _)| {
        !scheme.is_empty()
            && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    })
}

/// Where objects live.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ObjectStoreConfig {
    /// A local directory (one node, or a directory every node shares).
    Local(PathBuf),
    /// An S3-compatible bucket.
    S3(S3Location),
}

/// A bucket and a key prefix (`s3://bucket/prefix`); credentials, region
/// and endpoint come from the standard AWS settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct S3Location {
    pub bucket: String,
    /// Without leading or trailing slashes; may be empty.
    pub prefix: String,
    /// The endpoint presigned URLs use, if not the one Tessera talks to.
    pub public_endpoint: Option<String>,
}

impl S3Location {
    fn parse(raw: &str) -> anyhow::Result<S3Location> {
        let rest = raw.strip_prefix("s3://").unwrap_or(raw);
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let valid_bucket = (3..=63).contains(&bucket.len())
            && bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
            && !bucket.starts_with(['-', '.'])
            && !bucket.ends_with(['-', '.']);
        if !valid_bucket {
            bail!(
                "invalid --object-store {raw:?}: {bucket:?} is not an S3 bucket name \
                 (3-63 lowercase letters, digits, '-' and '.')"
            );
        }
        let prefix = prefix.trim_matches('/');
        if prefix.contains("//") || prefix.contains('?') || prefix.contains('#') {
            bail!("invalid --object-store {raw:?}: the prefix must be a plain path");
        }
        Ok(S3Location {
            bucket: bucket.to_owned(),
            prefix: prefix.to_owned(),
            public_endpoint: None,
        })
    }

    /// `s3://bucket/prefix`, for messages.
    pub fn describe(&self) -> String {
        if self.prefix.is_empty() {
            format!("s3://{}", self.bucket)
        } else {
            format!("s3://{}/{}", self.bucket, self.prefix)
        }
    }
}

fn parse_public_url(raw: &str) -> anyhow::Result<url::Url> {
    let url = url::Url::parse(raw)?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        bail!("must be an absolute http(s) URL");
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_and_env_win_over_the_file_and_the_file_over_defaults() {
        let cli = Layer {
            webhook_timeout_ms: Some(500),
            ..Layer::default()
        };
        let file: Layer =
            toml::from_str("webhook_timeout_ms = 9000\nwebhook_max_retries = 7\n").unwrap();
        let config = Config::from_layer(cli.or(file)).unwrap();
        assert_eq!(config.webhook_timeout, Duration::from_millis(500));
        assert_eq!(config.retry.max_retries, 7);
        assert_eq!(config.retry.base, Duration::from_millis(30_000));
    }

    #[test]
    fn youtube_templates_need_their_placeholder() {
        let config = Config::from_layer(Layer::default()).unwrap();
        assert_eq!(config.youtube_poll_interval, Duration::from_secs(900));
        assert!(config.youtube_feed_url.contains("{channel_id}"));
        assert!(
            Config::from_layer(Layer {
                youtube_feed_url: Some("https://feeds.test/videos.xml".into()),
                ..Layer::default()
            })
            .is_err()
        );
        assert!(
            Config::from_layer(Layer {
                youtube_channel_url: Some("ftp://x/{handle_or_path}".into()),
                ..Layer::default()
            })
            .is_err()
        );
    }

    #[test]
    fn unknown_toml_keys_are_rejected() {
        assert!(toml::from_str::<Layer>("webhook_timeout = 1").is_err());
    }

    #[test]
    fn roles_default_to_all_and_refuse_unknown_or_empty_lists() {
        assert_eq!(Roles::parse("api,worker,scheduler").unwrap(), Roles::ALL);
        let worker = Roles::parse(" worker ").unwrap();
        assert!(worker.worker && !worker.api && !worker.scheduler);
        assert_eq!(worker.to_string(), "worker");
        assert!(Roles::parse("api,cook").is_err());
        assert!(Roles::parse(" , ").is_err());
        assert_eq!(
            Config::resolve(Layer::default(), None).unwrap().roles,
            Roles::ALL
        );
    }

    #[test]
    fn the_database_defaults_to_sqlite_in_the_data_dir() {
        let config = Config::from_layer(Layer {
            data_dir: Some("/tmp/x".into()),
            ..Layer::default()
        })
        .unwrap();
        assert_eq!(
            config.database,
            DatabaseUrl::Sqlite("/tmp/x/tessera.db".into())
        );
        assert_eq!(
            config.object_store,
            ObjectStoreConfig::Local(PathBuf::from("/tmp/x/objects"))
        );
    }

    #[test]
    fn object_stores_parse_as_directories_or_s3_buckets() {
        let parse = |raw: &str, public: Option<&str>| {
            parse_object_store(Some(raw), public, Path::new("/data"))
        };
        assert_eq!(
            parse("file:///srv/objects", None).unwrap(),
            ObjectStoreConfig::Local("/srv/objects".into())
        );
        assert_eq!(
            parse("s3://media-bucket/tessera/prod/", None).unwrap(),
            ObjectStoreConfig::S3(S3Location {
                bucket: "media-bucket".into(),
                prefix: "tessera/prod".into(),
                public_endpoint: None,
            })
        );
        let ObjectStoreConfig::S3(bare) =
            parse("s3://media.bucket", Some("https://cdn.example.com/")).unwrap()
        else {
            panic!("an S3 location")
        };
        assert_eq!(bare.prefix, "");
        assert_eq!(bare.describe(), "s3://media.bucket");
        assert_eq!(
            bare.public_endpoint.as_deref(),
            Some("https://cdn.example.com")
        );
        for bad in [
            "s3://",
            "s3://Upper",
            "s3://ab",
            "s3://-bucket",
            "s3://bucket_name/x",
            "s3://bucket/a//b",
            "gs://bucket/x",
            "s3:/bucket/x",
            "s3:bucket",
        ] {
            let e = parse(bad, None).unwrap_err().to_string();
            assert!(e.contains("--object-store"), "{bad}: {e}");
        }
        assert!(parse("/srv/objects", Some("https://cdn.example.com")).is_err());
        assert!(parse("s3://bucket", Some("ftp://x")).is_err());
    }

    #[test]
    fn secrets_are_masked_in_debug_output() {
        let config = Config::from_layer(Layer {
            bootstrap_api_key: Some("mk_abcdefghijklmnopqrstuvwxyz".into()),
            ..Layer::default()
        })
        .unwrap();
        assert!(!format!("{config:?}").contains("abcdefghijklmnop"));
    }
}
