//! Rate limits for the sign-in routes: a [`RateLimiter`] counts hits per key (route and client
//! address) in fixed windows. [`FixedWindow`] keeps the counts in this process; a limiter shared
//! by replicas, [`RedisWindow`] (Redis `INCR` + `PEXPIRE` in one script), implements the same trait
//! and falls back to a [`FixedWindow`] while Redis is down.
//!
//! [`client_ip`] says which address a request counts against: the TCP peer, or, when the peer is a
//! proxy on a loopback or private address, the client that proxy names in `X-Forwarded-For`
//! (the nearest address it did not add itself) or `X-Real-IP`.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use futures::future::BoxFuture;

use crate::shared_redis::Redis;

/// A request over the limit: try again after this long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limited {
    /// Until the window resets (at least one second).
    pub retry_after: Duration,
}

impl Limited {
    /// Whole seconds to wait, rounded up: the `Retry-After` value.
    pub fn retry_after_secs(&self) -> u64 {
        self.retry_after.as_secs() + u64::from(self.retry_after.subsec_nanos() > 0)
    }
}

/// Counts hits per key; refuses a hit over the limit.
pub trait RateLimiter: Send + Sync {
    /// Count one hit for `key`; `Err` if that makes too many in the current window.
    fn hit<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), Limited>>;
}

/// In-process fixed windows: at most `limit` hits per key per `window`.
pub struct FixedWindow {
    limit: u32,
    window: Duration,
    counts: Mutex<HashMap<String, (Instant, u32)>>,
}

/// Above this many keys, windows that have ended are dropped (bounds memory under a scan).
const PRUNE_ABOVE: usize = 10_000;

impl FixedWindow {
    /// `limit` hits per key per `window`; a `limit` of 0 allows everything.
    pub fn new(limit: u32, window: Duration) -> Self {
        Self { limit, window, counts: Mutex::new(HashMap::new()) }
    }

    fn check(&self, key: &str, now: Instant) -> Result<(), Limited> {
        if self.limit == 0 {
            return Ok(());
        }
        // A poisoned lock only means another request panicked mid-count; the counts are still usable.
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        if counts.len() > PRUNE_ABOVE {
            counts.retain(|_, (start, _)| now.duration_since(*start) < self.window);
        }
        let entry = counts.entry(key.to_string()).or_insert((now, 0));
        if now.duration_since(entry.0) >= self.window {
            *entry = (now, 0);
        }
        if entry.1 >= self.limit {
            let retry_after = (self.window - now.duration_since(entry.0)).max(Duration::from_secs(1));
            return Err(Limited { retry_after });
        }
        entry.1 += 1;
        Ok(())
    }
}

impl RateLimiter for FixedWindow {
    fn hit<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), Limited>> {
        let result = self.check(key, Instant::now());
        Box::pin(async move { result })
    }
}

/// Fixed windows counted in Redis, shared by every replica using it: at most `limit` hits per key
/// per `window` in all. While Redis is down each replica counts in its own [`FixedWindow`] (so the
/// limit still holds per replica), and goes back to Redis when it answers again.
pub struct RedisWindow {
    redis: Arc<Redis>,
    prefix: String,
    limit: u32,
    window: Duration,
    fallback: FixedWindow,
}

/// Counts one hit and returns `{count, milliseconds left in the window}` in one round trip. The
/// expiry is set by the first hit of a window (and repaired if a key somehow has none), so the
/// window is fixed, not sliding.
const WINDOW_SCRIPT: &str = r"
local n = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if n == 1 or ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {n, ttl}
";

impl RedisWindow {
    /// The prefix of every rate-limit key in Redis.
    pub const PREFIX: &'static str = "quarry:rl:";

    /// `limit` hits per key per `window` counted in `redis`; a `limit` of 0 allows everything.
    pub fn new(redis: Arc<Redis>, limit: u32, window: Duration) -> Self {
        Self { redis, prefix: Self::PREFIX.to_string(), limit, window, fallback: FixedWindow::new(limit, window) }
    }

    /// Keys start with `prefix` instead of [`RedisWindow::PREFIX`] (tests keep their runs apart).
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    async fn check(&self, key: &str) -> Result<(), Limited> {
        if self.limit == 0 {
            return Ok(());
        }
        let window_ms = u64::try_from(self.window.as_millis()).unwrap_or(u64::MAX).max(1);
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(WINDOW_SCRIPT).arg(1).arg(format!("{}{key}", self.prefix)).arg(window_ms);
        match self.redis.query::<(u64, i64)>(&cmd).await {
            Some((count, ttl_ms)) if count > u64::from(self.limit) => {
                let left = Duration::from_millis(u64::try_from(ttl_ms).unwrap_or(0));
                Err(Limited { retry_after: left.max(Duration::from_secs(1)) })
            }
            Some(_) => Ok(()),
            None => self.fallback.check(key, Instant::now()),
        }
    }
}

impl RateLimiter for RedisWindow {
    fn hit<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), Limited>> {
        Box::pin(self.check(key))
    }
}

/// Whether `ip` is a loopback or private address (a proxy we may believe).
fn is_trusted_proxy(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback() || v4.is_private() || v4.is_link_local(),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_trusted_proxy(IpAddr::V4(v4));
            }
            // fc00::/7 unique local, fe80::/10 link local.
            v6.is_loopback() || (v6.segments()[0] & 0xfe00) == 0xfc00 || (v6.segments()[0] & 0xffc0) == 0xfe80
        }
    }
}

/// The address a request counts against: see the module docs. `None` without a peer address.
pub fn client_ip(peer: Option<SocketAddr>, headers: &HeaderMap) -> Option<IpAddr> {
    let peer = peer?.ip();
    if !is_trusted_proxy(peer) {
        return Some(peer);
    }
    // Walk X-Forwarded-For from the nearest hop outwards, skipping our own proxies: the first
    // address that is not one is the client. Entries further left are the client's to forge.
    let forwarded: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|s| s.trim().parse::<IpAddr>().ok())
        .collect();
    if let Some(ip) = forwarded.iter().rev().find(|ip| !is_trusted_proxy(**ip)) {
        return Some(*ip);
    }
    if let Some(first) = forwarded.first() {
        return Some(*first);
    }
    let real = headers.get("x-real-ip").and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<IpAddr>().ok());
    Some(real.unwrap_or(peer))
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn allows_the_limit_then_refuses_until_the_window_ends() {
        let limiter = FixedWindow::new(3, Duration::from_secs(60));
        let start = Instant::now();
        for _ in 0..3 {
            assert!(limiter.check("login:1.2.3.4", start).is_ok());
        }
        let refused = limiter.check("login:1.2.3.4", start + Duration::from_secs(15)).unwrap_err();
        assert_eq!(refused.retry_after_secs(), 45);
        // Other keys have their own count.
        assert!(limiter.check("login:5.6.7.8", start).is_ok());
        // A new window starts afresh.
        assert!(limiter.check("login:1.2.3.4", start + Duration::from_secs(60)).is_ok());
    }

    #[test]
    fn zero_means_unlimited() {
        let limiter = FixedWindow::new(0, Duration::from_secs(60));
        let now = Instant::now();
        assert!((0..100).all(|_| limiter.check("k", now).is_ok()));
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn public_peer_is_the_client_whatever_the_headers_say() {
        let peer: SocketAddr = "203.0.113.7:5000".parse().unwrap();
        let h = headers(&[("x-forwarded-for", "198.51.100.1"), ("x-real-ip", "198.51.100.2")]);
        assert_eq!(client_ip(Some(peer), &h), Some("203.0.113.7".parse().unwrap()));
    }

    #[test]
    fn private_proxy_is_believed() {
        let proxy: SocketAddr = "10.0.0.5:5000".parse().unwrap();
        let h = headers(&[("x-forwarded-for", "6.6.6.6, 198.51.100.1, 10.0.0.9")]);
        assert_eq!(client_ip(Some(proxy), &h), Some("198.51.100.1".parse().unwrap()));
        let h = headers(&[("x-real-ip", "198.51.100.2")]);
        assert_eq!(client_ip(Some(proxy), &h), Some("198.51.100.2".parse().unwrap()));
        assert_eq!(client_ip(Some(proxy), &HeaderMap::new()), Some("10.0.0.5".parse().unwrap()));
        let loopback: SocketAddr = "[::1]:5000".parse().unwrap();
        let h = headers(&[("x-forwarded-for", "garbage")]);
        assert_eq!(client_ip(Some(loopback), &h), Some("::1".parse().unwrap()));
        assert_eq!(client_ip(None, &h), None);
    }
}
