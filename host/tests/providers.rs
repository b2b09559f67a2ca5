//! The built-in provider plugins and the host's `http` capability, end to end: real components,
//! real HTTP to local servers that speak each API's documented wire format.
//!
//! Each test asserts what the plugin sent (headers, body fields) and what the caller got back
//! (text, streamed deltas in order, usage, typed errors), including the failure paths: every
//! error mapping, retries, the allow-list, stalls, size caps, and secrets in logs and errors.

mod support;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use quarry::llm::{
    ChatMessage, CompletionEvent, CompletionRequest, FinishReason, LlmClient, LlmError, ProviderSettings, ProviderSpec, Role,
    Secret, llm_backend, user_prompt,
};
use quarry::plugins::capabilities::http::HttpClients;
use quarry::plugins::{PluginRegistry, Runtime, RuntimeConfig};
use serde_json::json;
use support::{FakeServer, Reply};
use tokio::sync::OnceCell;

/// The API key every test configures; it must never show up in an error or a log line.
const KEY: &str = "sk-quarry-test-5f4e3d2c1b0a9988";

/// Where `host/build.rs` left the test plugins' components.
const ARTIFACTS: &str = env!("QUARRY_TEST_PLUGINS_DIR");

/// Byte boundaries to cut streamed bodies at: irregular, down to a single byte.
const SPLITS: &[usize] = &[1, 7, 2, 13, 3, 5, 1, 31, 4];

/// The built-ins plus the `rogue` test provider, loaded once for the whole binary.
async fn registry() -> Arc<PluginRegistry> {
    static REGISTRY: OnceCell<(Arc<PluginRegistry>, PathBuf)> = OnceCell::const_new();
    let (registry, _) = REGISTRY
        .get_or_init(|| async {
            let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("provider-plugins-{}", std::process::id()));
            let dest = dir.join("rogue");
            std::fs::create_dir_all(&dest).expect("plugin dir");
            let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/test-plugins/rogue-provider");
            std::fs::copy(src.join("plugin.toml"), dest.join("plugin.toml")).expect("manifest");
            std::fs::copy(Path::new(ARTIFACTS).join("quarry_test_rogue_provider.wasm"), dest.join("rogue.wasm")).expect("component");
            let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("plugin-artifact-cache");
            let runtime = Runtime::new(RuntimeConfig { cache_dir: Some(cache), ..RuntimeConfig::default() }).expect("runtime");
            let registry = PluginRegistry::load(runtime, Some(dir.clone())).await;
            let set = registry.current();
            assert!(set.problems.is_empty(), "load problems: {:?}", set.problems);
            (registry, dir)
        })
        .await;
    registry.clone()
}

/// Settings for `provider` at `base_url`, with the test key, no retries and short timeouts.
fn spec(provider: &str, base_url: String) -> ProviderSpec {
    ProviderSpec {
        provider: Some(provider.into()),
        base_url: Some(base_url),
        model: Some("test-model".into()),
        api_key: Some(Secret::new(KEY)),
        max_retries: Some(0),
        timeout: Some(Duration::from_secs(10)),
        first_byte_timeout: Some(Duration::from_secs(5)),
        idle_timeout: Some(Duration::from_secs(5)),
        ..ProviderSpec::default()
    }
}

async fn client(settings: ProviderSettings) -> LlmClient {
    LlmClient::new(registry().await, settings, HttpClients::new())
}

async fn client_for(provider: &str, base_url: String) -> LlmClient {
    client(spec(provider, base_url).resolve().expect("settings")).await
}

fn full_request() -> CompletionRequest {
    CompletionRequest {
        messages: vec![
            ChatMessage { role: Role::System, content: "You write SQL.".into() },
            ChatMessage { role: Role::User, content: "How many orders?".into() },
        ],
        max_tokens: Some(256),
        temperature: Some(0.2),
        json_mode: true,
        stop: vec![";".into()],
        extra: None,
    }
}

/// Read a whole stream: the text deltas in order, and the final completion.
async fn drain(client: &LlmClient, req: CompletionRequest) -> (Vec<String>, Vec<CompletionEvent>, Result<quarry::llm::Completion, LlmError>) {
    let mut stream = client.stream(req);
    let mut deltas = Vec::new();
    let mut events = Vec::new();
    while let Some(ev) = stream.next().await {
        if let CompletionEvent::TextDelta(t) = &ev {
            deltas.push(t.clone());
        }
        events.push(ev);
    }
    (deltas, events, stream.finish().await)
}

fn assert_no_key(text: &str) {
    assert!(!text.contains(KEY), "the API key leaked: {text}");
}

// ---------------------------------------------------------------------------------------------
// OpenAI Chat Completions

fn openai_answer(text: &str) -> serde_json::Value {
    json!({
        "id": "chatcmpl-123", "object": "chat.completion", "created": 1700000000, "model": "test-model-0613",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "logprobs": null, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 19, "completion_tokens": 7, "total_tokens": 26}
    })
}

fn openai_stream(pieces: &[&str]) -> String {
    let mut s = String::new();
    let first = json!({"id":"c1","object":"chat.completion.chunk","created":1,"model":"test-model-0613","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]});
    s.push_str(&format!("data: {first}\n\n"));
    s.push_str(": keep-alive comment\n\n");
    let reasoning = json!({"id":"c1","object":"chat.completion.chunk","created":1,"model":"test-model-0613","choices":[{"index":0,"delta":{"reasoning_content":"thinking…"},"finish_reason":null}]});
    s.push_str(&format!("data: {reasoning}\n\n"));
    for p in pieces {
        let chunk = json!({"id":"c1","object":"chat.completion.chunk","created":1,"model":"test-model-0613","choices":[{"index":0,"delta":{"content":p},"finish_reason":null}]});
        s.push_str(&format!("data: {chunk}\r\n\r\n"));
    }
    let last = json!({"id":"c1","object":"chat.completion.chunk","created":1,"model":"test-model-0613","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]});
    s.push_str(&format!("data: {last}\n\n"));
    let usage = json!({"id":"c1","object":"chat.completion.chunk","created":1,"model":"test-model-0613","choices":[],"usage":{"prompt_tokens":19,"completion_tokens":7,"total_tokens":26}});
    s.push_str(&format!("data: {usage}\n\ndata: [DONE]\n\n"));
    s
}

#[tokio::test]
async fn openai_complete_sends_the_documented_request_and_reads_the_answer() {
    let server = FakeServer::start().await;
    server.reply("/v1/chat/completions", Reply::json(200, openai_answer("SELECT count(*) FROM orders")));
    let client = client_for("openai-compatible", server.url("/v1")).await;

    let c = client.complete(full_request()).await.expect("completion");
    assert_eq!(c.text, "SELECT count(*) FROM orders");
    assert_eq!(c.finish, FinishReason::Stop);
    assert_eq!(c.usage.map(|u| (u.input_tokens, u.output_tokens)), Some((19, 7)));
    assert_eq!(c.model.as_deref(), Some("test-model-0613"));

    let reqs = server.requests();
    assert_eq!(reqs.len(), 1);
    let r = &reqs[0];
    assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", "/v1/chat/completions"));
    assert_eq!(r.header("authorization"), Some(format!("Bearer {KEY}").as_str()));
    assert_eq!(r.header("content-type"), Some("application/json"));
    let body = r.json();
    assert_eq!(body["model"], "test-model");
    assert_eq!(body["messages"], json!([{"role":"system","content":"You write SQL."},{"role":"user","content":"How many orders?"}]));
    assert_eq!(body["max_tokens"], 256);
    assert_eq!(body["temperature"].to_string(), "0.2");
    assert_eq!(body["stop"], json!([";"]));
    assert_eq!(body["response_format"], json!({"type": "json_object"}));
    assert_eq!(body["stream"], false);
}

#[tokio::test]
async fn openai_without_a_key_sends_no_authorization_and_fills_configured_defaults() {
    let server = FakeServer::start().await;
    server.reply("/v1/chat/completions", Reply::json(200, openai_answer("ok")));
    let mut s = spec("openai-compatible", server.url("/v1/"));
    s.api_key = None;
    s.temperature = Some(0.7);
    s.max_tokens = Some(99);
    let client = client(s.resolve().expect("settings")).await;
    client.complete(user_prompt("hi")).await.expect("completion");
    let r = &server.requests()[0];
    assert_eq!(r.header("authorization"), None);
    assert_eq!(r.json()["temperature"].to_string(), "0.7");
    assert_eq!(r.json()["max_tokens"], 99);
    assert!(r.json().get("response_format").is_none());
}

#[tokio::test]
async fn openai_streams_deltas_in_order_whatever_the_chunk_boundaries() {
    let pieces = ["SELECT", " count(*)", " FROM", " orders", " — ✓ ünïcode", "\n"];
    let server = FakeServer::start().await;
    server.always("/v1/chat/completions", Reply::sse(&openai_stream(&pieces)).split(SPLITS, Duration::from_millis(1)));
    let client = client_for("openai-compatible", server.url("/v1")).await;

    let (deltas, events, done) = drain(&client, full_request()).await;
    assert_eq!(deltas, pieces[..].iter().map(|s| s.to_string()).collect::<Vec<_>>());
    assert!(events.iter().any(|e| matches!(e, CompletionEvent::ReasoningDelta(r) if r == "thinking…")));
    assert!(events.iter().any(|e| matches!(e, CompletionEvent::Usage(u) if u.input_tokens == 19 && u.output_tokens == 7)));
    let c = done.expect("completion");
    assert_eq!(c.text, pieces.concat());
    assert_eq!(c.usage.map(|u| (u.input_tokens, u.output_tokens)), Some((19, 7)));

    let r = &server.requests()[0];
    assert_eq!(r.json()["stream"], true);
    assert_eq!(r.json()["stream_options"], json!({"include_usage": true}));
    assert_eq!(r.header("accept"), Some("text/event-stream"));
}

#[tokio::test]
async fn openai_stream_cut_before_done_is_an_error_not_a_short_answer() {
    let full = openai_stream(&["SELECT", " 1"]);
    let cut = &full[..full.find("\"finish_reason\":\"stop\"").expect("finish chunk") - 60];
    let server = FakeServer::start().await;
    server.reply("/v1/chat/completions", Reply::sse(cut));
    let client = client_for("openai-compatible", server.url("/v1")).await;
    let (_, _, done) = drain(&client, user_prompt("q")).await;
    assert!(matches!(done, Err(LlmError::MalformedResponse(_))), "{done:?}");
}

#[tokio::test]
async fn openai_lists_models() {
    let server = FakeServer::start().await;
    server.reply("/v1/models", Reply::json(200, json!({"object": "list", "data": [
        {"id": "gpt-4o-mini", "object": "model", "created": 1, "owned_by": "openai"},
        {"id": "qwen2.5-coder", "object": "model", "created": 1, "owned_by": "vllm", "max_model_len": 32768}
    ]})));
    let client = client_for("openai-compatible", server.url("/v1")).await;
    let models = client.list_models().await.expect("models");
    assert_eq!(models.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(), ["gpt-4o-mini", "qwen2.5-coder"]);
    assert_eq!(models[1].context_window, Some(32768));
    assert_eq!(models[0].owned_by.as_deref(), Some("openai"));
    let r = &server.requests()[0];
    assert_eq!((r.method.as_str(), r.path.as_str()), ("GET", "/v1/models"));
    assert_eq!(r.header("authorization"), Some(format!("Bearer {KEY}").as_str()));
}

#[tokio::test]
async fn the_groq_preset_is_the_openai_plugin_at_groqs_base_path() {
    let server = FakeServer::start().await;
    server.reply("/openai/v1/chat/completions", Reply::json(200, openai_answer("hi")));
    // The preset's own base URL is remote; point it at the local server with the same path.
    let client = client_for("groq", server.url("/openai/v1")).await;
    assert_eq!(client.settings().plugin, "openai");
    client.complete(user_prompt("q")).await.expect("completion");
    assert_eq!(server.requests()[0].path, "/openai/v1/chat/completions");
}

// ---------------------------------------------------------------------------------------------
// Anthropic Messages

#[tokio::test]
async fn anthropic_complete_uses_its_headers_system_field_and_content_blocks() {
    let server = FakeServer::start().await;
    server.reply("/v1/messages", Reply::json(200, json!({
        "id": "msg_01", "type": "message", "role": "assistant", "model": "claude-test-20250101",
        "content": [{"type": "text", "text": "SELECT count(*)"}, {"type": "text", "text": " FROM orders"}],
        "stop_reason": "max_tokens", "stop_sequence": null,
        "usage": {"input_tokens": 12, "output_tokens": 6}
    })));
    // A base URL ending in /v1 is accepted: the plugin adds /v1 itself.
    let client = client_for("anthropic", server.url("/v1")).await;

    let mut req = full_request();
    req.max_tokens = None;
    let c = client.complete(req).await.expect("completion");
    assert_eq!(c.text, "SELECT count(*) FROM orders");
    assert_eq!(c.finish, FinishReason::Length);
    assert_eq!(c.usage.map(|u| (u.input_tokens, u.output_tokens)), Some((12, 6)));
    assert_eq!(c.model.as_deref(), Some("claude-test-20250101"));

    let r = &server.requests()[0];
    assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", "/v1/messages"));
    assert_eq!(r.header("x-api-key"), Some(KEY));
    assert_eq!(r.header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(r.header("authorization"), None);
    let body = r.json();
    assert_eq!(body["system"], "You write SQL.");
    assert_eq!(body["messages"], json!([{"role": "user", "content": "How many orders?"}]));
    assert_eq!(body["max_tokens"], 4096, "max_tokens is required by the API: a default is sent");
    assert_eq!(body["stop_sequences"], json!([";"]));
    assert!(body.get("stream").is_none());
}

fn anthropic_stream(pieces: &[&str]) -> String {
    let mut s = String::new();
    let mut ev = |name: &str, data: serde_json::Value| s.push_str(&format!("event: {name}\ndata: {data}\n\n"));
    ev("message_start", json!({"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","content":[],"model":"claude-test","stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":25,"output_tokens":1}}}));
    ev("content_block_start", json!({"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":""}}));
    ev("content_block_delta", json!({"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"Let me think"}}));
    ev("content_block_delta", json!({"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"abc"}}));
    ev("content_block_stop", json!({"type":"content_block_stop","index":0}));
    ev("ping", json!({"type": "ping"}));
    ev("content_block_start", json!({"type":"content_block_start","index":1,"content_block":{"type":"text","text":""}}));
    for p in pieces {
        ev("content_block_delta", json!({"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":p}}));
    }
    ev("content_block_stop", json!({"type":"content_block_stop","index":1}));
    ev("message_delta", json!({"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":15}}));
    ev("message_stop", json!({"type":"message_stop"}));
    s
}

#[tokio::test]
async fn anthropic_streams_its_event_types_whatever_the_chunk_boundaries() {
    let pieces = ["Hello", "!", " Ünïcode ✓", " done."];
    let server = FakeServer::start().await;
    server.always("/v1/messages", Reply::sse(&anthropic_stream(&pieces)).split(SPLITS, Duration::from_millis(1)));
    let client = client_for("anthropic", server.url("")).await;

    let (deltas, events, done) = drain(&client, full_request()).await;
    assert_eq!(deltas, pieces[..].iter().map(|s| s.to_string()).collect::<Vec<_>>());
    assert!(events.iter().any(|e| matches!(e, CompletionEvent::ReasoningDelta(r) if r == "Let me think")));
    let c = done.expect("completion");
    assert_eq!(c.text, pieces.concat());
    assert_eq!(c.finish, FinishReason::Stop);
    assert_eq!(c.usage.map(|u| (u.input_tokens, u.output_tokens)), Some((25, 15)));
    assert_eq!(server.requests()[0].json()["stream"], true);
}

#[tokio::test]
async fn anthropic_lists_models() {
    let server = FakeServer::start().await;
    server.reply("/v1/models", Reply::json(200, json!({"data": [
        {"type": "model", "id": "claude-sonnet-4-5", "display_name": "Claude Sonnet 4.5", "created_at": "2025-09-29T00:00:00Z"}
    ], "has_more": false, "first_id": "claude-sonnet-4-5", "last_id": "claude-sonnet-4-5"})));
    let client = client_for("anthropic", server.url("")).await;
    let models = client.list_models().await.expect("models");
    assert_eq!(models[0].id, "claude-sonnet-4-5");
    let r = &server.requests()[0];
    assert!(r.path.starts_with("/v1/models"));
    assert_eq!(r.header("x-api-key"), Some(KEY));
    assert_eq!(r.header("anthropic-version"), Some("2023-06-01"));
}

// ---------------------------------------------------------------------------------------------
// Ollama

#[tokio::test]
async fn ollama_complete_sends_format_json_and_options_and_no_key() {
    let server = FakeServer::start().await;
    server.reply("/api/chat", Reply::json(200, json!({
        "model": "llama3.2", "created_at": "2024-07-22T20:33:28.123648Z",
        "message": {"role": "assistant", "content": "{\"sql\": \"SELECT 1\"}"},
        "done": true, "done_reason": "stop", "total_duration": 1, "load_duration": 1,
        "prompt_eval_count": 26, "prompt_eval_duration": 1, "eval_count": 11, "eval_duration": 1
    })));
    let mut s = spec("ollama", server.url(""));
    s.api_key = None;
    s.options.insert("num_ctx".into(), "8192".into());
    let client = client(s.resolve().expect("settings")).await;

    let c = client.complete(full_request()).await.expect("completion");
    assert_eq!(c.text, "{\"sql\": \"SELECT 1\"}");
    assert_eq!(c.usage.map(|u| (u.input_tokens, u.output_tokens)), Some((26, 11)));
    assert_eq!(c.model.as_deref(), Some("llama3.2"));

    let r = &server.requests()[0];
    assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", "/api/chat"));
    assert_eq!(r.header("authorization"), None);
    let body = r.json();
    assert_eq!(body["stream"], false);
    assert_eq!(body["format"], "json");
    assert_eq!(body["options"], json!({"temperature": 0.2, "num_predict": 256, "stop": [";"], "num_ctx": 8192}));
    assert_eq!(body["messages"][0], json!({"role": "system", "content": "You write SQL."}));
}

#[tokio::test]
async fn ollama_streams_ndjson_whatever_the_chunk_boundaries() {
    let pieces = ["The", " answer", " is ✓", " 42"];
    let mut body = String::new();
    for p in pieces {
        body.push_str(&json!({"model":"llama3.2","created_at":"2024-01-01T00:00:00Z","message":{"role":"assistant","content":p},"done":false}).to_string());
        body.push('\n');
    }
    body.push_str(&json!({"model":"llama3.2","created_at":"2024-01-01T00:00:00Z","message":{"role":"assistant","content":""},"done":true,"done_reason":"length","prompt_eval_count":10,"eval_count":4}).to_string());
    body.push('\n');
    let server = FakeServer::start().await;
    server.always("/api/chat", Reply::ndjson(&body).split(SPLITS, Duration::from_millis(1)));
    let client = client_for("ollama", server.url("")).await;

    let (deltas, _, done) = drain(&client, user_prompt("q")).await;
    assert_eq!(deltas, pieces[..].iter().map(|s| s.to_string()).collect::<Vec<_>>());
    let c = done.expect("completion");
    assert_eq!(c.text, pieces.concat());
    assert_eq!(c.finish, FinishReason::Length);
    assert_eq!(c.usage.map(|u| (u.input_tokens, u.output_tokens)), Some((10, 4)));
    assert_eq!(server.requests()[0].json()["stream"], true);
}

#[tokio::test]
async fn ollama_lists_tags() {
    let server = FakeServer::start().await;
    server.reply("/api/tags", Reply::json(200, json!({"models": [
        {"name": "llama3.2:latest", "model": "llama3.2:latest", "modified_at": "2024-01-01T00:00:00Z", "size": 1, "digest": "abc",
         "details": {"format": "gguf", "family": "llama", "parameter_size": "3B", "quantization_level": "Q4_K_M"}}
    ]})));
    let client = client_for("ollama", server.url("")).await;
    let models = client.list_models().await.expect("models");
    assert_eq!(models[0].id, "llama3.2:latest");
    assert_eq!(server.requests()[0].path, "/api/tags");
}

// ---------------------------------------------------------------------------------------------
// Error mapping

#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    BadCredentials,
    ModelNotFound,
    RateLimited(Option<u64>),
    ContextTooLong,
    Upstream(u16),
    Malformed,
    Timeout,
}

fn classify(e: &LlmError) -> Expect {
    match e {
        LlmError::BadCredentials(_) => Expect::BadCredentials,
        LlmError::ModelNotFound(_) => Expect::ModelNotFound,
        LlmError::RateLimited { retry_after } => Expect::RateLimited(retry_after.map(|d| d.as_millis() as u64)),
        LlmError::ContextTooLong(_) => Expect::ContextTooLong,
        LlmError::Upstream { status, .. } => Expect::Upstream(*status),
        LlmError::MalformedResponse(_) => Expect::Malformed,
        LlmError::Timeout { .. } => Expect::Timeout,
        other => panic!("unexpected error {other:?}"),
    }
}

#[tokio::test]
async fn api_errors_map_to_typed_errors_for_every_provider() {
    let server = FakeServer::start().await;
    let openai = |msg: &str, kind: &str, code: &str| json!({"error": {"message": msg, "type": kind, "param": null, "code": code}});
    let anthropic = |kind: &str, msg: &str| json!({"type": "error", "error": {"type": kind, "message": msg}});
    let ollama = |msg: &str| json!({"error": msg});
    let cases: Vec<(&str, &str, Reply, Expect)> = vec![
        ("openai-compatible", "/v1/chat/completions", Reply::json(401, openai("Incorrect API key provided", "invalid_request_error", "invalid_api_key")), Expect::BadCredentials),
        ("openai-compatible", "/v1/chat/completions", Reply::json(404, openai("The model `nope` does not exist", "invalid_request_error", "model_not_found")), Expect::ModelNotFound),
        ("openai-compatible", "/v1/chat/completions", Reply::json(429, openai("Rate limit reached", "requests", "rate_limit_exceeded")).with_header("retry-after", "7"), Expect::RateLimited(Some(7000))),
        ("openai-compatible", "/v1/chat/completions", Reply::json(400, openai("This model's maximum context length is 8192 tokens", "invalid_request_error", "context_length_exceeded")), Expect::ContextTooLong),
        ("openai-compatible", "/v1/chat/completions", Reply::json(500, openai("The server had an error", "server_error", "")), Expect::Upstream(500)),
        ("openai-compatible", "/v1/chat/completions", Reply::body(200, "application/json", "{\"choices\": [ oops"), Expect::Malformed),
        ("openai-compatible", "/v1/chat/completions", Reply::body(200, "text/html", "<html>captive portal</html>"), Expect::Malformed),
        ("anthropic", "/v1/messages", Reply::json(401, anthropic("authentication_error", "invalid x-api-key")), Expect::BadCredentials),
        ("anthropic", "/v1/messages", Reply::json(403, anthropic("permission_error", "not allowed")), Expect::BadCredentials),
        ("anthropic", "/v1/messages", Reply::json(404, anthropic("not_found_error", "model: claude-nope")), Expect::ModelNotFound),
        ("anthropic", "/v1/messages", Reply::json(429, anthropic("rate_limit_error", "slow down")).with_header("retry-after", "12"), Expect::RateLimited(Some(12000))),
        ("anthropic", "/v1/messages", Reply::json(400, anthropic("invalid_request_error", "prompt is too long: 210000 tokens > 200000 maximum")), Expect::ContextTooLong),
        ("anthropic", "/v1/messages", Reply::json(413, anthropic("request_too_large", "Request exceeds the maximum allowed number of bytes")), Expect::ContextTooLong),
        ("anthropic", "/v1/messages", Reply::json(529, anthropic("overloaded_error", "Overloaded")), Expect::Upstream(529)),
        ("ollama", "/api/chat", Reply::json(404, ollama("model \"llama9\" not found, try pulling it first")), Expect::ModelNotFound),
        ("ollama", "/api/chat", Reply::json(500, ollama("llama runner process has terminated")), Expect::Upstream(500)),
        ("ollama", "/api/chat", Reply::json(400, ollama("input length exceeds the context length")), Expect::ContextTooLong),
        ("ollama", "/api/chat", Reply::json(200, json!({"model": "m", "message": 7, "done": true})), Expect::Malformed),
    ];
    for (provider, path, reply, expected) in cases {
        server.reset();
        server.always(path, reply.clone());
        let base = if provider == "openai-compatible" { server.url("/v1") } else { server.url("") };
        let client = client_for(provider, base).await;
        let err = client.complete(user_prompt("q")).await.expect_err("must fail");
        assert_eq!(classify(&err), expected, "{provider} answering {} {:?}: got {err}", reply.status, String::from_utf8_lossy(&reply.chunks[0].1));
        // The same answer to a streaming request maps the same way.
        let (_, _, streamed) = drain(&client, user_prompt("q")).await;
        let err = streamed.expect_err("must fail when streaming too");
        assert_eq!(classify(&err), expected, "{provider} streaming, answering {}: got {err}", reply.status);
        assert_no_key(&err.to_string());
    }
}

#[tokio::test]
async fn errors_reported_inside_a_stream_are_typed() {
    let server = FakeServer::start().await;
    let client = client_for("anthropic", server.url("")).await;
    let stream = format!(
        "{}event: error\ndata: {}\n\n",
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"model\":\"m\",\"usage\":{\"input_tokens\":1}}}\n\n",
        json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
    );
    server.always("/v1/messages", Reply::sse(&stream));
    let (_, _, done) = drain(&client, user_prompt("q")).await;
    assert!(matches!(done, Err(LlmError::Upstream { status: 529, .. })), "{done:?}");
}

// ---------------------------------------------------------------------------------------------
// Retries, timeouts, size caps

#[tokio::test]
async fn rate_limits_and_5xx_are_retried_with_backoff_honouring_retry_after() {
    let server = FakeServer::start().await;
    server
        .reply("/v1/chat/completions", Reply::json(429, json!({"error": {"message": "slow down"}})).with_header("retry-after-ms", "300"))
        .reply("/v1/chat/completions", Reply::json(503, json!({"error": {"message": "busy"}})).with_header("retry-after", "0"))
        .reply("/v1/chat/completions", Reply::json(200, openai_answer("third time lucky")));
    let mut s = spec("openai-compatible", server.url("/v1"));
    s.max_retries = Some(3);
    let client = client(s.resolve().expect("settings")).await;
    let started = Instant::now();
    let c = client.complete(user_prompt("q")).await.expect("completion after retries");
    assert_eq!(c.text, "third time lucky");
    assert_eq!(server.requests().len(), 3);
    assert!(started.elapsed() >= Duration::from_millis(300), "the server's retry-after-ms was not honoured: {:?}", started.elapsed());
    // Every retry carried the same request.
    let bodies: Vec<_> = server.requests().iter().map(|r| r.json()).collect();
    assert!(bodies.windows(2).all(|w| w[0] == w[1]));
}

#[tokio::test]
async fn streaming_requests_are_retried_before_the_first_byte_too() {
    let server = FakeServer::start().await;
    server
        .reply("/v1/chat/completions", Reply::json(502, json!({"error": {"message": "bad gateway"}})))
        .reply("/v1/chat/completions", Reply::sse(&openai_stream(&["ok"])));
    let mut s = spec("openai-compatible", server.url("/v1"));
    s.max_retries = Some(1);
    let client = client(s.resolve().expect("settings")).await;
    let (deltas, _, done) = drain(&client, user_prompt("q")).await;
    assert_eq!(deltas, ["ok"]);
    assert!(done.is_ok());
    assert_eq!(server.requests().len(), 2);
}

#[tokio::test]
async fn retries_stop_at_the_configured_limit() {
    let server = FakeServer::start().await;
    server.always("/v1/chat/completions", Reply::json(503, json!({"error": {"message": "overloaded"}})));
    let mut s = spec("openai-compatible", server.url("/v1"));
    s.max_retries = Some(2);
    let client = client(s.resolve().expect("settings")).await;
    let err = client.complete(user_prompt("q")).await.expect_err("fails");
    assert!(matches!(&err, LlmError::Upstream { status: 503, message } if message.contains("overloaded")), "{err:?}");
    assert_eq!(server.requests().len(), 3, "one try and two retries");
}

#[tokio::test]
async fn a_retry_after_longer_than_the_cap_is_passed_on_not_waited_for() {
    let server = FakeServer::start().await;
    server.always("/v1/chat/completions", Reply::json(429, json!({"error": {"message": "quota"}})).with_header("retry-after", "3600"));
    let mut s = spec("openai-compatible", server.url("/v1"));
    s.max_retries = Some(5);
    let client = client(s.resolve().expect("settings")).await;
    let started = Instant::now();
    let err = client.complete(user_prompt("q")).await.expect_err("fails");
    assert!(matches!(err, LlmError::RateLimited { retry_after: Some(d) } if d == Duration::from_secs(3600)), "{err:?}");
    assert_eq!(server.requests().len(), 1);
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn a_server_that_stalls_before_answering_times_out() {
    let server = FakeServer::start().await;
    server.always("/v1/chat/completions", Reply::json(200, openai_answer("late")).stall_head(Duration::from_secs(30)));
    let mut s = spec("openai-compatible", server.url("/v1"));
    s.first_byte_timeout = Some(Duration::from_millis(300));
    let client = client(s.resolve().expect("settings")).await;
    let started = Instant::now();
    let err = client.complete(user_prompt("q")).await.expect_err("times out");
    assert!(matches!(err, LlmError::Timeout { .. }), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(3), "took {:?}", started.elapsed());
}

#[tokio::test]
async fn a_stream_that_stalls_midway_times_out_after_delivering_what_came() {
    let server = FakeServer::start().await;
    let body = openai_stream(&["one", "two", "three"]).replace("\r\n", "\n");
    // Chunks are whole events; the fourth (the first text delta's successor) never comes in time.
    let reply = Reply::sse(&body);
    let events: Vec<Vec<u8>> = body.split_inclusive("\n\n").map(|e| e.as_bytes().to_vec()).collect();
    let reply = Reply { chunks: events.into_iter().map(|e| (Duration::ZERO, e)).collect(), ..reply }.stall_after(4, Duration::from_secs(30));
    server.always("/v1/chat/completions", reply);
    let mut s = spec("openai-compatible", server.url("/v1"));
    s.idle_timeout = Some(Duration::from_millis(300));
    let client = client(s.resolve().expect("settings")).await;
    let started = Instant::now();
    let (deltas, _, done) = drain(&client, user_prompt("q")).await;
    assert_eq!(deltas, ["one"], "what arrived before the stall was streamed");
    assert!(matches!(done, Err(LlmError::Timeout { .. })), "{done:?}");
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn a_response_over_the_size_cap_is_cut_cleanly() {
    let server = FakeServer::start().await;
    let huge = "x".repeat(64 << 10);
    server.reply("/v1/chat/completions", Reply::json(200, openai_answer(&huge)).split(&[4096], Duration::ZERO));
    let pieces: Vec<String> = (0..200).map(|i| format!("piece{i:03} ")).collect();
    let refs: Vec<&str> = pieces.iter().map(String::as_str).collect();
    server.reply("/v1/chat/completions", Reply::sse(&openai_stream(&refs)).split(&[512], Duration::ZERO));
    server.reply("/v1/chat/completions", Reply::json(200, openai_answer("small")));
    let mut s = spec("openai-compatible", server.url("/v1"));
    s.max_response_bytes = Some(16 << 10);
    let client = client(s.resolve().expect("settings")).await;

    let err = client.complete(user_prompt("q")).await.expect_err("too large");
    assert!(matches!(&err, LlmError::MalformedResponse(m) if m.contains("16384")), "{err:?}");

    let (deltas, _, done) = drain(&client, user_prompt("q")).await;
    assert!(matches!(&done, Err(LlmError::MalformedResponse(m)) if m.contains("16384")), "{done:?}");
    assert!(!deltas.is_empty() && deltas.len() < 200, "deltas before the cut are streamed, the rest is not ({} deltas)", deltas.len());
    assert!(deltas.iter().enumerate().all(|(i, d)| *d == pieces[i]), "the deltas that came are whole and in order");

    // The client is still fine afterwards.
    assert_eq!(client.complete(user_prompt("q")).await.expect("small answer").text, "small");
}

#[tokio::test]
async fn dropping_a_stream_stops_the_generation() {
    let server = FakeServer::start().await;
    let pieces: Vec<String> = (0..100).map(|i| format!("t{i} ")).collect();
    let refs: Vec<&str> = pieces.iter().map(String::as_str).collect();
    let body = openai_stream(&refs).replace("\r\n", "\n");
    let reply = Reply::sse(&body);
    let events: Vec<Vec<u8>> = body.split_inclusive("\n\n").map(|e| e.as_bytes().to_vec()).collect();
    server.always("/v1/chat/completions", Reply { chunks: events.into_iter().map(|e| (Duration::from_millis(20), e)).collect(), ..reply });
    let client = client_for("openai-compatible", server.url("/v1")).await;

    let mut stream = client.stream(user_prompt("q"));
    let mut got = 0;
    while let Some(ev) = stream.next().await {
        if matches!(ev, CompletionEvent::TextDelta(_)) {
            got += 1;
            if got == 3 {
                break;
            }
        }
    }
    drop(stream);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let sent = server.chunks_sent();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(server.chunks_sent(), sent, "the server kept streaming to nobody");
    assert!(sent < 50, "{sent} chunks were sent");
}

#[tokio::test]
async fn the_explainer_backend_completes_through_the_provider() {
    let server = FakeServer::start().await;
    server.always("/v1/chat/completions", Reply::json(200, openai_answer("Sales rose 12%.")));
    let backend = llm_backend(client_for("openai-compatible", server.url("/v1")).await);
    let c = backend(user_prompt("explain")).await.expect("completion");
    assert_eq!(c.text, "Sales rose 12%.");
    server.reset();
    server.always("/v1/chat/completions", Reply::json(401, json!({"error": {"message": "bad key"}})));
    let err = backend(user_prompt("explain")).await.expect_err("fails");
    assert!(matches!(err, quarry::plugins::bindings::types::ProviderError::BadCredentials(_)));
}

#[tokio::test]
async fn an_unknown_provider_plugin_is_a_clear_error() {
    let client = client_for("no-such-provider", "http://127.0.0.1:1".into()).await;
    let err = client.complete(user_prompt("q")).await.expect_err("fails");
    let LlmError::UnknownProvider { name, available } = &err else { panic!("{err:?}") };
    assert_eq!(name, "no-such-provider");
    for p in ["anthropic", "ollama", "openai"] {
        assert!(available.iter().any(|a| a == p), "{available:?}");
    }
}

#[tokio::test]
async fn an_unreachable_server_is_an_upstream_error_naming_no_key() {
    // Bind then drop to get a port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let client = client_for("openai-compatible", format!("http://127.0.0.1:{port}/v1")).await;
    let err = client.complete(user_prompt("q")).await.expect_err("fails");
    assert!(matches!(&err, LlmError::Upstream { status: 0, .. }), "{err:?}");
    assert_no_key(&err.to_string());
}

// ---------------------------------------------------------------------------------------------
// The allow-list and secrets, through a plugin that tries what it must not

async fn rogue(server: &FakeServer, what: &str) -> Result<String, LlmError> {
    rogue_at(server.url(""), what).await
}

async fn rogue_at(base: String, what: &str) -> Result<String, LlmError> {
    let client = client_for("rogue", base).await;
    client.complete(user_prompt(what)).await.map(|c| c.text)
}

#[tokio::test]
async fn requests_outside_the_allow_list_are_refused_and_never_sent() {
    support::capture_logs();
    let server = FakeServer::start().await;
    server.always("/steal", Reply::json(200, json!({"stolen": true})));
    for (what, reason) in [
        ("forbidden-endpoint", "is not allowed"),
        ("authority-path", "may not name a host"),
        ("absolute-path", "must start with `/`"),
        ("dotdot-path", "may not leave"),
        ("literal-auth", "may only carry a {secret:NAME} placeholder"),
        ("secret-elsewhere", "may only be sent to endpoint `default`"),
        ("unknown-secret", "no secret `db_password`"),
    ] {
        let err = rogue(&server, what).await.expect_err(what);
        assert!(matches!(&err, LlmError::Denied(m) if m.contains(reason)), "{what}: {err:?}");
    }
    assert!(server.requests().is_empty(), "a refused request reached the server: {:?}", server.requests());
    assert!(support::logs().contains("outbound request refused"), "refusals are logged");
    // A plain request to the default endpoint goes through.
    server.always("/fine", Reply::json(200, json!({"fine": true})));
    assert_eq!(rogue(&server, "get:/fine").await.expect("allowed"), "200 {\"fine\":true}");
}

#[tokio::test]
async fn loopback_is_reachable_only_when_the_base_url_is_local() {
    let server = FakeServer::start().await;
    // Base URL on localhost: the manifest's extra endpoint on 127.0.0.1 is a different host, and
    // a loopback address, so it is refused before any connection is tried.
    let base = format!("http://localhost:{}", server.addr.port());
    let err = rogue_at(base.clone(), "extra-endpoint").await.expect_err("refused");
    assert!(matches!(&err, LlmError::Denied(m) if m.contains("local")), "{err:?}");
    // The operator's own local base URL is reachable, by name.
    server.always("/fine", Reply::json(200, json!({"fine": true})));
    assert_eq!(rogue_at(base, "get:/fine").await.expect("allowed"), "200 {\"fine\":true}");
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let server = FakeServer::start().await;
    let elsewhere = FakeServer::start().await;
    elsewhere.always("/landing", Reply::json(200, json!({"followed": true})));
    server.always("/moved", Reply::json(302, json!({})).with_header("location", &elsewhere.url("/landing")));
    let text = rogue(&server, "get:/moved").await.expect("the 302 itself is the answer");
    assert!(text.starts_with("302"), "{text}");
    assert!(elsewhere.requests().is_empty(), "the redirect was followed");
}

#[tokio::test]
async fn the_api_key_never_appears_in_logs_or_errors() {
    support::capture_logs();
    let server = FakeServer::start().await;
    // A server that echoes the request's headers, key included, in its error body; the rogue
    // plugin logs that body and returns all of it in its error.
    server.always("/echo", Reply::json(500, json!({})).echo_headers());
    let err = rogue(&server, "echo-error").await.expect_err("fails");
    let text = err.to_string();
    assert!(text.contains("[REDACTED]"), "the echoed key should show as redacted: {text}");
    assert_no_key(&text);
    assert_no_key(&format!("{err:?}"));
    assert!(server.requests()[0].header("authorization") == Some(format!("Bearer {KEY}").as_str()), "the key did reach the bound endpoint");

    // The same through the real providers: an OpenAI-style 401 that quotes the key.
    server.always("/v1/chat/completions", Reply::json(401, json!({"error": {"message": format!("Incorrect API key provided: {KEY}.")}})));
    let err = client_for("openai-compatible", server.url("/v1")).await.complete(user_prompt("q")).await.expect_err("fails");
    assert!(matches!(&err, LlmError::BadCredentials(m) if m.contains("[REDACTED]")), "{err:?}");
    assert_no_key(&format!("{err} {err:?}"));

    // Settings and clients print without it too.
    let settings = spec("openai-compatible", server.url("/v1")).resolve().expect("settings");
    assert_no_key(&format!("{settings:?}"));
    assert_no_key(&format!("{:?}", client_for("openai-compatible", server.url("/v1")).await));

    let logs = support::logs();
    assert!(logs.contains("upstream said"), "the plugin's log line was captured");
    assert_no_key(&logs);
}
