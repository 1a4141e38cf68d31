//! The synchronous `postgres` client as a [`Db`]: `?N` placeholders become
//! `$N`, statements are prepared once per connection, and [`Value`]s are
//! converted to and from whatever type the server chose for a placeholder or
//! column (integers bind to `int2`/`int4`/`int8`/`bool`, text to `text` or
//! `jsonb`).

use std::cell::RefCell;
use std::collections::HashMap;

use ::postgres::error::SqlState;
use ::postgres::types::{FromSql, IsNull, ToSql, Type, to_sql_checked};
use bytes::BufMut as _;

use crate::store::sql::{self, Db, Dialect, Row, Value};

type BoxError = Box<dyn std::error::Error + Sync + Send>;

impl ToSql for Value {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut bytes::BytesMut,
    ) -> std::result::Result<IsNull, BoxError> {
        let int = |i: i64, out: &mut bytes::BytesMut| -> std::result::Result<IsNull, BoxError> {
            match *ty {
                Type::INT2 => i16::try_from(i)?.to_sql(ty, out),
                Type::INT4 => i32::try_from(i)?.to_sql(ty, out),
                Type::BOOL => (i != 0).to_sql(ty, out),
                Type::FLOAT8 => (i as f64).to_sql(ty, out),
                Type::TEXT | Type::VARCHAR | Type::UNKNOWN => i.to_string().to_sql(ty, out),
                _ => i.to_sql(ty, out),
            }
        };
        match self {
            Value::Null => Ok(IsNull::Yes),
            Value::Int(i) => int(*i, out),
            Value::Bool(b) if *ty == Type::BOOL => b.to_sql(ty, out),
            Value::Bool(b) => int(i64::from(*b), out),
            Value::Real(r) => r.to_sql(ty, out),
            Value::Text(s) if *ty == Type::JSONB => {
                out.put_u8(1);
                out.put_slice(s.as_bytes());
                Ok(IsNull::No)
            }
            Value::Text(s) if *ty == Type::JSON => {
                out.put_slice(s.as_bytes());
                Ok(IsNull::No)
            }
            Value::Text(s) => s.as_str().to_sql(&Type::TEXT, out),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

/// A column read as a [`Value`], whatever its type.
struct Cell(Value);

impl<'a> FromSql<'a> for Cell {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> std::result::Result<Self, BoxError> {
        Ok(Cell(match *ty {
            Type::INT2 => Value::Int(i16::from_sql(ty, raw)?.into()),
            Type::INT4 => Value::Int(i32::from_sql(ty, raw)?.into()),
            Type::INT8 => Value::Int(i64::from_sql(ty, raw)?),
            Type::BOOL => Value::Bool(bool::from_sql(ty, raw)?),
            Type::FLOAT4 => Value::Real(f32::from_sql(ty, raw)?.into()),
            Type::FLOAT8 => Value::Real(f64::from_sql(ty, raw)?),
            Type::JSONB => Value::Text(String::from_utf8(raw.get(1..).unwrap_or(&[]).to_vec())?),
            _ => Value::Text(String::from_utf8(raw.to_vec())?),
        }))
    }

    fn from_sql_null(_: &Type) -> std::result::Result<Self, BoxError> {
        Ok(Cell(Value::Null))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

/// `?N` → `$N` (the only placeholder form the SQLite statements use).
fn placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        if c == '\'' {
            quoted = !quoted;
        }
        if c == '?' && !quoted && chars.peek().is_some_and(char::is_ascii_digit) {
            out.push('$');
        } else {
            out.push(c);
        }
    }
    out
}

/// One connection with its prepared statements.
pub struct PgConn {
    client: RefCell<::postgres::Client>,
    statements: RefCell<HashMap<String, ::postgres::Statement>>,
}

impl PgConn {
    pub fn new(client: ::postgres::Client) -> PgConn {
        PgConn {
            client: RefCell::new(client),
            statements: RefCell::new(HashMap::new()),
        }
    }

    pub fn is_closed(&self) -> bool {
        self.client.borrow().is_closed()
    }

    pub fn batch(&self, sql: &str) -> sql::Result<()> {
        self.client
            .borrow_mut()
            .batch_execute(sql)
            .map_err(db_error)
    }

    fn statement(&self, sql: &str) -> sql::Result<::postgres::Statement> {
        if let Some(s) = self.statements.borrow().get(sql) {
            return Ok(s.clone());
        }
        let prepared = self
            .client
            .borrow_mut()
            .prepare(&placeholders(sql))
            .map_err(db_error)?;
        self.statements
            .borrow_mut()
            .insert(sql.to_owned(), prepared.clone());
        Ok(prepared)
    }
}

impl Db for PgConn {
    const DIALECT: Dialect = Dialect::Postgres;

    fn query_values(&self, sql: &str, params: Vec<Value>) -> sql::Result<Vec<Row>> {
        let statement = self.statement(sql)?;
        let refs: Vec<&(dyn ToSql + Sync)> =
            params.iter().map(|v| v as &(dyn ToSql + Sync)).collect();
        let rows = self
            .client
            .borrow_mut()
            .query(&statement, &refs)
            .map_err(db_error)?;
        rows.iter()
            .map(|row| {
                (0..row.len())
                    .map(|i| row.try_get::<_, Cell>(i).map(|Cell(v)| v))
                    .collect::<Result<Vec<_>, _>>()
                    .map(Row)
                    .map_err(db_error)
            })
            .collect()
    }

    fn execute_values(&self, sql: &str, params: Vec<Value>) -> sql::Result<usize> {
        let statement = self.statement(sql)?;
        let refs: Vec<&(dyn ToSql + Sync)> =
            params.iter().map(|v| v as &(dyn ToSql + Sync)).collect();
        let n = self
            .client
            .borrow_mut()
            .execute(&statement, &refs)
            .map_err(db_error)?;
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }
}

fn db_error(e: ::postgres::Error) -> sql::Error {
    let unique = e.code() == Some(&SqlState::UNIQUE_VIOLATION);
    sql::Error::Db {
        source: Box::new(e),
        unique,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_become_dollars_outside_quotes() {
        assert_eq!(
            placeholders("SELECT ?1, '?2', ?12 WHERE a = ? AND b = ?3"),
            "SELECT $1, '?2', $12 WHERE a = ? AND b = $3"
        );
    }
}
