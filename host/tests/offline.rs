//! The `offline` provider through the real pipeline: the engine builds the prompt from the demo
//! database's schema, the built-in `offline` plugin answers, the dialect plugin validates and the
//! query runs read-only — no network, no model.

mod support;

use std::time::Duration;

use quarry::config::PipelineSettings;
use quarry::db::{ConnectOptions, DatabaseUrl};
use quarry::llm::ProviderSpec;
use quarry::pipeline::{Answer, AnswerStatus, Engine, EngineConfig, Progress, ProgressSink, Question};
use quarry::schema::PrivacyPolicy;
use quarry::store::Store;
use serde_json::{Value, json};
use sqlx::Connection;
use support::product::registry;

/// A demo database (fixed anchor day) and an engine on it with the offline provider.
async fn demo_engine() -> (tempfile::TempDir, String, Engine) {
    let dir = tempfile::tempdir().expect("dir");
    let anchor = chrono::NaiveDate::from_ymd_opt(2026, 6, 30).expect("date");
    let info = quarry::demo::ensure_at(dir.path().join("demo.db"), anchor).await.expect("demo database");
    let config = EngineConfig {
        settings: PipelineSettings::default(),
        database: Some(DatabaseUrl::parse(&info.url).expect("url")),
        // The `offline` preset: the plugin never connects anywhere.
        llm: ProviderSpec {
            provider: Some("offline".into()),
            max_retries: Some(0),
            timeout: Some(Duration::from_secs(30)),
            ..ProviderSpec::default()
        },
        privacy: PrivacyPolicy::default(),
        connect: ConnectOptions::default(),
    };
    let store = Store::open("sqlite::memory:").await.expect("store");
    let engine = Engine::new(registry().await, config, store).await.expect("engine");
    (dir, info.url, engine)
}

/// Rows of `sql` run directly on the demo file.
async fn direct(url: &str, sql: &str) -> Vec<Vec<Value>> {
    use sqlx::Row;
    let mut conn = sqlx::SqliteConnection::connect(url).await.expect("open");
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql.to_string())).fetch_all(&mut conn).await.expect("query");
    rows.iter()
        .map(|r| {
            (0..r.len())
                .map(|i| {
                    r.try_get::<i64, _>(i)
                        .map(|n| json!(n))
                        .or_else(|_| r.try_get::<f64, _>(i).map(|f| json!(f)))
                        .or_else(|_| r.try_get::<String, _>(i).map(|s| json!(s)))
                        .expect("a cell")
                })
                .collect()
        })
        .collect()
}

fn rows(answer: &Answer) -> Vec<Vec<Value>> {
    answer.results.as_ref().map(|r| r.rows.clone()).unwrap_or_default()
}

fn question(text: &str) -> Question {
    Question::new(format!("offline-{}", uuid::Uuid::new_v4().simple()), text)
}

#[tokio::test]
async fn answers_demo_questions_with_the_right_rows() {
    let (_dir, url, engine) = demo_engine().await;

    let answer =
        engine.ask(question("How many customers are in Germany?"), ProgressSink::none()).await.expect("answer");
    assert_eq!(answer.status, AnswerStatus::Executed, "{answer:?}");
    assert_eq!(rows(&answer), direct(&url, "SELECT COUNT(*) FROM customers WHERE country = 'Germany'").await);
    assert!(answer.sql.as_deref().is_some_and(|s| s.contains("'Germany'")));
    assert!(answer.description.as_deref().is_some_and(|d| d.starts_with("Counts the customers")));

    let answer = engine.ask(question("Top 5 products by price"), ProgressSink::none()).await.expect("answer");
    assert_eq!(rows(&answer), direct(&url, "SELECT name, price FROM products ORDER BY price DESC LIMIT 5").await);

    let answer = engine.ask(question("Total sales by country"), ProgressSink::none()).await.expect("answer");
    let mut got = rows(&answer);
    let mut want = direct(
        &url,
        "SELECT c.country, SUM(o.total_amount) FROM orders o JOIN customers c ON c.id = o.customer_id GROUP BY c.country",
    )
    .await;
    let key = |r: &Vec<Value>| r[0].to_string();
    got.sort_by_key(key);
    want.sort_by_key(key);
    assert_eq!(got.len(), 5);
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(g[0], w[0]);
        let (a, b) = (g[1].as_f64().expect("number"), w[1].as_f64().expect("number"));
        assert!((a - b).abs() < 1e-6, "{a} != {b}");
    }

    // "in 2024" does not depend on the day the file was made.
    let answer =
        engine.ask(question("How many orders were delivered in 2024?"), ProgressSink::none()).await.expect("answer");
    let want = direct(
        &url,
        "SELECT COUNT(*) FROM orders WHERE status = 'delivered' AND order_date >= '2024-01-01' AND order_date < '2025-01-01'",
    )
    .await;
    assert_eq!(rows(&answer), want);
    assert!(want[0][0].as_i64().is_some_and(|n| n > 100), "{want:?}");
}

#[tokio::test]
async fn every_suggested_question_is_answered() {
    let (_dir, _url, engine) = demo_engine().await;
    for q in quarry::demo::SUGGESTED_QUESTIONS {
        let answer = engine.ask(question(q), ProgressSink::none()).await.expect("answer");
        assert_eq!(answer.status, AnswerStatus::Executed, "{q}: {answer:?}");
        assert!(!rows(&answer).is_empty(), "{q}");
    }
}

#[tokio::test]
async fn streams_its_answer_and_declines_clearly() {
    let (_dir, _url, engine) = demo_engine().await;
    let (sink, mut rx) = ProgressSink::channel(64);
    let reader = tokio::spawn(async move {
        let mut tokens = 0;
        while let Some(e) = rx.recv().await {
            if matches!(e, Progress::Token(_)) {
                tokens += 1;
            }
        }
        tokens
    });
    let answer = engine.ask(question("Average salary per department"), sink).await.expect("answer");
    assert_eq!(answer.status, AnswerStatus::Executed);
    assert_eq!(rows(&answer).len(), 6, "five departments and the management");
    assert!(reader.await.expect("reader") > 1, "the answer arrives in several chunks");

    let answer = engine.ask(question("What is the median order total?"), ProgressSink::none()).await.expect("answer");
    assert_ne!(answer.status, AnswerStatus::Executed);
    assert!(answer.sql.is_none());
    let error = answer.error.unwrap_or_default();
    assert!(error.contains("offline provider cannot answer this question (it did not understand"), "{error}");
    // A refusal to answer is final: the model is not asked again to repeat it.
    assert_eq!(answer.attempts.len(), 1, "{:?}", answer.attempts);
    assert_eq!(answer.attempts[0].outcome, "declined");
}
