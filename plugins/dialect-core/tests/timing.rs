//! Where `validate`'s time goes natively, stage by stage (tokenize, parse, print, the whole
//! pipeline), for the query the host's `quarry bench plugins` targets are stated for. Ignored by
//! default (it asserts nothing); run it with
//! `cargo test --release --test timing -- --ignored --nocapture`.

mod dialects;

use std::time::{Duration, Instant};

use dialects::postgres::Postgres;
use quarry_dialect_core::sqlparser::dialect::PostgreSqlDialect;
use quarry_dialect_core::sqlparser::parser::{Parser, ParserOptions};
use quarry_dialect_core::sqlparser::tokenizer::Tokenizer;
use quarry_dialect_core::{Policy, validate};

/// The 3-join query of `host/src/cli/bench.rs`.
const THREE_JOIN: &str = "SELECT c.name, o.id, p.title, oi.quantity FROM customers c \
    JOIN orders o ON o.customer_id = c.id JOIN order_items oi ON oi.order_id = o.id \
    JOIN products p ON p.id = oi.product_id WHERE o.created_at >= '2024-01-01' AND c.country = 'DE' \
    ORDER BY o.created_at DESC";

fn median(mut f: impl FnMut()) -> Duration {
    for _ in 0..200 {
        f();
    }
    let mut samples: Vec<Duration> = (0..2000)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    samples.sort_unstable();
    samples[samples.len() / 2]
}

#[test]
#[ignore = "prints timings; asserts nothing"]
fn stages_of_validate() {
    let dialect = PostgreSqlDialect {};
    let policy = Policy { row_limit: Some(1000), allowed_tables: None, denied_functions: Vec::new() };
    let tokens = || Tokenizer::new(&dialect, THREE_JOIN).with_unescape(false).tokenize_with_location().unwrap();
    let parse = || {
        Parser::new(&dialect)
            .with_options(ParserOptions::new().with_unescape(false))
            .with_tokens_with_locations(tokens())
            .parse_statements()
            .unwrap()
    };
    let statements = parse();
    let tokenize_t = median(|| drop(std::hint::black_box(tokens())));
    let parse_t = median(|| drop(std::hint::black_box(parse())));
    let print_t = median(|| drop(std::hint::black_box(statements[0].to_string())));
    let validate_t = median(|| drop(std::hint::black_box(validate::<Postgres>(THREE_JOIN, &policy))));
    println!("tokenize          {:>8.1} µs", tokenize_t.as_secs_f64() * 1e6);
    println!("tokenize + parse  {:>8.1} µs", parse_t.as_secs_f64() * 1e6);
    println!("print             {:>8.1} µs", print_t.as_secs_f64() * 1e6);
    println!("validate (all)    {:>8.1} µs", validate_t.as_secs_f64() * 1e6);
}
