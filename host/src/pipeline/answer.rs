//! What the pipeline returns for one question: the SQL, the result, the explanation, and the
//! record of how it got there (attempts, tokens, per-stage timings).

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

/// How a question ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AnswerStatus {
    /// The query ran; `results` holds its rows.
    Executed,
    /// Served from the answer cache.
    Cached,
    /// Generated and validated, waiting for someone allowed to approve it.
    PendingApproval,
    /// Generated and validated only (generation-only routes and mode).
    QueryOnly,
    /// No usable answer; `error` says why.
    Error,
}

impl AnswerStatus {
    /// The status as the API spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            AnswerStatus::Executed => "executed",
            AnswerStatus::Cached => "cached",
            AnswerStatus::PendingApproval => "pending_approval",
            AnswerStatus::QueryOnly => "query_only",
            AnswerStatus::Error => "error",
        }
    }
}

/// Rows a query returned.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QueryResults {
    /// Column names, in order.
    pub columns: Vec<String>,
    /// The database's type name of each column.
    pub column_types: Vec<String>,
    /// The rows (at most the row cap), each a value per column.
    pub rows: Vec<Vec<Value>>,
    /// Rows returned (equal to `rows.len()`).
    pub row_count: usize,
    /// Whether the row cap cut the result.
    pub truncated: bool,
    /// Time the database took.
    pub execution_time_ms: u64,
}

impl QueryResults {
    /// The rows as objects keyed by column name (SQL Query Engine's `results` shape).
    pub fn as_objects(&self) -> Vec<serde_json::Map<String, Value>> {
        self.rows
            .iter()
            .map(|row| self.columns.iter().cloned().zip(row.iter().cloned()).collect())
            .collect()
    }
}

/// One try at answering: the SQL and what became of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Attempt {
    /// 1 for the first try.
    pub number: u32,
    /// The SQL tried, if the model produced any.
    pub sql: Option<String>,
    /// `ok`, `refused`, `database-error`, `empty`, `no-sql`, `provider-error`.
    pub outcome: String,
    /// The error or violations, when it failed.
    pub detail: Option<String>,
}

/// Tokens used across every LLM call of one question.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct TokenUsage {
    /// Prompt tokens.
    pub input_tokens: u64,
    /// Generated tokens.
    pub output_tokens: u64,
}

impl TokenUsage {
    /// Both counts added.
    pub fn total(&self) -> u64 {
        self.input_tokens + self.output_tokens
    }
}

/// The pipeline's answer to one question.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Answer {
    /// The session (chat) the turn belongs to.
    pub session_id: String,
    /// The recorded turn's id.
    pub message_id: String,
    /// The question as asked.
    pub question: String,
    /// The model's one-line plan for the query.
    pub description: Option<String>,
    /// The final SQL (validated, with the row limit applied).
    pub sql: Option<String>,
    /// The dialect plugin that validated it.
    pub dialect: String,
    /// How it ended.
    pub status: AnswerStatus,
    /// The rows, when it ran.
    pub results: Option<QueryResults>,
    /// A plain-language summary of the result.
    pub explanation: Option<String>,
    /// A chart suggestion (JSON), when the explainer made one.
    pub chart: Option<Value>,
    /// Why it failed, when it did.
    pub error: Option<String>,
    /// Every attempt, in order.
    pub attempts: Vec<Attempt>,
    /// Tokens used.
    pub usage: TokenUsage,
    /// Milliseconds per stage (`schema`, `generate`, `validate`, `execute`, `explain`, …).
    pub timings_ms: BTreeMap<String, u64>,
}

impl Answer {
    /// SQL Query Engine's `currentObservation` sentence for this answer.
    pub fn observation(&self) -> String {
        match (&self.results, &self.error) {
            (Some(r), _) => format!("Query executed successfully and returned {} rows.", r.row_count),
            (None, Some(e)) => e.clone(),
            (None, None) => "Query generated; not executed.".to_string(),
        }
    }
}
