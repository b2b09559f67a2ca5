//! SQLite values to JSON, by each value's storage class.
//!
//! SQLite types values, not columns: a column declared `DECIMAL` may hold an integer in one row
//! and text in the next. So the storage class of the value decides (INTEGER → number, REAL →
//! number, TEXT → string, BLOB → base64), never the declared type. Booleans are integers and
//! dates are whatever text or number was stored; both pass through unchanged.

use serde_json::{Value, json};
use sqlx::sqlite::{Sqlite, SqliteRow};
use sqlx::{Decode, Row, TypeInfo, ValueRef};

use super::{bytes, float, placeholder};

/// One column of a row as JSON.
pub(crate) fn column_value(row: &SqliteRow, index: usize) -> Value {
    let Ok(value) = row.try_get_raw(index) else {
        return Value::Null;
    };
    if value.is_null() {
        return Value::Null;
    }
    // For a non-NULL value sqlx reports the value's own storage class here.
    let storage = value.type_info().name().to_string();
    let decoded = match storage.as_str() {
        "INTEGER" | "BOOLEAN" => <i64 as Decode<Sqlite>>::decode(value).ok().map(|v| json!(v)),
        "REAL" => <f64 as Decode<Sqlite>>::decode(value).ok().map(float),
        "BLOB" => <&[u8] as Decode<Sqlite>>::decode(value).ok().map(bytes),
        _ => <&str as Decode<Sqlite>>::decode(value).ok().map(|s| Value::String(s.to_string())),
    };
    decoded.unwrap_or_else(|| placeholder(&storage))
}
