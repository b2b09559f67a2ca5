//! Reading a result's shape: which columns hold numbers, labels, dates or identifiers, which one
//! is the measure a summary talks about, and that measure's statistics.
//!
//! Only the rows at hand are read (the host may have cut the result). Rows may be ragged: a
//! missing cell counts as null and extra cells are ignored. Every pass is linear in the cells.

use crate::bindings::exports::quarry::plugin::explainer::{Column, ExplainInput, Value};
use crate::number::{Num, Reading, Sum};

/// Columns past this are not profiled: a summary talks about a handful of columns, and this
/// keeps the work for very wide results bounded.
pub const MAX_PROFILED_COLUMNS: usize = 32;

/// Last name parts that make a column an identifier or a calendar key rather than a quantity:
/// summing or ranking `customer_id` or `year` means nothing.
const ID_PARTS: &[&str] = &[
    "id", "ids", "key", "pk", "fk", "uuid", "guid", "code", "zip", "zipcode", "postcode", "rank", "no", "nr", "year", "yr",
    "month", "quarter", "week", "version", "phone",
];
/// Whole names that are keys or positions, but too ambiguous as a last part (`orders_per_day`).
const ID_NAMES: &[&str] = &["day", "dow", "weekday", "hour", "rn", "rownum", "row_number", "ordinal", "position", "line"];
/// Name parts of measures whose sum means nothing: averages, extremes, ratios, unit values.
const NON_ADDITIVE_PARTS: &[&str] = &[
    "avg", "average", "mean", "median", "min", "max", "minimum", "maximum", "pct", "percent", "percentage", "ratio",
    "rate", "share", "price", "age", "score", "rating", "per", "std", "stddev", "variance", "lat", "latitude", "lon",
    "lng", "longitude", "balance",
];
/// Last name parts of calendar columns.
const DATE_PARTS: &[&str] = &["date", "day", "month", "year", "yr", "quarter", "week", "period", "time", "timestamp"];
/// Database type names (first word, lower-case) whose text cells are numbers.
const NUMERIC_TYPES: &[&str] = &[
    "int", "int2", "int4", "int8", "integer", "smallint", "bigint", "tinyint", "mediumint", "serial", "bigserial",
    "smallserial", "numeric", "decimal", "dec", "real", "float", "float4", "float8", "double", "money", "number",
];

/// What one column looks like.
#[derive(Debug, Clone)]
pub(crate) struct Profile {
    /// Position in `columns`.
    pub index: usize,
    /// At least one number, and every non-null cell is a number (`NaN` included).
    pub numeric: bool,
    /// An identifier or calendar key by its name: never summed, never ranked.
    pub id_like: bool,
    /// Dates or times: by type, by name, or because every cell is an ISO date.
    pub date_like: bool,
    /// Every non-null cell orders chronologically by value (ISO text or numbers like years).
    pub orderable: bool,
    /// Summing it over rows makes sense (a count or an amount, not an average or a price).
    pub additive: bool,
    /// Cells that are not null.
    pub non_null: usize,
}

impl Profile {
    /// A quantity to summarise, as opposed to a label, a date or a key.
    pub(crate) fn is_measure(&self) -> bool {
        self.numeric && !self.id_like && !self.date_like
    }
}

/// The shape of a result and the roles its columns play.
#[derive(Debug, Clone)]
pub(crate) struct Analysis {
    /// One profile per column, up to [`MAX_PROFILED_COLUMNS`].
    pub profiles: Vec<Profile>,
    /// The first measure column.
    pub measure: Option<usize>,
    /// The first column (other than the measure) that names a row: text, a date or a key.
    pub label: Option<usize>,
    /// The measure's statistics, when it holds a finite number.
    pub stats: Option<Stats>,
}

impl Analysis {
    /// Profile `input`'s columns and pick the measure and the label.
    pub(crate) fn new(input: &ExplainInput) -> Self {
        let profiles = profile(input);
        let measure = profiles.iter().find(|p| p.is_measure()).map(|p| p.index);
        let label = profiles
            .iter()
            .find(|p| Some(p.index) != measure && p.non_null > 0 && !p.is_measure())
            .map(|p| p.index);
        let stats = measure.and_then(|m| stats(input, m));
        Self { profiles, measure, label, stats }
    }

    /// The profile of column `index`.
    pub(crate) fn profile(&self, index: usize) -> Option<&Profile> {
        self.profiles.get(index)
    }
}

/// The cell at `row[index]`, with a missing cell (a short row) read as null.
pub(crate) fn cell(row: &[Value], index: usize) -> &Value {
    row.get(index).unwrap_or(&Value::Null)
}

/// Whether a database type name says its text cells are numbers.
pub(crate) fn numeric_type(type_name: &str) -> bool {
    let lower = type_name.trim().to_ascii_lowercase();
    let first = lower.split(|c: char| c.is_whitespace() || c == '(').next().unwrap_or("");
    NUMERIC_TYPES.contains(&first)
}

/// Whether a database type name is a date or time type.
fn date_type(type_name: &str) -> bool {
    let lower = type_name.trim().to_ascii_lowercase();
    lower.starts_with("date") || lower.starts_with("time") || lower == "year" || lower == "smalldatetime"
}

/// Read a cell as a number. Text counts only in a numeric-typed column (some drivers hand
/// `numeric` over as text); booleans, JSON and bytes never do.
pub(crate) fn read_number(v: &Value, numeric_text: bool) -> Reading {
    match v {
        Value::Integer(n) => Reading::Number(Num::from_i64(*n)),
        Value::Float(x) => Num::from_f64(*x),
        Value::Decimal(t) => Num::parse(t),
        Value::Text(t) if numeric_text => Num::parse(t),
        _ => Reading::NotNumeric,
    }
}

/// `2024-01-31…` or `2024-01`: an ISO 8601 date, possibly with a time after it.
pub(crate) fn iso_date(t: &str) -> bool {
    let b = t.trim_start().as_bytes();
    b.len() >= 7
        && b.iter().take(4).all(u8::is_ascii_digit)
        && b.get(4) == Some(&b'-')
        && b.get(5).is_some_and(u8::is_ascii_digit)
        && b.get(6).is_some_and(u8::is_ascii_digit)
}

/// A column name's words, lower-case: split at non-alphanumerics and at camelCase humps, so
/// `customerId`, `customer_id` and `Customer ID` all end in `id`.
fn name_parts(name: &str) -> Vec<String> {
    let mut parts: Vec<String> = Vec::new();
    let mut current = String::new();
    let mut prev_lower = false;
    for c in name.chars() {
        if !c.is_alphanumeric() {
            if !current.is_empty() {
                parts.push(std::mem::take(&mut current));
            }
            prev_lower = false;
            continue;
        }
        if c.is_uppercase() && prev_lower && !current.is_empty() {
            parts.push(std::mem::take(&mut current));
        }
        prev_lower = c.is_lowercase() || c.is_numeric();
        current.extend(c.to_lowercase());
    }
    if !current.is_empty() {
        parts.push(current);
    }
    parts
}

#[derive(Debug, Clone, Default)]
struct Counts {
    numbers: usize,
    non_finite: usize,
    iso_dates: usize,
    other: usize,
}

fn profile(input: &ExplainInput) -> Vec<Profile> {
    let columns: &[Column] = input.columns.get(..MAX_PROFILED_COLUMNS).unwrap_or(&input.columns);
    let numeric_text: Vec<bool> = columns.iter().map(|c| numeric_type(&c.type_name)).collect();
    let mut counts = vec![Counts::default(); columns.len()];
    // Row by row rather than column by column: each row's cells sit together in memory.
    for row in &input.rows {
        for (index, c) in counts.iter_mut().enumerate() {
            let v = cell(row, index);
            match read_number(v, numeric_text.get(index).copied().unwrap_or(false)) {
                Reading::Number(_) => c.numbers += 1,
                Reading::NonFinite => c.non_finite += 1,
                Reading::NotNumeric => match v {
                    Value::Null => {}
                    Value::Text(t) if iso_date(t) => c.iso_dates += 1,
                    _ => c.other += 1,
                },
            }
        }
    }
    columns
        .iter()
        .zip(counts)
        .enumerate()
        .map(|(index, (column, c))| {
            let parts = name_parts(&column.name);
            let last = parts.last().map(String::as_str).unwrap_or("");
            let whole = parts.join("_");
            let has = |list: &[&str]| parts.iter().any(|p| list.contains(&p.as_str()));
            let numeric = c.numbers > 0 && c.other == 0 && c.iso_dates == 0;
            let id_like = (ID_PARTS.contains(&last) && !parts.iter().any(|p| p == "per")) || ID_NAMES.contains(&whole.as_str());
            let non_null = c.numbers + c.non_finite + c.iso_dates + c.other;
            let all_iso = c.iso_dates > 0 && c.iso_dates == non_null;
            let named_date = DATE_PARTS.contains(&last) && !parts.iter().any(|p| p == "per");
            let date_like = date_type(&column.type_name) || all_iso || (named_date && c.other + c.iso_dates + c.numbers > 0);
            Profile {
                index,
                numeric,
                id_like,
                date_like,
                orderable: all_iso || numeric,
                additive: !has(NON_ADDITIVE_PARTS) && !column.name.contains('%'),
                non_null,
            }
        })
        .collect()
}

/// Statistics of a measure column over the rows at hand.
#[derive(Debug, Clone)]
pub(crate) struct Stats {
    /// The row holding the largest value (the first such row on ties).
    pub max_row: usize,
    /// The row holding the smallest value.
    pub min_row: usize,
    /// The largest value.
    pub max: Num,
    /// The smallest value.
    pub min: Num,
    /// Sum and count of the finite values.
    pub sum: Sum,
}

/// The statistics of column `index`, or `None` when it holds no finite number.
pub(crate) fn stats(input: &ExplainInput, index: usize) -> Option<Stats> {
    let numeric_text = input.columns.get(index).is_some_and(|c| numeric_type(&c.type_name));
    let mut out: Option<Stats> = None;
    for (row_index, row) in input.rows.iter().enumerate() {
        let Reading::Number(n) = read_number(cell(row, index), numeric_text) else { continue };
        match &mut out {
            None => {
                let mut sum = Sum::default();
                sum.add(n);
                out = Some(Stats { max_row: row_index, min_row: row_index, max: n, min: n, sum });
            }
            Some(s) => {
                if n.cmp(s.max).is_gt() {
                    s.max = n;
                    s.max_row = row_index;
                }
                if n.cmp(s.min).is_lt() {
                    s.min = n;
                    s.min_row = row_index;
                }
                s.sum.add(n);
            }
        }
    }
    out
}

/// A date-like cell, in a form that orders chronologically.
#[derive(Debug, Clone, Copy)]
enum DateKey<'a> {
    /// ISO 8601 text: orders as text.
    Iso(&'a str),
    /// A number such as a year: orders by value.
    Number(Num),
}

impl DateKey<'_> {
    /// Strictly earlier; keys of different forms never compare.
    fn before(self, other: DateKey<'_>) -> bool {
        match (self, other) {
            (DateKey::Iso(a), DateKey::Iso(b)) => a < b,
            (DateKey::Number(a), DateKey::Number(b)) => a.cmp(b).is_lt(),
            _ => false,
        }
    }
}

fn date_key(v: &Value, numeric_text: bool) -> Option<DateKey<'_>> {
    match v {
        Value::Text(t) if iso_date(t) => Some(DateKey::Iso(t.trim())),
        _ => match read_number(v, numeric_text) {
            Reading::Number(n) => Some(DateKey::Number(n)),
            _ => None,
        },
    }
}

/// The rows holding the earliest and the latest value of date-like column `index`, when it has
/// at least one orderable cell.
pub(crate) fn date_range(input: &ExplainInput, index: usize) -> Option<(usize, usize)> {
    let numeric_text = input.columns.get(index).is_some_and(|c| numeric_type(&c.type_name));
    let mut range: Option<((usize, DateKey<'_>), (usize, DateKey<'_>))> = None;
    for (row_index, row) in input.rows.iter().enumerate() {
        let Some(key) = date_key(cell(row, index), numeric_text) else { continue };
        range = Some(match range {
            None => ((row_index, key), (row_index, key)),
            Some((lo, hi)) => (
                if key.before(lo.1) { (row_index, key) } else { lo },
                if hi.1.before(key) { (row_index, key) } else { hi },
            ),
        });
    }
    range.map(|(lo, hi)| (lo.0, hi.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_names_into_parts() {
        assert_eq!(name_parts("customerId"), ["customer", "id"]);
        assert_eq!(name_parts("Customer ID"), ["customer", "id"]);
        assert_eq!(name_parts("avg(price)"), ["avg", "price"]);
        assert_eq!(name_parts("paid"), ["paid"]);
        assert_eq!(name_parts(""), Vec::<String>::new());
        assert_eq!(name_parts("__"), Vec::<String>::new());
    }

    #[test]
    fn reads_type_names() {
        assert!(numeric_type("NUMERIC(12, 2)"));
        assert!(numeric_type("bigint unsigned"));
        assert!(numeric_type("double precision"));
        assert!(!numeric_type("interval"));
        assert!(!numeric_type("point"));
        assert!(date_type("timestamp with time zone"));
        assert!(date_type("DATE"));
        assert!(!date_type("varchar"));
    }

    #[test]
    fn spots_iso_dates() {
        assert!(iso_date("2024-01-31"));
        assert!(iso_date("2024-01"));
        assert!(iso_date("2024-01-31T10:00:00Z"));
        assert!(!iso_date("2024"));
        assert!(!iso_date("Jan 2024"));
        assert!(!iso_date("２０２４-01"));
    }
}
