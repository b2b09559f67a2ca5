//! The `offline` provider: answers common questions from the schema alone — no network, no
//! model, no key — so a new installation can answer a question before any LLM is configured.
//!
//! It is also the smallest example of an `llm-provider` plugin that needs no network:
//!
//! - it never calls the host's `http` import (the world still imports it; an unused import costs
//!   nothing), so its `plugin.toml` lists no `[network]` endpoints and the host's allow-list
//!   keeps it off the network entirely;
//! - `complete` runs the translator (`quarry-provider-offline-core`, plain Rust tested natively)
//!   over the chat the pipeline built — the system message carries the engine's name and the
//!   schema, the last user message the question — and returns the JSON answer the prompt asks
//!   for: `{"description": …, "sql": …}` (an empty `sql` and a clear description when it cannot
//!   answer);
//! - `complete-streaming` returns the same text, pushed to the host in a few chunks through
//!   `events.emit`, so clients see tokens arrive as they would from a real model; it stops when
//!   the host says the client went away;
//! - `list-models` answers `["offline"]`; the configured model name is not checked.

use quarry_provider_kit::bindings::quarry::plugin::log::Level;
use quarry_provider_kit::stream::Collector;
use quarry_provider_kit::{
    Completion, CompletionRequest, FinishReason, Guest, ModelInfo, PluginInfo, ProviderConfig, ProviderError, Role,
};
use quarry_provider_offline_core as core;

/// The `offline` provider.
pub struct Offline;

/// The one model this provider offers.
pub const MODEL: &str = "offline";

/// How many pieces a streamed answer is cut into.
pub const STREAM_CHUNKS: usize = 4;

impl Guest for Offline {
    fn info() -> PluginInfo {
        PluginInfo {
            name: "offline".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Answers common questions from the schema alone: no network, no model, no key".into(),
        }
    }

    fn list_models(_cfg: ProviderConfig) -> Result<Vec<ModelInfo>, ProviderError> {
        Ok(vec![ModelInfo { id: MODEL.into(), context_window: None, owned_by: Some("quarry".into()) }])
    }

    fn complete(_cfg: ProviderConfig, req: CompletionRequest) -> Result<Completion, ProviderError> {
        let text = answer(&req);
        Ok(Completion { text, finish: FinishReason::Stop, usage: None, model: Some(MODEL.into()) })
    }

    fn complete_streaming(_cfg: ProviderConfig, req: CompletionRequest) -> Result<Completion, ProviderError> {
        let text = answer(&req);
        // A streaming collector emits every piece to the host and keeps the whole text.
        let mut out = Collector::streaming();
        out.model(MODEL);
        for piece in chunks(&text, STREAM_CHUNKS) {
            out.text(piece)?;
        }
        out.finish(FinishReason::Stop);
        Ok(out.into_completion())
    }
}

quarry_provider_kit::export_provider!(Offline);

/// The translator's answer to a request, as JSON text.
pub fn answer(req: &CompletionRequest) -> String {
    let messages: Vec<core::Message> = req
        .messages
        .iter()
        .map(|m| core::Message {
            role: match m.role {
                Role::System => core::Role::System,
                Role::User => core::Role::User,
                Role::Assistant => core::Role::Assistant,
            },
            content: m.content.clone(),
        })
        .collect();
    let answer = core::respond(&messages);
    let line = match &answer.sql {
        Some(_) => format!("answered: {}", answer.description),
        None => "declined the question".to_string(),
    };
    quarry_provider_kit::log(Level::Debug, &line);
    answer.to_json()
}

/// `text` cut into at most `n` pieces of about equal length, on character boundaries.
pub fn chunks(text: &str, n: usize) -> Vec<&str> {
    let n = n.max(1);
    let size = text.len().div_ceil(n).max(1);
    let mut out = Vec::new();
    let mut start = 0;
    while start < text.len() {
        let mut end = (start + size).min(text.len());
        while !text.is_char_boundary(end) {
            end += 1;
        }
        out.push(&text[start..end]);
        start = end;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use quarry_provider_kit::ChatMessage;

    #[test]
    fn chunks_cover_the_text_on_char_boundaries() {
        let text = "{\"description\": \"Zählt die Bestellungen\", \"sql\": \"SELECT 1\"}";
        let pieces = chunks(text, STREAM_CHUNKS);
        assert!(pieces.len() <= STREAM_CHUNKS && pieces.len() > 1);
        assert_eq!(pieces.concat(), text);
        assert!(chunks("", 4).is_empty());
    }

    #[test]
    fn answers_the_pipelines_chat_with_the_json_it_asks_for() {
        let system = "You translate questions about a SQLite database into one read-only SQL query.\n\nSchema:\n\
            CREATE TABLE pets (\n  id INTEGER PRIMARY KEY,\n  species TEXT, -- e.g. 'cat', 'dog'\n);\n";
        let req = CompletionRequest {
            messages: vec![
                ChatMessage { role: Role::System, content: system.into() },
                ChatMessage { role: Role::User, content: "How many cats?".into() },
            ],
            max_tokens: None,
            temperature: None,
            json_mode: false,
            stop: vec![],
            extra: None,
        };
        let v: serde_json::Value = serde_json::from_str(&answer(&req)).expect("json");
        assert_eq!(v["sql"], "SELECT COUNT(*) AS pet_count\nFROM pets\nWHERE species = 'cat'");
    }
}
