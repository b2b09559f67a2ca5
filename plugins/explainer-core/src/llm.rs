//! The `llm-summary` explainer: a compact prompt built from the result, one completion through
//! the host's `llm` import, and the deterministic summary whenever the LLM cannot answer.
//!
//! The prompt is capped (at most [`MAX_PROMPT_ROWS`] rows, [`MAX_CELL_CHARS`] characters per
//! cell, [`MAX_PROMPT_BYTES`] bytes over all messages) so a huge result costs the same few
//! tokens as a small one. It also carries the deterministic summary's sentences as checked facts,
//! so the model can quote totals over rows it does not see instead of inventing them. The chart
//! suggestion always comes from the deterministic code: it must name real columns.

use crate::analyze::{self, Analysis};
use crate::bindings::exports::quarry::plugin::explainer::{ExplainInput, Explanation, Value};
use crate::bindings::quarry::plugin::log::{Level, log};
use crate::bindings::quarry::plugin::types::{ChatMessage, Completion, CompletionRequest, ProviderError, Role};
use crate::{chart, format, summary};

/// Rows of the result shown to the model.
pub const MAX_PROMPT_ROWS: usize = 20;
/// Longest cell shown to the model, in characters.
pub const MAX_CELL_CHARS: usize = 80;
/// Cap on the bytes of all messages together.
pub const MAX_PROMPT_BYTES: usize = 8 * 1024;
/// Columns shown to the model; a summary of 2-4 sentences cannot use more.
const MAX_PROMPT_COLUMNS: usize = 30;
/// Per-section caps, in bytes, so one long part cannot crowd out the rows.
const MAX_QUESTION_BYTES: usize = 600;
const MAX_LOCALE_BYTES: usize = 35;
const MAX_SQL_BYTES: usize = 1500;
const MAX_COLUMNS_BYTES: usize = 1200;
const MAX_FACTS_BYTES: usize = 1200;
/// Room kept for the table's title line.
const TABLE_TITLE_RESERVE: usize = 100;
/// Tokens the model may write: 2-4 sentences, with room for wordier languages.
const MAX_ANSWER_TOKENS: u32 = 400;
/// Low temperature: the answer should restate the data, not be creative about it.
const TEMPERATURE: f32 = 0.2;
/// Cap on the text returned, in bytes, should a model ignore the length it was asked for.
const MAX_ANSWER_BYTES: usize = 4000;
/// Longest reason for falling back, in bytes (it goes to the host's log).
const MAX_REASON_BYTES: usize = 200;

/// What the model is told before the result.
pub const SYSTEM_PROMPT: &str = "You explain the result of a database query to a non-technical reader. \
Write 2 to 4 short sentences of plain text that answer the question from the result. \
Use only numbers that appear in the result or in the facts given; never invent, estimate or extrapolate numbers. \
If no rows matched, say so. If only the first rows are shown, do not describe rows you cannot see. \
Do not mention SQL, and do not use markdown, lists or headings. \
Answer in the same language as the question.";

/// An explanation from [`explain_with`], and why the deterministic summary stood in, if it did.
#[derive(Debug, Clone)]
pub struct LlmExplanation {
    /// The text for the user and the chart suggestion.
    pub explanation: Explanation,
    /// `Some(reason)` when the LLM failed or said nothing and the deterministic summary was used.
    pub fallback_reason: Option<String>,
}

/// The completion request for `input`: a system message and one user message, within the caps.
pub fn request(input: &ExplainInput) -> CompletionRequest {
    request_with(input, &Analysis::new(input))
}

/// Explain `input` with one call to `complete`; fall back to [`crate::summarize`] when it
/// fails or returns only whitespace.
pub fn explain_with<F>(input: &ExplainInput, complete: F) -> LlmExplanation
where
    F: FnOnce(&CompletionRequest) -> Result<Completion, ProviderError>,
{
    let analysis = Analysis::new(input);
    let reason = match complete(&request_with(input, &analysis)) {
        Ok(completion) => {
            let text = completion.text.trim();
            if !text.is_empty() {
                let explanation = Explanation {
                    text: format::truncate_bytes(text, MAX_ANSWER_BYTES),
                    chart: chart::suggest(input, &analysis),
                };
                return LlmExplanation { explanation, fallback_reason: None };
            }
            "the LLM returned no text".to_string()
        }
        Err(e) => format::truncate_bytes(&describe(&e), MAX_REASON_BYTES),
    };
    LlmExplanation { explanation: summary::summarize_with(input, &analysis), fallback_reason: Some(reason) }
}

/// [`explain_with`] through the host's `llm` import, logging a fallback. Only meaningful inside
/// the component: natively the import does not exist.
pub fn explain_via_host(input: &ExplainInput) -> Explanation {
    let out = explain_with(input, crate::bindings::quarry::plugin::llm::complete);
    if let Some(reason) = &out.fallback_reason {
        log(Level::Warn, &format!("LLM unavailable ({reason}); answering with the deterministic summary"));
    }
    out.explanation
}

/// A provider error in a few words, for the log.
fn describe(e: &ProviderError) -> String {
    match e {
        ProviderError::BadCredentials(m) => format!("bad credentials: {m}"),
        ProviderError::ModelNotFound(m) => format!("model not found: {m}"),
        ProviderError::RateLimited(_) => "rate limited".into(),
        ProviderError::ContextTooLong(m) => format!("context too long: {m}"),
        ProviderError::Upstream((status, m)) => format!("upstream error {status}: {m}"),
        ProviderError::Timeout => "timed out".into(),
        ProviderError::MalformedResponse(m) => format!("malformed response: {m}"),
        ProviderError::Denied(m) => format!("denied: {m}"),
        ProviderError::Cancelled => "cancelled".into(),
        ProviderError::Internal(m) => format!("provider bug: {m}"),
    }
}

fn request_with(input: &ExplainInput, analysis: &Analysis) -> CompletionRequest {
    let budget = MAX_PROMPT_BYTES.saturating_sub(SYSTEM_PROMPT.len());
    let mut user = String::new();
    user.push_str(&format!("Question: {}\n", capped(&input.question, MAX_QUESTION_BYTES)));
    if let Some(locale) = input.locale.as_deref().map(|l| capped(l, MAX_LOCALE_BYTES)).filter(|l| !l.is_empty()) {
        user.push_str(&format!("Reader's locale: {locale}\n"));
    }
    user.push_str(&format!("SQL: {}\n", capped(&input.sql, MAX_SQL_BYTES)));
    user.push_str(&format!("Columns: {}\n", format::truncate_bytes(&columns_line(input), MAX_COLUMNS_BYTES)));
    let total = input.row_count.max(input.rows.len() as u64);
    let shown = input.rows.len() as u64;
    if shown < total || input.truncated {
        user.push_str(&format!(
            "Rows: {} in total, of which only the first {} were passed on.\n",
            format::count(total),
            format::count(shown)
        ));
    } else {
        user.push_str(&format!("Rows: {}.\n", format::count(total)));
    }
    let facts = summary::facts(input, analysis).join(" ");
    user.push_str(&format!("Facts computed exactly from those rows: {}\n", format::truncate_bytes(&facts, MAX_FACTS_BYTES)));
    push_table(&mut user, input, budget);
    CompletionRequest {
        messages: vec![
            ChatMessage { role: Role::System, content: SYSTEM_PROMPT.to_string() },
            ChatMessage { role: Role::User, content: format::truncate_bytes(&user, budget) },
        ],
        max_tokens: Some(MAX_ANSWER_TOKENS),
        temperature: Some(TEMPERATURE),
        json_mode: false,
        stop: Vec::new(),
        extra: None,
    }
}

/// Text on one line (whitespace collapsed, control characters gone) within `max_bytes`.
fn capped(text: &str, max_bytes: usize) -> String {
    format::truncate_bytes(&format::clean_text(text, max_bytes), max_bytes)
}

/// `region (text), revenue (numeric)`, then how many more columns there are.
fn columns_line(input: &ExplainInput) -> String {
    let mut parts: Vec<String> = input
        .columns
        .iter()
        .take(MAX_PROMPT_COLUMNS)
        .map(|c| format!("{} ({})", format::clean_text(&c.name, 40), format::clean_text(&c.type_name, 20)))
        .collect();
    if input.columns.len() > MAX_PROMPT_COLUMNS {
        parts.push(format!("and {} more not shown", input.columns.len() - MAX_PROMPT_COLUMNS));
    }
    if parts.is_empty() { "none".into() } else { parts.join(", ") }
}

/// Append the first rows as CSV, as many as fit in `budget` (up to [`MAX_PROMPT_ROWS`]).
fn push_table(user: &mut String, input: &ExplainInput, budget: usize) {
    let ncols = input.columns.len().min(MAX_PROMPT_COLUMNS);
    if ncols == 0 || input.rows.is_empty() {
        return;
    }
    let header = csv_line(input.columns.iter().take(ncols).map(|c| format::clean_text(&c.name, MAX_CELL_CHARS)));
    let mut table = format!("{header}\n");
    let mut rows = 0usize;
    for row in input.rows.iter().take(MAX_PROMPT_ROWS) {
        let line = csv_line((0..ncols).map(|i| prompt_cell(analyze::cell(row, i))));
        if user.len() + TABLE_TITLE_RESERVE + table.len() + line.len() + 1 > budget {
            break;
        }
        table.push_str(&line);
        table.push('\n');
        rows += 1;
    }
    if rows == 0 {
        return;
    }
    let which = if rows == input.rows.len() && !input.truncated { "All" } else { "The first" };
    user.push_str(&format!("{which} {rows} rows as CSV (long cells cut, NULL = no value):\n{table}"));
}

/// One CSV line, quoting cells that hold a comma or a quote.
fn csv_line(cells: impl Iterator<Item = String>) -> String {
    cells
        .map(|c| if c.contains([',', '"']) { format!("\"{}\"", c.replace('"', "\"\"")) } else { c })
        .collect::<Vec<_>>()
        .join(",")
}

/// A cell as the model should read it: numbers unformatted (but never as hundreds of digits),
/// text on one line and cut at [`MAX_CELL_CHARS`].
fn prompt_cell(v: &Value) -> String {
    let owned: String;
    let text: &str = match v {
        Value::Null => "NULL",
        Value::Boolean(b) => if *b { "true" } else { "false" },
        Value::Integer(n) => {
            owned = n.to_string();
            &owned
        }
        // `{}` would print 1e300 as 301 digits, which the cell cap would then cut into a lie.
        Value::Float(x) if x.is_finite() && x.abs() != 0.0 && !(1e-6..1e15).contains(&x.abs()) => {
            owned = format!("{x:e}");
            &owned
        }
        Value::Float(x) => {
            owned = prompt_float(*x);
            &owned
        }
        Value::Decimal(t) if t.trim().len() > MAX_CELL_CHARS => match t.trim().parse::<f64>() {
            Ok(x) => {
                owned = format!("{x:e}");
                &owned
            }
            Err(_) => t,
        },
        Value::Decimal(t) | Value::Text(t) | Value::Json(t) => t,
        Value::Bytes(b) => {
            owned = format!("<{} bytes of binary data>", b.len());
            &owned
        }
    };
    format::clean_text(text, MAX_CELL_CHARS)
}

/// A float with 10 significant digits, so `0.1 + 0.2` reads `0.3`, not `0.30000000000000004`.
/// Only called for zero, non-finite values and magnitudes in `1e-6..1e15`.
fn prompt_float(x: f64) -> String {
    if !x.is_finite() || x == 0.0 {
        return x.to_string();
    }
    let magnitude = x.abs().log10().floor() as i32;
    let decimals = (9 - magnitude).clamp(0, 16) as usize;
    let text = format!("{x:.decimals$}");
    if text.contains('.') { text.trim_end_matches('0').trim_end_matches('.').to_string() } else { text }
}
