//! Product-API chat on top of the session tables: sessions that belong to a user and a saved
//! connection, and turns that also keep the explanation, the (already masked) result, cache use,
//! approval and feedback.
//!
//! A chat turn is recorded in one transaction (session upsert, turn insert, the chat columns), like
//! [`Store::append_turn`]. Running a held (`pending_approval`) query is claimed with a conditional
//! update first, so it runs once even when two approvers (on two replicas) click at the same time.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use super::codec::{self, StoreRow};
use super::sessions::{NewTurn, Turn, check_session_id, sql_count, turn_from_row};
use super::{Store, StoreError, with_pool};

/// What a chat turn records beyond a [`NewTurn`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChatExtras {
    /// The session's owner (set when the session is created).
    pub user_id: String,
    /// The connection asked (set when the session is created).
    pub connection_id: String,
    /// The provider asked for, if the client named one.
    pub provider: Option<String>,
    /// The explanation of the result.
    pub explanation: Option<String>,
    /// The result as the client saw it (masked): columns, column_types, rows, row_count, ….
    pub results: Option<Value>,
    /// Whether the SQL came from the answer cache.
    pub cache_hit: bool,
}

/// The chat columns of one turn, as `Store::insert_turn` writes them with the turn.
pub(super) struct ChatColumns<'a> {
    pub user_id: &'a str,
    pub connection_id: &'a str,
    pub provider: Option<&'a str>,
    pub user_message_id: &'a str,
    pub explanation: Option<&'a str>,
    pub results: Option<&'a Value>,
    pub cache_hit: bool,
}

/// A product-API session.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChatSession {
    /// UUID.
    pub id: String,
    /// The owner.
    pub user_id: Option<String>,
    /// The connection asked.
    pub connection_id: Option<String>,
    /// The first question, shortened.
    pub title: String,
    /// The provider asked for.
    pub provider: Option<String>,
    /// Questions asked.
    pub turn_count: i64,
    /// When it started.
    pub created_at: DateTime<Utc>,
    /// When the newest question was asked.
    pub updated_at: DateTime<Utc>,
}

/// A recorded chat turn: the turn, its chat columns and its session's owner and connection.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatTurn {
    /// The turn (question, SQL, status, error, tokens, timings…).
    pub turn: Turn,
    /// Id of the question as a message of its own.
    pub user_message_id: Option<String>,
    /// The explanation.
    pub explanation: Option<String>,
    /// The result as the client saw it.
    pub results: Option<Value>,
    /// Whether the SQL came from the cache.
    pub cache_hit: bool,
    /// `thumbs_up`, `thumbs_down` or none.
    pub feedback: Option<String>,
    /// Who ran it, when it was held for approval.
    pub approved_by: Option<String>,
    /// When it was run after approval.
    pub approved_at: Option<DateTime<Utc>>,
    /// The session's owner.
    pub user_id: Option<String>,
    /// The session's connection.
    pub connection_id: Option<String>,
}

/// How a held or edited query ended, to be written back on its turn.
#[derive(Debug, Clone, PartialEq)]
pub struct TurnUpdate {
    /// The SQL that ran (or was refused).
    pub sql: Option<String>,
    /// `executed` or `error`.
    pub status: String,
    /// The result as the client saw it.
    pub results: Option<Value>,
    /// Rows returned.
    pub row_count: Option<i64>,
    /// Why it failed.
    pub error: Option<String>,
    /// Who ran it.
    pub approved_by: Option<String>,
}

/// The status a held query has while it is being run.
pub const RUNNING_APPROVED: &str = "running";

macro_rules! chat_columns {
    () => {
        "m.id, m.session_id, m.seq, m.created_at, m.question, m.description, m.sql, m.dialect, m.status, \
         m.result_summary, m.row_count, m.error, m.input_tokens, m.output_tokens, m.timings_ms, m.attempts, \
         m.user_message_id, m.explanation, m.results, m.cache_hit, m.feedback, m.approved_by, m.approved_at, \
         s.user_id, s.connection_id"
    };
}

pub(super) const SET_SESSION_OWNER: &str = "UPDATE sessions SET user_id = COALESCE(user_id, $2), \
     connection_id = COALESCE(connection_id, $3), provider = COALESCE($4, provider) WHERE id = $1";

pub(super) const SET_CHAT_COLUMNS: &str =
    "UPDATE messages SET user_message_id = $2, explanation = $3, results = $4, cache_hit = $5 WHERE id = $1";

macro_rules! session_columns {
    () => {
        "id, user_id, connection_id, title, provider, turn_count, created_at, updated_at"
    };
}

const ONE_SESSION: &str = concat!("SELECT ", session_columns!(), " FROM sessions WHERE id = $1");

/// The casts tell PostgreSQL the type of a parameter that may be NULL.
macro_rules! owned_sessions {
    () => {
        " FROM sessions WHERE user_id = $1 AND (CAST($2 AS TEXT) IS NULL OR connection_id = CAST($2 AS TEXT))"
    };
}

const COUNT_OWNED: &str = concat!("SELECT COUNT(*)", owned_sessions!());

const PAGE_OF_OWNED: &str =
    concat!("SELECT ", session_columns!(), owned_sessions!(), " ORDER BY updated_at DESC, id LIMIT $3 OFFSET $4");

const ONE_TURN: &str =
    concat!("SELECT ", chat_columns!(), " FROM messages m JOIN sessions s ON s.id = m.session_id WHERE m.id = $1");

const SESSION_TURNS: &str = concat!(
    "SELECT ",
    chat_columns!(),
    " FROM messages m JOIN sessions s ON s.id = m.session_id WHERE m.session_id = $1 ORDER BY m.seq LIMIT $2 OFFSET $3"
);

const CLAIM_HELD: &str = "UPDATE messages SET status = $2 WHERE id = $1 AND status = 'pending_approval'";

const FINISH_TURN: &str = "UPDATE messages SET sql = $2, status = $3, results = $4, row_count = $5, error = $6, \
     approved_by = COALESCE(CAST($7 AS TEXT), approved_by), \
     approved_at = CASE WHEN CAST($7 AS TEXT) IS NULL THEN approved_at ELSE $8 END \
     WHERE id = $1";

const SET_FEEDBACK: &str = "UPDATE messages SET feedback = $2 WHERE id = $1";

impl Store {
    /// Record one chat turn: the session (created on its first turn, owned by `extras.user_id`),
    /// the turn and its chat columns, in one transaction.
    pub async fn append_chat_turn(&self, turn: NewTurn, extras: ChatExtras) -> Result<ChatTurn, StoreError> {
        let user_message_id = Uuid::new_v4().to_string();
        let columns = ChatColumns {
            user_id: &extras.user_id,
            connection_id: &extras.connection_id,
            provider: extras.provider.as_deref(),
            user_message_id: &user_message_id,
            explanation: extras.explanation.as_deref(),
            results: extras.results.as_ref(),
            cache_hit: extras.cache_hit,
        };
        let turn = self.insert_turn(turn, Some(&columns)).await?;
        Ok(ChatTurn {
            turn,
            user_message_id: Some(user_message_id),
            explanation: extras.explanation,
            results: extras.results,
            cache_hit: extras.cache_hit,
            feedback: None,
            approved_by: None,
            approved_at: None,
            user_id: Some(extras.user_id),
            connection_id: Some(extras.connection_id),
        })
    }

    /// The session `id`, if it exists.
    pub async fn chat_session(&self, id: &str) -> Result<Option<ChatSession>, StoreError> {
        check_session_id(id)?;
        Ok(with_pool!(self, |pool, _codec| {
            let row = sqlx::query(ONE_SESSION).bind(id).fetch_optional(pool).await?;
            row.as_ref().map(chat_session_from_row).transpose()?
        }))
    }

    /// One page of `user_id`'s sessions (optionally only those on `connection_id`), most recently
    /// active first, and how many there are.
    pub async fn chat_sessions(
        &self,
        user_id: &str,
        connection_id: Option<&str>,
        limit: usize,
        offset: usize,
    ) -> Result<(Vec<ChatSession>, i64), StoreError> {
        Ok(with_pool!(self, |pool, _codec| {
            let total: i64 = sqlx::query_scalar(COUNT_OWNED).bind(user_id).bind(connection_id).fetch_one(pool).await?;
            let rows = sqlx::query(PAGE_OF_OWNED)
                .bind(user_id)
                .bind(connection_id)
                .bind(sql_count(limit))
                .bind(sql_count(offset))
                .fetch_all(pool)
                .await?;
            (rows.iter().map(chat_session_from_row).collect::<Result<Vec<_>, _>>()?, total)
        }))
    }

    /// The chat turn whose (assistant) message id is `id`.
    pub async fn chat_turn(&self, id: &str) -> Result<Option<ChatTurn>, StoreError> {
        Ok(with_pool!(self, |pool, _codec| {
            let row = sqlx::query(ONE_TURN).bind(id).fetch_optional(pool).await?;
            row.as_ref().map(chat_turn_from_row).transpose()?
        }))
    }

    /// A page of a session's chat turns in order.
    pub async fn chat_turns(&self, session_id: &str, limit: usize, offset: usize) -> Result<Vec<ChatTurn>, StoreError> {
        check_session_id(session_id)?;
        Ok(with_pool!(self, |pool, _codec| {
            let rows = sqlx::query(SESSION_TURNS)
                .bind(session_id)
                .bind(sql_count(limit))
                .bind(sql_count(offset))
                .fetch_all(pool)
                .await?;
            rows.iter().map(chat_turn_from_row).collect::<Result<Vec<_>, _>>()?
        }))
    }

    /// Claim the held query of turn `id` for running: `true` for exactly one caller while it is
    /// `pending_approval`, `false` for everyone else (already run, running, or not held).
    pub async fn claim_held_turn(&self, id: &str) -> Result<bool, StoreError> {
        let done = with_pool!(self, |pool, _codec| {
            sqlx::query(CLAIM_HELD).bind(id).bind(RUNNING_APPROVED).execute(pool).await?.rows_affected()
        });
        Ok(done == 1)
    }

    /// Write how a held or edited query ended back on turn `id`.
    pub async fn finish_turn(&self, id: &str, update: &TurnUpdate) -> Result<(), StoreError> {
        let now = codec::now();
        with_pool!(self, |pool, codec| {
            let results = update.results.as_ref().map(codec::json);
            sqlx::query(FINISH_TURN)
                .bind(id)
                .bind(&update.sql)
                .bind(&update.status)
                .bind(results)
                .bind(update.row_count)
                .bind(&update.error)
                .bind(&update.approved_by)
                .bind(codec::time(now))
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Set (or clear) the feedback on turn `id`.
    pub async fn set_feedback(&self, id: &str, feedback: Option<&str>) -> Result<(), StoreError> {
        with_pool!(self, |pool, _codec| {
            sqlx::query(SET_FEEDBACK).bind(id).bind(feedback).execute(pool).await?;
        });
        Ok(())
    }
}

fn chat_session_from_row(row: &impl StoreRow) -> Result<ChatSession, sqlx::Error> {
    Ok(ChatSession {
        id: row.text("id")?,
        user_id: row.opt_text("user_id")?,
        connection_id: row.opt_text("connection_id")?,
        title: row.text("title")?,
        provider: row.opt_text("provider")?,
        turn_count: row.int("turn_count")?,
        created_at: row.time("created_at")?,
        updated_at: row.time("updated_at")?,
    })
}

fn chat_turn_from_row(row: &impl StoreRow) -> Result<ChatTurn, sqlx::Error> {
    Ok(ChatTurn {
        turn: turn_from_row(row)?,
        user_message_id: row.opt_text("user_message_id")?,
        explanation: row.opt_text("explanation")?,
        results: row.opt_json("results")?,
        cache_hit: row.boolean("cache_hit")?,
        feedback: row.opt_text("feedback")?,
        approved_by: row.opt_text("approved_by")?,
        approved_at: row.opt_time("approved_at")?,
        user_id: row.opt_text("user_id")?,
        connection_id: row.opt_text("connection_id")?,
    })
}
