//! The SSE protocol of `POST /api/v1/chat`: one `data: <json>` frame per event, the JSON's `type`
//! saying what it is — `status` per stage, `token` deltas, `sql` (again whenever repair changes
//! it), `row_batch` (50 rows each), `explanation`, `error`, and `done` carrying the whole
//! [`ChatResponse`]. `error` is always followed by `done`; `done` is always last.
//!
//! The same frames are published to the session's watchers (`GET
//! /api/v1/chat/sessions/{id}/events`, on any replica), each turn opened by a `message_started`
//! frame; a watcher's stream starts with `watching`.

use std::collections::BTreeMap;

use axum::response::sse::Event;
use serde::Serialize;
use serde_json::{Value, json};

use crate::pipeline::answer::{Answer, AnswerStatus, QueryResults};

/// Rows per `row_batch` event.
pub const ROWS_PER_BATCH: usize = 50;

/// The full answer, as `done` carries it and execute/edit return it.
#[derive(Debug, Clone, Serialize)]
pub struct ChatResponse {
    /// The conversation ("" when the failure came before it existed).
    pub session_id: String,
    /// The answer's message id: what approval, edit and feedback take.
    pub message_id: String,
    /// The SQL (null when hidden by `show_query: false` or none was produced).
    pub query: Option<String>,
    /// `PostgreSQL`, `MySQL` or `SQLite`.
    pub query_dialect: Option<String>,
    /// What the result says, for people.
    pub explanation: Option<String>,
    /// The rows (masked), when the query ran.
    pub results: Option<QueryResults>,
    /// Time the database took.
    pub execution_time_ms: Option<u64>,
    /// `executed | cached | pending_approval | query_only | error`.
    pub status: &'static str,
    /// Whether the SQL came from the answer cache.
    pub cache_hit: bool,
    /// Why it failed.
    pub error: Option<String>,
    /// Tokens used, in and out.
    pub token_count: u64,
    /// Prompt tokens.
    pub input_tokens: u64,
    /// Completion tokens.
    pub output_tokens: u64,
    /// Milliseconds per pipeline stage, and `total`.
    pub stage_timings_ms: BTreeMap<String, u64>,
}

impl ChatResponse {
    /// The response for `answer`, recorded as `message_id`, shown in `dialect`.
    pub fn of(answer: &Answer, message_id: &str, dialect: &str, show_query: bool) -> Self {
        let tokens = answer.usage.input_tokens + answer.usage.output_tokens;
        Self {
            session_id: answer.session_id.clone(),
            message_id: message_id.to_string(),
            query: answer.sql.clone().filter(|_| show_query),
            query_dialect: Some(dialect.to_string()),
            explanation: answer.explanation.clone().or_else(|| answer.description.clone()),
            execution_time_ms: answer.results.as_ref().map(|r| r.execution_time_ms),
            results: answer.results.clone(),
            status: answer.status.as_str(),
            cache_hit: answer.status == AnswerStatus::Cached,
            error: answer.error.clone(),
            token_count: tokens,
            input_tokens: answer.usage.input_tokens,
            output_tokens: answer.usage.output_tokens,
            stage_timings_ms: answer.timings_ms.clone(),
        }
    }

    /// A failure before any answer existed.
    pub fn failed(session_id: &str, error: String) -> Self {
        Self {
            session_id: session_id.to_string(),
            message_id: String::new(),
            query: None,
            query_dialect: None,
            explanation: None,
            results: None,
            execution_time_ms: None,
            status: AnswerStatus::Error.as_str(),
            cache_hit: false,
            error: Some(error),
            token_count: 0,
            input_tokens: 0,
            output_tokens: 0,
            stage_timings_ms: BTreeMap::new(),
        }
    }
}

/// One frame: the JSON an SSE `data:` line carries, with its `type`.
#[derive(Debug, Clone)]
pub struct Frame(String);

impl Frame {
    /// `{"type": kind, ...fields}`.
    fn new(kind: &str, mut fields: Value) -> Self {
        if let Value::Object(map) = &mut fields {
            map.insert("type".into(), Value::from(kind));
        }
        Self(fields.to_string())
    }

    /// The JSON text.
    pub fn json(&self) -> &str {
        &self.0
    }

    /// The SSE event carrying it.
    pub fn into_event(self) -> Event {
        Event::default().data(self.0)
    }
}

/// A stage started.
pub fn status(stage: &str, message: &str) -> Frame {
    Frame::new("status", json!({ "stage": stage, "message": message }))
}

/// A piece of the model's answer.
pub fn token(text: &str) -> Frame {
    Frame::new("token", json!({ "text": text }))
}

/// The SQL that will run (again whenever repair changes it).
pub fn sql(query: &str, dialect: &str) -> Frame {
    Frame::new("sql", json!({ "query": query, "dialect": dialect }))
}

/// The result's rows, [`ROWS_PER_BATCH`] per event.
pub fn row_batches(results: &QueryResults) -> Vec<Frame> {
    let chunks: Vec<&[Vec<Value>]> =
        if results.rows.is_empty() { vec![&[]] } else { results.rows.chunks(ROWS_PER_BATCH).collect() };
    chunks
        .into_iter()
        .enumerate()
        .map(|(index, rows)| {
            Frame::new(
                "row_batch",
                json!({
                    "batch_index": index,
                    "columns": results.columns,
                    "column_types": results.column_types,
                    "rows": rows,
                    "truncated": results.truncated,
                }),
            )
        })
        .collect()
}

/// The explanation.
pub fn explanation(text: &str) -> Frame {
    Frame::new("explanation", json!({ "text": text }))
}

/// A failure (a `done` follows).
pub fn error(message: &str) -> Frame {
    Frame::new("error", json!({ "message": message }))
}

/// The end: the whole answer.
pub fn done(response: &ChatResponse) -> Frame {
    Frame::new("done", serde_json::to_value(response).unwrap_or_else(|_| json!({})))
}

/// For watchers only: a turn began in `session_id` with `question` on `connection_id`.
pub fn message_started(session_id: &str, connection_id: &str, question: &str) -> Frame {
    Frame::new(
        "message_started",
        json!({ "session_id": session_id, "connection_id": connection_id, "question": question }),
    )
}

/// A watcher's first frame: it follows `session_id` from now on, turns run on other replicas
/// included when `across_replicas` (false: this server's turns only, Redis being absent or down).
pub fn watching(session_id: &str, across_replicas: bool) -> Frame {
    Frame::new("watching", json!({ "session_id": session_id, "across_replicas": across_replicas }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn results(n: usize) -> QueryResults {
        QueryResults {
            columns: vec!["n".into()],
            column_types: vec!["INTEGER".into()],
            rows: (0..n).map(|i| vec![json!(i)]).collect(),
            row_count: n,
            truncated: false,
            execution_time_ms: 1,
        }
    }

    #[test]
    fn rows_come_in_batches_of_fifty_and_an_empty_result_in_one() {
        assert_eq!(row_batches(&results(120)).len(), 3);
        assert_eq!(row_batches(&results(50)).len(), 1);
        assert_eq!(row_batches(&results(0)).len(), 1);
    }
}
