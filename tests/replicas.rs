//! Two replicas of `quarry serve` sharing one PostgreSQL metadata store (and Redis when
//! `QUARRY_TEST_REDIS_URL` is set): a token from one works on the other, a chat made on one is
//! visible and cached on the other, and a query held for review on one is approved on the other,
//! exactly once.
//!
//! Needs `QUARRY_TEST_POSTGRES_URL`; the store lives in a fresh schema `qe2e_replicas_<random>`,
//! dropped at the end even when the test fails.

use std::panic::AssertUnwindSafe;

use base64::Engine;
use futures::FutureExt;
use quarry_e2e::product::{ADMIN_PASSWORD, ChatAnswer, demo_copy_connection, register};
use quarry_e2e::{Server, ServerBuilder};
use serde_json::{Value, json};
use sqlx::{Connection, Executor};

const QUESTION: &str = "How many customers are in Germany?";
const REVIEWED_QUESTION: &str = "Top 5 products by price";
const EMAIL: &str = "ops@example.com";

/// A replica on the shared store, with zero-config on (each generates its own demo database).
async fn replica(store_url: &str, secret_key: &str, redis: Option<&str>) -> Server {
    let mut builder = ServerBuilder::new()
        .without("QUARRY_ZERO_CONFIG")
        .env("QUARRY_METADATA_URL", store_url)
        .env("QUARRY_SECRET_KEY", secret_key);
    if let Some(redis) = redis {
        builder = builder.env("QUARRY_REDIS_URL", redis);
    }
    builder.start().await
}

/// A random 32-byte sealing key, base64 (two v4 UUIDs: enough randomness for a test).
fn secret_key() -> String {
    let mut key = Vec::with_capacity(32);
    key.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
    key.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
    base64::engine::general_purpose::STANDARD.encode(key)
}

fn assert_status(answer: &ChatAnswer, status: &str) {
    assert_eq!(answer.done["status"], status, "frames {:?}; done {}", answer.types(), answer.done);
}

#[tokio::test]
async fn two_replicas_share_users_sessions_cache_and_approvals() {
    let Some(admin_url) = std::env::var("QUARRY_TEST_POSTGRES_URL").ok().filter(|u| !u.is_empty()) else {
        eprintln!("skipped: QUARRY_TEST_POSTGRES_URL not set");
        return;
    };
    let redis = std::env::var("QUARRY_TEST_REDIS_URL").ok().filter(|u| !u.is_empty());
    if redis.is_none() {
        eprintln!("note: QUARRY_TEST_REDIS_URL not set; the replicas share only PostgreSQL");
    }
    let schema = format!("qe2e_replicas_{}", uuid::Uuid::new_v4().simple());
    let mut admin = sqlx::PgConnection::connect(&admin_url).await.expect("connect to QUARRY_TEST_POSTGRES_URL");
    admin.execute(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}"))).await.expect("create schema");
    let mut url = url::Url::parse(&admin_url).expect("QUARRY_TEST_POSTGRES_URL parses");
    url.query_pairs_mut().append_pair("options", &format!("-c search_path={schema}"));

    let outcome = AssertUnwindSafe(scenario(url.to_string(), redis)).catch_unwind().await;
    admin.execute(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE"))).await.expect("drop schema");
    admin.close().await.expect("close admin connection");
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

async fn scenario(store_url: String, redis: Option<String>) {
    let key = secret_key();
    // A first, so it creates the store's tables and seeds the records; then B on the same store.
    let a = replica(&store_url, &key, redis.as_deref()).await;
    let b = replica(&store_url, &key, redis.as_deref()).await;

    // A token issued by A is accepted by B.
    let admin = register(&a, EMAIL, ADMIN_PASSWORD).await;
    let me = admin.get(&b, "/api/v1/auth/me").await.expect(200);
    assert_eq!(me["email"], EMAIL, "{me}");
    assert_eq!(me["role"], "admin", "{me}");

    // Only one demo connection although both replicas started with zero-config on.
    let list = admin.get(&b, "/api/v1/connections").await.expect(200);
    let demos = list["items"].as_array().expect("items").iter().filter(|c| c["name"] == "Demo shop").count();
    assert_eq!(demos, 1, "{list}");

    // A connection of our own, on a copy of A's demo database outside every data folder (the
    // product refuses files inside its own); both replicas run on this machine. Its config is
    // sealed by A and must open on B with the shared key.
    let (connection_id, _shop_dir) = demo_copy_connection(&a, &admin, "Replica shop").await;
    let config = admin.get(&b, &format!("/api/v1/connections/{connection_id}/config")).await.expect(200);
    assert!(config.to_string().contains("shop.db"), "B opens the sealed config: {config}");

    // A chat on A: its session and history are visible on B.
    let first = admin.ask(&a, &connection_id, QUESTION, None).await;
    assert_status(&first, "executed");
    let rows = first.done["results"]["rows"].clone();
    assert_eq!(first.done["results"]["row_count"], 1, "{}", first.done);
    let session_id = first.done["session_id"].as_str().expect("a session id").to_string();
    let sessions = admin.get(&b, "/api/v1/chat/sessions").await.expect(200);
    let ids: Vec<&str> = sessions["items"].as_array().expect("items").iter().filter_map(|s| s["id"].as_str()).collect();
    assert!(ids.contains(&session_id.as_str()), "B lists A's session: {sessions}");
    let history = admin.get(&b, &format!("/api/v1/chat/sessions/{session_id}/history")).await.expect(200);
    assert_eq!(history["total"], 2, "{history}");
    assert_eq!(history["items"][0]["content"], QUESTION, "{history}");

    // The same question on B hits the cache entry A made.
    let again = admin.ask(&b, &connection_id, QUESTION, None).await;
    assert_status(&again, "cached");
    assert_eq!(again.done["cache_hit"], true, "{}", again.done);
    assert_eq!(again.done["results"]["rows"], rows, "the cached rows are A's rows");

    // Review first, set on A: a question asked on A is held; B approves it; it runs once.
    let mode = admin
        .put(
            &a,
            &format!("/api/v1/connections/{connection_id}/execution-mode"),
            &json!({ "execution_mode": "review_first" }),
        )
        .await;
    assert_eq!(mode.status, 200, "set review_first: {}", mode.text);
    let held = admin.ask(&a, &connection_id, REVIEWED_QUESTION, None).await;
    assert_status(&held, "pending_approval");
    assert!(held.done["query"].is_string(), "the held answer shows its query: {}", held.done);
    assert!(held.done["results"].is_null(), "nothing ran yet: {}", held.done);
    let message_id = held.done["message_id"].as_str().expect("a message id").to_string();

    let approved = admin.post(&b, &format!("/api/v1/chat/execute/{message_id}"), &Value::Null).await.expect(200);
    assert_eq!(approved["status"], "executed", "{approved}");
    let row_count = approved["results"]["row_count"].as_u64().unwrap_or_else(|| panic!("no rows: {approved}"));
    assert!(row_count > 0, "{approved}");
    assert_eq!(approved["results"]["rows"].as_array().map(Vec::len), Some(row_count as usize), "{approved}");

    let twice = admin.post(&a, &format!("/api/v1/chat/execute/{message_id}"), &Value::Null).await;
    assert_eq!(twice.status, 400, "a second approval is refused: {}", twice.text);
    assert!(twice.json()["detail"].is_string(), "the API's error shape: {}", twice.text);
    let held_session = held.done["session_id"].as_str().expect("a session id");
    let history = admin.get(&a, &format!("/api/v1/chat/sessions/{held_session}/history")).await.expect(200);
    let statuses: Vec<&str> =
        history["items"].as_array().expect("items").iter().filter_map(|m| m["status"].as_str()).collect();
    assert!(statuses.contains(&"executed"), "the approved answer is recorded as executed: {history}");
}
