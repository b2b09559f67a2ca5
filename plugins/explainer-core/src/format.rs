//! Turning cells and numbers into short text for people: thousands separators, at most two
//! decimals for floats, `decimal` text kept digit for digit, and text cleaned of control and
//! direction-override characters and cut to a length. Every function is linear in its input
//! (or better: cleaning stops once it has enough characters).

use crate::bindings::exports::quarry::plugin::explainer::Value;
use crate::number::Num;

/// Longest cell text quoted in a summary, in characters.
pub(crate) const MAX_VALUE_CHARS: usize = 60;
/// Longest `decimal` text printed digit for digit; longer ones are rounded into `1.23e45` form.
const MAX_EXACT_DECIMAL_LEN: usize = 48;
/// Floats at least this large are printed as `1.23e15` rather than as a wall of digits.
const SCIENTIFIC_ABOVE: f64 = 1e15;
/// Floats smaller than this (but not zero) are printed as `1.2e-7`: more zeros read badly.
const SCIENTIFIC_BELOW: f64 = 1e-6;

/// Digits with a comma every three from the right: `1234567` → `1,234,567`.
pub(crate) fn group(digits: &str) -> String {
    let len = digits.len();
    let mut out = String::with_capacity(len + len / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (len - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// An integer with thousands separators.
pub(crate) fn int(n: i128) -> String {
    let digits = group(&n.unsigned_abs().to_string());
    if n < 0 { format!("-{digits}") } else { digits }
}

/// A count (of rows, bytes) with thousands separators.
pub(crate) fn count(n: u64) -> String {
    int(i128::from(n))
}

/// A float for people: at most two decimals, trailing zeros dropped, separators in the integer
/// part; very large or very small magnitudes in `1.23e15` form; `NaN` and infinities in words.
pub(crate) fn float(x: f64) -> String {
    if x.is_nan() {
        return "not a number".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "infinity".into() } else { "minus infinity".into() };
    }
    let a = x.abs();
    if a == 0.0 {
        return "0".into();
    }
    if !(SCIENTIFIC_BELOW..SCIENTIFIC_ABOVE).contains(&a) {
        return scientific(x);
    }
    // Below 0.005 two decimals would print 0: keep two significant digits instead.
    let decimals = if a < 0.005 { (-a.log10()).floor() as usize + 2 } else { 2 };
    let text = format!("{x:.decimals$}");
    let text = trim_fraction(&text);
    let (sign, body) = match text.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", text),
    };
    let (int_part, frac) = body.split_once('.').unwrap_or((body, ""));
    let sign = if int_part.bytes().all(|b| b == b'0') && frac.is_empty() { "" } else { sign };
    let frac = if frac.is_empty() { String::new() } else { format!(".{frac}") };
    format!("{sign}{}{frac}", group(int_part))
}

/// `1.23e15`, with the mantissa's trailing zeros dropped.
fn scientific(x: f64) -> String {
    let text = format!("{x:.2e}");
    match text.split_once('e') {
        Some((mantissa, exp)) => format!("{}e{exp}", trim_fraction(mantissa)),
        None => text,
    }
}

/// `12.50` → `12.5`, `3.00` → `3`; text without a `.` is returned unchanged.
fn trim_fraction(text: &str) -> &str {
    if text.contains('.') { text.trim_end_matches('0').trim_end_matches('.') } else { text }
}

/// A `decimal` cell: its digits exactly (leading zeros dropped, separators added); other forms
/// (`1e5`, `NaN`, very long) through [`float`]; anything unreadable as cleaned text.
pub(crate) fn decimal_text(text: &str) -> String {
    let t = text.trim();
    if t.len() <= MAX_EXACT_DECIMAL_LEN {
        let (sign, body) = match t.as_bytes().first() {
            Some(b'-') => ("-", t.get(1..).unwrap_or("")),
            Some(b'+') => ("", t.get(1..).unwrap_or("")),
            _ => ("", t),
        };
        let (int_part, frac) = body.split_once('.').unwrap_or((body, ""));
        let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if !(int_part.is_empty() && frac.is_empty()) && digits(int_part) && digits(frac) {
            let int_part = int_part.trim_start_matches('0');
            let int_part = if int_part.is_empty() { "0" } else { int_part };
            let frac = if frac.is_empty() { String::new() } else { format!(".{frac}") };
            return format!("{sign}{}{frac}", group(int_part));
        }
    }
    match t.parse::<f64>() {
        Ok(x) => float(x),
        Err(_) => clean_text(t, MAX_VALUE_CHARS),
    }
}

/// A number computed here (a total): exact digits when exact, else as a float.
pub(crate) fn num(n: Num) -> String {
    match n {
        Num::Approx(x) => float(x),
        Num::Exact { mantissa, scale } => {
            let digits = mantissa.unsigned_abs().to_string();
            let scale = scale as usize;
            // Pad so there is at least one digit before the point: 5 at scale 2 is 0.05.
            let padded = if digits.len() <= scale { format!("{}{digits}", "0".repeat(scale + 1 - digits.len())) } else { digits };
            let (int_part, frac) = padded.split_at(padded.len() - scale);
            let sign = if mantissa < 0 { "-" } else { "" };
            let frac = if frac.is_empty() { String::new() } else { format!(".{frac}") };
            format!("{sign}{}{frac}", group(int_part))
        }
    }
}

/// Text for one line of prose: control characters become spaces, invisible and
/// direction-override characters are dropped (they could make a summary read differently from
/// what it says), runs of whitespace collapse, and anything past `max_chars` becomes `…`.
pub(crate) fn clean_text(text: &str, max_chars: usize) -> String {
    let mut out = String::new();
    let mut chars = 0usize;
    let mut pending_space = false;
    for c in text.chars() {
        if is_invisible(c) {
            continue;
        }
        if c.is_whitespace() || c.is_control() {
            pending_space = !out.is_empty();
            continue;
        }
        if chars + usize::from(pending_space) >= max_chars {
            out.push('…');
            return out;
        }
        if pending_space {
            out.push(' ');
            chars += 1;
            pending_space = false;
        }
        out.push(c);
        chars += 1;
    }
    out
}

/// Zero-width, byte-order and bidirectional formatting characters.
fn is_invisible(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}' | '\u{061C}')
}

/// Cut `text` to at most `max_bytes` bytes on a character boundary, ending in `…` when cut.
pub(crate) fn truncate_bytes(text: &str, max_bytes: usize) -> String {
    if text.len() <= max_bytes {
        return text.to_string();
    }
    let ellipsis = '…'.len_utf8();
    let mut end = max_bytes.saturating_sub(ellipsis);
    while end > 0 && !text.is_char_boundary(end) {
        end -= 1;
    }
    match text.get(..end) {
        Some(head) if max_bytes >= ellipsis => format!("{head}…"),
        _ => String::new(),
    }
}

/// An ISO date-time text for people: a midnight time is dropped (`2024-03-01T00:00:00Z` is
/// `2024-03-01`), anything else is only cleaned.
pub(crate) fn date_text(text: &str) -> String {
    let t = text.trim();
    if let (Some(date), Some(time)) = (t.get(..10), t.get(10..)) {
        let time = time.strip_prefix(['T', ' ']).unwrap_or(time);
        let time = time.strip_prefix("00:00:00").map(|rest| rest.trim_start_matches(['.', '0']));
        if let Some("" | "Z" | "+00" | "+00:00" | "-00" | "-00:00") = time {
            return clean_text(date, MAX_VALUE_CHARS);
        }
    }
    clean_text(t, MAX_VALUE_CHARS)
}

/// One cell for people. `plain` prints integers without separators (identifiers, years).
pub(crate) fn value(v: &Value, plain: bool) -> String {
    match v {
        Value::Null => "no value".into(),
        Value::Boolean(b) => if *b { "yes" } else { "no" }.into(),
        Value::Integer(n) if plain => n.to_string(),
        Value::Integer(n) => int(i128::from(*n)),
        Value::Float(x) => float(*x),
        Value::Decimal(t) if plain => clean_text(t, MAX_VALUE_CHARS),
        Value::Decimal(t) => decimal_text(t),
        Value::Text(t) | Value::Json(t) => {
            let cleaned = clean_text(t, MAX_VALUE_CHARS);
            if cleaned.is_empty() { "(blank)".into() } else { cleaned }
        }
        Value::Bytes(b) => format!("binary data ({} bytes)", count(b.len() as u64)),
    }
}

/// A string as a JSON string literal (quotes included).
pub(crate) fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_thousands() {
        assert_eq!(int(0), "0");
        assert_eq!(int(999), "999");
        assert_eq!(int(1234), "1,234");
        assert_eq!(int(-1234567), "-1,234,567");
        assert_eq!(int(i128::from(i64::MIN)), "-9,223,372,036,854,775,808");
    }

    #[test]
    fn floats_get_at_most_two_decimals() {
        assert_eq!(float(1234.5678), "1,234.57");
        assert_eq!(float(3.0), "3");
        assert_eq!(float(3.10), "3.1");
        assert_eq!(float(-0.0), "0");
        assert_eq!(float(-0.001), "-0.001");
        assert_eq!(float(0.0012345), "0.0012");
        assert_eq!(float(999.999), "1,000");
        assert_eq!(float(1e20), "1e20");
        assert_eq!(float(-1.5e300), "-1.5e300");
        assert_eq!(float(1e-300), "1e-300");
        assert_eq!(float(f64::NAN), "not a number");
        assert_eq!(float(f64::NEG_INFINITY), "minus infinity");
    }

    #[test]
    fn decimals_keep_their_digits() {
        assert_eq!(decimal_text("1234567.8900"), "1,234,567.8900");
        assert_eq!(decimal_text("-0042.5"), "-42.5");
        assert_eq!(decimal_text("+.5"), "0.5");
        assert_eq!(decimal_text("123456789012345678901234567890"), "123,456,789,012,345,678,901,234,567,890");
        assert_eq!(decimal_text("NaN"), "not a number");
        assert_eq!(decimal_text("1e3"), "1,000");
        assert_eq!(decimal_text(&"9".repeat(400)), "infinity");
        assert_eq!(decimal_text("abc"), "abc");
        assert_eq!(num(Num::Exact { mantissa: -5, scale: 2 }), "-0.05");
        assert_eq!(num(Num::Exact { mantissa: 123456789, scale: 3 }), "123,456.789");
    }

    #[test]
    fn cleans_and_cuts_text() {
        assert_eq!(clean_text("  a\n\tb\u{202E}c\u{0}  ", 10), "a bc");
        assert_eq!(clean_text("abcdef", 3), "abc…");
        assert_eq!(clean_text("ab cdef", 3), "ab…");
        assert_eq!(clean_text("", 3), "");
        assert_eq!(truncate_bytes("ééé", 5), "é…");
        assert_eq!(truncate_bytes("abc", 3), "abc");
        assert_eq!(truncate_bytes("abcd", 1), "");
        assert_eq!(json_string("a\"b\\c\n"), r#""a\"b\\c\u000a""#);
        assert_eq!(date_text("2024-03-01T00:00:00Z"), "2024-03-01");
        assert_eq!(date_text("2024-03-01 00:00:00.000+00"), "2024-03-01");
        assert_eq!(date_text("2024-03-01T10:30:00Z"), "2024-03-01T10:30:00Z");
        assert_eq!(date_text("2024-03-01"), "2024-03-01");
        assert_eq!(date_text("éééééééééé00:00:00"), "éééééééééé00:00:00");
    }
}
