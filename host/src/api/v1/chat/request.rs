//! What `POST /api/v1/chat` and the follow-up routes take, and the checks beyond the JSON types
//! (a blank question, a row count out of range) that answer 422 naming the field.

use serde::Deserialize;
use serde_json::Value;

use crate::api::validation::{FieldError, Invalid};

/// Longest question accepted, in characters.
pub const MAX_MESSAGE_CHARS: usize = 10_000;
/// Most rows a client may ask for (the server's settings may cap it lower).
pub const MAX_ROWS: u64 = 10_000;

/// A question.
#[derive(Debug, Clone, Deserialize)]
pub struct ChatRequest {
    /// The saved connection to ask.
    pub connection_id: String,
    /// The conversation to continue; `null`, unknown or someone else's starts a new one.
    #[serde(default)]
    pub session_id: Option<String>,
    /// The question.
    pub message: String,
    /// A provider config id or a provider type; the newest active config when absent.
    #[serde(default)]
    pub provider: Option<String>,
    /// Knobs.
    #[serde(default)]
    pub options: ChatOptions,
}

/// The knobs of one question.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ChatOptions {
    /// Rows wanted at most (1–10000), capped by the server's maximum.
    #[serde(default)]
    pub max_rows: Option<u64>,
    /// Do not look in the answer cache.
    #[serde(default)]
    pub bypass_cache: bool,
    /// Do not look in the answer cache, and replace its entry with the new SQL.
    #[serde(default)]
    pub force_refresh: bool,
    /// Explain the result (default true).
    #[serde(default)]
    pub explain_results: Option<bool>,
    /// Show the SQL in the stream and the answer (default true).
    #[serde(default)]
    pub show_query: Option<bool>,
}

impl ChatRequest {
    /// The checks JSON types cannot express.
    pub fn check(&self) -> Result<(), Invalid> {
        let mut errors = Vec::new();
        let chars = self.message.chars().count();
        if self.message.trim().is_empty() {
            errors.push(field(
                "string_too_short",
                "message",
                "The question is empty",
                Value::from(self.message.clone()),
            ));
        } else if chars > MAX_MESSAGE_CHARS {
            errors.push(field(
                "string_too_long",
                "message",
                &format!("The question is longer than {MAX_MESSAGE_CHARS} characters"),
                Value::from(chars),
            ));
        }
        if self.connection_id.trim().is_empty() {
            errors.push(field("string_too_short", "connection_id", "The connection id is empty", Value::from("")));
        }
        if let Some(rows) = self.options.max_rows
            && !(1..=MAX_ROWS).contains(&rows)
        {
            errors.push(FieldError::new(
                "value_error",
                vec!["body".into(), "options".into(), "max_rows".into()],
                format!("Input should be between 1 and {MAX_ROWS}"),
                Value::from(rows),
            ));
        }
        if errors.is_empty() { Ok(()) } else { Err(Invalid(errors)) }
    }
}

/// SQL a user edited, to run instead of the generated query.
#[derive(Debug, Clone, Deserialize)]
pub struct EditRequest {
    /// The SQL to run.
    pub edited_query: String,
    /// Redundant with the path (kept for clients that send it).
    #[serde(default)]
    pub message_id: Option<String>,
}

impl EditRequest {
    /// A blank query is a 422.
    pub fn check(&self) -> Result<(), Invalid> {
        if self.edited_query.trim().is_empty() {
            return Err(Invalid(vec![field(
                "string_too_short",
                "edited_query",
                "The query is empty",
                Value::from(self.edited_query.clone()),
            )]));
        }
        Ok(())
    }
}

/// 👍 or 👎 on an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rating {
    /// The answer was right: the pair becomes a verified example.
    ThumbsUp,
    /// The answer was wrong: matching cache entries are evicted.
    ThumbsDown,
}

impl Rating {
    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Rating::ThumbsUp => "thumbs_up",
            Rating::ThumbsDown => "thumbs_down",
        }
    }
}

/// Feedback on an answer.
#[derive(Debug, Clone, Deserialize)]
pub struct FeedbackRequest {
    /// The rating.
    pub feedback: Rating,
    /// Redundant with the path.
    #[serde(default)]
    pub message_id: Option<String>,
}

/// A server-side re-sort of an answer's rows.
#[derive(Debug, Clone, Deserialize)]
pub struct SortRequest {
    /// One of the answer's result columns.
    pub sort_column: String,
    /// `ASC` or `DESC`.
    pub sort_order: SortOrder,
}

/// Which way to sort.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum SortOrder {
    /// Smallest first.
    #[serde(rename = "ASC", alias = "asc")]
    Asc,
    /// Largest first.
    #[serde(rename = "DESC", alias = "desc")]
    Desc,
}

impl SortOrder {
    /// As SQL spells it.
    pub fn as_sql(self) -> &'static str {
        match self {
            SortOrder::Asc => "ASC",
            SortOrder::Desc => "DESC",
        }
    }
}

fn field(kind: &str, name: &str, msg: &str, input: Value) -> FieldError {
    FieldError::new(kind, vec!["body".into(), name.into()], msg, input)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(message: &str, max_rows: Option<u64>) -> ChatRequest {
        ChatRequest {
            connection_id: "c".into(),
            session_id: None,
            message: message.into(),
            provider: None,
            options: ChatOptions { max_rows, ..ChatOptions::default() },
        }
    }

    #[test]
    fn blank_questions_and_rows_out_of_range_are_refused() {
        assert!(request("How many orders?", Some(100)).check().is_ok());
        let blank = request("   ", None).check().expect_err("blank");
        assert_eq!(blank.0[0].loc, vec![Value::from("body"), Value::from("message")]);
        let zero = request("q", Some(0)).check().expect_err("zero rows");
        assert_eq!(zero.0[0].loc.last(), Some(&Value::from("max_rows")));
        assert!(request("q", Some(MAX_ROWS + 1)).check().is_err());
        assert!(request(&"x".repeat(MAX_MESSAGE_CHARS + 1), None).check().is_err());
    }
}
