//! A scripted, OpenAI-compatible fake LLM running inside the test process.
//!
//! [`FakeLlm`] listens on 127.0.0.1 (a free port) and serves `POST /v1/chat/completions` and
//! `GET /v1/models` the way the OpenAI API does: a `chat.completion` JSON object, or, when the
//! request says `"stream": true`, server-sent `chat.completion.chunk` events ending with
//! `data: [DONE]` (plus a usage chunk when `stream_options.include_usage` is set).
//!
//! A scripted fake answers from a queue, in order; once the queue is empty it answers 500, so an
//! extra call the test did not expect shows up as a failure rather than as a silently reused
//! answer. An instant fake (for the benchmark, and for clients that ask many times) always gives
//! the same answer. Every request is recorded ([`LlmCall`]) with the time the fake spent on it.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use serde_json::{Value, json};

/// The answer the engine's prompt asks for: `{"description": …, "sql": …}`.
pub fn json_answer(description: &str, sql: &str) -> String {
    json!({"description": description, "sql": sql}).to_string()
}

/// An answer in the other common shape: a sentence, then the query in a fenced ```sql block.
pub fn fenced_answer(description: &str, sql: &str) -> String {
    format!("{description}:\n\n```sql\n{sql}\n```\n")
}

/// One scripted response.
#[derive(Debug, Clone)]
enum Scripted {
    /// A normal answer with this text.
    Answer(String),
    /// An HTTP error with this status and JSON body.
    Fail(u16, Value),
}

#[derive(Debug, Default)]
struct Script {
    queue: VecDeque<Scripted>,
    /// Answer every request with this text (the queue is not used).
    instant: Option<String>,
    /// Wait this long before answering.
    delay: Duration,
    calls: Vec<LlmCall>,
}

/// One request the fake received.
#[derive(Debug, Clone)]
pub struct LlmCall {
    /// The request path (`/v1/chat/completions`, `/v1/models`).
    pub path: String,
    /// The `authorization` header, if any.
    pub authorization: Option<String>,
    /// The JSON body (`Null` for a GET or a body that is not JSON).
    pub body: Value,
    /// Time the fake spent on the request, from the handler's start to a ready response
    /// (including any configured delay): the "LLM time" of the benchmark.
    pub handling: Duration,
}

impl LlmCall {
    /// The `(role, content)` of each message in a chat request, in order.
    pub fn messages(&self) -> Vec<(String, String)> {
        self.body["messages"]
            .as_array()
            .map(|ms| {
                ms.iter()
                    .map(|m| {
                        (m["role"].as_str().unwrap_or("").to_string(), m["content"].as_str().unwrap_or("").to_string())
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Every message's content, joined: what a test searches for text the engine sent.
    pub fn transcript(&self) -> String {
        self.messages().into_iter().map(|(role, content)| format!("[{role}]\n{content}")).collect::<Vec<_>>().join("\n")
    }

    /// The content of the last user message.
    pub fn last_user_message(&self) -> String {
        self.messages().into_iter().rev().find(|(role, _)| role == "user").map(|(_, c)| c).unwrap_or_default()
    }

    /// Whether the engine asked for a streamed answer.
    pub fn streamed(&self) -> bool {
        self.body["stream"].as_bool().unwrap_or(false)
    }
}

/// The fake LLM server; stops when dropped.
pub struct FakeLlm {
    addr: SocketAddr,
    script: Arc<Mutex<Script>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeLlm {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeLlm {
    /// A scripted fake with an empty queue: queue answers with [`FakeLlm::answer`] and friends.
    pub async fn start() -> Self {
        Self::serve(Script::default()).await
    }

    /// A fake that answers every request with `answer` at once.
    pub async fn instant(answer: impl Into<String>) -> Self {
        Self::serve(Script { instant: Some(answer.into()), ..Script::default() }).await
    }

    async fn serve(script: Script) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind a local port");
        let addr = listener.local_addr().expect("local address");
        let script = Arc::new(Mutex::new(script));
        let app = Router::new()
            .route("/v1/chat/completions", post(chat_completions))
            .route("/v1/models", get(models))
            .fallback(not_found)
            .with_state(script.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, script, task }
    }

    /// The OpenAI base URL to give the engine: `http://127.0.0.1:PORT/v1`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Queue an answer with this exact text.
    pub fn answer(&self, text: impl Into<String>) -> &Self {
        self.lock().queue.push_back(Scripted::Answer(text.into()));
        self
    }

    /// Queue the JSON answer the engine's prompt asks for ([`json_answer`]).
    pub fn answer_sql(&self, description: &str, sql: &str) -> &Self {
        self.answer(json_answer(description, sql))
    }

    /// Queue an HTTP error: `status` with `body` as JSON.
    pub fn fail(&self, status: u16, body: Value) -> &Self {
        self.lock().queue.push_back(Scripted::Fail(status, body));
        self
    }

    /// Wait `delay` before every answer.
    pub fn set_delay(&self, delay: Duration) {
        self.lock().delay = delay;
    }

    /// Scripted answers not used yet.
    pub fn pending(&self) -> usize {
        self.lock().queue.len()
    }

    /// Chat completion requests received so far, in order.
    pub fn calls(&self) -> Vec<LlmCall> {
        self.lock().calls.iter().filter(|c| c.path.ends_with("/chat/completions")).cloned().collect()
    }

    /// Forget the recorded requests (the script is kept).
    pub fn clear_calls(&self) {
        self.lock().calls.clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Script> {
        self.script.lock().unwrap_or_else(|e| e.into_inner())
    }
}

type Shared = Arc<Mutex<Script>>;

async fn chat_completions(State(script): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let started = Instant::now();
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let (reply, delay, call_number) = {
        let mut s = script.lock().unwrap_or_else(|e| e.into_inner());
        let reply = match &s.instant {
            Some(text) => Some(Scripted::Answer(text.clone())),
            None => s.queue.pop_front(),
        };
        let n = s.calls.iter().filter(|c| c.path.ends_with("/chat/completions")).count() + 1;
        (reply, s.delay, n)
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let model = body["model"].as_str().unwrap_or("fake").to_string();
    let response = match reply {
        None => error_response(
            500,
            json!({"error": {"message": format!("fake LLM: no scripted answer left for call #{call_number}"), "type": "server_error"}}),
        ),
        Some(Scripted::Fail(status, error)) => error_response(status, error),
        Some(Scripted::Answer(text)) if body["stream"].as_bool() == Some(true) => {
            let include_usage = body["stream_options"]["include_usage"].as_bool() == Some(true);
            streamed(&model, &text, include_usage)
        }
        Some(Scripted::Answer(text)) => whole(&model, &text),
    };
    record(&script, "/v1/chat/completions", &headers, body, started.elapsed());
    response
}

async fn models(State(script): State<Shared>, headers: HeaderMap) -> Response {
    record(&script, "/v1/models", &headers, Value::Null, Duration::ZERO);
    let list = json!({"object": "list", "data": [{"id": crate::server::LLM_MODEL, "object": "model", "created": 0, "owned_by": "e2e"}]});
    json_response(200, &list)
}

async fn not_found() -> Response {
    error_response(404, json!({"error": {"message": "fake LLM: no such route", "type": "invalid_request_error"}}))
}

fn record(script: &Shared, path: &str, headers: &HeaderMap, body: Value, handling: Duration) {
    let authorization = headers.get("authorization").and_then(|v| v.to_str().ok()).map(str::to_string);
    let call = LlmCall { path: path.to_string(), authorization, body, handling };
    script.lock().unwrap_or_else(|e| e.into_inner()).calls.push(call);
}

const USAGE: (u32, u32) = (42, 7);

/// A `chat.completion` object.
fn whole(model: &str, text: &str) -> Response {
    let answer = json!({
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": USAGE.0, "completion_tokens": USAGE.1, "total_tokens": USAGE.0 + USAGE.1},
    });
    json_response(200, &answer)
}

/// The same answer as server-sent `chat.completion.chunk` events, a few words per chunk, each
/// event its own body frame.
fn streamed(model: &str, text: &str, include_usage: bool) -> Response {
    let chunk = |delta: Value, finish: Value| {
        json!({
            "id": "chatcmpl-fake",
            "object": "chat.completion.chunk",
            "created": 1_700_000_000,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        })
    };
    let mut events = vec![chunk(json!({"role": "assistant", "content": ""}), Value::Null)];
    for piece in pieces(text, 24) {
        events.push(chunk(json!({"content": piece}), Value::Null));
    }
    events.push(chunk(json!({}), json!("stop")));
    if include_usage {
        events.push(json!({
            "id": "chatcmpl-fake",
            "object": "chat.completion.chunk",
            "created": 1_700_000_000,
            "model": model,
            "choices": [],
            "usage": {"prompt_tokens": USAGE.0, "completion_tokens": USAGE.1, "total_tokens": USAGE.0 + USAGE.1},
        }));
    }
    let mut frames: Vec<Bytes> = events.iter().map(|e| Bytes::from(format!("data: {e}\n\n"))).collect();
    frames.push(Bytes::from_static(b"data: [DONE]\n\n"));
    let stream = futures::stream::iter(frames.into_iter().map(Ok::<_, std::io::Error>));
    Response::builder()
        .status(200)
        .header("content-type", "text/event-stream")
        .header("cache-control", "no-cache")
        .body(Body::from_stream(stream))
        .expect("a valid response")
}

/// `text` cut into pieces of about `size` bytes, on character boundaries.
fn pieces(text: &str, size: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for c in text.chars() {
        current.push(c);
        if current.len() >= size {
            out.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

fn error_response(status: u16, body: Value) -> Response {
    json_response(status, &body)
}

fn json_response(status: u16, body: &Value) -> Response {
    Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .expect("a valid response")
}
