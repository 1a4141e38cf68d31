//! Build the application from a [`Config`] and run its roles: the HTTP API,
//! the run engine (worker), the webhook dispatcher and the trigger roles
//! (scheduler, YouTube poller). Every long-running task
//! takes the one shutdown token; [`RunningApp::shutdown`] stops them all.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use tokio::sync::{Notify, broadcast};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::api::{self, AppState};
use crate::config::{Config, DatabaseUrl};
use crate::delivery::Dispatcher;
use crate::domain::ids::DeliveryId;
use crate::domain::signing::{generate_api_key, generate_secret, hash_api_key};
use crate::engine::Engine;
use crate::media::{Media, MediaConfig};
use crate::net::{NetConfig, parse_dns_overrides};
use crate::objects::Objects;
use crate::store::postgres::PostgresStore;
use crate::store::sqlite::SqliteStore;
use crate::store::{DynStore, NewApiKey};

/// In-process nudges so new work starts at once instead of at the next poll.
/// They are hints: the database stays the source of truth, and pollers find
/// the same work (also work created by other nodes) a little later.
#[derive(Clone)]
pub struct Wakeups {
    /// A run was queued.
    pub runs: Arc<Notify>,
    /// A delivery became due (new event, manual resend).
    pub deliveries: Arc<Notify>,
    /// An attempt was recorded for this delivery.
    pub attempts: broadcast::Sender<DeliveryId>,
}

impl Wakeups {
    pub fn new() -> Self {
        Wakeups {
            runs: Arc::new(Notify::new()),
            deliveries: Arc::new(Notify::new()),
            attempts: broadcast::channel(1024).0,
        }
    }
}

impl Default for Wakeups {
    fn default() -> Self {
        Self::new()
    }
}

/// What the roles share: built once in [`start`], cloned into each role.
#[derive(Clone)]
pub struct Services {
    pub store: DynStore,
    pub objects: Objects,
    pub config: Arc<Config>,
    pub net: Arc<NetConfig>,
    /// This process's name in lease columns.
    pub owner: String,
    pub wake: Wakeups,
    pub metrics: Arc<crate::metrics::Metrics>,
}

/// A started application.
pub struct RunningApp {
    /// The address the HTTP server is bound to (useful with port 0).
    pub addr: SocketAddr,
    /// The base URL used in signed file links.
    pub public_url: url::Url,
    pub store: DynStore,
    shutdown: CancellationToken,
    tasks: JoinSet<()>,
    /// How long shutdown waits for in-flight work: an attempt's deadline plus a margin.
    grace: std::time::Duration,
}

impl RunningApp {
    /// Stop taking work, let in-flight work finish or release it, and wait
    /// — for at most the grace period, after which lingering connections
    /// (a slow download, an idle keep-alive client) are cut.
    pub async fn shutdown(mut self) {
        self.shutdown.cancel();
        let drained = tokio::time::timeout(self.grace, async {
            while self.tasks.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!("shutdown grace period over; closing what is left");
            self.tasks.abort_all();
            while self.tasks.join_next().await.is_some() {}
        }
    }

    /// Wait until the app stops on its own (it does not, unless a task panics)
    /// or `signal` fires, then shut down.
    pub async fn run_until(mut self, signal: impl std::future::Future<Output = ()>) {
        tokio::select! {
            _ = signal => {}
            _ = self.tasks.join_next() => tracing::error!("a role stopped unexpectedly; shutting down"),
        }
        self.shutdown().await;
    }
}

/// Open the configured store and apply migrations.
pub async fn open_store(config: &Config) -> anyhow::Result<DynStore> {
    let store: DynStore = match &config.database {
        DatabaseUrl::Sqlite(path) => Arc::new(SqliteStore::open(path)?),
        DatabaseUrl::Postgres(url) => {
            let url = url.clone();
            // Connecting blocks; keep it off the async workers.
            let store = tokio::task::spawn_blocking(move || PostgresStore::connect(&url)).await??;
            Arc::new(store)
        }
    };
    store.migrate().await.context("applying migrations")?;
    Ok(store)
}

/// Start every role of Tessera in this process.
pub async fn start(config: Config) -> anyhow::Result<RunningApp> {
    let config = Arc::new(config);
    let roles = config.roles;
    let store = open_store(&config).await?;
    let (database, objects_at) = (
        config.database_description(),
        config.object_store_description(),
    );

    let owner = node_identity();
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    let public_url = match &config.public_url {
        Some(url) => url.clone(),
        None => url::Url::parse(&format!("http://{addr}/"))?,
    };
    let file_secret = store
        .setting_or_init("file_signing_secret", &generate_secret(""))
        .await?;
    let objects = Objects::open(
        &config.object_store,
        file_secret.as_bytes(),
        public_url.clone(),
    )
    .await?;
    // Only once everything the node needs has opened: a key printed by a
    // start that then fails is easy to miss, and the next start prints none.
    if roles.api {
        ensure_first_key(&store, &config).await?;
    }
    let net = Arc::new(NetConfig {
        policy: config.address_policy.clone(),
        dns_overrides: parse_dns_overrides(&config.dns_overrides)
            .map_err(|e| anyhow::anyhow!("invalid TESSERA_DNS_OVERRIDES: {e}"))?,
    });
    let media = Media::new(MediaConfig {
        ffmpeg: config.ffmpeg_path.clone(),
        ffprobe: config.ffprobe_path.clone(),
        jobs: config.ffmpeg_jobs,
        max_media_seconds: config.max_media_seconds,
        job_timeout: Some(config.ffmpeg_timeout),
    });
    if let Err(e) = media.check_available().await {
        tracing::warn!(error = %e, "ffmpeg/ffprobe not usable: runs will fail until they are installed");
    }
    tracing::info!(policy = %config.address_policy.describe(), "outbound address policy");

    if roles.worker {
        crate::engine::recover_local(&store, &config.data_dir, &owner).await;
    }
    let wake = Wakeups::new();
    let metrics = Arc::new(crate::metrics::Metrics::default());
    let shutdown = CancellationToken::new();
    let mut tasks = JoinSet::new();

    let state = AppState {
        store: store.clone(),
        objects: objects.clone(),
        config: config.clone(),
        net: net.clone(),
        wake: wake.clone(),
        media: media.clone(),
        metrics: metrics.clone(),
        upload_slots: Arc::new(tokio::sync::Semaphore::new(config.upload_concurrency)),
    };
    let router = if roles.api {
        api::router(state)
    } else {
        api::operations_router(state)
    };
    let http_shutdown = shutdown.clone();
    tasks.spawn(async move {
        let served = axum::serve(listener, router)
            .with_graceful_shutdown(async move { http_shutdown.cancelled().await })
            .await;
        if let Err(e) = served {
            tracing::error!(error = %e, "HTTP server failed");
        }
    });

    let services_grace = config.webhook_timeout + std::time::Duration::from_secs(5);
    let services = Services {
        store: store.clone(),
        objects,
        config,
        net,
        owner,
        wake,
        metrics,
    };
    if roles.worker {
        // Work queued on other nodes wakes this one's workers at once.
        let (runs, deliveries) = (services.wake.runs.clone(), services.wake.deliveries.clone());
        store.listen(
            Arc::new(move |work| match work {
                crate::store::Work::Runs => runs.notify_one(),
                crate::store::Work::Deliveries => deliveries.notify_one(),
            }),
            shutdown.clone(),
        );
        tasks.spawn(Engine::new(&services, media).run(shutdown.clone()));
        tasks.spawn(Dispatcher::new(&services).run(shutdown.clone()));
        tasks.spawn(crate::engine::uploads::sweep_abandoned(
            services.clone(),
            shutdown.clone(),
        ));
    }
    if roles.scheduler {
        tasks.spawn(crate::triggers::scheduler::Scheduler::new(&services).run(shutdown.clone()));
        tasks.spawn(crate::triggers::youtube::Poller::new(&services).run(shutdown.clone()));
    }

    tracing::info!(
        %addr,
        %public_url,
        %roles,
        database = %database,
        objects = %objects_at,
        "Tessera is listening"
    );
    Ok(RunningApp {
        addr,
        public_url,
        store,
        shutdown,
        tasks,
        grace: services_grace,
    })
}

/// On a fresh database, create the first API key: the bootstrap key when one
/// is configured, otherwise a new one printed once on stdout (never logged).
async fn ensure_first_key(store: &DynStore, config: &Config) -> anyhow::Result<()> {
    if store.count_api_keys().await? > 0 {
        return Ok(());
    }
    let now = chrono::Utc::now().timestamp_millis();
    let user_id = store.default_user(now).await?;
    let (key, printed) = match &config.bootstrap_api_key {
        Some(secret) => (secret.0.clone(), false),
        None => (generate_api_key(), true),
    };
    let created = store
        .create_api_key(NewApiKey {
            user_id,
            name: "first key".into(),
            key_hash: hash_api_key(&key),
            created_at: now,
        })
        .await;
    match created {
        Ok(_) => {}
        // Several API nodes starting on a fresh database with the same
        // bootstrap key: another one created it first.
        Err(crate::store::StoreError::Conflict(_)) => return Ok(()),
        Err(e) => return Err(e.into()),
    }
    if printed {
        println!("\nYour API key (shown once; keep it safe):\n\n    {key}\n");
    }
    Ok(())
}

/// A name for this process in lease columns: host, pid and a random suffix,
/// so a restarted process never mistakes an old lease for its own.
fn node_identity() -> String {
    let host = crate::engine::host_name();
    let suffix = &uuid::Uuid::new_v4().simple().to_string()[..8];
    format!("{host}-{}-{suffix}", std::process::id())
}
