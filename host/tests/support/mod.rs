//! Shared helpers for the host's integration tests, written once.
//!
//! [`FakeServer`] is a local HTTP server (axum on 127.0.0.1, a free port) that answers with
//! scripted [`Reply`]s per path: any status and headers, a body cut into chunks at chosen byte
//! boundaries with delays between them, a stall before the head. It records every request it gets
//! so a test can assert the method, path, headers and JSON body a plugin sent.
//!
//! [`logs`] captures everything the process logs through `tracing`, so a test can prove a secret
//! never appears there.

#![allow(dead_code)] // each test binary uses a different subset

pub mod product;

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use futures::StreamExt;

/// One scripted answer.
#[derive(Debug, Clone)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// Response headers.
    pub headers: Vec<(String, String)>,
    /// Wait this long before sending the head (a stalled server).
    pub head_delay: Duration,
    /// The body, as chunks each sent after its delay.
    pub chunks: Vec<(Duration, Vec<u8>)>,
    /// Replace the body with the request's headers as JSON (to test that echoed secrets are scrubbed).
    pub echo_request_headers: bool,
}

impl Reply {
    /// A body with a content type, in one chunk.
    pub fn body(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        Self {
            status,
            headers: vec![("content-type".into(), content_type.into())],
            head_delay: Duration::ZERO,
            chunks: vec![(Duration::ZERO, body.into())],
            echo_request_headers: false,
        }
    }

    /// A JSON body.
    pub fn json(status: u16, body: serde_json::Value) -> Self {
        Self::body(status, "application/json", body.to_string())
    }

    /// A `text/event-stream` body.
    pub fn sse(body: &str) -> Self {
        Self::body(200, "text/event-stream", body).with_header("cache-control", "no-cache")
    }

    /// A newline-delimited JSON body (Ollama streaming).
    pub fn ndjson(body: &str) -> Self {
        Self::body(200, "application/x-ndjson", body)
    }

    /// Add a header.
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Wait before sending the head.
    pub fn stall_head(mut self, d: Duration) -> Self {
        self.head_delay = d;
        self
    }

    /// Re-cut the body into chunks of the given sizes, used in turn (cycling), each sent `gap`
    /// after the previous one: the client sees the body split at those byte boundaries.
    pub fn split(mut self, sizes: &[usize], gap: Duration) -> Self {
        let body: Vec<u8> = self.chunks.iter().flat_map(|(_, b)| b.clone()).collect();
        let mut chunks = Vec::new();
        let mut at = 0;
        let mut i = 0;
        while at < body.len() {
            let n = sizes[i % sizes.len()].max(1).min(body.len() - at);
            chunks.push((gap, body[at..at + n].to_vec()));
            at += n;
            i += 1;
        }
        self.chunks = chunks;
        self
    }

    /// After the first `n` chunks, wait `d` before the next (a stream that stalls mid-way).
    pub fn stall_after(mut self, n: usize, d: Duration) -> Self {
        if let Some(c) = self.chunks.get_mut(n) {
            c.0 = d;
        }
        self
    }

    /// Send the request's headers back as the JSON body.
    pub fn echo_headers(mut self) -> Self {
        self.echo_request_headers = true;
        self
    }
}

/// An OpenAI Chat Completions stream (`text/event-stream`) that says `text` in a few chunks and
/// reports `usage` (prompt, completion tokens) at the end: a scripted model answer.
pub fn openai_chat_sse(text: &str, usage: (u32, u32)) -> Reply {
    let chunk = |delta: serde_json::Value, finish: serde_json::Value| {
        serde_json::json!({"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "test-model",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
    };
    let mut body = format!(
        "data: {}\n\n",
        chunk(serde_json::json!({"role": "assistant", "content": ""}), serde_json::Value::Null)
    );
    let chars: Vec<char> = text.chars().collect();
    for piece in chars.chunks(16) {
        let piece: String = piece.iter().collect();
        body.push_str(&format!("data: {}\n\n", chunk(serde_json::json!({"content": piece}), serde_json::Value::Null)));
    }
    body.push_str(&format!("data: {}\n\n", chunk(serde_json::json!({}), serde_json::json!("stop"))));
    let usage = serde_json::json!({"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "test-model", "choices": [],
        "usage": {"prompt_tokens": usage.0, "completion_tokens": usage.1, "total_tokens": usage.0 + usage.1}});
    body.push_str(&format!("data: {usage}\n\ndata: [DONE]\n\n"));
    Reply::sse(&body)
}

/// A request the server received.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// Method.
    pub method: Method,
    /// Path and query.
    pub path: String,
    /// Headers, names lower-case (the last value of each).
    pub headers: HashMap<String, String>,
    /// The body.
    pub body: Vec<u8>,
}

impl Recorded {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    /// The body as JSON (`Null` if it is not).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

#[derive(Default)]
struct Script {
    queued: HashMap<String, VecDeque<Reply>>,
    always: HashMap<String, Reply>,
    requests: Vec<Recorded>,
}

/// A scripted local HTTP server; stops when dropped.
pub struct FakeServer {
    /// Where it listens.
    pub addr: SocketAddr,
    script: Arc<Mutex<Script>>,
    chunks_sent: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[derive(Clone)]
struct AppState {
    script: Arc<Mutex<Script>>,
    chunks_sent: Arc<AtomicUsize>,
}

impl FakeServer {
    /// Start a server on a free local port.
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind a local port");
        let addr = listener.local_addr().expect("local address");
        let script = Arc::new(Mutex::new(Script::default()));
        let chunks_sent = Arc::new(AtomicUsize::new(0));
        let app = Router::new()
            .fallback(handle)
            .with_state(AppState { script: script.clone(), chunks_sent: chunks_sent.clone() });
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, script, chunks_sent, task }
    }

    /// `http://127.0.0.1:PORT` followed by `suffix`.
    pub fn url(&self, suffix: &str) -> String {
        format!("http://{}{suffix}", self.addr)
    }

    /// Answer the next request to `path` (without query) with `reply`; queued replies are used
    /// in order, before any [`FakeServer::always`] reply.
    pub fn reply(&self, path: &str, reply: Reply) -> &Self {
        self.lock().queued.entry(path.to_string()).or_default().push_back(reply);
        self
    }

    /// Answer every request to `path` (once the queue is empty) with `reply`.
    pub fn always(&self, path: &str, reply: Reply) -> &Self {
        self.lock().always.insert(path.to_string(), reply);
        self
    }

    /// Forget scripted replies and recorded requests.
    pub fn reset(&self) {
        *self.lock() = Script::default();
    }

    /// The requests received so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.lock().requests.clone()
    }

    /// Body chunks sent so far (all responses).
    pub fn chunks_sent(&self) -> usize {
        self.chunks_sent.load(Ordering::SeqCst)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Script> {
        self.script.lock().unwrap_or_else(|e| e.into_inner())
    }
}

async fn handle(State(state): State<AppState>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let recorded = Recorded {
        method,
        path: uri.path_and_query().map(|p| p.to_string()).unwrap_or_default(),
        headers: headers
            .iter()
            .map(|(k, v)| (k.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
            .collect(),
        body: body.to_vec(),
    };
    let reply = {
        let mut script = state.script.lock().unwrap_or_else(|e| e.into_inner());
        script.requests.push(recorded.clone());
        let path = uri.path().to_string();
        script.queued.get_mut(&path).and_then(VecDeque::pop_front).or_else(|| script.always.get(&path).cloned())
    };
    let Some(mut reply) = reply else {
        return Response::builder()
            .status(StatusCode::NOT_FOUND)
            .body(Body::from(format!("{{\"error\":\"no scripted reply for {}\"}}", uri.path())))
            .expect("response");
    };
    if reply.echo_request_headers {
        let echoed =
            serde_json::json!({"error": {"message": format!("rejected request with headers {:?}", recorded.headers)}});
        reply.chunks = vec![(Duration::ZERO, echoed.to_string().into_bytes())];
    }
    if !reply.head_delay.is_zero() {
        tokio::time::sleep(reply.head_delay).await;
    }
    let counter = state.chunks_sent.clone();
    let stream = futures::stream::iter(reply.chunks).then(move |(delay, bytes)| {
        let counter = counter.clone();
        async move {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            counter.fetch_add(1, Ordering::SeqCst);
            Ok::<_, std::io::Error>(Bytes::from(bytes))
        }
    });
    let mut builder = Response::builder().status(reply.status);
    for (k, v) in &reply.headers {
        builder = builder.header(k, v);
    }
    builder.body(Body::from_stream(stream)).expect("response")
}

/// Everything logged through `tracing` by this test binary so far (all levels, all targets).
/// The first call installs the capturing subscriber.
pub fn logs() -> String {
    let buf = log_buffer();
    String::from_utf8_lossy(&buf.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
}

/// Install the capturing subscriber (idempotent); call at the start of a test that inspects logs.
pub fn capture_logs() {
    let _ = log_buffer();
}

fn log_buffer() -> Arc<Mutex<Vec<u8>>> {
    static BUF: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    BUF.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let writer = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || Capture(writer.clone()))
            .finish();
        let _ = tracing::subscriber::set_global_default(subscriber);
        buf
    })
    .clone()
}

struct Capture(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
