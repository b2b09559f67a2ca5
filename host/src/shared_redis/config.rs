//! Where Redis is: `QUARRY_REDIS_URL`, or SQL Query Engine's `REDIS_HOST`, `REDIS_PORT`,
//! `REDIS_PASSWORD` and `REDIS_DB` when the URL is unset. Neither set: no Redis.
//!
//! [`RedisConfig`] shows itself (Display and Debug) without the password, so it can go in logs.

use std::fmt;

use redis::{ConnectionAddr, ConnectionInfo, IntoConnectionInfo, RedisConnectionInfo};

/// The URL variable (`redis://[:password@]host:port/db`); wins over the `REDIS_*` variables.
pub const URL_VAR: &str = "QUARRY_REDIS_URL";
/// Redis host (SQL Query Engine's name); Redis is used when this is set and the URL is not.
pub const HOST_VAR: &str = "REDIS_HOST";
/// Redis port, default 6379.
pub const PORT_VAR: &str = "REDIS_PORT";
/// Redis password, none by default.
pub const PASSWORD_VAR: &str = "REDIS_PASSWORD";
/// Redis database number, default 0.
pub const DB_VAR: &str = "REDIS_DB";

/// A Redis setting that cannot be used. Never contains the password.
#[derive(Debug, thiserror::Error)]
pub enum RedisConfigError {
    /// `QUARRY_REDIS_URL` does not parse as a Redis URL.
    #[error("{URL_VAR} is not a usable Redis URL (expected redis://[:password@]host:port/db)")]
    BadUrl,
    /// The address is of a kind this build cannot connect to.
    #[error("the Redis address is not supported by this build")]
    Unsupported,
    /// A number variable is not a number in range.
    #[error("{var} must be a number, got {value:?}")]
    BadNumber {
        /// The variable.
        var: &'static str,
        /// What it was set to.
        value: String,
    },
}

/// Where to reach Redis and how to sign in.
#[derive(Clone)]
pub struct RedisConfig {
    info: ConnectionInfo,
}

impl RedisConfig {
    /// From the process environment; `Ok(None)` when Redis is not configured.
    pub fn from_env() -> Result<Option<RedisConfig>, RedisConfigError> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// From variables looked up by `get` (empty values count as unset).
    pub fn from_vars(raw: impl Fn(&str) -> Option<String>) -> Result<Option<RedisConfig>, RedisConfigError> {
        let get = |name: &str| raw(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        if let Some(url) = get(URL_VAR) {
            return Self::from_url(&url).map(Some);
        }
        let Some(host) = get(HOST_VAR) else {
            return Ok(None);
        };
        let port = number(PORT_VAR, get(PORT_VAR), 6379u16)?;
        let db = number(DB_VAR, get(DB_VAR), 0i64)?;
        // The password is taken as is (not trimmed): spaces may be part of it.
        let password = raw(PASSWORD_VAR).filter(|p| !p.is_empty());
        let info = ConnectionInfo {
            addr: ConnectionAddr::Tcp(host, port),
            redis: RedisConnectionInfo { db, password, ..Default::default() },
        };
        Ok(Some(RedisConfig { info }))
    }

    /// From a `redis://` (or `redis+unix://`) URL.
    pub fn from_url(url: &str) -> Result<RedisConfig, RedisConfigError> {
        // The parser's own error may quote the URL, password included: say only that it is bad.
        let info = url.into_connection_info().map_err(|_| RedisConfigError::BadUrl)?;
        Ok(RedisConfig { info })
    }

    /// What the client connects with (password included: do not log).
    pub fn connection_info(&self) -> &ConnectionInfo {
        &self.info
    }

    /// The password, if any: for scrubbing it out of error messages.
    pub(crate) fn password(&self) -> Option<&str> {
        self.info.redis.password.as_deref().filter(|p| !p.is_empty())
    }
}

fn number<T: std::str::FromStr>(var: &'static str, value: Option<String>, default: T) -> Result<T, RedisConfigError> {
    match value {
        None => Ok(default),
        Some(v) => v.parse().map_err(|_| RedisConfigError::BadNumber { var, value: v }),
    }
}

/// `redis://[user:***@]host:port/db`: the address without the password.
impl fmt::Display for RedisConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redis = &self.info.redis;
        let credentials = match (&redis.username, self.password()) {
            (Some(user), _) => format!("{user}:***@"),
            (None, Some(_)) => ":***@".to_string(),
            (None, None) => String::new(),
        };
        match &self.info.addr {
            ConnectionAddr::Tcp(host, port) => write!(f, "redis://{credentials}{host}:{port}/{}", redis.db),
            ConnectionAddr::TcpTls { host, port, .. } => write!(f, "rediss://{credentials}{host}:{port}/{}", redis.db),
            ConnectionAddr::Unix(path) => write!(f, "redis+unix://{credentials}{}?db={}", path.display(), redis.db),
        }
    }
}

impl fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("RedisConfig").field(&self.to_string()).finish()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn from(pairs: &[(&str, &str)]) -> Result<Option<RedisConfig>, RedisConfigError> {
        let vars: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        RedisConfig::from_vars(|name| vars.get(name).cloned())
    }

    #[test]
    fn nothing_set_means_no_redis() {
        assert!(from(&[]).unwrap().is_none());
        assert!(from(&[(URL_VAR, "  "), (PORT_VAR, "6380"), (PASSWORD_VAR, "pw")]).unwrap().is_none());
    }

    #[test]
    fn url_wins_over_the_redis_variables() {
        let config =
            from(&[(URL_VAR, "redis://10.0.0.1:6380/2"), (HOST_VAR, "other"), (DB_VAR, "5")]).unwrap().unwrap();
        assert_eq!(config.to_string(), "redis://10.0.0.1:6380/2");
        assert_eq!(config.connection_info().redis.db, 2);
    }

    #[test]
    fn redis_variables_with_defaults() {
        let config = from(&[(HOST_VAR, "cache.internal")]).unwrap().unwrap();
        assert_eq!(config.to_string(), "redis://cache.internal:6379/0");
        assert!(config.connection_info().redis.password.is_none());
        let config = from(&[(HOST_VAR, "cache"), (PORT_VAR, "6390"), (DB_VAR, "3"), (PASSWORD_VAR, "s3cret-pw")])
            .unwrap()
            .unwrap();
        assert_eq!(config.connection_info().addr, ConnectionAddr::Tcp("cache".into(), 6390));
        assert_eq!(config.connection_info().redis.db, 3);
        assert_eq!(config.connection_info().redis.password.as_deref(), Some("s3cret-pw"));
    }

    #[test]
    fn bad_values_are_refused_without_echoing_the_password() {
        let err = from(&[(HOST_VAR, "cache"), (PORT_VAR, "many")]).unwrap_err();
        assert!(err.to_string().contains(PORT_VAR));
        assert!(from(&[(HOST_VAR, "cache"), (PORT_VAR, "70000")]).is_err());
        assert!(from(&[(HOST_VAR, "cache"), (DB_VAR, "x")]).is_err());
        let err = from(&[(URL_VAR, "http://:hunter2-pw@host:1/0")]).unwrap_err();
        assert!(!err.to_string().contains("hunter2-pw"));
    }

    #[test]
    fn password_is_never_shown() {
        for config in [
            from(&[(URL_VAR, "redis://:hunter2-pw@127.0.0.1:6379/1")]).unwrap().unwrap(),
            from(&[(URL_VAR, "redis://app:hunter2-pw@127.0.0.1:6379/1")]).unwrap().unwrap(),
            from(&[(HOST_VAR, "127.0.0.1"), (PASSWORD_VAR, "hunter2-pw")]).unwrap().unwrap(),
        ] {
            assert_eq!(config.password(), Some("hunter2-pw"));
            let shown = format!("{config} {config:?}");
            assert!(!shown.contains("hunter2"), "{shown}");
            assert!(shown.contains("***@127.0.0.1"), "{shown}");
        }
    }
}
