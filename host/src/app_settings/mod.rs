//! Settings an admin changes at run time, kept in the metadata store so every replica sees a
//! change at once (each process caches what it read for at most [`CACHE_FOR`]).
//!
//! - [`Settings`]: the values and their defaults; [`SETTINGS`]: each key's kind and range;
//! - [`AppSettings`]: [`current`](AppSettings::current) and [`update`](AppSettings::update);
//! - [`log_level`]: the process's log filter, which follows the `log_level` setting live (and
//!   from the stored value at start-up; other replicas pick a change up within [`WATCH_EVERY`]).

pub mod log_level;

use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{Map, Value};

use crate::store::{Store, StoreError};

/// How long a read of the settings is reused before the store is asked again.
pub const CACHE_FOR: Duration = Duration::from_secs(1);

/// How often a server with a reloadable log filter checks the stored `log_level`.
pub const WATCH_EVERY: Duration = Duration::from_secs(5);

/// The live settings.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Settings {
    /// Rows a query returns unless the question asks for fewer (≤ `max_row_limit`).
    pub default_row_limit: u64,
    /// Rows a query may return at most, whatever the question asks.
    pub max_row_limit: u64,
    /// Seconds a query may run on the user's database.
    pub default_query_timeout: u64,
    /// Whether answers are served from and stored in the answer cache.
    pub cache_enabled: bool,
    /// Seconds an answer stays in the cache; 0 = until cleared.
    pub cache_ttl_secs: u64,
    /// Similarity (0–1) above which a different question reuses a cached answer.
    pub semantic_similarity_threshold: f64,
    /// Cached answers kept per connection; the oldest go first.
    pub cache_max_entries_per_connection: u64,
    /// Tokens the schema part of a prompt may take.
    pub schema_token_budget: u64,
    /// The log filter: a level or a `RUST_LOG`-style directive.
    pub log_level: String,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            default_row_limit: 1000,
            max_row_limit: 10_000,
            default_query_timeout: 30,
            cache_enabled: true,
            cache_ttl_secs: 30 * 24 * 3600,
            semantic_similarity_threshold: 0.87,
            cache_max_entries_per_connection: 500,
            schema_token_budget: 6000,
            log_level: "info".to_string(),
        }
    }
}

/// What a setting may hold.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    /// A whole number in `min..=max`.
    Int {
        /// Smallest allowed.
        min: u64,
        /// Largest allowed.
        max: u64,
    },
    /// A number in `min..=max`.
    Float {
        /// Smallest allowed.
        min: f64,
        /// Largest allowed.
        max: f64,
    },
    /// `true` or `false`.
    Bool,
    /// A log level or filter directive (see [`log_level::validate`]).
    LogLevel,
}

/// Every setting's key and kind; a key not listed here is refused.
pub const SETTINGS: &[(&str, Kind)] = &[
    ("default_row_limit", Kind::Int { min: 1, max: 1_000_000 }),
    ("max_row_limit", Kind::Int { min: 1, max: 1_000_000 }),
    ("default_query_timeout", Kind::Int { min: 1, max: 3600 }),
    ("cache_enabled", Kind::Bool),
    ("cache_ttl_secs", Kind::Int { min: 0, max: 10 * 365 * 24 * 3600 }),
    ("semantic_similarity_threshold", Kind::Float { min: 0.0, max: 1.0 }),
    ("cache_max_entries_per_connection", Kind::Int { min: 1, max: 1_000_000 }),
    ("schema_token_budget", Kind::Int { min: 256, max: 1_000_000 }),
    ("log_level", Kind::LogLevel),
];

/// One refused setting: its key and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldProblem {
    /// The key as sent.
    pub field: String,
    /// Why it was refused, for people.
    pub message: String,
}

/// Why settings could not be changed.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// Some values were refused; nothing was saved.
    #[error("invalid settings: {}", .0.iter().map(|p| format!("{}: {}", p.field, p.message)).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<FieldProblem>),
    /// The metadata store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The live settings of this process, read through a short cache. Clone is cheap.
#[derive(Clone)]
pub struct AppSettings {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    cached: Mutex<Option<(Instant, Settings)>>,
}

impl AppSettings {
    /// Settings kept in `store`.
    ///
    /// When tracing was initialised with a reloadable filter (the server) and a Tokio runtime
    /// is running, this also starts a task that applies the stored `log_level` now and whenever
    /// it changes (the task ends when the last clone is dropped).
    pub fn new(store: Store) -> Self {
        let settings = AppSettings { inner: Arc::new(Inner { store, cached: Mutex::new(None) }) };
        if log_level::can_reload()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(watch_log_level(Arc::downgrade(&settings.inner)));
        }
        settings
    }

    /// The settings as stored (defaults for what is not), at most [`CACHE_FOR`] old.
    ///
    /// A stored value that no longer fits its key (edited by hand, from an older version) is
    /// ignored with a warning: the default applies.
    pub async fn current(&self) -> Result<Settings, StoreError> {
        if let Some((at, settings)) = self.lock().as_ref()
            && at.elapsed() < CACHE_FOR
        {
            return Ok(settings.clone());
        }
        let rows = self.inner.store.app_settings().await?;
        let settings = effective(&rows);
        *self.lock() = Some((Instant::now(), settings.clone()));
        Ok(settings)
    }

    /// Change the settings in `changes` (any subset of [`SETTINGS`], JSON values) and return the
    /// new whole set. Every value is checked first, and `default_row_limit` against
    /// `max_row_limit` (the new or stored one): any problem refuses the whole change,
    /// naming each field, and nothing is saved. A new `log_level` is applied to this process
    /// at once.
    pub async fn update(&self, changes: &Map<String, Value>) -> Result<Settings, SettingsError> {
        let mut problems = Vec::new();
        let mut writes = Vec::new();
        for (key, value) in changes {
            match check(key, value) {
                Ok(v) => writes.push((key.clone(), v)),
                Err(message) => problems.push(FieldProblem { field: key.clone(), message }),
            }
        }
        if !problems.is_empty() {
            return Err(SettingsError::Invalid(problems));
        }
        let outcome = self
            .inner
            .store
            .update_app_settings(|mut stored| {
                stored.retain(|(k, _)| !writes.iter().any(|(w, _)| w == k));
                stored.extend(writes.iter().cloned());
                let merged = from_rows(&stored);
                if merged.default_row_limit > merged.max_row_limit {
                    let field =
                        if changes.contains_key("default_row_limit") { "default_row_limit" } else { "max_row_limit" };
                    return Err(vec![FieldProblem {
                        field: field.to_string(),
                        message: format!(
                            "default_row_limit ({}) must not be above max_row_limit ({})",
                            merged.default_row_limit, merged.max_row_limit
                        ),
                    }]);
                }
                Ok(writes.clone())
            })
            .await?;
        outcome.map_err(SettingsError::Invalid)?;
        *self.lock() = None;
        let settings = self.current().await?;
        if changes.contains_key("log_level")
            && let Err(e) = log_level::apply(&settings.log_level)
        {
            tracing::warn!("the new log level could not be applied: {e}");
        }
        Ok(settings)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<(Instant, Settings)>> {
        self.inner.cached.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// `value` checked against `key`'s kind, in the form it is stored; the reason when refused.
fn check(key: &str, value: &Value) -> Result<Value, String> {
    let Some((_, kind)) = SETTINGS.iter().find(|(k, _)| *k == key) else {
        let known = SETTINGS.iter().map(|(k, _)| *k).collect::<Vec<_>>().join(", ");
        return Err(format!("unknown setting (known: {known})"));
    };
    match *kind {
        Kind::Int { min, max } => match value.as_u64() {
            Some(n) if (min..=max).contains(&n) => Ok(Value::from(n)),
            _ if value.is_number() => Err(format!("must be a whole number from {min} to {max}")),
            _ => Err("must be a whole number".to_string()),
        },
        Kind::Float { min, max } => match value.as_f64() {
            Some(x) if (min..=max).contains(&x) => Ok(Value::from(x)),
            Some(_) => Err(format!("must be a number from {min} to {max}")),
            None => Err("must be a number".to_string()),
        },
        Kind::Bool => value.as_bool().map(Value::from).ok_or_else(|| "must be true or false".to_string()),
        Kind::LogLevel => {
            let text = value.as_str().ok_or_else(|| "must be a string".to_string())?;
            log_level::validate(text)?;
            Ok(Value::from(text.trim()))
        }
    }
}

/// Defaults overlaid with every stored value that still fits its key.
fn from_rows(rows: &[(String, Value)]) -> Settings {
    let mut s = Settings::default();
    for (key, value) in rows {
        let Ok(v) = check(key, value) else {
            tracing::warn!(setting = %key, "ignoring a stored setting that does not fit its key");
            continue;
        };
        match key.as_str() {
            "default_row_limit" => s.default_row_limit = v.as_u64().unwrap_or(s.default_row_limit),
            "max_row_limit" => s.max_row_limit = v.as_u64().unwrap_or(s.max_row_limit),
            "default_query_timeout" => s.default_query_timeout = v.as_u64().unwrap_or(s.default_query_timeout),
            "cache_enabled" => s.cache_enabled = v.as_bool().unwrap_or(s.cache_enabled),
            "cache_ttl_secs" => s.cache_ttl_secs = v.as_u64().unwrap_or(s.cache_ttl_secs),
            "semantic_similarity_threshold" => {
                s.semantic_similarity_threshold = v.as_f64().unwrap_or(s.semantic_similarity_threshold)
            }
            "cache_max_entries_per_connection" => {
                s.cache_max_entries_per_connection = v.as_u64().unwrap_or(s.cache_max_entries_per_connection)
            }
            "schema_token_budget" => s.schema_token_budget = v.as_u64().unwrap_or(s.schema_token_budget),
            "log_level" => s.log_level = v.as_str().unwrap_or(&s.log_level).to_string(),
            _ => {}
        }
    }
    s
}

/// [`from_rows`], with a pair that crossed (stored by hand) put right: the maximum wins.
fn effective(rows: &[(String, Value)]) -> Settings {
    let mut s = from_rows(rows);
    s.default_row_limit = s.default_row_limit.min(s.max_row_limit);
    s
}

/// Apply the stored `log_level` now and whenever it changes, until the settings are dropped.
/// Only a stored value is applied: with none, `RUST_LOG` / `-v` keep deciding.
async fn watch_log_level(settings: Weak<Inner>) {
    loop {
        let Some(inner) = settings.upgrade() else { return };
        match inner.store.app_settings().await {
            Ok(rows) => {
                if let Some((_, value)) = rows.iter().find(|(k, _)| k == "log_level")
                    && let Ok(Value::String(level)) = check("log_level", value)
                    && let Err(e) = log_level::apply(&level)
                {
                    tracing::warn!("the stored log level could not be applied: {e}");
                }
            }
            Err(e) => tracing::debug!("reading the stored log level failed: {e}"),
        }
        drop(inner);
        tokio::time::sleep(WATCH_EVERY).await;
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    async fn settings() -> AppSettings {
        AppSettings::new(Store::open("sqlite::memory:").await.unwrap())
    }

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    /// Directives the test reloader was asked to apply.
    static RELOADED: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

    fn reloaded() -> Vec<String> {
        RELOADED.lock().unwrap().clone()
    }

    #[tokio::test]
    async fn the_log_level_is_applied_on_change_and_at_start_up_from_the_store() {
        log_level::install_reloader(Box::new(|d: &str| {
            RELOADED.lock().unwrap().push(d.to_string());
            Ok(())
        }));
        let s = settings().await;
        s.update(&map(json!({"log_level": "quarry=warn"}))).await.unwrap();
        assert!(reloaded().contains(&"quarry=warn".to_string()), "{:?}", reloaded());

        // Another process starting over a store that holds a level applies it by itself.
        let store = s.inner.store.clone();
        store
            .update_app_settings(|_| Ok::<_, ()>(vec![("log_level".into(), json!("quarry=error"))]))
            .await
            .unwrap()
            .unwrap();
        let _started = AppSettings::new(store);
        let deadline = Instant::now() + Duration::from_secs(3);
        while !reloaded().contains(&"quarry=error".to_string()) {
            assert!(Instant::now() < deadline, "the stored level was not applied: {:?}", reloaded());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[tokio::test]
    async fn defaults_then_a_change_round_trips() {
        let s = settings().await;
        assert_eq!(s.current().await.unwrap(), Settings::default());
        let new = s
            .update(&map(json!({"default_row_limit": 50, "cache_enabled": false, "log_level": "debug"})))
            .await
            .unwrap();
        assert_eq!((new.default_row_limit, new.cache_enabled, new.log_level.as_str()), (50, false, "debug"));
        assert_eq!(new.max_row_limit, 10_000);
        // Another process (a fresh cache over the same store) sees it.
        let other = AppSettings::new(s.inner.store.clone());
        assert_eq!(other.current().await.unwrap(), new);
    }

    #[tokio::test]
    async fn bad_values_name_every_field_and_save_nothing() {
        let s = settings().await;
        let err = s
            .update(&map(json!({"default_row_limit": 0, "semantic_similarity_threshold": 1.5, "cache_enabled": "yes",
                                "colour": "blue", "schema_token_budget": 4000, "log_level": "loud"})))
            .await
            .unwrap_err();
        let SettingsError::Invalid(problems) = err else { panic!("{err}") };
        let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
        for f in ["default_row_limit", "semantic_similarity_threshold", "cache_enabled", "colour", "log_level"] {
            assert!(fields.contains(&f), "{f} missing from {fields:?}");
        }
        assert!(!fields.contains(&"schema_token_budget"));
        *s.lock() = None;
        assert_eq!(s.current().await.unwrap(), Settings::default(), "nothing saved");
    }

    #[tokio::test]
    async fn the_default_row_limit_may_not_pass_the_maximum() {
        let s = settings().await;
        let err = s.update(&map(json!({"max_row_limit": 500}))).await.unwrap_err();
        assert!(matches!(&err, SettingsError::Invalid(p) if p[0].field == "max_row_limit"), "{err}");
        s.update(&map(json!({"max_row_limit": 500, "default_row_limit": 100}))).await.unwrap();
        let err = s.update(&map(json!({"default_row_limit": 501}))).await.unwrap_err();
        assert!(matches!(&err, SettingsError::Invalid(p) if p[0].field == "default_row_limit"), "{err}");
        let now = s.current().await.unwrap();
        assert_eq!((now.default_row_limit, now.max_row_limit), (100, 500));
        assert_eq!(s.update(&map(json!({"cache_ttl_secs": 0}))).await.unwrap().cache_ttl_secs, 0);
    }
}
