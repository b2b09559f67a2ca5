//! PostgreSQL values to JSON, decoded from the binary wire format by type OID.
//!
//! sqlx asks PostgreSQL for binary results. Decoding the bytes here (rather than through sqlx's
//! typed `Decode`) lets one function handle every type, including the cases typed decoding cannot:
//! NUMERIC with its exact digits and scale, infinite dates, arrays of any element type, and
//! unknown types (which fall back to their text when it is printable).

use chrono::{NaiveDate, NaiveDateTime, NaiveTime, TimeDelta};
use serde_json::{Value, json};
use sqlx::postgres::{PgRow, PgTypeInfo, PgTypeKind, PgValueRef};
use sqlx::{Row, TypeInfo, ValueRef};

use super::{NAIVE_DATETIME, NAIVE_TIME, bytes, float, float32, placeholder, text_or_placeholder};

/// Built-in type OIDs (from `pg_type.dat`); stable across PostgreSQL versions.
mod oid {
    pub const BOOL: u32 = 16;
    pub const BYTEA: u32 = 17;
    pub const CHAR: u32 = 18;
    pub const NAME: u32 = 19;
    pub const INT8: u32 = 20;
    pub const INT2: u32 = 21;
    pub const INT4: u32 = 23;
    pub const REGPROC: u32 = 24;
    pub const TEXT: u32 = 25;
    pub const OID: u32 = 26;
    pub const XID: u32 = 28;
    pub const CID: u32 = 29;
    pub const JSON: u32 = 114;
    pub const XML: u32 = 142;
    pub const CIDR: u32 = 650;
    pub const FLOAT4: u32 = 700;
    pub const FLOAT8: u32 = 701;
    pub const UNKNOWN: u32 = 705;
    pub const MONEY: u32 = 790;
    pub const MACADDR: u32 = 829;
    pub const INET: u32 = 869;
    pub const BPCHAR: u32 = 1042;
    pub const VARCHAR: u32 = 1043;
    pub const DATE: u32 = 1082;
    pub const TIME: u32 = 1083;
    pub const TIMESTAMP: u32 = 1114;
    pub const TIMESTAMPTZ: u32 = 1184;
    pub const INTERVAL: u32 = 1186;
    pub const TIMETZ: u32 = 1266;
    pub const BIT: u32 = 1560;
    pub const VARBIT: u32 = 1562;
    pub const NUMERIC: u32 = 1700;
    pub const REGCLASS: u32 = 2205;
    pub const UUID: u32 = 2950;
    pub const JSONB: u32 = 3802;
    pub const REGNAMESPACE: u32 = 4089;
}

/// One column of a row as JSON.
pub(crate) fn column_value(row: &PgRow, index: usize) -> Value {
    let Ok(value) = row.try_get_raw(index) else {
        return Value::Null;
    };
    value_ref(&value)
}

/// One value as JSON.
pub(crate) fn value_ref(value: &PgValueRef<'_>) -> Value {
    if value.is_null() {
        return Value::Null;
    }
    let info = value.type_info().into_owned();
    let Ok(raw) = value.as_bytes() else {
        return placeholder(info.name());
    };
    decode_typed(&info, raw)
}

/// Decode by full type info: arrays, enums and domains first, then by OID.
fn decode_typed(info: &PgTypeInfo, raw: &[u8]) -> Value {
    match info.kind() {
        PgTypeKind::Array(_) => decode_array(raw).unwrap_or_else(|| placeholder(info.name())),
        // An enum's binary form is its label.
        PgTypeKind::Enum(_) => text_or_placeholder(raw, info.name()),
        PgTypeKind::Domain(base) => decode_typed(base, raw),
        _ => match info.oid() {
            Some(o) => decode_oid(o.0, raw).unwrap_or_else(|| text_or_placeholder(raw, info.name())),
            None => text_or_placeholder(raw, info.name()),
        },
    }
}

/// Decode a value of a built-in type. `None` when the OID is not one we know or the bytes are
/// malformed, so the caller falls back to text.
fn decode_oid(type_oid: u32, raw: &[u8]) -> Option<Value> {
    Some(match type_oid {
        oid::BOOL => Value::Bool(*raw.first()? != 0),
        oid::INT2 => json!(i16::from_be_bytes(raw.try_into().ok()?)),
        oid::INT4 => json!(i32::from_be_bytes(raw.try_into().ok()?)),
        oid::INT8 => json!(i64::from_be_bytes(raw.try_into().ok()?)),
        oid::OID | oid::XID | oid::CID | oid::REGPROC | oid::REGCLASS | oid::REGNAMESPACE => {
            json!(u32::from_be_bytes(raw.try_into().ok()?))
        }
        oid::FLOAT4 => float32(f32::from_be_bytes(raw.try_into().ok()?)),
        oid::FLOAT8 => float(f64::from_be_bytes(raw.try_into().ok()?)),
        oid::NUMERIC => Value::String(numeric(raw)?),
        oid::MONEY => Value::String(money(i64::from_be_bytes(raw.try_into().ok()?))),
        oid::TEXT | oid::VARCHAR | oid::BPCHAR | oid::NAME | oid::UNKNOWN | oid::XML | oid::CHAR => {
            Value::String(String::from_utf8_lossy(raw).into_owned())
        }
        oid::JSON => json_text(raw),
        // JSONB's binary form is a version byte (1) and then the JSON text.
        oid::JSONB => json_text(raw.strip_prefix(&[1u8])?),
        oid::BYTEA => bytes(raw),
        oid::UUID => Value::String(uuid::Uuid::from_slice(raw).ok()?.hyphenated().to_string()),
        oid::DATE => date(i32::from_be_bytes(raw.try_into().ok()?))?,
        oid::TIMESTAMP => timestamp(i64::from_be_bytes(raw.try_into().ok()?), false)?,
        oid::TIMESTAMPTZ => timestamp(i64::from_be_bytes(raw.try_into().ok()?), true)?,
        oid::TIME => Value::String(time_of_day(i64::from_be_bytes(raw.try_into().ok()?))?),
        oid::TIMETZ => {
            let micros = i64::from_be_bytes(raw.get(0..8)?.try_into().ok()?);
            // Stored as seconds *west* of UTC, so UTC+02:00 arrives as -7200.
            let west = i32::from_be_bytes(raw.get(8..12)?.try_into().ok()?);
            Value::String(format!("{}{}", time_of_day(micros)?, utc_offset(-west)))
        }
        oid::INTERVAL => {
            let micros = i64::from_be_bytes(raw.get(0..8)?.try_into().ok()?);
            let days = i32::from_be_bytes(raw.get(8..12)?.try_into().ok()?);
            let months = i32::from_be_bytes(raw.get(12..16)?.try_into().ok()?);
            Value::String(interval(months, days, micros))
        }
        oid::INET | oid::CIDR => Value::String(inet(raw)?),
        oid::MACADDR if raw.len() == 6 => {
            Value::String(raw.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":"))
        }
        oid::BIT | oid::VARBIT => {
            let nbits = usize::try_from(i32::from_be_bytes(raw.get(0..4)?.try_into().ok()?)).ok()?;
            let data = raw.get(4..)?;
            let bits: String = (0..nbits)
                .map(|i| data.get(i / 8).map_or('0', |b| if b & (0x80 >> (i % 8)) != 0 { '1' } else { '0' }))
                .collect();
            Value::String(bits)
        }
        _ => return None,
    })
}

fn json_text(raw: &[u8]) -> Value {
    serde_json::from_slice(raw).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(raw).into_owned()))
}

/// The binary array format: dimensions, a has-nulls flag, the element OID, each dimension's
/// length and lower bound, then length-prefixed elements in row-major order.
fn decode_array(raw: &[u8]) -> Option<Value> {
    let i32_at = |at: usize| raw.get(at..at + 4).and_then(|b| b.try_into().ok()).map(i32::from_be_bytes);
    let ndim = usize::try_from(i32_at(0)?).ok()?;
    let elem_oid = u32::try_from(i32_at(8)?).ok()?;
    if ndim == 0 {
        return Some(Value::Array(Vec::new()));
    }
    let mut dims = Vec::with_capacity(ndim);
    for d in 0..ndim {
        dims.push(usize::try_from(i32_at(12 + d * 8)?).ok()?);
    }
    let mut pos = 12 + ndim * 8;
    let total: usize = dims.iter().product();
    let mut elems = Vec::with_capacity(total.min(1 << 16));
    for _ in 0..total {
        let len = i32_at(pos)?;
        pos += 4;
        if len < 0 {
            elems.push(Value::Null);
            continue;
        }
        let len = usize::try_from(len).ok()?;
        let bytes = raw.get(pos..pos + len)?;
        pos += len;
        elems.push(decode_oid(elem_oid, bytes).unwrap_or_else(|| text_or_placeholder(bytes, "array element")));
    }
    Some(nest(&dims, &mut elems.into_iter()))
}

/// Rebuild nested JSON arrays from row-major elements.
fn nest(dims: &[usize], elems: &mut impl Iterator<Item = Value>) -> Value {
    match dims {
        [] => Value::Null,
        [n] => Value::Array(elems.take(*n).collect()),
        [n, rest @ ..] => Value::Array((0..*n).map(|_| nest(rest, elems)).collect()),
    }
}

/// NUMERIC's binary form: digit count, weight (base-10000 exponent of the first digit), sign,
/// display scale, then base-10000 digits. Rebuilt as exact decimal text with `dscale` decimals.
fn numeric(raw: &[u8]) -> Option<String> {
    let u16_at = |at: usize| raw.get(at..at + 2).and_then(|b| b.try_into().ok()).map(u16::from_be_bytes);
    let ndigits = usize::from(u16_at(0)?);
    let weight = i32::from(u16_at(2)? as i16);
    let sign = u16_at(4)?;
    let dscale = usize::from(u16_at(6)?);
    match sign {
        0xC000 => return Some("NaN".into()),
        0xD000 => return Some("Infinity".into()),
        0xF000 => return Some("-Infinity".into()),
        _ => {}
    }
    let digits: Vec<u16> = (0..ndigits).map(|i| u16_at(8 + i * 2)).collect::<Option<_>>()?;
    let digit = |idx: i32| usize::try_from(idx).ok().and_then(|i| digits.get(i).copied()).unwrap_or(0);
    let mut out = String::new();
    if sign == 0x4000 {
        out.push('-');
    }
    if weight < 0 {
        out.push('0');
    } else {
        for k in 0..=weight {
            if k == 0 {
                out.push_str(&digit(k).to_string());
            } else {
                out.push_str(&format!("{:04}", digit(k)));
            }
        }
    }
    if dscale > 0 {
        let mut frac = String::with_capacity(dscale + 4);
        let mut k = 1;
        while frac.len() < dscale {
            frac.push_str(&format!("{:04}", digit(weight + k)));
            k += 1;
        }
        frac.truncate(dscale);
        out.push('.');
        out.push_str(&frac);
    }
    if out == "-0" || (out.starts_with("-0.") && out[1..].chars().all(|c| c == '0' || c == '.')) {
        out.remove(0);
    }
    Some(out)
}

/// money is an int64 count of the smallest currency unit; two fractional digits is the common
/// `lc_monetary` setting, and the only one we assume.
fn money(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let abs = cents.unsigned_abs();
    format!("{sign}{}.{:02}", abs / 100, abs % 100)
}

fn pg_epoch() -> NaiveDateTime {
    NaiveDate::from_ymd_opt(2000, 1, 1).unwrap_or_default().and_time(NaiveTime::MIN)
}

fn date(days: i32) -> Option<Value> {
    Some(Value::String(match days {
        i32::MAX => "infinity".into(),
        i32::MIN => "-infinity".into(),
        d => pg_epoch().date().checked_add_signed(TimeDelta::days(i64::from(d)))?.format("%Y-%m-%d").to_string(),
    }))
}

fn timestamp(micros: i64, utc: bool) -> Option<Value> {
    Some(Value::String(match micros {
        i64::MAX => "infinity".into(),
        i64::MIN => "-infinity".into(),
        m => {
            let ts = pg_epoch().checked_add_signed(TimeDelta::microseconds(m))?;
            let text = ts.format(NAIVE_DATETIME).to_string();
            if utc { text + "Z" } else { text }
        }
    }))
}

fn time_of_day(micros: i64) -> Option<String> {
    // PostgreSQL accepts 24:00:00 as a time; chrono does not.
    if micros == 86_400_000_000 {
        return Some("24:00:00".into());
    }
    let secs = u32::try_from(micros.div_euclid(1_000_000)).ok()?;
    let nanos = u32::try_from(micros.rem_euclid(1_000_000) * 1000).ok()?;
    Some(NaiveTime::from_num_seconds_from_midnight_opt(secs, nanos)?.format(NAIVE_TIME).to_string())
}

fn utc_offset(east_secs: i32) -> String {
    let sign = if east_secs < 0 { '-' } else { '+' };
    let a = east_secs.unsigned_abs();
    if a.is_multiple_of(60) {
        format!("{sign}{:02}:{:02}", a / 3600, a % 3600 / 60)
    } else {
        format!("{sign}{:02}:{:02}:{:02}", a / 3600, a % 3600 / 60, a % 60)
    }
}

/// ISO 8601 duration in PostgreSQL's `iso_8601` interval style: each component keeps its own
/// sign (PostgreSQL intervals mix them), zero components are left out, and zero is `PT0S`.
fn interval(months: i32, days: i32, micros: i64) -> String {
    let mut out = String::from("P");
    let (years, months) = (months / 12, months % 12);
    for (n, unit) in [(years as i64, 'Y'), (months as i64, 'M'), (days as i64, 'D')] {
        if n != 0 {
            out.push_str(&format!("{n}{unit}"));
        }
    }
    if micros != 0 {
        out.push('T');
        let hours = micros / 3_600_000_000;
        let minutes = micros % 3_600_000_000 / 60_000_000;
        let sec_micros = micros % 60_000_000;
        if hours != 0 {
            out.push_str(&format!("{hours}H"));
        }
        if minutes != 0 {
            out.push_str(&format!("{minutes}M"));
        }
        if sec_micros != 0 {
            let sign = if sec_micros < 0 { "-" } else { "" };
            let a = sec_micros.unsigned_abs();
            let frac = format!("{:06}", a % 1_000_000);
            let frac = frac.trim_end_matches('0');
            let dot = if frac.is_empty() { "" } else { "." };
            out.push_str(&format!("{sign}{}{dot}{frac}S", a / 1_000_000));
        }
    }
    if out == "P" { "PT0S".into() } else { out }
}

/// inet/cidr: family (2 = IPv4, 3 = IPv6), prefix bits, is-cidr flag, address length, address.
fn inet(raw: &[u8]) -> Option<String> {
    let (family, bits, is_cidr, len) = (*raw.first()?, *raw.get(1)?, *raw.get(2)?, usize::from(*raw.get(3)?));
    let addr = raw.get(4..4 + len)?;
    let (text, full) = match family {
        2 => (std::net::Ipv4Addr::from(<[u8; 4]>::try_from(addr).ok()?).to_string(), 32),
        3 => (std::net::Ipv6Addr::from(<[u8; 16]>::try_from(addr).ok()?).to_string(), 128),
        _ => return None,
    };
    Some(if is_cidr != 0 || bits != full { format!("{text}/{bits}") } else { text })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn num(ndigits: u16, weight: i16, sign: u16, dscale: u16, digits: &[u16]) -> Vec<u8> {
        let mut v = Vec::new();
        for x in [ndigits, weight as u16, sign, dscale].iter().chain(digits) {
            v.extend_from_slice(&x.to_be_bytes());
        }
        v
    }

    #[test]
    fn numerics_keep_digits_and_scale() {
        assert_eq!(numeric(&num(2, 0, 0, 2, &[12, 5000])).unwrap(), "12.50");
        assert_eq!(numeric(&num(1, -1, 0x4000, 4, &[123])).unwrap(), "-0.0123");
        assert_eq!(numeric(&num(1, -2, 0, 8, &[5])).unwrap(), "0.00000005");
        assert_eq!(numeric(&num(2, 1, 0, 0, &[1, 0])).unwrap(), "10000");
        assert_eq!(numeric(&num(1, 2, 0, 0, &[7])).unwrap(), "700000000");
        assert_eq!(numeric(&num(0, 0, 0, 3, &[])).unwrap(), "0.000");
        assert_eq!(numeric(&num(0, 0, 0xC000, 0, &[])).unwrap(), "NaN");
        assert_eq!(numeric(&num(5, 4, 0, 2, &[1234, 5678, 9012, 3456, 7890])).unwrap(), "12345678901234567890.00");
    }

    #[test]
    fn intervals() {
        assert_eq!(interval(14, 3, 4 * 3_600_000_000 + 5 * 60_000_000 + 6_500_000), "P1Y2M3DT4H5M6.5S");
        assert_eq!(interval(0, 0, 0), "PT0S");
        assert_eq!(interval(0, -1, 0), "P-1D");
        assert_eq!(money(-1234), "-12.34");
        assert_eq!(utc_offset(19800), "+05:30");
    }
}
