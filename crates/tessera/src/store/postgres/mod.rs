//! The PostgreSQL backend, for several nodes sharing one database. The
//! statements are the SQLite backend's, in PostgreSQL's dialect where the
//! two differ; claims lock the rows they take with `FOR UPDATE SKIP LOCKED`,
//! so nodes claiming at once never take the same run, delivery or channel
//! and never wait for each other.
//!
//! Calls run on Tokio's blocking pool over a small pool of synchronous
//! connections (`conn.rs`). Migrations take an advisory lock, so nodes
//! starting together apply them once.

mod conn;

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use ::postgres::fallible_iterator::FallibleIterator as _;
use anyhow::Context;
use conn::PgConn;

use super::sql::{Backend, Db, SqlContext, SqlStore};
use super::{StoreError, StoreResult, Work, WorkListener};

/// Connections per node.
const POOL_SIZE: usize = 8;
/// Any constant works (this one spells "tessera"); every node uses the same.
const MIGRATION_LOCK: i64 = 0x0074_6573_7365_7261;

/// The PostgreSQL store.
pub type PostgresStore = SqlStore<Postgres>;

pub struct Postgres {
    config: ::postgres::Config,
    pool: Arc<Pool>,
}

struct Pool {
    idle: Mutex<(Vec<PgConn>, usize)>,
    returned: Condvar,
}

impl PostgresStore {
    /// Connects (one connection now, to fail early; more on demand). Does not migrate.
    pub fn connect(url: &str) -> anyhow::Result<Self> {
        let config: ::postgres::Config = url.parse().context("the PostgreSQL URL is not valid")?;
        let mut config = config;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        config.application_name("tessera");
        let first = open(&config)?;
        Ok(SqlStore(Postgres {
            config,
            pool: Arc::new(Pool {
                idle: Mutex::new((vec![first], 1)),
                returned: Condvar::new(),
            }),
        }))
    }
}

impl Postgres {
    async fn with_conn<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&PgConn) -> StoreResult<T> + Send + 'static,
    {
        let (pool, config) = (self.pool.clone(), self.config.clone());
        blocking(move || {
            let conn = pool.take(&config)?;
            let result = f(&conn);
            pool.give_back(conn);
            result
        })
        .await
    }
}

impl Backend for Postgres {
    type Conn = PgConn;

    /// Run `f` in one transaction on the blocking pool.
    async fn write<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&PgConn) -> StoreResult<T> + Send + 'static,
    {
        self.with_conn(move |conn| {
            conn.batch("BEGIN").sql("begin")?;
            match f(conn) {
                Ok(value) => {
                    conn.batch("COMMIT").sql("commit")?;
                    Ok(value)
                }
                Err(e) => {
                    let _ = conn.batch("ROLLBACK");
                    Err(e)
                }
            }
        })
        .await
    }

    /// Run `f` outside a transaction (each statement sees committed data).
    async fn read<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&PgConn) -> StoreResult<T> + Send + 'static,
    {
        self.with_conn(f).await
    }

    fn lock_migrations(conn: &PgConn) -> StoreResult<()> {
        conn.execute("SELECT pg_advisory_xact_lock(?1)", (MIGRATION_LOCK,))
            .sql("take the migration lock")
            .map(drop)
    }

    fn apply(conn: &PgConn, script: &str) -> StoreResult<()> {
        conn.batch(script).sql("apply migration")
    }

    /// A connection of its own on a thread of its own, `LISTEN`ing on every
    /// [`Work`] channel; reconnects with backoff. After each (re)connect it
    /// reports all work, since notifications sent meanwhile are lost.
    fn listen(&self, on_work: WorkListener, stop: tokio_util::sync::CancellationToken) {
        let config = self.config.clone();
        let spawned = std::thread::Builder::new()
            .name("tessera-listen".into())
            .spawn(move || listen_loop(&config, &on_work, &stop));
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "cannot start the PostgreSQL listener; relying on polling");
        }
    }
}

fn listen_loop(
    config: &::postgres::Config,
    on_work: &WorkListener,
    stop: &tokio_util::sync::CancellationToken,
) {
    const CHECK_STOP: Duration = Duration::from_millis(250);
    let mut backoff = Duration::from_millis(100);
    while !stop.is_cancelled() {
        let listening = config.connect(::postgres::NoTls).and_then(|mut client| {
            let channels: Vec<String> = Work::ALL
                .iter()
                .map(|w| format!("LISTEN {};", w.channel()))
                .collect();
            client.batch_execute(&channels.concat())?;
            Ok(client)
        });
        let mut client = match listening {
            Ok(client) => client,
            Err(e) => {
                tracing::warn!(error = %e, "PostgreSQL listener cannot connect; retrying");
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        backoff = Duration::from_millis(100);
        Work::ALL.iter().for_each(|w| on_work(*w));
        while !stop.is_cancelled() {
            // A fresh iterator each time: one whose timeout has fired keeps
            // answering `None` at once.
            match client.notifications().timeout_iter(CHECK_STOP).next() {
                Ok(Some(n)) => {
                    if let Some(work) = Work::ALL.into_iter().find(|w| w.channel() == n.channel()) {
                        on_work(work);
                    }
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "PostgreSQL listener lost its connection");
                    break;
                }
            }
        }
    }
}

impl Pool {
    /// An idle connection, a new one while under [`POOL_SIZE`], or the next
    /// one returned. A connection the server closed is replaced.
    fn take(&self, config: &::postgres::Config) -> StoreResult<PgConn> {
        let mut guard = self.idle.lock().map_err(|_| poisoned())?;
        loop {
            if let Some(conn) = guard.0.pop() {
                if !conn.is_closed() {
                    return Ok(conn);
                }
                guard.1 -= 1;
                continue;
            }
            if guard.1 < POOL_SIZE {
                guard.1 += 1;
                drop(guard);
                return open(config).map_err(|e| {
                    if let Ok(mut g) = self.idle.lock() {
                        g.1 -= 1;
                    }
                    StoreError::Internal(e)
                });
            }
            guard = self.returned.wait(guard).map_err(|_| poisoned())?;
        }
    }

    fn give_back(&self, conn: PgConn) {
        if let Ok(mut guard) = self.idle.lock() {
            if conn.is_closed() {
                guard.1 -= 1;
            } else {
                guard.0.push(conn);
            }
        }
        self.returned.notify_one();
    }
}

impl Drop for Pool {
    /// A synchronous client closes its connection by blocking on its own
    /// runtime, which panics inside an async context: close them on a plain
    /// thread instead.
    fn drop(&mut self) {
        let conns = match self.idle.get_mut() {
            Ok((conns, _)) => std::mem::take(conns),
            Err(_) => return,
        };
        if !conns.is_empty() {
            std::thread::spawn(move || drop(conns));
        }
    }
}

fn poisoned() -> StoreError {
    StoreError::Internal(anyhow::anyhow!("connection pool lock poisoned"))
}

fn open(config: &::postgres::Config) -> anyhow::Result<PgConn> {
    let client = config
        .connect(::postgres::NoTls)
        .context("cannot connect to PostgreSQL")?;
    Ok(PgConn::new(client))
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> StoreResult<T> + Send + 'static,
) -> StoreResult<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StoreError::Internal(anyhow::anyhow!("store task failed: {e}")))?
}

/// The URL of a schema of its own in `url`'s database: connections use it as
/// their `search_path` (tests give every store a fresh schema this way).
pub fn url_with_schema(url: &str, schema: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}options=-c%20search_path%3D{schema}")
}

/// Creates `schema` in `url`'s database (for tests and throwaway setups).
pub fn create_schema(url: &str, schema: &str) -> anyhow::Result<()> {
    anyhow::ensure!(
        schema
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_'),
        "schema names are letters, digits and underscores"
    );
    let config: ::postgres::Config = url.parse()?;
    let conn = open(&config)?;
    conn.batch(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
        .map_err(anyhow::Error::new)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::store::{DynStore, Store};

    /// `TESSERA_TEST_DATABASE_URL`, or `None` (the PostgreSQL tests are
    /// skipped) unless `TESSERA_REQUIRE_POSTGRES` says they must run.
    pub fn test_url() -> Option<String> {
        let url = std::env::var("TESSERA_TEST_DATABASE_URL").ok();
        if url.is_none() && std::env::var_os("TESSERA_REQUIRE_POSTGRES").is_some() {
            panic!("TESSERA_REQUIRE_POSTGRES is set but TESSERA_TEST_DATABASE_URL is not");
        }
        url
    }

    /// A migrated store on a fresh schema, or `None` without a test database.
    pub async fn fresh() -> Option<DynStore> {
        let url = test_url()?;
        tokio::task::spawn_blocking(move || {
            let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
            create_schema(&url, &schema).unwrap();
            PostgresStore::connect(&url_with_schema(&url, &schema)).unwrap()
        })
        .await
        .map(|store| async move {
            store.migrate().await.unwrap();
            Some(Arc::new(store) as DynStore)
        })
        .unwrap()
        .await
    }

    crate::store_conformance_tests!(optional fresh());

    #[tokio::test]
    async fn migrating_twice_is_harmless_and_leaves_the_store_ready() {
        let Some(store) = fresh().await else { return };
        store.migrate().await.unwrap();
        store.ready().await.unwrap();
    }
}
