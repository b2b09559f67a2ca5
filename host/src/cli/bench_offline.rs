//! `quarry bench offline`: the execution accuracy of the `offline` provider, through the real
//! pipeline (the engine builds the prompt, the plugin answers, the dialect validates, the
//! database runs it).
//!
//! Two question sets:
//! - the 75 synthetic questions (`synthetic-questions.json` in the benchmark folder given by
//!   `--benchmarks-dir` or `QUARRY_BENCHMARKS_DIR`) over three PostgreSQL databases loaded from
//!   their `pg_dump` files in `synthetic-db/` with `psql` when missing (skipped, saying so, when
//!   the folder, PostgreSQL or `psql` is not there);
//! - the demo database's own questions (`host/src/demo/accuracy-questions.json`), on a fresh
//!   demo file.
//!
//! Scoring follows the benchmark's README: the predicted and the gold query are both executed,
//! the results compared as multisets of rows (in order only when the question asks for an
//! order), numbers equal within 1e-6. Every question ends as correct, wrong, declined (the
//! provider gave no SQL) or failed (the SQL it gave did not run).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use serde::Deserialize;
use serde_json::Value;

use crate::config::{PipelineSettings, PluginSettings};
use crate::db::{ConnectOptions, Database, DatabaseUrl, ExecOptions};
use crate::llm::ProviderSpec;
use crate::pipeline::{AnswerStatus, Engine, EngineConfig, ProgressSink, Question};
use crate::plugins::PluginRegistry;
use crate::schema::PrivacyPolicy;
use crate::store::Store;

/// The demo database's question set, with gold SQL.
pub const DEMO_QUESTIONS: &str = include_str!("../demo/accuracy-questions.json");

/// `quarry bench offline` arguments.
#[derive(Debug, Args)]
pub struct OfflineArgs {
    /// The benchmark folder: `synthetic-questions.json`, and `synthetic-db/eval_*.sql` (loaded
    /// into PostgreSQL when a database is missing). Without it the synthetic set is skipped.
    #[arg(long, env = "QUARRY_BENCHMARKS_DIR", value_name = "DIR")]
    pub benchmarks_dir: Option<PathBuf>,
    /// PostgreSQL to load and query the synthetic databases on (any database; the eval_*
    /// databases are created next to it).
    #[arg(long, env = "QUARRY_TEST_POSTGRES_URL", default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
    pub postgres_url: String,
    /// Run only one set: `synthetic` or `demo`.
    #[arg(long)]
    pub only: Option<String>,
    /// Print every question's outcome, SQL and reason.
    #[arg(long)]
    pub details: bool,
    /// Also write each database's schema, as the prompt shows it, to `DIR/<database>.txt`
    /// (what the offline provider reads; useful to see why a question was declined).
    #[arg(long, value_name = "DIR")]
    pub schema_dir: Option<PathBuf>,
}

/// One benchmark question.
#[derive(Debug, Clone, Deserialize)]
struct Case {
    #[serde(default)]
    id: Value,
    #[serde(default)]
    database: Option<String>,
    question: String,
    gold_query: String,
}

/// How one question ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Correct,
    /// The gold rows are in the answer, which has extra columns.
    ExtraColumns,
    Wrong,
    Declined,
    Failed,
}

#[derive(Debug, Default)]
struct Tally {
    /// Correct when extra columns in the answer are ignored (the gold's columns are found in it).
    lenient: usize,
    correct: usize,
    wrong: usize,
    declined: usize,
    failed: usize,
}

impl Tally {
    fn add(&mut self, o: Outcome) {
        match o {
            Outcome::Correct => {
                self.correct += 1;
                self.lenient += 1;
            }
            Outcome::ExtraColumns => {
                self.wrong += 1;
                self.lenient += 1;
            }
            Outcome::Wrong => self.wrong += 1,
            Outcome::Declined => self.declined += 1,
            Outcome::Failed => self.failed += 1,
        }
    }

    fn total(&self) -> usize {
        self.correct + self.wrong + self.declined + self.failed
    }

    fn print(&self, name: &str) {
        let total = self.total().max(1);
        let answered = self.correct + self.wrong + self.failed;
        println!(
            "{name}: {}/{} correct ({:.1}%; {} with extra columns allowed); answered {answered}, of which {} \
             correct ({:.1}% precision); declined {}; wrong {}; SQL failed {}",
            self.correct,
            self.total(),
            100.0 * self.correct as f64 / total as f64,
            self.lenient,
            self.correct,
            if answered == 0 { 0.0 } else { 100.0 * self.correct as f64 / answered as f64 },
            self.declined,
            self.wrong,
            self.failed
        );
    }
}

/// Run the benchmark.
pub async fn run(args: OfflineArgs, settings: &PluginSettings) -> anyhow::Result<ExitCode> {
    let registry = super::load_registry(settings).await?;
    if !registry.current().problems.is_empty() {
        eprintln!("warning: some plugins did not load: {:?}", registry.current().problems);
    }
    let only = args.only.as_deref();
    if only.is_none_or(|o| o == "synthetic") {
        synthetic(&args, &registry).await?;
    }
    if only.is_none_or(|o| o == "demo") {
        demo(&args, &registry).await?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The 75 synthetic questions on PostgreSQL.
async fn synthetic(args: &OfflineArgs, registry: &Arc<PluginRegistry>) -> anyhow::Result<()> {
    let Some(dir) = &args.benchmarks_dir else {
        println!("synthetic: skipped: no benchmark folder (--benchmarks-dir or QUARRY_BENCHMARKS_DIR)");
        return Ok(());
    };
    let questions = dir.join("synthetic-questions.json");
    let text = match std::fs::read_to_string(&questions) {
        Ok(t) => t,
        Err(e) => {
            println!("synthetic: skipped: cannot read {}: {e}", questions.display());
            return Ok(());
        }
    };
    let cases: Vec<Case> = serde_json::from_str(&text).context("reading the synthetic questions")?;
    let admin = match DatabaseUrl::parse(&args.postgres_url) {
        Ok(u) => u,
        Err(e) => {
            println!("synthetic: skipped: bad PostgreSQL URL: {e}");
            return Ok(());
        }
    };
    if let Err(e) = Database::connect(&admin, &ConnectOptions::default()).await {
        println!("synthetic: skipped: PostgreSQL is not reachable ({e})");
        return Ok(());
    }
    let mut databases: Vec<String> = cases.iter().filter_map(|c| c.database.clone()).collect();
    databases.sort();
    databases.dedup();
    let mut tally = Tally::default();
    let mut per_db = Vec::new();
    for db in databases {
        let url = with_database(&args.postgres_url, &db)?;
        if let Err(e) = load_if_missing(&args.postgres_url, &url, &db, args).await {
            println!("synthetic {db}: skipped: {e}");
            continue;
        }
        let mut t = Tally::default();
        dump_schema(args, &url, &db).await?;
        let engine = engine(registry, &url).await?;
        let gold_db = Database::connect(&DatabaseUrl::parse(&url)?, &ConnectOptions::default()).await?;
        for case in cases.iter().filter(|c| c.database.as_deref() == Some(&db)) {
            let o = score(&engine, &gold_db, case, args.details).await;
            t.add(o);
            tally.add(o);
        }
        per_db.push((db, t));
    }
    for (db, t) in &per_db {
        t.print(&format!("synthetic {db}"));
    }
    tally.print("synthetic (all)");
    Ok(())
}

/// The demo questions on a fresh demo database.
async fn demo(args: &OfflineArgs, registry: &Arc<PluginRegistry>) -> anyhow::Result<()> {
    let cases: Vec<Case> = serde_json::from_str(DEMO_QUESTIONS).context("reading the demo questions")?;
    let dir = tempfile::tempdir().context("a scratch folder for the demo database")?;
    let info = crate::demo::ensure(dir.path().join("demo.db")).await?;
    dump_schema(args, &info.url, "demo").await?;
    let engine = engine(registry, &info.url).await?;
    let gold_db = Database::connect(&DatabaseUrl::parse(&info.url)?, &ConnectOptions::default()).await?;
    let mut tally = Tally::default();
    for case in &cases {
        tally.add(score(&engine, &gold_db, case, args.details).await);
    }
    tally.print("demo");
    Ok(())
}

/// Write the schema of `url` as the prompt renders it (whole, before linking) to the schema dir.
async fn dump_schema(args: &OfflineArgs, url: &str, name: &str) -> anyhow::Result<()> {
    let Some(dir) = &args.schema_dir else { return Ok(()) };
    let db = Database::connect(&DatabaseUrl::parse(url)?, &ConnectOptions::default()).await?;
    let schema = crate::schema::introspect(&db, &crate::schema::IntrospectOptions::default()).await?;
    let opts = crate::schema::RenderOptions { samples_per_column: 5, ..crate::schema::RenderOptions::default() };
    let text = crate::schema::render(&schema, &opts).text;
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join(format!("{name}.txt")), text)?;
    db.close().await;
    Ok(())
}

/// An engine on `url` with the offline provider.
async fn engine(registry: &Arc<PluginRegistry>, url: &str) -> anyhow::Result<Engine> {
    let config = EngineConfig {
        settings: PipelineSettings::default(),
        database: Some(DatabaseUrl::parse(url)?),
        llm: offline_spec(),
        privacy: PrivacyPolicy::default(),
        connect: ConnectOptions::default(),
    };
    let store = Store::open("sqlite::memory:").await?;
    Ok(Engine::new(registry.clone(), config, store).await?)
}

/// The provider settings for the offline plugin. It never connects anywhere; the base URL is
/// only there because every provider configuration must have one.
pub fn offline_spec() -> ProviderSpec {
    ProviderSpec {
        provider: Some("offline".into()),
        base_url: Some("http://offline.invalid".into()),
        model: Some("offline".into()),
        max_retries: Some(0),
        timeout: Some(Duration::from_secs(30)),
        ..ProviderSpec::default()
    }
}

/// Ask one question and compare with the gold query's rows.
async fn score(engine: &Engine, gold_db: &Database, case: &Case, details: bool) -> Outcome {
    let session = format!("bench-{}", uuid::Uuid::new_v4().simple());
    let answer = engine.ask(Question::new(session, case.question.clone()), ProgressSink::none()).await;
    let (outcome, sql, note) = match answer {
        Err(e) => (Outcome::Failed, None, e.to_string()),
        Ok(a) if a.status != AnswerStatus::Executed => {
            let ran = a.attempts.iter().any(|t| t.outcome == "database-error" || t.outcome == "refused");
            let o = if ran { Outcome::Failed } else { Outcome::Declined };
            (o, a.sql.clone(), a.error.clone().or(a.description.clone()).unwrap_or_default())
        }
        Ok(a) => {
            let exec = ExecOptions { statement_timeout: Duration::from_secs(30), max_rows: 100_000 };
            match gold_db.execute_read_only(&case.gold_query, &exec).await {
                Err(e) => (Outcome::Wrong, a.sql.clone(), format!("the gold query failed: {e}")),
                Ok(gold) => {
                    let got = a.results.as_ref().map(|r| r.rows.clone()).unwrap_or_default();
                    let ordered = asks_for_order(&case.question);
                    if same_rows(&got, &gold.rows, ordered) {
                        (Outcome::Correct, a.sql.clone(), String::new())
                    } else if projection_matches(&got, &gold.rows, ordered) {
                        (Outcome::ExtraColumns, a.sql.clone(), "right rows, extra columns".into())
                    } else {
                        let note = format!("got {} rows, gold {} rows", got.len(), gold.rows.len());
                        (Outcome::Wrong, a.sql.clone(), note)
                    }
                }
            }
        }
    };
    if details {
        let id = match &case.id {
            Value::Null => String::new(),
            v => format!("#{v} "),
        };
        println!("{id}{outcome:?}: {}", case.question);
        if let Some(sql) = sql {
            println!("    {}", sql.split_whitespace().collect::<Vec<_>>().join(" "));
        }
        if !note.is_empty() {
            println!("    {}", note.chars().take(300).collect::<String>());
        }
    }
    outcome
}

/// Whether the question asks for rows in an order.
fn asks_for_order(question: &str) -> bool {
    let q = question.to_lowercase();
    ["order by", "sorted", "sort ", "in order", "ascending", "descending", "ranked", "rank "]
        .iter()
        .any(|w| q.contains(w))
}

/// Whether two results hold the same rows (as multisets unless `ordered`), numbers within 1e-6.
fn same_rows(a: &[Vec<Value>], b: &[Vec<Value>], ordered: bool) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut a: Vec<Vec<Value>> = a.to_vec();
    let mut b: Vec<Vec<Value>> = b.to_vec();
    if !ordered {
        a.sort_by_key(|r| row_key(r));
        b.sort_by_key(|r| row_key(r));
    }
    a.iter().zip(&b).all(|(x, y)| x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same_value(p, q)))
}

/// Whether some of `got`'s columns, in some order, hold exactly the gold rows.
fn projection_matches(got: &[Vec<Value>], gold: &[Vec<Value>], ordered: bool) -> bool {
    let width = |rows: &[Vec<Value>]| rows.first().map(Vec::len).unwrap_or(0);
    let (gw, ww) = (width(gold), width(got));
    if got.len() != gold.len() || gw == 0 || ww <= gw || ww > 12 {
        return false;
    }
    // Candidate answer columns for each gold column: the same values as a multiset.
    let column =
        |rows: &[Vec<Value>], i: usize| -> Vec<Vec<Value>> { rows.iter().map(|r| vec![r[i].clone()]).collect() };
    let candidates: Vec<Vec<usize>> =
        (0..gw).map(|j| (0..ww).filter(|&i| same_rows(&column(got, i), &column(gold, j), false)).collect()).collect();
    fn search(
        j: usize,
        chosen: &mut Vec<usize>,
        c: &[Vec<usize>],
        got: &[Vec<Value>],
        gold: &[Vec<Value>],
        ordered: bool,
    ) -> bool {
        if j == c.len() {
            let picked: Vec<Vec<Value>> = got.iter().map(|r| chosen.iter().map(|&i| r[i].clone()).collect()).collect();
            return same_rows(&picked, gold, ordered);
        }
        for &i in &c[j] {
            if chosen.contains(&i) {
                continue;
            }
            chosen.push(i);
            if search(j + 1, chosen, c, got, gold, ordered) {
                return true;
            }
            chosen.pop();
        }
        false
    }
    search(0, &mut Vec::new(), &candidates, got, gold, ordered)
}

fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        Value::Bool(b) => Some(f64::from(u8::from(*b))),
        _ => None,
    }
}

fn same_value(a: &Value, b: &Value) -> bool {
    match (number(a), number(b)) {
        (Some(x), Some(y)) => (x - y).abs() <= 1e-6 || (x - y).abs() <= 1e-9 * x.abs().max(y.abs()),
        _ => text(a) == text(b),
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "\u{0}null".into(),
        other => other.to_string(),
    }
}

/// A sort key for a row: numbers rounded so near-equal values sort together.
fn row_key(row: &[Value]) -> String {
    row.iter()
        .map(|v| match number(v) {
            Some(n) => format!("{:020.4}", n),
            None => text(v),
        })
        .collect::<Vec<_>>()
        .join("\u{1}")
}

/// `url` with its database name replaced by `db`.
fn with_database(url: &str, db: &str) -> anyhow::Result<String> {
    let mut u = reqwest::Url::parse(url).context("the PostgreSQL URL")?;
    u.set_path(db);
    Ok(u.to_string())
}

/// Create `db` and load its dump with `psql` when it does not exist yet.
async fn load_if_missing(admin_url: &str, url: &str, db: &str, args: &OfflineArgs) -> anyhow::Result<()> {
    let admin = Database::connect(&DatabaseUrl::parse(admin_url)?, &ConnectOptions::default()).await?;
    let exec = ExecOptions { statement_timeout: Duration::from_secs(10), max_rows: 10 };
    let sql = format!("SELECT 1 FROM pg_database WHERE datname = '{}'", db.replace('\'', "''"));
    let exists = admin.execute_read_only(&sql, &exec).await.map(|r| !r.rows.is_empty())?;
    admin.close().await;
    if exists {
        return Ok(());
    }
    let Some(dir) = &args.benchmarks_dir else { anyhow::bail!("no benchmark folder") };
    let dump = dir.join("synthetic-db").join(format!("{db}.sql"));
    if !dump.is_file() {
        anyhow::bail!("{} is missing", dump.display());
    }
    println!("loading {db} from {} …", dump.display());
    let mut pg = sqlx::PgConnection::connect(admin_url).await?;
    sqlx::Executor::execute(&mut pg, sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{}\"", db.replace('"', ""))))
        .await?;
    let status = tokio::process::Command::new("psql")
        .args(["-q", "-v", "ON_ERROR_STOP=1", "-d", url, "-f"])
        .arg(&dump)
        .stdout(std::process::Stdio::null())
        .status()
        .await
        .context("running psql (is the PostgreSQL client installed?)")?;
    if !status.success() {
        anyhow::bail!("psql could not load {} ({status})", dump.display());
    }
    Ok(())
}

use sqlx::Connection as _;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rows_compare_as_multisets_with_tolerance() {
        let a = vec![vec![json!("b"), json!(2.0000000001)], vec![json!("a"), json!("1.5")]];
        let b = vec![vec![json!("a"), json!(1.5)], vec![json!("b"), json!(2)]];
        assert!(same_rows(&a, &b, false));
        assert!(!same_rows(&a, &b, true));
        assert!(!same_rows(&a, &b[..1], false));
        assert!(!same_rows(&[vec![json!(1)]], &[vec![json!(1.1)]], false));
        assert!(asks_for_order("Rank departments by GPA") && !asks_for_order("Top 5 products"));
        let wide = vec![vec![json!(7), json!("a"), json!(1.5)], vec![json!(8), json!("b"), json!(2)]];
        assert!(projection_matches(&wide, &b, false));
        assert!(!projection_matches(&wide, &[vec![json!("a"), json!(9)], vec![json!("b"), json!(2)]], false));
    }

    #[test]
    fn the_demo_question_set_is_well_formed() {
        let cases: Vec<Case> = serde_json::from_str(DEMO_QUESTIONS).expect("json");
        assert!(cases.len() >= 30);
        assert!(cases.iter().all(|c| !c.question.is_empty() && c.gold_query.to_lowercase().starts_with("select")));
    }
}
