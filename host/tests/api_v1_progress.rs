//! Progress fan-out: `GET /api/v1/chat/sessions/{id}/events` follows the turns of a session that
//! other requests run, frame for frame; only the session's owner or an admin may watch. Below the
//! route, the bus itself: frames cross servers through Redis (`QUARRY_TEST_REDIS_URL`), stay on
//! their server while Redis is unreachable, and cross again once a restarted Redis is back (a
//! `redis-server` of the test's own; skipped without one on PATH).

mod support;

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use eventsource_stream::Eventsource;
use futures::{Stream, StreamExt};
use quarry::progress_bus::{ProgressBus, Subscription};
use quarry::shared_redis::{Redis, RedisConfig};
use reqwest::Method;
use serde_json::{Value, json};
use sqlx::{Connection, Executor};
use support::product::ProductServer;
use support::{FakeServer, openai_chat_sse};

const CHAT: &str = "/v1/chat/completions";
/// A hang guard for one event, not a speed check.
const EVENT_WAIT: Duration = Duration::from_secs(60);

/// The frames of an SSE response as JSON, read as they arrive.
fn frames(response: reqwest::Response) -> impl Stream<Item = Value> + Unpin {
    Box::pin(response.bytes_stream().eventsource().map(|event| {
        let event = event.expect("well-formed SSE");
        serde_json::from_str(&event.data).expect("JSON frames")
    }))
}

async fn next_frame(stream: &mut (impl Stream<Item = Value> + Unpin)) -> Value {
    tokio::time::timeout(EVENT_WAIT, stream.next()).await.expect("a frame in time").expect("the stream goes on")
}

/// `POST /api/v1/chat` as `token`, read to the end: every frame.
async fn chat(server: &ProductServer, token: &str, body: &Value) -> Vec<Value> {
    let (status, frames) = server.chat(token, body).await;
    assert_eq!(status, 200, "{frames:?}");
    frames
}

/// `GET /api/v1/chat/sessions/{id}/events` as `token` (none: anonymous).
async fn watch(server: &ProductServer, session_id: &str, token: Option<&str>) -> reqwest::Response {
    let mut request = server.client.get(server.url(&format!("/api/v1/chat/sessions/{session_id}/events")));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.expect("events request")
}

/// A product server with a scripted model and a SQLite shop: `(server, llm, admin token,
/// connection id, shop folder)`.
async fn shop() -> (ProductServer, FakeServer, String, String, tempfile::TempDir) {
    let server = ProductServer::start().await;
    let llm = FakeServer::start().await;
    let admin = server.register_admin().await;
    let (status, provider) = server
        .post(
            "/api/v1/providers/openai-compatible",
            &admin,
            &json!({ "base_url": llm.url("/v1"), "model": "test-model", "api_key": "sk-progress", "is_active": true }),
        )
        .await;
    assert_eq!(status, 201, "provider: {provider}");
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("shop.db");
    let mut db = sqlx::SqliteConnection::connect(&format!("sqlite://{}?mode=rwc", path.display())).await.expect("db");
    db.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT NOT NULL, country TEXT NOT NULL)")
        .await
        .expect("table");
    db.execute("INSERT INTO customers VALUES (1, 'Ann', 'DE'), (2, 'Bob', 'FR'), (3, 'Cid', 'DE')")
        .await
        .expect("rows");
    db.close().await.expect("close");
    let (status, connection) = server
        .post(
            "/api/v1/connections",
            &admin,
            &json!({ "name": "shop", "source_type": "sqlite", "config": { "path": path.display().to_string() } }),
        )
        .await;
    assert_eq!(status, 201, "connection: {connection}");
    let connection_id = connection["id"].as_str().expect("connection id").to_string();
    (server, llm, admin, connection_id, dir)
}

fn answer(sql: &str) -> support::Reply {
    openai_chat_sse(&json!({ "description": "scripted plan", "sql": sql }).to_string(), (50, 20))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watcher_sees_every_frame_of_a_turn_another_request_runs() {
    let (server, llm, admin, connection_id, _shop) = shop().await;
    llm.reply(CHAT, answer("SELECT name FROM customers ORDER BY id"));
    let first = chat(&server, &admin, &json!({ "connection_id": connection_id, "message": "Customer names" })).await;
    let session_id = first.last().expect("frames")["session_id"].as_str().expect("session id").to_string();

    // A second tab watches the session; then the first asks again in it.
    let response = watch(&server, &session_id, Some(&admin)).await;
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"].to_str().unwrap_or("").starts_with("text/event-stream"));
    let mut watcher = frames(response);
    let watching = next_frame(&mut watcher).await;
    assert_eq!(watching, json!({ "type": "watching", "session_id": session_id, "across_replicas": false }));

    llm.reply(CHAT, answer("SELECT name FROM customers WHERE country = 'DE' ORDER BY id"));
    let question = "Customers in Germany";
    let asked = chat(
        &server,
        &admin,
        &json!({ "connection_id": connection_id, "message": question, "session_id": session_id }),
    )
    .await;
    let done = asked.last().expect("frames");
    assert_eq!(done["type"], "done");
    assert_eq!(done["session_id"], session_id.as_str(), "the turn continued the session: {done}");

    let started = next_frame(&mut watcher).await;
    assert_eq!(started["type"], "message_started", "{started}");
    assert_eq!(started["session_id"], session_id.as_str());
    assert_eq!(started["connection_id"], connection_id.as_str());
    assert_eq!(started["question"], question);
    // Then exactly the frames the asking client got, in its order, `status` first and `done` last.
    let mut seen = Vec::new();
    while seen.last().is_none_or(|f: &Value| f["type"] != "done") {
        seen.push(next_frame(&mut watcher).await);
    }
    assert_eq!(seen, asked, "the watcher sees what the client saw");
    assert_eq!(seen[0]["type"], "status");
    assert_eq!(done["results"]["rows"], json!([["Ann"], ["Cid"]]), "{done}");

    // The watcher stays for the next turn (a cached one here: same question again).
    let again = chat(
        &server,
        &admin,
        &json!({ "connection_id": connection_id, "message": question, "session_id": session_id }),
    )
    .await;
    assert_eq!(again.last().expect("frames")["status"], "cached");
    assert_eq!(next_frame(&mut watcher).await["type"], "message_started");
    let mut seen = Vec::new();
    while seen.last().is_none_or(|f: &Value| f["type"] != "done") {
        seen.push(next_frame(&mut watcher).await);
    }
    assert_eq!(seen, again);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_owner_or_an_admin_may_watch_a_session() {
    let (server, llm, admin, connection_id, _shop) = shop().await;
    let member = server.add_user(&admin, "member@example.com", "member").await;
    let other = server.add_user(&admin, "other@example.com", "member").await;
    llm.always(CHAT, answer("SELECT COUNT(*) AS n FROM customers"));
    let asked =
        chat(&server, &member, &json!({ "connection_id": connection_id, "message": "How many customers?" })).await;
    let session_id = asked.last().expect("frames")["session_id"].as_str().expect("session id").to_string();
    let path = format!("/api/v1/chat/sessions/{session_id}/events");

    let anonymous = watch(&server, &session_id, None).await;
    assert_eq!(anonymous.status(), 401);
    // Someone else's session is answered as the other session routes answer it: not found.
    let (status, reply) = server.call(Method::GET, &path, Some(&other), None).await;
    assert_eq!(status, 404, "{reply}");
    assert_eq!(reply["detail"], "Session not found");
    let (status, _) = server.get(&format!("/api/v1/chat/sessions/{session_id}"), &other).await;
    assert_eq!(status, 404, "the same answer as for the session itself");
    for unknown in ["00000000-0000-4000-8000-000000000000", "not-a-session"] {
        let (status, reply) = server.get(&format!("/api/v1/chat/sessions/{unknown}/events"), &admin).await;
        assert_eq!(status, 404, "{unknown}: {reply}");
    }

    // The owner and an admin may.
    for token in [&member, &admin] {
        let response = watch(&server, &session_id, Some(token)).await;
        assert_eq!(response.status(), 200);
        assert_eq!(next_frame(&mut frames(response)).await["type"], "watching");
    }
}

// ---- The bus over Redis ----

fn test_redis_url() -> Option<String> {
    let url = std::env::var("QUARRY_TEST_REDIS_URL").ok().filter(|u| !u.is_empty());
    if url.is_none() {
        eprintln!("skipped: QUARRY_TEST_REDIS_URL not set");
    }
    url
}

fn bus_on(url: &str) -> (ProgressBus, Arc<Redis>) {
    let redis = Arc::new(
        Redis::new(RedisConfig::from_url(url).expect("a Redis URL"))
            .expect("a Redis handle")
            .with_retry_every(Duration::from_millis(200)),
    );
    (ProgressBus::with_redis(redis.clone()), redis)
}

/// A topic no other test or run uses.
fn new_topic() -> String {
    uuid::Uuid::new_v4().to_string()
}

async fn next_on(subscription: &mut Subscription) -> String {
    let frame = tokio::time::timeout(EVENT_WAIT, subscription.next()).await.expect("a frame in time");
    frame.expect("the subscription goes on").to_string()
}

#[tokio::test]
async fn frames_cross_servers_through_redis_once_each() {
    let Some(url) = test_redis_url() else { return };
    let (here, _) = bus_on(&url);
    let (there, _) = bus_on(&url);
    let topic = new_topic();
    let mut local = here.subscribe(&topic).await;
    let mut remote = there.subscribe(&topic).await;
    assert!(local.across_replicas() && remote.across_replicas(), "Redis confirmed both subscriptions");

    for n in 0..100 {
        here.publish(&topic, &format!(r#"{{"n":{n}}}"#));
    }
    here.publish(&topic, r#"{"type":"done"}"#);
    for watcher in [&mut local, &mut remote] {
        for n in 0..100 {
            assert_eq!(next_on(watcher).await, format!(r#"{{"n":{n}}}"#), "in order, once");
        }
        assert_eq!(next_on(watcher).await, r#"{"type":"done"}"#);
    }
    // The publisher's own watcher got each frame once (not again through Redis), and another
    // topic's frames reach nobody here.
    there.publish(&new_topic(), r#"{"elsewhere":true}"#);
    there.publish(&topic, r#"{"last":true}"#);
    assert_eq!(next_on(&mut local).await, r#"{"last":true}"#);
    assert_eq!(next_on(&mut remote).await, r#"{"last":true}"#);
}

/// A local port nothing listens on (just freed).
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("its address").port()
}

#[tokio::test]
async fn without_redis_frames_stay_on_their_server_and_nothing_waits() {
    let (bus, redis) = bus_on(&format!("redis://127.0.0.1:{}", free_port()));
    let topic = new_topic();
    let mut watcher = tokio::time::timeout(EVENT_WAIT, bus.subscribe(&topic)).await.expect("subscribe returns");
    assert!(!watcher.across_replicas(), "nothing relays the topic");
    for n in 0..2000 {
        bus.publish(&topic, &format!(r#"{{"n":{n}}}"#));
    }
    // This server's watcher got them (the last 256 of 2000: it read none while they came).
    let lagged: Value = serde_json::from_str(&next_on(&mut watcher).await).expect("JSON");
    assert_eq!(lagged["type"], "lagged", "{lagged}");
    let missed = lagged["missed"].as_u64().expect("missed");
    assert_eq!(next_on(&mut watcher).await, format!(r#"{{"n":{missed}}}"#));
    assert!(!redis.is_up());
}

/// A `redis-server` of this test's own, on `port`, without persistence; killed when dropped.
struct OwnRedis(Child);

impl OwnRedis {
    /// `None` (the test skips) when `redis-server` is not on PATH.
    fn start(port: u16) -> Option<OwnRedis> {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--save", "", "--appendonly", "no", "--bind", "127.0.0.1"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        Some(OwnRedis(child))
    }

    async fn wait_ready(port: u16) {
        let url = format!("redis://127.0.0.1:{port}");
        let client = redis::Client::open(url.as_str()).expect("client");
        for _ in 0..200 {
            if let Ok(mut conn) = client.get_multiplexed_async_connection().await
                && redis::cmd("PING").query_async::<String>(&mut conn).await.is_ok()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("redis-server on port {port} did not start");
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Publish on `from` until `to` receives it (the subscription may still be coming back), up to
/// a hang guard. Frames of earlier calls that `to` still holds are skipped.
async fn crosses(from: &ProgressBus, topic: &str, to: &mut Subscription) -> bool {
    let marker = uuid::Uuid::new_v4().simple().to_string();
    for attempt in 0..100 {
        from.publish(topic, &json!({ "marker": marker, "attempt": attempt }).to_string());
        let deadline = tokio::time::Instant::now() + Duration::from_millis(300);
        while let Ok(Some(got)) = tokio::time::timeout_at(deadline, to.next()).await {
            if got.contains(&marker) {
                return true;
            }
        }
    }
    false
}

#[tokio::test]
async fn fan_out_comes_back_with_redis() {
    let port = free_port();
    let Some(first) = OwnRedis::start(port) else {
        eprintln!("skipped: redis-server is not on PATH");
        return;
    };
    OwnRedis::wait_ready(port).await;
    let url = format!("redis://127.0.0.1:{port}");
    let (here, _) = bus_on(&url);
    let (there, there_redis) = bus_on(&url);
    let topic = new_topic();
    let mut local = here.subscribe(&topic).await;
    let mut remote = there.subscribe(&topic).await;
    assert!(remote.across_replicas());
    assert!(crosses(&here, &topic, &mut remote).await, "frames cross while Redis runs");
    // Drop what the publisher's own watcher got meanwhile.
    while tokio::time::timeout(Duration::from_millis(50), local.next()).await.is_ok() {}

    drop(first);
    // Down: publishing goes on, this server's watcher still gets the frames.
    here.publish(&topic, r#"{"while":"down"}"#);
    assert_eq!(next_on(&mut local).await, r#"{"while":"down"}"#);
    // The other server notices too (its handle, asked directly here, says Redis is down).
    let _ = there_redis.query::<String>(&redis::cmd("PING")).await;
    assert!(!there_redis.is_up());

    let _second = OwnRedis::start(port).expect("redis-server starts again");
    OwnRedis::wait_ready(port).await;
    assert!(crosses(&here, &topic, &mut remote).await, "frames cross again once Redis is back");
    assert!(crosses(&there, &topic, &mut local).await, "both ways");
}
