//! The `openai` provider: the OpenAI Chat Completions wire format, against any base URL that
//! speaks it (OpenAI, Groq's `/openai/v1`, OpenRouter, vLLM, LM Studio, llama.cpp server,
//! Ollama's `/v1`).
//!
//! - `POST {base}/chat/completions` with `model`, `messages`, `temperature`, `max_tokens`, `stop`,
//!   `response_format: {"type":"json_object"}` in JSON mode; streamed as SSE `data:` chunks ending
//!   with `data: [DONE]`, with `stream_options.include_usage` so the last chunk carries usage;
//! - `GET {base}/models` lists models;
//! - `POST {base}/embeddings` with `model`, `input` (the texts) and `encoding_format: "float"`
//!   computes embeddings, answered by `data: [{index, embedding}]` in any order (`embeddings`);
//! - `authorization: Bearer {secret:api_key}` when a key is configured (local servers need none).
//!
//! Options (`LLM_OPTIONS`): `stream_usage=false` for servers that reject `stream_options`;
//! `max_tokens_field=max_completion_tokens` for OpenAI reasoning models; `organization` and
//! `project` for the OpenAI headers of those names.

use quarry_provider_kit::config::{self, option, option_bool};
use quarry_provider_kit::embeddings::{self, in_order};
use quarry_provider_kit::http::{self, Headers};
use quarry_provider_kit::sse::SseParser;
use quarry_provider_kit::stream::Collector;
use quarry_provider_kit::{
    Completion, CompletionRequest, EmbeddingConfig, EmbeddingResult, EmbeddingsGuest, FinishReason, Guest, ModelInfo,
    PluginInfo, ProviderConfig, ProviderError, errors, role_name,
};
use serde::Deserialize;
use serde_json::{Value, json};

/// The `openai` provider.
pub struct OpenAi;

impl Guest for OpenAi {
    fn info() -> PluginInfo {
        PluginInfo {
            name: "openai".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "OpenAI Chat Completions wire format (OpenAI, Groq, OpenRouter, vLLM, LM Studio, llama.cpp, Ollama /v1)".into(),
        }
    }

    fn list_models(cfg: ProviderConfig) -> Result<Vec<ModelInfo>, ProviderError> {
        let list: ModelList = http::get("/models", headers(&cfg))?.json()?;
        Ok(list
            .data
            .into_iter()
            .map(|m| ModelInfo { id: m.id, context_window: m.context_length.or(m.max_model_len), owned_by: m.owned_by })
            .collect())
    }

    fn complete(cfg: ProviderConfig, req: CompletionRequest) -> Result<Completion, ProviderError> {
        let body = request_body(&cfg, &req, false)?;
        let answer: Value = http::post_json("/chat/completions", headers(&cfg), &body)?.json()?;
        parse_completion(&answer)
    }

    fn complete_streaming(cfg: ProviderConfig, req: CompletionRequest) -> Result<Completion, ProviderError> {
        let body = request_body(&cfg, &req, true)?;
        let mut stream = http::post_json_streaming("/chat/completions", headers(&cfg).event_stream(), &body)?;
        let mut parser = SseParser::new();
        let mut out = Collector::streaming();
        let mut done = false;
        while let Some(chunk) = stream.next_chunk()? {
            for event in parser.feed(&chunk) {
                done |= on_event(&event.data, &mut out)?;
            }
            if done {
                break;
            }
        }
        if !done {
            if let Some(event) = parser.finish() {
                done = on_event(&event.data, &mut out)?;
            }
        }
        // A stream cut before `[DONE]` and before any finish reason is an incomplete answer.
        if !done && !out.finished() {
            return Err(ProviderError::MalformedResponse("the stream ended before the API finished its answer".into()));
        }
        Ok(out.into_completion())
    }
}

impl EmbeddingsGuest for OpenAi {
    fn embed(cfg: EmbeddingConfig, texts: Vec<String>) -> Result<EmbeddingResult, ProviderError> {
        let body = json!({"model": embeddings::model(&cfg)?, "input": texts, "encoding_format": "float"});
        let answer = http::post_json("/embeddings", headers(&ProviderConfig::from(&cfg)), &body)?;
        parse_embeddings(&answer.body, texts.len())
    }
}

quarry_provider_kit::export_provider!(OpenAi);
quarry_provider_kit::export_embeddings!(OpenAi);

fn headers(cfg: &ProviderConfig) -> Headers {
    let mut h = Headers::json().bearer(cfg);
    if let Some(org) = option(cfg, "organization") {
        h = h.with("openai-organization", org);
    }
    if let Some(project) = option(cfg, "project") {
        h = h.with("openai-project", project);
    }
    h
}

/// The Chat Completions request body.
pub fn request_body(cfg: &ProviderConfig, req: &CompletionRequest, stream: bool) -> Result<Value, ProviderError> {
    let messages: Vec<Value> =
        req.messages.iter().map(|m| json!({"role": role_name(m.role), "content": m.content})).collect();
    let mut body = json!({"model": config::model(cfg)?, "messages": messages, "stream": stream});
    if let Some(t) = req.temperature {
        body["temperature"] = config::float(t);
    }
    if let Some(n) = req.max_tokens {
        let field = option(cfg, "max_tokens_field").unwrap_or("max_tokens");
        body[field] = json!(n);
    }
    if !req.stop.is_empty() {
        body["stop"] = json!(req.stop);
    }
    if req.json_mode {
        body["response_format"] = json!({"type": "json_object"});
    }
    if stream && option_bool(cfg, "stream_usage", true) {
        body["stream_options"] = json!({"include_usage": true});
    }
    config::merge_extra(&mut body, req.extra.as_deref())?;
    Ok(body)
}

#[derive(Deserialize)]
struct ModelList {
    #[serde(default)]
    data: Vec<Model>,
}

#[derive(Deserialize)]
struct Model {
    id: String,
    owned_by: Option<String>,
    /// OpenRouter.
    context_length: Option<u32>,
    /// vLLM.
    max_model_len: Option<u32>,
}

#[derive(Deserialize)]
struct Answer {
    model: Option<String>,
    #[serde(default)]
    choices: Vec<Choice>,
    usage: Option<TokenUsage>,
}

#[derive(Deserialize)]
struct Choice {
    message: Option<Message>,
    delta: Option<Message>,
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct Message {
    content: Option<String>,
    /// DeepSeek, vLLM and llama.cpp reasoning parsers.
    reasoning_content: Option<String>,
    /// OpenRouter, Groq.
    reasoning: Option<String>,
}

#[derive(Deserialize, Clone, Copy)]
struct TokenUsage {
    prompt_tokens: Option<u32>,
    completion_tokens: Option<u32>,
}

fn finish_reason(s: &str) -> FinishReason {
    match s {
        "stop" | "end_turn" | "eos" => FinishReason::Stop,
        "length" | "max_tokens" => FinishReason::Length,
        "content_filter" => FinishReason::ContentFilter,
        _ => FinishReason::Other,
    }
}

/// Read a non-streamed answer.
pub fn parse_completion(answer: &Value) -> Result<Completion, ProviderError> {
    // Some OpenAI-compatible servers answer 200 with an error object.
    if answer.get("error").is_some_and(|e| !e.is_null()) && answer.get("choices").is_none() {
        return Err(errors::from_stream_error(answer));
    }
    let answer: Answer = serde_json::from_value(answer.clone()).map_err(|e| errors::malformed("unexpected answer", e))?;
    let choice = answer.choices.into_iter().next().ok_or_else(|| ProviderError::MalformedResponse("the answer has no choices".into()))?;
    let message = choice.message.ok_or_else(|| ProviderError::MalformedResponse("the answer's choice has no message".into()))?;
    Ok(Completion {
        text: message.content.unwrap_or_default(),
        finish: choice.finish_reason.as_deref().map(finish_reason).unwrap_or(FinishReason::Stop),
        usage: answer.usage.map(|u| quarry_provider_kit::Usage {
            input_tokens: u.prompt_tokens.unwrap_or(0),
            output_tokens: u.completion_tokens.unwrap_or(0),
        }),
        model: answer.model,
    })
}

#[derive(Deserialize)]
struct EmbeddingList {
    data: Option<Vec<Embedding>>,
    model: Option<String>,
    usage: Option<EmbeddingUsage>,
    /// Some OpenAI-compatible servers answer 200 with an error object.
    error: Option<Value>,
}

#[derive(Deserialize)]
struct Embedding {
    index: usize,
    embedding: Vec<f32>,
}

#[derive(Deserialize)]
struct EmbeddingUsage {
    prompt_tokens: Option<u32>,
}

/// Read an embeddings answer for `count` texts; the vectors come back in the order of the texts.
pub fn parse_embeddings(body: &[u8], count: usize) -> Result<EmbeddingResult, ProviderError> {
    // Typed straight from the bytes: a generic JSON tree of thousands of floats costs far more memory.
    let list: EmbeddingList =
        serde_json::from_slice(body).map_err(|e| errors::malformed("unexpected embeddings answer", e))?;
    let data = match (list.data, list.error) {
        (Some(data), _) => data,
        (None, Some(error)) if !error.is_null() => return Err(errors::from_stream_error(&json!({"error": error}))),
        (None, _) => return Err(ProviderError::MalformedResponse("the embeddings answer has no `data`".into())),
    };
    Ok(EmbeddingResult {
        vectors: in_order(data.into_iter().map(|e| (e.index, e.embedding)).collect(), count)?,
        model: list.model,
        input_tokens: list.usage.and_then(|u| u.prompt_tokens),
    })
}

/// Handle one SSE `data:` payload; `true` once the stream says it is done.
fn on_event(data: &str, out: &mut Collector) -> Result<bool, ProviderError> {
    let data = data.trim();
    if data == "[DONE]" {
        return Ok(true);
    }
    if data.is_empty() {
        return Ok(false);
    }
    let value: Value = serde_json::from_str(data).map_err(|e| errors::malformed("a streamed chunk is not JSON", e))?;
    if value.get("error").is_some_and(|e| !e.is_null()) {
        return Err(errors::from_stream_error(&value));
    }
    let chunk: Answer = serde_json::from_value(value).map_err(|e| errors::malformed("unexpected streamed chunk", e))?;
    if let Some(model) = &chunk.model {
        out.model(model);
    }
    for choice in chunk.choices.into_iter().take(1) {
        if let Some(delta) = choice.delta {
            if let Some(r) = delta.reasoning_content.as_deref().or(delta.reasoning.as_deref()) {
                out.reasoning(r)?;
            }
            if let Some(text) = &delta.content {
                out.text(text)?;
            }
        }
        if let Some(reason) = &choice.finish_reason {
            out.finish(finish_reason(reason));
        }
    }
    if let Some(u) = chunk.usage {
        out.usage(u.prompt_tokens, u.completion_tokens)?;
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use quarry_provider_kit::{ChatMessage, Role};

    #[test]
    fn builds_the_documented_body() {
        let cfg = ProviderConfig { model: "gpt-x".into(), has_api_key: true, options: vec![] };
        let req = CompletionRequest {
            messages: vec![ChatMessage { role: Role::System, content: "be brief".into() }, ChatMessage { role: Role::User, content: "hi".into() }],
            max_tokens: Some(50),
            temperature: Some(0.2),
            json_mode: true,
            stop: vec!["\n\n".into()],
            extra: Some(r#"{"seed": 1}"#.into()),
        };
        let body = request_body(&cfg, &req, true).expect("body");
        assert_eq!(body["model"], "gpt-x");
        assert_eq!(body["messages"][0], json!({"role": "system", "content": "be brief"}));
        assert_eq!(body["temperature"].to_string(), "0.2");
        assert_eq!(body["max_tokens"], 50);
        assert_eq!(body["response_format"]["type"], "json_object");
        assert_eq!(body["stream_options"]["include_usage"], true);
        assert_eq!(body["seed"], 1);
    }

    #[test]
    fn reads_an_answer() {
        let c = parse_completion(&json!({"model":"m","choices":[{"message":{"role":"assistant","content":"hey"},"finish_reason":"length"}],"usage":{"prompt_tokens":3,"completion_tokens":4}})).expect("ok");
        assert_eq!(c.text, "hey");
        assert!(matches!(c.finish, FinishReason::Length));
        assert_eq!(c.usage.map(|u| (u.input_tokens, u.output_tokens)), Some((3, 4)));
        assert!(matches!(parse_completion(&json!({"choices": []})), Err(ProviderError::MalformedResponse(_))));
    }

    #[test]
    fn reads_embeddings_in_the_order_of_the_texts() {
        let body = json!({"object": "list", "model": "emb-1", "usage": {"prompt_tokens": 5, "total_tokens": 5}, "data": [
            {"object": "embedding", "index": 1, "embedding": [0.5, -1.0]},
            {"object": "embedding", "index": 0, "embedding": [0.25, 2.0]}
        ]});
        let r = parse_embeddings(body.to_string().as_bytes(), 2).expect("ok");
        assert_eq!(r.vectors, vec![vec![0.25, 2.0], vec![0.5, -1.0]]);
        assert_eq!((r.model.as_deref(), r.input_tokens), (Some("emb-1"), Some(5)));
        let err = parse_embeddings(br#"{"error": {"message": "model not found", "code": "model_not_found"}}"#, 1);
        assert!(matches!(err, Err(ProviderError::ModelNotFound(_))));
        assert!(matches!(parse_embeddings(b"[1, 2]", 1), Err(ProviderError::MalformedResponse(_))));
    }
}
