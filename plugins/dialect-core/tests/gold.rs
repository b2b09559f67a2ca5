//! Benchmark gold queries must be accepted: every gold SQL of the synthetic PostgreSQL questions
//! by the PostgreSQL dialect, every BIRD mini-dev gold SQL by the SQLite dialect (sources and
//! licences in `tests/gold/README.md`). A refusal of a correct read-only query means a rule is
//! wrong. Queries the parser itself cannot read are listed in `KNOWN_UNPARSEABLE` with the
//! parser's error; any other refusal fails the test, and so does a listed query that starts to
//! pass (so the list stays true).
//!
//! Each accepted query is also validated again in its printed form, which must be accepted and
//! print identically: the SQL the host runs must survive its own validation unchanged.

mod dialects;

use dialects::postgres::Postgres;
use dialects::sqlite::Sqlite;
use quarry_dialect_core::{Dialect, Policy, validate};
use serde::Deserialize;

#[derive(Deserialize)]
struct Gold {
    id: u64,
    sql: String,
}

/// Gold queries `sqlparser` 0.63 cannot parse: (file, id, start of the parser's error).
const KNOWN_UNPARSEABLE: &[(&str, u64, &str)] = &[];

fn policy() -> Policy {
    Policy {
        row_limit: Some(1000),
        allowed_tables: None,
        denied_functions: Vec::new(),
    }
}

fn run<D: Dialect>(file: &str) {
    let path = format!("{}/tests/gold/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let golds: Vec<Gold> = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
    assert!(!golds.is_empty(), "{path}: no gold queries");

    let mut failures = Vec::new();
    let mut accepted = 0;
    for gold in &golds {
        let known = KNOWN_UNPARSEABLE
            .iter()
            .find(|(f, id, _)| *f == file && *id == gold.id);
        match (validate::<D>(&gold.sql, &policy()), known) {
            (Ok(v), None) => {
                accepted += 1;
                match validate::<D>(&v.sql, &policy()) {
                    Ok(again) if again.sql == v.sql => {}
                    Ok(again) => failures.push(format!(
                        "{file} #{}: printed SQL not stable:\n  {}\n  {}",
                        gold.id, v.sql, again.sql
                    )),
                    Err(violations) => failures.push(format!(
                        "{file} #{}: printed SQL refused: {violations:?}\n  {}",
                        gold.id, v.sql
                    )),
                }
            }
            (Ok(_), Some(_)) => failures.push(format!(
                "{file} #{}: listed in KNOWN_UNPARSEABLE but now accepted: remove it from the list",
                gold.id
            )),
            (Err(violations), Some((_, _, error))) => {
                let expected = violations
                    .iter()
                    .any(|v| v.code == "parse-error" && v.message.contains(error));
                if !expected {
                    failures.push(format!(
                        "{file} #{}: expected parse error containing {error:?}, got {violations:?}",
                        gold.id
                    ));
                }
            }
            (Err(violations), None) => failures.push(format!(
                "{file} #{}: refused\n  sql: {}\n  violations: {violations:?}",
                gold.id, gold.sql
            )),
        }
    }
    println!("{file}: {accepted}/{} accepted", golds.len());
    assert!(
        failures.is_empty(),
        "{} gold failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn synthetic_postgres_gold_is_accepted() {
    run::<Postgres>("synthetic-postgres.json");
}

#[test]
fn bird_minidev_sqlite_gold_is_accepted() {
    run::<Sqlite>("bird-minidev-sqlite.json");
}
