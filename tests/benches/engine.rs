//! Engine overhead per question: end-to-end latency minus LLM time minus database time, with an
//! instant local LLM, at concurrency 1 and 16 — median and p99, plus throughput.
//!
//! `cargo bench -p quarry-e2e --bench engine`. It starts the real server (`QUARRY_BIN` when set,
//! e.g. a release build; otherwise the workspace's debug build, built if needed) on a SQLite
//! fixture with the instant fake LLM, warms up, then asks `QUARRY_BENCH_QUESTIONS` (default 300)
//! distinct questions through `POST /inference/sqlQueryEngine` at each concurrency.
//!
//! - end-to-end: measured by the client around each request;
//! - LLM time: measured inside the fake LLM for each of the question's calls;
//! - DB time: the query the server ran (its `currentQuery`), timed directly through sqlx on the
//!   same file, median of many runs;
//! - overhead = end-to-end − LLM time − DB time.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use futures::StreamExt;
use quarry_e2e::server::{binary_profile, quarry_bin};
use quarry_e2e::{Backend, FakeLlm, Fixture, PARIS_PLAN, PARIS_SQL, Server, ServerBuilder, json_answer};
use serde_json::json;

/// Questions answered before measuring (plugin instances, connection pools, schema cache).
const WARM_UP: usize = 30;
/// Runs of the query timed directly for the DB time.
const DB_RUNS: usize = 500;
/// The concurrencies measured.
const CONCURRENCY: [usize; 2] = [1, 16];

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a runtime");
    runtime.block_on(bench());
}

async fn bench() {
    let questions: usize = std::env::var("QUARRY_BENCH_QUESTIONS").ok().and_then(|v| v.parse().ok()).unwrap_or(300);
    let bin = tokio::task::spawn_blocking(quarry_bin).await.expect("locating the quarry binary");
    let db = Fixture::create(Backend::Sqlite).await.expect("SQLite needs no configuration");
    let llm = FakeLlm::instant(json_answer(PARIS_PLAN, PARIS_SQL)).await;
    let server = ServerBuilder::new().llm(&llm).database(&db).env("RUST_LOG", "warn").start().await;

    println!("quarry engine overhead: {} build ({})", binary_profile(&bin), bin.display());
    println!("SQLite fixture, instant fake LLM, {questions} distinct questions per run, warm-up {WARM_UP}");

    let warm = ask_all(&server, "warm", WARM_UP, 4).await;
    let executed = warm.executed_sql.clone().expect("the warm-up answers carry the executed SQL");
    let db_time = db_median(&db, &executed).await;
    println!("DB time: {} (median of {DB_RUNS} direct runs of `{executed}`)", ms(db_time));

    for concurrency in CONCURRENCY {
        llm.clear_calls();
        let tag = format!("c{concurrency}");
        let run = ask_all(&server, &tag, questions, concurrency).await;
        let mut llm_time: HashMap<String, Duration> = HashMap::new();
        let calls = llm.calls();
        for call in &calls {
            if let Some(id) = question_id(&call.last_user_message()) {
                *llm_time.entry(id).or_default() += call.handling;
            }
        }
        let mut end_to_end = Vec::with_capacity(run.samples.len());
        let mut overhead = Vec::with_capacity(run.samples.len());
        let mut llm_each = Vec::with_capacity(run.samples.len());
        for (id, e2e) in &run.samples {
            let llm = llm_time.get(id).copied().unwrap_or_default();
            end_to_end.push(*e2e);
            llm_each.push(llm);
            overhead.push(e2e.saturating_sub(llm).saturating_sub(db_time));
        }
        println!(
            "concurrency {concurrency:>2}: end-to-end median {} p99 {} | overhead median {} p99 {} | LLM median {} | \
             {:.0} questions/s | {} LLM calls",
            ms(percentile(&mut end_to_end, 50.0)),
            ms(percentile(&mut end_to_end, 99.0)),
            ms(percentile(&mut overhead, 50.0)),
            ms(percentile(&mut overhead, 99.0)),
            ms(percentile(&mut llm_each, 50.0)),
            questions as f64 / run.wall.as_secs_f64(),
            calls.len(),
        );
    }
}

/// What one batch of questions measured.
struct Run {
    /// `(question id, end-to-end latency)` per question.
    samples: Vec<(String, Duration)>,
    /// Wall time of the whole batch.
    wall: Duration,
    /// The SQL the server ran (the same for every question).
    executed_sql: Option<String>,
}

/// Ask `n` distinct questions, `concurrency` at a time; each must succeed.
async fn ask_all(server: &Server, tag: &str, n: usize, concurrency: usize) -> Run {
    let started = Instant::now();
    let results: Vec<(String, Duration, Option<String>)> = futures::stream::iter(0..n)
        .map(|i| {
            let id = format!("{tag}-{i}");
            async move {
                let body = json!({"basePrompt": format!("Which customers live in Paris? [q:{id}]"), "retryCount": 0});
                let t = Instant::now();
                let reply = server.inference("sqlQueryEngine", &format!("bench-{id}"), &body).await;
                let elapsed = t.elapsed();
                let body = reply.expect(200);
                let evaluation = &body["agentResponse"]["evaluation"];
                assert_eq!(evaluation["results"].as_array().map(Vec::len), Some(2), "a wrong answer: {body}");
                (id, elapsed, evaluation["currentQuery"].as_str().map(str::to_string))
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let wall = started.elapsed();
    let executed_sql = results.iter().find_map(|r| r.2.clone());
    Run { samples: results.into_iter().map(|(id, d, _)| (id, d)).collect(), wall, executed_sql }
}

/// The `[q:…]` id in a question.
fn question_id(text: &str) -> Option<String> {
    let start = text.find("[q:")? + 3;
    let end = start + text[start..].find(']')?;
    Some(text[start..end].to_string())
}

/// Median time of running `sql` to completion directly on the fixture.
async fn db_median(db: &Fixture, sql: &str) -> Duration {
    let pool = db.sqlite_pool().expect("a SQLite fixture");
    let mut times = Vec::with_capacity(DB_RUNS);
    for _ in 0..DB_RUNS {
        let t = Instant::now();
        sqlx::query(sqlx::AssertSqlSafe(sql.to_string())).fetch_all(pool).await.expect("the executed SQL runs");
        times.push(t.elapsed());
    }
    percentile(&mut times, 50.0)
}

/// The `p`th percentile (nearest rank) of `values`.
fn percentile(values: &mut [Duration], p: f64) -> Duration {
    if values.is_empty() {
        return Duration::ZERO;
    }
    values.sort_unstable();
    let rank = ((p / 100.0) * values.len() as f64).ceil() as usize;
    values[rank.clamp(1, values.len()) - 1]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}
