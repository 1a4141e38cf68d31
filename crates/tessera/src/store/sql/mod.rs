//! What both SQL backends share: the statement code (one module per area,
//! generic over [`Db`]), the values that cross the boundary, and the one
//! [`Store`](super::Store) implementation over a [`Backend`].
//!
//! Statements are written once, with `?N` placeholders, in the SQL both
//! SQLite and PostgreSQL accept; the few places where the dialects differ
//! (JSON functions, row locks) ask [`Dialect`]. Parameters and columns are
//! [`Value`]s, which each backend converts to and from its own types.

pub mod accounts;
mod claim;
pub mod dashboard;
pub mod outbox;
pub mod runs;
mod store;
pub mod triggers;
pub mod uploads;
pub mod youtube;

use std::fmt;

pub use store::{Backend, SqlStore};

use super::{StoreError, StoreResult};

pub type Result<T> = std::result::Result<T, Error>;

/// A failed statement.
#[derive(Debug)]
pub enum Error {
    /// `query_row` found nothing (see [`OptionalExtension::optional`]).
    NoRows,
    /// The database refused; `unique` when a unique constraint did.
    Db {
        source: Box<dyn std::error::Error + Send + Sync>,
        unique: bool,
    },
    /// A column did not convert to the Rust type asked for.
    Type(String),
}

impl Error {
    pub fn is_unique_violation(&self) -> bool {
        matches!(self, Error::Db { unique: true, .. })
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NoRows => f.write_str("query returned no rows"),
            Error::Db { source, .. } => {
                // The PostgreSQL client says only "db error" and keeps what
                // the server said in its source.
                write!(f, "{source}")?;
                let mut inner = source.source();
                while let Some(e) = inner {
                    write!(f, ": {e}")?;
                    inner = e.source();
                }
                Ok(())
            }
            Error::Type(what) => f.write_str(what),
        }
    }
}

impl std::error::Error for Error {}

/// Where the two SQL dialects differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    /// A subquery of the strings in the JSON array parameter `param`.
    pub fn json_array_elements(self, param: &str) -> String {
        match self {
            Dialect::Sqlite => format!("SELECT value FROM json_each({param})"),
            Dialect::Postgres => format!("SELECT jsonb_array_elements_text({param}::text::jsonb)"),
        }
    }

    /// A subquery of the integer under key `key` in the JSON object parameter `param`.
    pub fn json_object_value(self, param: &str, key: &str) -> String {
        match self {
            Dialect::Sqlite => format!("SELECT value FROM json_each({param}) WHERE key = {key}"),
            Dialect::Postgres => format!(
                "SELECT value::bigint FROM jsonb_each_text({param}::text::jsonb) WHERE key = {key}"
            ),
        }
    }

    /// Locks the selected rows of `table` for this transaction, skipping rows
    /// another transaction holds (so concurrent claims never wait or
    /// overlap). SQLite needs none: its writer is one connection.
    pub fn skip_locked(self, table: &str) -> String {
        match self {
            Dialect::Sqlite => String::new(),
            Dialect::Postgres => format!("FOR UPDATE OF {table} SKIP LOCKED"),
        }
    }
}

/// Tells listening nodes about new work when the transaction commits
/// (PostgreSQL `NOTIFY`; nothing on SQLite, whose one process wakes its own
/// workers).
pub fn announce<C: Db>(tx: &C, work: crate::store::Work) -> StoreResult<()> {
    if C::DIALECT == Dialect::Postgres {
        tx.execute("SELECT pg_notify(?1, '')", (work.channel(),))
            .sql("announce work")?;
    }
    Ok(())
}

/// A connection the statement code runs on.
pub trait Db {
    const DIALECT: Dialect;

    /// Every row `sql` returns (statements are prepared once per connection).
    fn query_values(&self, sql: &str, params: Vec<Value>) -> Result<Vec<Row>>;
    /// The number of rows `sql` changed.
    fn execute_values(&self, sql: &str, params: Vec<Value>) -> Result<usize>;

    fn execute(&self, sql: &str, params: impl Params) -> Result<usize> {
        self.execute_values(sql, params.values())
    }

    fn query_row<T>(
        &self,
        sql: &str,
        params: impl Params,
        f: impl FnOnce(&Row) -> Result<T>,
    ) -> Result<T> {
        let rows = self.query_values(sql, params.values())?;
        rows.first().map_or(Err(Error::NoRows), f)
    }

    fn prepare_cached(&self, sql: &str) -> Result<Stmt<'_, Self>> {
        Ok(Stmt {
            conn: self,
            sql: sql.to_owned(),
        })
    }
}

/// A statement used several times (rusqlite's cached statements' shape).
pub struct Stmt<'c, C: ?Sized> {
    conn: &'c C,
    sql: String,
}

impl<C: Db + ?Sized> Stmt<'_, C> {
    pub fn query_map<T>(
        &mut self,
        params: impl Params,
        f: impl FnMut(&Row) -> Result<T>,
    ) -> Result<std::vec::IntoIter<Result<T>>> {
        let rows = self.conn.query_values(&self.sql, params.values())?;
        Ok(rows.iter().map(f).collect::<Vec<_>>().into_iter())
    }

    pub fn query_row<T>(
        &mut self,
        params: impl Params,
        f: impl FnOnce(&Row) -> Result<T>,
    ) -> Result<T> {
        let rows = self.conn.query_values(&self.sql, params.values())?;
        rows.first().map_or(Err(Error::NoRows), f)
    }

    pub fn execute(&mut self, params: impl Params) -> Result<usize> {
        self.conn.execute_values(&self.sql, params.values())
    }

    pub fn exists(&mut self, params: impl Params) -> Result<bool> {
        Ok(!self
            .conn
            .query_values(&self.sql, params.values())?
            .is_empty())
    }
}

/// One result row.
pub struct Row(pub Vec<Value>);

/// Column positions (as rusqlite's `RowIndex`, positions only).
pub trait RowIndex {
    fn position(self) -> usize;
}

impl RowIndex for usize {
    fn position(self) -> usize {
        self
    }
}

impl Row {
    pub fn get<I: RowIndex, T: FromValue>(&self, idx: I) -> Result<T> {
        let i = idx.position();
        let v = self
            .0
            .get(i)
            .cloned()
            .ok_or_else(|| Error::Type(format!("no column {i}")))?;
        T::from_value(v)
    }
}

/// Context for SQL errors, so a failure says which statement failed.
pub trait SqlContext<T> {
    fn sql(self, what: &'static str) -> StoreResult<T>;
}

impl<T> SqlContext<T> for Result<T> {
    fn sql(self, what: &'static str) -> StoreResult<T> {
        self.map_err(|e| StoreError::Internal(anyhow::Error::new(e).context(what)))
    }
}

pub fn parse_id<T: std::str::FromStr>(s: &str) -> StoreResult<T> {
    s.parse()
        .map_err(|_| StoreError::Internal(anyhow::anyhow!("corrupt id in database: {s:?}")))
}

pub fn from_json<T: serde::de::DeserializeOwned>(s: &str) -> StoreResult<T> {
    serde_json::from_str(s)
        .map_err(|e| StoreError::Internal(anyhow::Error::new(e).context("corrupt JSON column")))
}

pub fn to_json<T: serde::Serialize>(v: &T) -> StoreResult<String> {
    serde_json::to_string(v).map_err(|e| StoreError::Internal(e.into()))
}

pub trait OptionalExtension<T> {
    fn optional(self) -> Result<Option<T>>;
}

impl<T> OptionalExtension<T> for Result<T> {
    fn optional(self) -> Result<Option<T>> {
        match self {
            Ok(v) => Ok(Some(v)),
            Err(Error::NoRows) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// A parameter or column value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    Bool(bool),
}

/// Rust values a column converts into.
pub trait FromValue: Sized {
    fn from_value(v: Value) -> Result<Self>;
}

fn mismatch<T>(v: &Value, want: &str) -> Result<T> {
    Err(Error::Type(format!("expected {want}, found {v:?}")))
}

macro_rules! from_int {
    ($($t:ty),*) => {$(
        impl FromValue for $t {
            fn from_value(v: Value) -> Result<Self> {
                match v {
                    Value::Int(i) => <$t>::try_from(i).map_err(|_| Error::Type(format!("{i} out of range"))),
                    Value::Bool(b) => Ok(<$t>::from(b)),
                    other => mismatch(&other, stringify!($t)),
                }
            }
        }
    )*};
}
from_int!(i64, i32, u32, u64, u16, usize);

impl FromValue for bool {
    fn from_value(v: Value) -> Result<Self> {
        match v {
            Value::Bool(b) => Ok(b),
            Value::Int(i) => Ok(i != 0),
            other => mismatch(&other, "bool"),
        }
    }
}

impl FromValue for f64 {
    fn from_value(v: Value) -> Result<Self> {
        match v {
            Value::Real(r) => Ok(r),
            Value::Int(i) => Ok(i as f64),
            other => mismatch(&other, "f64"),
        }
    }
}

impl FromValue for String {
    fn from_value(v: Value) -> Result<Self> {
        match v {
            Value::Text(s) => Ok(s),
            other => mismatch(&other, "text"),
        }
    }
}

impl<T: FromValue> FromValue for Option<T> {
    fn from_value(v: Value) -> Result<Self> {
        match v {
            Value::Null => Ok(None),
            v => T::from_value(v).map(Some),
        }
    }
}

/// Rust values a parameter is made from.
pub trait ToValue {
    fn to_value(&self) -> Value;
}

macro_rules! to_int {
    ($($t:ty),*) => {$(
        impl ToValue for $t {
            fn to_value(&self) -> Value {
                Value::Int(i64::try_from(*self).unwrap_or(i64::MAX))
            }
        }
    )*};
}
to_int!(i64, i32, u32, u64, u16, usize);

impl ToValue for bool {
    fn to_value(&self) -> Value {
        Value::Bool(*self)
    }
}
impl ToValue for f64 {
    fn to_value(&self) -> Value {
        Value::Real(*self)
    }
}
impl ToValue for str {
    fn to_value(&self) -> Value {
        Value::Text(self.to_owned())
    }
}
impl ToValue for String {
    fn to_value(&self) -> Value {
        Value::Text(self.clone())
    }
}
impl<T: ToValue + ?Sized> ToValue for &T {
    fn to_value(&self) -> Value {
        (**self).to_value()
    }
}
impl<T: ToValue> ToValue for Option<T> {
    fn to_value(&self) -> Value {
        self.as_ref().map_or(Value::Null, ToValue::to_value)
    }
}

/// A statement's parameters: a tuple or an array of [`ToValue`]s.
pub trait Params {
    fn values(self) -> Vec<Value>;
}

impl Params for () {
    fn values(self) -> Vec<Value> {
        Vec::new()
    }
}

impl<T: ToValue, const N: usize> Params for [T; N] {
    fn values(self) -> Vec<Value> {
        self.iter().map(ToValue::to_value).collect()
    }
}

macro_rules! tuple_params {
    ($($name:ident)+) => {
        impl<$($name: ToValue),+> Params for ($($name,)+) {
            #[allow(non_snake_case)]
            fn values(self) -> Vec<Value> {
                let ($($name,)+) = self;
                vec![$($name.to_value()),+]
            }
        }
    };
}
tuple_params!(A);
tuple_params!(A B);
tuple_params!(A B C);
tuple_params!(A B C D);
tuple_params!(A B C D E);
tuple_params!(A B C D E F);
tuple_params!(A B C D E F G);
tuple_params!(A B C D E F G H);
tuple_params!(A B C D E F G H I);
tuple_params!(A B C D E F G H I J);
tuple_params!(A B C D E F G H I J K);
tuple_params!(A B C D E F G H I J K L);
tuple_params!(A B C D E F G H I J K L M);
tuple_params!(A B C D E F G H I J K L M N);
tuple_params!(A B C D E F G H I J K L M N O);
tuple_params!(A B C D E F G H I J K L M N O P);
tuple_params!(A B C D E F G H I J K L M N O P Q);
tuple_params!(A B C D E F G H I J K L M N O P Q R);
tuple_params!(A B C D E F G H I J K L M N O P Q R S);
tuple_params!(A B C D E F G H I J K L M N O P Q R S T);
tuple_params!(A B C D E F G H I J K L M N O P Q R S T U);
tuple_params!(A B C D E F G H I J K L M N O P Q R S T U V);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_convert_both_ways() {
        assert_eq!(u32::from_value(Value::Int(7)).unwrap(), 7);
        assert!(u32::from_value(Value::Int(-1)).is_err());
        assert!(bool::from_value(Value::Int(1)).unwrap());
        assert_eq!(Option::<String>::from_value(Value::Null).unwrap(), None);
        assert_eq!(
            (1u32, "a", Some(true), None::<i64>).values(),
            vec![
                Value::Int(1),
                Value::Text("a".into()),
                Value::Bool(true),
                Value::Null
            ]
        );
    }
}
