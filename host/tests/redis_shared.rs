//! Redis shared by replicas, and what happens when it is down:
//! - the sign-in rate limiter counts once across servers, falls back to in-process counts without
//!   stalling when Redis is unreachable, logs that once, and returns to Redis when it is back;
//! - the schema cache: one server's introspection serves the others, a refresh or invalidation on
//!   one reaches the others' next question (pub/sub), also when it happened while Redis was down;
//! - the answer cache's hot tier: exact answers are served from Redis by any server and counted
//!   in the store's stats, a deletion makes copies unservable even when made by a server that
//!   cannot reach Redis, and with Redis down answers come from the store (one warning) until it
//!   is back.
//!
//! The shared tests need `QUARRY_TEST_REDIS_URL` (e.g. `redis://127.0.0.1:6379`; every test uses
//! its own key prefix, nothing is flushed); the answer-cache ones also run on PostgreSQL when
//! `QUARRY_TEST_POSTGRES_URL` is set (a fresh schema each). The down-and-back tests start their
//! own `/usr/bin/redis-server`. Each skips clearly without what it needs.

mod support;

use std::future::Future;
use std::net::TcpListener;
use std::panic::AssertUnwindSafe;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::FutureExt;
use quarry::answer_cache::{AnswerCache, CachePolicy};
use quarry::auth::rate_limit::{RateLimiter, RedisWindow};
use quarry::db::{DbError, Engine};
use quarry::schema::{Schema, SchemaCache};
use quarry::shared_redis::{Redis, RedisConfig};
use quarry::store::Store;
use sha2::{Digest, Sha256};
use sqlx::{Connection, Executor};

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

// ---------------------------------------------------------------------------------------------
// Shared caches.

/// A key prefix for one cache test (keys and channels alike).
fn cache_prefix(test: &str) -> String {
    format!("quarry:test:{test}:{}:", uuid::Uuid::new_v4().simple())
}

/// Wait (at most 10 s) until `check` holds; a hang guard, not a speed check.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let started = Instant::now();
    while !check().await {
        assert!(started.elapsed() < Duration::from_secs(10), "never happened: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn redis_conn(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url).unwrap().get_multiplexed_async_connection().await.unwrap()
}

async fn redis_keys(url: &str, pattern: &str) -> Vec<String> {
    let mut keys: Vec<String> = redis::cmd("KEYS").arg(pattern).query_async(&mut redis_conn(url).await).await.unwrap();
    keys.sort();
    keys
}

async fn redis_get(url: &str, key: &str) -> Option<String> {
    redis::cmd("GET").arg(key).query_async(&mut redis_conn(url).await).await.unwrap()
}

fn schema(fingerprint: &str) -> Schema {
    Schema { engine: Engine::Sqlite, default_schema: None, tables: vec![], fingerprint: fingerprint.into() }
}

async fn introspected(fingerprint: &str) -> Result<Schema, DbError> {
    Ok(schema(fingerprint))
}

/// For a server that must not introspect: the schema has to come from its cache or Redis.
async fn must_not_introspect() -> Result<Schema, DbError> {
    Err(DbError::Driver("this server introspected instead of using the shared schema".into()))
}

fn schema_key_in_redis(prefix: &str, key: &str) -> String {
    format!("{prefix}schema:{}", hex::encode(Sha256::digest(key.as_bytes())))
}

/// A schema cache as one server holds it, shared through its own Redis handle.
fn shared_schemas(url: &str, prefix: &str, retry_every: Duration) -> SchemaCache {
    let cache = SchemaCache::new(Duration::from_secs(60));
    assert!(cache.share(handle(url, retry_every), prefix));
    cache
}

const SCHEMA_KEY: &str = "db-hash\u{1f}\u{1f}3\u{1f}policy-hash";

#[tokio::test]
async fn schema_refresh_on_one_server_is_used_by_the_next_question_on_another() {
    let Some(url) = test_redis_url() else { return };
    let prefix = cache_prefix("schema");
    let a = shared_schemas(&url, &prefix, Duration::from_secs(5));
    let b = shared_schemas(&url, &prefix, Duration::from_secs(5));
    eventually("both servers follow the invalidations", || async { a.is_following() && b.is_following() }).await;

    // A introspects; B reads A's schema from Redis instead of introspecting again.
    assert_eq!(a.get_with(SCHEMA_KEY, false, || introspected("v1")).await.unwrap().fingerprint, "v1");
    assert_eq!(b.get_with(SCHEMA_KEY, false, must_not_introspect).await.expect("from Redis").fingerprint, "v1");
    let redis_key = schema_key_in_redis(&prefix, SCHEMA_KEY);
    let stored = redis_get(&url, &redis_key).await.expect("the schema is in Redis");
    assert!(stored.contains(r#""fingerprint":"v1""#), "{stored}");
    let ttl: i64 = redis::cmd("PTTL").arg(&redis_key).query_async(&mut redis_conn(&url).await).await.unwrap();
    assert!(ttl > 0 && ttl <= 60_000, "ttl {ttl}");

    // A refreshes: B drops its copy, and its next question uses A's new schema.
    assert_eq!(a.get_with(SCHEMA_KEY, true, || introspected("v2")).await.unwrap().fingerprint, "v2");
    eventually("B drops its copy", || async { b.peek(SCHEMA_KEY).await.is_none() }).await;
    assert_eq!(b.get_with(SCHEMA_KEY, false, must_not_introspect).await.expect("from Redis").fingerprint, "v2");

    // A invalidates: gone here, in Redis and on B, whose next question introspects.
    a.invalidate(SCHEMA_KEY).await;
    assert!(a.peek(SCHEMA_KEY).await.is_none());
    eventually("B drops its copy", || async { b.peek(SCHEMA_KEY).await.is_none() }).await;
    assert_eq!(redis_get(&url, &redis_key).await, None);
    assert_eq!(b.get_with(SCHEMA_KEY, false, || introspected("v3")).await.unwrap().fingerprint, "v3");
    let _: () = redis::cmd("DEL").arg(&redis_key).query_async(&mut redis_conn(&url).await).await.unwrap();
}

#[tokio::test]
async fn schema_refreshed_while_redis_is_down_reaches_the_others_when_it_is_back() {
    if !std::path::Path::new(REDIS_SERVER).exists() {
        eprintln!("skipped: {REDIS_SERVER} not found");
        return;
    }
    let port = free_port();
    let url = format!("redis://127.0.0.1:{port}/0");
    let server = Server::start(port);
    let prefix = cache_prefix("schema-outage");
    let retry_every = Duration::from_millis(200);
    let a = shared_schemas(&url, &prefix, retry_every);
    let b = shared_schemas(&url, &prefix, retry_every);
    eventually("both servers follow the invalidations", || async { a.is_following() && b.is_following() }).await;
    a.get_with(SCHEMA_KEY, false, || introspected("v1")).await.unwrap();
    assert_eq!(b.get_with(SCHEMA_KEY, false, must_not_introspect).await.expect("from Redis").fingerprint, "v1");

    // Down: A's refresh stays on A; B keeps answering from its own copy (stale until Redis is
    // back or the TTL ends).
    drop(server);
    eventually("both servers notice", || async { !a.is_following() && !b.is_following() }).await;
    assert_eq!(a.get_with(SCHEMA_KEY, true, || introspected("v2")).await.unwrap().fingerprint, "v2");
    assert_eq!(b.get_with(SCHEMA_KEY, false, must_not_introspect).await.expect("B's copy").fingerprint, "v1");

    // Back (empty: no persistence): A sends its refresh to Redis (over anything put there
    // meanwhile), B drops the copy it had before the outage, and a server asking now gets A's.
    let _server = Server::start(port);
    let redis_key = schema_key_in_redis(&prefix, SCHEMA_KEY);
    eventually("A's refresh reaches Redis", || async {
        redis_get(&url, &redis_key).await.is_some_and(|stored| stored.contains(r#""fingerprint":"v2""#))
    })
    .await;
    eventually("B stops using its pre-outage copy", || async {
        b.get_with(SCHEMA_KEY, false, || introspected("b-own")).await.unwrap().fingerprint != "v1"
    })
    .await;
    let c = shared_schemas(&url, &prefix, retry_every);
    assert_eq!(c.get_with(SCHEMA_KEY, false, must_not_introspect).await.expect("from Redis").fingerprint, "v2");
}

const QUESTION: &str = "How many customers are in Germany?";
const SAME_QUESTION: &str = "how many customers are in germany";
const SQL: &str = "SELECT COUNT(*) FROM customers WHERE country = 'Germany'";
const FINGERPRINT: &str = "fp1";

/// Run `case` with a fresh metadata store URL on SQLite and, when `QUARRY_TEST_POSTGRES_URL` is
/// set, on PostgreSQL (a schema of its own, dropped afterwards even when the case fails).
async fn on_each_store<F, Fut>(case: F)
where
    F: Fn(String) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = tempfile::tempdir().unwrap();
    case(format!("sqlite://{}", dir.path().join("meta.db").display())).await;
    let Some(admin_url) = std::env::var("QUARRY_TEST_POSTGRES_URL").ok().filter(|u| !u.is_empty()) else {
        eprintln!("skipped: QUARRY_TEST_POSTGRES_URL not set (the PostgreSQL half of this test)");
        return;
    };
    let schema = format!("quarry_redis_{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let mut admin = sqlx::PgConnection::connect(&admin_url).await.expect("connect to the test PostgreSQL");
    admin.execute(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}"))).await.expect("create schema");
    let mut url = url::Url::parse(&admin_url).expect("test URL parses");
    url.query_pairs_mut().append_pair("options", &format!("-c search_path={schema}"));
    let outcome = AssertUnwindSafe(case(url.to_string())).catch_unwind().await;
    admin.execute(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE"))).await.expect("drop schema");
    if let Err(panic) = outcome {
        eprintln!("failed on PostgreSQL");
        std::panic::resume_unwind(panic);
    }
}

/// An answer cache as one server holds it: its own pool on the store, its own Redis handle.
async fn server_cache(store_url: &str, redis_url: &str, prefix: &str) -> AnswerCache {
    let store = Store::open(store_url).await.expect("open the store");
    AnswerCache::new(store).with_redis_prefix(handle(redis_url, Duration::from_secs(5)), prefix)
}

/// The Redis copies of `connection`'s answers.
async fn answer_copies(redis_url: &str, prefix: &str, connection: &str) -> Vec<String> {
    redis_keys(redis_url, &format!("{prefix}answer:{connection}:*")).await
}

/// Replace the SQL of the copy at `key`, so that only Redis can answer with `sql`.
async fn mark_copy(redis_url: &str, key: &str, sql: &str) {
    let mut copy: serde_json::Value = serde_json::from_str(&redis_get(redis_url, key).await.expect("copy")).unwrap();
    copy["sql"] = sql.into();
    let _: () = redis::cmd("SET")
        .arg(key)
        .arg(copy.to_string())
        .arg("KEEPTTL")
        .query_async(&mut redis_conn(redis_url).await)
        .await
        .unwrap();
}

#[tokio::test]
async fn exact_answers_are_served_from_redis_by_every_server_and_still_counted() {
    let Some(redis_url) = test_redis_url() else { return };
    on_each_store(|store_url| {
        let redis_url = redis_url.clone();
        async move {
            let prefix = cache_prefix("answers");
            let a = server_cache(&store_url, &redis_url, &prefix).await;
            let b = server_cache(&store_url, &redis_url, &prefix).await;
            let policy = CachePolicy::default();
            let connection = uuid::Uuid::new_v4().to_string();

            // Stored on A: in the store and copied to Redis, under generation 0, for at most an hour.
            assert!(a.store_entry(&connection, QUESTION, FINGERPRINT, SQL, "sqlite", false).await.unwrap());
            let copies = answer_copies(&redis_url, &prefix, &connection).await;
            assert_eq!(copies.len(), 1, "{copies:?}");
            let key = &copies[0];
            assert!(key.starts_with(&format!("{prefix}answer:{connection}:0:{FINGERPRINT}:")), "{key}");
            let copy: serde_json::Value = serde_json::from_str(&redis_get(&redis_url, key).await.unwrap()).unwrap();
            assert_eq!((copy["sql"].as_str(), copy["question"].as_str()), (Some(SQL), Some(QUESTION)), "{copy}");
            let ttl: i64 = redis::cmd("PTTL").arg(key).query_async(&mut redis_conn(&redis_url).await).await.unwrap();
            assert!(ttl > 0 && ttl <= 3_600_000, "ttl {ttl}");

            // B serves the same question (asked differently) from Redis: only the copy has this SQL.
            mark_copy(&redis_url, key, "SELECT 'from redis'").await;
            let hit = b.lookup(&connection, SAME_QUESTION, FINGERPRINT, &policy).await.unwrap().expect("a hit");
            assert_eq!(
                (hit.sql.as_str(), hit.exact, hit.question_raw.as_str()),
                ("SELECT 'from redis'", true, QUESTION)
            );
            // ... and the hit counts in the store's stats, seen from either server.
            let stats = b.stats().await.unwrap();
            assert_eq!((stats.hit_count, stats.miss_count, stats.total_entries), (1, 0, 1), "{stats:?}");
            assert_eq!(stats.top_cached_queries[0].question, QUESTION);
            assert_eq!(a.stats().await.unwrap().hit_count, 1);
            let listed = a.entries(&connection, 10, 0, None).await.unwrap();
            assert!(listed.items[0].last_hit_at.is_some(), "the sliding TTL moved: {:?}", listed.items[0]);

            // Without the copy the store answers, and the copy is made again.
            let _: () = redis::cmd("DEL").arg(key).query_async(&mut redis_conn(&redis_url).await).await.unwrap();
            let hit = a.lookup(&connection, QUESTION, FINGERPRINT, &policy).await.unwrap().expect("a hit");
            assert_eq!(hit.sql, SQL);
            assert_eq!(answer_copies(&redis_url, &prefix, &connection).await, copies);
            assert_eq!(b.stats().await.unwrap().hit_count, 2);

            // Another schema is another key: no hit, one miss.
            assert!(b.lookup(&connection, QUESTION, "fp2", &policy).await.unwrap().is_none());
            assert_eq!(b.stats().await.unwrap().miss_count, 1);

            // A hit served from Redis that the caller rejects counts as a miss, not a hit.
            let hit = b.lookup(&connection, QUESTION, FINGERPRINT, &policy).await.unwrap().expect("a hit");
            b.reject_hit(&connection, &hit.entry_id).await.unwrap();
            let stats = a.stats().await.unwrap();
            assert_eq!((stats.hit_count, stats.miss_count), (2, 2), "{stats:?}");
            let _: () = redis::cmd("DEL").arg(&copies).query_async(&mut redis_conn(&redis_url).await).await.unwrap();
        }
    })
    .await;
}

/// How a server deletes a connection's answers.
#[derive(Debug, Clone, Copy)]
enum Deletion {
    Clear,
    Forget,
    ThumbsDown,
    DeleteEntry,
    Overwrite,
}

#[tokio::test]
async fn deleted_answers_are_never_served_from_redis_even_when_deleted_by_a_server_without_it() {
    let Some(redis_url) = test_redis_url() else { return };
    on_each_store(|store_url| {
        let redis_url = redis_url.clone();
        async move {
            let prefix = cache_prefix("deletions");
            let a = server_cache(&store_url, &redis_url, &prefix).await;
            // A server whose Redis is unreachable: whatever it deletes cannot reach Redis.
            let unreachable = format!("redis://127.0.0.1:{}/0", free_port());
            let offline = server_cache(&store_url, &unreachable, &prefix).await;
            let policy = CachePolicy::default();
            for deletion in
                [Deletion::Clear, Deletion::Forget, Deletion::ThumbsDown, Deletion::DeleteEntry, Deletion::Overwrite]
            {
                let connection = uuid::Uuid::new_v4().to_string();
                assert!(a.store_entry(&connection, QUESTION, FINGERPRINT, SQL, "sqlite", false).await.unwrap());
                let copies = answer_copies(&redis_url, &prefix, &connection).await;
                assert_eq!(copies.len(), 1, "{deletion:?}: {copies:?}");
                let hit = a.lookup(&connection, QUESTION, FINGERPRINT, &policy).await.unwrap();
                assert_eq!(hit.map(|h| h.sql), Some(SQL.to_string()), "{deletion:?}");
                // Counted now, while the entry exists (a count that finds it gone drops the copy).
                a.flush_hot_hits().await;

                match deletion {
                    Deletion::Clear => assert_eq!(offline.clear_connection(&connection).await.unwrap(), 1),
                    Deletion::Forget => assert_eq!(offline.forget_connection(&connection).await.unwrap(), 1),
                    Deletion::ThumbsDown => {
                        assert_eq!(offline.evict_similar(&connection, SAME_QUESTION, 0.9).await.unwrap(), 1)
                    }
                    Deletion::DeleteEntry => {
                        let id = offline.entries(&connection, 10, 0, None).await.unwrap().items[0].id.clone();
                        assert!(offline.delete_entry(&id).await.unwrap());
                    }
                    Deletion::Overwrite => assert!(
                        offline
                            .store_entry(&connection, QUESTION, FINGERPRINT, "SELECT 2", "sqlite", true)
                            .await
                            .unwrap()
                    ),
                }

                // The old copy is still in Redis, yet never served again.
                let left = answer_copies(&redis_url, &prefix, &connection).await;
                assert!(left.contains(&copies[0]), "{deletion:?}: {left:?}");
                let served = a.lookup(&connection, QUESTION, FINGERPRINT, &policy).await.unwrap().map(|h| h.sql);
                let expected = matches!(deletion, Deletion::Overwrite).then(|| "SELECT 2".to_string());
                assert_eq!(served, expected, "{deletion:?}");
                let copies = answer_copies(&redis_url, &prefix, &connection).await;
                let _: () =
                    redis::cmd("DEL").arg(&copies).query_async(&mut redis_conn(&redis_url).await).await.unwrap();
            }
        }
    })
    .await;
}

#[tokio::test]
async fn answers_come_from_the_store_while_redis_is_down_and_from_redis_when_it_is_back() {
    if !std::path::Path::new(REDIS_SERVER).exists() {
        eprintln!("skipped: {REDIS_SERVER} not found");
        return;
    }
    support::capture_logs();
    let port = free_port();
    let target = format!("127.0.0.1:{port}/0");
    let redis_url = format!("redis://{target}");
    let server = Server::start(port);
    let retry_every = Duration::from_millis(300);
    let redis = handle(&redis_url, retry_every);
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&format!("sqlite://{}", dir.path().join("meta.db").display())).await.unwrap();
    let prefix = cache_prefix("answers-outage");
    let cache = AnswerCache::new(store).with_redis_prefix(redis.clone(), &prefix);
    let policy = CachePolicy::default();
    let connection = uuid::Uuid::new_v4().to_string();
    assert!(cache.store_entry(&connection, QUESTION, FINGERPRINT, SQL, "sqlite", false).await.unwrap());
    assert_eq!(answer_copies(&redis_url, &prefix, &connection).await.len(), 1);

    // Down: every lookup still answers, from the store; one warning.
    drop(server);
    for _ in 0..5 {
        let hit = cache.lookup(&connection, QUESTION, FINGERPRINT, &policy).await.unwrap();
        assert_eq!(hit.map(|h| h.sql), Some(SQL.to_string()));
    }
    assert!(!redis.is_up());
    assert_eq!(cache.stats().await.unwrap().hit_count, 5);
    assert_eq!(log_lines_with(&["WARN", "Redis unavailable at", &target]), 1, "{}", support::logs());

    // Back (empty): the next lookup after the retry interval copies the answer again, and the
    // one after is served from Redis.
    let _server = Server::start(port);
    tokio::time::sleep(retry_every + Duration::from_millis(50)).await;
    let hit = cache.lookup(&connection, QUESTION, FINGERPRINT, &policy).await.unwrap();
    assert_eq!(hit.map(|h| h.sql), Some(SQL.to_string()));
    let copies = answer_copies(&redis_url, &prefix, &connection).await;
    assert_eq!(copies.len(), 1, "the copy is made again");
    mark_copy(&redis_url, &copies[0], "SELECT 'from redis'").await;
    let hit = cache.lookup(&connection, QUESTION, FINGERPRINT, &policy).await.unwrap();
    assert_eq!(hit.map(|h| h.sql), Some("SELECT 'from redis'".to_string()));
    assert!(redis.is_up());
    assert_eq!(cache.stats().await.unwrap().hit_count, 7);
    assert_eq!(log_lines_with(&["Redis is back at", &target]), 1, "{}", support::logs());
    assert_eq!(log_lines_with(&["WARN", "Redis unavailable at", &target]), 1);
}
