//! Host-side bindings generated from `wit/`, one module per world. The provider and explainer
//! bindings reuse the dialect bindings' `types` and `log` (and the embeddings world reuses the
//! provider's), so a type means one Rust type everywhere.

/// World `sql-dialect`.
pub mod dialect {
    wasmtime::component::bindgen!({
        world: "sql-dialect",
        path: "../wit",
        imports: { default: async | trappable },
        exports: { default: async },
    });
}

/// World `llm-provider`.
pub mod provider {
    wasmtime::component::bindgen!({
        world: "llm-provider",
        path: "../wit",
        imports: { default: async | trappable },
        exports: { default: async },
        with: {
            "quarry:plugin/types": super::dialect::quarry::plugin::types,
            "quarry:plugin/log": super::dialect::quarry::plugin::log,
            "quarry:plugin/http.body-stream": crate::plugins::capabilities::http::BodyStream,
        },
    });
}

/// World `llm-provider-embeddings`: the provider world plus the optional `embeddings` export.
/// Everything but `embeddings` is the provider bindings' own type, so one pre-instance of this
/// world and one of `llm-provider` can serve the same component.
pub mod provider_embeddings {
    wasmtime::component::bindgen!({
        world: "llm-provider-embeddings",
        path: "../wit",
        imports: { default: async | trappable },
        exports: { default: async },
        with: {
            "quarry:plugin/types": super::dialect::quarry::plugin::types,
            "quarry:plugin/log": super::dialect::quarry::plugin::log,
            "quarry:plugin/http": super::provider::quarry::plugin::http,
            "quarry:plugin/events": super::provider::quarry::plugin::events,
            "quarry:plugin/provider": super::provider::exports::quarry::plugin::provider,
        },
    });
}

/// World `result-explainer`.
pub mod explainer {
    wasmtime::component::bindgen!({
        world: "result-explainer",
        path: "../wit",
        imports: { default: async | trappable },
        exports: { default: async },
        with: {
            "quarry:plugin/types": super::dialect::quarry::plugin::types,
            "quarry:plugin/log": super::dialect::quarry::plugin::log,
        },
    });
}

pub use dialect::quarry::plugin::types;
