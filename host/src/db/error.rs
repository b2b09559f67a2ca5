//! Errors from user databases, sorted into the cases the pipeline reacts to differently: a
//! timeout or a read-only refusal is not worth a repair attempt the way a SQL error is.
//!
//! Messages carry the database's own text (the repair loop feeds it back to the LLM) but never
//! credentials: connect errors are scrubbed of the URL's password before they are built.

use super::url::Engine;

/// What went wrong talking to a user database.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The URL could not be used (unknown scheme, malformed). Never contains the URL itself.
    #[error("invalid database URL: {0}")]
    InvalidUrl(String),
    /// Could not connect (network, TLS, authentication, unknown database) within the connect timeout.
    #[error("could not connect to the database: {0}")]
    Connect(String),
    /// The statement ran past its time limit and was stopped.
    #[error("the query was stopped after the {timeout_ms} ms statement timeout")]
    Timeout {
        /// The limit that was reached, in milliseconds.
        timeout_ms: u64,
    },
    /// The statement tried to write (or do something else a read-only transaction forbids).
    #[error("refused in a read-only transaction: {message}")]
    ReadOnly {
        /// The database's message.
        message: String,
    },
    /// The database rejected the statement (syntax, unknown column, permissions, …).
    #[error("{message}")]
    Sql {
        /// The database's message, as it reported it.
        message: String,
        /// SQLSTATE (PostgreSQL, MySQL), error number (MySQL/MariaDB, as `"1064"`-style text
        /// after the SQLSTATE) or result code (SQLite), when the driver gave one.
        code: Option<String>,
    },
    /// Anything else from the driver (protocol, I/O after connecting, pool closed).
    #[error("database driver error: {0}")]
    Driver(String),
    /// The caller no longer wanted the result (the client went away); the statement was stopped.
    #[error("the query was cancelled because the client went away")]
    Cancelled,
}

impl DbError {
    /// True when it is worth handing the message back to the LLM for a repaired query.
    pub fn is_repairable(&self) -> bool {
        matches!(self, DbError::Sql { .. })
    }
}

/// Numeric MySQL/MariaDB error codes we treat specially.
mod mysql_codes {
    /// ER_CANT_EXECUTE_IN_READ_ONLY_TRANSACTION.
    pub const READ_ONLY_TRANSACTION: u16 = 1792;
    /// ER_OPTION_PREVENTS_STATEMENT (e.g. the server runs with --read-only).
    pub const OPTION_PREVENTS_STATEMENT: u16 = 1290;
    /// MariaDB ER_STATEMENT_TIMEOUT (max_statement_time exceeded).
    pub const MARIADB_STATEMENT_TIMEOUT: u16 = 1969;
    /// MySQL ER_QUERY_TIMEOUT (max_execution_time exceeded).
    pub const MYSQL_QUERY_TIMEOUT: u16 = 3024;
}

/// SQLite primary result codes (the low byte of an extended code).
mod sqlite_codes {
    pub const READONLY: i64 = 8;
    pub const INTERRUPT: i64 = 9;
}

/// Sort a driver error from running a statement. `timeout_ms` is the limit in force, reported
/// back in [`DbError::Timeout`].
pub(crate) fn classify(engine: Engine, err: sqlx::Error, timeout_ms: u64) -> DbError {
    let sqlx::Error::Database(db) = err else {
        return match err {
            sqlx::Error::PoolTimedOut => DbError::Connect("timed out waiting for a connection".into()),
            sqlx::Error::PoolClosed => DbError::Driver("the connection pool is closed".into()),
            other => DbError::Driver(other.to_string()),
        };
    };
    let message = db.message().to_string();
    match engine {
        Engine::Postgres => {
            let code = db.code().map(|c| c.into_owned());
            match code.as_deref() {
                // query_canceled: our statement_timeout is the only canceller we use.
                Some("57014") => DbError::Timeout { timeout_ms },
                // read_only_sql_transaction
                Some("25006") => DbError::ReadOnly { message },
                _ => DbError::Sql { message, code },
            }
        }
        Engine::MySql => {
            let number = db.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>().map(|e| e.number());
            match number {
                Some(mysql_codes::MARIADB_STATEMENT_TIMEOUT | mysql_codes::MYSQL_QUERY_TIMEOUT) => {
                    DbError::Timeout { timeout_ms }
                }
                Some(mysql_codes::READ_ONLY_TRANSACTION | mysql_codes::OPTION_PREVENTS_STATEMENT) => {
                    DbError::ReadOnly { message }
                }
                Some(n) => DbError::Sql { message, code: Some(n.to_string()) },
                None => DbError::Sql { message, code: db.code().map(|c| c.into_owned()) },
            }
        }
        Engine::Sqlite => {
            let code = db.code().and_then(|c| c.parse::<i64>().ok());
            match code.map(|c| c & 0xff) {
                Some(sqlite_codes::INTERRUPT) => DbError::Timeout { timeout_ms },
                Some(sqlite_codes::READONLY) => DbError::ReadOnly { message },
                _ => DbError::Sql { message, code: code.map(|c| c.to_string()) },
            }
        }
    }
}

/// A connect error as text with every occurrence of `secret` (the password) removed.
pub(crate) fn connect_error(err: &sqlx::Error, secret: Option<&str>) -> DbError {
    DbError::Connect(scrub(&err.to_string(), secret))
}

/// Remove `secret` from `text` (both as-is and percent-encoded forms are handled by the caller
/// passing the decoded password; drivers print the decoded one).
pub(crate) fn scrub(text: &str, secret: Option<&str>) -> String {
    match secret {
        Some(s) if s.len() >= 2 => text.replace(s, "***"),
        _ => text.to_string(),
    }
}
