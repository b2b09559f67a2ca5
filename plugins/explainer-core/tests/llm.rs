//! The `llm-summary` logic, natively, with scripted completions in place of the host's `llm`
//! import: what the prompt carries, its caps, and the fallback to the deterministic summary.

use std::cell::Cell;

use quarry_explainer_core::bindings::quarry::plugin::types::{Completion, CompletionRequest, FinishReason, ProviderError, Role};
use quarry_explainer_core::{Column, ExplainInput, Value, llm, summarize};

fn col(name: &str, type_name: &str) -> Column {
    Column { name: name.into(), type_name: type_name.into() }
}

fn regions() -> ExplainInput {
    ExplainInput {
        question: "Welche Region hat den höchsten Umsatz?".into(),
        sql: "SELECT region,\n       sum(amount) AS revenue\nFROM orders GROUP BY region".into(),
        columns: vec![col("region", "text"), col("revenue", "numeric")],
        rows: vec![
            vec![Value::Text("North".into()), Value::Decimal("5000.50".into())],
            vec![Value::Text("South, East".into()), Value::Decimal("1200.25".into())],
        ],
        row_count: 2,
        truncated: false,
        locale: Some("de-DE".into()),
    }
}

fn completion(text: &str) -> Completion {
    Completion { text: text.into(), finish: FinishReason::Stop, usage: None, model: Some("scripted".into()) }
}

fn prompt_bytes(req: &CompletionRequest) -> usize {
    req.messages.iter().map(|m| m.content.len()).sum()
}

/// The data lines of the prompt's CSV table (after its title line).
fn table_rows(user: &str) -> Vec<&str> {
    let mut lines = user.lines().skip_while(|l| !l.contains("rows as CSV"));
    lines.next();
    // The first line after the title is the header.
    lines.skip(1).collect()
}

#[test]
fn prompt_carries_question_sql_columns_and_rows() {
    let req = llm::request(&regions());
    assert_eq!(req.messages.len(), 2);
    assert!(matches!(req.messages[0].role, Role::System));
    assert!(matches!(req.messages[1].role, Role::User));
    let system = &req.messages[0].content;
    assert!(system.contains("2 to 4"), "{system}");
    assert!(system.contains("never invent"), "{system}");
    assert!(system.contains("same language as the question"), "{system}");
    let user = &req.messages[1].content;
    assert!(user.contains("Question: Welche Region hat den höchsten Umsatz?"), "{user}");
    assert!(user.contains("Reader's locale: de-DE"), "{user}");
    assert!(user.contains("SQL: SELECT region, sum(amount) AS revenue FROM orders GROUP BY region"), "{user}");
    assert!(user.contains("Columns: region (text), revenue (numeric)"), "{user}");
    assert!(user.contains("Rows: 2."), "{user}");
    assert!(user.contains("Total revenue: 6,200.75"), "the deterministic facts are in the prompt: {user}");
    assert!(user.contains("All 2 rows as CSV"), "{user}");
    assert_eq!(table_rows(user), ["North,5000.50", "\"South, East\",1200.25"]);
    assert_eq!(req.max_tokens, Some(400));
    assert!(!req.json_mode);
}

#[test]
fn prompt_is_capped() {
    let columns: Vec<Column> = (0..50).map(|i| col(&format!("column_{i}_{}", "x".repeat(60)), "text")).collect();
    let rows: Vec<Vec<Value>> = (0..10_000).map(|i| (0..50).map(|j| Value::Text(format!("{i}-{j}-{}", "y".repeat(500)))).collect()).collect();
    let inp = ExplainInput {
        question: "q".repeat(100_000),
        sql: "SELECT ".repeat(100_000),
        columns,
        rows,
        row_count: 10_000_000,
        truncated: true,
        locale: Some("x".repeat(1000)),
    };
    let req = llm::request(&inp);
    assert!(prompt_bytes(&req) <= llm::MAX_PROMPT_BYTES, "{} bytes", prompt_bytes(&req));
    let user = &req.messages[1].content;
    assert!(user.contains("10,000,000 in total, of which only the first 10,000"), "{user}");
    assert!(table_rows(user).len() <= llm::MAX_PROMPT_ROWS);

    // Narrow rows: the row cap binds, not the byte cap; every cell is cut to its cap.
    let rows: Vec<Vec<Value>> = (0..500).map(|i| vec![Value::Integer(i), Value::Text("z".repeat(1000))]).collect();
    let inp = ExplainInput {
        question: "Long notes?".into(),
        sql: "SELECT id, note FROM t".into(),
        columns: vec![col("id", "int8"), col("note", "text")],
        rows,
        row_count: 500,
        truncated: false,
        locale: None,
    };
    let req = llm::request(&inp);
    assert!(prompt_bytes(&req) <= llm::MAX_PROMPT_BYTES);
    let user = &req.messages[1].content;
    let table = table_rows(user);
    assert!(user.contains("The first 20 rows as CSV"), "{user}");
    assert_eq!(table.len(), llm::MAX_PROMPT_ROWS);
    for line in table {
        let note = line.split(',').nth(1).unwrap_or("");
        assert!(note.chars().count() <= llm::MAX_CELL_CHARS + 1, "{note}");
    }
}

#[test]
fn prompt_numbers_are_short_and_true() {
    let inp = ExplainInput {
        question: String::new(),
        sql: String::new(),
        columns: vec![col("x", "float8"), col("d", "numeric")],
        rows: vec![
            vec![Value::Float(1e300), Value::Decimal("9".repeat(200))],
            vec![Value::Float(0.1 + 0.2), Value::Decimal("0.1".into())],
            vec![Value::Float(-1234.5678), Value::Null],
        ],
        row_count: 3,
        truncated: false,
        locale: None,
    };
    let user = &llm::request(&inp).messages[1].content;
    assert_eq!(table_rows(user), ["1e300,1e200", "0.3,0.1", "-1234.5678,NULL"]);
}

#[test]
fn completion_text_is_returned_trimmed_with_the_deterministic_chart() {
    let inp = regions();
    let calls = Cell::new(0);
    let out = llm::explain_with(&inp, |req| {
        calls.set(calls.get() + 1);
        assert!(req.messages[1].content.contains("Welche Region"));
        Ok(completion("\n  Der Norden hat mit 5000,50 den höchsten Umsatz.  \n"))
    });
    assert_eq!(calls.get(), 1);
    assert_eq!(out.fallback_reason, None);
    assert_eq!(out.explanation.text, "Der Norden hat mit 5000,50 den höchsten Umsatz.");
    assert_eq!(out.explanation.chart, summarize(&inp).chart);
    assert!(out.explanation.chart.is_some());
}

#[test]
fn failures_fall_back_to_the_summary() {
    let inp = regions();
    let expected = summarize(&inp);
    let errors = [
        ProviderError::Timeout,
        ProviderError::RateLimited(Some(1000)),
        ProviderError::Upstream((502, "bad gateway".into())),
        ProviderError::Denied("no LLM is configured for explainers".into()),
        ProviderError::Internal("x".repeat(10_000)),
    ];
    for e in errors {
        let out = llm::explain_with(&inp, move |_| Err(e));
        assert_eq!(out.explanation.text, expected.text);
        assert_eq!(out.explanation.chart, expected.chart);
        let reason = out.fallback_reason.expect("a reason");
        assert!(!reason.is_empty() && reason.len() <= 200, "{reason}");
    }
    let blank = llm::explain_with(&inp, |_| Ok(completion(" \n\t ")));
    assert_eq!(blank.explanation.text, expected.text);
    assert_eq!(blank.fallback_reason.as_deref(), Some("the LLM returned no text"));
}
