//! [`Engine`]: the NL→SQL pipeline as one shareable value — its configuration, the state shared
//! by every question (database pools, cached schemas, the metadata store), the typed errors, and
//! the three entry points ([`Engine::ask`], [`Engine::generate`], [`Engine::evaluate`]).
//!
//! The stages themselves live in their own modules and are driven by `run::run`, one function
//! that reads top to bottom.

use std::sync::Arc;

use super::prompt::Example;
use crate::config::{ConfigFileError, PipelineSettings};
use crate::db::{ConnectOptions, DatabaseUrl, DbError};
use crate::llm::{ConfigError, LlmError, ProviderSpec, Secret};
use crate::plugins::capabilities::http::HttpClients;
use crate::plugins::{CallError, PluginRegistry};
use crate::schema::{PrivacyPolicy, SchemaCache};
use crate::store::{Store, StoreError};

use super::answer::Answer;
use super::progress::ProgressSink;
use super::resolve::DatabasePools;
use super::run::{Mode, run};

/// Repairs a question may ask for at most, whatever the caller's `retry_count`: each is an LLM
/// call, and a client must not be able to buy an endless loop.
pub const MAX_RETRY_COUNT: u32 = 10;

/// Sample values per column a question may ask for at most (`schema_examples`).
pub const MAX_SCHEMA_EXAMPLES: u32 = 20;

/// Result rows fed back to the model at most (`feedback_examples`).
pub const MAX_FEEDBACK_EXAMPLES: u32 = 20;

/// What the engine needs to know besides the plugins and the store.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Limits, schema handling, history, explainer, data folder.
    pub settings: PipelineSettings,
    /// The database questions go to unless a question overrides it.
    pub database: Option<DatabaseUrl>,
    /// The LLM provider as configured (nothing checked yet); a question's overrides go on top.
    pub llm: ProviderSpec,
    /// What must not reach the model or the user from the database.
    pub privacy: PrivacyPolicy,
    /// How database pools are opened.
    pub connect: ConnectOptions,
}

impl EngineConfig {
    /// Read everything from the environment and the config file (see
    /// [`PipelineSettings`], [`DatabaseUrl::from_env`], [`ProviderSpec::from_env`]).
    ///
    /// Missing LLM or database settings are fine here (each question then fails with
    /// [`EngineError::MissingConfiguration`]); settings that are present but unusable (a bad
    /// `LLM_TEMPERATURE`, a malformed database URL, an invalid config file) are errors now.
    pub fn from_env() -> Result<Self, EngineError> {
        let settings = PipelineSettings::load()?;
        let database = DatabaseUrl::from_env().map_err(EngineError::Database)?;
        let llm = ProviderSpec::from_env().map_err(|e| EngineError::Llm(e.into()))?;
        let privacy =
            PrivacyPolicy { sensitive_column_patterns: settings.sensitive_columns.clone(), ..PrivacyPolicy::default() };
        Ok(Self { settings, database, llm, privacy, connect: ConnectOptions::default() })
    }
}

/// One question, with the caller's knobs.
#[derive(Debug, Clone)]
pub struct Question {
    /// The session (chat) it belongs to; earlier turns of it are shown to the model.
    pub session_id: String,
    /// The question, in plain language.
    pub question: String,
    /// Repairs allowed after the first attempt (capped at [`MAX_RETRY_COUNT`]).
    pub retry_count: u32,
    /// Sample values per column shown in the schema (capped at [`MAX_SCHEMA_EXAMPLES`]).
    pub schema_examples: u32,
    /// Result rows of the last executed attempt fed back on repair (capped at
    /// [`MAX_FEEDBACK_EXAMPLES`]).
    pub feedback_examples: u32,
    /// SQL Query Engine's `schemaDescriptionKey`: schemas are cached per key, so a new key
    /// forces a fresh introspection.
    pub schema_key: Option<String>,
    /// Per-question configuration on top of the engine's.
    pub overrides: Overrides,
    /// What the product API knows about this question's connection and provider (nothing for
    /// SQL Query Engine and OpenAI-compatible questions).
    pub context: Context,
}

impl Question {
    /// A question with SQL Query Engine's defaults (5 retries, 5 schema examples, 3 feedback rows).
    pub fn new(session_id: impl Into<String>, question: impl Into<String>) -> Self {
        Self {
            session_id: session_id.into(),
            question: question.into(),
            retry_count: 5,
            schema_examples: 5,
            feedback_examples: 3,
            schema_key: None,
            overrides: Overrides::default(),
            context: Context::default(),
        }
    }
}

/// Settings one question may replace (SQL Query Engine's query-parameter overrides).
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `LLM_BASE_URL` for this question.
    pub llm_base_url: Option<String>,
    /// `LLM_API_KEY` for this question.
    pub llm_api_key: Option<String>,
    /// `LLM_MODEL` for this question.
    pub llm_model: Option<String>,
    /// `LLM_TEMPERATURE` for this question.
    pub llm_temperature: Option<f32>,
    /// The database for this question (any URL [`DatabaseUrl::parse`] takes).
    pub database_url: Option<String>,
}

impl Overrides {
    /// The LLM part as a [`ProviderSpec`] to lay over the configured one.
    pub(crate) fn provider_spec(&self) -> ProviderSpec {
        ProviderSpec {
            base_url: self.llm_base_url.clone().filter(|s| !s.trim().is_empty()),
            api_key: self.llm_api_key.clone().filter(|s| !s.trim().is_empty()).map(Secret::new),
            model: self.llm_model.clone().filter(|s| !s.trim().is_empty()),
            temperature: self.llm_temperature,
            ..ProviderSpec::default()
        }
    }
}

/// A question's saved-connection context (product API chat): its database, provider, privacy,
/// limits, business context, few-shot examples and answer cache. Each field left at its default
/// falls back to the engine's configuration.
#[derive(Clone, Default)]
pub struct Context {
    /// The database, replacing the configured one and any override.
    pub database: Option<DatabaseUrl>,
    /// The LLM provider, replacing the configured one (overrides still go on top).
    pub provider: Option<ProviderSpec>,
    /// What must not reach the model or the user, replacing the engine's policy.
    pub privacy: Option<PrivacyPolicy>,
    /// A mandatory condition every executed query's rows must meet (an SQL boolean expression over
    /// the query's columns), on every execution path.
    pub row_filter: Option<String>,
    /// Rows returned at most, replacing the configured cap.
    pub row_limit: Option<u64>,
    /// Statement timeout, replacing the configured one.
    pub statement_timeout: Option<std::time::Duration>,
    /// Schema linking budget in tokens, replacing the configured one.
    pub schema_token_budget: Option<usize>,
    /// Renders the business context (the semantic model) for the question and the linked tables.
    pub business_context: Option<BusinessContext>,
    /// Verified question → SQL pairs for the prompt, most similar first.
    pub examples: Vec<Example>,
    /// Looks up and remembers generated SQL.
    pub cache: Option<Arc<dyn SqlCache>>,
    /// Do not look in the cache (the answer may still be remembered).
    pub bypass_cache: bool,
    /// Hold validated SQL for approval instead of running it (`pending_approval`).
    pub review_first: bool,
    /// Skip the explanation.
    pub skip_explanation: bool,
    /// Do not record the turn in the session (the caller records it its own way).
    pub skip_record: bool,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("database", &self.database)
            .field("row_limit", &self.row_limit)
            .field("examples", &self.examples.len())
            .field("cache", &self.cache.is_some())
            .field("review_first", &self.review_first)
            .finish_non_exhaustive()
    }
}

/// Renders business context for a question given the names of the tables the prompt shows.
pub type BusinessContext = Arc<dyn Fn(&str, &[String]) -> String + Send + Sync>;

/// SQL the cache knows for a question.
#[derive(Debug, Clone, PartialEq)]
pub struct CachedSql {
    /// The SQL (validated again before it runs).
    pub sql: String,
    /// The question it was generated for.
    pub question: String,
    /// 1.0 for an exact match.
    pub similarity: f64,
}

/// A future returned by [`SqlCache`].
pub type CacheFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// Where the pipeline looks for SQL generated earlier for the same (or a similar) question on the
/// same schema, and remembers SQL that ran. Failures are the cache's to log: the pipeline goes on
/// without it.
pub trait SqlCache: Send + Sync {
    /// SQL for `question` on the schema with `fingerprint`, if any.
    fn lookup<'a>(&'a self, question: &'a str, fingerprint: &'a str) -> CacheFuture<'a, Option<CachedSql>>;
    /// Remember that `sql` (for `dialect`) answered `question` on the schema with `fingerprint`.
    fn remember<'a>(
        &'a self,
        question: &'a str,
        fingerprint: &'a str,
        sql: &'a str,
        dialect: &'a str,
    ) -> CacheFuture<'a, ()>;
}

/// Why a question got no answer at all. A question whose attempts were judged and all failed is
/// not an error: it is an [`Answer`] with status `error`.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// Settings the question needs are not configured (names of the variables).
    #[error("Required environment variables not configured: {}.", .0.join(", "))]
    MissingConfiguration(Vec<String>),
    /// The LLM could not be used: unreachable, bad key, unknown model, bad settings, or the
    /// client went away (`LlmError::Cancelled`).
    #[error("SQL generation failed: {0}")]
    Llm(#[from] LlmError),
    /// The database could not be reached (or its configured URL is unusable).
    #[error("Database unreachable: {0}")]
    Database(DbError),
    /// The database's schema could not be read.
    #[error("Schema introspection failed: {0}")]
    Schema(DbError),
    /// A plugin failed (crashed, timed out, returned garbage) or is not loaded.
    #[error("Plugin failed: {0}")]
    Plugin(#[from] CallError),
    /// The metadata store failed where the question depends on it.
    #[error("Metadata store failed: {0}")]
    Store(#[from] StoreError),
    /// The question itself is unusable (empty, an invalid override).
    #[error("Invalid input: {0}")]
    InvalidInput(String),
    /// The config file is invalid.
    #[error(transparent)]
    ConfigFile(#[from] ConfigFileError),
}

impl From<ConfigError> for EngineError {
    fn from(e: ConfigError) -> Self {
        EngineError::Llm(e.into())
    }
}

/// The NL→SQL engine. Cheap to clone; share one per process.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

/// What every question shares.
pub(crate) struct Inner {
    pub(crate) registry: Arc<PluginRegistry>,
    pub(crate) config: EngineConfig,
    pub(crate) store: Store,
    pub(crate) schemas: SchemaCache,
    pub(crate) databases: DatabasePools,
    pub(crate) http: HttpClients,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").field("config", &self.inner.config).finish_non_exhaustive()
    }
}

impl Engine {
    /// Build from the environment and the config file: default database, LLM provider settings,
    /// limits, and the metadata store under the data folder.
    ///
    /// Missing LLM or database configuration does not fail here; it fails each question with
    /// [`EngineError::MissingConfiguration`]. Unusable settings and a store that cannot be
    /// opened do.
    pub async fn from_env(registry: Arc<PluginRegistry>) -> Result<Engine, EngineError> {
        let config = EngineConfig::from_env()?;
        let store = Store::from_env(&config.settings.data_dir).await?;
        Self::new(registry, config, store).await
    }

    /// Build from explicit parts (tests, the CLI).
    pub async fn new(registry: Arc<PluginRegistry>, config: EngineConfig, store: Store) -> Result<Engine, EngineError> {
        let schemas = SchemaCache::new(config.settings.schema_ttl);
        let databases = DatabasePools::new(config.connect.clone());
        Ok(Engine { inner: Arc::new(Inner { registry, config, store, schemas, databases, http: HttpClients::new() }) })
    }

    /// The full pipeline: generate, validate, execute read-only, repair, explain, record.
    pub async fn ask(&self, q: Question, progress: ProgressSink) -> Result<Answer, EngineError> {
        run(&self.inner, q, Mode::Ask, progress).await
    }

    /// Generate and validate only (status `query_only`); the turn is recorded, nothing runs.
    pub async fn generate(&self, q: Question, progress: ProgressSink) -> Result<Answer, EngineError> {
        run(&self.inner, q, Mode::GenerateOnly, progress).await
    }

    /// Run caller-supplied SQL through exactly the same validation and read-only execution as
    /// generated SQL (it is never trusted). A refusal on safety grounds ends the answer at once;
    /// parse and database errors are repaired like a generated query (which needs the LLM; a
    /// query that runs needs none).
    pub async fn evaluate(
        &self,
        q: Question,
        sql: String,
        description: Option<String>,
        progress: ProgressSink,
    ) -> Result<Answer, EngineError> {
        run(&self.inner, q, Mode::Evaluate { sql, description }, progress).await
    }

    /// Names of the required settings that are missing for a question with `overrides` (for
    /// example `["LLM_BASE_URL", "LLM_MODEL"]`); empty when the engine is ready.
    pub fn missing_configuration(&self, overrides: &Overrides) -> Vec<String> {
        let none = Context::default();
        let mut missing = super::resolve::missing_llm(&self.inner.config.llm, overrides, &none);
        missing.extend(super::resolve::missing_database(&self.inner.config, overrides, &none));
        missing
    }

    /// Check `sql` with the dialect plugin named `dialect` (`postgres`, `mysql`, `sqlite`, …) under
    /// the read-only policy with `row_limit`, without running it.
    pub async fn check_sql(
        &self,
        dialect: &str,
        sql: &str,
        row_limit: u64,
    ) -> Result<super::validate::Verdict, EngineError> {
        let plugin = self.inner.registry.current().dialect(dialect).ok_or_else(|| CallError::Host {
            plugin: dialect.to_string(),
            detail: format!("no sql-dialect plugin named `{dialect}` is loaded"),
        })?;
        let policy = crate::plugins::dialect::default_policy(Some(row_limit));
        Ok(super::validate::validate(&plugin, sql, &policy).await?)
    }

    /// The plugins this engine calls.
    pub fn registry(&self) -> &Arc<PluginRegistry> {
        &self.inner.registry
    }

    /// The configuration this engine was built with.
    pub fn config(&self) -> &EngineConfig {
        &self.inner.config
    }

    /// The metadata store turns are recorded in.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// Keep introspected schemas in `redis` too, shared with the other servers using it (see
    /// [`SchemaCache::share`]); needs a Tokio runtime.
    pub fn share_schemas(&self, redis: Arc<crate::shared_redis::Redis>) {
        self.inner.schemas.share(redis, crate::shared_redis::KEY_PREFIX);
    }
}
