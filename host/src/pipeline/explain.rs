//! Stage `explain`: the explainer plugin summarises the result for a person.

use std::sync::{Arc, Mutex};

use serde_json::Value as Json;

use crate::plugins::bindings::explainer::exports::quarry::plugin::explainer::{Column, ExplainInput, Value};
use crate::llm::LlmClient;
use crate::plugins::capabilities::llm::{LlmBackend, LlmCapability};
use crate::plugins::sandbox::Grants;
use crate::plugins::{CallError, ExplainerPlugin};

use super::answer::{QueryResults, TokenUsage};

/// Rows handed to the explainer; it sees the row count, so it can say there were more.
pub const MAX_EXPLAIN_ROWS: usize = 200;

/// A summary and an optional chart suggestion.
#[derive(Debug, Clone, PartialEq)]
pub struct Explained {
    /// Plain-language summary.
    pub text: String,
    /// Chart suggestion, when the explainer made one and it is valid JSON.
    pub chart: Option<Json>,
}

/// Why explaining failed (the answer stands without an explanation).
#[derive(Debug, thiserror::Error)]
pub enum ExplainError {
    /// The plugin itself failed.
    #[error(transparent)]
    Plugin(#[from] CallError),
    /// The plugin declined, with its reason.
    #[error("the explainer declined: {0}")]
    Declined(String),
}

/// Explain `results` of `sql` for `question`. `grants` decides whether the explainer may ask an LLM.
pub async fn explain(
    explainer: &ExplainerPlugin,
    question: &str,
    sql: &str,
    results: &QueryResults,
    grants: Grants,
) -> Result<Explained, ExplainError> {
    let input = explain_input(question, sql, results);
    match explainer.explain(&input, grants).await? {
        Ok(e) => Ok(Explained { chart: e.chart.and_then(|c| serde_json::from_str(&c).ok()), text: e.text }),
        Err(e) => Err(ExplainError::Declined(e.message)),
    }
}

/// Grants for one explain call: completions through `llm` when there is one (an explainer
/// without an LLM is told so by the `llm` import), each call's tokens added to `usage` so the
/// answer counts them.
pub fn grants(llm: Option<&LlmClient>, usage: Arc<Mutex<TokenUsage>>) -> Grants {
    let Some(client) = llm.cloned() else { return Grants::default() };
    let backend: LlmBackend = Arc::new(move |req| {
        let client = client.clone();
        let usage = usage.clone();
        Box::pin(async move {
            let completion = client.complete(req).await.map_err(|e| e.to_provider_error())?;
            if let Some(u) = &completion.usage {
                // A poisoned lock only means another call panicked mid-update; the counts stand.
                let mut total = usage.lock().unwrap_or_else(|e| e.into_inner());
                total.input_tokens += u64::from(u.input_tokens);
                total.output_tokens += u64::from(u.output_tokens);
            }
            Ok(completion)
        })
    });
    Grants { llm: Some(LlmCapability::backed_by(backend)), ..Grants::default() }
}

/// The explainer's view of a result: typed cells, at most [`MAX_EXPLAIN_ROWS`] rows.
pub fn explain_input(question: &str, sql: &str, results: &QueryResults) -> ExplainInput {
    let columns: Vec<Column> = results
        .columns
        .iter()
        .enumerate()
        .map(|(i, name)| Column { name: name.clone(), type_name: results.column_types.get(i).cloned().unwrap_or_default() })
        .collect();
    let rows = results
        .rows
        .iter()
        .take(MAX_EXPLAIN_ROWS)
        .map(|row| row.iter().enumerate().map(|(i, v)| cell(v, columns.get(i).map(|c| c.type_name.as_str()).unwrap_or(""))).collect())
        .collect();
    ExplainInput {
        question: question.to_string(),
        sql: sql.to_string(),
        columns,
        rows,
        row_count: results.row_count as u64,
        truncated: results.truncated || results.rows.len() > MAX_EXPLAIN_ROWS,
        locale: None,
    }
}

/// One JSON cell as an explainer value; numeric text in a decimal column stays exact as `decimal`.
fn cell(v: &Json, type_name: &str) -> Value {
    match v {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Boolean(*b),
        Json::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => Value::Integer(i),
            (None, Some(f)) if n.is_f64() => Value::Float(f),
            _ => Value::Decimal(n.to_string()),
        },
        Json::String(s) if is_decimal_type(type_name) && s.parse::<f64>().is_ok() => Value::Decimal(s.clone()),
        Json::String(s) => Value::Text(s.clone()),
        other => Value::Json(other.to_string()),
    }
}

fn is_decimal_type(type_name: &str) -> bool {
    let t = type_name.to_ascii_lowercase();
    t.contains("numeric") || t.contains("decimal") || t == "money"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_keep_their_types_and_decimals_stay_exact() {
        assert!(matches!(cell(&Json::from(3), "int4"), Value::Integer(3)));
        assert!(matches!(cell(&Json::from(2.5), "float8"), Value::Float(f) if f == 2.5));
        assert!(matches!(cell(&Json::from("12345678901234567890.12"), "numeric"), Value::Decimal(ref s) if s == "12345678901234567890.12"));
        assert!(matches!(cell(&Json::from("12.5"), "text"), Value::Text(_)));
        assert!(matches!(cell(&serde_json::json!({"a": 1}), "jsonb"), Value::Json(ref s) if s == "{\"a\":1}"));
        assert!(matches!(cell(&Json::Null, "int4"), Value::Null));
    }

    #[test]
    fn large_results_are_cut_and_marked() {
        let results = QueryResults {
            columns: vec!["n".into()],
            column_types: vec!["int8".into()],
            rows: (0..500).map(|i| vec![Json::from(i)]).collect(),
            row_count: 500,
            truncated: false,
            execution_time_ms: 0,
        };
        let input = explain_input("q", "SELECT n", &results);
        assert_eq!(input.rows.len(), MAX_EXPLAIN_ROWS);
        assert_eq!(input.row_count, 500);
        assert!(input.truncated);
    }
}
