//! Executing SQL on user databases: PostgreSQL, MySQL/MariaDB and SQLite through sqlx.
//!
//! - [`DatabaseUrl`] / [`Engine`]: which engine a URL names, shown without its password;
//! - [`Database`]: a small connection pool to one user database, opened with a connect timeout;
//! - [`Database::execute_read_only`]: one statement in a read-only transaction with a statement
//!   timeout and a row cap, its values turned into JSON (see [`values`] for the mapping);
//! - [`DbError`]: what can go wrong, sorted so the pipeline knows what is worth a repair.
//!
//! The engines sit behind an enum of concrete pools rather than `sqlx::Any`, because decoding a
//! value faithfully needs each driver's own type information.

mod error;
mod execute;
mod url;
pub mod values;

use std::str::FromStr;
use std::time::Duration;

use serde::Serialize;
use sqlx::mysql::{MySqlConnectOptions, MySqlPool, MySqlPoolOptions};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};

pub use error::DbError;
pub use execute::{ExecOptions, ResultColumn, ResultSet};
pub use url::{DatabaseUrl, Engine};

/// The server behind a connection; MySQL and MariaDB differ in how a statement timeout is set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Flavor {
    /// PostgreSQL.
    PostgreSQL,
    /// Oracle MySQL (`max_execution_time`, milliseconds).
    MySQL,
    /// MariaDB (`max_statement_time`, seconds).
    MariaDB,
    /// SQLite.
    SQLite,
}

/// How to open a [`Database`].
#[derive(Clone, Debug)]
pub struct ConnectOptions {
    /// Limit for establishing a connection (and for waiting for a free one from the pool).
    pub connect_timeout: Duration,
    /// Most connections kept open to this database. Small: Quarry runs one query per question.
    pub max_connections: u32,
    /// Idle connections are closed after this long.
    pub idle_timeout: Duration,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        Self { connect_timeout: Duration::from_secs(10), max_connections: 4, idle_timeout: Duration::from_secs(300) }
    }
}

/// The concrete pool for each engine.
#[derive(Clone, Debug)]
pub(crate) enum Pool {
    Postgres(PgPool),
    MySql(MySqlPool),
    Sqlite(SqlitePool),
}

/// A handle on one user database: a small pool plus what was learnt about the server on connect.
/// Cheap to clone (the pool is shared).
#[derive(Clone, Debug)]
pub struct Database {
    pool: Pool,
    engine: Engine,
    flavor: Flavor,
    server_version: String,
    /// The URL without secrets, for logs and messages.
    redacted_url: String,
}

impl Database {
    /// Open a pool to `url` and check that the server answers, within `opts.connect_timeout`.
    ///
    /// SQLite files are opened read-only (`SQLITE_OPEN_READONLY`, plus `PRAGMA query_only`) and
    /// must exist. Errors never contain the URL's password.
    pub async fn connect(url: &DatabaseUrl, opts: &ConnectOptions) -> Result<Self, DbError> {
        let secret = url.password();
        let fail = |e: sqlx::Error| error::connect_error(&e, secret.as_deref());
        let connect = async {
            match url.engine() {
                Engine::Postgres => {
                    let options = PgConnectOptions::from_str(url.expose())
                        .map_err(fail)?
                        .application_name("quarry")
                        // Generated SQL rarely repeats; a small cache bounds server-side statements.
                        .statement_cache_capacity(32);
                    let pool = PgPoolOptions::new()
                        .max_connections(opts.max_connections)
                        .min_connections(0)
                        .acquire_timeout(opts.connect_timeout)
                        .idle_timeout(opts.idle_timeout)
                        .connect_with(options)
                        .await
                        .map_err(fail)?;
                    let version: String =
                        sqlx::query_scalar("SELECT version()").fetch_one(&pool).await.map_err(fail)?;
                    Ok((Pool::Postgres(pool), Flavor::PostgreSQL, version))
                }
                Engine::MySql => {
                    let options = MySqlConnectOptions::from_str(url.expose())
                        .map_err(fail)?
                        // Generated SQL rarely repeats; a small cache bounds server-side statements.
                        .statement_cache_capacity(32);
                    let pool = MySqlPoolOptions::new()
                        .max_connections(opts.max_connections)
                        .min_connections(0)
                        .acquire_timeout(opts.connect_timeout)
                        .idle_timeout(opts.idle_timeout)
                        .connect_with(options)
                        .await
                        .map_err(fail)?;
                    // Decoded as bytes: some servers report VERSION() with a binary collation.
                    let version: Vec<u8> =
                        sqlx::query_scalar("SELECT VERSION()").fetch_one(&pool).await.map_err(fail)?;
                    let version = String::from_utf8_lossy(&version).into_owned();
                    let flavor =
                        if version.to_ascii_lowercase().contains("mariadb") { Flavor::MariaDB } else { Flavor::MySQL };
                    Ok((Pool::MySql(pool), flavor, version))
                }
                Engine::Sqlite => {
                    let options = SqliteConnectOptions::from_str(url.expose())
                        .map_err(fail)?
                        .read_only(true)
                        .create_if_missing(false)
                        // Also refuses writes to the temp schema, which SQLITE_OPEN_READONLY allows.
                        .pragma("query_only", "ON")
                        .busy_timeout(opts.connect_timeout);
                    let pool = SqlitePoolOptions::new()
                        .max_connections(opts.max_connections)
                        .min_connections(0)
                        .acquire_timeout(opts.connect_timeout)
                        .idle_timeout(opts.idle_timeout)
                        .connect_with(options)
                        .await
                        .map_err(fail)?;
                    let version: String =
                        sqlx::query_scalar("SELECT sqlite_version()").fetch_one(&pool).await.map_err(fail)?;
                    Ok((Pool::Sqlite(pool), Flavor::SQLite, version))
                }
            }
        };
        // The pool's acquire timeout does not cover DNS or a stalled TLS handshake everywhere;
        // this does.
        let (pool, flavor, server_version) = tokio::time::timeout(opts.connect_timeout, connect)
            .await
            .map_err(|_| DbError::Connect(format!("timed out after {} ms", opts.connect_timeout.as_millis())))??;
        Ok(Self { pool, engine: url.engine(), flavor, server_version, redacted_url: url.redacted() })
    }

    /// The engine (PostgreSQL, MySQL/MariaDB, SQLite).
    pub fn engine(&self) -> Engine {
        self.engine
    }

    /// The server flavour, found on connect (MySQL and MariaDB are told apart by `VERSION()`).
    pub fn flavor(&self) -> Flavor {
        self.flavor
    }

    /// The server's version string as it reports it.
    pub fn server_version(&self) -> &str {
        &self.server_version
    }

    /// The URL this handle was opened with, password redacted.
    pub fn redacted_url(&self) -> &str {
        &self.redacted_url
    }

    /// Close every connection of the pool; later calls fail with [`DbError::Driver`].
    pub async fn close(&self) {
        match &self.pool {
            Pool::Postgres(p) => p.close().await,
            Pool::MySql(p) => p.close().await,
            Pool::Sqlite(p) => p.close().await,
        }
    }

    pub(crate) fn pool(&self) -> &Pool {
        &self.pool
    }
}

/// Sort a driver error from a catalog read (no statement timeout in force).
pub(crate) fn classify_error(engine: Engine, err: sqlx::Error) -> DbError {
    error::classify(engine, err, 0)
}
