//! Metadata store: saved LLM provider configurations (table `provider_configs`).
//!
//! The API key is kept only sealed (`api_key_sealed`, sealed and opened by
//! [`crate::secrets::Cipher`] in the caller); the store never sees it in the clear.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::Row;
use uuid::Uuid;

use super::codec::{self, StoreRow};
use super::{Store, StoreError, with_pool};

/// A saved provider configuration.
#[derive(Clone, PartialEq)]
pub struct ProviderRecord {
    /// UUID v4.
    pub id: String,
    /// A preset name (`openai`, `groq`, …) or a provider plugin's name.
    pub provider_type: String,
    /// A name for people.
    pub display_name: String,
    /// The API's base URL; `None`: the preset's.
    pub base_url: Option<String>,
    /// The model; `None`: the preset's default.
    pub model: Option<String>,
    /// The embedding model; `None`: the preset's default (`off`: none).
    pub embedding_model: Option<String>,
    /// Default sampling temperature (0–2).
    pub temperature: Option<f64>,
    /// Default bound on generated tokens (≥ 1).
    pub max_tokens: Option<i64>,
    /// The sealed API key, if one is saved.
    pub api_key_sealed: Option<Vec<u8>>,
    /// Whether it is one of the configs in use.
    pub is_active: bool,
    /// Model ids the API listed last time it was asked.
    pub models_cache: Vec<String>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

impl std::fmt::Debug for ProviderRecord {
    /// Everything but the sealed key's bytes.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderRecord")
            .field("id", &self.id)
            .field("provider_type", &self.provider_type)
            .field("display_name", &self.display_name)
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .field("embedding_model", &self.embedding_model)
            .field("has_api_key", &self.api_key_sealed.is_some())
            .field("is_active", &self.is_active)
            .finish_non_exhaustive()
    }
}

/// A configuration to save.
#[derive(Clone, Default)]
pub struct NewProvider {
    /// See [`ProviderRecord::provider_type`].
    pub provider_type: String,
    /// See [`ProviderRecord::display_name`].
    pub display_name: String,
    /// See [`ProviderRecord::base_url`].
    pub base_url: Option<String>,
    /// See [`ProviderRecord::model`].
    pub model: Option<String>,
    /// See [`ProviderRecord::embedding_model`].
    pub embedding_model: Option<String>,
    /// See [`ProviderRecord::temperature`].
    pub temperature: Option<f64>,
    /// See [`ProviderRecord::max_tokens`].
    pub max_tokens: Option<i64>,
    /// See [`ProviderRecord::api_key_sealed`].
    pub api_key_sealed: Option<Vec<u8>>,
    /// See [`ProviderRecord::is_active`].
    pub is_active: bool,
}

/// Changes to a saved configuration: `None` leaves a field alone, `Some(None)` clears it.
#[derive(Clone, Default)]
pub struct ProviderChange {
    /// New display name.
    pub display_name: Option<String>,
    /// New base URL.
    pub base_url: Option<Option<String>>,
    /// New model.
    pub model: Option<Option<String>>,
    /// New embedding model.
    pub embedding_model: Option<Option<String>>,
    /// New temperature.
    pub temperature: Option<Option<f64>>,
    /// New token bound.
    pub max_tokens: Option<Option<i64>>,
    /// New sealed key.
    pub api_key_sealed: Option<Option<Vec<u8>>>,
    /// New active flag.
    pub is_active: Option<bool>,
}

macro_rules! provider_columns {
    () => {
        "id, provider_type, display_name, base_url, model, temperature, max_tokens, api_key_sealed, is_active, \
         models_cache, created_at, updated_at, embedding_model"
    };
}

/// Read a [`ProviderRecord`] from a row of either backend (expanded once per backend inside
/// `with_pool!`, because `try_get` needs the concrete row type).
macro_rules! provider_from_row {
    ($row:expr) => {{
        let row = $row;
        let models: Value = row.json("models_cache")?;
        Ok::<ProviderRecord, sqlx::Error>(ProviderRecord {
            id: row.text("id")?,
            provider_type: row.text("provider_type")?,
            display_name: row.text("display_name")?,
            base_url: row.opt_text("base_url")?,
            model: row.opt_text("model")?,
            embedding_model: row.opt_text("embedding_model")?,
            temperature: row.try_get("temperature")?,
            max_tokens: row.opt_int("max_tokens")?,
            api_key_sealed: row.try_get("api_key_sealed")?,
            is_active: row.try_get("is_active")?,
            models_cache: serde_json::from_value(models).unwrap_or_default(),
            created_at: row.time("created_at")?,
            updated_at: row.time("updated_at")?,
        })
    }};
}

const INSERT: &str = concat!(
    "INSERT INTO provider_configs (",
    provider_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
);
const SELECT_ONE: &str = concat!("SELECT ", provider_columns!(), " FROM provider_configs WHERE id = $1");
const SELECT_ALL: &str = concat!("SELECT ", provider_columns!(), " FROM provider_configs ORDER BY created_at, id");
/// The newest active config (of a type, when `$1` is not NULL), else the newest config.
const SELECT_PREFERRED: &str = concat!(
    "SELECT ",
    provider_columns!(),
    " FROM provider_configs WHERE ($1 IS NULL OR provider_type = $1) \
     ORDER BY is_active DESC, created_at DESC, id DESC LIMIT 1"
);
const UPDATE: &str = "UPDATE provider_configs SET display_name = $2, base_url = $3, model = $4, temperature = $5, \
     max_tokens = $6, api_key_sealed = $7, is_active = $8, updated_at = $9, embedding_model = $10 WHERE id = $1";
const SET_MODELS: &str = "UPDATE provider_configs SET models_cache = $2, updated_at = $3 WHERE id = $1";
const DELETE: &str = "DELETE FROM provider_configs WHERE id = $1";

impl Store {
    /// Save a new provider configuration.
    ///
    /// [`StoreError::InvalidInput`] for a NUL character in any text (nothing written).
    pub async fn insert_provider(&self, new: NewProvider) -> Result<ProviderRecord, StoreError> {
        check_texts(&[
            Some(&new.provider_type),
            Some(&new.display_name),
            new.base_url.as_ref(),
            new.model.as_ref(),
            new.embedding_model.as_ref(),
        ])?;
        let now = codec::now();
        let record = ProviderRecord {
            id: Uuid::new_v4().to_string(),
            provider_type: new.provider_type,
            display_name: new.display_name,
            base_url: new.base_url,
            model: new.model,
            embedding_model: new.embedding_model,
            temperature: new.temperature,
            max_tokens: new.max_tokens,
            api_key_sealed: new.api_key_sealed,
            is_active: new.is_active,
            models_cache: Vec::new(),
            created_at: now,
            updated_at: now,
        };
        let models = Value::from(Vec::<Value>::new());
        with_pool!(self, |pool, codec| {
            sqlx::query(INSERT)
                .bind(&record.id)
                .bind(&record.provider_type)
                .bind(&record.display_name)
                .bind(&record.base_url)
                .bind(&record.model)
                .bind(record.temperature)
                .bind(record.max_tokens)
                .bind(&record.api_key_sealed)
                .bind(record.is_active)
                .bind(codec::json(&models))
                .bind(codec::time(now))
                .bind(codec::time(now))
                .bind(&record.embedding_model)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(record)
    }

    /// The configuration `id`, if it exists.
    pub async fn provider(&self, id: &str) -> Result<Option<ProviderRecord>, StoreError> {
        with_pool!(self, |pool, _codec| {
            match sqlx::query(SELECT_ONE).bind(id).fetch_optional(pool).await? {
                Some(row) => Ok(Some(provider_from_row!(&row)?)),
                None => Ok(None),
            }
        })
    }

    /// Every saved configuration, oldest first.
    pub async fn providers(&self) -> Result<Vec<ProviderRecord>, StoreError> {
        with_pool!(self, |pool, _codec| {
            let rows = sqlx::query(SELECT_ALL).fetch_all(pool).await?;
            rows.iter().map(|row| provider_from_row!(row)).collect::<Result<Vec<_>, _>>().map_err(StoreError::from)
        })
    }

    /// The newest active configuration, else the newest one; of `provider_type` when given.
    pub async fn preferred_provider(&self, provider_type: Option<&str>) -> Result<Option<ProviderRecord>, StoreError> {
        with_pool!(self, |pool, _codec| {
            match sqlx::query(SELECT_PREFERRED).bind(provider_type).fetch_optional(pool).await? {
                Some(row) => Ok(Some(provider_from_row!(&row)?)),
                None => Ok(None),
            }
        })
    }

    /// Apply `change` to configuration `id` in one transaction; the changed record, or `None`
    /// when there is no such configuration. [`StoreError::InvalidInput`] for a NUL character.
    pub async fn update_provider(
        &self,
        id: &str,
        change: ProviderChange,
    ) -> Result<Option<ProviderRecord>, StoreError> {
        check_texts(&[
            change.display_name.as_ref(),
            change.base_url.as_ref().and_then(Option::as_ref),
            change.model.as_ref().and_then(Option::as_ref),
            change.embedding_model.as_ref().and_then(Option::as_ref),
        ])?;
        let now = codec::now();
        with_pool!(self, |pool, codec| {
            let mut tx = pool.begin_with(codec::BEGIN_WRITE).await?;
            let Some(row) = sqlx::query(SELECT_ONE).bind(id).fetch_optional(&mut *tx).await? else {
                tx.rollback().await?;
                return Ok(None);
            };
            let mut record = provider_from_row!(&row)?;
            if let Some(v) = change.display_name {
                record.display_name = v;
            }
            macro_rules! set {
                ($($f:ident),*) => { $( if let Some(v) = change.$f { record.$f = v; } )* };
            }
            set!(base_url, model, embedding_model, temperature, max_tokens, api_key_sealed);
            if let Some(v) = change.is_active {
                record.is_active = v;
            }
            record.updated_at = now;
            sqlx::query(UPDATE)
                .bind(&record.id)
                .bind(&record.display_name)
                .bind(&record.base_url)
                .bind(&record.model)
                .bind(record.temperature)
                .bind(record.max_tokens)
                .bind(&record.api_key_sealed)
                .bind(record.is_active)
                .bind(codec::time(now))
                .bind(&record.embedding_model)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(Some(record))
        })
    }

    /// Remember the model ids `id`'s API listed; `false` when there is no such configuration.
    pub async fn set_provider_models(&self, id: &str, models: &[String]) -> Result<bool, StoreError> {
        check_texts(&models.iter().map(Some).collect::<Vec<_>>())?;
        let list = Value::from(models.to_vec());
        let now = codec::now();
        let done = with_pool!(self, |pool, codec| {
            sqlx::query(SET_MODELS)
                .bind(id)
                .bind(codec::json(&list))
                .bind(codec::time(now))
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(done > 0)
    }

    /// Delete configuration `id`; `false` if there was none.
    pub async fn delete_provider(&self, id: &str) -> Result<bool, StoreError> {
        let done = with_pool!(self, |pool, _codec| sqlx::query(DELETE).bind(id).execute(pool).await?.rows_affected());
        Ok(done > 0)
    }
}

/// PostgreSQL refuses NUL in text; refuse it on both backends alike.
fn check_texts(texts: &[Option<&String>]) -> Result<(), StoreError> {
    if texts.iter().flatten().any(|t| t.contains('\0')) {
        return Err(StoreError::InvalidInput("a text field contains a NUL character".to_string()));
    }
    Ok(())
}
