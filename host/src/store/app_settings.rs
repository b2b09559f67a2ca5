//! Metadata store: settings applied live (table `app_settings`), one JSON value per key. Which
//! keys exist and what they may hold belongs to [`crate::app_settings`].

use serde_json::Value;

use super::codec::{self, StoreRow};
use super::{Store, StoreError, with_pool};

const SELECT_ALL: &str = "SELECT key, value FROM app_settings ORDER BY key";
const UPSERT: &str = "INSERT INTO app_settings (key, value, updated_at) VALUES ($1, $2, $3) \
     ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at";
/// PostgreSQL: one writer of the settings at a time, so a change checked against the current
/// values (a default not above a maximum) is written against those same values.
const LOCK_PG: &str = "LOCK TABLE app_settings IN SHARE ROW EXCLUSIVE MODE";

impl Store {
    /// Every stored setting as `(key, value)`, by key.
    pub async fn app_settings(&self) -> Result<Vec<(String, Value)>, StoreError> {
        with_pool!(self, |pool, _codec| {
            let rows = sqlx::query(SELECT_ALL).fetch_all(pool).await?;
            rows.iter()
                .map(|row| Ok((row.text("key")?, row.json("value")?)))
                .collect::<Result<Vec<_>, sqlx::Error>>()
                .map_err(StoreError::from)
        })
    }

    /// Read the stored settings, let `change` decide what to write, and write it, in one
    /// transaction that no other settings write interleaves with. An `Err` from `change`
    /// writes nothing and is returned as the inner `Err`.
    pub async fn update_app_settings<E>(
        &self,
        change: impl FnOnce(Vec<(String, Value)>) -> Result<Vec<(String, Value)>, E>,
    ) -> Result<Result<Vec<(String, Value)>, E>, StoreError> {
        let postgres = self.backend() == "postgres";
        let now = codec::now();
        with_pool!(self, |pool, codec| {
            let mut tx = pool.begin_with(codec::BEGIN_WRITE).await?;
            if postgres {
                sqlx::query(LOCK_PG).execute(&mut *tx).await?;
            }
            let rows = sqlx::query(SELECT_ALL).fetch_all(&mut *tx).await?;
            let current = rows
                .iter()
                .map(|row| Ok((row.text("key")?, row.json("value")?)))
                .collect::<Result<Vec<(String, Value)>, sqlx::Error>>()?;
            let writes = match change(current) {
                Ok(writes) => writes,
                Err(e) => {
                    tx.rollback().await?;
                    return Ok(Err(e));
                }
            };
            for (key, value) in &writes {
                if key.contains('\0') || value.to_string().contains("\\u0000") {
                    tx.rollback().await?;
                    return Err(StoreError::InvalidInput(format!("setting {key:?} contains a NUL character")));
                }
                sqlx::query(UPSERT).bind(key).bind(codec::json(value)).bind(codec::time(now)).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(Ok(writes))
        })
    }
}
