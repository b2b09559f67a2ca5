//! Two replicas of `quarry serve` on one PostgreSQL metadata store and one Redis of the test's own
//! (a `redis-server` on a free port, never the shared one): a chat on A is watched live through
//! B's `/api/v1/chat/sessions/{id}/events`; a sign-in on A holds on B; the same question through B
//! is `cached`; the answer and schema caches live in Redis. Then Redis is killed: both servers
//! go on answering (cached and new questions) and each logs exactly one "Redis unavailable"
//! warning. Then Redis is started again on the same port: each server logs that it is back, the
//! fan-out crosses servers again and the caches fill the new Redis.
//!
//! Needs `QUARRY_TEST_POSTGRES_URL` and `redis-server` / `redis-cli` on PATH; skips clearly
//! otherwise. The store lives in a fresh schema `qe2e_redis_<random>`, dropped at the end even when
//! the test fails.

use std::collections::VecDeque;
use std::net::TcpListener;
use std::panic::AssertUnwindSafe;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine;
use futures::{FutureExt, StreamExt};
use quarry_e2e::product::{ADMIN_PASSWORD, ChatAnswer, User, demo_copy_connection, login, register};
use quarry_e2e::sse::Parser;
use quarry_e2e::{Server, ServerBuilder};
use serde_json::{Value, json};
use sqlx::{Connection, Executor};

const EMAIL: &str = "ops@example.com";
/// Questions the built-in offline model answers on the demo shop, one per step so none is cached
/// by an earlier step unless the step wants it.
const OPENING: &str = "How many customers are there?";
const WATCHED: &str = "How many customers are in Germany?";
const WHILE_DOWN_ON_A: &str = "What is the average product price?";
const WHILE_DOWN_ON_B: &str = "What is the most expensive product?";
const AFTER_RESTART: &str = "What is the cheapest product?";
/// The warning the shared Redis handle logs once per outage, and its line when Redis is back.
const DOWN_LINE: &str = "Redis unavailable";
const BACK_LINE: &str = "Redis is back";
/// A hang guard for one watched frame, and for waiting on recovery; not speed checks.
const FRAME_WAIT: Duration = Duration::from_secs(60);
const RECOVERY_WAIT: Duration = Duration::from_secs(90);

/// A `redis-server` of this test's own on `port`, without persistence; killed when dropped.
struct OwnRedis {
    port: u16,
    child: Option<Child>,
}

impl OwnRedis {
    /// Whether `redis-server` and `redis-cli` can be run.
    fn available() -> bool {
        ["redis-server", "redis-cli"]
            .iter()
            .all(|bin| Command::new(bin).arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok())
    }

    /// Start one on a free port and wait until it answers.
    async fn start() -> OwnRedis {
        let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
        let mut redis = OwnRedis { port, child: None };
        redis.restart().await;
        redis
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Start (again) on the same port and wait until it answers PING.
    async fn restart(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        self.child = Some(child);
        for _ in 0..200 {
            if self.cli(&["PING"]).trim() == "PONG" {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("redis-server on port {} did not answer", self.port);
    }

    /// Kill it (this test's own server only).
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// `redis-cli -p PORT --raw ARGS…`, its stdout ("" when it failed).
    fn cli(&self, args: &[&str]) -> String {
        Command::new("redis-cli")
            .args(["-p", &self.port.to_string(), "--raw"])
            .args(args)
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    }

    /// The keys matching `pattern`.
    fn keys(&self, pattern: &str) -> Vec<String> {
        self.cli(&["--scan", "--pattern", pattern]).lines().filter(|l| !l.is_empty()).map(str::to_string).collect()
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A watcher on `/api/v1/chat/sessions/{id}/events`: its frames as they arrive.
struct Watcher {
    body: std::pin::Pin<Box<dyn futures::Stream<Item = reqwest::Result<Vec<u8>>> + Send>>,
    parser: Parser,
    ready: VecDeque<Value>,
}

impl Watcher {
    /// Start watching `session_id` on `server` as `user`; panics unless the route answers 200.
    async fn start(server: &Server, user: &User, session_id: &str) -> Watcher {
        // A client of its own: the servers' client has a whole-request timeout, a watcher lives long.
        let response = reqwest::Client::new()
            .get(server.url(&format!("/api/v1/chat/sessions/{session_id}/events")))
            .bearer_auth(&user.token)
            .send()
            .await
            .expect("events request");
        assert_eq!(response.status().as_u16(), 200, "watch {session_id}");
        let body = Box::pin(response.bytes_stream().map(|chunk| chunk.map(|bytes| bytes.to_vec())));
        Watcher { body, parser: Parser::default(), ready: VecDeque::new() }
    }

    /// The next frame, within [`FRAME_WAIT`].
    async fn next(&mut self) -> Value {
        loop {
            if let Some(frame) = self.ready.pop_front() {
                return frame;
            }
            let chunk = tokio::time::timeout(FRAME_WAIT, self.body.next())
                .await
                .expect("a watched frame in time")
                .expect("the event stream goes on")
                .expect("the event stream is readable");
            for event in self.parser.feed(&chunk) {
                self.ready.push_back(serde_json::from_str(&event.data).expect("JSON frames"));
            }
        }
    }

    /// The frames of the next turn: `message_started`, then everything up to `done`.
    async fn turn(&mut self) -> (Value, Vec<Value>) {
        let started = self.next().await;
        assert_eq!(started["type"], "message_started", "{started}");
        let mut frames = Vec::new();
        loop {
            let frame = self.next().await;
            let done = frame["type"] == "done";
            frames.push(frame);
            if done {
                return (started, frames);
            }
        }
    }
}

/// A replica on the shared store and Redis, zero-config on (the offline model answers).
async fn replica(store_url: &str, secret_key: &str, redis_url: &str) -> Server {
    ServerBuilder::new()
        .without("QUARRY_ZERO_CONFIG")
        .env("QUARRY_METADATA_URL", store_url)
        .env("QUARRY_SECRET_KEY", secret_key)
        .env("QUARRY_REDIS_URL", redis_url)
        .start()
        .await
}

/// A random 32-byte sealing key, base64.
fn secret_key() -> String {
    let mut key = Vec::with_capacity(32);
    key.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
    key.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
    base64::engine::general_purpose::STANDARD.encode(key)
}

fn assert_status(answer: &ChatAnswer, status: &str) {
    assert_eq!(answer.done["status"], status, "frames {:?}; done {}", answer.types(), answer.done);
}

/// How many warnings in `server`'s log say Redis is unavailable.
fn down_warnings(server: &Server) -> usize {
    server.stderr().lines().filter(|l| l.contains("WARN") && l.contains(DOWN_LINE)).count()
}

#[tokio::test]
async fn two_replicas_share_one_redis_and_outlive_it() {
    let Some(admin_url) = std::env::var("QUARRY_TEST_POSTGRES_URL").ok().filter(|u| !u.is_empty()) else {
        eprintln!("skipped: QUARRY_TEST_POSTGRES_URL not set");
        return;
    };
    if !OwnRedis::available() {
        eprintln!("skipped: redis-server / redis-cli not on PATH");
        return;
    }
    let schema = format!("qe2e_redis_{}", uuid::Uuid::new_v4().simple());
    let mut admin = sqlx::PgConnection::connect(&admin_url).await.expect("connect to QUARRY_TEST_POSTGRES_URL");
    admin.execute(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}"))).await.expect("create schema");
    let mut url = url::Url::parse(&admin_url).expect("QUARRY_TEST_POSTGRES_URL parses");
    url.query_pairs_mut().append_pair("options", &format!("-c search_path={schema}"));

    let outcome = AssertUnwindSafe(scenario(url.to_string())).catch_unwind().await;
    admin.execute(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE"))).await.expect("drop schema");
    admin.close().await.expect("close admin connection");
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

async fn scenario(store_url: String) {
    let mut redis = OwnRedis::start().await;
    let key = secret_key();
    let a = replica(&store_url, &key, &redis.url()).await;
    let b = replica(&store_url, &key, &redis.url()).await;

    // A sign-in on A is valid on B.
    register(&a, EMAIL, ADMIN_PASSWORD).await;
    let admin = login(&a, EMAIL, ADMIN_PASSWORD).await;
    let me = admin.get(&b, "/api/v1/auth/me").await.expect(200);
    assert_eq!(me["email"], EMAIL, "{me}");

    let (connection_id, _shop) = demo_copy_connection(&a, &admin, "Redis shop").await;

    // A first turn on A opens a session; B watches it; the next turn on A arrives live on B.
    let opening = admin.ask(&a, &connection_id, OPENING, None).await;
    assert_status(&opening, "executed");
    let session_id = opening.done["session_id"].as_str().expect("a session id").to_string();
    let mut on_b = Watcher::start(&b, &admin, &session_id).await;
    let watching = on_b.next().await;
    assert_eq!(watching, json!({ "type": "watching", "session_id": session_id, "across_replicas": true }));
    let asked = admin.ask(&a, &connection_id, WATCHED, Some(&session_id)).await;
    assert_status(&asked, "executed");
    let (started, frames) = on_b.turn().await;
    assert_eq!(started["question"], WATCHED, "{started}");
    assert_eq!(started["session_id"], session_id.as_str());
    assert_eq!(frames, asked.frames, "B's watcher sees exactly what A's client saw");

    // The same question through B comes from the cache A filled.
    let again = admin.ask(&b, &connection_id, WATCHED, None).await;
    assert_status(&again, "cached");
    assert_eq!(again.done["results"]["rows"], asked.done["results"]["rows"]);
    assert!(!redis.keys("quarry:answer:*").is_empty(), "answers are copied to Redis");
    assert!(!redis.keys("quarry:schema:*").is_empty(), "schemas are shared through Redis");
    assert_eq!(down_warnings(&a) + down_warnings(&b), 0, "no outage yet");

    // Redis goes away: both servers go on, from the store and their own memory.
    redis.kill();
    for server in [&a, &b] {
        let cached = admin.ask(server, &connection_id, WATCHED, None).await;
        assert_status(&cached, "cached");
    }
    assert_status(&admin.ask(&a, &connection_id, WHILE_DOWN_ON_A, None).await, "executed");
    assert_status(&admin.ask(&b, &connection_id, WHILE_DOWN_ON_B, None).await, "executed");
    // Sign-in (rate-limited through Redis) still works, and its token on the other server.
    let again_admin = login(&b, EMAIL, ADMIN_PASSWORD).await;
    again_admin.get(&a, "/api/v1/auth/me").await.expect(200);
    // Progress still reaches a watcher on the server that runs the turn.
    let mut on_a = Watcher::start(&a, &admin, &session_id).await;
    assert_eq!(on_a.next().await["across_replicas"], false, "Redis is down: this server's turns only");
    let local = admin.ask(&a, &connection_id, WATCHED, Some(&session_id)).await;
    assert_eq!(on_a.turn().await.1, local.frames);
    drop(on_a);
    for server in [&a, &b] {
        assert_eq!(down_warnings(server), 1, "one warning per outage:\n{}", server.stderr());
    }

    // Redis comes back on the same port (empty): each server says so and uses it again.
    redis.restart().await;
    let deadline = tokio::time::Instant::now() + RECOVERY_WAIT;
    loop {
        // Requests that use Redis, so each server's handle tries it again.
        for server in [&a, &b] {
            assert_status(&admin.ask(server, &connection_id, WATCHED, None).await, "cached");
        }
        if [&a, &b].iter().all(|s| s.stderr().contains(BACK_LINE)) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "both servers notice Redis is back");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    for server in [&a, &b] {
        assert_eq!(down_warnings(server), 1, "still one warning:\n{}", server.stderr());
    }

    // Fan-out crosses servers again: a new watcher on B is relayed once B's subscription is back.
    let mut on_b = loop {
        let mut watcher = Watcher::start(&b, &admin, &session_id).await;
        if watcher.next().await["across_replicas"] == true {
            break watcher;
        }
        assert!(tokio::time::Instant::now() < deadline, "B subscribes in the new Redis");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let asked = admin.ask(&a, &connection_id, AFTER_RESTART, Some(&session_id)).await;
    assert_status(&asked, "executed");
    let (started, frames) = on_b.turn().await;
    assert_eq!(started["question"], AFTER_RESTART);
    assert_eq!(frames, asked.frames, "B's watcher sees A's turn again");
    // And the caches fill the new Redis.
    assert!(!redis.keys("quarry:answer:*").is_empty(), "answers are copied to the new Redis");
    assert_status(&admin.ask(&b, &connection_id, AFTER_RESTART, None).await, "cached");
    assert!(!redis.keys("quarry:schema:*").is_empty(), "schemas are shared through the new Redis");
}
