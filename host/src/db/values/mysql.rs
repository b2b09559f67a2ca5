//! MySQL / MariaDB values to JSON.
//!
//! Statements run as prepared statements, so values arrive in the binary protocol: integers and
//! floats little-endian, DECIMAL as text, dates and times as small packed structs (which we
//! unpack ourselves to keep MySQL's out-of-range `TIME` values such as `838:59:59`).
//!
//! Two MySQL facts shape this file: `TINYINT(1)`/`BOOLEAN` is only an integer (it can hold 2 or
//! -1), so it stays a number; and text versus binary strings is decided by the column's
//! collation (`binary` means bytes), which sqlx's `str` compatibility check reads for us.
//! MariaDB's `JSON` is an alias of `LONGTEXT` and arrives as text, so it stays a string; MySQL's
//! native `JSON` type arrives as JSON. Zero dates (`0000-00-00`) are reported as NULL by the
//! driver and so become `null`.

use serde_json::{Value, json};
use sqlx::mysql::{MySql, MySqlRow, MySqlValueRef};
use sqlx::{Decode, Row, Type, TypeInfo, ValueRef};

use super::{bytes, float, float32, micros_fraction, placeholder, text_or_placeholder};

/// One column of a row as JSON.
pub(crate) fn column_value(row: &MySqlRow, index: usize) -> Value {
    let Ok(value) = row.try_get_raw(index) else {
        return Value::Null;
    };
    if value.is_null() {
        return Value::Null;
    }
    let info = value.type_info().into_owned();
    decode(value, &info).unwrap_or_else(|| placeholder(info.name()))
}

fn raw<'r>(value: MySqlValueRef<'r>) -> Option<&'r [u8]> {
    <&[u8] as Decode<MySql>>::decode(value).ok()
}

fn decode(value: MySqlValueRef<'_>, info: &sqlx::mysql::MySqlTypeInfo) -> Option<Value> {
    let name = info.name();
    Some(match name {
        "BOOLEAN" | "TINYINT" | "SMALLINT" | "MEDIUMINT" | "INT" | "BIGINT" | "TINYINT UNSIGNED"
        | "SMALLINT UNSIGNED" | "MEDIUMINT UNSIGNED" | "INT UNSIGNED" | "BIGINT UNSIGNED" | "YEAR" => {
            if <u64 as Type<MySql>>::compatible(info) {
                json!(<u64 as Decode<MySql>>::decode(value).ok()?)
            } else {
                json!(<i64 as Decode<MySql>>::decode(value).ok()?)
            }
        }
        "BIT" => {
            // BIT(n) arrives as big-endian bytes.
            let b = raw(value)?;
            json!(b.iter().fold(0u64, |acc, x| (acc << 8) | u64::from(*x)))
        }
        "FLOAT" => float32(<f32 as Decode<MySql>>::decode(value).ok()?),
        "DOUBLE" => float(<f64 as Decode<MySql>>::decode(value).ok()?),
        // Sent as text in both protocols: keep every digit.
        "DECIMAL" => Value::String(String::from_utf8_lossy(raw(value)?).into_owned()),
        "DATE" => Value::String(date_time(raw(value)?, false, false)?),
        "DATETIME" => Value::String(date_time(raw(value)?, true, false)?),
        // sqlx sets the session time zone to +00:00, so TIMESTAMP values are UTC.
        "TIMESTAMP" => Value::String(date_time(raw(value)?, true, true)?),
        "TIME" => Value::String(time(raw(value)?)?),
        "JSON" => {
            let b = raw(value)?;
            serde_json::from_slice(b).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(b).into_owned()))
        }
        "GEOMETRY" => bytes(raw(value)?),
        "NULL" => Value::Null,
        _ => {
            // The string family: CHAR/VARCHAR/TEXT/ENUM/SET and their binary twins.
            let b = raw(value)?;
            if <str as Type<MySql>>::compatible(info) {
                Value::String(String::from_utf8_lossy(b).into_owned())
            } else if matches!(name, "BINARY" | "VARBINARY" | "TINYBLOB" | "BLOB" | "MEDIUMBLOB" | "LONGBLOB") {
                bytes(b)
            } else {
                text_or_placeholder(b, name)
            }
        }
    })
}

/// Binary DATE / DATETIME / TIMESTAMP: a length byte, then year (u16 LE), month, day, and when
/// the length allows, hour, minute, second and microseconds (u32 LE).
fn date_time(b: &[u8], with_time: bool, utc: bool) -> Option<String> {
    let len = usize::from(*b.first()?);
    let d = b.get(1..1 + len)?;
    let (year, month, day) = if len >= 4 { (u16::from_le_bytes([d[0], d[1]]), d[2], d[3]) } else { (0, 0, 0) };
    let date = format!("{year:04}-{month:02}-{day:02}");
    if !with_time {
        return Some(date);
    }
    let (h, m, s) = if len >= 7 { (d[4], d[5], d[6]) } else { (0, 0, 0) };
    let micros = if len >= 11 { u32::from_le_bytes([d[7], d[8], d[9], d[10]]) } else { 0 };
    let zone = if utc { "Z" } else { "" };
    Some(format!("{date}T{h:02}:{m:02}:{s:02}{}{zone}", micros_fraction(micros)))
}

/// Binary TIME: a length byte, then sign, days (u32 LE), hour, minute, second and optionally
/// microseconds. MySQL's TIME is a duration (-838:59:59 … 838:59:59), so hours may exceed 24.
fn time(b: &[u8]) -> Option<String> {
    let len = usize::from(*b.first()?);
    if len == 0 {
        return Some("00:00:00".into());
    }
    let d = b.get(1..1 + len)?;
    if len < 8 {
        return None;
    }
    let negative = d[0] != 0;
    let days = u32::from_le_bytes([d[1], d[2], d[3], d[4]]);
    let hours = days * 24 + u32::from(d[5]);
    let micros = if len >= 12 { u32::from_le_bytes([d[8], d[9], d[10], d[11]]) } else { 0 };
    Some(format!("{}{hours:02}:{:02}:{:02}{}", if negative { "-" } else { "" }, d[6], d[7], micros_fraction(micros)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_dates_and_times() {
        assert_eq!(date_time(&[4, 0xe8, 0x07, 3, 1], false, false).unwrap(), "2024-03-01");
        assert_eq!(
            date_time(&[11, 0xe8, 0x07, 3, 1, 12, 30, 5, 0x40, 0xe2, 0x01, 0], true, true).unwrap(),
            "2024-03-01T12:30:05.123456Z"
        );
        assert_eq!(date_time(&[4, 0xe8, 0x07, 3, 1], true, false).unwrap(), "2024-03-01T00:00:00");
        assert_eq!(time(&[8, 1, 34, 0, 0, 0, 22, 59, 59]).unwrap(), "-838:59:59");
        assert_eq!(time(&[0]).unwrap(), "00:00:00");
    }
}
