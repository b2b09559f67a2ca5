//! Result summaries shared by Quarry's explainer plugins.
//!
//! The two built-in `result-explainer` plugins are tiny crates over this one:
//! - `explainer-summary` (plugin `summary`) answers with [`summarize`]: deterministic English
//!   sentences (what was asked, how many rows, the headline numbers) and a chart suggestion;
//! - `explainer-llm-summary` (plugin `llm-summary`) answers with [`llm::explain_via_host`]: one
//!   completion from the host's `llm` import over a capped prompt, falling back to [`summarize`]
//!   when the LLM fails.
//!
//! Everything is plain Rust over the generated WIT types, so the native tests drive it directly
//! (`cargo test -p quarry-explainer-core`); only [`llm::explain_via_host`] touches host imports.
//!
//! # Guarantees
//!
//! No input makes this code panic: empty or ragged rows (a short row reads as nulls, extra cells
//! are ignored), nulls everywhere, `NaN` and infinities, `i64` extremes, decimals of any length,
//! bytes, control or direction-override characters. Work is linear in the number of cells, and
//! only the first [`MAX_PROFILED_COLUMNS`] columns are examined.
//!
//! # Chart suggestions
//!
//! A JSON object `{"type":"bar"|"line","x":<column name>,"y":<column name>}`; see
//! [`suggest_chart`] for when one is made.

mod analyze;
mod chart;
mod format;
pub mod llm;
mod number;
mod summary;

/// Quarry's `result-explainer` world, generated from `wit/`.
///
/// The export macro is public so that each explainer crate exports its own `Guest` type with
/// `quarry_explainer_core::bindings::export!(MyExplainer with_types_in quarry_explainer_core::bindings);`.
#[allow(missing_docs, clippy::all)]
pub mod bindings {
    wit_bindgen::generate!({
        world: "result-explainer",
        path: "../../wit",
        pub_export_macro: true,
        default_bindings_module: "quarry_explainer_core::bindings",
    });
}

pub use analyze::MAX_PROFILED_COLUMNS;
pub use bindings::exports::quarry::plugin::explainer::{Column, ExplainInput, Explanation, Guest, Value};
pub use bindings::quarry::plugin::types::{PluginError, PluginInfo};
pub use chart::{MAX_BARS, MAX_CHART_COLUMNS};
pub use summary::summarize;

/// The chart suggestion alone, as [`summarize`] makes it: `x` is the first column that names
/// the rows (text, a date or a key), `y` the first numeric measure (not an id or a year). A line
/// when `x` is date-like and there are at least 3 rows, otherwise a bar chart of at most
/// [`MAX_BARS`] bars. None for fewer than 2 rows, more than [`MAX_CHART_COLUMNS`] columns, no
/// label or no measure, or column names that are empty or not unique.
pub fn suggest_chart(input: &ExplainInput) -> Option<String> {
    chart::suggest(input, &analyze::Analysis::new(input))
}
