//! Saved database connections as the product uses them: their config (checked, sealed, masked
//! for the edit form), privacy settings, execution mode and cached schema.
//!
//! - [`resolve`]: a stored [`ConnectionRecord`] + the [`Cipher`] → [`Resolved`], everything the
//!   pipeline needs to ask that database (URL, privacy policy, row filter, execution mode);
//! - [`test_connection`]: connect once and report the server version (errors never hold the password);
//! - [`introspect`]: read the live schema under the connection's privacy settings;
//!   [`cached_schema`]: the one the last refresh stored;
//! - [`mask_results`] / [`apply_row_filter`]: the guards every execution path applies;
//! - [`ConnectionConfig`], [`PrivacySettings`], [`SourceType`], [`ExecutionMode`]: the parts.
//!
//! Storage lives in [`crate::store::connections`]; the HTTP routes in `api/v1/connections.rs`.

mod config;
mod privacy;
mod schema_json;
mod source;

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::db::{ConnectOptions, Database, DatabaseUrl, DbError, Flavor};
use crate::schema::{PrivacyPolicy, Schema, fingerprint::fingerprint};
use crate::secrets::{Cipher, SecretsError};
use crate::store::connections::ConnectionRecord;
use crate::store::{Store, StoreError};

pub use config::{ConfigProblem, ConnectionConfig, REDACTED_SENTINEL, SSL_MODES, is_secret_key, redact_config};
pub use privacy::{
    PrivacySettings, PrivacyUpdate, ROW_FILTER_ALIAS, apply_row_filter, mask_results, validate_row_filter,
};
pub use schema_json::datasource_schema;
pub use source::{ExecutionMode, SourceType, datasource_types};

/// How long a connection test (or an introspection's connect) may take to connect.
pub const TEST_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// What the pipeline needs to ask one saved connection. Holds credentials (inside `url`, whose
/// `Display`/`Debug` are redacted): keep it in memory only.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The connection's id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Where to connect (with credentials).
    pub url: DatabaseUrl,
    /// Exclusions and sensitive patterns, for the schema and for [`mask_results`].
    pub privacy: PrivacyPolicy,
    /// The mandatory condition for [`apply_row_filter`], if any.
    pub row_filter_sql: Option<String>,
    /// Run, review or only generate.
    pub execution_mode: ExecutionMode,
    /// The database kind.
    pub source_type: SourceType,
    /// All privacy settings (sample values, comments, row counts, always-included tables).
    pub settings: PrivacySettings,
}

impl Resolved {
    /// Open a pool to the database.
    pub async fn connect(&self, opts: &ConnectOptions) -> Result<Database, ConnectionError> {
        Database::connect(&self.url, opts).await.map_err(|e| ConnectionError::from_db(e, &self.secrets()))
    }

    /// `sql` with the row filter applied (unchanged without one). `flavor` is the connected
    /// database's ([`Database::flavor`]).
    pub fn filter_sql(&self, sql: &str, flavor: Flavor) -> String {
        match &self.row_filter_sql {
            Some(filter) => apply_row_filter(sql, filter, flavor),
            None => sql.to_string(),
        }
    }

    fn secrets(&self) -> Vec<String> {
        self.url.password().into_iter().collect()
    }
}

/// What can go wrong with a saved or unsaved connection. No message contains a password.
#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    /// The config is not usable (bad field, wrong URL scheme, forbidden path).
    #[error("invalid connection config: {}", describe(.0))]
    InvalidConfig(Vec<ConfigProblem>),
    /// The stored config could not be opened (another key, damaged bytes).
    #[error("the stored connection config cannot be opened: {0}")]
    Sealed(#[from] SecretsError),
    /// The stored record is unreadable (unknown source type or mode, bad JSON).
    #[error("the stored connection is unreadable: {0}")]
    Stored(String),
    /// Connecting or reading from the database failed (message scrubbed of secrets).
    #[error("{0}")]
    Database(String),
}

fn describe(problems: &[ConfigProblem]) -> String {
    problems
        .iter()
        .map(|p| if p.field.is_empty() { p.message.clone() } else { format!("{}: {}", p.field, p.message) })
        .collect::<Vec<_>>()
        .join("; ")
}

impl ConnectionError {
    /// A database error with every secret scrubbed from its text.
    fn from_db(e: DbError, secrets: &[String]) -> Self {
        ConnectionError::Database(scrub(&e.to_string(), secrets))
    }
}

/// `text` with every secret (and its percent-encoded form) replaced by `***`.
pub fn scrub(text: &str, secrets: &[String]) -> String {
    let mut out = text.to_string();
    for secret in secrets.iter().filter(|s| s.len() >= 2) {
        out = out.replace(secret.as_str(), "***");
        let encoded: String = url::form_urlencoded::byte_serialize(secret.as_bytes()).collect();
        if encoded != *secret {
            out = out.replace(&encoded, "***");
        }
    }
    out
}

/// Open a stored connection: decrypt its config, read its privacy settings and mode.
pub fn resolve(record: &ConnectionRecord, cipher: &Cipher) -> Result<Resolved, ConnectionError> {
    let source_type: SourceType = record.source_type.parse().map_err(ConnectionError::Stored)?;
    let execution_mode: ExecutionMode = record.execution_mode.parse().map_err(ConnectionError::Stored)?;
    let config = open_config(record, cipher)?;
    let url = config.url().map_err(|p| ConnectionError::InvalidConfig(vec![p]))?;
    let settings = PrivacySettings::from_stored(&record.privacy).map_err(ConnectionError::Stored)?;
    Ok(Resolved {
        id: record.id.clone(),
        name: record.name.clone(),
        url,
        privacy: settings.policy(),
        row_filter_sql: settings.row_filter_sql.clone(),
        execution_mode,
        source_type,
        settings,
    })
}

/// The stored config of `record`, opened.
pub fn open_config(record: &ConnectionRecord, cipher: &Cipher) -> Result<ConnectionConfig, ConnectionError> {
    let source_type: SourceType = record.source_type.parse().map_err(ConnectionError::Stored)?;
    let text = cipher.open_str(&record.config_sealed)?;
    let value: serde_json::Value = serde_json::from_str(&text)
        .map_err(|_| ConnectionError::Stored("the stored config is not JSON".to_string()))?;
    ConnectionConfig::parse(source_type, &value).map_err(ConnectionError::InvalidConfig)
}

/// Seal a checked config for storage.
pub fn seal_config(config: &ConnectionConfig, cipher: &Cipher) -> Vec<u8> {
    cipher.seal(config.to_json().to_string().as_bytes())
}

/// Refuse SQLite files inside `data_dir` (Quarry's own store and keys must not become queryable
/// through a connection). The path is compared both as written (made absolute, `.` and `..`
/// folded) and with symlinks resolved; a file that does not exist yet is judged by its folder.
pub fn check_sqlite_path(config: &ConnectionConfig, data_dir: &Path) -> Result<(), ConnectionError> {
    if config.source_type() != SourceType::Sqlite {
        return Ok(());
    }
    let json = config.to_json();
    let path = Path::new(json["path"].as_str().unwrap_or(""));
    let mut candidates = vec![lexical(path)];
    if let Ok(p) = std::fs::canonicalize(path) {
        candidates.push(p);
    } else if let (Some(parent), Some(name)) = (path.parent(), path.file_name()) {
        let parent = if parent.as_os_str().is_empty() { Path::new(".") } else { parent };
        if let Ok(p) = std::fs::canonicalize(parent) {
            candidates.push(p.join(name));
        }
    }
    let mut protected = vec![lexical(data_dir)];
    if let Ok(p) = std::fs::canonicalize(data_dir) {
        protected.push(p);
    }
    if candidates.iter().any(|c| protected.iter().any(|d| c.starts_with(d))) {
        return Err(ConnectionError::InvalidConfig(vec![ConfigProblem {
            field: "path".into(),
            message: "files inside Quarry's data folder cannot be used as a connection".into(),
        }]));
    }
    Ok(())
}

/// `path` made absolute (against the working folder) with `.` and `..` folded, without touching
/// the file system.
fn lexical(path: &Path) -> std::path::PathBuf {
    use std::path::Component;
    let absolute =
        if path.is_absolute() { path.to_path_buf() } else { std::env::current_dir().unwrap_or_default().join(path) };
    let mut out = std::path::PathBuf::new();
    for part in absolute.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// The cached schema of connection `id` (as the last refresh stored it) and when it was read;
/// `None` when nothing is cached, or when what is cached was written by a version of Quarry whose
/// schema this one cannot read (a refresh replaces it).
pub async fn cached_schema(store: &Store, id: &str) -> Result<Option<(Schema, DateTime<Utc>)>, StoreError> {
    let Some(cached) = store.connection_schema(id).await? else {
        return Ok(None);
    };
    Ok(serde_json::from_value::<Schema>(cached.schema).ok().map(|schema| (schema, cached.refreshed_at)))
}

/// The outcome of a successful test.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TestOutcome {
    /// Always true (failures are errors).
    pub success: bool,
    /// For people.
    pub message: String,
    /// What the server reports.
    pub server_version: Option<String>,
}

/// Connect to `config`'s database once (within [`TEST_CONNECT_TIMEOUT`]), read its version and
/// disconnect. Writes nothing anywhere.
pub async fn test_connection(config: &ConnectionConfig) -> Result<TestOutcome, ConnectionError> {
    let url = config.url().map_err(|p| ConnectionError::InvalidConfig(vec![p]))?;
    let opts =
        ConnectOptions { connect_timeout: TEST_CONNECT_TIMEOUT, max_connections: 1, ..ConnectOptions::default() };
    let db = Database::connect(&url, &opts).await.map_err(|e| ConnectionError::from_db(e, &config.secrets()))?;
    let version = db.server_version().to_string();
    db.close().await;
    Ok(TestOutcome {
        success: true,
        message: format!("Connected to {}", config.source_type().dialect_name()),
        server_version: Some(version),
    })
}

/// Read the live schema of a resolved connection under its privacy settings: exclusions and
/// sensitive columns applied, samples only when allowed, comments and row counts dropped when
/// the settings say so (the fingerprint then covers what is kept).
pub async fn introspect(resolved: &Resolved) -> Result<Schema, ConnectionError> {
    let opts =
        ConnectOptions { connect_timeout: TEST_CONNECT_TIMEOUT, max_connections: 2, ..ConnectOptions::default() };
    let db = resolved.connect(&opts).await?;
    let read = crate::schema::introspect(&db, &resolved.settings.introspect_options()).await;
    db.close().await;
    let mut schema = read.map_err(|e| ConnectionError::from_db(e, &resolved.secrets()))?;
    if !resolved.settings.include_column_comments || !resolved.settings.include_row_counts {
        for table in &mut schema.tables {
            if !resolved.settings.include_column_comments {
                table.comment = None;
                table.columns.iter_mut().for_each(|c| c.comment = None);
            }
            if !resolved.settings.include_row_counts {
                table.row_estimate = None;
            }
        }
        schema.fingerprint = fingerprint(&schema.tables);
    }
    Ok(schema)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record(source_type: &str, config: serde_json::Value, cipher: &Cipher) -> ConnectionRecord {
        ConnectionRecord {
            id: "c1".into(),
            name: "shop".into(),
            source_type: source_type.into(),
            execution_mode: "review_first".into(),
            config_sealed: cipher.seal(config.to_string().as_bytes()),
            privacy: json!({"row_filter_sql": "region = 'EU'", "excluded_tables": ["secrets"]}),
            is_active: true,
            schema_fingerprint: None,
            schema_refreshed_at: None,
            created_at: chrono::Utc::now(),
            updated_at: chrono::Utc::now(),
        }
    }

    #[test]
    fn resolve_opens_the_config() {
        let cipher = Cipher::generate();
        let r = resolve(
            &record(
                "postgresql",
                json!({"host": "h", "database": "d", "username": "u", "password": "pw-123"}),
                &cipher,
            ),
            &cipher,
        )
        .unwrap();
        assert_eq!(r.url.password().as_deref(), Some("pw-123"));
        assert_eq!(r.execution_mode, ExecutionMode::ReviewFirst);
        assert_eq!(r.source_type, SourceType::Postgresql);
        assert_eq!(r.row_filter_sql.as_deref(), Some("region = 'EU'"));
        assert!(r.privacy.excludes_table(None, "secrets"));
        assert!(r.privacy.is_sensitive("email"), "default patterns apply");
        assert!(!format!("{r:?}").contains("pw-123"));
        assert!(r.filter_sql("SELECT * FROM t", Flavor::PostgreSQL).contains("WHERE (region = 'EU')"));

        let other = Cipher::generate();
        let err = resolve(&record("sqlite", json!({"path": "/x.db"}), &cipher), &other).unwrap_err();
        assert!(matches!(err, ConnectionError::Sealed(SecretsError::WrongKey { .. })));
        assert!(matches!(resolve(&record("oracle", json!({}), &cipher), &cipher), Err(ConnectionError::Stored(_))));
    }

    #[test]
    fn scrubbing() {
        let s = scrub("auth failed for p@ss w and p%40ss+w", &["p@ss w".into()]);
        assert_eq!(s, "auth failed for *** and ***");
    }

    #[test]
    fn sqlite_files_in_the_data_folder_are_refused() {
        let data = tempfile::tempdir().unwrap();
        std::fs::write(data.path().join("quarry.db"), b"").unwrap();
        let inside = ConnectionConfig::parse(
            SourceType::Sqlite,
            &json!({"path": data.path().join("sub/../quarry.db").to_string_lossy()}),
        )
        .unwrap();
        assert!(check_sqlite_path(&inside, data.path()).is_err());
        let outside = ConnectionConfig::parse(SourceType::Sqlite, &json!({"path": "/tmp/elsewhere.db"})).unwrap();
        assert!(check_sqlite_path(&outside, data.path()).is_ok());
        #[cfg(unix)]
        {
            let other = tempfile::tempdir().unwrap();
            let link = other.path().join("innocent.db");
            std::os::unix::fs::symlink(data.path().join("quarry.db"), &link).unwrap();
            let linked = ConnectionConfig::parse(SourceType::Sqlite, &json!({"path": link.to_string_lossy()})).unwrap();
            assert!(check_sqlite_path(&linked, data.path()).is_err());
        }
    }

    #[tokio::test]
    async fn test_and_introspect_sqlite() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shop.db");
        {
            let pool = sqlx::SqlitePool::connect(&format!("sqlite:{}?mode=rwc", path.display())).await.unwrap();
            for sql in [
                "CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT, email TEXT)",
                "CREATE TABLE secrets (id INTEGER PRIMARY KEY, value TEXT)",
                "INSERT INTO customers VALUES (1, 'Ann', 'ann@example.com')",
            ] {
                sqlx::query(sql).execute(&pool).await.unwrap();
            }
            pool.close().await;
        }
        let config = ConnectionConfig::parse(SourceType::Sqlite, &json!({"path": path.to_string_lossy()})).unwrap();
        let outcome = test_connection(&config).await.unwrap();
        assert!(outcome.success && outcome.server_version.is_some());

        let cipher = Cipher::generate();
        let mut rec = record("sqlite", config.to_json(), &cipher);
        rec.privacy = json!({"excluded_tables": ["secrets"]});
        let schema = introspect(&resolve(&rec, &cipher).unwrap()).await.unwrap();
        let names: Vec<&str> = schema.tables.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["customers"]);
        let email = schema.tables[0].column("email").unwrap();
        assert!(email.sensitive && email.samples.is_empty());
        assert_eq!(schema.tables[0].column("name").unwrap().samples, vec![json!("Ann")]);

        let missing =
            ConnectionConfig::parse(SourceType::Sqlite, &json!({"path": dir.path().join("nope.db")})).unwrap();
        assert!(matches!(test_connection(&missing).await, Err(ConnectionError::Database(_))));
    }
}
