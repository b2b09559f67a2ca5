//! Chat sessions and their turns: recording each question, reading back the last few for
//! follow-up prompts, paging through history, listing and deleting sessions.
//!
//! A session row is created by its first turn. Appending bumps the session's `last_seq` with one
//! atomic upsert and inserts the turn in the same transaction; the upsert's row lock (PostgreSQL)
//! or the database write lock (SQLite, `BEGIN IMMEDIATE`) makes concurrent appends to a session
//! take consecutive `seq` values 1, 2, 3, … with no gaps or duplicates.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use super::chat::{ChatColumns, SET_CHAT_COLUMNS, SET_SESSION_OWNER};
use super::codec::{self, StoreRow};
use super::{Store, StoreError, with_pool};

/// The longest session id the store accepts, in characters (not bytes).
pub const MAX_SESSION_ID_CHARS: usize = 256;

/// The longest session title, in characters: the first question, whitespace collapsed, cut with `…`.
pub const MAX_TITLE_CHARS: usize = 80;

/// One question to record, as the pipeline saw it through.
#[derive(Debug, Clone, PartialEq)]
pub struct NewTurn {
    /// The caller-chosen chat id: any string of 1 to [`MAX_SESSION_ID_CHARS`] characters without
    /// NUL. The session is created on its first turn.
    pub session_id: String,
    /// The question as asked.
    pub question: String,
    /// The model's one-line plan for the query, if it gave one.
    pub description: Option<String>,
    /// The final SQL, if any was generated.
    pub sql: Option<String>,
    /// The dialect plugin the SQL was written for (`postgres`, `mysql`, `sqlite`, …).
    pub dialect: Option<String>,
    /// How the question ended: `executed`, `query_only`, `error`, … (free text, not checked).
    pub status: String,
    /// A short text about the result, fed to the prompts of later turns.
    pub result_summary: Option<String>,
    /// Rows returned, when the SQL ran.
    pub row_count: Option<i64>,
    /// The error the turn ended with, if any.
    pub error: Option<String>,
    /// Prompt tokens used, over every attempt.
    pub input_tokens: i64,
    /// Completion tokens used, over every attempt.
    pub output_tokens: i64,
    /// Time per pipeline stage: a JSON object of stage name → milliseconds.
    pub timings_ms: Value,
    /// Every generation / repair attempt: a JSON array.
    pub attempts: Value,
}

impl Default for NewTurn {
    /// Everything empty, `timings_ms` an empty object and `attempts` an empty array.
    fn default() -> Self {
        Self {
            session_id: String::new(),
            question: String::new(),
            description: None,
            sql: None,
            dialect: None,
            status: String::new(),
            result_summary: None,
            row_count: None,
            error: None,
            input_tokens: 0,
            output_tokens: 0,
            timings_ms: Value::Object(Default::default()),
            attempts: Value::Array(Vec::new()),
        }
    }
}

/// A recorded turn: a [`NewTurn`] plus what the store assigned.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Turn {
    /// A UUID v4, unique across sessions.
    pub id: String,
    /// Position in the session: 1 for the first turn, then consecutive.
    pub seq: i64,
    /// When the turn was recorded (microsecond precision).
    pub created_at: DateTime<Utc>,
    /// See [`NewTurn::session_id`].
    pub session_id: String,
    /// See [`NewTurn::question`].
    pub question: String,
    /// See [`NewTurn::description`].
    pub description: Option<String>,
    /// See [`NewTurn::sql`].
    pub sql: Option<String>,
    /// See [`NewTurn::dialect`].
    pub dialect: Option<String>,
    /// See [`NewTurn::status`].
    pub status: String,
    /// See [`NewTurn::result_summary`].
    pub result_summary: Option<String>,
    /// See [`NewTurn::row_count`].
    pub row_count: Option<i64>,
    /// See [`NewTurn::error`].
    pub error: Option<String>,
    /// See [`NewTurn::input_tokens`].
    pub input_tokens: i64,
    /// See [`NewTurn::output_tokens`].
    pub output_tokens: i64,
    /// See [`NewTurn::timings_ms`].
    pub timings_ms: Value,
    /// See [`NewTurn::attempts`].
    pub attempts: Value,
}

/// A session as listed: its id, a title and how active it has been.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SessionSummary {
    /// The caller-chosen chat id.
    pub id: String,
    /// The first question, whitespace collapsed, at most [`MAX_TITLE_CHARS`] characters.
    pub title: String,
    /// How many turns the session holds.
    pub turn_count: i64,
    /// When the first turn was recorded.
    pub created_at: DateTime<Utc>,
    /// When the newest turn was recorded.
    pub updated_at: DateTime<Utc>,
}

/// One page of a longer list.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Page<T> {
    /// At most `limit` items, starting at `offset`.
    pub items: Vec<T>,
    /// How many items the whole list has.
    pub total: i64,
    /// The page size asked for.
    pub limit: usize,
    /// How many items were skipped.
    pub offset: usize,
}

/// The turn columns, in the order [`turn_from_row`] reads them.
macro_rules! turn_columns {
    () => {
        "id, session_id, seq, created_at, question, description, sql, dialect, status, \
         result_summary, row_count, error, input_tokens, output_tokens, timings_ms, attempts"
    };
}

/// Create the session or count one more turn on it; returns the new turn's `seq`. The row stays
/// locked until the transaction ends, which serialises appends to one session.
const UPSERT_SESSION: &str = "INSERT INTO sessions (id, title, turn_count, last_seq, created_at, updated_at) \
     VALUES ($1, $2, 1, 1, $3, $3) \
     ON CONFLICT (id) DO UPDATE SET turn_count = sessions.turn_count + 1, \
     last_seq = sessions.last_seq + 1, updated_at = excluded.updated_at \
     RETURNING last_seq";

const INSERT_TURN: &str = concat!(
    "INSERT INTO messages (",
    turn_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)"
);

const RECENT_TURNS: &str =
    concat!("SELECT ", turn_columns!(), " FROM messages WHERE session_id = $1 ORDER BY seq DESC LIMIT $2");

const PAGE_OF_TURNS: &str =
    concat!("SELECT ", turn_columns!(), " FROM messages WHERE session_id = $1 ORDER BY seq LIMIT $2 OFFSET $3");

const COUNT_TURNS: &str = "SELECT COUNT(*) FROM messages WHERE session_id = $1";

const PAGE_OF_SESSIONS: &str = "SELECT id, title, turn_count, created_at, updated_at FROM sessions \
     ORDER BY updated_at DESC, id LIMIT $1 OFFSET $2";

const COUNT_SESSIONS: &str = "SELECT COUNT(*) FROM sessions";

const DELETE_TURNS: &str = "DELETE FROM messages WHERE session_id = $1";

const DELETE_SESSION: &str = "DELETE FROM sessions WHERE id = $1";

impl Store {
    /// Append one turn to a session, creating the session on its first turn.
    ///
    /// Safe under concurrency: appends to the same session, from any number of tasks or replicas,
    /// get distinct consecutive `seq` values. Fails with [`StoreError::InvalidInput`] for a bad
    /// session id or a NUL character in any text (PostgreSQL cannot store one), writing nothing.
    pub async fn append_turn(&self, turn: NewTurn) -> Result<Turn, StoreError> {
        self.insert_turn(turn, None).await
    }

    /// [`Store::append_turn`], with the product-API chat columns written in the same transaction
    /// when `chat` is given (see `store/chat.rs`).
    pub(super) async fn insert_turn(&self, turn: NewTurn, chat: Option<&ChatColumns<'_>>) -> Result<Turn, StoreError> {
        check_new_turn(&turn)?;
        let id = Uuid::new_v4().to_string();
        let now = codec::now();
        let title = title_of(&turn.question);
        let seq: i64 = with_pool!(self, |pool, codec| {
            let mut tx = pool.begin_with(codec::BEGIN_WRITE).await?;
            let seq: i64 = sqlx::query_scalar(UPSERT_SESSION)
                .bind(&turn.session_id)
                .bind(&title)
                .bind(codec::time(now))
                .fetch_one(&mut *tx)
                .await?;
            sqlx::query(INSERT_TURN)
                .bind(&id)
                .bind(&turn.session_id)
                .bind(seq)
                .bind(codec::time(now))
                .bind(&turn.question)
                .bind(&turn.description)
                .bind(&turn.sql)
                .bind(&turn.dialect)
                .bind(&turn.status)
                .bind(&turn.result_summary)
                .bind(turn.row_count)
                .bind(&turn.error)
                .bind(turn.input_tokens)
                .bind(turn.output_tokens)
                .bind(codec::json(&turn.timings_ms))
                .bind(codec::json(&turn.attempts))
                .execute(&mut *tx)
                .await?;
            if let Some(chat) = chat {
                sqlx::query(SET_SESSION_OWNER)
                    .bind(&turn.session_id)
                    .bind(chat.user_id)
                    .bind(chat.connection_id)
                    .bind(chat.provider)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(SET_CHAT_COLUMNS)
                    .bind(&id)
                    .bind(chat.user_message_id)
                    .bind(chat.explanation)
                    .bind(chat.results.map(codec::json))
                    .bind(chat.cache_hit)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            seq
        });
        Ok(Turn {
            id,
            seq,
            created_at: now,
            session_id: turn.session_id,
            question: turn.question,
            description: turn.description,
            sql: turn.sql,
            dialect: turn.dialect,
            status: turn.status,
            result_summary: turn.result_summary,
            row_count: turn.row_count,
            error: turn.error,
            input_tokens: turn.input_tokens,
            output_tokens: turn.output_tokens,
            timings_ms: turn.timings_ms,
            attempts: turn.attempts,
        })
    }

    /// The last `limit` turns of a session, oldest first: what a follow-up question's prompt needs.
    ///
    /// Empty for a session that does not exist (or `limit` 0); [`StoreError::InvalidInput`] for a
    /// session id no session can have.
    pub async fn recent_turns(&self, session_id: &str, limit: usize) -> Result<Vec<Turn>, StoreError> {
        check_session_id(session_id)?;
        let mut turns: Vec<Turn> = with_pool!(self, |pool, _codec| {
            let rows = sqlx::query(RECENT_TURNS).bind(session_id).bind(sql_count(limit)).fetch_all(pool).await?;
            rows.iter().map(turn_from_row).collect::<Result<_, _>>()?
        });
        turns.reverse();
        Ok(turns)
    }

    /// One page of a session's turns in `seq` order, with the session's total number of turns.
    ///
    /// An unknown session gives an empty page with total 0; [`StoreError::InvalidInput`] for a
    /// session id no session can have.
    pub async fn history(&self, session_id: &str, limit: usize, offset: usize) -> Result<Page<Turn>, StoreError> {
        check_session_id(session_id)?;
        let (items, total) = with_pool!(self, |pool, _codec| {
            let total: i64 = sqlx::query_scalar(COUNT_TURNS).bind(session_id).fetch_one(pool).await?;
            let rows = sqlx::query(PAGE_OF_TURNS)
                .bind(session_id)
                .bind(sql_count(limit))
                .bind(sql_count(offset))
                .fetch_all(pool)
                .await?;
            (rows.iter().map(turn_from_row).collect::<Result<Vec<_>, _>>()?, total)
        });
        Ok(Page { items, total, limit, offset })
    }

    /// Sessions, most recently active first (ties by id), one page at a time, with the total.
    pub async fn list_sessions(&self, limit: usize, offset: usize) -> Result<Page<SessionSummary>, StoreError> {
        let (items, total) = with_pool!(self, |pool, _codec| {
            let total: i64 = sqlx::query_scalar(COUNT_SESSIONS).fetch_one(pool).await?;
            let rows =
                sqlx::query(PAGE_OF_SESSIONS).bind(sql_count(limit)).bind(sql_count(offset)).fetch_all(pool).await?;
            (rows.iter().map(session_from_row).collect::<Result<Vec<_>, _>>()?, total)
        });
        Ok(Page { items, total, limit, offset })
    }

    /// Delete a session and all its turns, in one transaction. `Ok(false)` if there was no such
    /// session; [`StoreError::InvalidInput`] for a session id no session can have.
    pub async fn delete_session(&self, session_id: &str) -> Result<bool, StoreError> {
        check_session_id(session_id)?;
        let deleted = with_pool!(self, |pool, codec| {
            let mut tx = pool.begin_with(codec::BEGIN_WRITE).await?;
            // The foreign key cascades too; deleting explicitly does not depend on it being enforced.
            sqlx::query(DELETE_TURNS).bind(session_id).execute(&mut *tx).await?;
            let done = sqlx::query(DELETE_SESSION).bind(session_id).execute(&mut *tx).await?;
            tx.commit().await?;
            done.rows_affected()
        });
        Ok(deleted > 0)
    }
}

pub(super) fn turn_from_row(row: &impl StoreRow) -> Result<Turn, sqlx::Error> {
    Ok(Turn {
        id: row.text("id")?,
        session_id: row.text("session_id")?,
        seq: row.int("seq")?,
        created_at: row.time("created_at")?,
        question: row.text("question")?,
        description: row.opt_text("description")?,
        sql: row.opt_text("sql")?,
        dialect: row.opt_text("dialect")?,
        status: row.text("status")?,
        result_summary: row.opt_text("result_summary")?,
        row_count: row.opt_int("row_count")?,
        error: row.opt_text("error")?,
        input_tokens: row.int("input_tokens")?,
        output_tokens: row.int("output_tokens")?,
        timings_ms: row.json("timings_ms")?,
        attempts: row.json("attempts")?,
    })
}

fn session_from_row(row: &impl StoreRow) -> Result<SessionSummary, sqlx::Error> {
    Ok(SessionSummary {
        id: row.text("id")?,
        title: row.text("title")?,
        turn_count: row.int("turn_count")?,
        created_at: row.time("created_at")?,
        updated_at: row.time("updated_at")?,
    })
}

/// A page size or offset as the `BIGINT` both backends take (saturating; no page is that big).
pub(super) fn sql_count(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// 1 to [`MAX_SESSION_ID_CHARS`] characters, no NUL.
pub(super) fn check_session_id(id: &str) -> Result<(), StoreError> {
    if id.is_empty() {
        return Err(StoreError::InvalidInput("the session id is empty".to_string()));
    }
    let chars = id.chars().count();
    if chars > MAX_SESSION_ID_CHARS {
        return Err(StoreError::InvalidInput(format!(
            "the session id has {chars} characters; at most {MAX_SESSION_ID_CHARS} are allowed"
        )));
    }
    check_text("session_id", id)
}

/// PostgreSQL refuses NUL in text (and `\u0000` in JSONB); refuse it on both backends alike.
fn check_text(field: &str, value: &str) -> Result<(), StoreError> {
    if value.contains('\0') {
        return Err(StoreError::InvalidInput(format!("{field} contains a NUL character")));
    }
    Ok(())
}

pub(super) fn check_new_turn(turn: &NewTurn) -> Result<(), StoreError> {
    check_session_id(&turn.session_id)?;
    let texts = [
        ("question", Some(&turn.question)),
        ("description", turn.description.as_ref()),
        ("sql", turn.sql.as_ref()),
        ("dialect", turn.dialect.as_ref()),
        ("status", Some(&turn.status)),
        ("result_summary", turn.result_summary.as_ref()),
        ("error", turn.error.as_ref()),
    ];
    for (field, value) in texts {
        if let Some(value) = value {
            check_text(field, value)?;
        }
    }
    for (field, value) in [("timings_ms", &turn.timings_ms), ("attempts", &turn.attempts)] {
        if value.to_string().contains("\\u0000") {
            return Err(StoreError::InvalidInput(format!("{field} contains a NUL character")));
        }
    }
    Ok(())
}

/// A session's title from its first question: whitespace runs collapsed to one space, at most
/// [`MAX_TITLE_CHARS`] characters, ending in `…` when cut.
pub(super) fn title_of(question: &str) -> String {
    let flat = question.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= MAX_TITLE_CHARS {
        return flat;
    }
    let mut title: String = flat.chars().take(MAX_TITLE_CHARS - 1).collect();
    title.truncate(title.trim_end().len());
    title.push('…');
    title
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_are_flat_and_short() {
        assert_eq!(title_of("  how many\n\tusers  signed up? "), "how many users signed up?");
        let long = "word ".repeat(40);
        let title = title_of(&long);
        assert_eq!(title.chars().count(), MAX_TITLE_CHARS);
        assert!(title.ends_with("word…"), "{title}");
        let wide = "é".repeat(200);
        assert_eq!(title_of(&wide).chars().count(), MAX_TITLE_CHARS);
    }

    #[test]
    fn session_ids_are_checked() {
        assert!(check_session_id("chat-1").is_ok());
        assert!(check_session_id(&"é".repeat(MAX_SESSION_ID_CHARS)).is_ok());
        assert!(matches!(check_session_id(""), Err(StoreError::InvalidInput(_))));
        assert!(matches!(check_session_id(&"a".repeat(MAX_SESSION_ID_CHARS + 1)), Err(StoreError::InvalidInput(_))));
        assert!(matches!(check_session_id("a\0b"), Err(StoreError::InvalidInput(_))));
    }
}
