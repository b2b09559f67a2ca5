//! Typed failures of LLM calls and of provider configuration. Every message has been scrubbed of
//! the call's secrets before it reaches one of these values.

use std::time::Duration;

use crate::plugins::CallError;
use crate::plugins::bindings::types::ProviderError;

/// A provider configuration that cannot be used.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ConfigError {
    /// Nothing names a provider or a base URL.
    #[error("no LLM is configured: set LLM_BASE_URL (an OpenAI-compatible server) or LLM_PROVIDER (openai, groq, anthropic, ollama, …)")]
    NotConfigured,
    /// A setting has a value Quarry cannot use.
    #[error("{setting}: {reason}")]
    BadValue {
        /// The setting (the environment variable, when it came from there).
        setting: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The provider has no default base URL and none was given.
    #[error("provider `{provider}` needs a base URL: set LLM_BASE_URL (or --base-url)")]
    MissingBaseUrl {
        /// The provider.
        provider: String,
    },
    /// No model was given and the provider has no default.
    #[error("provider `{provider}` needs a model: set LLM_MODEL (or --model); `quarry llm models` lists them")]
    MissingModel {
        /// The provider.
        provider: String,
    },
}

/// Why an LLM call failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LlmError {
    /// The configuration cannot be used.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// No provider plugin of that name is loaded.
    #[error("no provider plugin `{name}` is loaded (loaded: {})", if available.is_empty() { "none".to_string() } else { available.join(", ") })]
    UnknownProvider {
        /// The plugin asked for.
        name: String,
        /// The provider plugins that are loaded.
        available: Vec<String>,
    },
    /// The API refused the key (401/403).
    #[error("the LLM API refused the credentials: {0}")]
    BadCredentials(String),
    /// The model does not exist or this key cannot use it.
    #[error("model not found: {0}")]
    ModelNotFound(String),
    /// The API is rate limiting this key, even after the host's retries.
    #[error("the LLM API is rate limiting requests{}", retry_after.map(|d| format!("; retry in {:.1} s", d.as_secs_f64())).unwrap_or_default())]
    RateLimited {
        /// How long the server asked to wait, if it said.
        retry_after: Option<Duration>,
    },
    /// The prompt does not fit the model's context window.
    #[error("the prompt is too long for the model's context window: {0}")]
    ContextTooLong(String),
    /// The API failed (5xx after retries, an unexpected status, or unreachable: status 0).
    #[error("{}", if *status == 0 { format!("the LLM API could not be reached: {message}") } else { format!("the LLM API failed with HTTP {status}: {message}") })]
    Upstream {
        /// HTTP status (0 when no answer arrived).
        status: u16,
        /// What the API said.
        message: String,
    },
    /// The API did not answer in time (or stalled mid-stream).
    #[error("the LLM API did not answer in time{}", if detail.is_empty() { String::new() } else { format!(": {detail}") })]
    Timeout {
        /// Which limit was hit, when known.
        detail: String,
    },
    /// The API answered something the provider could not read (or more than the size cap).
    #[error("the LLM API's answer could not be read: {0}")]
    MalformedResponse(String),
    /// The host refused a request the provider tried (allow-list, forbidden header).
    #[error("the provider plugin was refused a request: {0}")]
    Denied(String),
    /// The caller went away; generation was stopped.
    #[error("the completion was cancelled")]
    Cancelled,
    /// A bug or an unexpected state inside the provider plugin.
    #[error("the provider plugin failed: {0}")]
    Internal(String),
    /// The plugin call itself failed (trap, memory cap, busy runtime…).
    #[error(transparent)]
    Plugin(CallError),
}

impl LlmError {
    /// A stable, machine-readable code for the API layer.
    pub fn code(&self) -> &'static str {
        match self {
            LlmError::Config(_) => "llm-not-configured",
            LlmError::UnknownProvider { .. } => "llm-unknown-provider",
            LlmError::BadCredentials(_) => "llm-bad-credentials",
            LlmError::ModelNotFound(_) => "llm-model-not-found",
            LlmError::RateLimited { .. } => "llm-rate-limited",
            LlmError::ContextTooLong(_) => "llm-context-too-long",
            LlmError::Upstream { .. } => "llm-upstream",
            LlmError::Timeout { .. } => "llm-timeout",
            LlmError::MalformedResponse(_) => "llm-malformed-response",
            LlmError::Denied(_) => "llm-denied",
            LlmError::Cancelled => "llm-cancelled",
            LlmError::Internal(_) => "llm-provider-bug",
            LlmError::Plugin(e) => e.code(),
        }
    }

    /// Map a provider's error, scrubbing every message with `scrub`.
    pub(crate) fn from_provider(err: ProviderError, scrub: impl Fn(&str) -> String) -> Self {
        match err {
            ProviderError::BadCredentials(m) => LlmError::BadCredentials(scrub(&m)),
            ProviderError::ModelNotFound(m) => LlmError::ModelNotFound(scrub(&m)),
            ProviderError::RateLimited(ms) => LlmError::RateLimited { retry_after: ms.map(|ms| Duration::from_millis(ms.into())) },
            ProviderError::ContextTooLong(m) => LlmError::ContextTooLong(scrub(&m)),
            ProviderError::Upstream((status, m)) => LlmError::Upstream { status, message: scrub(&m) },
            ProviderError::Timeout => LlmError::Timeout { detail: String::new() },
            ProviderError::MalformedResponse(m) => LlmError::MalformedResponse(scrub(&m)),
            ProviderError::Denied(m) => LlmError::Denied(scrub(&m)),
            ProviderError::Cancelled => LlmError::Cancelled,
            ProviderError::Internal(m) => LlmError::Internal(scrub(&m)),
        }
    }

    /// Map a failed plugin call (already scrubbed by the runtime).
    pub(crate) fn from_call(err: CallError) -> Self {
        match err {
            CallError::Deadline { limit, .. } => LlmError::Timeout { detail: format!("the provider's limit of {} s was reached", limit.as_secs()) },
            other => LlmError::Plugin(other),
        }
    }

    /// The same failure as the WIT `provider-error` an explainer sees through the `llm` import.
    pub fn to_provider_error(&self) -> ProviderError {
        match self {
            LlmError::BadCredentials(m) => ProviderError::BadCredentials(m.clone()),
            LlmError::ModelNotFound(m) => ProviderError::ModelNotFound(m.clone()),
            LlmError::RateLimited { retry_after } => {
                ProviderError::RateLimited(retry_after.map(|d| d.as_millis().min(u32::MAX as u128) as u32))
            }
            LlmError::ContextTooLong(m) => ProviderError::ContextTooLong(m.clone()),
            LlmError::Upstream { status, message } => ProviderError::Upstream((*status, message.clone())),
            LlmError::Timeout { .. } => ProviderError::Timeout,
            LlmError::MalformedResponse(m) => ProviderError::MalformedResponse(m.clone()),
            LlmError::Denied(m) => ProviderError::Denied(m.clone()),
            LlmError::Cancelled => ProviderError::Cancelled,
            other => ProviderError::Internal(other.to_string()),
        }
    }
}
