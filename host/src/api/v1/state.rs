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
use crate::secrets::Cipher;
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
}

impl Product {
    /// Everything from the environment, sharing `engine`'s metadata store; keys live under
    /// `data_dir` unless the environment provides them.
    pub async fn from_env(engine: Engine, data_dir: &Path) -> Result<Product, ProductError> {
        let store = engine.store().clone();
        let cipher = Arc::new(Cipher::from_env(data_dir)?);
        let auth = Arc::new(Auth::load(&store).await?);
        let settings = AppSettings::new(store.clone());
        let cache = AnswerCache::new(store.clone());
        Ok(Product { store, engine, cipher, auth, settings, cache })
    }
}

impl AppState {
    /// The product API's parts; 503 when this server runs without them.
    pub fn product(&self) -> Result<&Arc<Product>, ApiError> {
        self.product.as_ref().ok_or_else(|| ApiError::unavailable("The product API is not enabled on this server"))
    }
}
