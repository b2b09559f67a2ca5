//! How an answer reads in a chat client (OpenWebUI, the OpenAI SDKs): pipeline progress inside
//! `<think>…</think>` (rendered as a collapsible section), then the query plan, the SQL in a
//! fenced block and the rows as a markdown table — the layout SQL Query Engine uses.

use md5::{Digest, Md5};
use serde_json::Value;

use crate::pipeline::answer::{Answer, AnswerStatus};
use crate::pipeline::progress::Progress;

/// Rows shown in the markdown table; the rest are counted, not printed.
pub const MAX_TABLE_ROWS: usize = 100;
/// Longest cell text shown.
const MAX_CELL_CHARS: usize = 200;

/// The session id for a conversation without `chat_id`: the first 16 hex digits of the MD5 of
/// its first user message, so every turn of one chat maps to the same session.
pub fn stable_chat_id<'a>(mut user_messages: impl Iterator<Item = &'a str>) -> Option<String> {
    let first = user_messages.next()?;
    let digest = Md5::digest(first.as_bytes());
    Some(hex::encode(digest)[..16].to_string())
}

/// The visible part of the reply (after the `<think>` section).
pub fn answer_markdown(answer: &Answer) -> String {
    if answer.status == AnswerStatus::Error {
        return format!(
            "**Error:** {}",
            answer
                .error
                .as_deref()
                .unwrap_or("the engine could not answer this question")
        );
    }
    let mut out = Vec::new();
    if let Some(plan) = &answer.description {
        out.push(format!("**Query plan:** {plan}"));
    }
    if let Some(sql) = &answer.sql {
        out.push(format!("```sql\n{sql}\n```"));
    }
    match &answer.results {
        Some(r) if r.row_count > 0 => {
            let more = if r.truncated {
                " (more rows exist; the result was capped)"
            } else {
                ""
            };
            out.push(format!(
                "**Results** — {} row(s) returned{more}:",
                r.row_count
            ));
            out.push(markdown_table(&r.columns, &r.rows));
        }
        Some(_) => out.push("**Query executed successfully but returned no rows.**".to_string()),
        None if answer.status == AnswerStatus::QueryOnly => {
            out.push("*Generated only; not executed.*".to_string())
        }
        None if answer.status == AnswerStatus::PendingApproval => {
            out.push("*Waiting for approval before it runs.*".to_string())
        }
        None => {}
    }
    if let Some(explanation) = &answer.explanation {
        out.push(explanation.clone());
    }
    out.join("\n\n")
}

/// The visible part of a reply whose question got no answer at all (an infrastructure failure).
pub fn error_markdown(error: &impl std::fmt::Display) -> String {
    format!("**Error:** {error}")
}

/// The line a progress report adds to the `<think>` section, if any. Stage messages, each
/// attempt's SQL and failed attempts are shown; the model's raw tokens (JSON being written) and
/// the final answer (shown after the section) are not.
pub fn progress_line(progress: &Progress) -> Option<String> {
    match progress {
        Progress::Stage { message, .. } => Some(format!("{}\n", message.trim_end())),
        Progress::Sql { attempt, sql } => {
            Some(format!("Attempt {attempt}:\n```sql\n{}\n```\n", sql.trim()))
        }
        Progress::AttemptFailed { attempt, reason } => {
            Some(format!("Attempt {attempt} failed: {}\n", reason.trim_end()))
        }
        Progress::Token(_) | Progress::Explanation(_) | Progress::Done(_) => None,
    }
}

/// A GitHub-flavoured markdown table of at most [`MAX_TABLE_ROWS`] rows.
pub fn markdown_table(columns: &[String], rows: &[Vec<Value>]) -> String {
    let mut lines = Vec::with_capacity(rows.len().min(MAX_TABLE_ROWS) + 3);
    lines.push(format!(
        "| {} |",
        columns
            .iter()
            .map(|c| cell_text(c))
            .collect::<Vec<_>>()
            .join(" | ")
    ));
    lines.push(format!(
        "| {} |",
        columns
            .iter()
            .map(|_| "---")
            .collect::<Vec<_>>()
            .join(" | ")
    ));
    for row in rows.iter().take(MAX_TABLE_ROWS) {
        let cells: Vec<String> = (0..columns.len())
            .map(|i| row.get(i).map(value_text).unwrap_or_default())
            .collect();
        lines.push(format!("| {} |", cells.join(" | ")));
    }
    if rows.len() > MAX_TABLE_ROWS {
        lines.push(format!(
            "\n… {} more row(s) not shown.",
            rows.len() - MAX_TABLE_ROWS
        ));
    }
    lines.join("\n")
}

fn value_text(v: &Value) -> String {
    match v {
        Value::Null => "NULL".to_string(),
        Value::String(s) => cell_text(s),
        other => cell_text(&other.to_string()),
    }
}

/// One line, pipes escaped, long text cut.
fn cell_text(s: &str) -> String {
    let mut t: String = s.chars().take(MAX_CELL_CHARS).collect();
    if s.chars().count() > MAX_CELL_CHARS {
        t.push('…');
    }
    t.replace('|', "\\|").replace(['\n', '\r'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::answer::{QueryResults, TokenUsage};

    fn answer(results: Option<QueryResults>, status: AnswerStatus) -> Answer {
        Answer {
            session_id: "s".into(),
            message_id: "m".into(),
            question: "q".into(),
            description: Some("Count orders".into()),
            sql: Some("SELECT count(*) AS n FROM orders".into()),
            dialect: "postgres".into(),
            status,
            results,
            explanation: None,
            chart: None,
            error: None,
            attempts: vec![],
            usage: TokenUsage::default(),
            timings_ms: Default::default(),
        }
    }

    #[test]
    fn chat_id_is_the_md5_prefix_of_the_first_user_message() {
        // md5("hello") = 5d41402abc4b2a76b9719d911017c592
        assert_eq!(
            stable_chat_id(["hello", "later"].into_iter()).as_deref(),
            Some("5d41402abc4b2a76")
        );
        assert_eq!(stable_chat_id(std::iter::empty()), None);
    }

    #[test]
    fn renders_plan_sql_and_table() {
        let r = QueryResults {
            columns: vec!["name".into(), "n".into()],
            column_types: vec!["text".into(), "int8".into()],
            rows: vec![
                vec![Value::from("a|b"), Value::from(3)],
                vec![Value::Null, Value::from(1.5)],
            ],
            row_count: 2,
            truncated: false,
            execution_time_ms: 1,
        };
        let md = answer_markdown(&answer(Some(r), AnswerStatus::Executed));
        assert!(
            md.starts_with(
                "**Query plan:** Count orders\n\n```sql\nSELECT count(*) AS n FROM orders\n```"
            ),
            "{md}"
        );
        assert!(md.contains("**Results** — 2 row(s) returned:"), "{md}");
        assert!(
            md.contains("| name | n |\n| --- | --- |\n| a\\|b | 3 |\n| NULL | 1.5 |"),
            "{md}"
        );
    }

    #[test]
    fn says_when_there_are_no_rows_or_an_error() {
        let empty = QueryResults {
            columns: vec!["n".into()],
            column_types: vec![],
            rows: vec![],
            row_count: 0,
            truncated: false,
            execution_time_ms: 0,
        };
        assert!(
            answer_markdown(&answer(Some(empty), AnswerStatus::Executed))
                .contains("returned no rows")
        );
        let mut failed = answer(None, AnswerStatus::Error);
        failed.error = Some("retries exhausted".into());
        assert_eq!(answer_markdown(&failed), "**Error:** retries exhausted");
    }

    #[test]
    fn progress_lines_skip_tokens() {
        use crate::pipeline::progress::Stage;
        let stage = Progress::Stage {
            stage: Stage::Schema,
            message: "Analyzing schema...".into(),
        };
        assert_eq!(
            progress_line(&stage).as_deref(),
            Some("Analyzing schema...\n")
        );
        let failed = Progress::AttemptFailed {
            attempt: 2,
            reason: "column \"x\" does not exist".into(),
        };
        assert_eq!(
            progress_line(&failed).as_deref(),
            Some("Attempt 2 failed: column \"x\" does not exist\n")
        );
        assert!(progress_line(&Progress::Token("{\"sql\":".into())).is_none());
        assert_eq!(error_markdown(&"boom"), "**Error:** boom");
    }

    #[test]
    fn long_tables_are_cut_with_a_note() {
        let rows: Vec<Vec<Value>> = (0..150).map(|i| vec![Value::from(i)]).collect();
        let table = markdown_table(&["i".into()], &rows);
        assert_eq!(
            table.lines().filter(|l| l.starts_with("| ")).count(),
            MAX_TABLE_ROWS + 2,
            "header, rule and the shown rows"
        );
        assert!(table.ends_with("… 50 more row(s) not shown."));
    }
}
