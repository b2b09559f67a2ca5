//! What differs between the SQLite and PostgreSQL backends below the SQL: how timestamps and JSON
//! are bound, how a write transaction starts, and reading typed columns from either kind of row.
//!
//! The queries themselves are shared (both drivers accept `$1`-style placeholders); a query body
//! is written once and run against either pool through `with_pool!` (in `store/mod.rs`), which
//! names the backend's module here (`sqlite` or `postgres`) so the body can call `codec::time`,
//! `codec::json` and `codec::BEGIN_WRITE`.

use chrono::{DateTime, SubsecRound, Utc};
use serde_json::Value;
use sqlx::Row;
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;

/// The current time at the precision both backends keep (microseconds), so a value read back
/// equals the one that was written.
pub(super) fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// SQLite: timestamps as fixed-width RFC 3339 text, JSON as text, writes under `BEGIN IMMEDIATE`.
pub(super) mod sqlite {
    use chrono::{DateTime, Utc};
    use serde_json::Value;

    /// Takes the write lock at `BEGIN`, so a transaction never has to upgrade a read lock (which
    /// SQLite refuses with `SQLITE_BUSY` instead of waiting); the busy timeout covers the wait.
    pub(in crate::store) const BEGIN_WRITE: &str = "BEGIN IMMEDIATE";

    /// `2025-01-31T09:15:02.123456Z`: UTC, always six fractional digits, so text order is time order.
    pub(in crate::store) fn time(t: DateTime<Utc>) -> String {
        t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
    }

    /// JSON as its serialized text.
    pub(in crate::store) fn json(v: &Value) -> String {
        v.to_string()
    }
}

/// PostgreSQL: `TIMESTAMPTZ` and `JSONB` bound natively.
pub(super) mod postgres {
    use chrono::{DateTime, Utc};
    use serde_json::Value;

    /// A plain `BEGIN` (read committed): the session row's upsert takes the row lock that orders
    /// concurrent appends.
    pub(in crate::store) const BEGIN_WRITE: &str = "BEGIN";

    /// Bound as `TIMESTAMPTZ`.
    pub(in crate::store) fn time(t: DateTime<Utc>) -> DateTime<Utc> {
        t
    }

    /// Bound as `JSONB`.
    pub(in crate::store) fn json(v: &Value) -> &Value {
        v
    }
}

/// Reading the store's kinds of column from a row of either backend.
pub(super) trait StoreRow {
    /// A `NOT NULL` text column.
    fn text(&self, col: &str) -> Result<String, sqlx::Error>;
    /// A nullable text column.
    fn opt_text(&self, col: &str) -> Result<Option<String>, sqlx::Error>;
    /// A `NOT NULL` integer column.
    fn int(&self, col: &str) -> Result<i64, sqlx::Error>;
    /// A nullable integer column.
    fn opt_int(&self, col: &str) -> Result<Option<i64>, sqlx::Error>;
    /// A timestamp column.
    fn time(&self, col: &str) -> Result<DateTime<Utc>, sqlx::Error>;
    /// A JSON column.
    fn json(&self, col: &str) -> Result<Value, sqlx::Error>;
    /// A nullable JSON column.
    fn opt_json(&self, col: &str) -> Result<Option<Value>, sqlx::Error>;
    /// A nullable timestamp column.
    fn opt_time(&self, col: &str) -> Result<Option<DateTime<Utc>>, sqlx::Error>;
    /// A boolean column (`INTEGER` 0/1 in SQLite, `BOOLEAN` in PostgreSQL).
    fn boolean(&self, col: &str) -> Result<bool, sqlx::Error>;
    /// A nullable binary column (`BLOB` in SQLite, `BYTEA` in PostgreSQL).
    fn opt_bytes(&self, col: &str) -> Result<Option<Vec<u8>>, sqlx::Error>;
}

fn decode_error(col: &str, source: impl std::error::Error + Send + Sync + 'static) -> sqlx::Error {
    sqlx::Error::ColumnDecode { index: col.to_string(), source: Box::new(source) }
}

impl StoreRow for SqliteRow {
    fn text(&self, col: &str) -> Result<String, sqlx::Error> {
        self.try_get(col)
    }
    fn opt_text(&self, col: &str) -> Result<Option<String>, sqlx::Error> {
        self.try_get(col)
    }
    fn int(&self, col: &str) -> Result<i64, sqlx::Error> {
        self.try_get(col)
    }
    fn opt_int(&self, col: &str) -> Result<Option<i64>, sqlx::Error> {
        self.try_get(col)
    }
    fn time(&self, col: &str) -> Result<DateTime<Utc>, sqlx::Error> {
        let text: String = self.try_get(col)?;
        DateTime::parse_from_rfc3339(&text).map(|t| t.with_timezone(&Utc)).map_err(|e| decode_error(col, e))
    }
    fn json(&self, col: &str) -> Result<Value, sqlx::Error> {
        let text: String = self.try_get(col)?;
        serde_json::from_str(&text).map_err(|e| decode_error(col, e))
    }
    fn opt_json(&self, col: &str) -> Result<Option<Value>, sqlx::Error> {
        let text: Option<String> = self.try_get(col)?;
        text.map(|t| serde_json::from_str(&t).map_err(|e| decode_error(col, e))).transpose()
    }
    fn opt_time(&self, col: &str) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
        let text: Option<String> = self.try_get(col)?;
        text.map(|t| DateTime::parse_from_rfc3339(&t).map(|t| t.with_timezone(&Utc)).map_err(|e| decode_error(col, e)))
            .transpose()
    }
    fn boolean(&self, col: &str) -> Result<bool, sqlx::Error> {
        self.try_get(col)
    }
    fn opt_bytes(&self, col: &str) -> Result<Option<Vec<u8>>, sqlx::Error> {
        self.try_get(col)
    }
}

impl StoreRow for PgRow {
    fn text(&self, col: &str) -> Result<String, sqlx::Error> {
        self.try_get(col)
    }
    fn opt_text(&self, col: &str) -> Result<Option<String>, sqlx::Error> {
        self.try_get(col)
    }
    fn int(&self, col: &str) -> Result<i64, sqlx::Error> {
        self.try_get(col)
    }
    fn opt_int(&self, col: &str) -> Result<Option<i64>, sqlx::Error> {
        self.try_get(col)
    }
    fn time(&self, col: &str) -> Result<DateTime<Utc>, sqlx::Error> {
        self.try_get(col)
    }
    fn json(&self, col: &str) -> Result<Value, sqlx::Error> {
        self.try_get(col)
    }
    fn opt_json(&self, col: &str) -> Result<Option<Value>, sqlx::Error> {
        self.try_get(col)
    }
    fn opt_time(&self, col: &str) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
        self.try_get(col)
    }
    fn boolean(&self, col: &str) -> Result<bool, sqlx::Error> {
        self.try_get(col)
    }
    fn opt_bytes(&self, col: &str) -> Result<Option<Vec<u8>>, sqlx::Error> {
        self.try_get(col)
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn sqlite_time_is_fixed_width_and_round_trips() {
        let whole = Utc.with_ymd_and_hms(2025, 1, 31, 9, 15, 2).single().expect("valid date");
        assert_eq!(sqlite::time(whole), "2025-01-31T09:15:02.000000Z");
        let t = now();
        let text = sqlite::time(t);
        assert_eq!(text.len(), "2025-01-31T09:15:02.000000Z".len());
        let back = DateTime::parse_from_rfc3339(&text).expect("parses").with_timezone(&Utc);
        assert_eq!(back, t);
    }
}
