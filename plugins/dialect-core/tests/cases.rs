//! Runs the data-driven validation cases in `tests/cases/{postgres,mysql,sqlite}.json` natively
//! against each dialect. The host runs the same files through the compiled components, so the
//! schema (documented in `tests/cases/README.md`) must not drift from what is read here.
//!
//! Every accepted case is also checked for stability: its printed SQL, validated again with the
//! same policy, must be accepted and print identically.

mod dialects;

use dialects::mysql::MySql;
use dialects::postgres::Postgres;
use dialects::sqlite::Sqlite;
use quarry_dialect_core::{Dialect, Policy, StatementKind, Validated, Violation, validate};
use serde::Deserialize;

/// The smallest number of cases a dialect's file must hold.
const MIN_CASES: usize = 40;

/// One case; see `tests/cases/README.md`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    sql: String,
    expect: Expect,
    code: Option<String>,
    kind: Option<String>,
    tables: Option<Vec<String>>,
    row_limit: Option<u64>,
    sql_contains: Option<String>,
    sql_lacks: Option<String>,
    allowed_tables: Option<Vec<String>>,
    denied_functions: Option<Vec<String>>,
    note: Option<String>,
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(rename_all = "lowercase")]
enum Expect {
    Accept,
    Refuse,
}

impl Case {
    fn policy(&self) -> Policy {
        Policy {
            row_limit: self.row_limit,
            allowed_tables: self.allowed_tables.clone(),
            denied_functions: self.denied_functions.clone().unwrap_or_default(),
        }
    }
}

/// The WIT name of a statement kind, as written in the case files.
fn kind_name(kind: StatementKind) -> &'static str {
    match kind {
        StatementKind::Select => "select",
        StatementKind::WithSelect => "with-select",
        StatementKind::SetOperation => "set-operation",
        StatementKind::Values => "values",
        StatementKind::Explain => "explain",
    }
}

fn is_kebab(code: &str) -> bool {
    !code.is_empty()
        && !code.starts_with('-')
        && !code.ends_with('-')
        && code.chars().all(|c| c.is_ascii_lowercase() || c == '-')
}

/// What is wrong with an accepted result, if anything.
fn check_accepted<D: Dialect>(case: &Case, v: &Validated) -> Vec<String> {
    let mut problems = Vec::new();
    if let Some(kind) = &case.kind
        && kind_name(v.kind) != kind
    {
        problems.push(format!("kind {} (expected {kind})", kind_name(v.kind)));
    }
    if let Some(tables) = &case.tables
        && &v.tables != tables
    {
        problems.push(format!("tables {:?} (expected {tables:?})", v.tables));
    }
    if let Some(s) = &case.sql_contains
        && !v.sql.contains(s.as_str())
    {
        problems.push(format!("output lacks {s:?}"));
    }
    if let Some(s) = &case.sql_lacks
        && v.sql.contains(s.as_str())
    {
        problems.push(format!("output contains {s:?}"));
    }
    match validate::<D>(&v.sql, &case.policy()) {
        Ok(again) if again.sql == v.sql => {}
        Ok(again) => problems.push(format!("printed SQL not stable: {:?}", again.sql)),
        Err(violations) => problems.push(format!("printed SQL refused: {violations:?}")),
    }
    if !problems.is_empty() {
        problems.push(format!("output: {:?}, warnings: {:?}", v.sql, v.warnings));
    }
    problems
}

/// What is wrong with a refusal, if anything.
fn check_refused(case: &Case, violations: &[Violation]) -> Vec<String> {
    let mut problems = Vec::new();
    if violations.is_empty() {
        problems.push("refused with no violation".into());
    }
    match &case.code {
        None => problems.push("a refuse case must name the expected `code`".into()),
        Some(code) if !violations.iter().any(|v| &v.code == code) => {
            problems.push(format!("no violation with code {code}"));
        }
        Some(_) => {}
    }
    for v in violations {
        if !is_kebab(&v.code) {
            problems.push(format!("code {:?} is not kebab-case", v.code));
        }
        if v.message.trim().is_empty() {
            problems.push(format!("{}: empty message", v.code));
        }
        if v.offset.is_some_and(|o| o as usize > case.sql.len()) {
            problems.push(format!("{}: offset {:?} past the input", v.code, v.offset));
        }
    }
    if !problems.is_empty() {
        problems.push(format!("violations: {violations:?}"));
    }
    problems
}

/// Run a dialect's cases on a thread with a large stack: unoptimized builds use ~10 KiB of
/// stack per link of a long `a + b + …` chain, and some cases hold the longest chain allowed.
fn run<D: Dialect>(file: &'static str) {
    let runner = std::thread::Builder::new()
        .stack_size(256 << 20)
        .spawn(move || run_on_this_thread::<D>(file))
        .expect("spawn the case runner");
    if let Err(panic) = runner.join() {
        std::panic::resume_unwind(panic);
    }
}

fn run_on_this_thread<D: Dialect>(file: &str) {
    let path = format!("{}/tests/cases/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let cases: Vec<Case> = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
    assert!(
        cases.len() >= MIN_CASES,
        "{path}: {} cases, want at least {MIN_CASES}",
        cases.len()
    );

    let mut failures = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        let verdict = validate::<D>(&case.sql, &case.policy());
        let problems = match (&case.expect, &verdict) {
            (Expect::Accept, Ok(v)) => check_accepted::<D>(case, v),
            (Expect::Refuse, Err(violations)) => check_refused(case, violations),
            (Expect::Accept, Err(violations)) => vec![format!("refused: {violations:?}")],
            (Expect::Refuse, Ok(v)) => vec![format!("accepted as {:?}", v.sql)],
        };
        if !problems.is_empty() {
            failures.push(format!(
                "{file} case {i} ({}): {:?}\n    {}",
                case.note.as_deref().unwrap_or("no note"),
                case.sql,
                problems.join("\n    ")
            ));
        }
    }
    println!("{file}: {} cases", cases.len());
    assert!(
        failures.is_empty(),
        "{} failing cases:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn postgres_cases() {
    run::<Postgres>("postgres.json");
}

#[test]
fn mysql_cases() {
    run::<MySql>("mysql.json");
}

#[test]
fn sqlite_cases() {
    run::<Sqlite>("sqlite.json");
}
