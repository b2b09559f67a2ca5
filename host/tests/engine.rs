//! The pipeline end to end: [`Engine`] with the real built-in plugins, a scripted
//! OpenAI-compatible model (a local server answering in order and recording every request), and
//! real databases — a SQLite file always, PostgreSQL and MariaDB/MySQL when
//! `QUARRY_TEST_POSTGRES_URL` / `QUARRY_TEST_MYSQL_URL` are set (each test works in its own
//! schema or database, `quarry_e_<random>`, dropped at the end).
//!
//! Each test says what the model answers and checks what the engine did with it: the attempts,
//! the final SQL and rows, what the model was told on repair, and what the database holds after.

mod support;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use quarry::config::PipelineSettings;
use quarry::db::{ConnectOptions, DatabaseUrl};
use quarry::llm::ProviderSpec;
use quarry::pipeline::{
    Answer, AnswerStatus, Engine, EngineConfig, EngineError, Overrides, Progress, ProgressSink, Question, Stage,
};
use quarry::plugins::{PluginRegistry, Runtime, RuntimeConfig};
use quarry::schema::PrivacyPolicy;
use quarry::store::Store;
use serde_json::{Value, json};
use sqlx::{Connection, Executor};
use support::{FakeServer, openai_chat_sse};
use tokio::sync::OnceCell;

const CHAT: &str = "/v1/chat/completions";

/// The built-in plugins, loaded once for the whole binary.
async fn registry() -> Arc<PluginRegistry> {
    static REGISTRY: OnceCell<Arc<PluginRegistry>> = OnceCell::const_new();
    REGISTRY
        .get_or_init(|| async {
            let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("plugin-artifact-cache");
            let runtime =
                Runtime::new(RuntimeConfig { cache_dir: Some(cache), ..RuntimeConfig::default() }).expect("runtime");
            let registry = PluginRegistry::load(runtime, None).await;
            assert!(registry.current().problems.is_empty(), "load problems: {:?}", registry.current().problems);
            registry
        })
        .await
        .clone()
}

fn unique(prefix: &str) -> String {
    format!("{prefix}{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
}

// ---------------------------------------------------------------------------------------------
// Databases

/// The test tables (the same rows on every engine):
/// customers(id, name, country): 1 Ann DE, 2 Bob FR, 3 Cid DE;
/// orders(id, customer_id, total_cents, status): 4 orders, none `refunded`.
const TABLES: &[&str] = &[
    "CREATE TABLE {q}customers (id INTEGER PRIMARY KEY, name VARCHAR(40) NOT NULL, country VARCHAR(2) NOT NULL)",
    "CREATE TABLE {q}orders (id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL REFERENCES {q}customers(id), total_cents INTEGER NOT NULL, status VARCHAR(20) NOT NULL)",
    "INSERT INTO {q}customers (id, name, country) VALUES (1, 'Ann', 'DE'), (2, 'Bob', 'FR'), (3, 'Cid', 'DE')",
    "INSERT INTO {q}orders (id, customer_id, total_cents, status) VALUES (1, 1, 1000, 'paid'), (2, 1, 2500, 'shipped'), (3, 2, 700, 'paid'), (4, 3, 4200, 'shipped')",
];

/// One database with the test tables, and a writable side door to check what it holds.
struct Db {
    /// `sqlite`, `postgres` or `mysql`.
    name: &'static str,
    /// The URL the engine uses.
    url: String,
    /// What table names are prefixed with in SQL (`schema.` on PostgreSQL, else nothing).
    q: String,
    /// Cleanup: the schema or database to drop, and the admin URL.
    cleanup: Option<(String, String)>,
    _dir: Option<tempfile::TempDir>,
}

impl Db {
    async fn sqlite() -> Db {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("shop.db");
        let url = format!("sqlite://{}", path.display());
        // Quarry opens SQLite read-only, so the file is made by a separate writable connection.
        let opts = sqlx::sqlite::SqliteConnectOptions::new().filename(&path).create_if_missing(true);
        let mut conn = sqlx::SqliteConnection::connect_with(&opts).await.expect("create the SQLite file");
        for sql in TABLES {
            conn.execute(sqlx::AssertSqlSafe(sql.replace("{q}", ""))).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
        }
        conn.close().await.expect("close");
        Db { name: "sqlite", url, q: String::new(), cleanup: None, _dir: Some(dir) }
    }

    async fn postgres() -> Option<Db> {
        let Ok(admin) = std::env::var("QUARRY_TEST_POSTGRES_URL") else {
            eprintln!("skipped: QUARRY_TEST_POSTGRES_URL not set");
            return None;
        };
        let schema = unique("quarry_e_");
        let mut conn = sqlx::PgConnection::connect(&admin).await.expect("PostgreSQL admin connection");
        conn.execute(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}"))).await.expect("create schema");
        let q = format!("{schema}.");
        for sql in TABLES {
            conn.execute(sqlx::AssertSqlSafe(sql.replace("{q}", &q))).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
        }
        Some(Db { name: "postgres", url: admin.clone(), q, cleanup: Some((admin, schema)), _dir: None })
    }

    async fn mysql() -> Option<Db> {
        let Ok(admin) = std::env::var("QUARRY_TEST_MYSQL_URL") else {
            eprintln!("skipped: QUARRY_TEST_MYSQL_URL not set");
            return None;
        };
        let database = unique("quarry_e_");
        let mut conn = sqlx::MySqlConnection::connect(&admin).await.expect("MySQL admin connection");
        conn.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {database}"))).await.expect("create database");
        conn.execute(sqlx::AssertSqlSafe(format!("USE {database}"))).await.expect("use database");
        for sql in TABLES {
            conn.execute(sqlx::AssertSqlSafe(sql.replace("{q}", ""))).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
        }
        // The engine's URL names the test database, so unqualified names resolve there.
        let mut url = url::Url::parse(&admin).expect("QUARRY_TEST_MYSQL_URL is a URL");
        url.set_path(&database);
        Some(Db { name: "mysql", url: url.to_string(), q: String::new(), cleanup: Some((admin, database)), _dir: None })
    }

    /// Every database available: SQLite, plus PostgreSQL and MySQL when configured.
    async fn all() -> Vec<Db> {
        let mut all = vec![Db::sqlite().await];
        all.extend(Db::postgres().await);
        all.extend(Db::mysql().await);
        all
    }

    /// `sql` with `{q}` replaced by this database's table prefix.
    fn sql(&self, sql: &str) -> String {
        sql.replace("{q}", &self.q)
    }

    /// `SELECT count(*)` of `table`, through a writable connection of its own.
    async fn count(&self, table: &str) -> i64 {
        let sql = self.sql(&format!("SELECT count(*) FROM {{q}}{table}"));
        match self.name {
            "sqlite" => {
                let mut c = sqlx::SqliteConnection::connect(&self.url).await.expect("connect");
                sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).fetch_one(&mut c).await.expect("count")
            }
            "postgres" => {
                let mut c = sqlx::PgConnection::connect(&self.url).await.expect("connect");
                sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).fetch_one(&mut c).await.expect("count")
            }
            _ => {
                let mut c = sqlx::MySqlConnection::connect(&self.url).await.expect("connect");
                sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).fetch_one(&mut c).await.expect("count")
            }
        }
    }

    async fn drop(self) {
        let Some((admin, name)) = &self.cleanup else { return };
        if self.name == "postgres" {
            let mut c = sqlx::PgConnection::connect(admin).await.expect("connect");
            c.execute(sqlx::AssertSqlSafe(format!("DROP SCHEMA {name} CASCADE"))).await.expect("drop schema");
        } else {
            let mut c = sqlx::MySqlConnection::connect(admin).await.expect("connect");
            c.execute(sqlx::AssertSqlSafe(format!("DROP DATABASE {name}"))).await.expect("drop database");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The engine and the scripted model

/// A model answer in the JSON shape the prompt asks for.
fn says(sql: &str) -> support::Reply {
    openai_chat_sse(&json!({"description": "scripted plan", "sql": sql}).to_string(), (100, 20))
}

/// A fake model at `server`, and nothing else configured but `db`.
fn config(server: &FakeServer, db: &Db, settings: PipelineSettings) -> EngineConfig {
    EngineConfig {
        settings,
        database: Some(DatabaseUrl::parse(&db.url).expect("database URL")),
        llm: ProviderSpec {
            provider: Some("openai-compatible".into()),
            base_url: Some(server.url("/v1")),
            model: Some("test-model".into()),
            max_retries: Some(0),
            timeout: Some(Duration::from_secs(20)),
            ..ProviderSpec::default()
        },
        privacy: PrivacyPolicy::default(),
        connect: ConnectOptions::default(),
    }
}

async fn engine_with(server: &FakeServer, db: &Db, settings: PipelineSettings) -> Engine {
    let store = Store::open("sqlite::memory:").await.expect("store");
    Engine::new(registry().await, config(server, db, settings), store).await.expect("engine")
}

async fn new_engine(server: &FakeServer, db: &Db) -> Engine {
    engine_with(server, db, PipelineSettings::default()).await
}

fn question(text: &str) -> Question {
    Question { retry_count: 3, ..Question::new(unique("s-"), text) }
}

/// Run `call` with a progress channel read by another task; the answer and every event.
async fn collect<F, Fut>(call: F) -> (Result<Answer, EngineError>, Vec<Progress>)
where
    F: FnOnce(ProgressSink) -> Fut,
    Fut: std::future::Future<Output = Result<Answer, EngineError>>,
{
    let (sink, mut rx) = ProgressSink::channel(8);
    let reader = tokio::spawn(async move {
        let mut events = Vec::new();
        while let Some(e) = rx.recv().await {
            events.push(e);
        }
        events
    });
    let result = call(sink).await;
    (result, reader.await.expect("reader"))
}

/// The messages of the `i`-th request the model got.
fn messages(server: &FakeServer, i: usize) -> Vec<Value> {
    let requests = server.requests();
    let request = requests.get(i).unwrap_or_else(|| panic!("no request #{i}; got {}", requests.len()));
    request.json()["messages"].as_array().cloned().unwrap_or_default()
}

/// Everything the `i`-th request said, as one text.
fn request_text(server: &FakeServer, i: usize) -> String {
    messages(server, i).iter().filter_map(|m| m["content"].as_str()).collect::<Vec<_>>().join("\n")
}

fn outcomes(answer: &Answer) -> Vec<&str> {
    answer.attempts.iter().map(|a| a.outcome.as_str()).collect()
}

fn first_column(answer: &Answer) -> Vec<Value> {
    answer.results.as_ref().expect("results").rows.iter().map(|r| r[0].clone()).collect()
}

// ---------------------------------------------------------------------------------------------
// Tests

#[tokio::test]
async fn answers_on_the_first_try() {
    for db in Db::all().await {
        let server = FakeServer::start().await;
        server.reply(CHAT, says(&db.sql("SELECT name FROM {q}customers WHERE country = 'DE' ORDER BY id")));
        let engine = new_engine(&server, &db).await;
        let (answer, events) = collect(|p| engine.ask(question("Which customers are in Germany?"), p)).await;
        let answer = answer.unwrap_or_else(|e| panic!("{}: {e}", db.name));

        assert_eq!(answer.status, AnswerStatus::Executed, "{}: {answer:?}", db.name);
        assert_eq!(first_column(&answer), [json!("Ann"), json!("Cid")], "{}", db.name);
        assert_eq!(outcomes(&answer), ["ok"]);
        assert_eq!(answer.description.as_deref(), Some("scripted plan"));
        assert_eq!(answer.dialect, db.name);
        assert!(answer.sql.as_deref().is_some_and(|s| s.contains("customers")));
        assert_eq!((answer.usage.input_tokens, answer.usage.output_tokens), (100, 20), "usage is summed");
        assert!(answer.explanation.as_deref().is_some_and(|e| !e.is_empty()), "the summary explainer ran");
        assert!(!answer.message_id.is_empty());
        for stage in ["resolve", "schema", "generate", "validate", "execute", "explain", "total"] {
            assert!(
                answer.timings_ms.contains_key(stage),
                "{}: no timing for {stage}: {:?}",
                db.name,
                answer.timings_ms
            );
        }

        // The model saw the schema, the dialect and the question.
        let prompt = request_text(&server, 0);
        for needle in ["customers", "total_cents", "Which customers are in Germany?"] {
            assert!(prompt.contains(needle), "{}: the prompt lacks {needle:?}", db.name);
        }
        assert_eq!(server.requests().len(), 1);

        // Progress: stages in order, the SQL, then the whole answer last.
        let stages: Vec<Stage> = events
            .iter()
            .filter_map(|e| if let Progress::Stage { stage, .. } = e { Some(*stage) } else { None })
            .collect();
        let order = [
            Stage::Resolve,
            Stage::Schema,
            Stage::Link,
            Stage::Generate,
            Stage::Validate,
            Stage::Execute,
            Stage::Explain,
            Stage::Record,
        ];
        assert_eq!(stages, order, "{}", db.name);
        assert!(events.iter().any(|e| matches!(e, Progress::Sql { attempt: 1, .. })));
        assert!(events.iter().any(|e| matches!(e, Progress::Token(_))), "tokens stream");
        assert!(matches!(events.last(), Some(Progress::Done(a)) if a.message_id == answer.message_id));
        db.drop().await;
    }
}

#[tokio::test]
async fn a_database_error_is_repaired_with_its_message() {
    for db in Db::all().await {
        let server = FakeServer::start().await;
        server.reply(CHAT, says(&db.sql("SELECT nme FROM {q}customers")));
        server.reply(CHAT, says(&db.sql("SELECT name FROM {q}customers ORDER BY id")));
        let engine = new_engine(&server, &db).await;
        let answer = engine.ask(question("Names of all customers?"), ProgressSink::none()).await.expect("answer");

        assert_eq!(answer.status, AnswerStatus::Executed, "{}: {answer:?}", db.name);
        assert_eq!(outcomes(&answer), ["database-error", "ok"], "{}", db.name);
        assert_eq!(first_column(&answer), [json!("Ann"), json!("Bob"), json!("Cid")]);
        let error = answer.attempts[0].detail.clone().expect("the error is recorded");
        assert!(error.contains("nme"), "{}: {error}", db.name);
        // The second request repeats the failed SQL and carries the database's message.
        let repair = messages(&server, 1);
        let last = repair.last().and_then(|m| m["content"].as_str()).unwrap_or_default();
        assert!(last.contains(&error), "{}: the repair prompt lacks the error: {last}", db.name);
        assert!(request_text(&server, 1).contains("SELECT nme"), "{}", db.name);
        assert_eq!((answer.usage.input_tokens, answer.usage.output_tokens), (200, 40), "both calls are counted");
        db.drop().await;
    }
}

#[tokio::test]
async fn a_refused_query_is_repaired_and_never_runs() {
    let db = Db::sqlite().await;
    let server = FakeServer::start().await;
    server.reply(CHAT, says("DELETE FROM orders WHERE status = 'paid'"));
    server.reply(CHAT, says("SELECT count(*) AS n FROM orders WHERE status = 'paid'"));
    let engine = new_engine(&server, &db).await;
    let (answer, events) = collect(|p| engine.ask(question("How many paid orders?"), p)).await;
    let answer = answer.expect("answer");

    assert_eq!(outcomes(&answer), ["refused", "ok"]);
    assert_eq!(first_column(&answer), [json!(2)]);
    assert!(answer.attempts[0].detail.as_deref().is_some_and(|d| d.contains("not-read-only")), "{:?}", answer.attempts);
    assert!(request_text(&server, 1).contains("refused"), "the model is told why");
    assert!(events.iter().any(|e| matches!(e, Progress::AttemptFailed { attempt: 1, .. })));
    assert!(events.iter().any(|e| matches!(e, Progress::Stage { stage: Stage::Repair, .. })));
    assert_eq!(db.count("orders").await, 4, "nothing was deleted");
}

#[tokio::test]
async fn exhausted_retries_end_in_a_clear_error_with_every_attempt() {
    let db = Db::sqlite().await;
    let server = FakeServer::start().await;
    server.always(CHAT, says("SELECT nme FROM customers"));
    let engine = new_engine(&server, &db).await;
    let q = Question { retry_count: 2, ..question("Names?") };
    let (answer, events) = collect(|p| engine.ask(q, p)).await;
    let answer = answer.expect("a judged failure is an answer, not an Err");

    assert_eq!(answer.status, AnswerStatus::Error);
    assert_eq!(outcomes(&answer), ["database-error"; 3]);
    assert_eq!(server.requests().len(), 3, "first try + 2 repairs");
    let error = answer.error.clone().expect("error");
    assert!(error.contains("3 attempts") && error.contains("nme"), "{error}");
    assert_eq!(answer.sql.as_deref(), Some("SELECT nme FROM customers LIMIT 1000"), "the last SQL tried");
    assert!(answer.results.is_none() && answer.explanation.is_none());
    assert!(matches!(events.last(), Some(Progress::Done(a)) if a.status == AnswerStatus::Error));
    // Recorded as such.
    let turns = engine.store().recent_turns(&answer.session_id, 5).await.expect("turns");
    assert_eq!(turns.len(), 1);
    assert_eq!((turns[0].status.as_str(), turns[0].id.as_str()), ("error", answer.message_id.as_str()));
    assert_eq!(turns[0].attempts.as_array().map(Vec::len), Some(3));
}

#[tokio::test]
async fn a_model_answer_without_sql_is_repaired() {
    let db = Db::sqlite().await;
    let server = FakeServer::start().await;
    server.reply(CHAT, openai_chat_sse("I would need to know more about your data.", (10, 5)));
    server.reply(CHAT, says("SELECT count(*) AS n FROM customers"));
    let engine = new_engine(&server, &db).await;
    let answer = engine.ask(question("How many customers?"), ProgressSink::none()).await.expect("answer");
    assert_eq!(outcomes(&answer), ["no-sql", "ok"]);
    assert_eq!(first_column(&answer), [json!(3)]);
    assert!(request_text(&server, 1).contains("contained no SQL"));
}

#[tokio::test]
async fn rows_are_final_and_never_replaced() {
    let db = Db::sqlite().await;
    let server = FakeServer::start().await;
    server.reply(CHAT, says("SELECT name FROM customers WHERE id = 2"));
    server.reply(CHAT, says("SELECT name FROM customers WHERE id = 3"));
    let engine = new_engine(&server, &db).await;
    let answer = engine.ask(question("Who is customer 2?"), ProgressSink::none()).await.expect("answer");
    assert_eq!(first_column(&answer), [json!("Bob")]);
    assert_eq!(server.requests().len(), 1, "a result with rows is final: no second call");

    // After an empty result, the check's rows are used — and are then final too.
    let server = FakeServer::start().await;
    server.reply(CHAT, says("SELECT name FROM customers WHERE country = 'de'"));
    server.reply(CHAT, says("SELECT name FROM customers WHERE country = 'DE' ORDER BY id"));
    server.reply(CHAT, says("SELECT 'never' AS name"));
    let engine = new_engine(&server, &db).await;
    let answer = engine.ask(question("Customers in Germany?"), ProgressSink::none()).await.expect("answer");
    assert_eq!(outcomes(&answer), ["empty", "ok"]);
    assert_eq!(first_column(&answer), [json!("Ann"), json!("Cid")]);
    assert_eq!(server.requests().len(), 2);
    assert!(request_text(&server, 1).contains("returned no rows"), "the check says why");
}

#[tokio::test]
async fn an_empty_result_is_checked_once_and_kept() {
    let db = Db::sqlite().await;
    let server = FakeServer::start().await;
    server.reply(CHAT, says("SELECT id FROM orders WHERE status = 'refunded'"));
    server.reply(CHAT, says("SELECT id, total_cents FROM orders WHERE status = 'REFUNDED'"));
    server.always(CHAT, says("SELECT 'should not be asked' AS x"));
    let engine = new_engine(&server, &db).await;
    let q = Question { retry_count: 5, ..question("Which orders were refunded?") };
    let answer = engine.ask(q, ProgressSink::none()).await.expect("answer");

    assert_eq!(answer.status, AnswerStatus::Executed);
    assert_eq!(outcomes(&answer), ["empty", "empty"]);
    assert_eq!(server.requests().len(), 2, "one check only, whatever retry_count allows");
    assert_eq!(
        answer.sql.as_deref(),
        Some("SELECT id FROM orders WHERE status = 'refunded' LIMIT 1000"),
        "the first query stands"
    );
    let results = answer.results.expect("results");
    assert_eq!((results.row_count, results.columns.as_slice()), (0, ["id".to_string()].as_slice()));
    assert!(answer.error.is_none());
}

#[tokio::test]
async fn generate_only_runs_nothing() {
    let db = Db::sqlite().await;
    let server = FakeServer::start().await;
    // Would fail if it ran (no such column), which would show as a repair.
    server.reply(CHAT, says("SELECT nme FROM customers"));
    let engine = new_engine(&server, &db).await;
    let (answer, events) = collect(|p| engine.generate(question("Names?"), p)).await;
    let answer = answer.expect("answer");
    assert_eq!(answer.status, AnswerStatus::QueryOnly);
    assert_eq!(answer.sql.as_deref(), Some("SELECT nme FROM customers LIMIT 1000"));
    assert!(answer.results.is_none() && answer.explanation.is_none());
    assert_eq!(outcomes(&answer), ["ok"]);
    assert!(!events.iter().any(|e| matches!(e, Progress::Stage { stage: Stage::Execute, .. })));
    let turns = engine.store().recent_turns(&answer.session_id, 5).await.expect("turns");
    assert_eq!(turns[0].status, "query_only", "generation is recorded too");
}

#[tokio::test]
async fn evaluate_refuses_a_delete_without_asking_the_model() {
    for db in Db::all().await {
        let server = FakeServer::start().await;
        server.always(CHAT, says(&db.sql("SELECT count(*) FROM {q}orders")));
        let engine = new_engine(&server, &db).await;
        let sql = db.sql("DELETE FROM {q}orders");
        let answer = engine
            .evaluate(question("Clean up"), sql.clone(), Some("delete everything".into()), ProgressSink::none())
            .await
            .expect("answer");

        assert_eq!(answer.status, AnswerStatus::Error, "{}", db.name);
        assert_eq!(outcomes(&answer), ["refused"]);
        assert!(
            answer.error.as_deref().is_some_and(|e| e.contains("not-read-only")),
            "{}: {:?}",
            db.name,
            answer.error
        );
        assert_eq!(answer.sql.as_deref(), Some(sql.as_str()));
        assert!(server.requests().is_empty(), "{}: the model was not asked to rewrite it", db.name);
        assert_eq!(db.count("orders").await, 4, "{}: the table is unchanged", db.name);
        db.drop().await;
    }
}

#[tokio::test]
async fn evaluate_runs_good_sql_without_an_llm_and_repairs_bad_sql_with_one() {
    let db = Db::sqlite().await;
    // No LLM configured at all: a query that runs needs none.
    let store = Store::open("sqlite::memory:").await.expect("store");
    let server = FakeServer::start().await;
    let mut cfg = config(&server, &db, PipelineSettings::default());
    cfg.llm = ProviderSpec::default();
    let engine = Engine::new(registry().await, cfg, store).await.expect("engine");
    let answer = engine
        .evaluate(
            question("How many orders?"),
            "SELECT count(*) AS n FROM orders".into(),
            Some("count orders".into()),
            ProgressSink::none(),
        )
        .await
        .expect("answer");
    assert_eq!((answer.status, first_column(&answer)), (AnswerStatus::Executed, vec![json!(4)]));
    assert_eq!(answer.description.as_deref(), Some("count orders"));
    // A broken one cannot be repaired without a model, and says so.
    let answer = engine
        .evaluate(question("How many?"), "SELECT count(*) FROM ordrs".into(), None, ProgressSink::none())
        .await
        .expect("answer");
    assert_eq!(answer.status, AnswerStatus::Error);
    assert!(
        answer.error.as_deref().is_some_and(|e| e.contains("ordrs") && e.contains("LLM_BASE_URL")),
        "{:?}",
        answer.error
    );

    // With a model, database errors and parse errors are repaired like generated SQL.
    server.reply(CHAT, says("SELECT count(*) AS n FROM orders"));
    server.reply(CHAT, says("SELECT count(*) AS n FROM customers"));
    let engine = new_engine(&server, &db).await;
    let answer = engine
        .evaluate(question("How many orders?"), "SELECT count(*) FROM ordrs".into(), None, ProgressSink::none())
        .await
        .expect("answer");
    assert_eq!((outcomes(&answer), first_column(&answer)), (vec!["database-error", "ok"], vec![json!(4)]));
    let answer = engine
        .evaluate(question("How many customers?"), "SELEC count(*) FROM customers".into(), None, ProgressSink::none())
        .await
        .expect("answer");
    assert_eq!((outcomes(&answer), first_column(&answer)), (vec!["refused", "ok"], vec![json!(3)]));
}

#[tokio::test]
async fn a_follow_up_sees_the_previous_turn() {
    let db = Db::sqlite().await;
    let server = FakeServer::start().await;
    server.reply(CHAT, says("SELECT name FROM customers WHERE country = 'FR'"));
    server.reply(CHAT, says("SELECT count(*) AS n FROM orders WHERE customer_id = 2"));
    let engine = new_engine(&server, &db).await;
    let session = unique("s-");
    let first = Question { session_id: session.clone(), ..question("Which customers are in France?") };
    let answer = engine.ask(first, ProgressSink::none()).await.expect("first answer");
    assert_eq!(first_column(&answer), [json!("Bob")]);
    let second = Question { session_id: session.clone(), ..question("How many orders did they place?") };
    let answer = engine.ask(second, ProgressSink::none()).await.expect("second answer");
    assert_eq!(first_column(&answer), [json!(1)]);

    let follow_up = request_text(&server, 1);
    assert!(follow_up.contains("Which customers are in France?"), "{follow_up}");
    assert!(follow_up.contains("WHERE country = 'FR'"), "the earlier SQL is shown");
    assert!(follow_up.contains("1 row: name=Bob"), "and a summary of its result");
    assert_eq!(messages(&server, 0).len(), 2, "the first question had no history (system + question)");
    assert_eq!(messages(&server, 1).len(), 4, "the second one has the first turn (question + answer) before it");
    let turns = engine.store().recent_turns(&session, 5).await.expect("turns");
    assert_eq!(turns.len(), 2);
}

#[tokio::test]
async fn a_runaway_query_is_stopped_and_the_next_question_is_fine() {
    // A billion-row join (MariaDB caps recursion at 1000 iterations by default, silently, so an
    // endless recursion is not runaway there).
    let runaway = "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 1000) \
                   SELECT count(*) AS n FROM r a, r b, r c";
    for db in Db::all().await {
        let server = FakeServer::start().await;
        server.reply(CHAT, says(runaway));
        server.reply(CHAT, says(&db.sql("SELECT count(*) AS n FROM {q}customers")));
        let settings =
            PipelineSettings { statement_timeout: Duration::from_millis(500), ..PipelineSettings::default() };
        let engine = engine_with(&server, &db, settings).await;
        let started = std::time::Instant::now();
        let answer = engine.ask(question("Count forever"), ProgressSink::none()).await.expect("answer");
        assert!(started.elapsed() < Duration::from_secs(8), "{}: stopped in time ({:?})", db.name, started.elapsed());
        assert_eq!(answer.status, AnswerStatus::Error, "{}: {answer:?}", db.name);
        assert!(answer.error.as_deref().is_some_and(|e| e.contains("timeout")), "{}: {:?}", db.name, answer.error);
        assert_eq!(server.requests().len(), 1, "{}: a timeout is not repaired", db.name);

        let answer = engine.ask(question("How many customers?"), ProgressSink::none()).await.expect("answer");
        assert_eq!(first_column(&answer), [json!(3)], "{}", db.name);
        db.drop().await;
    }
}

#[tokio::test]
async fn missing_llm_configuration_is_named() {
    let db = Db::sqlite().await;
    let server = FakeServer::start().await;
    let mut cfg = config(&server, &db, PipelineSettings::default());
    cfg.llm = ProviderSpec::default();
    let store = Store::open("sqlite::memory:").await.expect("store");
    let engine = Engine::new(registry().await, cfg, store).await.expect("engine");

    assert_eq!(engine.missing_configuration(&Overrides::default()), ["LLM_BASE_URL", "LLM_MODEL"]);
    let err = engine.ask(question("Anything?"), ProgressSink::none()).await.expect_err("no LLM");
    assert!(
        matches!(&err, EngineError::MissingConfiguration(names) if names == &["LLM_BASE_URL", "LLM_MODEL"]),
        "{err:?}"
    );
    assert_eq!(err.to_string(), "Required environment variables not configured: LLM_BASE_URL, LLM_MODEL.");

    // Overrides complete it for one question.
    let overrides = Overrides {
        llm_base_url: Some(server.url("/v1")),
        llm_model: Some("test-model".into()),
        ..Overrides::default()
    };
    assert!(engine.missing_configuration(&overrides).is_empty());
    server.reply(CHAT, says("SELECT count(*) AS n FROM customers"));
    let answer = engine
        .ask(Question { overrides, ..question("How many customers?") }, ProgressSink::none())
        .await
        .expect("answer");
    assert_eq!(first_column(&answer), [json!(3)]);
}

#[tokio::test]
async fn an_unreachable_llm_or_database_is_an_error_not_an_answer() {
    let db = Db::sqlite().await;
    let server = FakeServer::start().await;
    let dead = format!("http://127.0.0.1:{}/v1", free_port());
    let engine = new_engine(&server, &db).await;
    let overrides = Overrides { llm_base_url: Some(dead), ..Overrides::default() };
    let err =
        engine.ask(Question { overrides, ..question("Hi?") }, ProgressSink::none()).await.expect_err("no LLM there");
    assert!(matches!(err, EngineError::Llm(_)) && err.to_string().starts_with("SQL generation failed:"), "{err}");

    let overrides =
        Overrides { database_url: Some("sqlite:///nonexistent/quarry/shop.db".into()), ..Overrides::default() };
    let err = engine
        .ask(Question { overrides, ..question("Hi?") }, ProgressSink::none())
        .await
        .expect_err("no database there");
    assert!(matches!(err, EngineError::Database(_)) && err.to_string().starts_with("Database unreachable:"), "{err}");
}

#[tokio::test]
async fn a_client_that_goes_away_stops_the_question() {
    let db = Db::sqlite().await;
    let server = FakeServer::start().await;
    server.always(CHAT, says("SELECT 1"));
    let engine = new_engine(&server, &db).await;
    let (sink, rx) = ProgressSink::channel(1);
    drop(rx);
    let err = engine.ask(question("Anyone there?"), sink).await.expect_err("nobody listens");
    assert!(err.to_string().contains("cancelled"), "{err}");
    assert!(server.requests().is_empty(), "the model was not called for nobody");
}

/// A local port nothing listens on.
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}
