//! Question embeddings end to end over real HTTP: the product server, a SQLite database, and a
//! local OpenAI-compatible server that answers `/v1/chat/completions` with scripted SQL and
//! `/v1/embeddings` with deterministic concept vectors computed from the request's input (one
//! dimension per concept, so "clients" and "customers" embed alike, and so do "Berlin" and
//! "Paris").
//!
//! With a provider that offers embeddings, a paraphrase in other words is served from the cache,
//! while "revenue in Paris" is not served the answer to "revenue in Berlin"; the question is
//! embedded once per ask, and the stored entries and 👍 examples carry their vectors. A provider
//! without embeddings keeps the lexical behaviour, and an embeddings endpoint answering 500 still
//! answers every question (lexically), logging the failure once without the key and leaving
//! the provider alone for a while.

mod support;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};
use sqlx::{Connection, Executor};
use support::product::ProductServer;
use support::{capture_logs, logs, openai_chat_sse};

const API_KEY: &str = "sk-test-embeddings-key-3e9a51c0";
const EMBEDDING_MODEL: &str = "concepts-v1";

// ---------------------------------------------------------------------------------------------
// The fake provider

/// Words of one meaning share a dimension; the rest are hashed into spare ones.
const CONCEPTS: &[&[&str]] = &[
    &["customer", "customers", "client", "clients", "buyer", "buyers"],
    &["count", "many", "number"],
    &["revenue", "sales", "income", "turnover", "total"],
    &["berlin", "paris", "london"],
];

/// Words that carry nothing.
const IGNORED: &[&str] =
    &["how", "the", "do", "we", "have", "what", "was", "in", "of", "a", "are", "there", "is", "our"];

const DIMENSIONS: usize = 12;

fn concept_vector(text: &str) -> Vec<f32> {
    let mut v = vec![0.0f32; DIMENSIONS];
    for word in text.to_lowercase().split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()) {
        if IGNORED.contains(&word) {
            continue;
        }
        let slot = CONCEPTS.iter().position(|words| words.contains(&word)).unwrap_or_else(|| {
            CONCEPTS.len() + word.bytes().map(usize::from).sum::<usize>() % (DIMENSIONS - CONCEPTS.len())
        });
        v[slot] += 1.0;
    }
    v
}

/// What the fake provider answers, and what it was asked.
#[derive(Default)]
struct Fake {
    /// The SQL every completion answers with.
    sql: Mutex<String>,
    completions: AtomicUsize,
    /// Every text it was asked to embed, in order.
    embedded: Mutex<Vec<String>>,
    /// Answer `/embeddings` with a 500.
    fail_embeddings: AtomicBool,
}

impl Fake {
    fn answer_with(&self, sql: &str) {
        *self.sql.lock().expect("sql") = sql.to_string();
    }

    fn completions(&self) -> usize {
        self.completions.load(Ordering::SeqCst)
    }

    fn embedded(&self) -> Vec<String> {
        self.embedded.lock().expect("embedded").clone()
    }
}

async fn completions(State(fake): State<Arc<Fake>>, Json(body): Json<Value>) -> Response {
    fake.completions.fetch_add(1, Ordering::SeqCst);
    let sql = fake.sql.lock().expect("sql").clone();
    let content = json!({ "description": "scripted plan", "sql": sql }).to_string();
    if body["stream"] == true {
        let reply = openai_chat_sse(&content, (100, 20));
        let sse: Vec<u8> = reply.chunks.into_iter().flat_map(|(_, bytes)| bytes).collect();
        return ([("content-type", "text/event-stream")], sse).into_response();
    }
    Json(json!({
        "id": "c1", "object": "chat.completion", "created": 1, "model": "test-model",
        "choices": [{ "index": 0, "message": { "role": "assistant", "content": content }, "finish_reason": "stop" }],
        "usage": { "prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120 }
    }))
    .into_response()
}

async fn embeddings(State(fake): State<Arc<Fake>>, Json(body): Json<Value>) -> Response {
    let texts: Vec<String> = match &body["input"] {
        Value::String(one) => vec![one.clone()],
        Value::Array(many) => many.iter().filter_map(|t| t.as_str().map(str::to_string)).collect(),
        _ => Vec::new(),
    };
    fake.embedded.lock().expect("embedded").extend(texts.iter().cloned());
    if fake.fail_embeddings.load(Ordering::SeqCst) {
        let error = json!({ "error": { "message": "embeddings are down", "type": "server_error" } });
        return (StatusCode::INTERNAL_SERVER_ERROR, Json(error)).into_response();
    }
    let data: Vec<Value> = texts
        .iter()
        .enumerate()
        .map(|(index, text)| json!({ "object": "embedding", "index": index, "embedding": concept_vector(text) }))
        .collect();
    Json(json!({ "object": "list", "data": data, "model": body["model"], "usage": { "prompt_tokens": 5, "total_tokens": 5 } }))
        .into_response()
}

/// Start the fake provider; its `/v1` base URL.
async fn start_fake(fake: Arc<Fake>) -> String {
    let app = Router::new()
        .route("/v1/chat/completions", post(completions))
        .route("/v1/embeddings", post(embeddings))
        .with_state(fake);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{address}/v1")
}

// ---------------------------------------------------------------------------------------------
// The product side

/// A SQLite database with customers and sales; its connection config.
async fn shop(dir: &tempfile::TempDir) -> Value {
    let path = dir.path().join("shop.db");
    let url = format!("sqlite://{}?mode=rwc", path.display());
    let mut conn = sqlx::SqliteConnection::connect(&url).await.expect("sqlite");
    for statement in [
        "CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT NOT NULL)",
        "INSERT INTO customers VALUES (1, 'Ann'), (2, 'Bob'), (3, 'Cid')",
        "CREATE TABLE sales (id INTEGER PRIMARY KEY, city TEXT NOT NULL, total REAL NOT NULL)",
        "INSERT INTO sales VALUES (1, 'Berlin', 10.0), (2, 'Paris', 32.0), (3, 'Berlin', 5.0)",
    ] {
        conn.execute(statement).await.expect("setup");
    }
    conn.close().await.expect("close");
    json!({ "path": path.display().to_string() })
}

async fn new_connection(server: &ProductServer, admin: &str, name: &str, config: &Value) -> String {
    let body = json!({ "name": name, "source_type": "sqlite", "config": config });
    let (status, reply) = server.post("/api/v1/connections", admin, &body).await;
    assert_eq!(status, 201, "connection: {reply}");
    reply["id"].as_str().expect("id").to_string()
}

/// Ask over the SSE stream; the `done` payload.
async fn ask(server: &ProductServer, token: &str, connection_id: &str, provider: &str, message: &str) -> Value {
    let body = json!({ "connection_id": connection_id, "provider": provider, "message": message });
    let (status, frames) = server.chat(token, &body).await;
    assert_eq!(status, 200, "chat answers 200: {frames:?}");
    let last = frames.last().cloned().unwrap_or(Value::Null);
    assert_eq!(last["type"], "done", "the stream ends with done: {last}");
    last
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paraphrases_hit_by_embeddings_names_do_not_and_failures_fall_back_to_words() {
    capture_logs();
    let fake = Arc::new(Fake::default());
    let base = start_fake(fake.clone()).await;
    let server = ProductServer::start().await;
    let admin = server.register_admin().await;
    let db_dir = tempfile::tempdir().expect("temp dir");
    let config = shop(&db_dir).await;

    // A provider without embeddings (inactive: the examples routes use the active one) and one with.
    let plain = json!({ "base_url": base, "model": "test-model", "api_key": API_KEY, "is_active": false });
    let (status, plain) = server.post("/api/v1/providers/openai-compatible", &admin, &plain).await;
    assert_eq!(status, 201, "{plain}");
    assert_eq!(plain["offers_embeddings"], false, "{plain}");
    let plain = plain["id"].as_str().expect("id").to_string();
    let embedding = json!({
        "base_url": base, "model": "test-model", "api_key": API_KEY, "is_active": true,
        "embedding_model": EMBEDDING_MODEL,
    });
    let (status, embedding) = server.post("/api/v1/providers/openai-compatible", &admin, &embedding).await;
    assert_eq!(status, 201, "{embedding}");
    assert_eq!(embedding["offers_embeddings"], true, "{embedding}");
    let embedding = embedding["id"].as_str().expect("id").to_string();

    // With embeddings: a paraphrase in other words is served from the cache.
    let shop = new_connection(&server, &admin, "shop", &config).await;
    fake.answer_with("SELECT COUNT(*) AS n FROM customers");
    let first = ask(&server, &admin, &shop, &embedding, "Count the customers").await;
    assert_eq!(first["status"], "executed", "{first}");
    assert_eq!(fake.embedded(), vec!["Count the customers"], "embedded once, for the lookup and the store");
    let calls = fake.completions();
    let paraphrase = ask(&server, &admin, &shop, &embedding, "How many clients do we have?").await;
    assert_eq!(paraphrase["status"], "cached", "{paraphrase}");
    assert_eq!(paraphrase["cache_hit"], true);
    assert_eq!(paraphrase["results"]["rows"][0][0], 3, "{paraphrase}");
    assert_eq!(fake.completions(), calls, "no model call for a cached answer");
    assert_eq!(fake.embedded().len(), 2, "one embedding per question");

    // Named values must match: Paris is not Berlin, however close their vectors.
    fake.answer_with("SELECT SUM(total) AS revenue FROM sales WHERE city = 'Berlin'");
    let berlin = ask(&server, &admin, &shop, &embedding, "What was the revenue in Berlin?").await;
    assert_eq!(berlin["status"], "executed", "{berlin}");
    fake.answer_with("SELECT SUM(total) AS revenue FROM sales WHERE city = 'Paris'");
    let paris = ask(&server, &admin, &shop, &embedding, "What was the revenue in Paris?").await;
    assert_eq!(paris["status"], "executed", "not Berlin's answer: {paris}");
    assert_eq!(paris["results"]["rows"][0][0], 32.0, "{paris}");
    let same_city = ask(&server, &admin, &shop, &embedding, "What was the total income in Berlin?").await;
    assert_eq!(same_city["status"], "cached", "{same_city}");
    assert_eq!(same_city["results"]["rows"][0][0], 15.0, "{same_city}");

    // What is stored: the entries' vectors, and a 👍 example's.
    let entries = server.store.cache_entries_of(&shop, 100).await.expect("entries");
    let counted = entries.iter().find(|c| c.entry.question_raw == "Count the customers").expect("stored");
    let vector = counted.embedding.as_ref().expect("stored with its vector");
    assert_eq!(
        (vector.model.as_str(), vector.vector.clone()),
        (EMBEDDING_MODEL, concept_vector("Count the customers"))
    );
    let message_id = first["message_id"].as_str().expect("message id");
    let thumbs_up = json!({ "feedback": "thumbs_up" });
    let (status, _) = server.post(&format!("/api/v1/chat/feedback/{message_id}"), &admin, &thumbs_up).await;
    assert_eq!(status, 204);
    let (status, _) = server
        .post(
            &format!("/api/v1/chat/examples/{shop}"),
            &admin,
            &json!({ "question": "Number of sales per city", "query": "SELECT city, COUNT(*) FROM sales GROUP BY city" }),
        )
        .await;
    assert_eq!(status, 201);
    let examples = server.store.examples_for(&shop, "sqlite", 10).await.expect("examples");
    assert_eq!(examples.len(), 2);
    assert!(
        examples.iter().all(|e| e.embedding.as_ref().is_some_and(|v| v.model == EMBEDDING_MODEL)),
        "the 👍 and the hand-made example carry their vectors"
    );

    // Without embeddings: the lexical behaviour, and nothing is embedded.
    let plain_shop = new_connection(&server, &admin, "plain-shop", &config).await;
    let embedded_before = fake.embedded().len();
    fake.answer_with("SELECT COUNT(*) AS n FROM customers");
    assert_eq!(ask(&server, &admin, &plain_shop, &plain, "Count the customers").await["status"], "executed");
    let other_words = ask(&server, &admin, &plain_shop, &plain, "How many clients do we have?").await;
    assert_eq!(other_words["status"], "executed", "words alone do not match: {other_words}");
    let same_words = ask(&server, &admin, &plain_shop, &plain, "How many customers are there?").await;
    assert_eq!(same_words["status"], "cached", "{same_words}");
    assert_eq!(fake.embedded().len(), embedded_before);
    let entries = server.store.cache_entries_of(&plain_shop, 100).await.expect("entries");
    assert!(entries.iter().all(|c| c.embedding.is_none()));

    // The embeddings endpoint failing: every question is still answered, lexically.
    fake.fail_embeddings.store(true, Ordering::SeqCst);
    let failures_logged = || logs().matches("question embeddings unavailable").count();
    let logged_before = failures_logged();
    let typo = ask(&server, &admin, &shop, &embedding, "Count the custmers").await;
    assert_eq!(typo["status"], "cached", "a typo still matches by words: {typo}");
    assert_eq!(failures_logged(), logged_before + 1, "logged once for the request");
    fake.answer_with("SELECT COUNT(*) AS n FROM customers");
    let calls = fake.completions();
    let embed_requests = fake.embedded().len();
    let unrecognised = ask(&server, &admin, &shop, &embedding, "Number of buyers?").await;
    assert_eq!(unrecognised["status"], "executed", "answered by the model: {unrecognised}");
    assert_eq!(fake.completions(), calls + 1);
    // A provider that just failed is left alone for a while: no new request, no new warning.
    assert_eq!(fake.embedded().len(), embed_requests, "the failing provider is not asked again at once");
    assert_eq!(failures_logged(), logged_before + 1, "one warning, not one per question");
    assert!(!logs().contains(API_KEY), "the API key never reaches the logs");
}
