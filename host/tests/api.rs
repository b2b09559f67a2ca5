//! The HTTP API driven in-process: the real router on a real listener (127.0.0.1, a free port),
//! with a scripted engine in place of the pipeline, so every shape SQL Query Engine's and
//! OpenAI's clients depend on is checked without an LLM or a database: `/ping`, `/v1/models`,
//! the API-key check, 422 bodies, missing-configuration bodies, the SSE framing of streamed
//! replies, cancellation when a client goes away, the body limit, `/openapi.json` and `/docs`.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use quarry::api::state::{AnswerFuture, AppState, Backend};
use quarry::config::ServerSettings;
use quarry::pipeline::{
    Answer, AnswerStatus, Attempt, EngineError, Overrides, Progress, ProgressSink, QueryResults,
    Question, Stage, TokenUsage,
};
use serde_json::{Value, json};
use tokio::sync::{Notify, oneshot};

/// What the scripted engine does with a question.
#[derive(Clone)]
enum Script {
    /// Report some progress, then answer.
    Answer(Box<Answer>),
    /// Fail with an infrastructure error.
    Fail(String),
    /// Fail because settings are missing.
    Missing(Vec<String>),
    /// Report progress until the client goes away, then say so through the notifier.
    UntilDisconnected,
}

/// A scripted [`Backend`]: records the questions it gets.
struct Fake {
    script: Script,
    missing: Vec<String>,
    seen: Mutex<Vec<(&'static str, Question, Option<String>)>>,
    disconnected: Arc<Notify>,
}

impl Fake {
    fn new(script: Script) -> Arc<Self> {
        Arc::new(Self {
            script,
            missing: Vec::new(),
            seen: Mutex::new(Vec::new()),
            disconnected: Arc::new(Notify::new()),
        })
    }

    fn missing(names: &[&str]) -> Arc<Self> {
        Arc::new(Self {
            script: Script::Missing(names.iter().map(|s| s.to_string()).collect()),
            missing: names.iter().map(|s| s.to_string()).collect(),
            seen: Mutex::new(Vec::new()),
            disconnected: Arc::new(Notify::new()),
        })
    }

    fn last(&self) -> (&'static str, Question, Option<String>) {
        self.seen
            .lock()
            .unwrap()
            .last()
            .cloned()
            .expect("the engine was called")
    }

    fn run(
        &self,
        kind: &'static str,
        q: Question,
        sql: Option<String>,
        progress: ProgressSink,
    ) -> AnswerFuture {
        self.seen.lock().unwrap().push((kind, q, sql));
        let script = self.script.clone();
        let disconnected = self.disconnected.clone();
        Box::pin(async move {
            match script {
                Script::Answer(answer) => {
                    progress.stage(Stage::Schema, "Analyzing schema...").await;
                    progress
                        .send(Progress::Token("{\"sql\": \"SEL".into()))
                        .await;
                    progress
                        .send(Progress::AttemptFailed {
                            attempt: 1,
                            reason: "relation \"order\" does not exist".into(),
                        })
                        .await;
                    progress
                        .send(Progress::Sql {
                            attempt: 2,
                            sql: "SELECT count(*) AS n FROM orders".into(),
                        })
                        .await;
                    progress.send(Progress::Done(answer.clone())).await;
                    Ok(*answer)
                }
                Script::Fail(message) => {
                    progress.stage(Stage::Generate, "Generating SQL...").await;
                    Err(EngineError::InvalidInput(message))
                }
                Script::Missing(names) => Err(EngineError::MissingConfiguration(names)),
                Script::UntilDisconnected => loop {
                    progress.stage(Stage::Generate, "Still working...").await;
                    if progress.is_closed() {
                        disconnected.notify_one();
                        return Err(EngineError::InvalidInput("cancelled".into()));
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                },
            }
        })
    }
}

impl Backend for Fake {
    fn ask(&self, q: Question, progress: ProgressSink) -> AnswerFuture {
        self.run("ask", q, None, progress)
    }
    fn generate(&self, q: Question, progress: ProgressSink) -> AnswerFuture {
        self.run("generate", q, None, progress)
    }
    fn evaluate(
        &self,
        q: Question,
        sql: String,
        _description: Option<String>,
        progress: ProgressSink,
    ) -> AnswerFuture {
        self.run("evaluate", q, Some(sql), progress)
    }
    fn missing_configuration(&self, _overrides: &Overrides) -> Vec<String> {
        self.missing.clone()
    }
}

fn answer(status: AnswerStatus) -> Answer {
    let executed = status == AnswerStatus::Executed;
    Answer {
        session_id: "s".into(),
        message_id: "m".into(),
        question: "How many orders?".into(),
        description: Some("Count the orders".into()),
        sql: executed.then(|| "SELECT count(*) AS n FROM orders".to_string()),
        dialect: "postgres".into(),
        status,
        results: executed.then(|| QueryResults {
            columns: vec!["n".into()],
            column_types: vec!["int8".into()],
            rows: vec![vec![json!(842)]],
            row_count: 1,
            truncated: false,
            execution_time_ms: 2,
        }),
        explanation: None,
        chart: None,
        error: (!executed)
            .then(|| "retries exhausted: relation \"order\" does not exist".to_string()),
        attempts: vec![
            Attempt {
                number: 1,
                sql: Some("SELECT count(*) FROM \"order\"".into()),
                outcome: "database-error".into(),
                detail: None,
            },
            Attempt {
                number: 2,
                sql: Some("SELECT count(*) AS n FROM orders".into()),
                outcome: "ok".into(),
                detail: None,
            },
        ],
        usage: TokenUsage {
            input_tokens: 120,
            output_tokens: 30,
        },
        timings_ms: BTreeMap::new(),
    }
}

fn executed() -> Script {
    Script::Answer(Box::new(answer(AnswerStatus::Executed)))
}

fn settings(keys: &[&str]) -> ServerSettings {
    ServerSettings {
        host: "127.0.0.1".into(),
        port: 0,
        bot_name: "SQLBot".into(),
        model_name: "TestBot".into(),
        api_keys: keys.iter().map(|k| k.to_string()).collect(),
        default_retry_count: 7,
        default_schema_examples: 4,
        default_feedback_examples: 2,
    }
}

/// A running server; stops when dropped.
struct Server {
    base: String,
    started: u64,
    client: reqwest::Client,
    _stop: oneshot::Sender<()>,
}

impl Server {
    async fn start(backend: Arc<Fake>, keys: &[&str]) -> Self {
        let postgres_env =
            HashMap::from([("POSTGRES_HOST".to_string(), "db.internal".to_string())]);
        let state = AppState::new(backend, settings(keys)).with_postgres_env(postgres_env);
        let started = state.started;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        let app = quarry::api::router(Arc::new(state));
        tokio::spawn(quarry::api::serve(listener, app, async {
            let _ = stopped.await;
        }));
        Self {
            base,
            started,
            client: reqwest::Client::new(),
            _stop: stop,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let response = self
            .client
            .post(self.url(path))
            .json_body(&body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.read_json().await)
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        let response = self.client.get(self.url(path)).send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.read_json().await)
    }
}

/// JSON bodies without reqwest's `json` feature (the crate does not enable it).
trait JsonBody {
    fn json_body(self, body: &Value) -> Self;
}

impl JsonBody for reqwest::RequestBuilder {
    fn json_body(self, body: &Value) -> Self {
        self.header("content-type", "application/json")
            .body(serde_json::to_vec(body).unwrap())
    }
}

trait ReadJson {
    async fn read_json(self) -> Value;
}

impl ReadJson for reqwest::Response {
    /// The body as JSON (`null` when it is not JSON).
    async fn read_json(self) -> Value {
        serde_json::from_slice(&self.bytes().await.unwrap()).unwrap_or(Value::Null)
    }
}

/// The JSON events of an SSE body, and whether it ended with `[DONE]`.
fn sse_events(body: &str) -> (Vec<Value>, bool) {
    let mut events = Vec::new();
    let mut done = false;
    for frame in body.split("\n\n").filter(|f| !f.is_empty()) {
        let data = frame
            .strip_prefix("data: ")
            .unwrap_or_else(|| panic!("not an SSE data frame: {frame:?}"));
        assert!(!done, "nothing may follow [DONE]");
        if data == "[DONE]" {
            done = true;
        } else {
            events.push(serde_json::from_str(data).unwrap());
        }
    }
    (events, done)
}

#[tokio::test]
async fn ping_has_sql_query_engines_shape() {
    let server = Server::start(Fake::new(executed()), &[]).await;
    let (status, body) = server.get("/ping").await;
    assert_eq!(status, 200);
    assert_eq!(body["code"], 200);
    assert_eq!(
        body["status"],
        "[ SQL Query Engine ]: Agent is alive and reachable."
    );
    assert_eq!(body["agent"], "sqlQueryEngine");
    assert_eq!(body["scheme"], "http");
    assert_eq!(body["host"], "127.0.0.1");
    assert_eq!(body["clientHost"], "127.0.0.1");
    assert!(
        body["port"].is_string() && body["clientPort"].is_u64(),
        "{body}"
    );
}

#[tokio::test]
async fn models_lists_the_configured_name() {
    let server = Server::start(Fake::new(executed()), &[]).await;
    let (status, body) = server.get("/v1/models").await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"object": "list", "data": [{"id": "TestBot", "object": "model", "created": server.started, "owned_by": "sql-query-engine"}]})
    );
}

#[tokio::test]
async fn v1_routes_want_a_valid_bearer_key_when_keys_are_configured() {
    let server = Server::start(Fake::new(executed()), &["k-one", "k-two"]).await;
    let expected = json!({"detail": {"error": {
        "message": "Invalid API key. Provide a valid key in 'Authorization: Bearer <key>'.",
        "type": "invalid_request_error",
        "param": null,
        "code": "invalid_api_key"
    }}});
    let missing = server
        .client
        .get(server.url("/v1/models"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 401);
    assert_eq!(missing.read_json().await, expected);
    let wrong = server
        .client
        .get(server.url("/v1/models"))
        .bearer_auth("k-three")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    assert_eq!(wrong.read_json().await, expected);
    // The key is checked before the body: an invalid body with a bad key is still a 401.
    let bad_body = server
        .client
        .post(server.url("/v1/chat/completions"))
        .body("{")
        .send()
        .await
        .unwrap();
    assert_eq!(bad_body.status(), 401);
    let right = server
        .client
        .get(server.url("/v1/models"))
        .bearer_auth("k-two")
        .send()
        .await
        .unwrap();
    assert_eq!(right.status(), 200);
    // The other families need no key.
    assert_eq!(server.get("/ping").await.0, 200);
}

#[tokio::test]
async fn cors_preflight_needs_no_key() {
    let server = Server::start(Fake::new(executed()), &["k"]).await;
    let response = server
        .client
        .request(reqwest::Method::OPTIONS, server.url("/v1/chat/completions"))
        .header("origin", "http://localhost:3000")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization,content-type",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["access-control-allow-origin"], "*");
}

#[tokio::test]
async fn bad_sql_query_engine_bodies_are_fastapi_422s() {
    let fake = Fake::new(executed());
    let server = Server::start(fake.clone(), &[]).await;
    let body = json!({"retryCount": 3});
    let (status, error) = server
        .post("/inference/sqlQueryEngine/c1", body.clone())
        .await;
    assert_eq!(status, 422);
    assert_eq!(
        error,
        json!({"detail": [{"type": "missing", "loc": ["body", "basePrompt"], "msg": "Field required", "input": body}]})
    );

    let (status, error) = server
        .post(
            "/inference/sqlQueryEngine/c1",
            json!({"basePrompt": 5, "retryCount": "many"}),
        )
        .await;
    assert_eq!(status, 422);
    let kinds: Vec<&str> = error["detail"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["string_type", "int_parsing"], "{error}");
    assert_eq!(error["detail"][1]["loc"], json!(["body", "retryCount"]));

    let (status, error) = server
        .post(
            "/inference/sqlQueryEvaluation/c1",
            json!({"basePrompt": "q"}),
        )
        .await;
    assert_eq!(status, 422);
    let missing: Vec<&Value> = error["detail"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["loc"][1])
        .collect();
    assert_eq!(missing, [&json!("baseQuery"), &json!("baseDescription")]);

    let malformed = server
        .client
        .post(server.url("/inference/sqlQueryGeneration/c1"))
        .body("{\"basePrompt\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), 422);
    let error: Value = malformed.read_json().await;
    assert_eq!(error["detail"][0]["type"], "json_invalid");
    assert_eq!(error["detail"][0]["loc"][0], "body");

    let empty = server
        .client
        .post(server.url("/inference/sqlQueryEngine/c1"))
        .send()
        .await
        .unwrap();
    assert_eq!(empty.status(), 422);

    let bad_port = server
        .client
        .post(server.url("/inference/sqlQueryEngine/c1?postgrePort=five"))
        .json_body(&json!({"basePrompt": "q"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad_port.status(), 422);
    let error: Value = bad_port.read_json().await;
    assert_eq!(error["detail"][0]["loc"], json!(["query", "postgrePort"]));
    assert!(
        fake.seen.lock().unwrap().is_empty(),
        "no invalid request reaches the engine"
    );
}

#[tokio::test]
async fn bad_openai_bodies_are_422s() {
    let fake = Fake::new(executed());
    let server = Server::start(fake.clone(), &[]).await;
    let (status, error) = server
        .post("/v1/chat/completions", json!({"model": "m"}))
        .await;
    assert_eq!(status, 422);
    assert_eq!(error["detail"][0]["loc"], json!(["body", "messages"]));
    let (status, error) = server
        .post(
            "/v1/chat/completions",
            json!({"model": "m", "messages": [{"content": "hi"}]}),
        )
        .await;
    assert_eq!(status, 422);
    assert_eq!(
        error["detail"][0]["loc"],
        json!(["body", "messages", 0, "role"])
    );
    let (status, error) = server
        .post(
            "/v1/chat/completions",
            json!({"model": "m", "messages": [{"role": "system", "content": "be nice"}]}),
        )
        .await;
    assert_eq!(status, 422);
    assert_eq!(
        error,
        json!({"detail": "No 'user' message found in the request messages."})
    );
    let (status, _) = server
        .post("/v1/completions", json!({"model": "m", "prompt": []}))
        .await;
    assert_eq!(status, 422);
    assert!(
        fake.seen.lock().unwrap().is_empty(),
        "no invalid request reaches the engine"
    );
}

#[tokio::test]
async fn missing_configuration_is_a_500_in_each_familys_shape() {
    let server = Server::start(Fake::missing(&["LLM_BASE_URL", "LLM_MODEL"]), &[]).await;
    let (status, body) = server
        .post("/inference/sqlQueryEngine/c1", json!({"basePrompt": "q"}))
        .await;
    assert_eq!(status, 500);
    let message = "Required environment variables not configured: LLM_BASE_URL, LLM_MODEL.";
    assert_eq!(
        body,
        json!({"code": 500, "status": format!("[ SQL Query Engine ]: {message}"), "error": message})
    );

    let expected = json!({"detail": {"error": {
        "message": "Required environment variables not configured: LLM_BASE_URL, LLM_MODEL. Set them in docker-compose.yml or the host environment.",
        "type": "server_error",
        "code": "missing_configuration"
    }}});
    let chat = json!({"model": "m", "messages": [{"role": "user", "content": "q"}]});
    assert_eq!(
        server.post("/v1/chat/completions", chat).await,
        (500, expected.clone())
    );
    assert_eq!(
        server
            .post("/v1/completions", json!({"model": "m", "prompt": "q"}))
            .await,
        (500, expected)
    );
}

#[tokio::test]
async fn sql_query_engine_success_shapes_and_defaults() {
    let fake = Fake::new(executed());
    let server = Server::start(fake.clone(), &[]).await;
    let extra = json!({"source": "api-call", "n": [1, 2]});
    let (status, body) = server
        .post(
            "/inference/sqlQueryEngine/test-session-001?llmModel=override-model&llmTemperature=0.2",
            json!({"basePrompt": "How many orders?", "retryCount": 2, "extraPayload": extra}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({
            "code": 200,
            "status": "[ test-session-001 | SQL Query Engine ]: Inference executed successfully.",
            "chatID": "test-session-001",
            "agentResponse": {
                "generation": {"queryDescription": "Count the orders", "sqlQuery": "SELECT count(*) FROM \"order\""},
                "evaluation": {
                    "currentQuery": "SELECT count(*) AS n FROM orders",
                    "currentObservation": "Query executed successfully and returned 1 rows.",
                    "results": [{"n": 842}]
                }
            },
            "extraPayload": extra
        })
    );
    let (kind, q, _) = fake.last();
    assert_eq!(kind, "ask");
    assert_eq!(
        (q.session_id.as_str(), q.question.as_str()),
        ("test-session-001", "How many orders?")
    );
    assert_eq!(
        (q.retry_count, q.schema_examples, q.feedback_examples),
        (2, 4, 2),
        "body values, else the server's defaults"
    );
    assert_eq!(
        (
            q.overrides.llm_model.as_deref(),
            q.overrides.llm_temperature
        ),
        (Some("override-model"), Some(0.2))
    );
    assert_eq!(
        q.overrides.database_url, None,
        "no postgre* parameter: the engine's own database"
    );

    let (status, body) = server
        .post(
            "/inference/sqlQueryGeneration/g1?postgreDBName=shop&postgreUser=ro",
            json!({"basePrompt": "q"}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        body["status"],
        "[ g1 | SQL Generation ]: Generation executed successfully."
    );
    assert_eq!(
        body["agentResponse"],
        json!({"generation": {"queryDescription": "Count the orders", "sqlQuery": "SELECT count(*) AS n FROM orders"}})
    );
    assert_eq!(body["extraPayload"], Value::Null);
    let (kind, q, _) = fake.last();
    assert_eq!(kind, "generate");
    assert_eq!(
        q.overrides.database_url.as_deref(),
        Some("postgres://ro@db.internal:5432/shop"),
        "merged over POSTGRES_*"
    );

    let (status, body) = server
        .post(
            "/inference/sqlQueryEvaluation/e1",
            json!({"basePrompt": "q", "baseQuery": "SELECT 1", "baseDescription": "one"}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        body["status"],
        "[ e1 | SQL Evaluation ]: Evaluation executed successfully."
    );
    assert_eq!(
        body["agentResponse"]["evaluation"]["results"],
        json!([{"n": 842}])
    );
    assert!(body["agentResponse"].get("generation").is_none());
    let (kind, q, sql) = fake.last();
    assert_eq!(
        (kind, sql.as_deref(), q.retry_count),
        ("evaluate", Some("SELECT 1"), 7)
    );
}

#[tokio::test]
async fn failed_attempts_still_answer_200_with_the_last_sql_and_the_error() {
    let server = Server::start(
        Fake::new(Script::Answer(Box::new(answer(AnswerStatus::Error)))),
        &[],
    )
    .await;
    let (status, body) = server
        .post("/inference/sqlQueryEngine/c1", json!({"basePrompt": "q"}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        body["agentResponse"]["evaluation"],
        json!({
            "currentQuery": "SELECT count(*) AS n FROM orders",
            "currentObservation": "retries exhausted: relation \"order\" does not exist",
            "results": []
        })
    );
    // Generation only has no place for the error: it is a 500 saying why.
    let (status, body) = server
        .post(
            "/inference/sqlQueryGeneration/c1",
            json!({"basePrompt": "q"}),
        )
        .await;
    assert_eq!(status, 500);
    assert_eq!(
        body["status"],
        "[ SQL Generation ]: retries exhausted: relation \"order\" does not exist"
    );
}

#[tokio::test]
async fn engine_failures_are_sql_query_engine_500s() {
    let server = Server::start(Fake::new(Script::Fail("boom".into())), &[]).await;
    let (status, body) = server
        .post("/inference/sqlQueryEngine/c1", json!({"basePrompt": "q"}))
        .await;
    assert_eq!(status, 500);
    assert_eq!(
        body,
        json!({"code": 500, "status": "[ SQL Query Engine ]: Invalid input: boom", "error": "Invalid input: boom"})
    );
}

#[tokio::test]
async fn chat_streams_progress_in_think_then_the_answer() {
    let fake = Fake::new(executed());
    let server = Server::start(fake.clone(), &[]).await;
    let response = server
        .client
        .post(server.url("/v1/chat/completions"))
        .json_body(&json!({"model": "whatever", "messages": [
            {"role": "user", "content": "hello"},
            {"role": "assistant", "content": "hi"},
            {"role": "user", "content": [{"type": "text", "text": "How many"}, {"type": "image_url", "image_url": {"url": "x"}}, {"type": "text", "text": "orders?"}]}
        ]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let (events, done) = sse_events(&response.text().await.unwrap());
    assert!(done, "the stream ends with [DONE]");

    let id = events[0]["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("chatcmpl-"), "{id}");
    for event in &events {
        assert_eq!(event["id"], id.as_str(), "one id per reply");
        assert_eq!(event["object"], "chat.completion.chunk");
        assert_eq!(event["model"], "TestBot");
        assert!(event["created"].is_u64());
        assert_eq!(event["choices"][0]["index"], 0);
    }
    assert_eq!(
        events[0]["choices"][0]["delta"],
        json!({"role": "assistant", "content": ""})
    );
    let pieces: Vec<&str> = events[1..events.len() - 1]
        .iter()
        .map(|e| e["choices"][0]["delta"]["content"].as_str().unwrap())
        .collect();
    assert_eq!(pieces[0], "<think>\n");
    assert_eq!(pieces[1], "Analyzing schema...\n");
    assert_eq!(
        pieces[2],
        "Attempt 1 failed: relation \"order\" does not exist\n"
    );
    assert_eq!(
        pieces[3],
        "Attempt 2:\n```sql\nSELECT count(*) AS n FROM orders\n```\n"
    );
    assert_eq!(
        pieces[4], "\n</think>\n\n",
        "raw tokens are not streamed into <think>"
    );
    let answer = pieces[5];
    assert!(
        answer.starts_with(
            "**Query plan:** Count the orders\n\n```sql\nSELECT count(*) AS n FROM orders\n```"
        ),
        "{answer}"
    );
    assert!(
        answer.contains("**Results** — 1 row(s) returned:")
            && answer.contains("| n |\n| --- |\n| 842 |"),
        "{answer}"
    );
    assert_eq!(pieces.len(), 6);
    let last = events.last().unwrap();
    assert_eq!(last["choices"][0]["delta"], json!({}));
    assert_eq!(last["choices"][0]["finish_reason"], "stop");
    for event in &events[..events.len() - 1] {
        assert_eq!(event["choices"][0]["finish_reason"], Value::Null);
    }

    let (_, q, _) = fake.last();
    assert_eq!(
        q.question, "How many\norders?",
        "the last user message, text parts only"
    );
    assert_eq!(
        q.session_id, "5d41402abc4b2a76",
        "md5 of the first user message"
    );
    assert_eq!(
        (q.retry_count, q.schema_examples, q.feedback_examples),
        (7, 4, 2)
    );
}

#[tokio::test]
async fn chat_without_streaming_is_one_completion_with_usage() {
    let fake = Fake::new(executed());
    let server = Server::start(fake.clone(), &[]).await;
    let (status, body) = server
        .post("/v1/chat/completions", json!({"model": "m", "stream": false, "chat_id": "owui-1", "messages": [{"role": "user", "content": "How many orders?"}]}))
        .await;
    assert_eq!(status, 200);
    assert!(body["id"].as_str().unwrap().starts_with("chatcmpl-"));
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["model"], "TestBot");
    assert_eq!(body["choices"][0]["index"], 0);
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    assert_eq!(body["choices"][0]["message"]["role"], "assistant");
    let content = body["choices"][0]["message"]["content"].as_str().unwrap();
    assert!(
        content.starts_with("<think>\nAnalyzing schema...\n"),
        "{content}"
    );
    assert!(
        content.contains("\n</think>\n\n**Query plan:** Count the orders"),
        "{content}"
    );
    assert_eq!(
        body["usage"],
        json!({"prompt_tokens": 120, "completion_tokens": 30, "total_tokens": 150})
    );
    assert_eq!(fake.last().1.session_id, "owui-1");
}

#[tokio::test]
async fn engine_errors_mid_stream_end_the_reply_normally() {
    let server = Server::start(Fake::new(Script::Fail("the database is down".into())), &[]).await;
    let response = server
        .client
        .post(server.url("/v1/chat/completions"))
        .json_body(&json!({"model": "m", "messages": [{"role": "user", "content": "q"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let (events, done) = sse_events(&response.text().await.unwrap());
    assert!(done);
    let text: String = events
        .iter()
        .filter_map(|e| e["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert!(
        text.ends_with("\n</think>\n\n**Error:** Invalid input: the database is down"),
        "{text}"
    );
    assert_eq!(
        events.last().unwrap()["choices"][0]["finish_reason"],
        "stop"
    );
}

#[tokio::test]
async fn text_completions_default_to_one_response() {
    let fake = Fake::new(executed());
    let server = Server::start(fake.clone(), &[]).await;
    let (status, body) = server
        .post(
            "/v1/completions",
            json!({"model": "m", "prompt": ["How many orders?", "ignored"]}),
        )
        .await;
    assert_eq!(status, 200);
    assert!(body["id"].as_str().unwrap().starts_with("cmpl-"));
    assert_eq!(body["object"], "text_completion");
    assert_eq!(body["choices"][0]["index"], 0);
    assert_eq!(body["choices"][0]["logprobs"], Value::Null);
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    assert!(
        body["choices"][0]["text"]
            .as_str()
            .unwrap()
            .contains("**Query plan:**")
    );
    assert_eq!(body["usage"]["total_tokens"], 150);
    let first = fake.last().1;
    assert_eq!(first.question, "How many orders?");

    server
        .post(
            "/v1/completions",
            json!({"model": "m", "prompt": "How many orders?"}),
        )
        .await;
    assert_ne!(
        fake.last().1.session_id,
        first.session_id,
        "a fresh session per request"
    );

    let response = server
        .client
        .post(server.url("/v1/completions"))
        .json_body(&json!({"model": "m", "prompt": "q", "stream": true}))
        .send()
        .await
        .unwrap();
    let (events, done) = sse_events(&response.text().await.unwrap());
    assert!(done);
    assert!(
        events
            .iter()
            .all(|e| e["object"] == "text_completion" && e["choices"][0]["index"] == 0)
    );
    let text: String = events
        .iter()
        .map(|e| e["choices"][0]["text"].as_str().unwrap())
        .collect();
    assert!(
        text.starts_with("<think>\n") && text.contains("\n</think>\n\n**Query plan:**"),
        "{text}"
    );
    assert_eq!(
        events.last().unwrap()["choices"][0]["finish_reason"],
        "stop"
    );
}

#[tokio::test]
async fn a_client_that_goes_away_stops_the_engine() {
    let fake = Fake::new(Script::UntilDisconnected);
    let server = Server::start(fake.clone(), &[]).await;
    let response = server
        .client
        .post(server.url("/v1/chat/completions"))
        .json_body(&json!({"model": "m", "messages": [{"role": "user", "content": "q"}]}))
        .send()
        .await
        .unwrap();
    let mut body = response.bytes_stream();
    let mut seen = String::new();
    while !seen.contains("Still working...") {
        seen.push_str(&String::from_utf8_lossy(
            &body.next().await.unwrap().unwrap(),
        ));
    }
    drop(body);
    tokio::time::timeout(Duration::from_secs(10), fake.disconnected.notified())
        .await
        .expect("the engine saw the client go away");
}

#[tokio::test]
async fn bodies_over_the_limit_are_413() {
    let server = Server::start(Fake::new(executed()), &[]).await;
    let big = vec![b' '; quarry::api::MAX_BODY_BYTES + 1];
    let response = server
        .client
        .post(server.url("/inference/sqlQueryEngine/c1"))
        .body(big.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    // Without a Content-Length, the limit is enforced while reading.
    let chunks = futures::stream::iter(
        big.chunks(64 * 1024)
            .map(|c| Ok::<_, std::io::Error>(c.to_vec()))
            .collect::<Vec<_>>(),
    );
    let response = server
        .client
        .post(server.url("/v1/chat/completions"))
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
}

#[tokio::test]
async fn openapi_lists_every_route_and_docs_serve_swagger_ui() {
    let server = Server::start(Fake::new(executed()), &[]).await;
    let (status, spec) = server.get("/openapi.json").await;
    assert_eq!(status, 200);
    let paths = spec["paths"].as_object().unwrap();
    for (path, method) in [
        ("/ping", "get"),
        ("/inference/sqlQueryEngine/{chatID}", "post"),
        ("/inference/sqlQueryGeneration/{chatID}", "post"),
        ("/inference/sqlQueryEvaluation/{chatID}", "post"),
        ("/v1/models", "get"),
        ("/v1/chat/completions", "post"),
        ("/v1/completions", "post"),
    ] {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} is documented"
        );
    }
    let engine = &paths["/inference/sqlQueryEngine/{chatID}"]["post"];
    let params: Vec<&str> = engine["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    for name in [
        "chatID",
        "llmBaseURL",
        "llmAPIKey",
        "llmModel",
        "llmTemperature",
        "postgreHost",
        "postgrePort",
        "postgreDBName",
        "redisDB",
    ] {
        assert!(params.contains(&name), "{name} in {params:?}");
    }
    let schemas = spec["components"]["schemas"].as_object().unwrap();
    let request = &schemas["QueryEngineRequest"];
    assert_eq!(request["required"], json!(["basePrompt"]), "{request}");
    assert!(request["properties"]["retryCount"].is_object());

    let docs = server.client.get(server.url("/docs")).send().await.unwrap();
    assert_eq!(docs.status(), 200);
    let html = docs.text().await.unwrap();
    assert!(
        html.contains("swagger-ui-dist") && html.contains("\"/openapi.json\""),
        "{html}"
    );
}

#[tokio::test]
async fn unknown_routes_get_fastapis_bodies() {
    let server = Server::start(Fake::new(executed()), &[]).await;
    assert_eq!(
        server.get("/nope").await,
        (404, json!({"detail": "Not Found"}))
    );
    assert_eq!(
        server.get("/inference/sqlQueryEngine/c1").await,
        (405, json!({"detail": "Method Not Allowed"}))
    );
}
