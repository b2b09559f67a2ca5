//! `/api/v1/chat` end to end over real HTTP: the product server, a scripted OpenAI-compatible LLM
//! and a real database (SQLite always; PostgreSQL and MariaDB when `QUARRY_TEST_POSTGRES_URL` /
//! `QUARRY_TEST_MYSQL_URL` are set — otherwise those cases say "skipped").
//!
//! One flow per database: provider → connection → chat (the SSE stream read with a real SSE
//! parser) → history → the same question again is `cached` → `review_first` gives
//! `pending_approval` → an admin executes it (a member may not) → `generate_only` gives
//! `query_only` → an edit runs after validation; sensitive columns are masked on every path;
//! the database password and the API key appear in no response, no log line and not in the
//! metadata database file; bad input is refused with nothing changed. An answer can be re-sorted
//! by the database and downloaded as CSV (masked, formulas defused) on every engine.

mod support;

use std::time::Duration;

use eventsource_stream::Eventsource;
use futures::StreamExt;
use serde_json::{Value, json};
use sqlx::{Connection, Executor};
use support::product::ProductServer;
use support::{FakeServer, Reply, capture_logs, logs, openai_chat_sse};

const API_KEY: &str = "sk-test-chat-key-6f1d2c9a7b";
const DB_PASSWORD: &str = "db-pass-2b7e0c94-secret";
const CHAT: &str = "/v1/chat/completions";

/// The scripted model's answer: this SQL.
fn answer(sql: &str) -> Reply {
    openai_chat_sse(&json!({ "description": "scripted plan", "sql": sql }).to_string(), (120, 30))
}

/// The events of one chat stream, parsed by a real SSE parser: `(type, payload)`.
async fn chat(server: &ProductServer, token: &str, body: &Value) -> (u16, Vec<(String, Value)>) {
    let (status, frames) = server.chat(token, body).await;
    if status != 200 {
        return (status, frames.into_iter().map(|body| ("http".to_string(), body)).collect());
    }
    let typed = frames.into_iter().map(|frame| (frame["type"].as_str().expect("type field").to_string(), frame));
    (status, typed.collect())
}

fn kinds(events: &[(String, Value)]) -> Vec<&str> {
    events.iter().map(|(k, _)| k.as_str()).collect()
}

fn done(events: &[(String, Value)]) -> &Value {
    let (kind, payload) = events.last().expect("events");
    assert_eq!(kind, "done", "the stream ends with done: {:?}", kinds(events));
    payload
}

/// Switch the connection's execution mode (as an admin).
async fn set_mode(server: &ProductServer, admin: &str, connection_id: &str, mode: &str) {
    let path = format!("/api/v1/connections/{connection_id}/execution-mode");
    let (status, reply) = server.put(&path, admin, &json!({ "execution_mode": mode })).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["execution_mode"], mode, "{reply}");
}

/// The customers table on every engine: three rows, an `email` column the default sensitive
/// patterns mask.
const SETUP: &[&str] = &[
    "CREATE TABLE customers (id INTEGER PRIMARY KEY, name VARCHAR(40) NOT NULL, country VARCHAR(2) NOT NULL, email VARCHAR(80) NOT NULL)",
    "INSERT INTO customers VALUES (1, 'Ann', 'DE', 'ann@example.com'), (2, 'Bob', 'FR', 'bob@example.com'), (3, 'Cid', 'DE', 'cid@example.com')",
];

/// A test database and the connection config that reaches it.
struct TestDb {
    source_type: &'static str,
    config: Value,
    _dir: Option<tempfile::TempDir>,
}

async fn sqlite_db() -> TestDb {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("shop.db");
    let url = format!("sqlite://{}?mode=rwc", path.display());
    let mut conn = sqlx::SqliteConnection::connect(&url).await.expect("sqlite");
    for statement in SETUP {
        conn.execute(*statement).await.expect("setup");
    }
    conn.close().await.expect("close");
    TestDb { source_type: "sqlite", config: json!({ "path": path.display().to_string() }), _dir: Some(dir) }
}

/// A fresh database on the PostgreSQL server of `QUARRY_TEST_POSTGRES_URL`. The server trusts
/// local connections, so the password is carried (and must stay secret) but not checked.
async fn postgres_db() -> Option<TestDb> {
    let Ok(admin) = std::env::var("QUARRY_TEST_POSTGRES_URL") else {
        eprintln!("skipped: QUARRY_TEST_POSTGRES_URL not set");
        return None;
    };
    let name = format!("quarry_chat_{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
    let mut conn = sqlx::PgConnection::connect(&admin).await.expect("postgres");
    conn.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).await.expect("create database");
    let parsed = url::Url::parse(&admin).expect("url");
    let mut url = parsed.clone();
    url.set_path(&name);
    let mut db = sqlx::PgConnection::connect(url.as_str()).await.expect("connect new database");
    for statement in SETUP {
        db.execute(*statement).await.expect("setup");
    }
    let config = json!({
        "host": parsed.host_str().unwrap_or("127.0.0.1"),
        "port": parsed.port().unwrap_or(5432),
        "database": name,
        "username": if parsed.username().is_empty() { "postgres" } else { parsed.username() },
        "password": DB_PASSWORD,
    });
    Some(TestDb { source_type: "postgresql", config, _dir: None })
}

/// A fresh database on the MariaDB server of `QUARRY_TEST_MYSQL_URL`.
async fn mysql_db() -> Option<TestDb> {
    let Ok(admin) = std::env::var("QUARRY_TEST_MYSQL_URL") else {
        eprintln!("skipped: QUARRY_TEST_MYSQL_URL not set");
        return None;
    };
    let name = format!("quarry_chat_{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
    let mut conn = sqlx::MySqlConnection::connect(&admin).await.expect("mariadb");
    conn.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).await.expect("create database");
    conn.execute(sqlx::AssertSqlSafe(format!("USE {name}"))).await.expect("use");
    for statement in SETUP {
        conn.execute(*statement).await.expect("setup");
    }
    let parsed = url::Url::parse(&admin).expect("url");
    let config = json!({
        "host": parsed.host_str().unwrap_or("127.0.0.1"),
        "port": parsed.port().unwrap_or(3306),
        "database": name,
        "username": if parsed.username().is_empty() { "root" } else { parsed.username() },
        "password": parsed.password().unwrap_or(""),
    });
    Some(TestDb { source_type: "mysql", config, _dir: None })
}

/// Every response body a test saw, to prove no secret is in any of them.
#[derive(Default)]
struct Seen(Vec<String>);

impl Seen {
    fn add(&mut self, v: &Value) -> Value {
        self.0.push(v.to_string());
        v.clone()
    }
    fn assert_never(&self, secret: &str) {
        for body in &self.0 {
            assert!(!body.contains(secret), "a response carried a secret: {body}");
        }
    }
}

/// The whole flow on one database.
async fn full_flow(db: TestDb) {
    capture_logs();
    let server = ProductServer::start().await;
    let llm = FakeServer::start().await;
    let mut seen = Seen::default();
    let admin = server.register_admin().await;

    // Provider and connection.
    let (status, provider) = server
        .post(
            "/api/v1/providers/openai-compatible",
            &admin,
            &json!({ "base_url": llm.url("/v1"), "model": "test-model", "api_key": API_KEY, "is_active": true }),
        )
        .await;
    assert_eq!(status, 201, "provider: {provider}");
    seen.add(&provider);
    let (status, connection) = server
        .post(
            "/api/v1/connections",
            &admin,
            &json!({ "name": format!("shop-{}", db.source_type), "source_type": db.source_type, "config": db.config }),
        )
        .await;
    assert_eq!(status, 201, "connection: {connection}");
    seen.add(&connection);
    let connection_id = connection["id"].as_str().expect("connection id").to_string();

    // A question, streamed: rows masked in the row batches and in `done`.
    llm.reply(CHAT, answer("SELECT name, email FROM customers ORDER BY id"));
    let ask = json!({ "connection_id": connection_id, "message": "List the customers with their email", "options": { "max_rows": 100 } });
    let (status, events) = chat(&server, &admin, &ask).await;
    assert_eq!(status, 200);
    let order = kinds(&events);
    assert!(order.contains(&"status") && order.contains(&"sql") && order.contains(&"row_batch"), "{order:?}");
    let sql_at = order.iter().position(|k| *k == "sql").expect("sql");
    let rows_at = order.iter().position(|k| *k == "row_batch").expect("row_batch");
    assert!(sql_at < rows_at, "the SQL comes before the rows: {order:?}");
    let first = done(&events).clone();
    seen.add(&first);
    assert_eq!(first["status"], "executed", "{first}");
    assert_eq!(first["cache_hit"], false);
    assert_eq!(first["results"]["row_count"], 3);
    assert_eq!(first["results"]["rows"][0][0], "Ann");
    assert_eq!(first["results"]["rows"][0][1], "[REDACTED]", "email is masked: {first}");
    let batch = events.iter().find(|(k, _)| k == "row_batch").map(|(_, v)| v.clone()).expect("batch");
    assert_eq!(batch["rows"][1][1], "[REDACTED]", "masked in the stream too");
    assert!(first["input_tokens"].as_u64().unwrap_or(0) > 0, "token usage reported: {first}");
    assert!(first["stage_timings_ms"]["total"].is_u64(), "stage timings: {first}");
    let session_id = first["session_id"].as_str().expect("session").to_string();
    let calls_after_first = llm.requests().len();

    // History, in order, masked.
    let (status, history) = server.get(&format!("/api/v1/chat/sessions/{session_id}/history"), &admin).await;
    assert_eq!(status, 200, "{history}");
    seen.add(&history);
    assert_eq!(history["total"], 2);
    assert_eq!(history["items"][0]["role"], "user");
    assert_eq!(history["items"][0]["content"], "List the customers with their email");
    assert_eq!(history["items"][1]["role"], "assistant");
    assert_eq!(history["items"][1]["query_generated"], "SELECT name, email FROM customers ORDER BY id LIMIT 100");
    assert_eq!(history["items"][1]["results_json"]["rows"][2][1], "[REDACTED]");
    let (status, sessions) = server.get("/api/v1/chat/sessions", &admin).await;
    assert_eq!(status, 200);
    assert_eq!(sessions["items"][0]["id"], session_id.as_str());

    // The same question again: served from the cache, no LLM call.
    let (_, events) = chat(&server, &admin, &ask).await;
    let again = done(&events).clone();
    assert_eq!(again["status"], "cached", "{again}");
    assert_eq!(again["cache_hit"], true);
    assert_eq!(again["results"]["rows"][0][1], "[REDACTED]");
    assert_eq!(llm.requests().len(), calls_after_first, "a cached answer does not call the model");

    // review_first: held, no rows; a member may not approve; an admin runs it once.
    set_mode(&server, &admin, &connection_id, "review_first").await;
    llm.reply(CHAT, answer("SELECT country, email FROM customers WHERE country = 'DE'"));
    let held_ask = json!({ "connection_id": connection_id, "message": "Which customers live in Germany?" });
    let (_, events) = chat(&server, &admin, &held_ask).await;
    let held = done(&events).clone();
    assert_eq!(held["status"], "pending_approval", "{held}");
    assert!(held["results"].is_null(), "nothing ran: {held}");
    assert!(!kinds(&events).contains(&"row_batch"));
    let message_id = held["message_id"].as_str().expect("message id").to_string();
    let member = server.add_user(&admin, "member@example.com", "member").await;
    let (status, _) = server.post(&format!("/api/v1/chat/execute/{message_id}"), &member, &json!({})).await;
    assert_eq!(status, 403, "a member cannot approve");
    let (status, executed) = server.post(&format!("/api/v1/chat/execute/{message_id}"), &admin, &json!({})).await;
    assert_eq!(status, 200, "{executed}");
    seen.add(&executed);
    assert_eq!(executed["status"], "executed");
    assert_eq!(executed["results"]["row_count"], 2);
    assert_eq!(executed["results"]["rows"][0][1], "[REDACTED]", "masked on the approval path");
    let (status, _) = server.post(&format!("/api/v1/chat/execute/{message_id}"), &admin, &json!({})).await;
    assert_eq!(status, 400, "a held query runs once");

    // generate_only: SQL only.
    set_mode(&server, &admin, &connection_id, "generate_only").await;
    llm.reply(CHAT, answer("SELECT COUNT(*) AS n FROM customers"));
    let (_, events) =
        chat(&server, &admin, &json!({ "connection_id": connection_id, "message": "How many customers are there?" }))
            .await;
    let only = done(&events).clone();
    assert_eq!(only["status"], "query_only", "{only}");
    assert!(only["results"].is_null());

    // Edit: validated, then run (auto_execute), masked; unsafe SQL is refused.
    set_mode(&server, &admin, &connection_id, "auto_execute").await;
    let edit_id = only["message_id"].as_str().expect("message id");
    let (status, edited) = server
        .post(
            &format!("/api/v1/chat/edit/{edit_id}"),
            &admin,
            &json!({ "edited_query": "SELECT email FROM customers" }),
        )
        .await;
    assert_eq!(status, 200, "{edited}");
    assert_eq!(edited["status"], "executed", "{edited}");
    assert_eq!(edited["results"]["rows"][0][0], "[REDACTED]", "masked on the edit path");
    // Renaming a sensitive column, or computing from it, does not unmask it.
    let renamed = "SELECT name, lower(email), email AS contact, LENGTH(name) AS n FROM customers ORDER BY name";
    let (status, edited) =
        server.post(&format!("/api/v1/chat/edit/{edit_id}"), &admin, &json!({ "edited_query": renamed })).await;
    assert_eq!(status, 200, "{edited}");
    let row = &edited["results"]["rows"][0];
    assert_eq!((&row[1], &row[2]), (&json!("[REDACTED]"), &json!("[REDACTED]")), "aliases are masked: {edited}");
    assert!(row[0].is_string() && row[0] != "[REDACTED]" && row[3].is_number(), "others are not: {edited}");
    let (status, refused) = server
        .post(&format!("/api/v1/chat/edit/{edit_id}"), &admin, &json!({ "edited_query": "DELETE FROM customers" }))
        .await;
    assert_eq!(status, 200, "{refused}");
    assert_eq!(refused["status"], "error", "a write is refused: {refused}");

    // Bad input: 4xx in the API's shape, nothing recorded.
    let (_, before) = server.get("/api/v1/chat/sessions", &admin).await;
    let (status, body) = chat(&server, &admin, &json!({ "connection_id": connection_id, "message": "   " })).await;
    assert_eq!(status, 422, "{body:?}");
    let (status, _) = chat(&server, &admin, &json!({ "message": "no connection" })).await;
    assert_eq!(status, 422);
    let (status, body) =
        chat(&server, &admin, &json!({ "connection_id": "00000000-0000-4000-8000-000000000000", "message": "hi" }))
            .await;
    assert_eq!(status, 404, "{body:?}");
    let (status, _) = server
        .call(
            reqwest::Method::POST,
            "/api/v1/chat",
            None,
            Some(&json!({ "connection_id": connection_id, "message": "hi" })),
        )
        .await;
    assert_eq!(status, 401);
    let (status, _) = server.post("/api/v1/chat/execute/not-a-message", &admin, &json!({})).await;
    assert_eq!(status, 404);
    let (status, _) =
        server.post(&format!("/api/v1/chat/feedback/{edit_id}"), &admin, &json!({ "feedback": "meh" })).await;
    assert_eq!(status, 422);
    let (_, after) = server.get("/api/v1/chat/sessions", &admin).await;
    assert_eq!(before["total"], after["total"], "bad input recorded nothing");

    // Secrets: in no response, no log line, not in the metadata database file.
    for secret in [API_KEY, DB_PASSWORD] {
        seen.assert_never(secret);
        assert!(!logs().contains(secret), "a secret reached the logs");
        for file in ["quarry.db", "quarry.db-wal"] {
            if let Ok(bytes) = std::fs::read(server.data_dir.path().join(file)) {
                let found = bytes.windows(secret.len()).any(|w| w == secret.as_bytes());
                assert!(!found, "{secret} is stored in plain text in {file}");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chat_flow_on_sqlite() {
    full_flow(sqlite_db().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chat_flow_on_postgres() {
    if let Some(db) = postgres_db().await {
        full_flow(db).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chat_flow_on_mariadb() {
    if let Some(db) = mysql_db().await {
        full_flow(db).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feedback_adds_an_example_and_thumbs_down_evicts_the_cache() {
    let server = ProductServer::start().await;
    let llm = FakeServer::start().await;
    let admin = server.register_admin().await;
    let db = sqlite_db().await;
    let (status, _) = server
        .post(
            "/api/v1/providers/openai-compatible",
            &admin,
            &json!({ "base_url": llm.url("/v1"), "model": "test-model", "api_key": API_KEY, "is_active": true }),
        )
        .await;
    assert_eq!(status, 201);
    let (_, connection) = server
        .post("/api/v1/connections", &admin, &json!({ "name": "fb", "source_type": "sqlite", "config": db.config }))
        .await;
    let connection_id = connection["id"].as_str().expect("id").to_string();

    llm.reply(CHAT, answer("SELECT COUNT(*) AS n FROM customers WHERE country = 'DE'"));
    let ask = json!({ "connection_id": connection_id, "message": "How many customers are in Germany?" });
    let (_, events) = chat(&server, &admin, &ask).await;
    let first = done(&events).clone();
    assert_eq!(first["status"], "executed", "{first}");
    let message_id = first["message_id"].as_str().expect("id").to_string();

    // 👍: the pair becomes a verified example, shown to the model next time.
    let (status, _) =
        server.post(&format!("/api/v1/chat/feedback/{message_id}"), &admin, &json!({ "feedback": "thumbs_up" })).await;
    assert_eq!(status, 204);
    let (status, examples) = server.get(&format!("/api/v1/chat/examples/{connection_id}"), &admin).await;
    assert_eq!(status, 200, "{examples}");
    assert_eq!(examples["total"], 1, "{examples}");

    // 👎: the cached answer is evicted, so the same question goes to the model again.
    let (status, _) = server
        .post(&format!("/api/v1/chat/feedback/{message_id}"), &admin, &json!({ "feedback": "thumbs_down" }))
        .await;
    assert_eq!(status, 204);
    llm.reply(CHAT, answer("SELECT COUNT(*) AS n FROM customers WHERE country = 'DE'"));
    let calls = llm.requests().len();
    let (_, events) = chat(&server, &admin, &ask).await;
    assert_eq!(done(&events)["status"], "executed", "not served from the cache after 👎");
    assert_eq!(llm.requests().len(), calls + 1);
    let prompt = llm.requests().last().map(|r| r.json().to_string()).unwrap_or_default();
    assert!(prompt.contains("Verified examples"), "the example reaches the prompt");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_row_filter_applies_to_streamed_and_approved_answers() {
    let server = ProductServer::start().await;
    let llm = FakeServer::start().await;
    let admin = server.register_admin().await;
    let db = sqlite_db().await;
    let provider = json!({ "base_url": llm.url("/v1"), "model": "test-model", "api_key": API_KEY, "is_active": true });
    let (status, _) = server.post("/api/v1/providers/openai-compatible", &admin, &provider).await;
    assert_eq!(status, 201);
    let (_, connection) = server
        .post(
            "/api/v1/connections",
            &admin,
            &json!({ "name": "filtered", "source_type": "sqlite", "config": db.config }),
        )
        .await;
    let connection_id = connection["id"].as_str().expect("id").to_string();
    let (status, privacy) = server
        .put(
            &format!("/api/v1/connections/{connection_id}/privacy"),
            &admin,
            &json!({ "row_filter_sql": "country = 'DE'" }),
        )
        .await;
    assert_eq!(status, 200, "{privacy}");

    // Streamed: only the rows the filter allows, the limit counted after filtering.
    llm.reply(CHAT, answer("SELECT name, country FROM customers ORDER BY id LIMIT 2"));
    let (_, events) =
        chat(&server, &admin, &json!({ "connection_id": connection_id, "message": "Two customers" })).await;
    let streamed = done(&events).clone();
    assert_eq!(streamed["status"], "executed", "{streamed}");
    assert_eq!(streamed["results"]["rows"], json!([["Ann", "DE"], ["Cid", "DE"]]), "{streamed}");

    // Approved: the held query is filtered when it finally runs.
    set_mode(&server, &admin, &connection_id, "review_first").await;
    llm.reply(CHAT, answer("SELECT name, country FROM customers"));
    let (_, events) =
        chat(&server, &admin, &json!({ "connection_id": connection_id, "message": "All customer names" })).await;
    let held = done(&events).clone();
    assert_eq!(held["status"], "pending_approval", "{held}");
    let message_id = held["message_id"].as_str().expect("id");
    let (status, executed) = server.post(&format!("/api/v1/chat/execute/{message_id}"), &admin, &json!({})).await;
    assert_eq!(status, 200, "{executed}");
    assert_eq!(executed["results"]["row_count"], 2, "only German customers: {executed}");
    assert_eq!(executed["query_dialect"], "SQLite");

    // The filter is on the result's columns: a query that leaves them out fails closed (no rows),
    // it never runs unfiltered.
    set_mode(&server, &admin, &connection_id, "auto_execute").await;
    let no_country = answer("SELECT name FROM customers");
    for _ in 0..6 {
        llm.reply(CHAT, no_country.clone());
    }
    let (_, events) =
        chat(&server, &admin, &json!({ "connection_id": connection_id, "message": "Just the names" })).await;
    let closed = done(&events).clone();
    assert_eq!(closed["status"], "error", "{closed}");
    assert!(closed["results"].is_null(), "{closed}");

    // generate_only: an edit is validated by the connection's dialect plugin, never run.
    set_mode(&server, &admin, &connection_id, "generate_only").await;
    let edit_id = closed["message_id"].as_str().expect("id");
    let (status, edited) = server
        .post(&format!("/api/v1/chat/edit/{edit_id}"), &admin, &json!({ "edited_query": "SELECT name FROM customers" }))
        .await;
    assert_eq!(status, 200, "{edited}");
    assert_eq!(edited["status"], "query_only", "{edited}");
    assert!(edited["results"].is_null());
}

/// A client that goes away mid-query stops the query on the database, not just the stream: the
/// SQLite file's exclusive lock (which needs every reader gone) is granted within seconds, while
/// the statement timeout is a minute.
#[tokio::test]
async fn a_client_that_disconnects_stops_its_query() {
    let server = ProductServer::start().await;
    let llm = FakeServer::start().await;
    let admin = server.register_admin().await;
    let db = sqlite_db().await;
    let (status, reply) = server.put("/api/v1/settings", &admin, &json!({ "default_query_timeout": 60 })).await;
    assert_eq!(status, 200, "{reply}");
    let (status, _) = server
        .post(
            "/api/v1/providers/openai-compatible",
            &admin,
            &json!({ "base_url": llm.url("/v1"), "model": "test-model", "is_active": true }),
        )
        .await;
    assert_eq!(status, 201);
    let (status, connection) = server
        .post("/api/v1/connections", &admin, &json!({ "name": "slow", "source_type": "sqlite", "config": db.config }))
        .await;
    assert_eq!(status, 201, "{connection}");
    // Reads `customers` at every step and never ends on its own.
    let runaway = "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT r.n + 1 FROM r, customers c WHERE c.id = 1) \
                   SELECT count(*) AS n FROM r";
    llm.reply(CHAT, answer(runaway));
    let body = json!({ "connection_id": connection["id"], "message": "Count forever" });
    let response = server.chat_request(&admin, &body).await;
    assert_eq!(response.status().as_u16(), 200);
    let mut stream = response.bytes_stream().eventsource();
    loop {
        let event = tokio::time::timeout(Duration::from_secs(30), stream.next())
            .await
            .expect("event in time")
            .expect("stream open")
            .expect("well-formed SSE");
        let data: Value = serde_json::from_str(&event.data).expect("JSON");
        assert_ne!(data["type"], "done", "the runaway query cannot finish: {data}");
        if data["type"] == "status" && data["stage"] == "execute" {
            break;
        }
    }
    // Give the statement a moment to start, then hang up.
    tokio::time::sleep(Duration::from_millis(300)).await;
    drop(stream);
    let path = db.config["path"].as_str().expect("path");
    let mut writer = sqlx::SqliteConnection::connect_with(
        &sqlx::sqlite::SqliteConnectOptions::new().filename(path).busy_timeout(Duration::from_secs(15)),
    )
    .await
    .expect("writer");
    sqlx::raw_sql("BEGIN EXCLUSIVE; COMMIT")
        .execute(&mut writer)
        .await
        .expect("the query stopped when the client left");
    // The server carries on.
    let (status, _) = server.get("/api/v1/chat/sessions", &admin).await;
    assert_eq!(status, 200);
}

/// The answer's CSV download as `token`: (status, content type, content disposition, body).
async fn export_csv(server: &ProductServer, token: &str, message_id: &str) -> (u16, String, String, String) {
    let response = server
        .client
        .get(server.url(&format!("/api/v1/export/messages/{message_id}/csv")))
        .bearer_auth(token)
        .send()
        .await
        .expect("export request");
    let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let (kind, disposition) = (header("content-type"), header("content-disposition"));
    let status = response.status().as_u16();
    (status, kind, disposition, response.text().await.expect("body"))
}

/// Sort and CSV export of one answer on `db`: the column quoted in the engine's dialect, masked,
/// filtered, the stored answer unchanged.
async fn sort_and_export(db: TestDb) {
    let server = ProductServer::start().await;
    let llm = FakeServer::start().await;
    let admin = server.register_admin().await;
    let member = server.add_user(&admin, "member@example.com", "member").await;
    let provider = json!({ "base_url": llm.url("/v1"), "model": "test-model", "api_key": API_KEY, "is_active": true });
    assert_eq!(server.post("/api/v1/providers/openai-compatible", &admin, &provider).await.0, 201);
    let (status, connection) = server
        .post(
            "/api/v1/connections",
            &admin,
            &json!({ "name": "sorted", "source_type": db.source_type, "config": db.config }),
        )
        .await;
    assert_eq!(status, 201, "{connection}");
    let connection_id = connection["id"].as_str().expect("id").to_string();

    // A renamed sensitive column (masked through the alias) and a cell that looks like a formula.
    llm.reply(CHAT, answer("SELECT id, name, country, email AS contact, '=1+2' AS note FROM customers ORDER BY id"));
    let (_, events) =
        chat(&server, &admin, &json!({ "connection_id": connection_id, "message": "Customers and contacts" })).await;
    let first = done(&events).clone();
    assert_eq!(first["status"], "executed", "{first}");
    let message_id = first["message_id"].as_str().expect("id").to_string();
    let sort = |column: &str, order: &str| json!({ "sort_column": column, "sort_order": order });
    let sort_path = format!("/api/v1/chat/sort/{message_id}");

    // Sorted by the database, every column kept, still masked.
    let (status, sorted) = server.post(&sort_path, &admin, &sort("name", "DESC")).await;
    assert_eq!(status, 200, "{sorted}");
    assert_eq!(sorted["columns"], json!(["id", "name", "country", "contact", "note"]), "{sorted}");
    let names: Vec<&Value> = sorted["rows"].as_array().expect("rows").iter().map(|r| &r[1]).collect();
    assert_eq!(names, [&json!("Cid"), &json!("Bob"), &json!("Ann")], "{sorted}");
    assert!(sorted["rows"].as_array().unwrap().iter().all(|r| r[3] == "[REDACTED]"), "masked on sort: {sorted}");
    assert_eq!((sorted["row_count"].clone(), sorted["truncated"].clone()), (json!(3), json!(false)));
    assert!(sorted["column_types"].is_array() && sorted["execution_time_ms"].is_u64(), "{sorted}");
    let (_, sorted) = server.post(&sort_path, &admin, &sort("id", "asc")).await;
    assert_eq!(sorted["rows"][0][1], "Ann", "{sorted}");

    // The stored answer did not change.
    let session_id = first["session_id"].as_str().expect("session");
    let (_, history) = server.get(&format!("/api/v1/chat/sessions/{session_id}/history"), &admin).await;
    assert_eq!(history["items"][1]["results_json"]["rows"][0][1], "Ann", "{history}");
    assert_eq!(history["items"][1]["query_generated"], first["query"]);

    // Only the answer's columns, only ASC or DESC; someone else's answer does not exist.
    let (status, reply) = server.post(&sort_path, &admin, &sort("email", "ASC")).await;
    assert_eq!(status, 400, "{reply}");
    assert!(reply["detail"].as_str().is_some_and(|d| d.contains("not a column")), "{reply}");
    // Sorting by a masked column would reveal the order of the hidden values.
    let (status, reply) = server.post(&sort_path, &admin, &sort("contact", "ASC")).await;
    assert_eq!(status, 400, "{reply}");
    assert!(reply["detail"].as_str().is_some_and(|d| d.contains("masked")), "{reply}");
    let (status, _) = server.post(&sort_path, &admin, &sort("name\" DESC; DROP TABLE customers; --", "ASC")).await;
    assert_eq!(status, 400);
    assert_eq!(server.post(&sort_path, &admin, &sort("name", "sideways")).await.0, 422);
    assert_eq!(server.post(&sort_path, &admin, &json!({ "sort_order": "ASC" })).await.0, 422);
    assert_eq!(server.post(&sort_path, &member, &sort("name", "ASC")).await.0, 404);
    assert_eq!(server.post("/api/v1/chat/sort/not-a-message", &admin, &sort("name", "ASC")).await.0, 404);

    // CSV: the stored rows as the client saw them (masked), formulas defused, as an attachment.
    let (status, kind, disposition, body) = export_csv(&server, &admin, &message_id).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(kind, "text/csv; charset=utf-8");
    assert_eq!(disposition, format!("attachment; filename=\"quarry-{message_id}.csv\""));
    assert_eq!(
        body,
        "id,name,country,contact,note\r\n\
         1,Ann,DE,[REDACTED],'=1+2\r\n\
         2,Bob,FR,[REDACTED],'=1+2\r\n\
         3,Cid,DE,[REDACTED],'=1+2\r\n"
    );
    assert_eq!(export_csv(&server, &member, &message_id).await.0, 404, "another user's answer");
    assert_eq!(export_csv(&server, &admin, "not-a-message").await.0, 404);

    // The connection's row filter applies to a sort as to every other path.
    let privacy = json!({ "row_filter_sql": "country = 'DE'" });
    assert_eq!(server.put(&format!("/api/v1/connections/{connection_id}/privacy"), &admin, &privacy).await.0, 200);
    let (_, filtered) = server.post(&sort_path, &admin, &sort("name", "DESC")).await;
    let german = json!([[3, "Cid", "DE", "[REDACTED]", "=1+2"], [1, "Ann", "DE", "[REDACTED]", "=1+2"]]);
    assert_eq!(filtered["rows"], german, "{filtered}");

    // An answer with no rows has nothing to sort or export.
    set_mode(&server, &admin, &connection_id, "generate_only").await;
    llm.reply(CHAT, answer("SELECT name FROM customers WHERE country = 'DE'"));
    let (_, events) =
        chat(&server, &admin, &json!({ "connection_id": connection_id, "message": "German customers" })).await;
    let only = done(&events).clone();
    assert_eq!(only["status"], "query_only", "{only}");
    let only_id = only["message_id"].as_str().expect("id");
    let (status, reply) = server.post(&format!("/api/v1/chat/sort/{only_id}"), &admin, &sort("name", "ASC")).await;
    assert_eq!((status, reply), (400, json!({ "detail": "This answer has no results to sort" })));
    let (status, _, _, body) = export_csv(&server, &admin, only_id).await;
    assert_eq!((status, body.as_str()), (400, r#"{"detail":"This answer has no results to export"}"#));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_is_sorted_and_exported_on_sqlite() {
    sort_and_export(sqlite_db().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_is_sorted_and_exported_on_postgres() {
    if let Some(db) = postgres_db().await {
        sort_and_export(db).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_is_sorted_and_exported_on_mariadb() {
    if let Some(db) = mysql_db().await {
        sort_and_export(db).await;
    }
}
