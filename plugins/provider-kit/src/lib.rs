//! Code shared by Quarry's `llm-provider` plugins.
//!
//! A provider plugin is a small crate that implements the generated
//! [`bindings::exports::quarry::plugin::provider::Guest`] trait for one LLM API and exports it
//! with [`export_provider!`]. What every provider needs lives here, written once:
//!
//! - [`bindings`]: the guest bindings of the `llm-provider` world;
//! - [`http`]: sending requests through the host's `http` import, turning transport failures and
//!   non-2xx answers into typed [`ProviderError`]s;
//! - [`sse`] and [`ndjson`]: incremental parsers for streamed bodies that arrive split at
//!   arbitrary byte boundaries;
//! - [`errors`]: HTTP status and error-body → [`ProviderError`] mapping;
//! - [`stream`]: accumulating streamed text while pushing each delta to the host;
//! - [`config`]: reading `provider-config` options and merging a request's `extra` JSON;
//! - [`embeddings`]: for providers that also offer embeddings: the [`EmbeddingsGuest`] trait,
//!   exported with [`export_embeddings!`], and putting an API's indexed vectors in order.
//!
//! The parsers and the mapping are plain Rust, tested natively (`cargo test -p quarry-provider-kit`).

pub mod config;
pub mod embeddings;
pub mod errors;
pub mod http;
pub mod ndjson;
pub mod sse;
pub mod stream;

/// Guest bindings of the `llm-provider` world, shared by every provider crate.
pub mod bindings {
    wit_bindgen::generate!({
        world: "llm-provider",
        path: "../../wit",
        pub_export_macro: true,
        default_bindings_module: "quarry_provider_kit::bindings",
    });
}

/// Guest bindings of the optional `embeddings` export, for providers that offer embeddings.
///
/// Generated apart from [`bindings`], for a world that exports only `embeddings`: each generated
/// `export!` macro adds only its own world's exports to a component, so a provider without
/// embeddings exports exactly what it did, and one that calls both macros exports both
/// interfaces (the `llm-provider-embeddings` world). The shared `types` are [`bindings`]' own.
pub mod embeddings_bindings {
    wit_bindgen::generate!({
        inline: "package quarry:provider-kit; world embeddings-export { export quarry:plugin/embeddings@0.1.0; }",
        path: "../../wit",
        with: { "quarry:plugin/types@0.1.0": crate::bindings::quarry::plugin::types },
        pub_export_macro: true,
        default_bindings_module: "quarry_provider_kit::embeddings_bindings",
    });
}

pub use bindings::exports::quarry::plugin::provider::{Guest, ModelInfo, ProviderConfig};
pub use bindings::quarry::plugin::events::CompletionEvent;
pub use bindings::quarry::plugin::types::{
    ChatMessage, Completion, CompletionRequest, FinishReason, PluginInfo, ProviderError, Role, Usage,
};
pub use embeddings_bindings::exports::quarry::plugin::embeddings::{
    EmbeddingConfig, EmbeddingResult, Guest as EmbeddingsGuest,
};

/// Export `$provider` (a type implementing [`Guest`]) as this component's `provider` interface.
///
/// ```ignore
/// struct MyApi;
/// impl quarry_provider_kit::Guest for MyApi { /* … */ }
/// quarry_provider_kit::export_provider!(MyApi);
/// ```
#[macro_export]
macro_rules! export_provider {
    ($provider:ident) => {
        // Only a wasm build has the component's export section; native builds (tests) skip it.
        #[cfg(target_arch = "wasm32")]
        $crate::bindings::export!($provider with_types_in $crate::bindings);
    };
}

/// Export `$provider` (a type implementing [`EmbeddingsGuest`]) as this component's optional
/// `embeddings` interface, next to the `provider` interface [`export_provider!`] exports.
///
/// ```ignore
/// impl quarry_provider_kit::EmbeddingsGuest for MyApi { /* … */ }
/// quarry_provider_kit::export_provider!(MyApi);
/// quarry_provider_kit::export_embeddings!(MyApi);
/// ```
#[macro_export]
macro_rules! export_embeddings {
    ($provider:ident) => {
        #[cfg(target_arch = "wasm32")]
        $crate::embeddings_bindings::export!($provider with_types_in $crate::embeddings_bindings);
    };
}

/// Write one line to the host's log (it is tagged with the plugin's name and scrubbed of secrets).
pub fn log(level: bindings::quarry::plugin::log::Level, message: &str) {
    #[cfg(target_arch = "wasm32")]
    bindings::quarry::plugin::log::log(level, message);
    #[cfg(not(target_arch = "wasm32"))]
    let _ = (level, message);
}

/// Lower-case wire name of a chat role, as OpenAI, Anthropic and Ollama all spell it.
pub fn role_name(role: Role) -> &'static str {
    match role {
        Role::System => "system",
        Role::User => "user",
        Role::Assistant => "assistant",
    }
}
