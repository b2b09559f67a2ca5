//! The `llm` import: an explainer asks the operator's configured provider for a completion,
//! without ever seeing a host name or a key.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::plugins::bindings::explainer::quarry::plugin::llm::Host;
use crate::plugins::bindings::types::{Completion, CompletionRequest, ProviderError};

/// The future an [`LlmBackend`] returns.
pub type LlmFuture = Pin<Box<dyn Future<Output = Result<Completion, ProviderError>> + Send>>;

/// Something that completes requests on an explainer's behalf (normally a provider plugin).
pub type LlmBackend = Arc<dyn Fn(CompletionRequest) -> LlmFuture + Send + Sync>;

/// Completions one `explain` call may ask for; more is a runaway plugin.
pub const MAX_CALLS_PER_EXPLAIN: u32 = 4;

/// Per-call state of the `llm` capability.
#[derive(Default)]
pub struct LlmCapability {
    backend: Option<LlmBackend>,
    calls: u32,
}

impl LlmCapability {
    /// Route this call's completions to `backend`.
    pub fn backed_by(backend: LlmBackend) -> Self {
        Self { backend: Some(backend), calls: 0 }
    }
}

impl Host for LlmCapability {
    async fn complete(&mut self, req: CompletionRequest) -> wasmtime::Result<Result<Completion, ProviderError>> {
        let Some(backend) = &self.backend else {
            return Ok(Err(ProviderError::Denied("no LLM is configured for explainers".into())));
        };
        self.calls += 1;
        if self.calls > MAX_CALLS_PER_EXPLAIN {
            return Ok(Err(ProviderError::Denied(format!(
                "an explainer may ask for at most {MAX_CALLS_PER_EXPLAIN} completions per call"
            ))));
        }
        Ok(backend(req).await)
    }
}
