//! An example `llm-provider` plugin for Hugging Face Text Generation Inference (TGI), native API,
//! written against Quarry's WIT contract and nothing else.
//!
//! - `complete`: `POST {base}/generate` with `{"inputs": prompt, "parameters": {…}}`, answered by
//!   `{"generated_text": …, "details": {"finish_reason": …, "generated_tokens": …}}`;
//! - `complete-streaming`: `POST {base}/generate_stream`, answered by server-sent events, one
//!   `data: {"token": {"text": …}, …}` per token, the last one with `details`;
//! - `list-models`: `GET {base}/info`, which names the one model the server serves.
//!
//! Everything a provider may do goes through the host: `http::send` / `http::send_streaming` to
//! the endpoint `default` (the operator's `LLM_BASE_URL`), `events::emit` for each streamed
//! token, `log::log` for diagnostics. The API key is never seen here: the plugin writes the
//! placeholder `{secret:api_key}` and the host fills it in.

// Generate the guest bindings from Quarry's WIT files (copy `wit/` next to your crate if you
// build outside Quarry's tree, and point `path` at it).
wit_bindgen::generate!({ world: "llm-provider", path: "../../wit" });

use exports::quarry::plugin::provider::{Guest, ModelInfo, ProviderConfig};
use quarry::plugin::events::{self, CompletionEvent};
use quarry::plugin::http::{self, HttpError, Method, Request};
use quarry::plugin::types::{ChatMessage, Completion, CompletionRequest, FinishReason, PluginInfo, ProviderError, Role, Usage};
use serde::Deserialize;
use serde_json::{Value, json};

struct Tgi;

impl Guest for Tgi {
    fn info() -> PluginInfo {
        // `name` must match the manifest's: the host checks it when loading the plugin.
        PluginInfo { name: "tgi".into(), version: "0.1.0".into(), description: "Hugging Face TGI (example)".into() }
    }

    fn list_models(cfg: ProviderConfig) -> Result<Vec<ModelInfo>, ProviderError> {
        let (status, body) = send(&cfg, Method::Get, "/info", Vec::new())?;
        check(status, &body)?;
        let info: Info = serde_json::from_slice(&body).map_err(malformed)?;
        Ok(vec![ModelInfo { id: info.model_id, context_window: info.max_total_tokens, owned_by: None }])
    }

    fn complete(cfg: ProviderConfig, req: CompletionRequest) -> Result<Completion, ProviderError> {
        let (status, body) = send(&cfg, Method::Post, "/generate", request_body(&req))?;
        check(status, &body)?;
        let answer: Generated = serde_json::from_slice(&body).map_err(malformed)?;
        Ok(Completion {
            text: answer.generated_text,
            finish: answer.details.as_ref().map(finish).unwrap_or(FinishReason::Stop),
            usage: answer.details.as_ref().and_then(usage),
            model: Some(cfg.model),
        })
    }

    fn complete_streaming(cfg: ProviderConfig, req: CompletionRequest) -> Result<Completion, ProviderError> {
        let (head, stream) = http::send_streaming(&request(&cfg, Method::Post, "/generate_stream", request_body(&req))).map_err(transport)?;
        if head.status != 200 {
            // Read the error body (it is small) to say what went wrong.
            let mut body = Vec::new();
            while let Ok(Some(chunk)) = stream.next() {
                body.extend(chunk);
            }
            check(head.status, &body)?;
        }
        let mut text = String::new();
        let mut line = Vec::new();
        let mut last: Option<Details> = None;
        // Chunks arrive wherever the network split them: collect bytes up to each newline, and
        // only then decode the line.
        while let Some(chunk) = stream.next().map_err(transport)? {
            for byte in chunk {
                if byte != b'\n' {
                    line.push(byte);
                    continue;
                }
                let raw = String::from_utf8_lossy(&line).trim().to_string();
                line.clear();
                let Some(data) = raw.strip_prefix("data:") else { continue };
                let event: StreamEvent = serde_json::from_str(data.trim()).map_err(malformed)?;
                if !event.token.special {
                    text.push_str(&event.token.text);
                    // `cancelled` means the client went away: stop generating.
                    events::emit(&CompletionEvent::TextDelta(event.token.text)).map_err(|_| ProviderError::Cancelled)?;
                }
                if event.details.is_some() {
                    last = event.details;
                }
            }
        }
        Ok(Completion { text, finish: last.as_ref().map(finish).unwrap_or(FinishReason::Stop), usage: last.as_ref().and_then(usage), model: Some(cfg.model) })
    }
}

export!(Tgi);

/// TGI's native API takes one prompt string: render the chat as a plain transcript.
fn prompt(messages: &[ChatMessage]) -> String {
    let mut out = String::new();
    for m in messages {
        let who = match m.role {
            Role::System => "System",
            Role::User => "User",
            Role::Assistant => "Assistant",
        };
        out.push_str(&format!("{who}: {}\n", m.content));
    }
    out.push_str("Assistant:");
    out
}

fn request_body(req: &CompletionRequest) -> Vec<u8> {
    let mut parameters = json!({"details": true, "max_new_tokens": req.max_tokens.unwrap_or(512)});
    // TGI refuses temperature 0: greedy decoding is "no sampling".
    match req.temperature {
        Some(t) if t > 0.0 => parameters["temperature"] = json!(t),
        Some(_) => parameters["do_sample"] = json!(false),
        None => {}
    }
    if !req.stop.is_empty() {
        parameters["stop"] = json!(req.stop);
    }
    json!({"inputs": prompt(&req.messages), "parameters": parameters}).to_string().into_bytes()
}

fn request(cfg: &ProviderConfig, method: Method, path: &str, body: Vec<u8>) -> Request {
    let mut headers = vec![("content-type".to_string(), "application/json".to_string())];
    if cfg.has_api_key {
        // The host replaces the placeholder with the operator's key, for this endpoint only.
        headers.push(("authorization".to_string(), "Bearer {secret:api_key}".to_string()));
    }
    Request { endpoint: "default".into(), method, path: path.into(), headers, body }
}

fn send(cfg: &ProviderConfig, method: Method, path: &str, body: Vec<u8>) -> Result<(u16, Vec<u8>), ProviderError> {
    let (head, body) = http::send(&request(cfg, method, path, body)).map_err(transport)?;
    Ok((head.status, body))
}

/// Map a non-2xx answer to a typed error. (The host has already retried 429 and 5xx.)
fn check(status: u16, body: &[u8]) -> Result<(), ProviderError> {
    if (200..300).contains(&status) {
        return Ok(());
    }
    // TGI errors look like {"error": "...", "error_type": "..."}.
    let message = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_string))
        .unwrap_or_else(|| format!("HTTP {status}"));
    Err(match status {
        401 | 403 => ProviderError::BadCredentials(message),
        404 => ProviderError::ModelNotFound(message),
        429 => ProviderError::RateLimited(None),
        422 if message.contains("tokens") => ProviderError::ContextTooLong(message),
        _ => ProviderError::Upstream((status, message)),
    })
}

fn transport(e: HttpError) -> ProviderError {
    match e {
        HttpError::Denied(m) => ProviderError::Denied(m),
        HttpError::Timeout => ProviderError::Timeout,
        HttpError::Cancelled => ProviderError::Cancelled,
        HttpError::TooLarge(cap) => ProviderError::MalformedResponse(format!("answer larger than {cap} bytes")),
        HttpError::Connect(m) => ProviderError::Upstream((0, m)),
        HttpError::Invalid(m) => ProviderError::Internal(m),
    }
}

fn malformed(e: serde_json::Error) -> ProviderError {
    ProviderError::MalformedResponse(e.to_string())
}

fn finish(d: &Details) -> FinishReason {
    match d.finish_reason.as_str() {
        "length" => FinishReason::Length,
        "eos_token" | "stop_sequence" => FinishReason::Stop,
        _ => FinishReason::Other,
    }
}

fn usage(d: &Details) -> Option<Usage> {
    Some(Usage { input_tokens: d.prefill.as_ref().map(|p| p.len() as u32).unwrap_or(0), output_tokens: d.generated_tokens? })
}

#[derive(Deserialize)]
struct Info {
    model_id: String,
    max_total_tokens: Option<u32>,
}

#[derive(Deserialize)]
struct Generated {
    generated_text: String,
    details: Option<Details>,
}

#[derive(Deserialize)]
struct Details {
    finish_reason: String,
    generated_tokens: Option<u32>,
    prefill: Option<Vec<Value>>,
}

#[derive(Deserialize)]
struct StreamEvent {
    token: Token,
    details: Option<Details>,
}

#[derive(Deserialize)]
struct Token {
    text: String,
    #[serde(default)]
    special: bool,
}
