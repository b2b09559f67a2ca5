//! What can go wrong in the metadata store, as one error type whose messages never carry a password.

/// An error from the metadata [`Store`](super::Store).
///
/// No variant's message contains a password from the store's URL: [`StoreError::Open`] holds the
/// URL with its password replaced by `***` and a driver message scrubbed of it; the other variants
/// come from queries on an established pool, whose messages do not repeat the URL.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store could not be opened: an unsupported or malformed URL, an unreachable server, a
    /// SQLite file or folder that cannot be created.
    #[error("cannot open the metadata store {target}: {reason}")]
    Open {
        /// Where the store was to be opened: the URL without its password, or a file path.
        target: String,
        /// Why not (scrubbed of the password).
        reason: String,
    },
    /// Applying the schema migrations failed, e.g. the database holds a newer or edited migration
    /// than this build knows.
    #[error("metadata store migration failed: {0}")]
    Migrate(#[source] sqlx::migrate::MigrateError),
    /// The caller passed something the store refuses (an empty or too long session id, a NUL
    /// character in a text field). Nothing was written.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// A query failed: the server went away, the pool timed out, a constraint was violated, a
    /// stored value could not be decoded.
    #[error("metadata store query failed: {0}")]
    Database(#[from] sqlx::Error),
}

/// `text` with every occurrence of `secret` (a password, at least two characters) replaced by `***`.
pub(super) fn scrub(text: &str, secret: Option<&str>) -> String {
    match secret {
        Some(s) if s.len() >= 2 => text.replace(s, "***"),
        _ => text.to_string(),
    }
}
