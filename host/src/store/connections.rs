//! Metadata store: saved database connections (table `connections`, migration 0003).
//!
//! Credentials stay sealed here: the store reads and writes the sealed config as bytes and never
//! sees a password; opening it is [`crate::connections`]'s job. Deletes are soft and wipe the
//! sealed config and the cached schema. Also here: re-sealing every sealed value of the store in
//! one transaction, for key rotation ([`Store::reseal_secrets`]).

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::Row as _;
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use uuid::Uuid;

use super::codec::{self, StoreRow};
use super::{Store, StoreError, with_pool};
use crate::secrets::SecretsError;

/// Longest connection name, in characters.
pub const MAX_NAME_CHARS: usize = 255;

/// A saved connection as other modules see it (credentials stay sealed).
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectionRecord {
    /// UUID.
    pub id: String,
    /// Unique name.
    pub name: String,
    /// `postgresql`, `mysql` or `sqlite`.
    pub source_type: String,
    /// `auto_execute`, `review_first` or `generate_only`.
    pub execution_mode: String,
    /// The config JSON sealed with [`crate::secrets::Cipher`]; empty once deleted.
    pub config_sealed: Vec<u8>,
    /// The privacy settings as stored (see [`crate::connections::PrivacySettings`]).
    pub privacy: Value,
    /// False once deleted.
    pub is_active: bool,
    /// Structure hash of the cached schema, if one is cached.
    pub schema_fingerprint: Option<String>,
    /// When the cached schema was read, if one is cached.
    pub schema_refreshed_at: Option<DateTime<Utc>>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

/// What [`Store::create_connection`] needs.
#[derive(Debug, Clone)]
pub struct NewConnection {
    /// Unique among active connections, 1..=[`MAX_NAME_CHARS`] characters.
    pub name: String,
    /// `postgresql`, `mysql` or `sqlite`.
    pub source_type: String,
    /// The sealed config.
    pub config_sealed: Vec<u8>,
    /// Privacy settings JSON.
    pub privacy: Value,
    /// `auto_execute`, `review_first` or `generate_only`.
    pub execution_mode: String,
}

/// Another active connection already has that name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a connection with this name already exists")]
pub struct NameTaken;

/// A cached introspection of a connection.
#[derive(Debug, Clone, PartialEq)]
pub struct CachedSchema {
    /// The schema as [`crate::schema::Schema`] serializes it.
    pub schema: Value,
    /// Its structure hash.
    pub fingerprint: String,
    /// When it was read.
    pub refreshed_at: DateTime<Utc>,
}

/// How many sealed values [`Store::reseal_secrets`] re-sealed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResealCounts {
    /// Connection configs.
    pub connections: u64,
    /// Provider API keys (0 when the `provider_configs` table does not exist yet).
    pub provider_keys: u64,
}

/// The columns [`record_from_row`] reads, in order.
macro_rules! connection_columns {
    () => {
        "id, name, source_type, execution_mode, config_sealed, privacy, is_active, schema_fingerprint, \
         schema_refreshed_at, created_at, updated_at"
    };
}

const INSERT: &str = "INSERT INTO connections (id, name, source_type, config_sealed, privacy, execution_mode, \
     is_active, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, TRUE, $7, $7)";
const GET_ACTIVE: &str =
    concat!("SELECT ", connection_columns!(), " FROM connections WHERE id = $1 AND is_active = TRUE");
const PAGE_ACTIVE: &str = concat!(
    "SELECT ",
    connection_columns!(),
    " FROM connections WHERE is_active = TRUE ORDER BY created_at DESC, id LIMIT $1 OFFSET $2"
);
const COUNT_ACTIVE: &str = "SELECT COUNT(*) FROM connections WHERE is_active = TRUE";
const DEACTIVATE: &str = "UPDATE connections SET is_active = FALSE, config_sealed = $2, schema_json = NULL, \
     schema_fingerprint = NULL, schema_refreshed_at = NULL, updated_at = $3 WHERE id = $1 AND is_active = TRUE";
const RENAME: &str = "UPDATE connections SET name = $2, updated_at = $3 WHERE id = $1 AND is_active = TRUE";
const SET_CONFIG: &str = "UPDATE connections SET config_sealed = $2, schema_json = NULL, schema_fingerprint = NULL, \
     schema_refreshed_at = NULL, updated_at = $3 WHERE id = $1 AND is_active = TRUE";
const SET_PRIVACY: &str = "UPDATE connections SET privacy = $2, schema_json = NULL, schema_fingerprint = NULL, \
     schema_refreshed_at = NULL, updated_at = $3 WHERE id = $1 AND is_active = TRUE";
const SET_MODE: &str = "UPDATE connections SET execution_mode = $2, updated_at = $3 WHERE id = $1 AND is_active = TRUE";
const SET_SCHEMA: &str = "UPDATE connections SET schema_json = $2, schema_fingerprint = $3, schema_refreshed_at = $4 \
     WHERE id = $1 AND is_active = TRUE";
const GET_SCHEMA: &str = "SELECT schema_json, schema_fingerprint, schema_refreshed_at FROM connections \
     WHERE id = $1 AND is_active = TRUE AND schema_json IS NOT NULL";

const SEALED_CONFIGS: &str = "SELECT id, config_sealed FROM connections WHERE length(config_sealed) > 0";
const SEALED_CONFIGS_LOCKED: &str =
    "SELECT id, config_sealed FROM connections WHERE length(config_sealed) > 0 FOR UPDATE";
const RESEAL_CONFIG: &str = "UPDATE connections SET config_sealed = $2 WHERE id = $1";
const SQLITE_HAS_PROVIDERS: &str =
    "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'provider_configs'";
const PG_HAS_PROVIDERS: &str = "SELECT COUNT(*) FROM information_schema.tables \
     WHERE table_name = 'provider_configs' AND table_schema = current_schema()";
// The id is read and matched as text whatever its column type.
const SEALED_PROVIDER_KEYS: &str =
    "SELECT CAST(id AS TEXT) AS id, api_key_sealed FROM provider_configs WHERE api_key_sealed IS NOT NULL";
const SEALED_PROVIDER_KEYS_LOCKED: &str = "SELECT CAST(id AS TEXT) AS id, api_key_sealed FROM provider_configs \
     WHERE api_key_sealed IS NOT NULL FOR UPDATE";
const RESEAL_PROVIDER_KEY: &str = "UPDATE provider_configs SET api_key_sealed = $2 WHERE CAST(id AS TEXT) = $1";

/// Column kinds the shared [`StoreRow`] does not cover.
trait ConnectionRow: StoreRow {
    /// A `NOT NULL` BLOB / BYTEA column.
    fn bytes(&self, col: &str) -> Result<Vec<u8>, sqlx::Error>;
}

impl ConnectionRow for SqliteRow {
    fn bytes(&self, col: &str) -> Result<Vec<u8>, sqlx::Error> {
        self.try_get(col)
    }
}

impl ConnectionRow for PgRow {
    fn bytes(&self, col: &str) -> Result<Vec<u8>, sqlx::Error> {
        self.try_get(col)
    }
}

fn record_from_row(row: &impl ConnectionRow) -> Result<ConnectionRecord, sqlx::Error> {
    Ok(ConnectionRecord {
        id: row.text("id")?,
        name: row.text("name")?,
        source_type: row.text("source_type")?,
        execution_mode: row.text("execution_mode")?,
        config_sealed: row.bytes("config_sealed")?,
        privacy: row.json("privacy")?,
        is_active: row.boolean("is_active")?,
        schema_fingerprint: row.opt_text("schema_fingerprint")?,
        schema_refreshed_at: row.opt_time("schema_refreshed_at")?,
        created_at: row.time("created_at")?,
        updated_at: row.time("updated_at")?,
    })
}

/// Whether a failed write broke the unique name index.
fn is_name_taken(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}

/// 1..=[`MAX_NAME_CHARS`] characters after trimming, no NUL; the trimmed name.
pub fn check_name(name: &str) -> Result<String, StoreError> {
    let trimmed = name.trim();
    if trimmed.is_empty() {
        return Err(StoreError::InvalidInput("the connection name is empty".into()));
    }
    let chars = trimmed.chars().count();
    if chars > MAX_NAME_CHARS {
        return Err(StoreError::InvalidInput(format!(
            "the connection name has {chars} characters; at most {MAX_NAME_CHARS} are allowed"
        )));
    }
    if trimmed.contains('\0') {
        return Err(StoreError::InvalidInput("the connection name contains a NUL character".into()));
    }
    Ok(trimmed.to_string())
}

/// A page size or offset as `BIGINT`.
fn sql_count(n: i64) -> i64 {
    n.max(0)
}

impl Store {
    /// The active connection `id`, if there is one.
    pub async fn connection(&self, id: &str) -> Result<Option<ConnectionRecord>, StoreError> {
        let record = with_pool!(self, |pool, _codec| {
            let row = sqlx::query(GET_ACTIVE).bind(id).fetch_optional(pool).await?;
            row.as_ref().map(record_from_row).transpose()?
        });
        Ok(record)
    }

    /// Save a new connection; `Ok(Err(NameTaken))` when an active connection has the name.
    /// [`StoreError::InvalidInput`] for a bad name (nothing written).
    pub async fn create_connection(
        &self,
        new: NewConnection,
    ) -> Result<Result<ConnectionRecord, NameTaken>, StoreError> {
        let name = check_name(&new.name)?;
        if new.privacy.to_string().contains("\\u0000") {
            return Err(StoreError::InvalidInput("the privacy settings contain a NUL character".into()));
        }
        let id = Uuid::new_v4().to_string();
        let now = codec::now();
        let done = with_pool!(self, |pool, codec| {
            sqlx::query(INSERT)
                .bind(&id)
                .bind(&name)
                .bind(&new.source_type)
                .bind(&new.config_sealed)
                .bind(codec::json(&new.privacy))
                .bind(&new.execution_mode)
                .bind(codec::time(now))
                .execute(pool)
                .await
                .map(|done| done.rows_affected())
        });
        match done {
            Ok(_) => {}
            Err(e) if is_name_taken(&e) => return Ok(Err(NameTaken)),
            Err(e) => return Err(e.into()),
        }
        Ok(Ok(ConnectionRecord {
            id,
            name,
            source_type: new.source_type,
            execution_mode: new.execution_mode,
            config_sealed: new.config_sealed,
            privacy: new.privacy,
            is_active: true,
            schema_fingerprint: None,
            schema_refreshed_at: None,
            created_at: now,
            updated_at: now,
        }))
    }

    /// Active connections, newest first, one page, with the total.
    pub async fn list_connections(&self, limit: i64, offset: i64) -> Result<(Vec<ConnectionRecord>, i64), StoreError> {
        let page = with_pool!(self, |pool, _codec| {
            let total: i64 = sqlx::query_scalar(COUNT_ACTIVE).fetch_one(pool).await?;
            let rows = sqlx::query(PAGE_ACTIVE).bind(sql_count(limit)).bind(sql_count(offset)).fetch_all(pool).await?;
            (rows.iter().map(record_from_row).collect::<Result<Vec<_>, _>>()?, total)
        });
        Ok(page)
    }

    /// Soft-delete: mark inactive, wipe the sealed config and the cached schema. `false` when
    /// there was no such active connection.
    pub async fn delete_connection(&self, id: &str) -> Result<bool, StoreError> {
        let now = codec::now();
        let done = with_pool!(self, |pool, codec| {
            sqlx::query(DEACTIVATE)
                .bind(id)
                .bind(Vec::<u8>::new())
                .bind(codec::time(now))
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(done > 0)
    }

    /// Rename and/or replace the sealed config in one transaction (a new config also drops the
    /// cached schema). `Ok(Ok(None))` when there is no such active connection, `Ok(Err(NameTaken))`
    /// when the new name is taken (nothing changed).
    pub async fn update_connection(
        &self,
        id: &str,
        name: Option<&str>,
        config_sealed: Option<&[u8]>,
    ) -> Result<Result<Option<ConnectionRecord>, NameTaken>, StoreError> {
        let name = name.map(check_name).transpose()?;
        let now = codec::now();
        let outcome: Result<Option<ConnectionRecord>, NameTaken> = with_pool!(self, |pool, codec| {
            let mut tx = pool.begin_with(codec::BEGIN_WRITE).await?;
            let mut found = true;
            if let Some(name) = &name {
                match sqlx::query(RENAME).bind(id).bind(name).bind(codec::time(now)).execute(&mut *tx).await {
                    Ok(done) => found = done.rows_affected() > 0,
                    Err(e) if is_name_taken(&e) => return Ok(Err(NameTaken)),
                    Err(e) => return Err(e.into()),
                }
            }
            if let Some(sealed) = config_sealed
                && found
            {
                let done =
                    sqlx::query(SET_CONFIG).bind(id).bind(sealed).bind(codec::time(now)).execute(&mut *tx).await?;
                found = done.rows_affected() > 0;
            }
            let row = sqlx::query(GET_ACTIVE).bind(id).fetch_optional(&mut *tx).await?;
            let record = row.as_ref().map(record_from_row).transpose()?;
            tx.commit().await?;
            Ok(if found { record } else { None })
        });
        Ok(outcome)
    }

    /// Replace the privacy settings (drops the cached schema, which was read under the old ones).
    /// `None` when there is no such active connection.
    pub async fn set_connection_privacy(
        &self,
        id: &str,
        privacy: &Value,
    ) -> Result<Option<ConnectionRecord>, StoreError> {
        if privacy.to_string().contains("\\u0000") {
            return Err(StoreError::InvalidInput("the privacy settings contain a NUL character".into()));
        }
        let now = codec::now();
        with_pool!(self, |pool, codec| {
            sqlx::query(SET_PRIVACY).bind(id).bind(codec::json(privacy)).bind(codec::time(now)).execute(pool).await?;
        });
        self.connection(id).await
    }

    /// Set the execution mode (`auto_execute`, `review_first`, `generate_only`; the caller checks).
    /// `None` when there is no such active connection.
    pub async fn set_connection_execution_mode(
        &self,
        id: &str,
        mode: &str,
    ) -> Result<Option<ConnectionRecord>, StoreError> {
        let now = codec::now();
        with_pool!(self, |pool, codec| {
            sqlx::query(SET_MODE).bind(id).bind(mode).bind(codec::time(now)).execute(pool).await?;
        });
        self.connection(id).await
    }

    /// Cache an introspected schema. `false` when there is no such active connection.
    pub async fn store_connection_schema(
        &self,
        id: &str,
        schema: &Value,
        fingerprint: &str,
        refreshed_at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        if schema.to_string().contains("\\u0000") {
            return Err(StoreError::InvalidInput("the schema contains a NUL character".into()));
        }
        let done = with_pool!(self, |pool, codec| {
            sqlx::query(SET_SCHEMA)
                .bind(id)
                .bind(codec::json(schema))
                .bind(fingerprint)
                .bind(codec::time(refreshed_at))
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(done > 0)
    }

    /// The cached schema of an active connection, if one is cached.
    pub async fn connection_schema(&self, id: &str) -> Result<Option<CachedSchema>, StoreError> {
        let cached = with_pool!(self, |pool, _codec| {
            match sqlx::query(GET_SCHEMA).bind(id).fetch_optional(pool).await? {
                None => None,
                Some(row) => {
                    let schema = row.opt_json("schema_json")?;
                    let fingerprint = row.opt_text("schema_fingerprint")?;
                    let refreshed_at = row.opt_time("schema_refreshed_at")?;
                    match (schema, fingerprint, refreshed_at) {
                        (Some(schema), Some(fingerprint), Some(refreshed_at)) => {
                            Some(CachedSchema { schema, fingerprint, refreshed_at })
                        }
                        _ => None,
                    }
                }
            }
        });
        Ok(cached)
    }

    /// Key rotation: pass every sealed value of the store — connection configs and, when the table
    /// exists, `provider_configs.api_key_sealed` — through `reseal` and write the results, all in
    /// one transaction. `before_commit` runs last, inside it (to put the new key in place); if it or
    /// any `reseal` fails, nothing is written and its error comes back as `Ok(Err(..))`.
    pub async fn reseal_secrets<F, G>(
        &self,
        mut reseal: F,
        before_commit: G,
    ) -> Result<Result<ResealCounts, SecretsError>, StoreError>
    where
        F: FnMut(&[u8]) -> Result<Vec<u8>, SecretsError>,
        G: FnOnce(&ResealCounts) -> Result<(), SecretsError>,
    {
        // SQLite's BEGIN IMMEDIATE already excludes other writers; PostgreSQL locks the rows.
        let (has_providers_sql, configs_sql, keys_sql) = match self.backend() {
            "postgres" => (PG_HAS_PROVIDERS, SEALED_CONFIGS_LOCKED, SEALED_PROVIDER_KEYS_LOCKED),
            _ => (SQLITE_HAS_PROVIDERS, SEALED_CONFIGS, SEALED_PROVIDER_KEYS),
        };
        let outcome: Result<ResealCounts, SecretsError> = with_pool!(self, |pool, codec| {
            let mut tx = pool.begin_with(codec::BEGIN_WRITE).await?;
            let mut counts = ResealCounts::default();
            let rows = sqlx::query(configs_sql).fetch_all(&mut *tx).await?;
            for row in &rows {
                let id = row.text("id")?;
                let sealed = match reseal(&row.bytes("config_sealed")?) {
                    Ok(sealed) => sealed,
                    Err(e) => return Ok(Err(e)),
                };
                sqlx::query(RESEAL_CONFIG).bind(&id).bind(sealed).execute(&mut *tx).await?;
                counts.connections += 1;
            }
            let has_providers: i64 = sqlx::query_scalar(has_providers_sql).fetch_one(&mut *tx).await?;
            if has_providers > 0 {
                let rows = sqlx::query(keys_sql).fetch_all(&mut *tx).await?;
                for row in &rows {
                    let id = row.text("id")?;
                    let sealed = match reseal(&row.bytes("api_key_sealed")?) {
                        Ok(sealed) => sealed,
                        Err(e) => return Ok(Err(e)),
                    };
                    sqlx::query(RESEAL_PROVIDER_KEY).bind(&id).bind(sealed).execute(&mut *tx).await?;
                    counts.provider_keys += 1;
                }
            }
            if let Err(e) = before_commit(&counts) {
                return Ok(Err(e));
            }
            tx.commit().await?;
            Ok(counts)
        });
        Ok(outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn new_conn(name: &str) -> NewConnection {
        NewConnection {
            name: name.into(),
            source_type: "sqlite".into(),
            config_sealed: vec![1, 2, 3],
            privacy: json!({"excluded_tables": ["x"]}),
            execution_mode: "auto_execute".into(),
        }
    }

    #[tokio::test]
    async fn create_get_list_delete() {
        let store = Store::open("sqlite::memory:").await.unwrap();
        let a = store.create_connection(new_conn(" alpha ")).await.unwrap().unwrap();
        assert_eq!(a.name, "alpha");
        let b = store.create_connection(new_conn("beta")).await.unwrap().unwrap();
        assert_eq!(store.create_connection(new_conn("alpha")).await.unwrap(), Err(NameTaken));
        assert!(matches!(store.create_connection(new_conn("  ")).await, Err(StoreError::InvalidInput(_))));

        let got = store.connection(&a.id).await.unwrap().unwrap();
        assert_eq!(got, a);
        let (items, total) = store.list_connections(10, 0).await.unwrap();
        assert_eq!(total, 2);
        assert_eq!(items.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(), ["beta", "alpha"]);
        let (items, _) = store.list_connections(1, 1).await.unwrap();
        assert_eq!(items[0].id, a.id);

        assert!(store.delete_connection(&a.id).await.unwrap());
        assert!(!store.delete_connection(&a.id).await.unwrap());
        assert!(store.connection(&a.id).await.unwrap().is_none());
        // The name is free again.
        store.create_connection(new_conn("alpha")).await.unwrap().unwrap();
        assert!(store.connection(&b.id).await.unwrap().is_some());
    }

    #[tokio::test]
    async fn updates_and_schema_cache() {
        let store = Store::open("sqlite::memory:").await.unwrap();
        let a = store.create_connection(new_conn("alpha")).await.unwrap().unwrap();
        let b = store.create_connection(new_conn("beta")).await.unwrap().unwrap();
        let now = codec::now();
        assert!(store.store_connection_schema(&a.id, &json!({"tables": []}), "fp", now).await.unwrap());
        let cached = store.connection_schema(&a.id).await.unwrap().unwrap();
        assert_eq!((cached.fingerprint.as_str(), cached.refreshed_at), ("fp", now));

        // A taken name changes nothing, not even the config given with it.
        let r = store.update_connection(&a.id, Some("beta"), Some(&[9, 9])).await.unwrap();
        assert_eq!(r, Err(NameTaken));
        assert_eq!(store.connection(&a.id).await.unwrap().unwrap().config_sealed, vec![1, 2, 3]);
        assert!(store.connection_schema(&a.id).await.unwrap().is_some());

        let r = store.update_connection(&a.id, Some("gamma"), Some(&[9, 9])).await.unwrap().unwrap().unwrap();
        assert_eq!((r.name.as_str(), r.config_sealed.as_slice()), ("gamma", &[9u8, 9][..]));
        assert!(store.connection_schema(&a.id).await.unwrap().is_none(), "a new config keeps the old schema");
        assert_eq!(store.update_connection("nope", Some("x"), None).await.unwrap(), Ok(None));

        let r = store.set_connection_execution_mode(&b.id, "review_first").await.unwrap().unwrap();
        assert_eq!(r.execution_mode, "review_first");
        store.store_connection_schema(&b.id, &json!({}), "fp", now).await.unwrap();
        let r = store.set_connection_privacy(&b.id, &json!({"row_filter_sql": "a = 1"})).await.unwrap().unwrap();
        assert_eq!(r.privacy["row_filter_sql"], "a = 1");
        assert!(store.connection_schema(&b.id).await.unwrap().is_none());
        assert!(store.set_connection_privacy("nope", &json!({})).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn reseal_is_all_or_nothing() {
        let store = Store::open("sqlite::memory:").await.unwrap();
        let a = store.create_connection(new_conn("alpha")).await.unwrap().unwrap();
        store.create_connection(new_conn("beta")).await.unwrap().unwrap();
        let gone = store.create_connection(new_conn("gone")).await.unwrap().unwrap();
        store.delete_connection(&gone.id).await.unwrap();

        // A failure on the second value leaves the first untouched.
        let mut seen = 0;
        let r = store
            .reseal_secrets(
                |v| {
                    seen += 1;
                    if seen == 2 { Err(SecretsError::Tampered) } else { Ok([v, &[7]].concat()) }
                },
                |_| Ok(()),
            )
            .await
            .unwrap();
        assert!(matches!(r, Err(SecretsError::Tampered)));
        assert_eq!(store.connection(&a.id).await.unwrap().unwrap().config_sealed, vec![1, 2, 3]);

        // before_commit failing also rolls back.
        let r = store.reseal_secrets(|v| Ok([v, &[7]].concat()), |_| Err(SecretsError::Key("no".into()))).await;
        assert!(matches!(r, Ok(Err(SecretsError::Key(_)))));
        assert_eq!(store.connection(&a.id).await.unwrap().unwrap().config_sealed, vec![1, 2, 3]);

        let counts = store.reseal_secrets(|v| Ok([v, &[7]].concat()), |_| Ok(())).await.unwrap().unwrap();
        assert_eq!(counts, ResealCounts { connections: 2, provider_keys: 0 });
        assert_eq!(store.connection(&a.id).await.unwrap().unwrap().config_sealed, vec![1, 2, 3, 7]);
    }
}
