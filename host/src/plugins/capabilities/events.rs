//! The `events` import: a provider pushes streamed deltas to the host as they arrive.
//!
//! Backed by a bounded channel, so a slow client suspends the guest (back-pressure); when the
//! receiver is gone the guest is told `cancelled` and should stop generating.

use tokio::sync::mpsc;

use crate::plugins::bindings::provider::quarry::plugin::events::{CompletionEvent, EmitError, Host};

/// Per-call state of the `events` capability.
#[derive(Default)]
pub struct EventsCapability {
    sink: Option<mpsc::Sender<CompletionEvent>>,
}

impl EventsCapability {
    /// Deliver this call's events to `sink`.
    pub fn streaming_to(sink: mpsc::Sender<CompletionEvent>) -> Self {
        Self { sink: Some(sink) }
    }
}

impl Host for EventsCapability {
    async fn emit(&mut self, ev: CompletionEvent) -> wasmtime::Result<Result<(), EmitError>> {
        let Some(sink) = &self.sink else {
            // A non-streaming call: nobody listens, and that is not an error.
            return Ok(Ok(()));
        };
        Ok(sink.send(ev).await.map_err(|_| EmitError::Cancelled))
    }
}
