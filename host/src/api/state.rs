//! What every route shares: the engine (behind [`Backend`], so tests can script one), the server
//! settings, the start time, and the `POSTGRES_*` variables per-request overrides fall back to.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::api::v1::state::Product;
use crate::config::ServerSettings;
use crate::pipeline::answer::Answer;
use crate::pipeline::engine::{Engine, EngineError, Overrides, Question};
use crate::pipeline::progress::ProgressSink;

/// A question being answered.
pub type AnswerFuture = Pin<Box<dyn Future<Output = Result<Answer, EngineError>> + Send + 'static>>;

/// What the routes need from the engine. [`Engine`] is the real one; tests put a scripted fake
/// in its place.
pub trait Backend: Send + Sync + 'static {
    /// The full pipeline (see [`Engine::ask`]).
    fn ask(&self, q: Question, progress: ProgressSink) -> AnswerFuture;
    /// Generation only (see [`Engine::generate`]).
    fn generate(&self, q: Question, progress: ProgressSink) -> AnswerFuture;
    /// Execute and repair given SQL (see [`Engine::evaluate`]).
    fn evaluate(
        &self,
        q: Question,
        sql: String,
        description: Option<String>,
        progress: ProgressSink,
    ) -> AnswerFuture;
    /// The required settings that are missing for a question with `overrides`.
    fn missing_configuration(&self, overrides: &Overrides) -> Vec<String>;
}

impl Backend for Engine {
    fn ask(&self, q: Question, progress: ProgressSink) -> AnswerFuture {
        let engine = self.clone();
        Box::pin(async move { engine.ask(q, progress).await })
    }

    fn generate(&self, q: Question, progress: ProgressSink) -> AnswerFuture {
        let engine = self.clone();
        Box::pin(async move { engine.generate(q, progress).await })
    }

    fn evaluate(
        &self,
        q: Question,
        sql: String,
        description: Option<String>,
        progress: ProgressSink,
    ) -> AnswerFuture {
        let engine = self.clone();
        Box::pin(async move { engine.evaluate(q, sql, description, progress).await })
    }

    fn missing_configuration(&self, overrides: &Overrides) -> Vec<String> {
        Engine::missing_configuration(self, overrides)
    }
}

/// The variables a request's `postgre*` query parameters are merged over.
pub const POSTGRES_VARS: &[&str] = &[
    "POSTGRES_HOST",
    "POSTGRES_PORT",
    "POSTGRES_DB",
    "POSTGRES_USER",
    "POSTGRES_PASSWORD",
];

/// Shared by every route.
pub struct AppState {
    /// Answers questions.
    pub backend: Arc<dyn Backend>,
    /// Model name, API keys, request defaults.
    pub settings: ServerSettings,
    /// When the server started (Unix seconds): the `created` of `/v1/models`.
    pub started: u64,
    /// `POSTGRES_*` as configured at start-up (see [`POSTGRES_VARS`]).
    pub postgres_env: HashMap<String, String>,
    /// The product API's parts (`/api/v1`); `None` answers those routes with 503.
    pub product: Option<Arc<Product>>,
    /// The server's one handle on the shared Redis (`None`: not configured); see
    /// [`crate::shared_redis`].
    pub redis: Option<Arc<crate::shared_redis::Redis>>,
}

impl AppState {
    /// State for `backend`, with the `POSTGRES_*` variables read from the process environment.
    pub fn new(backend: Arc<dyn Backend>, settings: ServerSettings) -> Self {
        let postgres_env = POSTGRES_VARS
            .iter()
            .filter_map(|name| {
                std::env::var(name)
                    .ok()
                    .filter(|v| !v.trim().is_empty())
                    .map(|v| (name.to_string(), v))
            })
            .collect();
        Self {
            backend,
            settings,
            started: unix_now(),
            postgres_env,
            product: None,
            redis: None,
        }
    }

    /// Serve the product API `/api/v1` with `product`.
    pub fn with_product(mut self, product: Arc<Product>) -> Self {
        self.product = Some(product);
        self
    }

    /// Share `redis` (the server's handle) with the routes.
    pub fn with_redis(mut self, redis: Option<Arc<crate::shared_redis::Redis>>) -> Self {
        self.redis = redis;
        self
    }

    /// Replace the `POSTGRES_*` variables (tests, embedding).
    pub fn with_postgres_env(mut self, vars: HashMap<String, String>) -> Self {
        self.postgres_env = vars;
        self
    }
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
