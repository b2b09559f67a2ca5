//! The deterministic summary: what was asked, how many rows came back, and the headline numbers,
//! in a few short English sentences.
//!
//! The shape of the rows at hand decides what is said: a single value is stated, a single row is
//! listed as `column: value` pairs, and several rows get the range of a leading date column, the
//! highest and lowest entries of the measure, and its total and average when a sum makes sense.

use crate::analyze::{self, Analysis};
use crate::bindings::exports::quarry::plugin::explainer::{ExplainInput, Explanation, Value};
use crate::{chart, format};

/// Longest restatement of the question, in characters.
const MAX_QUESTION_CHARS: usize = 150;
/// Longest column name quoted, in characters.
const MAX_NAME_CHARS: usize = 40;
/// Cells of a single row listed before "and N more columns".
const MAX_PAIRS: usize = 6;
/// Values of a label column listed when a result has no measure.
const MAX_PREVIEW: usize = 5;
/// Longest preview value, in characters: several of them share one sentence.
const MAX_PREVIEW_CHARS: usize = 40;
/// Cap on the whole text. Each sentence is bounded already; this only guards their sum.
const MAX_TEXT_BYTES: usize = 2000;

/// Summarise a result without any LLM: a few sentences and, when the result suits one, a chart
/// suggestion (see [`crate::suggest_chart`]). Never panics, whatever the input, and runs in time
/// linear in the number of cells.
pub fn summarize(input: &ExplainInput) -> Explanation {
    summarize_with(input, &Analysis::new(input))
}

/// [`summarize`] with the analysis already made.
pub(crate) fn summarize_with(input: &ExplainInput, analysis: &Analysis) -> Explanation {
    let mut sentences: Vec<String> = restate(&input.question).into_iter().collect();
    sentences.extend(facts(input, analysis));
    Explanation {
        text: format::truncate_bytes(&sentences.join(" "), MAX_TEXT_BYTES),
        chart: chart::suggest(input, analysis),
    }
}

/// Everything the summary says after restating the question: the row count and the headline
/// numbers. The LLM prompt carries these as checked facts.
pub(crate) fn facts(input: &ExplainInput, analysis: &Analysis) -> Vec<String> {
    let mut out = vec![count_sentence(input)];
    if input.columns.is_empty() {
        return out;
    }
    match input.rows.as_slice() {
        [] => {}
        [row] if input.columns.len() == 1 => out.push(single_value(input, analysis, row)),
        [row] => out.push(single_row(input, analysis, row)),
        _ => out.extend(many_rows(input, analysis)),
    }
    out
}

/// `You asked: "…".`, or nothing for a blank question.
fn restate(question: &str) -> Option<String> {
    let q = format::clean_text(question, MAX_QUESTION_CHARS);
    let q = q.trim_end_matches('.');
    (!q.is_empty()).then(|| format!("You asked: \"{q}\"."))
}

/// Total rows: the host's count, or the rows at hand if it undercounted.
fn total_rows(input: &ExplainInput) -> u64 {
    input.row_count.max(input.rows.len() as u64)
}

/// Whether the rows at hand are only the first part of the result.
fn is_cut(input: &ExplainInput) -> bool {
    input.truncated || total_rows(input) > input.rows.len() as u64
}

fn count_sentence(input: &ExplainInput) -> String {
    let shown = input.rows.len() as u64;
    match total_rows(input) {
        0 => "No rows matched.".into(),
        1 => "1 row.".into(),
        n if shown == 0 => format!("{} rows (none shown).", format::count(n)),
        n if shown < n => format!("{} rows (showing the first {}).", format::count(n), format::count(shown)),
        n => format!("{} rows.", format::count(n)),
    }
}

/// Column `index`'s name for prose; `column 3` when it has none.
fn name(input: &ExplainInput, index: usize) -> String {
    let cleaned = input.columns.get(index).map(|c| format::clean_text(&c.name, MAX_NAME_CHARS)).unwrap_or_default();
    if cleaned.is_empty() { format!("column {}", index + 1) } else { cleaned }
}

/// Identifiers and years print without thousands separators (`2024`, not `2,024`).
fn plain(analysis: &Analysis, index: usize) -> bool {
    analysis.profile(index).is_some_and(|p| p.id_like || p.date_like)
}

/// Cell `v` of column `index` for prose: dates without a midnight time, identifiers and years
/// without separators.
fn cell_text(analysis: &Analysis, index: usize, v: &Value) -> String {
    match v {
        Value::Text(t) if analysis.profile(index).is_some_and(|p| p.date_like) => format::date_text(t),
        v => format::value(v, plain(analysis, index)),
    }
}

/// Cell `index` of row `row` for prose.
fn value_at(input: &ExplainInput, analysis: &Analysis, row: usize, index: usize) -> String {
    let v = input.rows.get(row).map_or(&Value::Null, |r| analyze::cell(r, index));
    cell_text(analysis, index, v)
}

fn single_value(input: &ExplainInput, analysis: &Analysis, row: &[Value]) -> String {
    let v = analyze::cell(row, 0);
    if total_rows(input) > 1 {
        return format!("The first row's {} is {}.", name(input, 0), cell_text(analysis, 0, v));
    }
    match v {
        Value::Null => "The answer is empty (no value).".into(),
        v => format!("The answer is {}.", cell_text(analysis, 0, v)),
    }
}

fn single_row(input: &ExplainInput, analysis: &Analysis, row: &[Value]) -> String {
    let n = input.columns.len();
    let mut pairs: Vec<String> = (0..n.min(MAX_PAIRS))
        .map(|i| format!("{}: {}", name(input, i), cell_text(analysis, i, analyze::cell(row, i))))
        .collect();
    if n > MAX_PAIRS {
        pairs.push(format!("and {} more columns", n - MAX_PAIRS));
    }
    let prefix = if total_rows(input) > 1 { "First row: " } else { "" };
    format!("{prefix}{}.", pairs.join("; "))
}

fn many_rows(input: &ExplainInput, analysis: &Analysis) -> Vec<String> {
    let mut out = Vec::new();
    let shown = if is_cut(input) { "The rows shown" } else { "The rows" };
    let ranged = analysis.profile(0).is_some_and(|p| p.date_like && p.orderable);
    if ranged && let Some((lo, hi)) = analyze::date_range(input, 0) {
        let (first, last) = (value_at(input, analysis, lo, 0), value_at(input, analysis, hi, 0));
        out.push(if first == last {
            format!("{shown} are all for {first}.")
        } else {
            format!("{shown} cover {first} to {last}.")
        });
    }
    match (analysis.measure, &analysis.stats) {
        (Some(m), Some(stats)) => out.extend(measure_sentences(input, analysis, m, stats)),
        _ if ranged && analysis.label == Some(0) => {}
        _ => out.extend(preview(input, analysis)),
    }
    out
}

/// Highest and lowest entries, then the total and average when a sum means something.
fn measure_sentences(input: &ExplainInput, analysis: &Analysis, m: usize, stats: &analyze::Stats) -> Vec<String> {
    let mut out = Vec::new();
    if stats.sum.count() < 2 {
        return out;
    }
    let mname = name(input, m);
    let at = |row: usize| value_at(input, analysis, row, m);
    if stats.max.cmp(stats.min).is_eq() {
        let every = if stats.sum.count() == input.rows.len() { "every row" } else { "every row that has one" };
        out.push(format!("{mname} is {} in {every}.", at(stats.max_row)));
        return out;
    }
    // Over a cut result the extremes are only those of the rows at hand.
    let scope = if is_cut(input) { " in the rows shown" } else { "" };
    match analysis.label {
        Some(l) => out.push(format!(
            "Highest {mname}{scope}: {} ({}); lowest: {} ({}).",
            label_at(input, analysis, stats.max_row, l),
            at(stats.max_row),
            label_at(input, analysis, stats.min_row, l),
            at(stats.min_row),
        )),
        None => out.push(format!("{mname} ranges from {} to {}{scope}.", at(stats.min_row), at(stats.max_row))),
    }
    let additive = analysis.profile(m).is_some_and(|p| p.additive);
    if let (true, Some(total), Some(mean)) = (additive, stats.sum.total(), stats.sum.mean()) {
        let (total, mean) = (format::num(total), format::float(mean));
        out.push(if is_cut(input) {
            format!("Total {mname} over the {} rows shown: {total} (average {mean}).", format::count(input.rows.len() as u64))
        } else {
            format!("Total {mname}: {total} (average {mean} per row).")
        });
    }
    out
}

/// How a row is named in "Highest revenue: North (…)": the label's text, or `customer_id 42`
/// when the label is a number, which means nothing without its column name.
fn label_at(input: &ExplainInput, analysis: &Analysis, row: usize, label: usize) -> String {
    let v = input.rows.get(row).map_or(&Value::Null, |r| analyze::cell(r, label));
    let lname = name(input, label);
    match v {
        Value::Null => format!("a row with no {lname}"),
        Value::Integer(_) | Value::Float(_) | Value::Decimal(_) | Value::Boolean(_) => {
            format!("{lname} {}", cell_text(analysis, label, v))
        }
        v => cell_text(analysis, label, v),
    }
}

/// `First values of name: Alice, Bob, …` for results without a measure.
fn preview(input: &ExplainInput, analysis: &Analysis) -> Option<String> {
    let index = analysis.label.unwrap_or(0);
    let mut values: Vec<String> = Vec::new();
    let mut more = false;
    for row in &input.rows {
        let v = analyze::cell(row, index);
        if matches!(v, Value::Null) {
            continue;
        }
        if values.len() == MAX_PREVIEW {
            more = true;
            break;
        }
        let mut text = cell_text(analysis, index, v);
        if text.chars().count() > MAX_PREVIEW_CHARS {
            text = format::clean_text(&text, MAX_PREVIEW_CHARS);
        }
        values.push(text);
    }
    if values.is_empty() {
        return None;
    }
    let tail = if more || is_cut(input) { ", …" } else { "" };
    Some(format!("First values of {}: {}{tail}.", name(input, index), values.join(", ")))
}
