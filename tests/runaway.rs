//! A query that would run for hours is stopped by `QUARRY_STATEMENT_TIMEOUT_MS`, on the
//! database itself, and the server goes on answering.

use std::time::{Duration, Instant};

use quarry_e2e::{
    Backend, Fixture, Harness, PARIS_PLAN, PARIS_QUESTION, PARIS_SQL, chat_id, on_every_backend, paris_rows,
};
use serde_json::json;

on_every_backend!(a_runaway_query_is_stopped);

/// The statement timeout the server gets.
const TIMEOUT_MS: &str = "1500";
/// How long the database may take to forget a cancelled statement (a guard, not a speed check).
const CANCEL_GRACE: Duration = Duration::from_secs(15);
/// A marker in the runaway query (its column alias), to find it among the database's running
/// statements.
const MARKER: &str = "runaway_987654321";

/// A cross join of four 1 000-row recursive CTEs: 10^12 rows to count, hours of work on any of
/// the engines. (Not a count to a billion: MariaDB stops recursing after
/// `max_recursive_iterations`, 1 000 by default, and quietly returns 1 001.)
fn runaway_sql() -> String {
    format!(
        "WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < 1000) \
         SELECT COUNT(*) AS {MARKER} FROM c a CROSS JOIN c b CROSS JOIN c d CROSS JOIN c e"
    )
}

/// How many statements with [`MARKER`] the database is running now, other than this check.
async fn still_running(db: &Fixture) -> i64 {
    match db.backend() {
        Backend::Sqlite => 0, // in the server's process: nothing to look at from outside
        Backend::Postgres => {
            db.scalar(&format!(
                "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() AND state = 'active' \
                 AND pid <> pg_backend_pid() AND query LIKE '%{MARKER}%'"
            ))
            .await
        }
        Backend::MySql => {
            db.scalar(&format!(
                "SELECT COUNT(*) FROM information_schema.processlist WHERE db = DATABASE() AND command = 'Query' \
                 AND id <> CONNECTION_ID() AND info LIKE '%{MARKER}%'"
            ))
            .await
        }
    }
}

async fn a_runaway_query_is_stopped(backend: Backend) {
    let Some(h) = Harness::start_with(backend, |s| s.env("QUARRY_STATEMENT_TIMEOUT_MS", TIMEOUT_MS)).await else {
        return;
    };
    h.llm.answer_sql("Count every combination", &runaway_sql());

    let reply = h
        .server
        .inference(
            "sqlQueryEngine",
            &chat_id("runaway"),
            &json!({"basePrompt": "Count every combination.", "retryCount": 0}),
        )
        .await;
    let body = reply.expect(200);
    let evaluation = &body["agentResponse"]["evaluation"];
    assert_eq!(evaluation["results"], json!([]), "the runaway query must not produce rows: {body:#}");
    let observation = evaluation["currentObservation"].as_str().unwrap_or_default().to_lowercase();
    assert!(
        ["timeout", "timed out", "time limit", "cancel", "interrupt", "max_statement_time"]
            .iter()
            .any(|w| observation.contains(w)),
        "the observation should say the statement timed out: {body:#}"
    );

    // The database itself stopped the statement (not just the server giving up on it).
    let deadline = Instant::now() + CANCEL_GRACE;
    while still_running(&h.db).await > 0 {
        assert!(Instant::now() < deadline, "the runaway statement still runs on the database after the timeout");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    assert_eq!(h.server.get("/ping").await.status, 200, "the server still answers");
    h.llm.answer_sql(PARIS_PLAN, PARIS_SQL);
    let next =
        h.server.inference("sqlQueryEngine", &chat_id("after-runaway"), &json!({"basePrompt": PARIS_QUESTION})).await;
    assert_eq!(
        next.expect(200)["agentResponse"]["evaluation"]["results"],
        paris_rows(),
        "the next question is answered"
    );
}
