//! What follows an answer: running a held query (`execute`), running edited SQL (`edit`),
//! re-sorting its rows on the server (`sort`), and feedback (`feedback`, `retract`).
//!
//! Held and edited SQL is never trusted: it goes through the pipeline's evaluation (the dialect
//! plugin validates it again, the connection's row filter and masking apply, it runs read-only)
//! with no repair. A held query is claimed before it runs, so it runs once however many approvers
//! click. An edit by someone who may not approve, on a `review_first` connection, replaces the held
//! query instead of running it; on `generate_only` an edit is only validated. A sort runs the
//! answer's SQL wrapped in an `ORDER BY` on one of its result columns, through the same evaluation,
//! and leaves the stored answer as it was.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::api::state::AppState;
use crate::auth::Role;
use crate::pipeline::answer::{Answer, AnswerStatus, QueryResults};
use crate::pipeline::progress::ProgressSink;
use crate::schema::REDACTED;
use crate::store::chat::{ChatTurn, TurnUpdate};

use super::context::{self, ConnectionContext, ExecutionMode};
use super::events::ChatResponse;
use super::request::{EditRequest, FeedbackRequest, Rating, SortOrder, SortRequest};
use crate::api::v1::error::{ApiError, ApiResult};
use crate::api::v1::extract::{AdminUser, Body, CurrentUser};
use crate::api::v1::state::Product;

/// `POST /chat/execute/{message_id}`: run a `pending_approval` query once (admins).
pub(super) async fn execute(
    State(state): State<Arc<AppState>>,
    AdminUser(admin): AdminUser,
    Path(message_id): Path<String>,
) -> ApiResult<Json<ChatResponse>> {
    let product = state.product()?;
    let turn = own_turn(product, &admin, &message_id).await?;
    if turn.turn.status != AnswerStatus::PendingApproval.as_str() {
        return Err(ApiError::bad_request(format!(
            "This answer is not waiting for approval (its status is {})",
            turn.turn.status
        )));
    }
    let sql = turn.turn.sql.clone().ok_or_else(|| ApiError::bad_request("This answer has no query to run"))?;
    let connection = context::for_turn(product, &turn).await?;
    if !product.store.claim_held_turn(&message_id).await? {
        return Err(ApiError::conflict("This query has already been run or is running"));
    }
    match run_sql(product, &connection, &turn, sql).await {
        Ok(answer) => {
            save_outcome(product, &message_id, &answer, Some(admin.user.id.clone())).await?;
            Ok(Json(ChatResponse::of(&answer, &message_id, connection.dialect_label, true)))
        }
        Err(e) => {
            // Nothing ran: put it back so it can be approved again.
            let back = TurnUpdate {
                sql: turn.turn.sql.clone(),
                status: AnswerStatus::PendingApproval.as_str().into(),
                results: None,
                row_count: None,
                error: None,
                approved_by: None,
            };
            product.store.finish_turn(&message_id, &back).await?;
            Err(e)
        }
    }
}

/// `POST /chat/edit/{message_id}`: edited SQL, fully validated, then run (or held / only checked,
/// as the connection's mode and the user's role decide).
pub(super) async fn edit(
    State(state): State<Arc<AppState>>,
    current: CurrentUser,
    Path(message_id): Path<String>,
    Body(request): Body<EditRequest>,
) -> ApiResult<Response> {
    if let Err(invalid) = request.check() {
        return Ok(invalid.into_response());
    }
    let product = state.product()?;
    let turn = own_turn(product, &current, &message_id).await?;
    let connection = context::for_turn(product, &turn).await?;
    let sql = request.edited_query.trim().to_string();
    let may_run = match connection.mode {
        ExecutionMode::AutoExecute => true,
        ExecutionMode::ReviewFirst => current.user.role == Role::Admin,
        ExecutionMode::GenerateOnly => false,
    };
    if !may_run {
        let held = match connection.mode {
            ExecutionMode::GenerateOnly => AnswerStatus::QueryOnly,
            _ => AnswerStatus::PendingApproval,
        };
        let checked = context::validate_only(product, &connection, &sql).await?;
        let (status, error) = match &checked {
            Ok(_) => (held, None),
            Err(violations) => (AnswerStatus::Error, Some(violations.clone())),
        };
        let update = TurnUpdate {
            sql: Some(checked.unwrap_or(sql)),
            status: status.as_str().into(),
            results: None,
            row_count: None,
            error: error.clone(),
            approved_by: None,
        };
        product.store.finish_turn(&message_id, &update).await?;
        let mut response = ChatResponse::failed(&turn.turn.session_id, String::new());
        response.message_id = message_id;
        response.query = update.sql;
        response.query_dialect = Some(connection.dialect_label.to_string());
        response.status = status.as_str();
        response.error = error;
        return Ok(Json(response).into_response());
    }
    let answer = run_sql(product, &connection, &turn, sql).await?;
    save_outcome(product, &message_id, &answer, None).await?;
    Ok(Json(ChatResponse::of(&answer, &message_id, connection.dialect_label, true)).into_response())
}

/// `POST /chat/feedback/{message_id}`: 👍 adds the question and its SQL to the verified examples,
/// 👎 evicts the cache entries that would give this answer again.
pub(super) async fn feedback(
    State(state): State<Arc<AppState>>,
    current: CurrentUser,
    Path(message_id): Path<String>,
    Body(request): Body<FeedbackRequest>,
) -> ApiResult<StatusCode> {
    let product = state.product()?;
    let turn = own_turn(product, &current, &message_id).await?;
    let connection = context::for_turn(product, &turn).await?;
    match request.feedback {
        Rating::ThumbsUp => {
            let sql = turn.turn.sql.as_deref().filter(|_| succeeded(&turn)).ok_or_else(|| {
                ApiError::bad_request("Only an answer whose query ran (or was validated) can become an example")
            })?;
            context::remember_example(product, &connection, &turn.turn.question, sql).await?;
        }
        Rating::ThumbsDown => context::forget_answer(product, &connection, &turn.turn.question).await?,
    }
    product.store.set_feedback(&message_id, Some(request.feedback.as_str())).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /chat/feedback/{message_id}`: take a rating back (a 👍 example is removed; evicted
/// cache entries stay evicted).
pub(super) async fn retract(
    State(state): State<Arc<AppState>>,
    current: CurrentUser,
    Path(message_id): Path<String>,
) -> ApiResult<StatusCode> {
    let product = state.product()?;
    let turn = own_turn(product, &current, &message_id).await?;
    if turn.feedback.is_none() {
        return Err(ApiError::bad_request("This answer has no feedback to take back"));
    }
    if turn.feedback.as_deref() == Some(Rating::ThumbsUp.as_str())
        && let Some(sql) = turn.turn.sql.as_deref()
    {
        let connection = context::for_turn(product, &turn).await?;
        context::drop_example(product, &connection, &turn.turn.question, sql).await?;
    }
    product.store.set_feedback(&message_id, None).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Whether the turn's SQL was accepted (ran, came from the cache, or was validated and held).
fn succeeded(turn: &ChatTurn) -> bool {
    ["executed", "cached", "pending_approval", "query_only"].contains(&turn.turn.status.as_str())
}

/// The answer `message_id` if `current` may act on it (their own session, or an admin); 404 else.
pub(in crate::api::v1) async fn own_turn(
    product: &Product,
    current: &CurrentUser,
    message_id: &str,
) -> Result<ChatTurn, ApiError> {
    let not_found = || ApiError::not_found("Message not found");
    let turn = product.store.chat_turn(message_id).await?.ok_or_else(not_found)?;
    let owner = turn.user_id.as_deref() == Some(current.user.id.as_str());
    if turn.user_id.is_none() || !(owner || current.user.role == Role::Admin) {
        return Err(not_found());
    }
    Ok(turn)
}

/// Run `sql` through evaluation (validated again, filtered, masked, read-only, no repair).
async fn run_sql(
    product: &Product,
    connection: &ConnectionContext,
    turn: &ChatTurn,
    sql: String,
) -> Result<Answer, ApiError> {
    let question = context::followup_question(connection, &turn.turn.session_id, &turn.turn.question);
    product.engine.evaluate(question, sql, None, ProgressSink::none()).await.map_err(context::engine_error)
}

/// Write how a held or edited query ended back on its turn.
async fn save_outcome(
    product: &Product,
    message_id: &str,
    answer: &Answer,
    approved_by: Option<String>,
) -> Result<(), ApiError> {
    let update = TurnUpdate {
        sql: answer.sql.clone(),
        status: answer.status.as_str().into(),
        results: answer.results.as_ref().and_then(|r| serde_json::to_value(r).ok()),
        row_count: answer.results.as_ref().map(|r| i64::try_from(r.row_count).unwrap_or(i64::MAX)),
        error: answer.error.clone(),
        approved_by,
    };
    product.store.finish_turn(message_id, &update).await?;
    Ok(())
}

/// Alias of the wrapped query in a sort (never seen by the client).
const SORT_ALIAS: &str = "_quarry_sort";

/// `POST /chat/sort/{message_id}`: the answer's SQL run again, ordered by one of its result
/// columns (validated again, filtered, masked); the stored answer does not change.
pub(super) async fn sort(
    State(state): State<Arc<AppState>>,
    current: CurrentUser,
    Path(message_id): Path<String>,
    Body(request): Body<SortRequest>,
) -> ApiResult<Json<QueryResults>> {
    let product = state.product()?;
    let turn = own_turn(product, &current, &message_id).await?;
    let no_results = || ApiError::bad_request("This answer has no results to sort");
    let sql = turn.turn.sql.as_deref().ok_or_else(no_results)?;
    let columns = stored_columns(turn.results.as_ref()).ok_or_else(no_results)?;
    if !columns.contains(&request.sort_column.as_str()) {
        return Err(ApiError::bad_request(format!(
            "{:?} is not a column of this answer's results",
            request.sort_column
        )));
    }
    if masked_column(turn.results.as_ref(), &request.sort_column) {
        // The order of hidden values would tell something about them.
        return Err(ApiError::bad_request(format!(
            "{:?} is masked in this answer and cannot be sorted by",
            request.sort_column
        )));
    }
    let connection = context::for_turn(product, &turn).await?;
    let sorted = sorted_sql(sql, &request.sort_column, request.sort_order, connection.dialect);
    let answer = run_sql(product, &connection, &turn, sorted).await?;
    // Refused by the dialect plugin or failed on the database: the reason, already scrubbed.
    answer.results.map(Json).ok_or_else(|| {
        ApiError::bad_request(answer.error.unwrap_or_else(|| "The sorted query did not run".to_string()))
    })
}

/// The column names of a stored result (`{"columns": [...], ...}`), when it has any.
fn stored_columns(results: Option<&serde_json::Value>) -> Option<Vec<&str>> {
    let columns = results?.get("columns")?.as_array()?;
    let names: Vec<&str> = columns.iter().filter_map(serde_json::Value::as_str).collect();
    (!names.is_empty()).then_some(names)
}

/// Whether the stored result shows `column`'s values masked.
fn masked_column(results: Option<&serde_json::Value>, column: &str) -> bool {
    let Some(results) = results else { return false };
    let Some(index) = stored_columns(Some(results)).and_then(|names| names.iter().position(|n| *n == column)) else {
        return false;
    };
    let rows = results.get("rows").and_then(serde_json::Value::as_array);
    rows.into_iter().flatten().any(|row| row.get(index).and_then(serde_json::Value::as_str) == Some(REDACTED))
}

/// `sql` ordered by `column`: wrapped, so whatever the query already orders or limits stays as
/// it was and only the rows it returns are re-ordered. The SQL goes on its own lines so a
/// trailing `--` comment cannot swallow the closing parenthesis.
fn sorted_sql(sql: &str, column: &str, order: SortOrder, dialect: &str) -> String {
    let inner = sql.trim().trim_end_matches(|c: char| c == ';' || c.is_whitespace());
    let column = quote_identifier(dialect, column);
    format!("SELECT * FROM (\n{inner}\n) AS {SORT_ALIAS} ORDER BY {column} {}", order.as_sql())
}

/// `name` as an identifier of the dialect plugin `dialect` (`mysql` quotes with backticks, the
/// others with double quotes), the quote character doubled inside it.
fn quote_identifier(dialect: &str, name: &str) -> String {
    let quote = if dialect == "mysql" { '`' } else { '"' };
    let doubled = name.replace(quote, &format!("{quote}{quote}"));
    format!("{quote}{doubled}{quote}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sort_wraps_the_query_and_quotes_the_column() {
        let sql = sorted_sql("SELECT a FROM t LIMIT 5; ", "na\"me", SortOrder::Desc, "postgres");
        assert_eq!(sql, "SELECT * FROM (\nSELECT a FROM t LIMIT 5\n) AS _quarry_sort ORDER BY \"na\"\"me\" DESC");
        assert_eq!(quote_identifier("mysql", "a`b"), "`a``b`");
        assert_eq!(quote_identifier("sqlite", "total"), "\"total\"");
    }

    #[test]
    fn only_stored_results_with_columns_have_columns() {
        let stored = serde_json::json!({ "columns": ["name", "email"], "rows": [] });
        assert_eq!(stored_columns(Some(&stored)), Some(vec!["name", "email"]));
        assert_eq!(stored_columns(Some(&serde_json::json!({ "columns": [] }))), None);
        assert_eq!(stored_columns(None), None);
    }
}
