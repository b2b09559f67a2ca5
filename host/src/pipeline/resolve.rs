//! Stage `resolve`: what one question runs against — the LLM client (the configured provider
//! with the question's overrides on top), the database (a pool reused across questions), the
//! dialect plugin for its engine, and the explainer.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};
use tokio::sync::OnceCell;

use crate::db::{ConnectOptions, Database, DatabaseUrl, DbError};
use crate::llm::{ConfigError, LlmClient, ProviderSpec};
use crate::plugins::{CallError, DialectPlugin, ExplainerPlugin, PluginKind};

use super::engine::{Context, EngineConfig, EngineError, Inner, Overrides};

/// Database pools kept open at most; questions may name their own database, so the set must be
/// bounded. The least recently used pool is closed first.
pub const MAX_DATABASE_POOLS: usize = 16;

/// What the missing database setting is called in errors (either variable configures it).
const DATABASE_SETTING: &str = "QUARRY_DATABASE_URL (or POSTGRES_HOST)";

/// Everything a question runs against.
pub(crate) struct Resolved {
    /// The LLM, when configured (only evaluation may go without).
    pub llm: Option<LlmClient>,
    /// The LLM settings that are missing, when `llm` is `None`.
    pub llm_missing: Vec<String>,
    /// The user database.
    pub db: Database,
    /// Identifies the database (a hash of its full URL, credentials included): cache keys.
    pub db_key: String,
    /// The dialect plugin for the database's engine.
    pub dialect: DialectPlugin,
    /// The explainer, unless none is configured or it is not loaded.
    pub explainer: Option<ExplainerPlugin>,
}

/// Resolve a question's LLM, database and plugins. `need_llm` is false only for evaluation,
/// where SQL that runs needs no model.
pub(crate) async fn resolve(
    inner: &Inner,
    overrides: &Overrides,
    context: &Context,
    need_llm: bool,
) -> Result<Resolved, EngineError> {
    let llm_missing = missing_llm(&inner.config.llm, overrides, context);
    let mut missing = if need_llm { llm_missing.clone() } else { Vec::new() };
    missing.extend(missing_database(&inner.config, overrides, context));
    if !missing.is_empty() {
        return Err(EngineError::MissingConfiguration(missing));
    }

    let llm = if llm_missing.is_empty() {
        let settings = provider_base(&inner.config.llm, context).overlay(overrides.provider_spec()).resolve()?;
        Some(LlmClient::new(inner.registry.clone(), settings, inner.http.clone()))
    } else {
        None
    };

    let url = match (&context.database, overrides.database_url.as_deref().map(str::trim).filter(|u| !u.is_empty())) {
        (Some(url), _) => url.clone(),
        (None, Some(raw)) => DatabaseUrl::parse(raw).map_err(|e| EngineError::InvalidInput(e.to_string()))?,
        // `missing_database` has just checked that one is configured.
        (None, None) => inner
            .config
            .database
            .clone()
            .ok_or_else(|| EngineError::MissingConfiguration(vec![DATABASE_SETTING.into()]))?,
    };
    let (db_key, db) = inner.databases.get(&url).await.map_err(EngineError::Database)?;

    let set = inner.registry.current();
    let engine = db.engine().as_str();
    let dialect = set.dialect(engine).ok_or_else(|| CallError::Host {
        plugin: engine.to_string(),
        detail: format!(
            "no sql-dialect plugin named `{engine}` is loaded (loaded: {})",
            set.names(PluginKind::SqlDialect).join(", ")
        ),
    })?;
    let name = &inner.config.settings.explainer;
    let explainer = if name.is_empty() {
        None
    } else {
        let found = set.explainer(name);
        if found.is_none() {
            tracing::warn!("explainer plugin `{name}` is not loaded; answers come without an explanation");
        }
        found
    };
    Ok(Resolved { llm, llm_missing, db, db_key, dialect, explainer })
}

/// The provider a question starts from: its context's, else the configured one.
fn provider_base(configured: &ProviderSpec, context: &Context) -> ProviderSpec {
    context.provider.clone().unwrap_or_else(|| configured.clone())
}

/// The LLM settings missing once `overrides` are laid over the question's provider.
pub(crate) fn missing_llm(configured: &ProviderSpec, overrides: &Overrides, context: &Context) -> Vec<String> {
    let spec = provider_base(configured, context).overlay(overrides.provider_spec());
    let model_missing = spec.model.is_none();
    let mut missing = Vec::new();
    match spec.resolve() {
        Err(ConfigError::NotConfigured | ConfigError::MissingBaseUrl { .. }) => {
            missing.push("LLM_BASE_URL".to_string());
            if model_missing {
                missing.push("LLM_MODEL".to_string());
            }
        }
        Ok(settings) if settings.model.is_none() => missing.push("LLM_MODEL".to_string()),
        // Present but unusable values are not "missing": resolving reports them properly.
        Ok(_) | Err(_) => {}
    }
    missing
}

/// The database setting, when neither the configuration nor `overrides` name a database.
pub(crate) fn missing_database(config: &EngineConfig, overrides: &Overrides, context: &Context) -> Vec<String> {
    let overridden =
        context.database.is_some() || overrides.database_url.as_deref().is_some_and(|u| !u.trim().is_empty());
    if overridden || config.database.is_some() { Vec::new() } else { vec![DATABASE_SETTING.to_string()] }
}

type PoolSlot = Arc<OnceCell<Database>>;

/// Open database pools by URL, reused across questions, at most [`MAX_DATABASE_POOLS`].
///
/// Keyed by a hash of the whole URL, password included: two URLs that differ only in their
/// credentials must never share a pool (the redacted URL would make them look the same).
pub(crate) struct DatabasePools {
    options: ConnectOptions,
    /// Slots by key, with a use counter for eviction.
    slots: Mutex<HashMap<String, (PoolSlot, u64)>>,
    clock: std::sync::atomic::AtomicU64,
}

impl DatabasePools {
    pub(crate) fn new(options: ConnectOptions) -> Self {
        Self { options, slots: Mutex::new(HashMap::new()), clock: std::sync::atomic::AtomicU64::new(0) }
    }

    /// The pool for `url` (opened now if needed; concurrent callers wait for one connect) and
    /// its key. A failed connect is not cached: the next question tries again.
    pub(crate) async fn get(&self, url: &DatabaseUrl) -> Result<(String, Database), DbError> {
        let key = hex::encode(Sha256::digest(url.expose().as_bytes()));
        let tick = self.clock.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (slot, evicted) = {
            // A poisoned lock only means another thread panicked mid-update; the map is fine.
            let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
            let slot = {
                let entry = slots.entry(key.clone()).or_insert_with(|| (PoolSlot::default(), tick));
                entry.1 = tick;
                entry.0.clone()
            };
            let evicted = if slots.len() > MAX_DATABASE_POOLS {
                let oldest =
                    slots.iter().filter(|(k, _)| **k != key).min_by_key(|(_, (_, t))| *t).map(|(k, _)| k.clone());
                oldest.and_then(|k| slots.remove(&k)).and_then(|(s, _)| s.get().cloned())
            } else {
                None
            };
            (slot, evicted)
        };
        if let Some(db) = evicted {
            db.close().await;
        }
        let db = slot.get_or_try_init(|| Database::connect(url, &self.options)).await?;
        Ok((key, db.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(pairs: &[(&str, &str)]) -> ProviderSpec {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        ProviderSpec::from_lookup(|k| map.get(k).cloned()).expect("spec")
    }

    #[test]
    fn missing_llm_settings_are_named_like_sql_query_engine_does() {
        let none = Overrides::default();
        assert_eq!(missing_llm(&spec(&[]), &none, &Context::default()), ["LLM_BASE_URL", "LLM_MODEL"]);
        assert_eq!(missing_llm(&spec(&[("LLM_BASE_URL", "http://x/v1")]), &none, &Context::default()), ["LLM_MODEL"]);
        assert!(missing_llm(&spec(&[("LLM_BASE_URL", "http://x/v1"), ("LLM_MODEL", "m")]), &none, &Context::default()).is_empty());
        let over =
            Overrides { llm_base_url: Some("http://y/v1".into()), llm_model: Some("m".into()), ..Overrides::default() };
        assert!(missing_llm(&spec(&[]), &over, &Context::default()).is_empty(), "overrides complete the configuration");
        // A preset brings its own base URL and model.
        assert!(missing_llm(&spec(&[("LLM_PROVIDER", "openai")]), &none, &Context::default()).is_empty());
    }
}
