//! Database values to JSON, faithfully, one file per engine.
//!
//! The mapping (also in `docs/database.md`):
//!
//! | database value | JSON |
//! | --- | --- |
//! | NULL | `null` |
//! | integers (any width, signed or unsigned) | number |
//! | floats | number; NaN / ±infinity as the strings `"NaN"`, `"Infinity"`, `"-Infinity"` (JSON has no such numbers, and `null` would lose the fact) |
//! | NUMERIC / DECIMAL / money | **string** with every digit and the scale kept (`"12.50"`), because a JSON number (f64 in `serde_json` without `arbitrary_precision`) would round |
//! | boolean (PostgreSQL) | `true` / `false` |
//! | MySQL/MariaDB `TINYINT(1)` / `BOOLEAN`, SQLite booleans | **number** `0` / `1`: the storage is an integer and may hold other values |
//! | date | `"2024-03-01"` |
//! | timestamp without time zone | `"2024-03-01T12:30:00"` (fraction only when non-zero: `.123` or `.123456`) |
//! | timestamp with time zone (PG `timestamptz`, MySQL `TIMESTAMP`) | UTC, `"2024-03-01T12:30:00Z"` |
//! | time | `"12:30:00"`; PG `timetz` `"12:30:00+02:00"`; MySQL `TIME` beyond a day `"838:59:59"` |
//! | PG interval | ISO 8601 duration, PostgreSQL's `iso_8601` style: `"P1Y2M3DT4H5M6.5S"` |
//! | PG infinite dates/timestamps, MySQL zero dates | `"infinity"`, `"-infinity"`, `"0000-00-00"` as text |
//! | JSON / JSONB (PG, MySQL) | the JSON value itself |
//! | bytes (bytea, BLOB, BINARY) | base64 string (standard alphabet, padded) |
//! | UUID | `"5f0c…"` hyphenated lowercase |
//! | PG arrays | JSON arrays (nested for several dimensions), elements mapped by these rules |
//! | PG enums, inet/cidr, macaddr, bit strings | their text form |
//! | anything else | its text when the bytes are printable UTF-8, else the placeholder `"<type name>"` |
//!
//! SQLite is dynamically typed: each value maps by its storage class (INTEGER → number,
//! REAL → number, TEXT → string, BLOB → base64), whatever the column's declared type.

pub(crate) mod mysql;
pub(crate) mod postgres;
pub(crate) mod sqlite;

use base64::Engine as _;
use serde_json::Value;

/// A float as JSON: a number when finite, else `"NaN"` / `"Infinity"` / `"-Infinity"`.
pub(crate) fn float(v: f64) -> Value {
    if v.is_nan() {
        Value::String("NaN".into())
    } else if v.is_infinite() {
        Value::String(if v > 0.0 { "Infinity" } else { "-Infinity" }.into())
    } else {
        serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number)
    }
}

/// A 4-byte float as JSON, going through its shortest decimal text so that `0.1::real` shows as
/// `0.1` rather than `0.10000000149011612`.
pub(crate) fn float32(v: f32) -> Value {
    if !v.is_finite() {
        return float(v as f64);
    }
    float(v.to_string().parse::<f64>().unwrap_or(v as f64))
}

/// Bytes as a standard, padded base64 string.
pub(crate) fn bytes(b: &[u8]) -> Value {
    Value::String(base64::engine::general_purpose::STANDARD.encode(b))
}

/// Text when `b` is printable UTF-8, else the `"<type>"` placeholder. For types we do not know.
pub(crate) fn text_or_placeholder(b: &[u8], type_name: &str) -> Value {
    match std::str::from_utf8(b) {
        Ok(s) if !s.chars().any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t')) => Value::String(s.to_string()),
        _ => placeholder(type_name),
    }
}

/// The `"<type name>"` stand-in for a value we cannot represent.
pub(crate) fn placeholder(type_name: &str) -> Value {
    Value::String(format!("<{}>", type_name.to_ascii_lowercase()))
}

/// `.123` / `.123456` / nothing, like chrono's `%.f`: the shortest of 0, 3 or 6 digits that is exact.
pub(crate) fn micros_fraction(micros: u32) -> String {
    if micros == 0 {
        String::new()
    } else if micros.is_multiple_of(1000) {
        format!(".{:03}", micros / 1000)
    } else {
        format!(".{micros:06}")
    }
}

/// The chrono format for timestamps without a zone, shared by the engines.
pub(crate) const NAIVE_DATETIME: &str = "%Y-%m-%dT%H:%M:%S%.f";
/// The chrono format for times of day.
pub(crate) const NAIVE_TIME: &str = "%H:%M:%S%.f";

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn floats_and_fractions() {
        assert_eq!(float(1.5), json!(1.5));
        assert_eq!(float(f64::NAN), json!("NaN"));
        assert_eq!(float(f64::NEG_INFINITY), json!("-Infinity"));
        assert_eq!(float32(0.1), json!(0.1));
        assert_eq!(micros_fraction(0), "");
        assert_eq!(micros_fraction(120_000), ".120");
        assert_eq!(micros_fraction(5), ".000005");
        assert_eq!(bytes(b"\x00\xffab"), json!("AP9hYg=="));
        assert_eq!(text_or_placeholder(b"a\x01", "POINT"), json!("<point>"));
    }
}
