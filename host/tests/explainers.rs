//! The built-in explainers (`summary`, `llm-summary`) end to end through the real runtime: loaded
//! from the binary like at start-up, called with real inputs in the sandbox, and — for
//! `llm-summary` — given a scripted LLM backend through the `llm` capability, to check the prompt
//! it sends and its fallback to the deterministic summary when the LLM fails.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use quarry::plugins::bindings::explainer::exports::quarry::plugin::explainer::{
    Column, ExplainInput, Explanation, Value,
};
use quarry::plugins::bindings::types::{Completion, CompletionRequest, FinishReason, ProviderError, Role};
use quarry::plugins::capabilities::llm::{LlmBackend, LlmCapability, LlmFuture};
use quarry::plugins::sandbox::Grants;
use quarry::plugins::{ExplainerPlugin, PluginRegistry, PluginSet, Runtime, RuntimeConfig};

/// The cap `llm-summary` promises for its prompt (all messages together).
const MAX_PROMPT_BYTES: usize = 8 * 1024;
/// The rows it shows the model at most.
const MAX_PROMPT_ROWS: usize = 20;

/// The built-in plugins, loaded once: compiling every built-in takes a while in a debug build.
async fn builtins() -> Arc<PluginSet> {
    static SET: tokio::sync::OnceCell<Arc<PluginSet>> = tokio::sync::OnceCell::const_new();
    SET.get_or_init(|| async {
        let runtime = Runtime::new(RuntimeConfig {
            cache_dir: Some(std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("plugin-artifact-cache")),
            ..RuntimeConfig::default()
        })
        .expect("runtime");
        PluginRegistry::load(runtime, None).await.current()
    })
    .await
    .clone()
}

async fn explainer(name: &str) -> ExplainerPlugin {
    let set = builtins().await;
    let explainer_problems: Vec<String> =
        set.problems.iter().map(|p| p.to_string()).filter(|p| p.contains("summary")).collect();
    assert!(explainer_problems.is_empty(), "explainers failed to load: {explainer_problems:#?}");
    set.explainer(name).unwrap_or_else(|| panic!("built-in explainer `{name}` is not loaded"))
}

fn col(name: &str, type_name: &str) -> Column {
    Column { name: name.into(), type_name: type_name.into() }
}

fn text(s: &str) -> Value {
    Value::Text(s.into())
}

fn input(question: &str, columns: Vec<Column>, rows: Vec<Vec<Value>>) -> ExplainInput {
    ExplainInput {
        question: question.into(),
        sql: "SELECT region, sum(amount) AS revenue FROM orders GROUP BY region".into(),
        columns,
        row_count: rows.len() as u64,
        rows,
        truncated: false,
        locale: Some("en-US".into()),
    }
}

fn regions() -> ExplainInput {
    input(
        "What is the revenue by region?",
        vec![col("region", "text"), col("revenue", "numeric")],
        vec![
            vec![text("North"), Value::Decimal("5000.50".into())],
            vec![text("South"), Value::Decimal("1200.25".into())],
            vec![text("East"), Value::Decimal("3000".into())],
            vec![text("West"), Value::Decimal("250.00".into())],
        ],
    )
}

async fn explain(plugin: &ExplainerPlugin, input: &ExplainInput, grants: Grants) -> Explanation {
    match plugin.explain(input, grants).await {
        Ok(Ok(e)) => e,
        other => panic!("`{}` failed: {other:?}", plugin.name()),
    }
}

/// A backend that records every request and answers each with `answer`.
fn scripted(answer: Result<Completion, ProviderError>) -> (LlmBackend, Arc<Mutex<Vec<CompletionRequest>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let backend: LlmBackend = Arc::new(move |req: CompletionRequest| -> LlmFuture {
        log.lock().expect("request log").push(req);
        let answer = answer.clone();
        Box::pin(async move { answer })
    });
    (backend, seen)
}

fn with_llm(backend: LlmBackend) -> Grants {
    Grants { llm: Some(LlmCapability::backed_by(backend)), ..Default::default() }
}

fn prompt_bytes(req: &CompletionRequest) -> usize {
    req.messages.iter().map(|m| m.content.len()).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn summary_states_counts_and_headline_numbers() {
    let summary = explainer("summary").await;
    let info = summary.info().await.expect("info");
    assert_eq!(info.name, "summary");

    let out = explain(&summary, &regions(), Grants::default()).await;
    assert!(out.text.contains("What is the revenue by region?"), "{}", out.text);
    assert!(out.text.contains("4 rows."), "{}", out.text);
    assert!(out.text.contains("Highest revenue: North (5,000.50); lowest: West (250.00)."), "{}", out.text);
    assert!(out.text.contains("Total revenue: 9,450.75"), "{}", out.text);
    assert_eq!(out.chart.as_deref(), Some(r#"{"type":"bar","x":"region","y":"revenue"}"#));

    let one = input("How many orders?", vec![col("count", "int8")], vec![vec![Value::Integer(1234)]]);
    let out = explain(&summary, &one, Grants::default()).await;
    assert!(out.text.contains("1 row. The answer is 1,234."), "{}", out.text);
    assert_eq!(out.chart, None);

    let none = input("Any refunds?", vec![col("id", "int8")], vec![]);
    assert!(explain(&summary, &none, Grants::default()).await.text.contains("No rows matched."));

    let months: Vec<Vec<Value>> =
        (1..=6).map(|m| vec![text(&format!("2024-{m:02}-01")), Value::Integer(m * 100)]).collect();
    let out = explain(
        &summary,
        &input("Orders per month", vec![col("month", "date"), col("orders", "int8")], months),
        Grants::default(),
    )
    .await;
    assert!(out.text.contains("The rows cover 2024-01-01 to 2024-06-01."), "{}", out.text);
    assert_eq!(out.chart.as_deref(), Some(r#"{"type":"line","x":"month","y":"orders"}"#));
}

/// Awkward cells and a large, truncated result: no trap, within the 2 s and 64 MiB limits.
///
/// 10,000 rows, not more: in a debug build of the host, copying the rows into the guest takes
/// about 10 µs a row (the guest's own work is a few hundred ns a row; `quarry-explainer-core`'s
/// native tests cover 100,000), and that copy counts against the plugin's 2 s deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn summary_survives_awkward_and_large_inputs() {
    let summary = explainer("summary").await;
    let ragged = input(
        "\u{202E}weird\n",
        vec![col("a", "numeric"), col("", "")],
        vec![
            vec![],
            vec![Value::Float(f64::NAN), Value::Float(f64::INFINITY), Value::Bytes(vec![0xff; 64])],
            vec![Value::Decimal("9".repeat(5000)), Value::Integer(i64::MIN)],
            vec![Value::Null, Value::Null],
        ],
    );
    let out = explain(&summary, &ragged, Grants::default()).await;
    assert!(out.text.contains("4 rows."), "{}", out.text);

    let rows: Vec<Vec<Value>> = (0..10_000)
        .map(|i| vec![text(&format!("store {i}")), Value::Integer(i % 1000), Value::Float(i as f64 / 3.0)])
        .collect();
    let mut big =
        input("Orders per store", vec![col("store", "text"), col("orders", "int8"), col("avg_basket", "float8")], rows);
    big.row_count = 250_000;
    big.truncated = true;
    // The plugin's own 2 s deadline is the time limit that matters here; this shows the margin.
    let started = Instant::now();
    let out = explain(&summary, &big, Grants::default()).await;
    eprintln!("summary of 10,000 rows took {:?}", started.elapsed());
    assert!(out.text.contains("250,000 rows (showing the first 10,000)."), "{}", out.text);
    assert!(out.text.contains("Highest orders in the rows shown: store 999 (999)"), "{}", out.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn llm_summary_sends_a_capped_prompt_and_returns_the_completion() {
    let llm = explainer("llm-summary").await;
    let reply = Completion {
        text: "\n  North brought in the most revenue (5,000.50), West the least (250.00).  ".into(),
        finish: FinishReason::Stop,
        usage: None,
        model: Some("scripted".into()),
    };
    let (backend, seen) = scripted(Ok(reply));
    let out = explain(&llm, &regions(), with_llm(backend)).await;
    assert_eq!(out.text, "North brought in the most revenue (5,000.50), West the least (250.00).");
    assert_eq!(out.chart.as_deref(), Some(r#"{"type":"bar","x":"region","y":"revenue"}"#));

    let requests = seen.lock().expect("request log").clone();
    assert_eq!(requests.len(), 1, "one completion per explain");
    let req = &requests[0];
    assert!(matches!(req.messages.first().map(|m| &m.role), Some(Role::System)));
    let system = &req.messages[0].content;
    assert!(system.contains("2 to 4") && system.contains("same language as the question"), "{system}");
    let user: String =
        req.messages.iter().filter(|m| matches!(m.role, Role::User)).map(|m| m.content.as_str()).collect();
    assert!(user.contains("What is the revenue by region?"), "{user}");
    assert!(user.contains("region (text)") && user.contains("revenue (numeric)"), "{user}");
    assert!(user.contains("North,5000.50"), "{user}");
    assert!(prompt_bytes(req) <= MAX_PROMPT_BYTES);

    // A big result still makes a small prompt.
    let (backend, seen) =
        scripted(Ok(Completion { text: "Many notes.".into(), finish: FinishReason::Stop, usage: None, model: None }));
    let rows: Vec<Vec<Value>> = (0..5000).map(|i| vec![Value::Integer(i), text(&"note ".repeat(100))]).collect();
    let big = input("Show all notes", vec![col("id", "int8"), col("note", "text")], rows);
    assert_eq!(explain(&llm, &big, with_llm(backend)).await.text, "Many notes.");
    let requests = seen.lock().expect("request log").clone();
    let req = &requests[0];
    assert!(prompt_bytes(req) <= MAX_PROMPT_BYTES, "{} bytes", prompt_bytes(req));
    let user = &req.messages[1].content;
    assert!(user.contains("Show all notes") && user.contains("id,note"), "{user}");
    let data_rows = user.lines().filter(|l| l.split(',').next().is_some_and(|c| c.parse::<i64>().is_ok())).count();
    assert!((1..=MAX_PROMPT_ROWS).contains(&data_rows), "{data_rows} rows in the prompt");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn llm_summary_falls_back_to_the_summary_when_the_llm_fails() {
    let llm = explainer("llm-summary").await;
    let summary = explainer("summary").await;
    let expected = explain(&summary, &regions(), Grants::default()).await;

    let (backend, seen) = scripted(Err(ProviderError::Upstream((503, "overloaded".into()))));
    let out = explain(&llm, &regions(), with_llm(backend)).await;
    assert_eq!(seen.lock().expect("request log").len(), 1);
    assert_eq!((&out.text, &out.chart), (&expected.text, &expected.chart));
    assert!(out.text.contains("Total revenue: 9,450.75"), "{}", out.text);

    // No LLM granted at all: the host denies the import, and the plugin still answers.
    let out = explain(&llm, &regions(), Grants::default()).await;
    assert_eq!((&out.text, &out.chart), (&expected.text, &expected.chart));
}
