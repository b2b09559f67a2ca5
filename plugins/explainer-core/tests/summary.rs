//! The deterministic summary and chart suggestion, natively: one test per result shape, the
//! inputs that must never make it panic, a property-style sweep over generated inputs, and the
//! linear-time check on a large result.

use std::time::{Duration, Instant};

use quarry_explainer_core::{Column, ExplainInput, Value, llm, suggest_chart, summarize};

fn col(name: &str, type_name: &str) -> Column {
    Column { name: name.into(), type_name: type_name.into() }
}

fn text(s: &str) -> Value {
    Value::Text(s.into())
}

fn input(question: &str, columns: Vec<Column>, rows: Vec<Vec<Value>>) -> ExplainInput {
    ExplainInput {
        question: question.into(),
        sql: "SELECT 1".into(),
        columns,
        row_count: rows.len() as u64,
        rows,
        truncated: false,
        locale: None,
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

#[test]
fn no_rows() {
    let out = summarize(&input("Any refunds today?", vec![col("id", "int8")], vec![]));
    assert_eq!(out.text, "You asked: \"Any refunds today?\". No rows matched.");
    assert_eq!(out.chart, None);
}

#[test]
fn single_value_is_stated() {
    let out = summarize(&input("How many orders?", vec![col("count", "int8")], vec![vec![Value::Integer(1234)]]));
    assert_eq!(out.text, "You asked: \"How many orders?\". 1 row. The answer is 1,234.");
    assert_eq!(out.chart, None);
    let exact = summarize(&input("", vec![col("total", "numeric")], vec![vec![Value::Decimal("1234567.8900".into())]]));
    assert_eq!(exact.text, "1 row. The answer is 1,234,567.8900.");
    let float = summarize(&input("", vec![col("avg", "float8")], vec![vec![Value::Float(1234.5678)]]));
    assert!(float.text.contains("The answer is 1,234.57."), "{}", float.text);
    let null = summarize(&input("", vec![col("max", "int8")], vec![vec![Value::Null]]));
    assert!(null.text.contains("The answer is empty"), "{}", null.text);
    let year = summarize(&input("", vec![col("year", "int4")], vec![vec![Value::Integer(2024)]]));
    assert!(year.text.contains("The answer is 2024."), "{}", year.text);
}

#[test]
fn single_row_lists_pairs() {
    let cols = vec![col("region", "text"), col("revenue", "int8"), col("active", "bool"), col("note", "text")];
    let out = summarize(&input("", cols, vec![vec![text("North"), Value::Integer(1234), Value::Boolean(true), Value::Null]]));
    assert_eq!(out.text, "1 row. region: North; revenue: 1,234; active: yes; note: no value.");
    assert_eq!(out.chart, None);
    let wide: Vec<Column> = (0..10).map(|i| col(&format!("c{i}"), "int4")).collect();
    let out = summarize(&input("", wide, vec![(0..10).map(Value::Integer).collect()]));
    assert!(out.text.ends_with("c5: 5; and 4 more columns."), "{}", out.text);
}

#[test]
fn groups_get_top_bottom_and_total() {
    let out = summarize(&regions());
    assert!(out.text.starts_with("You asked: \"What is the revenue by region?\". 4 rows."), "{}", out.text);
    assert!(out.text.contains("Highest revenue: North (5,000.50); lowest: West (250.00)."), "{}", out.text);
    // Exact decimals sum exactly.
    assert!(out.text.contains("Total revenue: 9,450.75 (average 2,362.69 per row)."), "{}", out.text);
    assert_eq!(out.chart.as_deref(), Some(r#"{"type":"bar","x":"region","y":"revenue"}"#));
}

#[test]
fn ids_and_years_are_labels_not_measures() {
    let out = summarize(&input(
        "",
        vec![col("customer_id", "int8"), col("amount", "int8")],
        vec![vec![Value::Integer(7), Value::Integer(900)], vec![Value::Integer(1042), Value::Integer(12000)]],
    ));
    assert!(out.text.contains("Highest amount: customer_id 1042 (12,000); lowest: customer_id 7 (900)."), "{}", out.text);
    assert!(out.text.contains("Total amount: 12,900"), "{}", out.text);
    assert_eq!(out.chart.as_deref(), Some(r#"{"type":"bar","x":"customer_id","y":"amount"}"#));

    // Nothing here is a measure: no totals of ids or years, no chart.
    let keys = summarize(&input(
        "",
        vec![col("OrderId", "int8"), col("year", "int4")],
        vec![vec![Value::Integer(1), Value::Integer(2020)], vec![Value::Integer(2), Value::Integer(2021)]],
    ));
    assert!(!keys.text.contains("Total"), "{}", keys.text);
    assert!(!keys.text.contains("Highest"), "{}", keys.text);
    assert_eq!(keys.chart, None);
}

#[test]
fn averages_and_prices_are_not_totalled() {
    for name in ["avg_price", "unit_price", "conversion_rate", "pct_done", "max"] {
        let out = summarize(&input(
            "",
            vec![col("product", "text"), col(name, "float8")],
            vec![vec![text("a"), Value::Float(1.5)], vec![text("b"), Value::Float(2.5)]],
        ));
        assert!(out.text.contains("Highest"), "{name}: {}", out.text);
        assert!(!out.text.contains("Total"), "{name}: {}", out.text);
    }
}

#[test]
fn date_series_get_range_and_line() {
    let months = ["2024-01-01", "2024-02-01", "2024-03-01", "2024-04-01"];
    let rows = months.iter().zip([10, 40, 30, 20]).map(|(m, n)| vec![text(m), Value::Integer(n)]).collect();
    let out = summarize(&input("Orders per month", vec![col("month", "date"), col("orders", "int8")], rows));
    assert!(out.text.contains("The rows cover 2024-01-01 to 2024-04-01."), "{}", out.text);
    assert!(out.text.contains("Highest orders: 2024-02-01 (40); lowest: 2024-01-01 (10)."), "{}", out.text);
    assert_eq!(out.chart.as_deref(), Some(r#"{"type":"line","x":"month","y":"orders"}"#));

    // Timestamps at midnight read as dates.
    let rows = (1..=3).map(|d| vec![text(&format!("2024-03-0{d}T00:00:00Z")), Value::Integer(d)]).collect();
    let out = summarize(&input("", vec![col("created_at", "timestamptz"), col("signups", "int8")], rows));
    assert!(out.text.contains("The rows cover 2024-03-01 to 2024-03-03."), "{}", out.text);

    // Years are numbers but read as dates: no separators, range by value, a line.
    let rows = [2021, 2019, 2023, 2020].iter().map(|y| vec![Value::Integer(*y), Value::Float(*y as f64 * 1.5)]).collect();
    let out = summarize(&input("", vec![col("year", "int4"), col("sales", "float8")], rows));
    assert!(out.text.contains("The rows cover 2019 to 2023."), "{}", out.text);
    assert!(out.text.contains("Highest sales: year 2023 (3,034.5)"), "{}", out.text);
    assert_eq!(out.chart.as_deref(), Some(r#"{"type":"line","x":"year","y":"sales"}"#));

    // Two points make a bar chart, not a line.
    let rows = vec![vec![text("2024-01-01"), Value::Integer(1)], vec![text("2024-02-01"), Value::Integer(2)]];
    assert_eq!(
        suggest_chart(&input("", vec![col("day", "date"), col("n", "int8")], rows)).as_deref(),
        Some(r#"{"type":"bar","x":"day","y":"n"}"#)
    );
}

#[test]
fn truncated_results_say_so() {
    let rows: Vec<Vec<Value>> = (0..1000).map(|i| vec![text(&format!("c{i}")), Value::Integer(i)]).collect();
    let mut inp = input("", vec![col("customer", "text"), col("orders", "int8")], rows);
    inp.row_count = 42_000;
    inp.truncated = true;
    let out = summarize(&inp);
    assert!(out.text.starts_with("42,000 rows (showing the first 1,000)."), "{}", out.text);
    assert!(out.text.contains("Highest orders in the rows shown: c999 (999); lowest: c0 (0)."), "{}", out.text);
    assert!(out.text.contains("Total orders over the 1,000 rows shown: 499,500 (average 499.5)."), "{}", out.text);
    // 1,000 bars is no chart.
    assert_eq!(out.chart, None);
}

#[test]
fn results_without_measure_get_a_preview() {
    let rows = ["Alice", "Bob", "Carol", "Dan", "Eve", "Frank"].iter().map(|n| vec![text(n), text("x@y")]).collect();
    let out = summarize(&input("", vec![col("name", "text"), col("email", "text")], rows));
    assert!(out.text.ends_with("6 rows. First values of name: Alice, Bob, Carol, Dan, Eve, …."), "{}", out.text);
    assert_eq!(out.chart, None);
}

#[test]
fn equal_values_and_wide_tables() {
    let rows = vec![vec![text("a"), Value::Integer(5)], vec![text("b"), Value::Integer(5)]];
    let out = summarize(&input("", vec![col("k", "text"), col("n", "int8")], rows));
    assert!(out.text.contains("n is 5 in every row."), "{}", out.text);
    let cols: Vec<Column> = ["k", "a", "b", "c", "d", "e", "f"].iter().map(|n| col(n, "int8")).collect();
    let rows = (0..3).map(|i| std::iter::once(text("x")).chain((0..6).map(|j| Value::Integer(i * j))).collect()).collect();
    assert_eq!(summarize(&input("", cols, rows)).chart, None);
}

#[test]
fn question_is_cleaned_and_cut() {
    let q = format!("How many\n\t orders\u{202E} were there{}?", " really".repeat(50));
    let out = summarize(&input(&q, vec![col("n", "int8")], vec![vec![Value::Integer(1)]]));
    assert!(out.text.starts_with("You asked: \"How many orders were there really"), "{}", out.text);
    assert!(out.text.contains("…\"."), "{}", out.text);
    assert!(!out.text.contains('\u{202E}') && !out.text.contains('\n'));
}

/// Inputs picked to break naive code; each must give a non-empty text without panicking.
#[test]
fn awkward_inputs_never_panic() {
    let nasty = vec![
        Value::Null,
        Value::Float(f64::NAN),
        Value::Float(f64::INFINITY),
        Value::Float(f64::NEG_INFINITY),
        Value::Float(f64::MAX),
        Value::Float(-f64::MIN_POSITIVE),
        Value::Float(-0.0),
        Value::Integer(i64::MIN),
        Value::Integer(i64::MAX),
        Value::Decimal("9".repeat(10_000)),
        Value::Decimal("-0.000000000000000000000000000000000001".into()),
        Value::Decimal("NaN".into()),
        Value::Decimal("".into()),
        Value::Decimal("-".into()),
        Value::Decimal("1e999".into()),
        Value::Text("\u{0}\u{202E}\u{FEFF}\r\n".into()),
        Value::Text("é".repeat(100_000)),
        Value::Text("🦀\u{301}\u{301}".into()),
        Value::Json("{\"a\":[1,2]}".into()),
        Value::Bytes(vec![0xff; 1 << 16]),
        Value::Boolean(false),
    ];
    let shapes: Vec<ExplainInput> = vec![
        // No columns, rows anyway.
        input("", vec![], vec![nasty.clone()]),
        // Columns, ragged rows: empty, short, long.
        input("?", vec![col("a", "int8"), col("b", "numeric")], vec![vec![], vec![Value::Integer(1)], nasty.clone()]),
        // Every value in each column position, one column per nasty value.
        input("", nasty.iter().enumerate().map(|(i, _)| col(&format!("c{i}"), "numeric")).collect(), vec![nasty.clone(), nasty.clone()]),
        // Nulls everywhere.
        input("", vec![col("x", "int8"), col("y", "int8")], vec![vec![Value::Null, Value::Null]; 5]),
        // One column holding every nasty value.
        input("", vec![col("v", "numeric")], nasty.iter().map(|v| vec![v.clone()]).collect()),
        // Label plus a measure holding every nasty value.
        input("", vec![col("k", "text"), col("v", "float8")], nasty.iter().map(|v| vec![text("k"), v.clone()]).collect()),
        // Empty and duplicate names.
        input("", vec![col("", ""), col("", "")], vec![vec![text("a"), Value::Integer(1)], vec![text("b"), Value::Integer(2)]]),
        input("", vec![col("n", "int8"), col("n", "int8")], vec![vec![text("a"), Value::Integer(1)], vec![text("b"), Value::Integer(2)]]),
    ];
    for (i, mut shape) in shapes.into_iter().enumerate() {
        for (row_count, truncated) in [(shape.rows.len() as u64, false), (0, true), (u64::MAX, true), (1, false)] {
            shape.row_count = row_count;
            shape.truncated = truncated;
            let out = summarize(&shape);
            assert!(!out.text.is_empty(), "shape {i}");
            assert!(out.text.len() <= 2000, "shape {i}: {} bytes", out.text.len());
            check_chart(out.chart.as_deref(), &shape);
            check_prompt(&shape);
        }
    }
}

/// A chart, when there is one, is a small JSON object naming two of the result's columns.
fn check_chart(chart: Option<&str>, input: &ExplainInput) {
    let Some(chart) = chart else { return };
    assert!(chart.starts_with("{\"type\":\"") && chart.ends_with('}'), "{chart}");
    assert!(chart.contains("\"type\":\"bar\"") || chart.contains("\"type\":\"line\""), "{chart}");
    assert!(input.columns.len() <= quarry_explainer_core::MAX_CHART_COLUMNS && input.rows.len() >= 2, "{chart}");
}

/// The prompt stays within its caps whatever the input.
fn check_prompt(input: &ExplainInput) {
    let req = llm::request(input);
    let bytes: usize = req.messages.iter().map(|m| m.content.len()).sum();
    assert!(bytes <= llm::MAX_PROMPT_BYTES, "{bytes} bytes");
}

/// A tiny deterministic generator (xorshift), so failures reproduce without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    fn text(&mut self) -> String {
        const PIECES: &[&str] = &[
            "", "a", "North", "2024-01-31", "2024-13", "1,234", "12.5", "-", " ", "\n", "\u{0}", "\u{202E}", "é", "🦀", "\u{301}",
            "\"", ",", "id", "NaN", "1e400", "９", "\u{FFFD}", "null", "2019",
        ];
        (0..self.below(6)).map(|_| *self.pick(PIECES)).collect()
    }

    fn value(&mut self) -> Value {
        match self.below(12) {
            0 => Value::Null,
            1 => Value::Boolean(self.below(2) == 1),
            2 => Value::Integer(self.next() as i64),
            3 => Value::Integer(self.below(2000) as i64 - 1000),
            4 => Value::Float(f64::from_bits(self.next())),
            5 => Value::Float((self.below(100_000) as f64 - 50_000.0) / 7.0),
            6 => Value::Decimal(format!("{}.{}", self.next() as i64, self.below(10_000))),
            7 => Value::Decimal(self.text()),
            8 => Value::Json(self.text()),
            9 => Value::Bytes((0..self.below(8)).map(|_| self.next() as u8).collect()),
            _ => Value::Text(self.text()),
        }
    }
}

/// Random-ish results of every shape: the summary never panics, stays short, and any chart
/// names real columns; the prompt stays within its caps.
#[test]
fn generated_inputs_never_panic() {
    const NAMES: &[&str] = &["region", "revenue", "id", "customer_id", "year", "month", "avg_price", "", "n", "Total €", "day"];
    const TYPES: &[&str] = &["text", "int8", "numeric", "float8", "date", "timestamp", "bool", "jsonb", "bytea", "", "weird(1"];
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for case in 0..3000 {
        let ncols = rng.below(8) as usize;
        let columns: Vec<Column> = (0..ncols).map(|_| col(rng.pick::<&str>(NAMES), rng.pick::<&str>(TYPES))).collect();
        let nrows = match rng.below(4) {
            0 => 0,
            1 => 1,
            _ => rng.below(60) as usize,
        };
        // Mostly one value type per column, as databases return; sometimes anything, and
        // sometimes ragged.
        let kinds: Vec<Value> = (0..ncols).map(|_| rng.value()).collect();
        let rows: Vec<Vec<Value>> = (0..nrows)
            .map(|_| {
                let len = if rng.below(5) == 0 { rng.below(ncols as u64 + 3) as usize } else { ncols };
                (0..len)
                    .map(|c| match (rng.below(4), kinds.get(c)) {
                        (0, _) | (_, None) => rng.value(),
                        (_, Some(Value::Integer(_))) => Value::Integer(rng.below(1_000_000) as i64),
                        (_, Some(Value::Float(_))) => Value::Float(rng.below(1_000_000) as f64 / 100.0),
                        (_, Some(k)) => k.clone(),
                    })
                    .collect()
            })
            .collect();
        let mut inp = input(&rng.text(), columns, rows);
        inp.row_count = match rng.below(3) {
            0 => inp.rows.len() as u64,
            1 => rng.next(),
            _ => rng.below(100),
        };
        inp.truncated = rng.below(3) == 0;
        inp.locale = (rng.below(2) == 0).then(|| rng.text());
        let out = summarize(&inp);
        assert!(!out.text.is_empty(), "case {case}");
        assert!(out.text.len() <= 2000, "case {case}");
        assert!(!out.text.contains(['\n', '\u{0}', '\u{202E}']), "case {case}: {:?}", out.text);
        check_chart(out.chart.as_deref(), &inp);
        check_prompt(&inp);
    }
}

/// 100k rows must stay fast: everything is one pass or a few over the cells.
#[test]
fn large_results_are_linear() {
    let rows: Vec<Vec<Value>> = (0..100_000)
        .map(|i| vec![text(&format!("2024-01-{:02}", i % 28 + 1)), text(&format!("store {i}")), Value::Decimal(format!("{i}.25"))])
        .collect();
    let inp = input("Sales per store per day", vec![col("day", "date"), col("store", "text"), col("sales", "numeric")], rows);
    let started = Instant::now();
    let out = summarize(&inp);
    let _ = llm::request(&inp);
    let took = started.elapsed();
    assert!(out.text.contains("100,000 rows."), "{}", out.text);
    assert!(out.text.contains("Total sales: 4,999,975,000.00"), "{}", out.text);
    // Generous for an unoptimised build on a busy machine; quadratic work would take minutes.
    assert!(took < Duration::from_secs(5), "took {took:?}");
}
