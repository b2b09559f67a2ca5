//! The `summary` result explainer: a deterministic plain-language summary of a query result
//! (what was asked, how many rows, the headline numbers) and a chart suggestion, without any LLM.
//! All the logic lives in `quarry-explainer-core`; this crate only names the plugin and exports it.

use quarry_explainer_core::{ExplainInput, Explanation, Guest, PluginError, PluginInfo};

/// The `summary` explainer component.
struct Summary;

impl Guest for Summary {
    fn info() -> PluginInfo {
        PluginInfo {
            name: "summary".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Plain-language summary of a result: row count, headline numbers, chart suggestion (no LLM)".into(),
        }
    }

    fn explain(input: ExplainInput) -> Result<Explanation, PluginError> {
        Ok(quarry_explainer_core::summarize(&input))
    }
}

quarry_explainer_core::bindings::export!(Summary with_types_in quarry_explainer_core::bindings);
