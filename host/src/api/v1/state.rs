//! What the product API shares beyond the engine: the metadata store, the credential cipher,
//! sign-in, the live settings and the answer cache. Built once at start-up
//! ([`Product::from_env`]) and reached through [`AppState::product`].

use std::path::Path;
use std::sync::Arc;

use crate::answer_cache::AnswerCache;
use crate::api::state::AppState;
use crate::app_settings::AppSettings;
use crate::auth::Auth;
use crate::pipeline::engine::Engine;
use crate::progress_bus::ProgressBus;
use crate::secrets::Cipher;
use crate::shared_redis::{Redis, RedisConfigError};
use crate::store::Store;

use super::error::ApiError;

/// The product API's shared parts.
pub struct Product {
    /// Users, connections, providers, settings, sessions, cache, examples.
    pub store: Store,
    /// The NL→SQL pipeline chat runs.
    pub engine: Engine,
    /// Encrypts database credentials and API keys at rest.
    pub cipher: Arc<Cipher>,
    /// Passwords, access and refresh tokens, rate limits.
    pub auth: Arc<Auth>,
    /// Settings an admin changes at run time.
    pub settings: AppSettings,
    /// Question → SQL cache (exact, then similar).
    pub cache: AnswerCache,
    /// Chat progress, fanned out to a session's watchers on every replica.
    pub progress: ProgressBus,
}

/// Why the product API could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ProductError {
    /// The credential key could not be loaded or created.
    #[error(transparent)]
    Secrets(#[from] crate::secrets::SecretsError),
    /// Sign-in could not be configured.
    #[error(transparent)]
    Auth(#[from] crate::auth::AuthError),
    /// The Redis settings cannot be used.
    #[error(transparent)]
    Redis(#[from] RedisConfigError),
}

impl Product {
    /// Everything from the environment, sharing `engine`'s metadata store; keys live under
    /// `data_dir` unless the environment provides them. Redis, when configured, through one
    /// handle made here (a server makes its own once and calls [`Product::with_redis`]).
    pub async fn from_env(engine: Engine, data_dir: &Path) -> Result<Product, ProductError> {
        let redis = Redis::from_env()?.map(Arc::new);
        Self::with_redis(engine, data_dir, redis).await
    }

    /// [`Product::from_env`] with the server's Redis handle (`None`: no Redis), which sign-in
    /// rate limits, the answer cache's hot tier and progress fan-out all share.
    pub async fn with_redis(
        engine: Engine,
        data_dir: &Path,
        redis: Option<Arc<Redis>>,
    ) -> Result<Product, ProductError> {
        let store = engine.store().clone();
        let cipher = Arc::new(Cipher::from_env(data_dir)?);
        let auth = Arc::new(Auth::load(&store, redis.clone()).await?);
        let settings = AppSettings::new(store.clone());
        let cache = match &redis {
            Some(redis) => AnswerCache::new(store.clone()).with_redis(redis.clone()),
            None => AnswerCache::new(store.clone()),
        };
        let progress = ProgressBus::new(redis);
        Ok(Product { store, engine, cipher, auth, settings, cache, progress })
    }
}

impl AppState {
    /// The product API's parts; 503 when this server runs without them.
    pub fn product(&self) -> Result<&Arc<Product>, ApiError> {
        self.product.as_ref().ok_or_else(|| ApiError::unavailable("The product API is not enabled on this server"))
    }
}
