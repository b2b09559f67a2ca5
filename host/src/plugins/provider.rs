//! Calling an `llm-provider` plugin: model listing, completions (streamed or not) and, when the
//! plugin exports them, embeddings.
//!
//! The caller decides what the call is granted (its HTTP endpoints and secrets, where streamed
//! events go); the plugin only ever sees `provider-config` and the responses the host hands it.

use std::sync::Arc;

use super::bindings::provider::exports::quarry::plugin::provider::{ModelInfo, ProviderConfig};
use super::bindings::provider_embeddings::exports::quarry::plugin::embeddings::{EmbeddingConfig, EmbeddingResult};
use super::bindings::types::{Completion, CompletionRequest, PluginInfo, ProviderError};
use super::error::CallError;
use super::loader::{LoadedPlugin, Linked};
use super::runtime::Runtime;
use super::sandbox::{Grants, PluginState};

/// A handle to a loaded `llm-provider` plugin.
#[derive(Clone)]
pub struct ProviderPlugin {
    runtime: Arc<Runtime>,
    plugin: Arc<LoadedPlugin>,
}

impl ProviderPlugin {
    /// Wrap `plugin`, which must be a provider.
    pub(crate) fn new(runtime: Arc<Runtime>, plugin: Arc<LoadedPlugin>) -> Option<Self> {
        matches!(plugin.linked, Linked::Provider(..)).then_some(Self { runtime, plugin })
    }

    /// The plugin's name.
    pub fn name(&self) -> &str {
        &self.plugin.manifest.name
    }

    /// The loaded plugin behind this handle.
    pub fn plugin(&self) -> &LoadedPlugin {
        &self.plugin
    }

    fn pre(&self) -> super::bindings::provider::LlmProviderPre<PluginState> {
        match &self.plugin.linked {
            Linked::Provider(pre, _) => pre.clone(),
            _ => unreachable!("ProviderPlugin wraps a provider"),
        }
    }

    /// Whether the plugin exports the optional `embeddings` interface.
    pub fn has_embeddings(&self) -> bool {
        self.plugin.exports_embeddings()
    }

    /// The plugin's own description of itself.
    pub async fn info(&self) -> Result<PluginInfo, CallError> {
        let pre = self.pre();
        self.runtime
            .call(self.name(), self.plugin.manifest.limits, Grants::default(), move |store| {
                Box::pin(async move {
                    let b = pre.instantiate_async(&mut *store).await?;
                    b.quarry_plugin_provider().call_info(&mut *store).await
                })
            })
            .await
    }

    /// The models the API offers.
    pub async fn list_models(&self, cfg: &ProviderConfig, grants: Grants) -> Result<Result<Vec<ModelInfo>, ProviderError>, CallError> {
        let pre = self.pre();
        let cfg = cfg.clone();
        self.runtime
            .call(self.name(), self.plugin.manifest.limits, grants, move |store| {
                Box::pin(async move {
                    let b = pre.instantiate_async(&mut *store).await?;
                    b.quarry_plugin_provider().call_list_models(&mut *store, &cfg).await
                })
            })
            .await
    }

    /// One completion. With `stream`, deltas go to the events sink in `grants` as they arrive.
    pub async fn complete(
        &self,
        cfg: &ProviderConfig,
        req: &CompletionRequest,
        grants: Grants,
        stream: bool,
    ) -> Result<Result<Completion, ProviderError>, CallError> {
        let pre = self.pre();
        let cfg = cfg.clone();
        let req = req.clone();
        self.runtime
            .call(self.name(), self.plugin.manifest.limits, grants, move |store| {
                Box::pin(async move {
                    let b = pre.instantiate_async(&mut *store).await?;
                    let p = b.quarry_plugin_provider();
                    if stream {
                        p.call_complete_streaming(&mut *store, &cfg, &req).await
                    } else {
                        p.call_complete(&mut *store, &cfg, &req).await
                    }
                })
            })
            .await
    }

    /// Vectors for `texts`, in the same sandbox and under the same limits as a completion.
    /// [`CallError::Unsupported`] when the plugin does not export `embeddings`.
    pub async fn embed(
        &self,
        cfg: &EmbeddingConfig,
        texts: &[String],
        grants: Grants,
    ) -> Result<Result<EmbeddingResult, ProviderError>, CallError> {
        let Linked::Provider(_, Some(pre)) = &self.plugin.linked else {
            return Err(CallError::Unsupported { plugin: self.name().to_string(), what: "embeddings".into() });
        };
        let pre = pre.clone();
        let cfg = cfg.clone();
        let texts = texts.to_vec();
        self.runtime
            .call(self.name(), self.plugin.manifest.limits, grants, move |store| {
                Box::pin(async move {
                    let b = pre.instantiate_async(&mut *store).await?;
                    b.quarry_plugin_embeddings().call_embed(&mut *store, &cfg, &texts).await
                })
            })
            .await
    }
}
