//! Stage `generate`: one provider call per attempt, its tokens streamed to the client as they
//! arrive, and the SQL taken out of the answer.

use crate::llm::{LlmClient, LlmError};
use crate::plugins::bindings::provider::quarry::plugin::events::CompletionEvent;
use crate::plugins::bindings::types::{ChatMessage, CompletionRequest};

use super::answer::TokenUsage;
use super::extract::{ExtractError, Extracted, extract};
use super::progress::{Progress, ProgressSink};

/// What one generation produced.
#[derive(Debug, Clone)]
pub struct Generated {
    /// The model's whole answer.
    pub raw: String,
    /// The SQL found in it, or why there is none.
    pub extracted: Result<Extracted, ExtractError>,
    /// Tokens the call used, when the provider reported them.
    pub usage: TokenUsage,
}

/// Ask the model once. Tokens go to `progress` as they stream; when the client has gone away the
/// stream is dropped, which stops the provider call.
pub async fn generate(llm: &LlmClient, messages: Vec<ChatMessage>, progress: &ProgressSink) -> Result<Generated, LlmError> {
    let request = CompletionRequest { messages, max_tokens: None, temperature: None, json_mode: false, stop: Vec::new(), extra: None };
    let mut stream = llm.stream(request);
    while let Some(event) = stream.next().await {
        if progress.is_closed() {
            return Err(LlmError::Cancelled);
        }
        if let CompletionEvent::TextDelta(text) = event {
            progress.send(Progress::Token(text)).await;
        }
    }
    let completion = stream.finish().await?;
    let usage = completion
        .usage
        .map(|u| TokenUsage { input_tokens: u.input_tokens.into(), output_tokens: u.output_tokens.into() })
        .unwrap_or_default();
    Ok(Generated { extracted: extract(&completion.text), raw: completion.text, usage })
}
