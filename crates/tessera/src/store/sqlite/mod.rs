//! The SQLite backend: the embedded default. One writer connection (SQLite
//! serialises writers anyway, and one connection avoids `SQLITE_BUSY`) and a
//! few reader connections under WAL. Every call runs on Tokio's blocking pool.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::Context;
use rusqlite::types::{Value as SqliteValue, ValueRef};
use rusqlite::{Connection, OpenFlags};

use super::sql::{self, Backend, Db, Dialect, Row, SqlContext, SqlStore, Value};
use super::{StoreError, StoreResult};

const READERS: usize = 4;

/// The SQLite store.
pub type SqliteStore = SqlStore<Sqlite>;

pub struct Sqlite {
    writer: Arc<Mutex<Connection>>,
    readers: Arc<Vec<Mutex<Connection>>>,
    next_reader: AtomicUsize,
}

impl SqliteStore {
    /// Open (creating if needed) the database file. Does not migrate.
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let writer = open_connection(path, OpenFlags::default())?;
        let readers = (0..READERS)
            .map(|_| {
                open_connection(
                    path,
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )
                .map(Mutex::new)
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(SqlStore(Sqlite {
            writer: Arc::new(Mutex::new(writer)),
            readers: Arc::new(readers),
            next_reader: AtomicUsize::new(0),
        }))
    }
}

impl Backend for Sqlite {
    type Conn = Connection;

    /// One IMMEDIATE transaction on the writer, on the blocking pool.
    async fn write<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        let writer = self.writer.clone();
        blocking(move || {
            let mut conn = writer
                .lock()
                .map_err(|_| anyhow::anyhow!("writer lock poisoned"))?;
            let tx = conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .context("begin")?;
            let value = f(&tx)?;
            tx.commit().context("commit")?;
            Ok(value)
        })
        .await
    }

    /// A reader connection (WAL: it sees the last commit).
    async fn read<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        let readers = self.readers.clone();
        let i = self.next_reader.fetch_add(1, Ordering::Relaxed) % READERS;
        blocking(move || {
            let conn = readers[i]
                .lock()
                .map_err(|_| anyhow::anyhow!("reader lock poisoned"))?;
            f(&conn)
        })
        .await
    }

    fn lock_migrations(_: &Connection) -> StoreResult<()> {
        // The writer connection is the only writer: nothing to race.
        Ok(())
    }

    fn apply(conn: &Connection, script: &str) -> StoreResult<()> {
        conn.execute_batch(script)
            .map_err(db_error)
            .sql("apply migration")
    }
}

fn open_connection(path: &Path, flags: OpenFlags) -> anyhow::Result<Connection> {
    let conn = Connection::open_with_flags(path, flags)
        .with_context(|| format!("cannot open SQLite database {}", path.display()))?;
    // WAL keeps readers off the writer's back; NORMAL sync is durable against
    // process crashes (kill -9), which is the failure we promise to survive.
    conn.execute_batch(
        "PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;",
    )?;
    if !flags.contains(OpenFlags::SQLITE_OPEN_READ_ONLY) {
        conn.pragma_update(None, "journal_mode", "WAL")?;
    }
    // Plans never depend on bound values (the indexes choose them). Without
    // this, a statement whose plan the planner thinks a parameter might
    // change is compiled again each time that parameter changes: the
    // delivery claim, bound to the current time, was parsed anew on every
    // claim (7% of a draining server's CPU under perf).
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )?;
    Ok(conn)
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> StoreResult<T> + Send + 'static,
) -> StoreResult<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StoreError::Internal(anyhow::anyhow!("store task failed: {e}")))?
}

impl Db for Connection {
    const DIALECT: Dialect = Dialect::Sqlite;

    fn query_values(&self, sql: &str, params: Vec<Value>) -> sql::Result<Vec<Row>> {
        let mut stmt = self.prepare_cached(sql).map_err(db_error)?;
        let columns = stmt.column_count();
        let mut rows = stmt
            .query(rusqlite::params_from_iter(
                params.into_iter().map(to_sqlite),
            ))
            .map_err(db_error)?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(db_error)? {
            let values = (0..columns)
                .map(|i| row.get_ref(i).map(from_sqlite))
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(db_error)?;
            out.push(Row(values));
        }
        Ok(out)
    }

    fn execute_values(&self, sql: &str, params: Vec<Value>) -> sql::Result<usize> {
        self.prepare_cached(sql)
            .and_then(|mut stmt| {
                stmt.execute(rusqlite::params_from_iter(
                    params.into_iter().map(to_sqlite),
                ))
            })
            .map_err(db_error)
    }
}

fn to_sqlite(v: Value) -> SqliteValue {
    match v {
        Value::Null => SqliteValue::Null,
        Value::Int(i) => SqliteValue::Integer(i),
        Value::Bool(b) => SqliteValue::Integer(i64::from(b)),
        Value::Real(r) => SqliteValue::Real(r),
        Value::Text(s) => SqliteValue::Text(s),
    }
}

fn from_sqlite(v: ValueRef<'_>) -> Value {
    match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::Int(i),
        ValueRef::Real(r) => Value::Real(r),
        ValueRef::Text(t) | ValueRef::Blob(t) => {
            Value::Text(String::from_utf8_lossy(t).into_owned())
        }
    }
}

fn db_error(e: rusqlite::Error) -> sql::Error {
    let unique = matches!(
        &e,
        rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::ConstraintViolation
    );
    sql::Error::Db {
        source: Box::new(e),
        unique,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::store::{DynStore, Store};

    async fn fresh() -> DynStore {
        let dir = std::env::temp_dir().join(format!("tessera-store-{}", uuid::Uuid::new_v4()));
        let store = SqliteStore::open(&dir.join("t.db")).unwrap();
        store.migrate().await.unwrap();
        std::sync::Arc::new(store)
    }

    crate::store_conformance_tests!(fresh());

    #[tokio::test]
    async fn migrating_twice_is_harmless_and_leaves_the_store_ready() {
        let store = fresh().await;
        store.migrate().await.unwrap();
        store.ready().await.unwrap();
    }
}
