//! Redis shared by Quarry's replicas (state that must be the same on every server: the sign-in
//! rate limits, the schema and answer caches, progress fan-out), and graceful when Redis is down.
//!
//! A server makes one [`Redis`] handle at start (`Redis::from_env`) and every part shares it.
//!
//! [`Redis`] wraps a [`ConnectionManager`] made on first use. Every command has a short timeout so
//! a dead Redis never stalls a request. When a command fails, the handle logs one warning, marks
//! itself down and answers `None` at once (callers then use in-process state); while down it tries
//! again at most every [`RETRY_EVERY`], and logs once when Redis is back.
//!
//! - [`config`]: where Redis is (`QUARRY_REDIS_URL` or the `REDIS_*` variables);
//! - [`subscriber`]: one channel followed over its own pub/sub connection, reconnecting.

pub mod config;
pub mod subscriber;

use std::future::Future;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{FromRedisValue, RedisResult};

pub use self::config::{RedisConfig, RedisConfigError};
pub use self::subscriber::Event;

/// What every key and channel Quarry uses in Redis starts with.
pub const KEY_PREFIX: &str = "quarry:";

/// Longest wait for one command (connecting included) before Redis counts as down.
pub const COMMAND_TIMEOUT: Duration = Duration::from_millis(500);
/// Longest wait for a TCP connection and handshake.
pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
/// While Redis is down, how often a request may try it again.
pub const RETRY_EVERY: Duration = Duration::from_secs(5);

/// Whether Redis answered last time.
#[derive(Debug, Clone, Copy)]
enum Health {
    /// Not used yet.
    Unknown,
    /// The last command succeeded.
    Up,
    /// The last command failed; the next attempt is allowed at `retry_at`.
    Down { retry_at: Instant },
}

/// A handle on the shared Redis; cheap to share behind an `Arc`.
pub struct Redis {
    config: RedisConfig,
    client: redis::Client,
    /// Made on first use, dropped after a failure so the next attempt connects afresh.
    conn: tokio::sync::Mutex<Option<ConnectionManager>>,
    health: Mutex<Health>,
    retry_every: Duration,
}

impl Redis {
    /// A handle on the Redis `config` names; does not connect yet.
    pub fn new(config: RedisConfig) -> Result<Redis, RedisConfigError> {
        let client =
            redis::Client::open(config.connection_info().clone()).map_err(|_| RedisConfigError::Unsupported)?;
        Ok(Redis {
            config,
            client,
            conn: tokio::sync::Mutex::new(None),
            health: Mutex::new(Health::Unknown),
            retry_every: RETRY_EVERY,
        })
    }

    /// The handle the environment configures; `Ok(None)` when Redis is not configured.
    pub fn from_env() -> Result<Option<Redis>, RedisConfigError> {
        RedisConfig::from_env()?.map(Redis::new).transpose()
    }

    /// Try again at most this often while down (default [`RETRY_EVERY`]).
    pub fn with_retry_every(mut self, every: Duration) -> Self {
        self.retry_every = every;
        self
    }

    /// While down, how often a command may try Redis again.
    pub fn retry_every(&self) -> Duration {
        self.retry_every
    }

    /// Where Redis is (shows without the password).
    pub fn config(&self) -> &RedisConfig {
        &self.config
    }

    /// Whether the last command succeeded (false before the first one).
    pub fn is_up(&self) -> bool {
        matches!(*self.health(), Health::Up)
    }

    /// Run one command (a `redis::cmd`, `EVAL` included). `None` when Redis is down, failed or
    /// did not answer within [`COMMAND_TIMEOUT`]: the caller falls back to in-process state.
    pub async fn query<T: FromRedisValue>(&self, cmd: &redis::Cmd) -> Option<T> {
        self.run(|mut conn| async move { cmd.query_async(&mut conn).await }).await
    }

    /// Run a pipeline in one round trip; `None` as for [`Redis::query`].
    pub async fn query_pipe<T: FromRedisValue>(&self, pipe: &redis::Pipeline) -> Option<T> {
        self.run(|mut conn| async move { pipe.query_async(&mut conn).await }).await
    }

    /// Run `f` on a connection within the timeout, keeping the health up to date.
    async fn run<T, F, Fut>(&self, f: F) -> Option<T>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        if !self.may_try() {
            return None;
        }
        let attempt = async {
            let conn = self.connection().await?;
            f(conn).await
        };
        let failure = match tokio::time::timeout(COMMAND_TIMEOUT, attempt).await {
            Ok(Ok(value)) => {
                self.mark_up();
                return Some(value);
            }
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("no answer within {} ms", COMMAND_TIMEOUT.as_millis()),
        };
        // A fresh connection next time rather than one stuck reconnecting to a dead address.
        *self.conn.lock().await = None;
        self.mark_down(&failure);
        None
    }

    /// The connection, made now if there is none.
    async fn connection(&self) -> RedisResult<ConnectionManager> {
        let mut slot = self.conn.lock().await;
        if let Some(conn) = slot.as_ref() {
            return Ok(conn.clone());
        }
        // No retries inside the manager: we decide when to try again (see `may_try`).
        let settings = ConnectionManagerConfig::new()
            .set_connection_timeout(CONNECT_TIMEOUT)
            .set_response_timeout(COMMAND_TIMEOUT)
            .set_number_of_retries(0);
        let conn = ConnectionManager::new_with_config(self.client.clone(), settings).await?;
        *slot = Some(conn.clone());
        Ok(conn)
    }

    fn health(&self) -> std::sync::MutexGuard<'_, Health> {
        // A poisoned lock only means a panic elsewhere; the state is a plain value and still valid.
        self.health.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether to send a command now. While down, one caller per retry interval gets to try
    /// (it claims the attempt by moving the next retry forward); everyone else falls back at once.
    fn may_try(&self) -> bool {
        let mut health = self.health();
        match *health {
            Health::Down { retry_at } => {
                let now = Instant::now();
                if now < retry_at {
                    return false;
                }
                *health = Health::Down { retry_at: now + self.retry_every };
                true
            }
            Health::Unknown | Health::Up => true,
        }
    }

    fn mark_up(&self) {
        let before = std::mem::replace(&mut *self.health(), Health::Up);
        match before {
            Health::Down { .. } => tracing::info!("Redis is back at {}; using it again", self.config),
            Health::Unknown => tracing::info!("connected to Redis at {}", self.config),
            Health::Up => {}
        }
    }

    fn mark_down(&self, failure: &str) {
        let failure = self.redact(failure);
        let retry_at = Instant::now() + self.retry_every;
        let before = std::mem::replace(&mut *self.health(), Health::Down { retry_at });
        match before {
            Health::Down { .. } => tracing::debug!("Redis still unavailable at {}: {failure}", self.config),
            Health::Unknown | Health::Up => tracing::warn!(
                "Redis unavailable at {} ({failure}); using in-process state until it is back",
                self.config
            ),
        }
    }
}
