//! Building a completion while streaming it: each delta goes to the host through `events.emit`
//! as soon as it is parsed, and is also kept so the final [`Completion`] has the whole text.

use crate::bindings::quarry::plugin::events::{self, CompletionEvent};
use crate::{Completion, FinishReason, ProviderError, Usage};

/// Accumulates one streamed completion.
#[derive(Debug, Default)]
pub struct Collector {
    text: String,
    finish: Option<FinishReason>,
    usage: Option<Usage>,
    model: Option<String>,
    /// Whether deltas are pushed to the host (`complete-streaming`) or only collected.
    emit: bool,
}

impl Collector {
    /// A collector that pushes every delta to the host.
    pub fn streaming() -> Self {
        Self { emit: true, ..Self::default() }
    }

    /// A collector that only accumulates (for APIs that stream even when asked not to).
    pub fn silent() -> Self {
        Self::default()
    }

    fn push(&self, ev: CompletionEvent) -> Result<(), ProviderError> {
        if self.emit {
            events::emit(&ev).map_err(|_| ProviderError::Cancelled)?;
        }
        Ok(())
    }

    /// Answer text arrived.
    pub fn text(&mut self, delta: &str) -> Result<(), ProviderError> {
        if delta.is_empty() {
            return Ok(());
        }
        self.text.push_str(delta);
        self.push(CompletionEvent::TextDelta(delta.to_string()))
    }

    /// Reasoning ("thinking") text arrived; it is streamed but not part of the answer.
    pub fn reasoning(&mut self, delta: &str) -> Result<(), ProviderError> {
        if delta.is_empty() {
            return Ok(());
        }
        self.push(CompletionEvent::ReasoningDelta(delta.to_string()))
    }

    /// Token usage arrived; later reports complete earlier ones (a field reported as 0 keeps the
    /// earlier value, because APIs report input and output tokens in different events).
    pub fn usage(&mut self, input: Option<u32>, output: Option<u32>) -> Result<(), ProviderError> {
        let prev = self.usage.unwrap_or(Usage { input_tokens: 0, output_tokens: 0 });
        let usage = Usage {
            input_tokens: input.filter(|n| *n > 0).unwrap_or(prev.input_tokens),
            output_tokens: output.filter(|n| *n > 0).unwrap_or(prev.output_tokens),
        };
        self.usage = Some(usage);
        self.push(CompletionEvent::Usage(usage))
    }

    /// The API said why it stopped.
    pub fn finish(&mut self, reason: FinishReason) {
        self.finish = Some(reason);
    }

    /// The API named the model that answered.
    pub fn model(&mut self, model: &str) {
        if self.model.is_none() && !model.is_empty() {
            self.model = Some(model.to_string());
        }
    }

    /// Whether the API has said why it stopped.
    pub fn finished(&self) -> bool {
        self.finish.is_some()
    }

    /// The completion so far.
    pub fn into_completion(self) -> Completion {
        Completion { text: self.text, finish: self.finish.unwrap_or(FinishReason::Stop), usage: self.usage, model: self.model }
    }
}
