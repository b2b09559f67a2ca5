//! Secrets — the LLM API key, the database password, the keys clients use on `/v1` — never
//! appear in a response or in the server's log, even when the LLM or the database echoes them
//! back in an error.

use quarry_e2e::JsonBody;
use quarry_e2e::server::LLM_MODEL;
use quarry_e2e::sse::read_events;
use quarry_e2e::{
    Backend, FakeLlm, Fixture, PARIS_PLAN, PARIS_QUESTION, PARIS_SQL, Server, ServerBuilder, chat_id, on_every_backend,
    paris_rows,
};
use serde_json::json;

on_every_backend!(secrets_never_leave_the_server);

/// A unique secret with a recognisable prefix.
fn secret(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

/// What OpenAI answers to a wrong key: the key, quoted back.
fn key_rejected(key: &str) -> serde_json::Value {
    json!({"error": {
        "message": format!("Incorrect API key provided: {key}. You can find your API key at https://platform.openai.com/account/api-keys."),
        "type": "invalid_request_error",
        "param": null,
        "code": "invalid_api_key",
    }})
}

/// Panic if any of `secrets` is in `text` (naming where it was seen).
fn assert_absent(where_: &str, text: &str, secrets: &[&str]) {
    for s in secrets {
        assert!(!text.contains(s), "a secret appears in {where_}:\n{text}");
    }
}

/// Everything a client can read from the server's informational routes.
async fn public_pages(server: &Server, client_key: &str) -> String {
    let mut all = String::new();
    for path in ["/ping", "/openapi.json", "/docs"] {
        all.push_str(&server.get(path).await.text);
    }
    all.push_str(&server.send(server.http().get(server.url("/v1/models")).bearer_auth(client_key)).await.text);
    all
}

async fn secrets_never_leave_the_server(backend: Backend) {
    let Some(db) = Fixture::with_read_only_user(backend).await else { return };
    let llm_key = secret("sk-e2e-llm");
    let client_key = secret("client-key");
    let password = db.password().map(str::to_string);
    let mut secrets = vec![llm_key.as_str(), client_key.as_str()];
    secrets.extend(password.as_deref());

    let llm = FakeLlm::start().await;
    let server = ServerBuilder::new()
        .llm(&llm)
        .database(&db)
        .env("LLM_API_KEY", &llm_key)
        .env("OPENAI_API_KEY", &client_key)
        .env("RUST_LOG", "debug")
        .start()
        .await;

    // 1. The LLM refuses the key and quotes it back.
    llm.fail(401, key_rejected(&llm_key));
    let reply = server.inference("sqlQueryEngine", &chat_id("llm-401"), &json!({"basePrompt": PARIS_QUESTION})).await;
    assert_ne!(reply.status, 200, "a rejected LLM key is a failure: {}", reply.text);
    assert_absent("the /inference error", &reply.text, &secrets);

    // 2. The same through the streaming chat route.
    llm.fail(401, key_rejected(&llm_key));
    let request = json!({"model": "SQLBot", "messages": [{"role": "user", "content": PARIS_QUESTION}], "stream": true});
    let response = server
        .http()
        .post(server.url("/v1/chat/completions"))
        .bearer_auth(&client_key)
        .json_body(&request)
        .send()
        .await
        .expect("the request is sent");
    let streamed: String = read_events(response).await.into_iter().map(|e| e.data).collect::<Vec<_>>().join("\n");
    assert_absent("the chat stream", &streamed, &secrets);

    // 3. A working question, so the key was really in use.
    llm.answer_sql(PARIS_PLAN, PARIS_SQL);
    let body =
        server.inference("sqlQueryEngine", &chat_id("ok"), &json!({"basePrompt": PARIS_QUESTION})).await.expect(200);
    assert_eq!(body["agentResponse"]["evaluation"]["results"], paris_rows(), "the read-only user can read: {body:#}");
    let calls = llm.calls();
    assert!(
        calls.iter().all(|c| c.authorization.as_deref() == Some(format!("Bearer {llm_key}").as_str())),
        "the key was sent"
    );
    assert_absent("the answer", &body.to_string(), &secrets);

    // 4. A database error.
    let reply = server
        .inference(
            "sqlQueryEvaluation",
            &chat_id("db-error"),
            &json!({"basePrompt": "Names?", "baseQuery": "SELECT nme FROM customers", "baseDescription": "Names.", "retryCount": 0}),
        )
        .await;
    let body = reply.expect(200);
    assert!(
        body["agentResponse"]["evaluation"]["currentObservation"]
            .as_str()
            .is_some_and(|o| o.contains(db.unknown_column_error()))
    );
    assert_absent("a database error", &body.to_string(), &secrets);

    assert_absent("the public pages", &public_pages(&server, &client_key).await, &secrets);
    for s in &secrets {
        server.assert_not_logged(s);
    }
}

/// A database that cannot be reached: the error says so without repeating the URL's password.
async fn unreachable_database(scheme: &str) {
    let password = secret("pw-unreachable");
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("address");
    let url = format!("{scheme}://reader:{password}@{closed}/shop");
    let llm = FakeLlm::start().await;
    llm.answer_sql(PARIS_PLAN, PARIS_SQL);
    let server = ServerBuilder::new().llm(&llm).env("QUARRY_DATABASE_URL", &url).env("RUST_LOG", "debug").start().await;

    let reply = server.inference("sqlQueryEngine", &chat_id("no-db"), &json!({"basePrompt": PARIS_QUESTION})).await;
    let body = reply.expect(500);
    assert_eq!(body["code"], 500);
    assert!(body["error"].as_str().is_some_and(|e| !e.is_empty()), "{body:#}");
    assert_absent("the error body", &reply.text, &[&password]);
    let chat = json!({"model": LLM_MODEL, "stream": false, "messages": [{"role": "user", "content": PARIS_QUESTION}]});
    let reply = server.post("/v1/chat/completions", &chat).await;
    assert_absent("the chat answer", &reply.text, &[&password]);
    assert_absent("the public pages", &public_pages(&server, "").await, &[&password]);
    server.assert_not_logged(&password);
}

#[tokio::test]
async fn an_unreachable_postgres_password_is_not_echoed() {
    unreachable_database("postgres").await;
}

#[tokio::test]
async fn an_unreachable_mysql_password_is_not_echoed() {
    unreachable_database("mysql").await;
}
