//! Metadata store: the semantic model of each connection, one JSON document per connection
//! (table `semantic_models`). The store keeps the document as given; its shape belongs to
//! [`crate::semantic`].

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::codec::{self, StoreRow};
use super::{Store, StoreError, with_pool};

/// A stored semantic model document and when it last changed.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredSemanticModel {
    /// The document.
    pub model: Value,
    /// When it was last written.
    pub updated_at: DateTime<Utc>,
}

const SELECT: &str = "SELECT model, updated_at FROM semantic_models WHERE connection_id = $1";
/// PostgreSQL: lock the row so concurrent updates of one model apply one after the other
/// (SQLite's `BEGIN IMMEDIATE` already serialises writers).
const SELECT_FOR_UPDATE: &str = "SELECT model, updated_at FROM semantic_models WHERE connection_id = $1 FOR UPDATE";
const UPSERT: &str = "INSERT INTO semantic_models (connection_id, model, updated_at) VALUES ($1, $2, $3) \
     ON CONFLICT (connection_id) DO UPDATE SET model = excluded.model, updated_at = excluded.updated_at";
const DELETE: &str = "DELETE FROM semantic_models WHERE connection_id = $1";

impl Store {
    /// The semantic model of `connection_id`, if one is stored.
    pub async fn semantic_model(&self, connection_id: &str) -> Result<Option<StoredSemanticModel>, StoreError> {
        with_pool!(self, |pool, _codec| {
            let row = sqlx::query(SELECT).bind(connection_id).fetch_optional(pool).await?;
            match row {
                Some(row) => {
                    Ok(Some(StoredSemanticModel { model: row.json("model")?, updated_at: row.time("updated_at")? }))
                }
                None => Ok(None),
            }
        })
    }

    /// Read, change and write the semantic model of `connection_id` in one transaction:
    /// `change` gets the stored document (or `None`) and returns the new one, or an error that
    /// leaves everything as it was (returned as the inner `Err`).
    pub async fn update_semantic_model<E>(
        &self,
        connection_id: &str,
        change: impl FnOnce(Option<Value>) -> Result<Value, E>,
    ) -> Result<Result<StoredSemanticModel, E>, StoreError> {
        let select = if self.backend() == "postgres" { SELECT_FOR_UPDATE } else { SELECT };
        let now = codec::now();
        with_pool!(self, |pool, codec| {
            let mut tx = pool.begin_with(codec::BEGIN_WRITE).await?;
            let current = match sqlx::query(select).bind(connection_id).fetch_optional(&mut *tx).await? {
                Some(row) => Some(row.json("model")?),
                None => None,
            };
            let model = match change(current) {
                Ok(model) => model,
                Err(e) => {
                    tx.rollback().await?;
                    return Ok(Err(e));
                }
            };
            if model.to_string().contains("\\u0000") {
                tx.rollback().await?;
                return Err(StoreError::InvalidInput("the semantic model contains a NUL character".into()));
            }
            sqlx::query(UPSERT)
                .bind(connection_id)
                .bind(codec::json(&model))
                .bind(codec::time(now))
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(Ok(StoredSemanticModel { model, updated_at: now }))
        })
    }

    /// Remove the semantic model of `connection_id`; `false` if there was none.
    pub async fn delete_semantic_model(&self, connection_id: &str) -> Result<bool, StoreError> {
        let done = with_pool!(self, |pool, _codec| sqlx::query(DELETE)
            .bind(connection_id)
            .execute(pool)
            .await?
            .rows_affected());
        Ok(done > 0)
    }
}
