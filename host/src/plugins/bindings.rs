//! Host-side bindings generated from `wit/`, one module per world. The provider and explainer
//! bindings reuse the dialect bindings' `types` and `log`, so a type means one Rust type everywhere.

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
