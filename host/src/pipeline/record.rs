//! Stage `record`, and its mirror image for the prompt: the session's turns in the metadata
//! store. The last few turns are read so follow-up questions make sense; each answer is written
//! as a new turn. The store is a convenience here, never a reason to lose an answer: failures are
//! logged and the question carries on.

use serde_json::Value;

use crate::store::{NewTurn, Store};

use super::answer::{Answer, QueryResults};
use super::prompt::PriorTurn;

/// Longest result summary kept with a turn (and shown to the model in later turns).
pub const MAX_SUMMARY_CHARS: usize = 300;

/// Rows described in a result summary.
const SUMMARY_ROWS: usize = 3;

/// The session's last `limit` turns, oldest first; none when the store fails (logged).
pub(crate) async fn history(store: &Store, session_id: &str, limit: u32) -> Vec<PriorTurn> {
    if limit == 0 {
        return Vec::new();
    }
    match store.recent_turns(session_id, limit as usize).await {
        Ok(turns) => turns
            .into_iter()
            .map(|t| PriorTurn { question: t.question, sql: t.sql, result_summary: t.result_summary })
            .collect(),
        Err(e) => {
            tracing::warn!(session = session_id, "could not read the session's earlier turns: {e}");
            Vec::new()
        }
    }
}

/// Write `answer` as the session's next turn and return the turn's id; `None` when the store
/// failed (logged).
pub(crate) async fn record(store: &Store, answer: &Answer) -> Option<String> {
    match store.append_turn(new_turn(answer)).await {
        Ok(turn) => Some(turn.id),
        Err(e) => {
            tracing::warn!(session = %answer.session_id, "could not record the turn: {e}");
            None
        }
    }
}

/// `answer` as a turn to record.
pub fn new_turn(answer: &Answer) -> NewTurn {
    NewTurn {
        session_id: answer.session_id.clone(),
        question: answer.question.clone(),
        description: answer.description.clone(),
        sql: answer.sql.clone(),
        dialect: Some(answer.dialect.clone()).filter(|d| !d.is_empty()),
        status: answer.status.as_str().to_string(),
        result_summary: answer.results.as_ref().map(summary),
        row_count: answer.results.as_ref().map(|r| i64::try_from(r.row_count).unwrap_or(i64::MAX)),
        error: answer.error.clone(),
        input_tokens: i64::try_from(answer.usage.input_tokens).unwrap_or(i64::MAX),
        output_tokens: i64::try_from(answer.usage.output_tokens).unwrap_or(i64::MAX),
        timings_ms: serde_json::to_value(&answer.timings_ms).unwrap_or(Value::Null),
        attempts: serde_json::to_value(&answer.attempts).unwrap_or(Value::Null),
    }
}

/// A short description of a result for later prompts: `3 rows: name=Ann, n=2; name=Bo, n=1; …`.
pub fn summary(results: &QueryResults) -> String {
    let n = results.row_count;
    let head = format!("{n} row{}{}", if n == 1 { "" } else { "s" }, if results.truncated { " (capped)" } else { "" });
    if results.rows.is_empty() {
        return head;
    }
    let rows: Vec<String> = results
        .rows
        .iter()
        .take(SUMMARY_ROWS)
        .map(|row| {
            results.columns.iter().zip(row).map(|(c, v)| format!("{c}={}", cell(v))).collect::<Vec<_>>().join(", ")
        })
        .collect();
    let more = if n > SUMMARY_ROWS { "; …" } else { "" };
    let text = format!("{head}: {}{more}", rows.join("; "));
    if text.chars().count() <= MAX_SUMMARY_CHARS {
        return text;
    }
    let mut cut: String = text.chars().take(MAX_SUMMARY_CHARS - 1).collect();
    cut.push('…');
    cut
}

fn cell(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn results(rows: Vec<Vec<Value>>) -> QueryResults {
        QueryResults {
            columns: vec!["name".into(), "n".into()],
            column_types: vec!["text".into(), "int".into()],
            row_count: rows.len(),
            rows,
            truncated: false,
            execution_time_ms: 1,
        }
    }

    #[test]
    fn summaries_are_short_and_name_the_columns() {
        assert_eq!(summary(&results(vec![])), "0 rows");
        assert_eq!(summary(&results(vec![vec![json!("Ann"), json!(2)]])), "1 row: name=Ann, n=2");
        let many = (0..5).map(|i| vec![json!(format!("p{i}")), json!(i)]).collect();
        assert_eq!(summary(&results(many)), "5 rows: name=p0, n=0; name=p1, n=1; name=p2, n=2; …");
        let long = summary(&results(vec![vec![json!("x".repeat(1000)), json!(1)]]));
        assert_eq!(long.chars().count(), MAX_SUMMARY_CHARS);
    }
}
