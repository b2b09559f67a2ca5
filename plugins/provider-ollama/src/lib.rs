//! The `ollama` provider: Ollama's native API.
//!
//! - `POST {base}/api/chat` with `model`, `messages`, `stream`, `format: "json"` in JSON mode and
//!   the sampling settings under `options` (`temperature`, `num_predict`, `stop`, `num_ctx`);
//!   streamed as newline-delimited JSON objects, the last one with `done: true`, `done_reason`,
//!   `prompt_eval_count` and `eval_count`;
//! - `GET {base}/api/tags` lists the models pulled on the server;
//! - `POST {base}/api/embed` with `model` and `input` (the texts) computes embeddings, answered by
//!   `embeddings` in the order of the texts and `prompt_eval_count` (`embeddings`).
//!
//! Options: `num_ctx` (context window), `keep_alive` (how long Ollama keeps the model loaded, for
//! chat and embeddings alike), `think` (`true`/`false`, for reasoning models).

use quarry_provider_kit::config::{self, option, option_parse};
use quarry_provider_kit::embeddings;
use quarry_provider_kit::http::{self, Headers};
use quarry_provider_kit::ndjson::LineSplitter;
use quarry_provider_kit::stream::Collector;
use quarry_provider_kit::{
    Completion, CompletionRequest, EmbeddingConfig, EmbeddingResult, EmbeddingsGuest, FinishReason, Guest, ModelInfo,
    PluginInfo, ProviderConfig, ProviderError, errors, role_name,
};
use serde::Deserialize;
use serde_json::{Map, Value, json};

/// The `ollama` provider.
pub struct Ollama;

impl Guest for Ollama {
    fn info() -> PluginInfo {
        PluginInfo { name: "ollama".into(), version: env!("CARGO_PKG_VERSION").into(), description: "Ollama native API (/api/chat, /api/tags)".into() }
    }

    fn list_models(cfg: ProviderConfig) -> Result<Vec<ModelInfo>, ProviderError> {
        let tags: Tags = http::get("/api/tags", Headers::json().bearer(&cfg))?.json()?;
        Ok(tags.models.into_iter().map(|m| ModelInfo { id: m.name, context_window: None, owned_by: None }).collect())
    }

    fn complete(cfg: ProviderConfig, req: CompletionRequest) -> Result<Completion, ProviderError> {
        let body = request_body(&cfg, &req, false)?;
        let answer: Value = http::post_json("/api/chat", Headers::json().bearer(&cfg), &body)?.json()?;
        let mut out = Collector::silent();
        on_line(answer, &mut out)?;
        Ok(out.into_completion())
    }

    fn complete_streaming(cfg: ProviderConfig, req: CompletionRequest) -> Result<Completion, ProviderError> {
        let body = request_body(&cfg, &req, true)?;
        let mut stream = http::post_json_streaming("/api/chat", Headers::json().bearer(&cfg), &body)?;
        let mut lines = LineSplitter::new();
        let mut out = Collector::streaming();
        let mut done = false;
        while !done {
            let Some(chunk) = stream.next_chunk()? else { break };
            for line in lines.feed(&chunk) {
                done |= on_line(parse(&line)?, &mut out)?;
            }
        }
        if !done {
            if let Some(line) = lines.finish() {
                done = on_line(parse(&line)?, &mut out)?;
            }
        }
        if !done {
            return Err(ProviderError::MalformedResponse("the stream ended before Ollama said `done`".into()));
        }
        Ok(out.into_completion())
    }
}

impl EmbeddingsGuest for Ollama {
    fn embed(cfg: EmbeddingConfig, texts: Vec<String>) -> Result<EmbeddingResult, ProviderError> {
        let mut body = json!({"model": embeddings::model(&cfg)?, "input": texts});
        let settings = ProviderConfig::from(&cfg);
        if let Some(k) = option(&settings, "keep_alive") {
            body["keep_alive"] = json!(k);
        }
        let answer = http::post_json("/api/embed", Headers::json().bearer(&settings), &body)?;
        parse_embeddings(&answer.body)
    }
}

quarry_provider_kit::export_provider!(Ollama);
quarry_provider_kit::export_embeddings!(Ollama);

fn parse(line: &str) -> Result<Value, ProviderError> {
    serde_json::from_str(line).map_err(|e| errors::malformed("a streamed line is not JSON", e))
}

/// The `/api/chat` request body.
pub fn request_body(cfg: &ProviderConfig, req: &CompletionRequest, stream: bool) -> Result<Value, ProviderError> {
    let messages: Vec<Value> =
        req.messages.iter().map(|m| json!({"role": role_name(m.role), "content": m.content})).collect();
    // Ollama streams unless told otherwise, so `stream` is always sent.
    let mut body = json!({"model": config::model(cfg)?, "messages": messages, "stream": stream});
    let mut options = Map::new();
    if let Some(t) = req.temperature {
        options.insert("temperature".into(), config::float(t));
    }
    if let Some(n) = req.max_tokens {
        options.insert("num_predict".into(), json!(n));
    }
    if !req.stop.is_empty() {
        options.insert("stop".into(), json!(req.stop));
    }
    if let Some(n) = option_parse::<u32>(cfg, "num_ctx") {
        options.insert("num_ctx".into(), json!(n));
    }
    if !options.is_empty() {
        body["options"] = Value::Object(options);
    }
    if req.json_mode {
        body["format"] = json!("json");
    }
    if let Some(k) = option(cfg, "keep_alive") {
        body["keep_alive"] = json!(k);
    }
    if option(cfg, "think").is_some() {
        body["think"] = json!(config::option_bool(cfg, "think", false));
    }
    config::merge_extra(&mut body, req.extra.as_deref())?;
    Ok(body)
}

#[derive(Deserialize)]
struct Tags {
    #[serde(default)]
    models: Vec<Tag>,
}

#[derive(Deserialize)]
struct Tag {
    name: String,
}

#[derive(Deserialize)]
struct ChatChunk {
    model: Option<String>,
    message: Option<ChunkMessage>,
    #[serde(default)]
    done: bool,
    done_reason: Option<String>,
    prompt_eval_count: Option<u32>,
    eval_count: Option<u32>,
}

#[derive(Deserialize)]
struct ChunkMessage {
    content: Option<String>,
    thinking: Option<String>,
}

#[derive(Deserialize)]
struct EmbedAnswer {
    model: Option<String>,
    embeddings: Option<Vec<Vec<f32>>>,
    prompt_eval_count: Option<u32>,
    error: Option<Value>,
}

/// Read an `/api/embed` answer (the vectors are already in the order of the texts; the host
/// checks there is one per text).
pub fn parse_embeddings(body: &[u8]) -> Result<EmbeddingResult, ProviderError> {
    let answer: EmbedAnswer =
        serde_json::from_slice(body).map_err(|e| errors::malformed("unexpected embeddings answer", e))?;
    match (answer.embeddings, answer.error) {
        (_, Some(error)) if !error.is_null() => Err(errors::from_stream_error(&json!({"error": error}))),
        (Some(vectors), _) => {
            Ok(EmbeddingResult { vectors, model: answer.model, input_tokens: answer.prompt_eval_count })
        }
        (None, _) => Err(ProviderError::MalformedResponse("the embeddings answer has no `embeddings`".into())),
    }
}

/// Handle one response object (the whole answer, or one streamed line); `true` when done.
fn on_line(value: Value, out: &mut Collector) -> Result<bool, ProviderError> {
    if value.get("error").is_some_and(|e| !e.is_null()) {
        return Err(errors::from_stream_error(&value));
    }
    let chunk: ChatChunk = serde_json::from_value(value).map_err(|e| errors::malformed("unexpected answer", e))?;
    if let Some(m) = &chunk.model {
        out.model(m);
    }
    if let Some(msg) = &chunk.message {
        if let Some(t) = &msg.thinking {
            out.reasoning(t)?;
        }
        if let Some(c) = &msg.content {
            out.text(c)?;
        }
    }
    if chunk.done {
        out.finish(match chunk.done_reason.as_deref() {
            None | Some("stop") => FinishReason::Stop,
            Some("length") => FinishReason::Length,
            Some(_) => FinishReason::Other,
        });
        if chunk.prompt_eval_count.is_some() || chunk.eval_count.is_some() {
            out.usage(chunk.prompt_eval_count, chunk.eval_count)?;
        }
    }
    Ok(chunk.done)
}

#[cfg(test)]
mod tests {
    use super::*;
    use quarry_provider_kit::{ChatMessage, Role};

    #[test]
    fn sampling_settings_go_under_options() {
        let cfg = ProviderConfig { model: "llama3".into(), has_api_key: false, options: vec![("num_ctx".into(), "8192".into())] };
        let req = CompletionRequest {
            messages: vec![ChatMessage { role: Role::User, content: "hi".into() }],
            max_tokens: Some(9),
            temperature: Some(0.5),
            json_mode: true,
            stop: vec![],
            extra: None,
        };
        let body = request_body(&cfg, &req, false).expect("body");
        assert_eq!(body["stream"], false);
        assert_eq!(body["format"], "json");
        assert_eq!(body["options"], json!({"temperature": 0.5, "num_predict": 9, "num_ctx": 8192}));
    }

    #[test]
    fn reads_embeddings_and_errors() {
        let r = parse_embeddings(br#"{"model":"all-minilm","embeddings":[[0.5,1.5],[2.5,3.5]],"prompt_eval_count":8}"#)
            .expect("ok");
        assert_eq!(r.vectors, vec![vec![0.5, 1.5], vec![2.5, 3.5]]);
        assert_eq!((r.model.as_deref(), r.input_tokens), (Some("all-minilm"), Some(8)));
        let err = parse_embeddings(br#"{"error":"model \"nope\" not found, try pulling it first"}"#);
        assert!(matches!(err, Err(ProviderError::ModelNotFound(_))), "{err:?}");
        assert!(matches!(parse_embeddings(b"{}"), Err(ProviderError::MalformedResponse(_))));
    }
}
