//! [`LlmClient`]: one configured provider, called through its plugin.
//!
//! Every call runs the provider plugin in a fresh sandbox with exactly these grants: HTTP to the
//! configured base URL (plus the origins the plugin's manifest lists), the API key bound to the
//! base URL as the `{secret:api_key}` placeholder, the configured timeouts, retries and size cap,
//! a redactor that knows the key, and, when streaming, an events sink. Whatever fails comes back
//! as an [`LlmError`] with the key scrubbed from every message.
//!
//! Embeddings ([`LlmClient::embed`]) run the same way, when the plugin exports them and an
//! embedding model is configured; the vectors are checked before anyone uses them.

use std::sync::Arc;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::config::ProviderSettings;
use super::error::{ConfigError, LlmError};
use crate::plugins::bindings::provider::exports::quarry::plugin::provider::{ModelInfo, ProviderConfig};
use crate::plugins::bindings::provider::quarry::plugin::events::CompletionEvent;
use crate::plugins::bindings::provider_embeddings::exports::quarry::plugin::embeddings::{
    EmbeddingConfig, EmbeddingResult,
};
use crate::plugins::bindings::types::{ChatMessage, Completion, CompletionRequest, Role};
use crate::plugins::capabilities::events::EventsCapability;
use crate::plugins::capabilities::http::{HttpClients, HttpGrant};
use crate::plugins::capabilities::llm::LlmBackend;
use crate::plugins::redact::Redactor;
use crate::plugins::sandbox::Grants;
use crate::plugins::{PluginRegistry, ProviderPlugin};

/// Streamed events buffered between the plugin and a slow reader before the plugin waits.
pub const STREAM_BUFFER: usize = 64;

/// Texts per embedding call: many fewer than any API's limit (OpenAI takes 2048), and few enough
/// that a batch of 3072-dimension vectors stays well under the response-size cap.
pub const EMBED_BATCH: usize = 64;

/// Vectors for texts, as one provider's embedding model computed them.
#[derive(Debug, Clone, PartialEq)]
pub struct Embeddings {
    /// The configured embedding model: the stable name that tells vectors of different models
    /// apart (vectors of two models must never be compared).
    pub model: String,
    /// One vector per text, in the order of the texts, all of one non-zero dimension.
    pub vectors: Vec<Vec<f32>>,
}

/// Calls one configured LLM provider. Cheap to clone; share one per provider configuration.
#[derive(Clone)]
pub struct LlmClient {
    registry: Arc<PluginRegistry>,
    settings: Arc<ProviderSettings>,
    clients: HttpClients,
}

impl std::fmt::Debug for LlmClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlmClient").field("settings", &self.settings).finish()
    }
}

/// A request with only a user message.
pub fn user_prompt(prompt: &str) -> CompletionRequest {
    CompletionRequest {
        messages: vec![ChatMessage { role: Role::User, content: prompt.to_string() }],
        max_tokens: None,
        temperature: None,
        json_mode: false,
        stop: Vec::new(),
        extra: None,
    }
}

impl LlmClient {
    /// A client for `settings`, calling plugins from `registry` (the current set at each call,
    /// so a reload takes effect) and sending HTTP through the pooled `clients`.
    pub fn new(registry: Arc<PluginRegistry>, settings: ProviderSettings, clients: HttpClients) -> Self {
        Self { registry, settings: Arc::new(settings), clients }
    }

    /// The configuration this client uses.
    pub fn settings(&self) -> &ProviderSettings {
        &self.settings
    }

    fn redactor(&self) -> Redactor {
        Redactor::new(self.settings.api_key.iter().map(|k| k.expose().to_string()))
    }

    fn plugin(&self) -> Result<ProviderPlugin, LlmError> {
        let set = self.registry.current();
        set.provider(&self.settings.plugin).ok_or_else(|| LlmError::UnknownProvider {
            name: self.settings.plugin.clone(),
            available: set.names(crate::plugins::PluginKind::LlmProvider),
        })
    }

    fn grants(&self, plugin: &ProviderPlugin, events: Option<EventsCapability>) -> Result<Grants, LlmError> {
        let secrets = self.settings.api_key.iter().map(|k| ("api_key".to_string(), k.clone())).collect();
        let grant = HttpGrant::new(&self.clients, &self.settings.base_url, &plugin.plugin().manifest.endpoints, secrets, self.settings.http)
            .map_err(|e| ConfigError::BadValue { setting: "LLM_BASE_URL".into(), reason: e.to_string() })?;
        Ok(Grants::provider(grant, events, Vec::new()))
    }

    fn config(&self, model: String) -> ProviderConfig {
        ProviderConfig { model, has_api_key: self.settings.api_key.is_some(), options: self.settings.options.clone() }
    }

    fn model(&self) -> Result<String, LlmError> {
        self.settings.model.clone().ok_or_else(|| ConfigError::MissingModel { provider: self.settings.provider.clone() }.into())
    }

    /// The request with the configured defaults filled in where it leaves them open.
    fn with_defaults(&self, mut req: CompletionRequest) -> CompletionRequest {
        req.temperature = req.temperature.or(self.settings.temperature);
        req.max_tokens = req.max_tokens.or(self.settings.max_tokens);
        req
    }

    /// Complete `req` and return the whole answer.
    pub async fn complete(&self, req: CompletionRequest) -> Result<Completion, LlmError> {
        let plugin = self.plugin()?;
        let cfg = self.config(self.model()?);
        let grants = self.grants(&plugin, None)?;
        let redactor = self.redactor();
        let outcome = plugin.complete(&cfg, &self.with_defaults(req), grants, false).await;
        finish(outcome, &redactor)
    }

    /// Complete `req`, streaming events as the API produces them. Dropping the returned
    /// [`LlmStream`] (or only its receiver) stops the generation.
    pub fn stream(&self, req: CompletionRequest) -> LlmStream {
        let (tx, rx) = mpsc::channel(STREAM_BUFFER);
        let prepared = self.plugin().and_then(|plugin| {
            let cfg = self.config(self.model()?);
            let grants = self.grants(&plugin, Some(EventsCapability::streaming_to(tx)))?;
            Ok((plugin, cfg, grants))
        });
        let req = self.with_defaults(req);
        let redactor = self.redactor();
        let task = tokio::spawn(async move {
            let (plugin, cfg, grants) = prepared?;
            let outcome = plugin.complete(&cfg, &req, grants, true).await;
            finish(outcome, &redactor)
        });
        LlmStream { events: rx, task: Some(task) }
    }

    /// Whether this provider offers embeddings: its plugin exports them and an embedding model is
    /// configured.
    pub fn offers_embeddings(&self) -> bool {
        self.settings.embedding_model.is_some() && self.plugin().is_ok_and(|p| p.has_embeddings())
    }

    /// Vectors for `texts`, in order. `Ok(None)` when the provider does not offer embeddings
    /// (see [`LlmClient::offers_embeddings`]); `Err` for a failed call or vectors that do not
    /// fit the texts (key scrubbed like every other error). Empty `texts` make no call.
    pub async fn embed(&self, texts: &[String]) -> Result<Option<Embeddings>, LlmError> {
        let Some(model) = self.settings.embedding_model.clone() else { return Ok(None) };
        let Some(plugin) = self.plugin().ok().filter(ProviderPlugin::has_embeddings) else { return Ok(None) };
        let cfg = EmbeddingConfig {
            model: model.clone(),
            has_api_key: self.settings.api_key.is_some(),
            options: self.settings.options.clone(),
        };
        let redactor = self.redactor();
        let mut vectors = Vec::with_capacity(texts.len());
        for batch in texts.chunks(EMBED_BATCH) {
            let outcome = plugin.embed(&cfg, batch, self.grants(&plugin, None)?).await;
            let result = finish(outcome, &redactor)?;
            vectors.extend(checked_batch(result, batch.len(), vectors.first().map(Vec::len))?);
        }
        Ok(Some(Embeddings { model, vectors }))
    }

    /// The models the API offers.
    pub async fn list_models(&self) -> Result<Vec<ModelInfo>, LlmError> {
        let plugin = self.plugin()?;
        let cfg = self.config(self.settings.model.clone().unwrap_or_default());
        let grants = self.grants(&plugin, None)?;
        let redactor = self.redactor();
        let outcome = plugin.list_models(&cfg, grants).await;
        finish(outcome, &redactor)
    }
}

/// One batch's vectors, if there is one per text, all of one non-zero dimension (`dimension`,
/// when an earlier batch fixed it) and every number finite; else a malformed-response error.
fn checked_batch(result: EmbeddingResult, texts: usize, dimension: Option<usize>) -> Result<Vec<Vec<f32>>, LlmError> {
    let bad = |what: String| Err(LlmError::MalformedResponse(format!("the embeddings do not fit the texts: {what}")));
    let vectors = result.vectors;
    if vectors.len() != texts {
        return bad(format!("{} vectors for {texts} texts", vectors.len()));
    }
    let dimension = dimension.or_else(|| vectors.first().map(Vec::len)).unwrap_or(0);
    if dimension == 0 {
        return bad("the vectors are empty".into());
    }
    if let Some((i, v)) = vectors.iter().enumerate().find(|(_, v)| v.len() != dimension) {
        return bad(format!("vector {i} has {} dimensions, others {dimension}", v.len()));
    }
    if let Some(i) = vectors.iter().position(|v| v.iter().any(|x| !x.is_finite())) {
        return bad(format!("vector {i} holds a number that is not finite"));
    }
    Ok(vectors)
}

/// Flatten a plugin call's two layers of failure into one scrubbed [`LlmError`].
fn finish<T>(
    outcome: Result<Result<T, crate::plugins::bindings::types::ProviderError>, crate::plugins::CallError>,
    redactor: &Redactor,
) -> Result<T, LlmError> {
    match outcome {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(LlmError::from_provider(e, |s| redactor.scrub(s))),
        Err(e) => Err(LlmError::from_call(e)),
    }
}

/// A completion in progress: read events with [`LlmStream::next`], then the whole answer with
/// [`LlmStream::finish`]. Dropping it stops the plugin call.
pub struct LlmStream {
    events: mpsc::Receiver<CompletionEvent>,
    task: Option<JoinHandle<Result<Completion, LlmError>>>,
}

impl LlmStream {
    /// The next event; `None` once the plugin has finished (successfully or not).
    pub async fn next(&mut self) -> Option<CompletionEvent> {
        self.events.recv().await
    }

    /// The whole completion. Events not read yet are discarded (the plugin is not held up).
    pub async fn finish(mut self) -> Result<Completion, LlmError> {
        // The sender lives in the plugin's store: the channel closes when the call ends.
        while self.events.recv().await.is_some() {}
        let Some(task) = self.task.take() else { return Err(LlmError::Cancelled) };
        match task.await {
            Ok(result) => result,
            Err(e) => Err(LlmError::Internal(format!("the completion task failed: {e}"))),
        }
    }

    /// Split into the event receiver and the task that yields the completion (for callers that
    /// forward events from one task and await the result in another). Dropping the receiver
    /// cancels the generation; aborting the handle stops the call at once.
    pub fn into_parts(mut self) -> (mpsc::Receiver<CompletionEvent>, JoinHandle<Result<Completion, LlmError>>) {
        let task = self.task.take().unwrap_or_else(|| tokio::spawn(async { Err(LlmError::Cancelled) }));
        let (placeholder_tx, placeholder_rx) = mpsc::channel(1);
        drop(placeholder_tx);
        let events = std::mem::replace(&mut self.events, placeholder_rx);
        (events, task)
    }
}

impl Drop for LlmStream {
    fn drop(&mut self) {
        // Nobody will read the answer: stop the plugin (and its HTTP stream) now rather than at
        // its next `emit`.
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// The `llm` capability's backend for explainers: completions through `client`. An explainer
/// sees only the completion or a `provider-error`, never a host name or a key.
pub fn llm_backend(client: LlmClient) -> LlmBackend {
    Arc::new(move |req: CompletionRequest| {
        let client = client.clone();
        Box::pin(async move { client.complete(req).await.map_err(|e| e.to_provider_error()) })
    })
}
