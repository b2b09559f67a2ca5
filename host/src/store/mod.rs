//! The metadata store: Quarry's own tables (chat sessions and their turns today; users,
//! connections, providers and settings later) in SQLite by default or PostgreSQL to scale out.
//!
//! - [`Store`]: one handle over either backend, chosen by URL ([`Store::open`]) or by the
//!   environment ([`Store::from_env`]); opening applies the schema migrations embedded from
//!   `host/migrations/{sqlite,postgres}`;
//! - [`NewTurn`] / [`Turn`] / [`SessionSummary`] / [`Page`]: what goes in and comes out
//!   (the queries are in `sessions.rs`);
//! - [`StoreError`]: what can go wrong; messages never contain a password from the URL.
//!
//! The two backends sit behind an enum of concrete pools (as in [`crate::db`]), not `sqlx::Any`,
//! so each keeps its native types (`TIMESTAMPTZ`, `JSONB` on PostgreSQL). Each query is written
//! once with `$1`-style placeholders, which both drivers accept, and run on either pool through
//! `with_pool!`; the few differences live in `codec.rs`.

pub mod answer_cache;
pub mod app_settings;
pub mod chat;
mod codec;
pub mod connections;
mod error;
pub mod examples;
pub mod providers;
pub mod semantic;
mod sessions;
pub mod users;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};

use crate::db::{DatabaseUrl, Engine};

pub use error::StoreError;
pub use sessions::{MAX_SESSION_ID_CHARS, MAX_TITLE_CHARS, NewTurn, Page, SessionSummary, Turn};

/// The environment variable that selects the metadata store's URL (see [`Store::from_env`]).
pub const METADATA_URL_VAR: &str = "QUARRY_METADATA_URL";

/// The SQLite file [`Store::from_env`] uses inside the data folder.
pub const DEFAULT_SQLITE_FILE: &str = "quarry.db";

/// How long a SQLite connection waits for another writer before failing with "database is locked".
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections to a SQLite file: readers run in parallel under WAL, writers queue on the busy timeout.
const SQLITE_MAX_CONNECTIONS: u32 = 4;
/// Connections to PostgreSQL per process (per replica).
const PG_MAX_CONNECTIONS: u32 = 10;
/// Limit for connecting, and for waiting for a free pooled connection.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// Run one body against the store's concrete pool.
///
/// `with_pool!(store, |pool, codec| body)` expands `body` once per backend, with `pool` bound to
/// the `SqlitePool` or `PgPool` and `codec` naming `codec::sqlite` or `codec::postgres`.
macro_rules! with_pool {
    ($store:expr, |$pool:ident, $codec:ident| $body:expr) => {
        match &$store.pool {
            $crate::store::Pool::Sqlite($pool) => {
                #[allow(unused_imports)]
                use $crate::store::codec::sqlite as $codec;
                $body
            }
            $crate::store::Pool::Postgres($pool) => {
                #[allow(unused_imports)]
                use $crate::store::codec::postgres as $codec;
                $body
            }
        }
    };
}
use with_pool;

/// The concrete pool for each backend.
#[derive(Clone, Debug)]
enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// The metadata store. Clone is cheap (shared pool).
///
/// Every method is safe to call from many tasks and many processes (replicas) at once; writes that
/// must agree with each other (the `seq` of a session's turns) are ordered by the database.
#[derive(Clone, Debug)]
pub struct Store {
    pool: Pool,
}

impl Store {
    /// Open the store at `url` and apply any migrations it has not seen yet.
    ///
    /// Accepted URLs:
    /// - `sqlite:PATH`, `sqlite://PATH` (relative), `sqlite:///ABSOLUTE/PATH`: a file, created if
    ///   missing (its folder too), opened with WAL, foreign keys on and a busy timeout;
    /// - `sqlite::memory:`: a private in-memory database, gone when the store is dropped (tests);
    /// - `postgres://…`, `postgresql://…`: tables go into the first schema of the `search_path`
    ///   (select another with `?options=-c%20search_path%3Dquarry`).
    ///
    /// Fails with [`StoreError::Open`] for another scheme, a malformed URL or an unreachable
    /// database, and with [`StoreError::Migrate`] when the schema cannot be brought up to date.
    /// The URL's password never appears in an error.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        let url = url.trim();
        let parsed = DatabaseUrl::parse(url)
            .map_err(|e| StoreError::Open { target: scheme_only(url), reason: e.to_string() })?;
        match parsed.engine() {
            Engine::Sqlite => {
                let fail = |e: sqlx::Error| StoreError::Open { target: url.to_string(), reason: e.to_string() };
                let options = SqliteConnectOptions::from_str(url).map_err(fail)?;
                let rest = url.trim_start_matches("sqlite://").trim_start_matches("sqlite:");
                let in_memory = rest.starts_with(":memory:") || rest.contains("mode=memory");
                Self::open_sqlite_with(options, in_memory, url).await
            }
            Engine::Postgres => Self::open_postgres(&parsed).await,
            Engine::MySql => Err(StoreError::Open {
                target: parsed.redacted(),
                reason: "MySQL / MariaDB cannot hold the metadata store; use sqlite: or postgres://".to_string(),
            }),
        }
    }

    /// Open (creating if missing) the SQLite file at `path` and apply migrations.
    ///
    /// The same as [`Store::open`] with a `sqlite:` URL, without having to spell the path as a URL.
    pub async fn open_sqlite(path: &Path) -> Result<Store, StoreError> {
        let options = SqliteConnectOptions::new().filename(path);
        Self::open_sqlite_with(options, false, &path.display().to_string()).await
    }

    /// The store the operator configured: `QUARRY_METADATA_URL` if set (and not blank), else the
    /// SQLite file `<data_dir>/quarry.db`, creating `data_dir` (mode 0700 on unix) if missing.
    ///
    /// Errors as for [`Store::open`]; also [`StoreError::Open`] when `data_dir` cannot be created.
    pub async fn from_env(data_dir: &Path) -> Result<Store, StoreError> {
        match std::env::var(METADATA_URL_VAR) {
            Ok(url) if !url.trim().is_empty() => Self::open(&url).await,
            _ => {
                create_private_dir(data_dir).map_err(|e| StoreError::Open {
                    target: data_dir.display().to_string(),
                    reason: format!("cannot create the data folder: {e}"),
                })?;
                Self::open_sqlite(&data_dir.join(DEFAULT_SQLITE_FILE)).await
            }
        }
    }

    /// Which backend holds the store, `"sqlite"` or `"postgres"`, for logs.
    pub fn backend(&self) -> &'static str {
        match self.pool {
            Pool::Sqlite(_) => "sqlite",
            Pool::Postgres(_) => "postgres",
        }
    }

    /// Close every pooled connection, waiting for those in use to come back. Every clone of this
    /// store fails with [`StoreError::Database`] afterwards. Optional: dropping the last clone
    /// closes the pool too, but without waiting (a SQLite file is then checkpointed lazily).
    pub async fn close(&self) {
        with_pool!(self, |pool, _codec| pool.close().await)
    }

    async fn open_sqlite_with(
        options: SqliteConnectOptions,
        in_memory: bool,
        target: &str,
    ) -> Result<Store, StoreError> {
        let fail = |reason: String| StoreError::Open { target: target.to_string(), reason };
        let mut options = options.create_if_missing(true).foreign_keys(true).busy_timeout(SQLITE_BUSY_TIMEOUT);
        let pool_options = if in_memory {
            // One connection, kept forever: the database lives only as long as a connection to
            // it, and a shared-cache database would answer concurrent writers with SQLITE_LOCKED
            // rather than wait.
            SqlitePoolOptions::new().max_connections(1).min_connections(1).idle_timeout(None).max_lifetime(None)
        } else {
            prepare_sqlite_file(options.get_filename()).map_err(|e| fail(e.to_string()))?;
            options = options.journal_mode(SqliteJournalMode::Wal).synchronous(SqliteSynchronous::Normal);
            SqlitePoolOptions::new().max_connections(SQLITE_MAX_CONNECTIONS)
        };
        let pool = pool_options
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(|e| fail(e.to_string()))?;
        // `migrate!` embeds the files at build time. Cargo notices an edited migration but not a new
        // file unless something else changed: touch this file (or have build.rs watch
        // `migrations/`) after adding one.
        sqlx::migrate!("./migrations/sqlite").run(&pool).await.map_err(StoreError::Migrate)?;
        Ok(Store { pool: Pool::Sqlite(pool) })
    }

    async fn open_postgres(url: &DatabaseUrl) -> Result<Store, StoreError> {
        let secret = url.password();
        let fail = |e: sqlx::Error| StoreError::Open {
            target: url.redacted(),
            reason: error::scrub(&e.to_string(), secret.as_deref()),
        };
        let options = PgConnectOptions::from_str(url.expose()).map_err(fail)?.application_name("quarry");
        let pool = PgPoolOptions::new()
            .max_connections(PG_MAX_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(fail)?;
        sqlx::migrate!("./migrations/postgres").run(&pool).await.map_err(StoreError::Migrate)?;
        Ok(Store { pool: Pool::Postgres(pool) })
    }
}

/// For an error about a URL that did not parse: only its scheme, which holds no secret.
fn scheme_only(url: &str) -> String {
    let scheme: String = url.split(':').next().unwrap_or("").chars().take(20).collect();
    format!("{scheme}:…")
}

/// Create `dir` and its parents if missing; on unix a folder created here is private (0700).
/// An existing folder is left as it is.
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Before SQLite opens `path`: create its folder (private) and, on unix, the empty file with mode
/// 0600, so the database (and its `-wal`/`-shm` files, which copy the mode) is not world-readable.
fn prepare_sqlite_file(path: &Path) -> std::io::Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        create_private_dir(parent)?;
    }
    let mut open = std::fs::OpenOptions::new();
    open.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut open, 0o600);
    match open.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}
