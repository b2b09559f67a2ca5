//! The OpenAI-compatible routes (`/v1/models`, `/v1/chat/completions`, `/v1/completions`), the
//! API description (`/openapi.json`, `/docs`) and `/ping`, against the real server on a SQLite
//! fixture.

use quarry_e2e::JsonBody;
use quarry_e2e::sse::{Event, read_events};
use quarry_e2e::{Backend, Harness, PARIS_PLAN, PARIS_QUESTION, PARIS_SQL, chat_id};
use serde_json::{Value, json};

/// The 401 body SQL Query Engine sends for a missing or wrong key, word for word.
fn invalid_key_body() -> Value {
    json!({
        "detail": {
            "error": {
                "message": "Invalid API key. Provide a valid key in 'Authorization: Bearer <key>'.",
                "type": "invalid_request_error",
                "param": null,
                "code": "invalid_api_key"
            }
        }
    })
}

/// The visible answer (after `</think>`) to [`PARIS_QUESTION`] must show the plan, the SQL and
/// the rows as a markdown table.
fn assert_answer_layout(content: &str) {
    let think = content.find("<think>").unwrap_or_else(|| panic!("no <think> in:\n{content}"));
    let end = content.find("</think>").unwrap_or_else(|| panic!("no </think> in:\n{content}"));
    assert!(think < end, "<think> must come before </think>:\n{content}");
    let answer = &content[end..];
    let parts = [
        format!("**Query plan:** {PARIS_PLAN}"),
        format!("```sql\n{PARIS_SQL}"),
        "| name |".into(),
        "| Alice |".into(),
        "| Chloé |".into(),
    ];
    for part in &parts {
        assert!(answer.contains(part), "the answer lacks {part:?}:\n{content}");
    }
    let plan = answer.find("**Query plan:**").unwrap_or_default();
    let sql = answer.find("```sql").unwrap_or_default();
    let table = answer.find("| name |").unwrap_or_default();
    assert!(plan < sql && sql < table, "plan, then SQL, then rows:\n{content}");
}

/// The JSON chunks of a chat stream, after checking the stream's framing: every event but the
/// last is a `chat.completion.chunk` of one id, the last is `[DONE]`.
fn chunks(events: &[Event]) -> Vec<Value> {
    let (last, rest) = events.split_last().expect("the stream has events");
    assert_eq!(last.data, "[DONE]", "the stream ends with [DONE]");
    let chunks: Vec<Value> = rest
        .iter()
        .map(|e| {
            serde_json::from_str(&e.data).unwrap_or_else(|err| panic!("a chunk that is not JSON ({err}): {:?}", e.data))
        })
        .collect();
    assert!(!chunks.is_empty());
    let id = chunks[0]["id"].as_str().unwrap_or_default().to_string();
    assert!(id.starts_with("chatcmpl-"), "chunk id {id:?}");
    for chunk in &chunks {
        assert_eq!(chunk["object"], "chat.completion.chunk", "{chunk}");
        assert_eq!(chunk["id"], id.as_str(), "every chunk has the stream's id");
    }
    chunks
}

fn delta_text(chunk: &Value) -> &str {
    chunk["choices"][0]["delta"]["content"].as_str().unwrap_or("")
}

#[tokio::test]
async fn models_lists_the_configured_name() {
    let Some(h) =
        Harness::start_with(Backend::Sqlite, |s| s.env("COMPLETIONS_MODEL_NAME", "ShopSQL").env("BOT_NAME", "Bot"))
            .await
    else {
        return;
    };
    let reply = h.server.get("/v1/models").await;
    let body = reply.expect(200);
    assert_eq!(body["object"], "list");
    let data = body["data"].as_array().cloned().unwrap_or_default();
    assert_eq!(data.len(), 1, "{body:#}");
    assert_eq!(data[0]["id"], "ShopSQL", "COMPLETIONS_MODEL_NAME wins over BOT_NAME");
    assert_eq!(data[0]["object"], "model");
    assert_eq!(data[0]["owned_by"], "sql-query-engine");
    assert!(data[0]["created"].as_u64().is_some_and(|t| t > 1_600_000_000), "created is a Unix time: {body:#}");
}

#[tokio::test]
async fn models_falls_back_to_the_bot_name() {
    let Some(h) = Harness::start_with(Backend::Sqlite, |s| s.env("BOT_NAME", "ShopBot")).await else { return };
    let body = h.server.get("/v1/models").await.expect(200);
    assert_eq!(body["data"][0]["id"], "ShopBot", "{body:#}");
}

#[tokio::test]
async fn a_wrong_key_gets_the_reference_401() {
    let Some(h) = Harness::start_with(Backend::Sqlite, |s| s.env("OPENAI_API_KEY", "key-one, key-two")).await else {
        return;
    };
    let server = &h.server;
    let models = server.url("/v1/models");

    let wrong = server.send(server.http().get(&models).bearer_auth("key-three")).await;
    assert_eq!(wrong.expect(401), invalid_key_body());
    let missing = server.send(server.http().get(&models)).await;
    assert_eq!(missing.expect(401), invalid_key_body());
    let chat = server
        .send(
            server
                .http()
                .post(server.url("/v1/chat/completions"))
                .bearer_auth("key-one-and-more")
                .json_body(&json!({"model": "SQLBot", "messages": [{"role": "user", "content": PARIS_QUESTION}]})),
        )
        .await;
    assert_eq!(chat.expect(401), invalid_key_body());
    let completions = server
        .send(
            server
                .http()
                .post(server.url("/v1/completions"))
                .json_body(&json!({"model": "SQLBot", "prompt": PARIS_QUESTION})),
        )
        .await;
    assert_eq!(completions.expect(401), invalid_key_body());
    assert!(h.llm.calls().is_empty(), "an unauthorised request never reaches the model");

    assert_eq!(
        server.send(server.http().get(&models).bearer_auth("key-two")).await.status,
        200,
        "every listed key works"
    );
    assert_eq!(server.get("/ping").await.status, 200, "/ping needs no key");
}

#[tokio::test]
async fn chat_completion_streams_progress_then_the_answer() {
    let Some(h) = Harness::start(Backend::Sqlite).await else { return };
    h.llm.answer_sql(PARIS_PLAN, PARIS_SQL);
    // No `stream` field: streaming is the default.
    let request = json!({"model": "SQLBot", "messages": [{"role": "user", "content": PARIS_QUESTION}], "chat_id": chat_id("stream")});
    let response = h
        .server
        .http()
        .post(h.server.url("/v1/chat/completions"))
        .json_body(&request)
        .send()
        .await
        .expect("the request is sent");
    assert_eq!(response.status(), 200);
    let content_type = response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    assert!(content_type.starts_with("text/event-stream"), "content-type {content_type:?}");
    let events = read_events(response).await;
    let chunks = chunks(&events);

    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant", "the first chunk carries the role");
    assert!(chunks[1..].iter().all(|c| c["choices"][0]["delta"].get("role").is_none_or(|r| r == "assistant")));
    let (last, body) = chunks.split_last().expect("chunks");
    assert_eq!(last["choices"][0]["finish_reason"], "stop", "the last chunk finishes the answer: {last}");
    assert!(body.iter().all(|c| c["choices"][0]["finish_reason"].is_null()), "only the last chunk has a finish_reason");

    let content: String = chunks.iter().map(delta_text).collect();
    assert_answer_layout(&content);
    // Progress is streamed before the answer, not sent with it in one piece.
    let think_chunk = chunks.iter().position(|c| delta_text(c).contains("<think>")).expect("a chunk opens <think>");
    let plan_chunk =
        chunks.iter().position(|c| delta_text(c).contains("**Query plan:**")).expect("a chunk has the plan");
    assert!(think_chunk < plan_chunk, "progress comes in earlier chunks than the answer");
    assert_eq!(h.llm.calls().len(), 1);
}

#[tokio::test]
async fn chat_completion_without_streaming() {
    let Some(h) = Harness::start(Backend::Sqlite).await else { return };
    h.llm.answer_sql(PARIS_PLAN, PARIS_SQL);
    let request = json!({
        "model": "anything",
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": PARIS_QUESTION}],
        "stream": false,
        "temperature": 0.3,
        "max_tokens": 10,
    });
    let reply = h.server.post("/v1/chat/completions", &request).await;
    let body = reply.expect(200);
    assert!(body["id"].as_str().is_some_and(|id| id.starts_with("chatcmpl-")), "{body:#}");
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["model"], "SQLBot", "the configured model name, whatever the request said");
    assert!(body["created"].as_u64().is_some());
    let choice = &body["choices"][0];
    assert_eq!(choice["index"], 0);
    assert_eq!(choice["message"]["role"], "assistant");
    assert_eq!(choice["finish_reason"], "stop");
    assert_answer_layout(choice["message"]["content"].as_str().unwrap_or_default());
    for key in ["prompt_tokens", "completion_tokens", "total_tokens"] {
        assert!(body["usage"][key].is_u64(), "usage.{key}: {body:#}");
    }
    let calls = h.llm.calls();
    assert_eq!(calls.len(), 1);
    assert!(calls[0].last_user_message().contains(PARIS_QUESTION), "the last user message is the question");
}

#[tokio::test]
async fn a_chat_keeps_its_session_without_a_chat_id() {
    let Some(h) = Harness::start(Backend::Sqlite).await else { return };
    h.llm.answer_sql(PARIS_PLAN, PARIS_SQL);
    h.llm.answer_sql("Count the orders of customers in Paris", "SELECT COUNT(*) AS n FROM orders");
    let first = json!({"model": "SQLBot", "stream": false, "messages": [{"role": "user", "content": PARIS_QUESTION}]});
    h.server.post("/v1/chat/completions", &first).await.expect(200);
    // The second turn repeats the conversation as chat clients do; the assistant's text here
    // does not hold the SQL, so the SQL can only come from the session the first turn opened.
    let follow_up = "How many orders did they place?";
    let second = json!({"model": "SQLBot", "stream": false, "messages": [
        {"role": "user", "content": PARIS_QUESTION},
        {"role": "assistant", "content": "Two customers."},
        {"role": "user", "content": follow_up},
    ]});
    h.server.post("/v1/chat/completions", &second).await.expect(200);
    let calls = h.llm.calls();
    assert_eq!(calls.len(), 2);
    assert!(calls[1].last_user_message().contains(follow_up));
    assert!(
        calls[1].transcript().contains(PARIS_SQL),
        "the second turn sees the first turn's SQL:\n{}",
        calls[1].transcript()
    );
}

#[tokio::test]
async fn legacy_completions_answer_the_prompt() {
    let Some(h) = Harness::start(Backend::Sqlite).await else { return };
    h.llm.answer_sql(PARIS_PLAN, PARIS_SQL);
    let body = h
        .server
        .post("/v1/completions", &json!({"model": "SQLBot", "prompt": PARIS_QUESTION, "stream": false}))
        .await
        .expect(200);
    assert!(body["id"].as_str().is_some_and(|id| id.starts_with("cmpl-")), "{body:#}");
    assert_eq!(body["object"], "text_completion");
    assert_eq!(body["model"], "SQLBot");
    let choice = &body["choices"][0];
    assert_eq!(choice["index"], 0);
    assert!(choice["logprobs"].is_null());
    assert_eq!(choice["finish_reason"], "stop");
    assert_answer_layout(choice["text"].as_str().unwrap_or_default());
    let calls = h.llm.calls();
    assert_eq!(calls.len(), 1);
    assert!(calls[0].last_user_message().contains(PARIS_QUESTION));
}

#[tokio::test]
async fn ping_openapi_and_docs() {
    let Some(h) = Harness::start(Backend::Sqlite).await else { return };
    let ping = h.server.get("/ping").await.expect(200);
    assert_eq!(ping["code"], 200);
    assert_eq!(ping["status"], "[ SQL Query Engine ]: Agent is alive and reachable.");
    assert_eq!(ping["agent"], "sqlQueryEngine");
    assert_eq!(ping["scheme"], "http");
    assert_eq!(ping["host"], "127.0.0.1");
    let port = h.server.base_url().rsplit(':').next().unwrap_or_default();
    assert_eq!(ping["port"], port);
    assert_eq!(ping["clientHost"], "127.0.0.1");
    assert!(ping["clientPort"].as_u64().is_some_and(|p| p > 0), "{ping:#}");

    let spec = h.server.get("/openapi.json").await.expect(200);
    assert!(spec["openapi"].as_str().is_some_and(|v| v.starts_with("3.")), "{spec:#}");
    for path in [
        "/ping",
        "/inference/sqlQueryEngine/{chatID}",
        "/inference/sqlQueryGeneration/{chatID}",
        "/inference/sqlQueryEvaluation/{chatID}",
        "/v1/models",
        "/v1/chat/completions",
        "/v1/completions",
    ] {
        assert!(spec["paths"].get(path).is_some(), "/openapi.json lacks {path}");
    }

    let docs = h.server.get("/docs").await;
    assert_eq!(docs.status, 200);
    assert!(docs.content_type.starts_with("text/html"), "{}", docs.content_type);
    assert!(docs.text.to_lowercase().contains("swagger"), "/docs is the Swagger UI");
}
