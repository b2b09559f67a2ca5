//! Database URLs: which engine a URL names, how it is shown without its secrets, and how the
//! operator's environment selects one (`QUARRY_DATABASE_URL`, or the SQL Query Engine's
//! `POSTGRES_*` variables).
//!
//! A [`DatabaseUrl`] holds credentials, so its `Display` and `Debug` are redacted; only
//! [`DatabaseUrl::expose`] hands out the raw text, and only the connect code calls it.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::error::DbError;

/// The database engines Quarry can query.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    /// PostgreSQL (and wire-compatible servers).
    Postgres,
    /// MySQL or MariaDB; which one is found out after connecting (see [`super::Flavor`]).
    MySql,
    /// A SQLite file, always opened read-only.
    Sqlite,
}

impl Engine {
    /// A short lowercase name: `postgres`, `mysql`, `sqlite`.
    pub fn as_str(self) -> &'static str {
        match self {
            Engine::Postgres => "postgres",
            Engine::MySql => "mysql",
            Engine::Sqlite => "sqlite",
        }
    }
}

impl fmt::Display for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A parsed database URL with its engine.
///
/// Accepted forms:
/// - `postgres://user:pass@host:5432/db?sslmode=require`, `postgresql://…`
/// - `mysql://user:pass@host:3306/db`, `mariadb://…` (treated as `mysql://`)
/// - `sqlite:relative/path.db`, `sqlite://relative/path.db`, `sqlite:///absolute/path.db`,
///   `sqlite::memory:` (only useful in tests).
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl {
    /// The URL as sqlx expects it (`mariadb://` rewritten to `mysql://`). Contains secrets.
    raw: String,
    engine: Engine,
}

/// Query parameters whose values are secrets in any of the three drivers' URL syntaxes.
const SECRET_PARAMS: &[&str] = &["password", "pass", "passwd", "sslpassword", "sslkey"];

impl DatabaseUrl {
    /// Parse a URL and detect its engine. The error never repeats the URL (it may hold a password).
    pub fn parse(url: &str) -> Result<Self, DbError> {
        let url = url.trim();
        let lower = url.to_ascii_lowercase();
        let (engine, raw) = if lower.starts_with("postgres://") || lower.starts_with("postgresql://") {
            (Engine::Postgres, url.to_string())
        } else if lower.starts_with("mysql://") {
            (Engine::MySql, url.to_string())
        } else if lower.starts_with("mariadb://") {
            // sqlx only knows the mysql scheme; the wire protocol is the same.
            (Engine::MySql, format!("mysql://{}", &url["mariadb://".len()..]))
        } else if lower.starts_with("sqlite:") {
            (Engine::Sqlite, url.to_string())
        } else {
            let scheme = url.split(':').next().unwrap_or("").chars().take(20).collect::<String>();
            return Err(DbError::InvalidUrl(format!(
                "unsupported scheme {scheme:?}: expected postgres://, postgresql://, mysql://, mariadb:// or sqlite:"
            )));
        };
        if engine != Engine::Sqlite {
            // Validate the shape early so that a typo fails here with a clean message rather than
            // inside the driver (whose messages we do not control).
            let parsed =
                url::Url::parse(&raw).map_err(|e| DbError::InvalidUrl(format!("malformed {engine} URL: {e}")))?;
            if parsed.host_str().is_none_or(str::is_empty) {
                return Err(DbError::InvalidUrl(format!("{engine} URL has no host")));
            }
        }
        Ok(Self { raw, engine })
    }

    /// The engine this URL selects.
    pub fn engine(&self) -> Engine {
        self.engine
    }

    /// The raw URL including credentials. Only for handing to the driver; never log it.
    pub fn expose(&self) -> &str {
        &self.raw
    }

    /// The password in the URL, if any (percent-decoded), so error messages can be scrubbed of it.
    pub(crate) fn password(&self) -> Option<String> {
        if self.engine == Engine::Sqlite {
            return None;
        }
        let parsed = url::Url::parse(&self.raw).ok()?;
        let mut secrets: Vec<String> = Vec::new();
        if let Some(p) = parsed.password() {
            secrets.push(percent_decode(p));
        }
        for (k, v) in parsed.query_pairs() {
            if SECRET_PARAMS.contains(&k.to_ascii_lowercase().as_str()) {
                secrets.push(v.into_owned());
            }
        }
        secrets.into_iter().find(|s| !s.is_empty())
    }

    /// The URL with the password and secret query parameters replaced by `***`.
    pub fn redacted(&self) -> String {
        if self.engine == Engine::Sqlite {
            return self.raw.clone();
        }
        let Ok(mut parsed) = url::Url::parse(&self.raw) else {
            return format!("{}://***", self.engine);
        };
        if parsed.password().is_some() {
            let _ = parsed.set_password(Some("***"));
        }
        if parsed.query().is_some() {
            let pairs: Vec<(String, String)> = parsed
                .query_pairs()
                .map(|(k, v)| {
                    let secret = SECRET_PARAMS.contains(&k.to_ascii_lowercase().as_str());
                    (k.into_owned(), if secret { "***".to_string() } else { v.into_owned() })
                })
                .collect();
            parsed.query_pairs_mut().clear().extend_pairs(pairs);
        }
        parsed.to_string()
    }

    /// The user database from the process environment: `QUARRY_DATABASE_URL`, else the SQL
    /// Query Engine's `POSTGRES_HOST` / `POSTGRES_PORT` / `POSTGRES_USER` / `POSTGRES_PASSWORD` /
    /// `POSTGRES_DB`. `Ok(None)` when neither is configured.
    pub fn from_env() -> Result<Option<Self>, DbError> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// [`from_env`](Self::from_env) over any variable lookup (for tests and config files).
    ///
    /// With `POSTGRES_HOST` set, the others default to port `5432`, user `postgres`, no password
    /// and database = the user name (PostgreSQL's own default). Empty values count as unset.
    pub fn from_vars(lookup: impl Fn(&str) -> Option<String>) -> Result<Option<Self>, DbError> {
        let get = |name: &str| lookup(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        if let Some(url) = get("QUARRY_DATABASE_URL") {
            return Self::parse(&url).map(Some);
        }
        let Some(host) = get("POSTGRES_HOST") else {
            return Ok(None);
        };
        let port: u16 = match get("POSTGRES_PORT") {
            Some(p) => {
                p.parse().map_err(|_| DbError::InvalidUrl(format!("POSTGRES_PORT is not a port number: {p:?}")))?
            }
            None => 5432,
        };
        let user = get("POSTGRES_USER").unwrap_or_else(|| "postgres".to_string());
        let db = get("POSTGRES_DB").unwrap_or_else(|| user.clone());
        // Build through `url::Url` so that any character in the password is percent-encoded.
        let mut url = url::Url::parse("postgres://localhost/").map_err(|e| DbError::InvalidUrl(e.to_string()))?;
        url.set_host(Some(&host)).map_err(|e| DbError::InvalidUrl(format!("POSTGRES_HOST is not a host name: {e}")))?;
        let _ = url.set_port(Some(port));
        let _ = url.set_username(&user);
        if let Some(password) = get("POSTGRES_PASSWORD") {
            let _ = url.set_password(Some(&password));
        }
        url.set_path(&db);
        Self::parse(url.as_str()).map(Some)
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = |c: u8| (c as char).to_digit(16);
            if let (Some(hi), Some(lo)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((hi * 16 + lo) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseUrl").field("engine", &self.engine).field("url", &self.redacted()).finish()
    }
}

impl std::str::FromStr for DatabaseUrl {
    type Err = DbError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_engines() {
        for (url, engine) in [
            ("postgres://u@h/db", Engine::Postgres),
            ("postgresql://u:p@h:5433/db", Engine::Postgres),
            ("mysql://root@127.0.0.1:3306/test", Engine::MySql),
            ("MariaDB://root@127.0.0.1/test", Engine::MySql),
            ("sqlite:data.db", Engine::Sqlite),
            ("sqlite:///tmp/x.db", Engine::Sqlite),
            ("sqlite::memory:", Engine::Sqlite),
        ] {
            assert_eq!(DatabaseUrl::parse(url).unwrap().engine(), engine, "{url}");
        }
        assert!(DatabaseUrl::parse("mariadb://root@h/test").unwrap().expose().starts_with("mysql://"));
        assert!(DatabaseUrl::parse("oracle://u:secret@h/db").is_err());
        let err = DatabaseUrl::parse("postgres://u:secret@/db").unwrap_err().to_string();
        assert!(!err.contains("secret"), "{err}");
    }

    #[test]
    fn redacts_passwords() {
        let url =
            DatabaseUrl::parse("postgres://alice:s%40cret@db.example:5432/app?sslmode=require&password=other").unwrap();
        let shown = format!("{url} {url:?}");
        assert!(!shown.contains("s%40cret") && !shown.contains("other"), "{shown}");
        assert!(shown.contains("alice") && shown.contains("sslmode=require"), "{shown}");
        assert_eq!(url.password().as_deref(), Some("s@cret"));
        assert_eq!(DatabaseUrl::parse("mysql://root@h/test").unwrap().to_string(), "mysql://root@h/test");
    }

    #[test]
    fn env_variables() {
        let vars = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string())
        };
        assert!(DatabaseUrl::from_vars(vars(&[])).unwrap().is_none());
        let url = DatabaseUrl::from_vars(vars(&[("QUARRY_DATABASE_URL", "sqlite:x.db"), ("POSTGRES_HOST", "h")]))
            .unwrap()
            .unwrap();
        assert_eq!(url.engine(), Engine::Sqlite);
        let url = DatabaseUrl::from_vars(vars(&[
            ("POSTGRES_HOST", "db.local"),
            ("POSTGRES_USER", "me"),
            ("POSTGRES_PASSWORD", "p@ss/word"),
            ("POSTGRES_DB", "mydb"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(url.expose(), "postgres://me:p%40ss%2Fword@db.local:5432/mydb");
        assert_eq!(url.password().as_deref(), Some("p@ss/word"));
        let url = DatabaseUrl::from_vars(vars(&[("POSTGRES_HOST", "h"), ("POSTGRES_PORT", "6543")])).unwrap().unwrap();
        assert_eq!(url.expose(), "postgres://postgres@h:6543/postgres");
        assert!(DatabaseUrl::from_vars(vars(&[("POSTGRES_HOST", "h"), ("POSTGRES_PORT", "x")])).is_err());
    }
}
