//! Metadata store: verified examples, question → SQL pairs per connection (table `examples`,
//! migration 0005), each with its question's vector when one was computed (migration 0008).
//! Choosing which examples go into a prompt is [`crate::examples`]' job.
//!
//! An example is unique per (connection, normalised question, SQL): the SQL is compared through
//! its SHA-256 (`sql_hash`), so a long statement never overflows an index entry.

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::answer_cache::{check_text, sql_count, stored_embedding};
use super::codec::{self, StoreRow};
use super::{Store, StoreError, with_pool};
use crate::embedding::Embedding;

/// A stored example.
#[derive(Debug, Clone, PartialEq)]
pub struct ExampleRecord {
    /// UUID v4.
    pub id: String,
    /// The connection it belongs to.
    pub connection_id: String,
    /// The question as written.
    pub question: String,
    /// Its normalised form (see [`crate::answer_cache::text::Question::normalized`]).
    pub question_normalized: String,
    /// The SQL that answers it.
    pub sql: String,
    /// The dialect plugin the SQL is written for.
    pub dialect: String,
    /// When it was added.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

/// What [`Store::insert_example`] writes.
#[derive(Debug, Clone, Copy)]
pub struct NewExample<'a> {
    /// The connection.
    pub connection_id: &'a str,
    /// The question.
    pub question: &'a str,
    /// Its normalised form.
    pub question_normalized: &'a str,
    /// The SQL.
    pub sql: &'a str,
    /// The dialect plugin name.
    pub dialect: &'a str,
    /// The question's vector, when the provider computed one.
    pub embedding: Option<&'a Embedding>,
}

/// What [`Store::update_example`] changes: `None` keeps the stored value.
#[derive(Debug, Clone, Copy, Default)]
pub struct ExampleChange<'a> {
    /// A new question and its normalised form.
    pub question: Option<(&'a str, &'a str)>,
    /// The new question's vector. With a new question it always replaces the stored one (`None`
    /// clears it: the old vector describes the old question); without one it is ignored.
    pub embedding: Option<&'a Embedding>,
    /// New SQL.
    pub sql: Option<&'a str>,
}

/// An example [`crate::examples`] ranks, with its question's vector.
#[derive(Debug, Clone, PartialEq)]
pub struct ExampleCandidate {
    /// The example.
    pub example: ExampleRecord,
    /// Its question's vector; `None` when it was stored without one.
    pub embedding: Option<Embedding>,
}

/// How [`Store::update_example`] went.
#[derive(Debug, Clone, PartialEq)]
pub enum ExampleUpdate {
    /// Changed; the example as it is now.
    Updated(ExampleRecord),
    /// No example has that id.
    NotFound,
    /// The connection already has an example with that question and SQL; nothing changed.
    Duplicate,
}

macro_rules! example_columns {
    () => {
        "id, connection_id, question, question_normalized, sql, dialect, created_at, updated_at"
    };
}

const INSERT: &str = concat!(
    "INSERT INTO examples (id, connection_id, question, question_normalized, sql, sql_hash, dialect, created_at, \
     updated_at, question_embedding, embedding_model) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9, $10) \
     ON CONFLICT (connection_id, question_normalized, sql_hash) DO NOTHING RETURNING ",
    example_columns!()
);

const GET: &str = concat!("SELECT ", example_columns!(), " FROM examples WHERE id = $1");

const MATCHING: &str = concat!(
    "SELECT ",
    example_columns!(),
    " FROM examples WHERE connection_id = $1 AND question_normalized = $2 AND sql_hash = $3"
);

const COUNT_OF_CONNECTION: &str = "SELECT COUNT(*) FROM examples WHERE connection_id = $1";

const PAGE_OF_CONNECTION: &str = concat!(
    "SELECT ",
    example_columns!(),
    " FROM examples WHERE connection_id = $1 ORDER BY created_at, id LIMIT $2 OFFSET $3"
);

const FOR_DIALECT: &str = concat!(
    "SELECT ",
    example_columns!(),
    ", question_embedding, embedding_model FROM examples WHERE connection_id = $1 AND dialect = $2 ORDER BY updated_at DESC, id LIMIT $3"
);

/// A new question (`$2`) always brings its vector (`$7`, `$8`), even a missing one.
const UPDATE: &str = concat!(
    "UPDATE examples SET question = COALESCE($2, question), question_normalized = COALESCE($3, question_normalized), \
     sql = COALESCE($4, sql), sql_hash = COALESCE($5, sql_hash), updated_at = $6, \
     question_embedding = CASE WHEN $2 IS NULL THEN question_embedding ELSE $7 END, \
     embedding_model = CASE WHEN $2 IS NULL THEN embedding_model ELSE $8 END \
     WHERE id = $1 RETURNING ",
    example_columns!()
);

const DELETE: &str = "DELETE FROM examples WHERE id = $1";
const DELETE_MATCHING: &str =
    "DELETE FROM examples WHERE connection_id = $1 AND question_normalized = $2 AND sql_hash = $3";
const DELETE_OF_CONNECTION: &str = "DELETE FROM examples WHERE connection_id = $1";

impl Store {
    /// Add an example; `None` when the connection already has one with the same normalised
    /// question and SQL (nothing written). [`StoreError::InvalidInput`] for a NUL character.
    pub async fn insert_example(&self, new: NewExample<'_>) -> Result<Option<ExampleRecord>, StoreError> {
        for (field, value) in [
            ("connection_id", new.connection_id),
            ("question", new.question),
            ("query", new.sql),
            ("dialect", new.dialect),
            ("embedding_model", new.embedding.map_or("", |e| e.model.as_str())),
        ] {
            check_text(field, value)?;
        }
        let id = Uuid::new_v4().to_string();
        let now = codec::now();
        let (vector, model) = stored_embedding(new.embedding);
        Ok(with_pool!(self, |pool, codec| {
            let row = sqlx::query(INSERT)
                .bind(&id)
                .bind(new.connection_id)
                .bind(new.question)
                .bind(new.question_normalized)
                .bind(new.sql)
                .bind(sql_hash(new.sql))
                .bind(new.dialect)
                .bind(codec::time(now))
                .bind(&vector)
                .bind(model)
                .fetch_optional(pool)
                .await?;
            row.as_ref().map(example_from_row).transpose()?
        }))
    }

    /// The example `id`, if there is one.
    pub async fn example(&self, id: &str) -> Result<Option<ExampleRecord>, StoreError> {
        Ok(with_pool!(self, |pool, _codec| {
            let row = sqlx::query(GET).bind(id).fetch_optional(pool).await?;
            row.as_ref().map(example_from_row).transpose()?
        }))
    }

    /// The connection's example with this normalised question and SQL, if there is one.
    pub async fn example_matching(
        &self,
        connection_id: &str,
        question_normalized: &str,
        sql: &str,
    ) -> Result<Option<ExampleRecord>, StoreError> {
        Ok(with_pool!(self, |pool, _codec| {
            let row = sqlx::query(MATCHING)
                .bind(connection_id)
                .bind(question_normalized)
                .bind(sql_hash(sql))
                .fetch_optional(pool)
                .await?;
            row.as_ref().map(example_from_row).transpose()?
        }))
    }

    /// One page of the connection's examples, oldest first, with how many it has.
    pub async fn list_examples(
        &self,
        connection_id: &str,
        limit: usize,
        offset: usize,
    ) -> Result<(Vec<ExampleRecord>, i64), StoreError> {
        Ok(with_pool!(self, |pool, _codec| {
            let total: i64 = sqlx::query_scalar(COUNT_OF_CONNECTION).bind(connection_id).fetch_one(pool).await?;
            let rows = sqlx::query(PAGE_OF_CONNECTION)
                .bind(connection_id)
                .bind(sql_count(limit))
                .bind(sql_count(offset))
                .fetch_all(pool)
                .await?;
            (rows.iter().map(example_from_row).collect::<Result<Vec<_>, _>>()?, total)
        }))
    }

    /// The connection's examples for `dialect`, most recently changed first, at most `limit`,
    /// with their vectors.
    pub async fn examples_for(
        &self,
        connection_id: &str,
        dialect: &str,
        limit: usize,
    ) -> Result<Vec<ExampleCandidate>, StoreError> {
        Ok(with_pool!(self, |pool, _codec| {
            let rows = sqlx::query(FOR_DIALECT)
                .bind(connection_id)
                .bind(dialect)
                .bind(sql_count(limit))
                .fetch_all(pool)
                .await?;
            rows.iter().map(candidate_from_row).collect::<Result<Vec<_>, _>>()?
        }))
    }

    /// Change an example's question and/or SQL in one statement (fields left `None` keep their
    /// value). [`ExampleUpdate::Duplicate`] when that would repeat another example of the connection.
    pub async fn update_example(&self, id: &str, change: ExampleChange<'_>) -> Result<ExampleUpdate, StoreError> {
        if let Some((question, _)) = change.question {
            check_text("question", question)?;
        }
        if let Some(sql) = change.sql {
            check_text("query", sql)?;
        }
        if let Some(e) = change.embedding {
            check_text("embedding_model", &e.model)?;
        }
        // The vector belongs to the question: it changes with it, and only with it.
        let (vector, model) = stored_embedding(change.embedding.filter(|_| change.question.is_some()));
        let now = codec::now();
        let result = with_pool!(self, |pool, codec| {
            sqlx::query(UPDATE)
                .bind(id)
                .bind(change.question.map(|(q, _)| q))
                .bind(change.question.map(|(_, n)| n))
                .bind(change.sql)
                .bind(change.sql.map(sql_hash))
                .bind(codec::time(now))
                .bind(&vector)
                .bind(model)
                .fetch_optional(pool)
                .await
                .map(|row| row.as_ref().map(example_from_row).transpose())
        });
        match result {
            Ok(Ok(Some(record))) => Ok(ExampleUpdate::Updated(record)),
            Ok(Ok(None)) => Ok(ExampleUpdate::NotFound),
            Ok(Err(e)) => Err(e.into()),
            Err(sqlx::Error::Database(db)) if db.is_unique_violation() => Ok(ExampleUpdate::Duplicate),
            Err(e) => Err(e.into()),
        }
    }

    /// Delete one example; whether it existed.
    pub async fn delete_example(&self, id: &str) -> Result<bool, StoreError> {
        Ok(with_pool!(self, |pool, _codec| sqlx::query(DELETE).bind(id).execute(pool).await?.rows_affected() > 0))
    }

    /// Delete the connection's example with this normalised question and SQL; how many went (0 or 1).
    pub async fn delete_example_matching(
        &self,
        connection_id: &str,
        question_normalized: &str,
        sql: &str,
    ) -> Result<u64, StoreError> {
        Ok(with_pool!(self, |pool, _codec| {
            sqlx::query(DELETE_MATCHING)
                .bind(connection_id)
                .bind(question_normalized)
                .bind(sql_hash(sql))
                .execute(pool)
                .await?
                .rows_affected()
        }))
    }

    /// Delete every example of the connection (it was deleted); how many went.
    pub async fn delete_connection_examples(&self, connection_id: &str) -> Result<u64, StoreError> {
        Ok(with_pool!(self, |pool, _codec| {
            sqlx::query(DELETE_OF_CONNECTION).bind(connection_id).execute(pool).await?.rows_affected()
        }))
    }
}

/// The dedupe key of a statement: SHA-256, hex.
fn sql_hash(sql: &str) -> String {
    hex::encode(Sha256::digest(sql.as_bytes()))
}

fn candidate_from_row(row: &impl StoreRow) -> Result<ExampleCandidate, sqlx::Error> {
    let embedding = Embedding::from_stored(row.opt_text("embedding_model")?, row.opt_bytes("question_embedding")?);
    Ok(ExampleCandidate { example: example_from_row(row)?, embedding })
}

fn example_from_row(row: &impl StoreRow) -> Result<ExampleRecord, sqlx::Error> {
    Ok(ExampleRecord {
        id: row.text("id")?,
        connection_id: row.text("connection_id")?,
        question: row.text("question")?,
        question_normalized: row.text("question_normalized")?,
        sql: row.text("sql")?,
        dialect: row.text("dialect")?,
        created_at: row.time("created_at")?,
        updated_at: row.time("updated_at")?,
    })
}
