//! The `log` import: plugins write to the host's `tracing` log, tagged with their name.
//!
//! A call may write at most [`MAX_LINES`] lines of at most [`MAX_LINE_BYTES`] bytes each, so a
//! chatty or hostile plugin cannot flood the log; lines are scrubbed of known secrets.

use crate::plugins::bindings::dialect::quarry::plugin::log::{Host, Level};
use crate::plugins::redact::Redactor;

/// Lines one call may log before the rest are dropped.
pub const MAX_LINES: u32 = 200;
/// Longest line kept; longer ones are cut.
pub const MAX_LINE_BYTES: usize = 4096;

/// Per-call state of the `log` capability.
pub struct LogCapability {
    plugin: String,
    redactor: Redactor,
    written: u32,
}

impl LogCapability {
    /// Logging for one call of `plugin`, scrubbing what `redactor` knows.
    pub fn new(plugin: &str, redactor: Redactor) -> Self {
        Self { plugin: plugin.to_string(), redactor, written: 0 }
    }
}

impl Host for LogCapability {
    async fn log(&mut self, level: Level, message: String) -> wasmtime::Result<()> {
        self.written = self.written.saturating_add(1);
        if self.written > MAX_LINES {
            if self.written == MAX_LINES + 1 {
                tracing::warn!(plugin = %self.plugin, "plugin log limit of {MAX_LINES} lines reached; dropping the rest of this call's lines");
            }
            return Ok(());
        }
        let mut message = self.redactor.scrub(&message);
        if message.len() > MAX_LINE_BYTES {
            let cut = (0..=MAX_LINE_BYTES).rev().find(|i| message.is_char_boundary(*i)).unwrap_or(0);
            message.truncate(cut);
            message.push('…');
        }
        let plugin = self.plugin.as_str();
        match level {
            Level::Trace => tracing::trace!(target: "quarry::plugin", plugin, "{message}"),
            Level::Debug => tracing::debug!(target: "quarry::plugin", plugin, "{message}"),
            Level::Info => tracing::info!(target: "quarry::plugin", plugin, "{message}"),
            Level::Warn => tracing::warn!(target: "quarry::plugin", plugin, "{message}"),
            Level::Error => tracing::error!(target: "quarry::plugin", plugin, "{message}"),
        }
        Ok(())
    }
}
