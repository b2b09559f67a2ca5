//! The WebAssembly plugin runtime: loading, sandboxing and calling provider, dialect and
//! explainer components (see `wit/` for the contract).
//!
//! - [`manifest`]: `plugin.toml`;
//! - [`runtime`]: the shared engine, linkers and the per-call sandbox ([`sandbox`]);
//! - [`artifact_cache`]: compiled components kept on disk;
//! - [`loader`] and [`registry`]: turning files into callable plugins, and reloading them;
//! - [`dialect`], [`provider`], [`explainer`]: typed handles for each world (a provider's
//!   optional `embeddings` export included);
//! - [`capabilities`]: what the host grants plugins (`log`, `http`, `events`, `llm`).

pub mod artifact_cache;
pub mod bindings;
pub mod builtin;
pub mod capabilities;
pub mod dialect;
pub mod error;
pub mod explainer;
pub mod loader;
pub mod manifest;
pub mod provider;
pub mod redact;
pub mod registry;
pub mod runtime;
pub mod sandbox;

pub use dialect::DialectPlugin;
pub use error::{CallError, LoadError};
pub use explainer::ExplainerPlugin;
pub use manifest::{Manifest, PluginKind};
pub use provider::ProviderPlugin;
pub use registry::{PluginRegistry, PluginSet, PluginSummary};
pub use runtime::{Runtime, RuntimeConfig};
