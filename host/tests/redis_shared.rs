//! Redis shared by replicas: the sign-in rate limiter counts once across servers, falls back to
//! in-process counts without stalling when Redis is unreachable, logs that once, and returns to
//! Redis when it is back.
//!
//! The shared-count test needs `QUARRY_TEST_REDIS_URL` (e.g. `redis://127.0.0.1:6379`); the
//! "coming back" test starts its own `/usr/bin/redis-server`. Each skips clearly without them.

mod support;

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use quarry::auth::rate_limit::{RateLimiter, RedisWindow};
use quarry::shared_redis::{Redis, RedisConfig};

const REDIS_SERVER: &str = "/usr/bin/redis-server";

fn test_redis_url() -> Option<String> {
    let url = std::env::var("QUARRY_TEST_REDIS_URL").ok().filter(|u| !u.is_empty());
    if url.is_none() {
        eprintln!("skipped: QUARRY_TEST_REDIS_URL not set");
    }
    url
}

/// A key prefix no other run or test uses.
fn unique_prefix(test: &str) -> String {
    format!("quarry:rl:test:{test}:{}:", uuid::Uuid::new_v4().simple())
}

/// A local port nothing listens on (just freed).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn handle(url: &str, retry_every: Duration) -> Arc<Redis> {
    Arc::new(Redis::new(RedisConfig::from_url(url).unwrap()).unwrap().with_retry_every(retry_every))
}

/// One hit, which must come back within a second whatever Redis is doing.
async fn timed_hit(limiter: &RedisWindow, key: &str) -> bool {
    let started = Instant::now();
    let result = tokio::time::timeout(Duration::from_secs(3), limiter.hit(key)).await.expect("hit hung");
    assert!(started.elapsed() < Duration::from_secs(1), "hit took {:?}", started.elapsed());
    result.is_ok()
}

/// How many captured log lines contain all of `parts`.
fn log_lines_with(parts: &[&str]) -> usize {
    support::logs().lines().filter(|line| parts.iter().all(|p| line.contains(p))).count()
}

#[tokio::test]
async fn two_replicas_share_one_count() {
    let Some(url) = test_redis_url() else { return };
    let prefix = unique_prefix("shared");
    let window = Duration::from_secs(60);
    let one = RedisWindow::new(handle(&url, Duration::from_secs(5)), 3, window).with_prefix(&prefix);
    let two = RedisWindow::new(handle(&url, Duration::from_secs(5)), 3, window).with_prefix(&prefix);
    let key = "login|203.0.113.9";
    assert!(one.hit(key).await.is_ok());
    assert!(one.hit(key).await.is_ok());
    assert!(two.hit(key).await.is_ok());
    // Each replica alone has seen at most 2 hits: only a shared count refuses the 4th.
    let refused = two.hit(key).await.unwrap_err();
    assert!((1..=60).contains(&refused.retry_after_secs()), "{refused:?}");
    assert!(one.hit(key).await.is_err());
    // Other clients and routes have their own counts.
    assert!(one.hit("login|203.0.113.10").await.is_ok());
    assert!(two.hit("register|203.0.113.9").await.is_ok());

    // The count lives under the prefix, with an expiry of at most the window.
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let full_key = format!("{prefix}{key}");
    let count: u64 = redis::cmd("GET").arg(&full_key).query_async(&mut conn).await.unwrap();
    assert_eq!(count, 5);
    let ttl: i64 = redis::cmd("PTTL").arg(&full_key).query_async(&mut conn).await.unwrap();
    assert!(ttl > 0 && ttl <= 60_000, "ttl {ttl}");
    let _: () = redis::cmd("DEL").arg(&full_key).query_async(&mut conn).await.unwrap();
}

#[tokio::test]
async fn window_ends_in_redis() {
    let Some(url) = test_redis_url() else { return };
    let limiter = RedisWindow::new(handle(&url, Duration::from_secs(5)), 2, Duration::from_millis(400))
        .with_prefix(unique_prefix("expiry"));
    assert!(limiter.hit("k").await.is_ok());
    assert!(limiter.hit("k").await.is_ok());
    assert!(limiter.hit("k").await.is_err());
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(limiter.hit("k").await.is_ok(), "a new window starts afresh");
}

#[tokio::test]
async fn unreachable_redis_limits_in_process_without_stalling() {
    support::capture_logs();
    let port = free_port();
    let url = format!("redis://:unreachable-pw-77@127.0.0.1:{port}/0");
    let redis = handle(&url, Duration::from_millis(50));
    let limiter = RedisWindow::new(redis.clone(), 3, Duration::from_secs(60)).with_prefix(unique_prefix("down"));
    let mut allowed = Vec::new();
    for i in 0..6 {
        if i == 4 {
            // Past the retry interval: the next hit tries Redis again, and must still be quick.
            tokio::time::sleep(Duration::from_millis(80)).await;
        }
        allowed.push(timed_hit(&limiter, "login|198.51.100.4").await);
    }
    assert_eq!(allowed, [true, true, true, false, false, false]);
    assert!(timed_hit(&limiter, "login|198.51.100.5").await, "another client has its own count");
    assert!(!redis.is_up());
    let target = format!("127.0.0.1:{port}/0");
    assert_eq!(log_lines_with(&["WARN", "Redis unavailable at", &target]), 1, "{}", support::logs());
    assert!(!support::logs().contains("unreachable-pw-77"), "password logged");
}

/// A throwaway `redis-server` on `port`, killed on drop.
struct Server(Child);

impl Server {
    fn start(port: u16) -> Server {
        let child = Command::new(REDIS_SERVER)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(started.elapsed() < Duration::from_secs(10), "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Server(child)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn falls_back_when_redis_dies_and_returns_when_it_is_back() {
    if !std::path::Path::new(REDIS_SERVER).exists() {
        eprintln!("skipped: {REDIS_SERVER} not found");
        return;
    }
    support::capture_logs();
    let port = free_port();
    let target = format!("127.0.0.1:{port}/0");
    let server = Server::start(port);
    let retry_every = Duration::from_millis(300);
    let redis = handle(&format!("redis://127.0.0.1:{port}/0"), retry_every);
    let limiter = RedisWindow::new(redis.clone(), 3, Duration::from_secs(60)).with_prefix(unique_prefix("back"));
    let key = "login|192.0.2.1";

    // Up: counted in Redis.
    let hits: Vec<bool> = [timed_hit(&limiter, key).await, timed_hit(&limiter, key).await].into();
    assert_eq!(hits, [true, true]);
    assert!(redis.is_up());

    // Down: one warning, then in-process counts (fresh, so 3 more allowed, then refused).
    drop(server);
    let mut allowed = Vec::new();
    for _ in 0..5 {
        allowed.push(timed_hit(&limiter, key).await);
    }
    assert_eq!(allowed, [true, true, true, false, false]);
    assert!(!redis.is_up());
    // Retries while it stays down are quiet and quick.
    tokio::time::sleep(retry_every + Duration::from_millis(50)).await;
    assert!(!timed_hit(&limiter, key).await);
    assert_eq!(log_lines_with(&["WARN", "Redis unavailable at", &target]), 1, "{}", support::logs());

    // Back (empty, no persistence): the next attempt after the retry interval uses Redis again,
    // whose fresh count allows what the full in-process window would refuse.
    let _server = Server::start(port);
    tokio::time::sleep(retry_every + Duration::from_millis(50)).await;
    let mut allowed = Vec::new();
    for _ in 0..4 {
        allowed.push(timed_hit(&limiter, key).await);
    }
    assert_eq!(allowed, [true, true, true, false]);
    assert!(redis.is_up());
    assert_eq!(log_lines_with(&["Redis is back at", &target]), 1, "{}", support::logs());
    assert_eq!(log_lines_with(&["WARN", "Redis unavailable at", &target]), 1);
}
