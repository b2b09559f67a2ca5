//! Talking to the operator's LLM through a provider plugin.
//!
//! - [`config`]: which provider, base URL, model and key, from `LLM_*` environment variables
//!   (or, later, a provider config stored through the API), with presets (`openai`, `groq`,
//!   `anthropic`, `ollama`, …);
//! - [`client`]: [`LlmClient`], which runs a completion (whole or streamed), a model listing or,
//!   when the provider offers them, [`Embeddings`] through the configured plugin with the right
//!   grants, and [`llm_backend`] for explainers;
//! - [`error`]: [`LlmError`], the typed failures a caller can act on.
//!
//! ```no_run
//! # async fn demo(registry: std::sync::Arc<quarry::plugins::PluginRegistry>) -> anyhow::Result<()> {
//! use quarry::llm::{LlmClient, ProviderSpec, user_prompt};
//! use quarry::plugins::capabilities::http::HttpClients;
//! let settings = ProviderSpec::from_env()?.resolve()?;
//! let client = LlmClient::new(registry, settings, HttpClients::new());
//! let mut stream = client.stream(user_prompt("Say hello"));
//! while let Some(event) = stream.next().await { /* forward text deltas */ let _ = event; }
//! let completion = stream.finish().await?;
//! # let _ = completion; Ok(()) }
//! ```

pub mod client;
pub mod config;
pub mod error;

pub use client::{Embeddings, LlmClient, LlmStream, llm_backend, user_prompt};
pub use config::{PRESETS, Preset, ProviderSettings, ProviderSpec};
pub use error::{ConfigError, LlmError};

pub use crate::plugins::bindings::provider::exports::quarry::plugin::provider::ModelInfo;
pub use crate::plugins::bindings::provider::quarry::plugin::events::CompletionEvent;
pub use crate::plugins::bindings::types::{ChatMessage, Completion, CompletionRequest, FinishReason, Role, Usage};
pub use crate::plugins::capabilities::http::Secret;
