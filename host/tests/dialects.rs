//! The dialect plugins as the host runs them: every case of the shared case tables
//! (`plugins/dialect-core/tests/cases/<dialect>.json`) and every gold benchmark query, validated
//! through the compiled `wasm32-wasip2` components rather than natively.

use std::path::{Path, PathBuf};

use quarry::cli::kind_name;
use quarry::plugins::bindings::dialect::exports::quarry::plugin::dialect::Policy;
use quarry::plugins::{PluginRegistry, PluginSet, Runtime, RuntimeConfig};
use serde::Deserialize;

/// One row of a case table (schema documented in `plugins/dialect-core/tests/cases/README.md`).
#[derive(Debug, Deserialize)]
struct Case {
    sql: String,
    expect: String,
    code: Option<String>,
    kind: Option<String>,
    tables: Option<Vec<String>>,
    row_limit: Option<u64>,
    sql_contains: Option<String>,
    sql_lacks: Option<String>,
    allowed_tables: Option<Vec<String>>,
    denied_functions: Option<Vec<String>>,
    #[serde(default)]
    note: String,
}

#[derive(Debug, Deserialize)]
struct Gold {
    id: serde_json::Value,
    sql: String,
}

fn core_tests() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/dialect-core/tests")
}

/// The built-ins; compiled components are cached across tests (compiling is slow in a debug build).
async fn plugins() -> std::sync::Arc<PluginSet> {
    let runtime = Runtime::new(RuntimeConfig {
        cache_dir: Some(std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("plugin-artifact-cache")),
        ..RuntimeConfig::default()
    })
    .expect("runtime");
    PluginRegistry::load(runtime, None).await.current()
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> T {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Run one dialect's case table through its plugin; return the failures.
async fn run_cases(set: &PluginSet, dialect: &str) -> (usize, Vec<String>) {
    let cases: Vec<Case> = read_json(&core_tests().join(format!("cases/{dialect}.json")));
    let plugin = set.dialect(dialect).unwrap_or_else(|| panic!("{dialect} plugin not loaded"));
    let mut failures = Vec::new();
    for case in &cases {
        let policy = Policy {
            row_limit: case.row_limit,
            allowed_tables: case.allowed_tables.clone(),
            denied_functions: case.denied_functions.clone().unwrap_or_default(),
        };
        let verdict = plugin
            .validate(&case.sql, &policy)
            .await
            .unwrap_or_else(|e| panic!("plugin failed on {:?}: {e}", case.sql));
        let problem = match (case.expect.as_str(), &verdict) {
            ("accept", Ok(v)) => {
                let mut p = Vec::new();
                if let Some(k) = &case.kind {
                    if kind_name(v.kind) != k {
                        p.push(format!("kind {} != {k}", kind_name(v.kind)));
                    }
                }
                if let Some(t) = &case.tables {
                    if &v.tables != t {
                        p.push(format!("tables {:?} != {t:?}", v.tables));
                    }
                }
                if let Some(s) = &case.sql_contains {
                    if !v.sql.contains(s.as_str()) {
                        p.push(format!("output {:?} lacks {s:?}", v.sql));
                    }
                }
                if let Some(s) = &case.sql_lacks {
                    if v.sql.contains(s.as_str()) {
                        p.push(format!("output {:?} contains {s:?}", v.sql));
                    }
                }
                p.join("; ")
            }
            ("refuse", Err(violations)) => match &case.code {
                Some(code) if !violations.iter().any(|v| &v.code == code) => {
                    format!(
                        "refused with {:?}, expected code {code}",
                        violations.iter().map(|v| &v.code).collect::<Vec<_>>()
                    )
                }
                _ if violations.iter().any(|v| v.message.trim().is_empty()) => "a violation has no message".into(),
                _ => String::new(),
            },
            ("accept", Err(v)) => format!("refused: {v:?}"),
            ("refuse", Ok(v)) => format!("accepted as {:?}", v.sql),
            (other, _) => format!("unknown expectation {other:?}"),
        };
        if !problem.is_empty() {
            failures.push(format!("[{dialect}] {:?} ({}): {problem}", case.sql, case.note));
        }
    }
    (cases.len(), failures)
}

#[tokio::test]
async fn case_tables_hold_through_the_components() {
    let set = plugins().await;
    let mut all = Vec::new();
    for dialect in ["postgres", "mysql", "sqlite"] {
        let (n, failures) = run_cases(&set, dialect).await;
        assert!(n >= 40, "{dialect} has only {n} cases; the table must have at least 40");
        all.extend(failures);
    }
    assert!(all.is_empty(), "{} case(s) failed:\n{}", all.len(), all.join("\n"));
}

/// Gold queries the parser cannot read, listed with the reason in the native test of
/// `dialect-core` (`tests/gold.rs`); they are the only refusals allowed here.
fn known_unparseable(file: &str) -> Vec<String> {
    let path = core_tests().join("gold").join(format!("{file}.unparseable.json"));
    if path.is_file() { read_json(&path) } else { Vec::new() }
}

async fn gold_accepted(dialect: &str, file: &str) {
    let set = plugins().await;
    let plugin = set.dialect(dialect).expect("plugin");
    let gold: Vec<Gold> = read_json(&core_tests().join("gold").join(format!("{file}.json")));
    let allowed: Vec<String> = known_unparseable(file);
    let mut refused = Vec::new();
    for g in &gold {
        let verdict = plugin
            .validate(&g.sql, &Policy { row_limit: Some(1000), allowed_tables: None, denied_functions: vec![] })
            .await
            .expect("call");
        if let Err(v) = verdict {
            let id = match &g.id {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            if !allowed.contains(&id) {
                refused.push(format!("{}: {:?}", g.id, v.iter().map(|v| &v.message).collect::<Vec<_>>()));
            }
        }
    }
    assert!(gold.len() >= 75, "gold file {file} has only {} queries", gold.len());
    assert!(refused.is_empty(), "{} gold queries refused by {dialect}:\n{}", refused.len(), refused.join("\n"));
}

#[tokio::test]
async fn every_synthetic_gold_query_is_accepted_by_postgres() {
    gold_accepted("postgres", "synthetic-postgres").await;
}

#[tokio::test]
async fn every_bird_gold_query_is_accepted_by_sqlite() {
    gold_accepted("sqlite", "bird-minidev-sqlite").await;
}
