//! Running one statement read-only, with a statement timeout and a row cap.
//!
//! Per engine:
//! - **PostgreSQL**: `BEGIN; SET TRANSACTION READ ONLY; SET LOCAL statement_timeout = N` (one
//!   round trip), the statement, `ROLLBACK`. The server stops the statement at the timeout
//!   (SQLSTATE 57014); dropping a connection would not, so the timeout is the real limit.
//! - **MySQL / MariaDB**: `SET SESSION max_execution_time` (MySQL, ms) or `max_statement_time`
//!   (MariaDB, s), `SET SESSION TRANSACTION READ ONLY`, `START TRANSACTION READ ONLY`, the
//!   statement, `ROLLBACK`. The session-level read-only matters: DDL commits implicitly and
//!   would otherwise run *outside* the read-only transaction (measured on MariaDB 10.11:
//!   `CREATE TABLE` succeeds after `START TRANSACTION READ ONLY` alone).
//! - **SQLite**: the pool opens files read-only with `PRAGMA query_only`; the timeout is a
//!   progress handler that interrupts the statement once its deadline passes (checked every
//!   1000 virtual-machine instructions), so a runaway `WITH RECURSIVE` stops on time.
//!
//! The statement goes through the extended protocol / a prepared statement (never the simple
//! query protocol), so PostgreSQL and MySQL reject a second statement smuggled after a `;`.
//! On PostgreSQL and MySQL the prepared statement is a named, cached one. PostgreSQL: with the
//! unnamed statement, sqlx's mid-query lookup of an unknown type (an enum, a domain, an
//! extension type) replaces it, and the query fails with "unnamed prepared statement does not
//! exist". MySQL: an uncached statement costs ~42 ms (prepare, execute, close) against ~1 ms
//! cached, measured on MariaDB 10.11 here. The caches are small (see `Database::connect`) and
//! evict old statements.
//! Rows are streamed and reading stops at `max_rows + 1`, which tells `truncated` without
//! collecting everything. A tokio timeout a little longer than the statement timeout backs all
//! of this up; a connection it abandons is closed, never returned to the pool mid-statement.
//!
//! [`Database::execute_read_only_until`] also stops the statement when the caller says it no
//! longer wants the result (the client went away). Dropping the connection would not stop it on
//! the server, so the statement is cancelled there: PostgreSQL `pg_cancel_backend(pid)` and
//! MySQL `KILL QUERY id` from another pooled connection (the id is read before the statement
//! starts), SQLite through the progress handler. The connection is then closed, not pooled.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures::TryStreamExt;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::pool::PoolConnection;
use sqlx::{AssertSqlSafe, Column, Database as SqlxDatabase, Executor, Row, SqlSafeStr, Statement, TypeInfo};

use super::error::{DbError, classify};
use super::values;
use super::{Database, Engine, Flavor, Pool};

/// Limits for one execution.
#[derive(Clone, Debug)]
pub struct ExecOptions {
    /// The statement is stopped after this long ([`DbError::Timeout`]).
    pub statement_timeout: Duration,
    /// At most this many rows are returned; more set [`ResultSet::truncated`] (not an error).
    pub max_rows: usize,
}

impl Default for ExecOptions {
    fn default() -> Self {
        Self { statement_timeout: Duration::from_secs(30), max_rows: 1000 }
    }
}

/// A result column: its name and the database's name for its type (`int4`, `DECIMAL`, `TEXT`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResultColumn {
    /// Column name or alias.
    pub name: String,
    /// The driver's type name; tells a client that a string column holds decimals, say.
    pub type_name: String,
}

/// The rows of one statement, values as JSON (see [`super::values`] for the mapping).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResultSet {
    /// Columns in order. Known even when there are no rows.
    pub columns: Vec<ResultColumn>,
    /// Rows, each as long as `columns`.
    pub rows: Vec<Vec<Value>>,
    /// `rows.len()`.
    pub row_count: usize,
    /// True when the statement had more rows than the cap.
    pub truncated: bool,
    /// Wall time of the execution, including transaction set-up and tear-down.
    pub execution_time_ms: u64,
}

/// Extra time the tokio backstop allows over the statement timeout before giving up on a
/// connection: enough for the server's own timeout error to arrive first.
fn backstop(timeout: Duration) -> Duration {
    timeout + (timeout / 10).max(Duration::from_millis(1000))
}

/// How long cleanup (ROLLBACK) may take before the connection is thrown away instead.
const CLEANUP_TIMEOUT: Duration = Duration::from_secs(5);

/// How long cancelling a statement on the server may take (a pooled connection to send it on,
/// and the round trip) before the caller is let go anyway; the statement timeout still applies.
const CANCEL_TIMEOUT: Duration = Duration::from_secs(2);

impl Database {
    /// Run one statement read-only with `opts`' timeout and row cap.
    ///
    /// Errors: [`DbError::Timeout`] when the timeout stops it, [`DbError::ReadOnly`] when it tries
    /// to write, [`DbError::Sql`] with the database's message for anything else the database
    /// rejects. More rows than `max_rows` is not an error: the result is `truncated`.
    pub async fn execute_read_only(&self, sql: &str, opts: &ExecOptions) -> Result<ResultSet, DbError> {
        self.execute_read_only_until(sql, opts, std::future::pending()).await
    }

    /// [`Database::execute_read_only`], stopped on the server as soon as `cancel` completes
    /// ([`DbError::Cancelled`]); the connection is then closed rather than pooled.
    pub async fn execute_read_only_until(
        &self,
        sql: &str,
        opts: &ExecOptions,
        cancel: impl Future<Output = ()> + Send,
    ) -> Result<ResultSet, DbError> {
        let started = Instant::now();
        let timeout_ms = u64::try_from(opts.statement_timeout.as_millis()).unwrap_or(u64::MAX).max(1);
        let mut result = match self.pool() {
            Pool::Postgres(pool) => {
                let mut conn = pool.acquire().await.map_err(|e| classify(Engine::Postgres, e, timeout_ms))?;
                let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
                    .fetch_one(&mut *conn)
                    .await
                    .map_err(|e| classify(Engine::Postgres, e, timeout_ms))?;
                let setup = format!("BEGIN; SET TRANSACTION READ ONLY; SET LOCAL statement_timeout = {timeout_ms}");
                let kill = async move {
                    let mut other = pool.acquire().await?;
                    sqlx::query("SELECT pg_cancel_backend($1)").bind(pid).execute(&mut *other).await.map(drop)
                };
                let statement =
                    Planned { sql, opts, timeout_ms, setup, cleanup: "ROLLBACK".to_string(), persistent: true };
                run(conn, Engine::Postgres, statement, values::postgres::column_value, cancel, kill).await
            }
            Pool::MySql(pool) => {
                let mut conn = pool.acquire().await.map_err(|e| classify(Engine::MySql, e, timeout_ms))?;
                let id: u64 = sqlx::query_scalar("SELECT CONNECTION_ID()")
                    .fetch_one(&mut *conn)
                    .await
                    .map_err(|e| classify(Engine::MySql, e, timeout_ms))?;
                let (set_timeout, reset_timeout) = match self.flavor() {
                    Flavor::MariaDB => (
                        format!("SET SESSION max_statement_time = {:.3}", timeout_ms as f64 / 1000.0),
                        "SET SESSION max_statement_time = 0",
                    ),
                    _ => {
                        (format!("SET SESSION max_execution_time = {timeout_ms}"), "SET SESSION max_execution_time = 0")
                    }
                };
                // Re-asserted every time: the previous statement on this connection may have
                // been `SET SESSION transaction_read_only = 0`, which MySQL allows mid-transaction.
                let setup = format!("{set_timeout}; SET SESSION TRANSACTION READ ONLY; START TRANSACTION READ ONLY");
                let kill = async move {
                    let mut other = pool.acquire().await?;
                    // `id` is the server's own number, not user input.
                    (&mut *other).execute(sqlx::raw_sql(AssertSqlSafe(format!("KILL QUERY {id}")))).await.map(drop)
                };
                let cleanup = format!("ROLLBACK; {reset_timeout}");
                let statement = Planned { sql, opts, timeout_ms, setup, cleanup, persistent: true };
                run(conn, Engine::MySql, statement, values::mysql::column_value, cancel, kill).await
            }
            Pool::Sqlite(pool) => {
                let mut conn = pool.acquire().await.map_err(|e| classify(Engine::Sqlite, e, timeout_ms))?;
                let deadline = Instant::now() + opts.statement_timeout;
                let stop = Arc::new(AtomicBool::new(false));
                {
                    let mut handle = conn.lock_handle().await.map_err(|e| classify(Engine::Sqlite, e, timeout_ms))?;
                    let stop = stop.clone();
                    // Returning false interrupts the running statement with SQLITE_INTERRUPT.
                    handle
                        .set_progress_handler(1000, move || Instant::now() < deadline && !stop.load(Ordering::Relaxed));
                }
                let kill = async move {
                    stop.store(true, Ordering::Relaxed);
                    Ok::<(), sqlx::Error>(())
                };
                // `query_only` again: a previous statement may have switched it off.
                let setup = "PRAGMA query_only = ON".to_string();
                let statement = Planned { sql, opts, timeout_ms, setup, cleanup: String::new(), persistent: false };
                run(conn, Engine::Sqlite, statement, values::sqlite::column_value, cancel, kill).await
            }
        }?;
        result.execution_time_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        Ok(result)
    }
}

/// One statement to run and the engine-specific SQL around it.
struct Planned<'a> {
    sql: &'a str,
    opts: &'a ExecOptions,
    timeout_ms: u64,
    /// Run first (transaction, read-only, timeout); empty for none.
    setup: String,
    /// Run after (rollback, reset); empty for none.
    cleanup: String,
    /// Whether the prepared statement is cached on the connection.
    persistent: bool,
}

/// Set up, stream the statement's rows up to the cap, and clean up; generic over the engine.
/// When `cancel` completes first, `kill` stops the statement on the server and the connection
/// is closed.
async fn run<DB>(
    mut conn: PoolConnection<DB>,
    engine: Engine,
    statement: Planned<'_>,
    convert: fn(&DB::Row, usize) -> Value,
    cancel: impl Future<Output = ()>,
    kill: impl Future<Output = Result<(), sqlx::Error>>,
) -> Result<ResultSet, DbError>
where
    DB: SqlxDatabase + sqlx::database::HasStatementCache,
    DB::Arguments: sqlx::IntoArguments<DB>,
    DB::Connection: SqliteHook,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
{
    let Planned { sql, opts, timeout_ms, setup, cleanup, persistent } = statement;
    let body = async {
        if !setup.is_empty() {
            (&mut *conn).execute(sqlx::raw_sql(AssertSqlSafe(setup))).await?;
        }
        let mut columns: Option<Vec<ResultColumn>> = None;
        let mut rows = Vec::new();
        let mut truncated = false;
        {
            let query = sqlx::query::<DB>(AssertSqlSafe(sql.to_string())).persistent(persistent);
            let mut stream = (&mut *conn).fetch(query);
            while let Some(row) = stream.try_next().await? {
                if columns.is_none() {
                    columns = Some(row.columns().iter().map(result_column).collect());
                }
                if rows.len() >= opts.max_rows {
                    // One row past the cap is all it takes to know there are more.
                    truncated = true;
                    break;
                }
                rows.push((0..row.len()).map(|i| convert(&row, i)).collect::<Vec<_>>());
            }
        }
        let columns = match columns {
            Some(c) => c,
            // No rows: ask for the statement's shape so the caller can still show headers.
            None => (&mut *conn)
                .prepare(AssertSqlSafe(sql.to_string()).into_sql_str())
                .await?
                .columns()
                .iter()
                .map(result_column)
                .collect(),
        };
        Ok::<_, sqlx::Error>(ResultSet { columns, row_count: rows.len(), rows, truncated, execution_time_ms: 0 })
    };
    let mut body = Box::pin(tokio::time::timeout(backstop(opts.statement_timeout), body));
    let outcome = tokio::select! {
        biased;
        outcome = &mut body => Some(outcome),
        () = cancel => None,
    };
    drop(body);
    let Some(outcome) = outcome else {
        match tokio::time::timeout(CANCEL_TIMEOUT, kill).await {
            Ok(Ok(())) => tracing::debug!("statement cancelled: the caller went away"),
            Ok(Err(e)) => {
                tracing::warn!("could not cancel an abandoned statement: {}", classify(engine, e, timeout_ms))
            }
            Err(_) => tracing::warn!("could not cancel an abandoned statement in time; its timeout still applies"),
        }
        conn.close_on_drop();
        return Err(DbError::Cancelled);
    };
    let result = match outcome {
        Ok(r) => r.map_err(|e| classify(engine, e, timeout_ms)),
        Err(_) => {
            // Abandoned mid-statement: the connection's state is unknown, so it must not go back
            // to the pool.
            conn.close_on_drop();
            return Err(DbError::Timeout { timeout_ms });
        }
    };
    let mut clean = true;
    if !cleanup.is_empty() {
        let rollback =
            tokio::time::timeout(CLEANUP_TIMEOUT, (&mut *conn).execute(sqlx::raw_sql(AssertSqlSafe(cleanup))));
        clean = matches!(rollback.await, Ok(Ok(_)));
    }
    clean &= conn.after_statement().await;
    if !clean {
        conn.close_on_drop();
    }
    result
}

fn result_column<C: Column>(c: &C) -> ResultColumn {
    ResultColumn { name: c.name().to_string(), type_name: c.type_info().name().to_string() }
}

/// Per-engine work after the statement: SQLite removes its progress handler so that the pooled
/// connection carries no deadline into its next use. Returns false when the connection should
/// be discarded.
pub(crate) trait SqliteHook {
    fn after_statement(&mut self) -> impl std::future::Future<Output = bool> + Send;
}

impl SqliteHook for sqlx::PgConnection {
    async fn after_statement(&mut self) -> bool {
        true
    }
}

impl SqliteHook for sqlx::MySqlConnection {
    async fn after_statement(&mut self) -> bool {
        true
    }
}

impl SqliteHook for sqlx::SqliteConnection {
    async fn after_statement(&mut self) -> bool {
        match self.lock_handle().await {
            Ok(mut handle) => {
                handle.remove_progress_handler();
                true
            }
            Err(_) => false,
        }
    }
}
