//! `/api/v1/export`: an answer's stored results as a file to download.
//!
//! `GET /export/messages/{message_id}/csv` gives the rows exactly as the client saw them (already
//! masked when they were stored; nothing runs again) as RFC 4180 CSV, header row first. A text
//! cell a spreadsheet would read as a formula (starting with `=`, `+`, `-`, `@`, a tab or a
//! carriage return) gets a leading `'`, so opening the file cannot run anything.
//!
//! Like the other follow-ups, only the asker (or an admin) may export an answer; anyone else's
//! answers 404, as if it did not exist.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::Value;

use crate::api::state::AppState;

use super::chat::followup::own_turn;
use super::error::{ApiError, ApiResult};
use super::extract::CurrentUser;

/// The export routes.
pub fn router() -> Router<Arc<AppState>> {
    Router::new().route("/export/messages/{message_id}/csv", get(message_csv))
}

/// `GET /export/messages/{message_id}/csv`: the answer's stored results as a CSV attachment;
/// 400 when it has none.
async fn message_csv(
    State(state): State<Arc<AppState>>,
    current: CurrentUser,
    Path(message_id): Path<String>,
) -> ApiResult<Response> {
    let product = state.product()?;
    let turn = own_turn(product, &current, &message_id).await?;
    let csv = turn
        .results
        .as_ref()
        .and_then(to_csv)
        .ok_or_else(|| ApiError::bad_request("This answer has no results to export"))?;
    // The id is a stored turn's UUID, so it is safe inside the quoted file name.
    let disposition = format!("attachment; filename=\"quarry-{}.csv\"", turn.turn.id);
    Ok(([(CONTENT_TYPE, "text/csv; charset=utf-8".to_string()), (CONTENT_DISPOSITION, disposition)], csv)
        .into_response())
}

/// A stored result (`{"columns": [...], "rows": [[...], ...]}`) as CSV: the column names, then
/// one line per row, lines ended by CRLF. `None` when it has no columns.
fn to_csv(results: &Value) -> Option<String> {
    let columns = results.get("columns")?.as_array().filter(|c| !c.is_empty())?;
    let mut out = String::new();
    write_line(&mut out, columns.iter());
    for row in results.get("rows").and_then(Value::as_array).into_iter().flatten() {
        write_line(&mut out, row.as_array().into_iter().flatten());
    }
    Some(out)
}

/// One CSV line of `cells`.
fn write_line<'a>(out: &mut String, cells: impl Iterator<Item = &'a Value>) {
    for (i, cell) in cells.enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&field(cell));
    }
    out.push_str("\r\n");
}

/// A value as one CSV field: NULL is empty, text is guarded against formulas, numbers and
/// booleans are written as they are, anything nested as its JSON; quoted when it must be.
fn field(value: &Value) -> String {
    let text = match value {
        Value::Null => return String::new(),
        Value::String(s) => defuse_formula(s),
        other => other.to_string(),
    };
    if text.contains([',', '"', '\r', '\n']) { format!("\"{}\"", text.replace('"', "\"\"")) } else { text }
}

/// Text a spreadsheet would evaluate as a formula, with a leading `'` so it stays text.
/// Numbers are never text here, so a negative number keeps its sign.
fn defuse_formula(text: &str) -> String {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) { format!("'{text}") } else { text.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fields_are_quoted_as_rfc_4180_says() {
        let results = json!({
            "columns": ["name", "note", "n"],
            "rows": [["Ann", "says \"hi\", twice", 3], [null, "two\nlines", -1.5], ["x", true, {"a": 1}]],
        });
        let csv = to_csv(&results).expect("csv");
        assert_eq!(
            csv,
            "name,note,n\r\nAnn,\"says \"\"hi\"\", twice\",3\r\n,\"two\nlines\",-1.5\r\nx,true,\"{\"\"a\"\":1}\"\r\n"
        );
    }

    #[test]
    fn text_that_looks_like_a_formula_stays_text() {
        let results = json!({ "columns": ["=cmd", "v"], "rows": [["=1+2", "+SUM(A1)"], ["-2", "@x"], ["ok", "a=b"]] });
        let csv = to_csv(&results).expect("csv");
        assert_eq!(csv, "'=cmd,v\r\n'=1+2,'+SUM(A1)\r\n'-2,'@x\r\nok,a=b\r\n");
    }

    #[test]
    fn no_columns_is_no_csv() {
        assert_eq!(to_csv(&json!({ "columns": [], "rows": [] })), None);
        assert_eq!(to_csv(&json!("rows")), None);
    }
}
