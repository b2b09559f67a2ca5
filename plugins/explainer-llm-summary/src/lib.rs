//! The `llm-summary` result explainer: asks the operator's configured LLM (through the host's
//! `llm` import) to explain a query result in a few sentences, and answers with the deterministic
//! summary when the LLM fails. All the logic lives in `quarry-explainer-core`; this crate only
//! names the plugin and exports it.

use quarry_explainer_core::{ExplainInput, Explanation, Guest, PluginError, PluginInfo};

/// The `llm-summary` explainer component.
struct LlmSummary;

impl Guest for LlmSummary {
    fn info() -> PluginInfo {
        PluginInfo {
            name: "llm-summary".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Short explanation of a result written by the configured LLM; falls back to the plain summary".into(),
        }
    }

    fn explain(input: ExplainInput) -> Result<Explanation, PluginError> {
        Ok(quarry_explainer_core::llm::explain_via_host(&input))
    }
}

quarry_explainer_core::bindings::export!(LlmSummary with_types_in quarry_explainer_core::bindings);
