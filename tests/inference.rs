//! SQL Query Engine's routes (`/inference/sqlQueryEngine`, `sqlQueryGeneration`,
//! `sqlQueryEvaluation`) end to end: the real server, a scripted model, and SQLite, PostgreSQL
//! and MariaDB/MySQL databases (each scenario runs once per configured backend).

use quarry_e2e::JsonBody;
use quarry_e2e::server::{DEFAULT_LLM_KEY, LLM_MODEL};
use quarry_e2e::{
    Backend, Harness, PARIS_PLAN, PARIS_QUESTION, PARIS_SQL, ServerBuilder, chat_id, fenced_answer, int_of,
    on_every_backend, paris_rows,
};
use serde_json::{Value, json};

on_every_backend!(
    answers_on_the_first_try,
    repairs_a_database_error,
    repairs_a_refused_statement,
    gives_up_when_retries_run_out,
    generation_only_does_not_run_the_query,
    evaluation_runs_given_sql_and_refuses_writes,
    a_follow_up_sees_the_previous_turn,
    an_empty_result_is_checked_once,
    the_row_limit_caps_results,
);

/// The SQL of a response field, or a panic naming the field.
fn sql_at<'a>(body: &'a Value, pointer: &str) -> &'a str {
    body.pointer(pointer).and_then(Value::as_str).unwrap_or_else(|| panic!("no SQL at {pointer} in {body:#}"))
}

/// The messages of `later` that `earlier` did not have, joined: what a repair request added.
fn added_messages(earlier: &quarry_e2e::LlmCall, later: &quarry_e2e::LlmCall) -> String {
    let before = earlier.messages().len();
    later.messages().into_iter().skip(before).map(|(_, content)| content).collect::<Vec<_>>().join("\n")
}

async fn answers_on_the_first_try(backend: Backend) {
    let Some(h) = Harness::start(backend).await else { return };
    h.llm.answer_sql(PARIS_PLAN, PARIS_SQL);
    let chat = chat_id("first-try");
    let extra = json!({"source": "e2e", "ids": [1, 2], "nested": {"ok": true}});
    let body = h
        .server
        .inference(
            "sqlQueryEngine",
            &chat,
            &json!({"basePrompt": PARIS_QUESTION, "retryCount": 2, "extraPayload": extra}),
        )
        .await
        .expect(200);

    assert_eq!(body["code"], 200);
    assert_eq!(body["status"], format!("[ {chat} | SQL Query Engine ]: Inference executed successfully."));
    assert_eq!(body["chatID"], chat);
    assert_eq!(body["extraPayload"], extra, "extraPayload must come back unchanged");
    let generation = &body["agentResponse"]["generation"];
    assert_eq!(generation["queryDescription"], PARIS_PLAN);
    assert!(sql_at(&body, "/agentResponse/generation/sqlQuery").starts_with(PARIS_SQL), "{body:#}");
    let evaluation = &body["agentResponse"]["evaluation"];
    assert!(sql_at(&body, "/agentResponse/evaluation/currentQuery").starts_with(PARIS_SQL), "{body:#}");
    assert_eq!(evaluation["currentObservation"], "Query executed successfully and returned 2 rows.");
    assert_eq!(evaluation["results"], paris_rows());

    let calls = h.llm.calls();
    assert_eq!(calls.len(), 1, "one model call for an answer that works at once");
    let call = &calls[0];
    assert_eq!(call.body["model"], LLM_MODEL);
    assert_eq!(call.authorization.as_deref(), Some(format!("Bearer {DEFAULT_LLM_KEY}").as_str()));
    assert!(
        call.last_user_message().contains(PARIS_QUESTION),
        "the question is the last user message: {}",
        call.transcript()
    );
    let prompt = call.transcript();
    for table in ["customers", "orders", "total_cents"] {
        assert!(prompt.contains(table), "the prompt lacks the schema's {table:?}:\n{prompt}");
    }
}

async fn repairs_a_database_error(backend: Backend) {
    let Some(h) = Harness::start(backend).await else { return };
    let broken = "SELECT nme FROM customers WHERE city = 'Paris'";
    h.llm.answer_sql(PARIS_PLAN, broken);
    // The repair comes back as a fenced block, the other shape models answer in.
    h.llm.answer(fenced_answer(PARIS_PLAN, PARIS_SQL));
    let chat = chat_id("repair-db");
    let body = h
        .server
        .inference("sqlQueryEngine", &chat, &json!({"basePrompt": PARIS_QUESTION, "retryCount": 3}))
        .await
        .expect(200);

    assert_eq!(body["agentResponse"]["evaluation"]["results"], paris_rows(), "{body:#}");
    assert!(sql_at(&body, "/agentResponse/evaluation/currentQuery").starts_with(PARIS_SQL), "{body:#}");
    assert!(
        sql_at(&body, "/agentResponse/generation/sqlQuery").contains("nme"),
        "generation shows the first attempt: {body:#}"
    );

    let calls = h.llm.calls();
    assert_eq!(calls.len(), 2, "one repair");
    let error = h.db.unknown_column_error();
    assert!(!calls[0].transcript().contains(error));
    let repair = added_messages(&calls[0], &calls[1]);
    assert!(repair.contains(broken), "the repair request shows the failed SQL:\n{repair}");
    assert!(repair.contains(error), "the repair request carries the database's error {error:?}:\n{repair}");
}

async fn repairs_a_refused_statement(backend: Backend) {
    let Some(h) = Harness::start(backend).await else { return };
    let before = h.db.count("orders").await;
    let delete = "DELETE FROM orders WHERE status = 'cancelled'";
    h.llm.answer_sql("Remove cancelled orders", delete);
    h.llm.answer_sql("Count cancelled orders", "SELECT COUNT(*) AS n FROM orders WHERE status = 'cancelled'");
    let chat = chat_id("repair-refused");
    let body = h
        .server
        .inference("sqlQueryEngine", &chat, &json!({"basePrompt": "How many orders were cancelled?", "retryCount": 2}))
        .await
        .expect(200);

    assert_eq!(h.db.count("orders").await, before, "the DELETE must never run");
    let rows = body["agentResponse"]["evaluation"]["results"].as_array().cloned().unwrap_or_default();
    assert_eq!(rows.len(), 1, "{body:#}");
    assert_eq!(int_of(&rows[0]["n"]), Some(2), "{body:#}");

    let calls = h.llm.calls();
    assert_eq!(calls.len(), 2, "one repair");
    let repair = added_messages(&calls[0], &calls[1]);
    assert!(repair.contains(delete), "the repair request shows the refused SQL:\n{repair}");
    let lower = repair.to_lowercase();
    assert!(
        lower.contains("not allowed") || lower.contains("refused"),
        "the repair request says it was refused:\n{repair}"
    );
}

async fn gives_up_when_retries_run_out(backend: Backend) {
    let Some(h) = Harness::start(backend).await else { return };
    let broken = "SELECT nme FROM customers";
    for _ in 0..4 {
        h.llm.answer_sql("List customer names", broken);
    }
    let chat = chat_id("exhausted");
    let reply =
        h.server.inference("sqlQueryEngine", &chat, &json!({"basePrompt": "Customer names?", "retryCount": 2})).await;
    let body = reply.expect(200);

    let evaluation = &body["agentResponse"]["evaluation"];
    assert_eq!(evaluation["results"], json!([]), "a failed answer has no rows: {body:#}");
    let observation = evaluation["currentObservation"].as_str().unwrap_or_default();
    assert!(observation.contains(h.db.unknown_column_error()), "the observation carries the last error: {body:#}");
    assert!(sql_at(&body, "/agentResponse/evaluation/currentQuery").contains("nme"), "{body:#}");
    assert_eq!(h.llm.calls().len(), 3, "the first attempt and retryCount = 2 repairs, no more");
    assert_eq!(h.llm.pending(), 1);
}

async fn generation_only_does_not_run_the_query(backend: Backend) {
    let Some(h) = Harness::start(backend).await else { return };
    // This SQL fails when run; had the route run it, the error would have cost a repair call.
    h.llm.answer_sql("List customer names", "SELECT nme FROM customers");
    h.llm.answer_sql("spare answer", PARIS_SQL);
    let chat = chat_id("generation");
    let extra = json!({"k": "v"});
    let body = h
        .server
        .inference("sqlQueryGeneration", &chat, &json!({"basePrompt": "Customer names?", "extraPayload": extra}))
        .await
        .expect(200);

    assert_eq!(body["code"], 200);
    assert_eq!(body["status"], format!("[ {chat} | SQL Generation ]: Generation executed successfully."));
    assert_eq!(body["chatID"], chat);
    assert_eq!(body["extraPayload"], extra);
    assert_eq!(body["agentResponse"]["generation"]["queryDescription"], "List customer names");
    assert!(sql_at(&body, "/agentResponse/generation/sqlQuery").contains("nme"), "{body:#}");
    assert!(body["agentResponse"].get("evaluation").is_none(), "generation only has no evaluation: {body:#}");
    assert_eq!(h.llm.calls().len(), 1, "not executed, so nothing to repair");
    assert_eq!(h.llm.pending(), 1);
}

async fn evaluation_runs_given_sql_and_refuses_writes(backend: Backend) {
    let Some(h) = Harness::start(backend).await else { return };
    let chat = chat_id("evaluation");
    let before = h.db.count("orders").await;

    // Valid SQL runs as given, without the model.
    let body = h
        .server
        .inference(
            "sqlQueryEvaluation",
            &chat,
            &json!({
                "basePrompt": "How many orders are paid?",
                "baseQuery": "SELECT COUNT(*) AS n FROM orders WHERE status = 'paid'",
                "baseDescription": "Count paid orders.",
                "retryCount": 1,
                "extraPayload": [1, "two"],
            }),
        )
        .await
        .expect(200);
    assert_eq!(body["status"], format!("[ {chat} | SQL Evaluation ]: Evaluation executed successfully."));
    assert_eq!(body["extraPayload"], json!([1, "two"]));
    assert!(body["agentResponse"].get("generation").is_none(), "{body:#}");
    let rows = body["agentResponse"]["evaluation"]["results"].as_array().cloned().unwrap_or_default();
    assert_eq!(rows.len(), 1, "{body:#}");
    assert_eq!(int_of(&rows[0]["n"]), Some(5), "{body:#}");
    assert_eq!(h.llm.calls().len(), 0, "SQL that works needs no model");

    // Given SQL that fails in the database is repaired by the model.
    h.llm.answer_sql(PARIS_PLAN, PARIS_SQL);
    let broken = "SELECT nme FROM customers WHERE city = 'Paris'";
    let body = h
        .server
        .inference(
            "sqlQueryEvaluation",
            &chat,
            &json!({"basePrompt": PARIS_QUESTION, "baseQuery": broken, "baseDescription": PARIS_PLAN, "retryCount": 1}),
        )
        .await
        .expect(200);
    assert_eq!(body["agentResponse"]["evaluation"]["results"], paris_rows(), "{body:#}");
    let calls = h.llm.calls();
    assert_eq!(calls.len(), 1, "one repair");
    let prompt = calls[0].transcript();
    assert!(
        prompt.contains(broken) && prompt.contains(h.db.unknown_column_error()),
        "the repair shows SQL and error:\n{prompt}"
    );

    // Given SQL that writes is refused and never handed to the model to rewrite, whatever
    // `retryCount` allows; with no answer scripted, a model call would fail the request.
    for (write, retry_count) in [("DELETE FROM orders", 2), ("SELECT COUNT(*) FROM orders; DELETE FROM orders", 0)] {
        let body = h
            .server
            .inference(
                "sqlQueryEvaluation",
                &chat,
                &json!({
                    "basePrompt": "How many orders are there?",
                    "baseQuery": write,
                    "baseDescription": "Count orders.",
                    "retryCount": retry_count,
                }),
            )
            .await
            .expect(200);
        assert_eq!(h.db.count("orders").await, before, "{write:?} must never run");
        let evaluation = &body["agentResponse"]["evaluation"];
        assert_eq!(evaluation["results"], json!([]), "{body:#}");
        assert_eq!(evaluation["currentQuery"], write, "{body:#}");
        let observation = evaluation["currentObservation"].as_str().unwrap_or_default().to_lowercase();
        assert!(
            observation.contains("refused") || observation.contains("not allowed"),
            "the observation says why: {body:#}"
        );
    }
    assert_eq!(h.llm.calls().len(), 1, "refused SQL is not the model's to rewrite");
}

async fn a_follow_up_sees_the_previous_turn(backend: Backend) {
    let Some(h) = Harness::start(backend).await else { return };
    let follow_up_sql =
        "SELECT COUNT(*) AS n FROM orders o JOIN customers c ON c.id = o.customer_id WHERE c.city = 'Paris'";
    h.llm.answer_sql(PARIS_PLAN, PARIS_SQL);
    h.llm.answer_sql("Count the orders of customers in Paris", follow_up_sql);
    h.llm.answer_sql("Count all orders", "SELECT COUNT(*) AS n FROM orders");
    let chat = chat_id("follow-up");

    let first = h.server.inference("sqlQueryEngine", &chat, &json!({"basePrompt": PARIS_QUESTION})).await.expect(200);
    assert_eq!(first["agentResponse"]["evaluation"]["results"], paris_rows());
    let follow_up = "How many orders did they place?";
    let second = h.server.inference("sqlQueryEngine", &chat, &json!({"basePrompt": follow_up})).await.expect(200);
    let rows = second["agentResponse"]["evaluation"]["results"].as_array().cloned().unwrap_or_default();
    assert_eq!(rows.len(), 1, "{second:#}");
    assert_eq!(int_of(&rows[0]["n"]), Some(4), "{second:#}");

    // Another chat id is another conversation.
    let other =
        h.server.inference("sqlQueryEngine", &chat_id("other"), &json!({"basePrompt": follow_up})).await.expect(200);
    assert_eq!(int_of(&other["agentResponse"]["evaluation"]["results"][0]["n"]), Some(8), "{other:#}");

    let calls = h.llm.calls();
    assert_eq!(calls.len(), 3);
    let second_prompt = calls[1].transcript();
    assert!(second_prompt.contains(PARIS_QUESTION), "the follow-up's prompt has the first question:\n{second_prompt}");
    assert!(second_prompt.contains(PARIS_SQL), "the follow-up's prompt has the first answer's SQL:\n{second_prompt}");
    assert!(calls[1].last_user_message().contains(follow_up));
    let other_prompt = calls[2].transcript();
    assert!(
        !other_prompt.contains(PARIS_QUESTION) && !other_prompt.contains(PARIS_SQL),
        "a new chat id must not see another conversation:\n{other_prompt}"
    );
}

async fn an_empty_result_is_checked_once(backend: Backend) {
    let Some(h) = Harness::start(backend).await else { return };
    let rome = "SELECT name FROM customers WHERE city = 'Rome'";
    for _ in 0..3 {
        h.llm.answer_sql("List the customers who live in Rome", rome);
    }
    let body = h
        .server
        .inference(
            "sqlQueryEngine",
            &chat_id("empty"),
            &json!({"basePrompt": "Which customers live in Rome?", "retryCount": 3}),
        )
        .await
        .expect(200);
    let evaluation = &body["agentResponse"]["evaluation"];
    assert_eq!(evaluation["results"], json!([]), "{body:#}");
    assert_eq!(evaluation["currentObservation"], "Query executed successfully and returned 0 rows.", "{body:#}");
    let calls = h.llm.calls();
    assert_eq!(calls.len(), 2, "no rows is questioned once, then accepted when the model keeps the query");
    let note = added_messages(&calls[0], &calls[1]).to_lowercase();
    assert!(note.contains("no rows"), "the second request says the query returned no rows:\n{note}");
}

async fn the_row_limit_caps_results(backend: Backend) {
    let Some(h) = Harness::start_with(backend, |s| s.env("QUARRY_ROW_LIMIT", "3")).await else { return };
    h.llm.answer_sql("List order ids", "SELECT id FROM orders ORDER BY id");
    let body = h
        .server
        .inference("sqlQueryEngine", &chat_id("row-limit"), &json!({"basePrompt": "Order ids?"}))
        .await
        .expect(200);
    let ids: Vec<Option<i64>> = body["agentResponse"]["evaluation"]["results"]
        .as_array()
        .map(|rows| rows.iter().map(|r| int_of(&r["id"])).collect())
        .unwrap_or_default();
    assert_eq!(ids, [Some(1), Some(2), Some(3)], "QUARRY_ROW_LIMIT=3 keeps the first three rows: {body:#}");
    assert!(h.llm.calls()[0].transcript().contains("3 rows"), "the prompt states the row limit");
}

/// SQL Query Engine's `POSTGRES_*` variables select the database when `QUARRY_DATABASE_URL` is
/// not set.
#[tokio::test]
async fn postgres_variables_select_the_database() {
    let Some(db) = quarry_e2e::Fixture::with_read_only_user(Backend::Postgres).await else { return };
    let llm = quarry_e2e::FakeLlm::start().await;
    let mut builder = ServerBuilder::new().llm(&llm);
    for (key, value) in db.postgres_vars() {
        builder = builder.env(key, &value);
    }
    let server = builder.start().await;
    llm.answer_sql(PARIS_PLAN, PARIS_SQL);
    let body = server
        .inference("sqlQueryEngine", &chat_id("pg-vars"), &json!({"basePrompt": PARIS_QUESTION}))
        .await
        .expect(200);
    assert_eq!(body["agentResponse"]["evaluation"]["results"], paris_rows(), "{body:#}");
}

/// SQL Query Engine's per-request query parameters (`llmBaseURL`, `llmModel`, `llmAPIKey`,
/// `postgreHost`, …) configure a server that has neither a model nor a database of its own; the
/// key and password they carry are not logged.
#[tokio::test]
async fn query_parameters_configure_the_connection() {
    let Some(db) = quarry_e2e::Fixture::with_read_only_user(Backend::Postgres).await else { return };
    let llm = quarry_e2e::FakeLlm::start().await;
    let server = ServerBuilder::new().start().await;
    let chat = chat_id("params");

    // Without the parameters the server says what is missing.
    let reply = server.inference("sqlQueryEngine", &chat, &json!({"basePrompt": PARIS_QUESTION})).await;
    let body = reply.expect(500);
    let error = body["error"].as_str().unwrap_or_default();
    for missing in ["LLM_BASE_URL", "LLM_MODEL", "POSTGRES_HOST"] {
        assert!(error.contains(missing), "the error names everything missing, {missing} too: {body:#}");
    }

    let key = format!("sk-param-{}", uuid::Uuid::new_v4().simple());
    let vars: std::collections::HashMap<&str, String> = db.postgres_vars().into_iter().collect();
    let mut url = url::Url::parse(&server.url(&format!("/inference/sqlQueryEngine/{chat}"))).expect("a URL");
    url.query_pairs_mut()
        .append_pair("llmBaseURL", &llm.base_url())
        .append_pair("llmModel", LLM_MODEL)
        .append_pair("llmAPIKey", &key)
        .append_pair("postgreHost", &vars["POSTGRES_HOST"])
        .append_pair("postgrePort", &vars["POSTGRES_PORT"])
        .append_pair("postgreDBName", &vars["POSTGRES_DB"])
        .append_pair("postgreUser", &vars["POSTGRES_USER"])
        .append_pair("postgrePassword", &vars["POSTGRES_PASSWORD"])
        .append_pair("redisHost", "ignored");
    llm.answer_sql(PARIS_PLAN, PARIS_SQL);
    let reply = server.send(server.http().post(url.as_str()).json_body(&json!({"basePrompt": PARIS_QUESTION}))).await;
    let body = reply.expect(200);
    assert_eq!(body["agentResponse"]["evaluation"]["results"], paris_rows(), "{body:#}");
    assert_eq!(llm.calls()[0].authorization.as_deref(), Some(format!("Bearer {key}").as_str()), "llmAPIKey is used");

    let bad_port = server
        .send(
            server
                .http()
                .post(server.url(&format!("/inference/sqlQueryEngine/{chat}?postgrePort=abc")))
                .json_body(&json!({"basePrompt": "x"})),
        )
        .await;
    assert_eq!(bad_port.expect(422)["detail"][0]["loc"], json!(["query", "postgrePort"]));

    server.assert_not_logged(&key);
    server.assert_not_logged(&vars["POSTGRES_PASSWORD"]);
}

/// A body without `basePrompt` (or with a field of the wrong type) is a 422 in FastAPI's shape,
/// and the model is never asked.
#[tokio::test]
async fn a_bad_body_is_a_422() {
    let Some(h) = Harness::start(Backend::Sqlite).await else { return };
    let chat = chat_id("bad-body");

    let reply = h.server.inference("sqlQueryEngine", &chat, &json!({"retryCount": 2})).await;
    let body = reply.expect(422);
    let detail = body["detail"].as_array().cloned().unwrap_or_default();
    assert_eq!(detail.len(), 1, "{body:#}");
    assert_eq!(detail[0]["type"], "missing");
    assert_eq!(detail[0]["loc"], json!(["body", "basePrompt"]));

    let reply =
        h.server.inference("sqlQueryEngine", &chat, &json!({"basePrompt": "Customers?", "retryCount": "five"})).await;
    let body = reply.expect(422);
    assert_eq!(body["detail"][0]["loc"], json!(["body", "retryCount"]), "{body:#}");

    let reply = h.server.inference("sqlQueryEvaluation", &chat, &json!({"basePrompt": "Customers?"})).await;
    let body = reply.expect(422);
    let missing: Vec<&Value> =
        body["detail"].as_array().map(|d| d.iter().map(|e| &e["loc"][1]).collect()).unwrap_or_default();
    assert_eq!(missing, [&json!("baseQuery"), &json!("baseDescription")], "every missing field at once: {body:#}");

    let reply = h
        .server
        .send(h.server.http().post(h.server.url(&format!("/inference/sqlQueryEngine/{chat}"))).body("{not json"))
        .await;
    assert_eq!(reply.status, 422, "{}", reply.text);

    assert!(h.llm.calls().is_empty(), "the model is never asked for an invalid request");
}

/// When the model cannot be reached the route answers 500 with SQL Query Engine's error body.
#[tokio::test]
async fn an_unreachable_model_is_a_500_with_the_reference_body() {
    let Some(db) = quarry_e2e::Fixture::create(Backend::Sqlite).await else { return };
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("address");
    let server = ServerBuilder::new()
        .database(&db)
        .env("LLM_PROVIDER", "openai")
        .env("LLM_BASE_URL", &format!("http://{closed}/v1"))
        .env("LLM_MODEL", LLM_MODEL)
        .env("LLM_API_KEY", DEFAULT_LLM_KEY)
        .start()
        .await;

    let reply = server.inference("sqlQueryEngine", &chat_id("no-llm"), &json!({"basePrompt": PARIS_QUESTION})).await;
    let body = reply.expect(500);
    assert_eq!(body["code"], 500);
    let error = body["error"].as_str().unwrap_or_default();
    assert!(!error.is_empty(), "{body:#}");
    assert_eq!(body["status"], format!("[ SQL Query Engine ]: {error}"));

    assert_eq!(server.get("/ping").await.status, 200, "the server carries on");
}
