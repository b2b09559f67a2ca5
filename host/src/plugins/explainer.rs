//! Calling a `result-explainer` plugin.

use std::sync::Arc;

use super::bindings::explainer::exports::quarry::plugin::explainer::{ExplainInput, Explanation};
use super::bindings::types::{PluginError, PluginInfo};
use super::error::CallError;
use super::loader::{LoadedPlugin, Linked};
use super::runtime::Runtime;
use super::sandbox::{Grants, PluginState};

/// A handle to a loaded `result-explainer` plugin.
#[derive(Clone)]
pub struct ExplainerPlugin {
    runtime: Arc<Runtime>,
    plugin: Arc<LoadedPlugin>,
}

impl ExplainerPlugin {
    /// Wrap `plugin`, which must be an explainer.
    pub(crate) fn new(runtime: Arc<Runtime>, plugin: Arc<LoadedPlugin>) -> Option<Self> {
        matches!(plugin.linked, Linked::Explainer(_)).then_some(Self { runtime, plugin })
    }

    /// The plugin's name.
    pub fn name(&self) -> &str {
        &self.plugin.manifest.name
    }

    fn pre(&self) -> super::bindings::explainer::ResultExplainerPre<PluginState> {
        match &self.plugin.linked {
            Linked::Explainer(pre) => pre.clone(),
            _ => unreachable!("ExplainerPlugin wraps an explainer"),
        }
    }

    /// The plugin's own description of itself.
    pub async fn info(&self) -> Result<PluginInfo, CallError> {
        let pre = self.pre();
        self.runtime
            .call(self.name(), self.plugin.manifest.limits, Grants::default(), move |store| {
                Box::pin(async move {
                    let b = pre.instantiate_async(&mut *store).await?;
                    b.quarry_plugin_explainer().call_info(&mut *store).await
                })
            })
            .await
    }

    /// Explain a result. `grants.llm` decides whether the plugin may ask an LLM.
    pub async fn explain(&self, input: &ExplainInput, grants: Grants) -> Result<Result<Explanation, PluginError>, CallError> {
        let pre = self.pre();
        let input = input.clone();
        self.runtime
            .call(self.name(), self.plugin.manifest.limits, grants, move |store| {
                Box::pin(async move {
                    let b = pre.instantiate_async(&mut *store).await?;
                    b.quarry_plugin_explainer().call_explain(&mut *store, &input).await
                })
            })
            .await
    }
}
