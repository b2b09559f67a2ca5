//! Zero-configuration start: `quarry serve` with no database and no LLM configured answers from
//! the demo shop it generates (`<data>/demo.db`) with the built-in `offline` model, through the
//! OpenAI-compatible route and the product API, tells the user on the console where to go and
//! what to ask, and keeps users, connections, sessions and the answer cache across a restart on
//! the same data folder.

use std::path::Path;

use quarry_e2e::product::{ADMIN_PASSWORD, ChatAnswer, User, login, login_reply, register};
use quarry_e2e::{JsonBody, Server, ServerBuilder};
use serde_json::{Value, json};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection};

/// The first suggested question, which the offline model answers from the demo shop.
const QUESTION: &str = "How many customers are in Germany?";
/// The first admin.
const EMAIL: &str = "admin@example.com";

/// A server with the zero-config defaults on and nothing configured, on `data` when given.
async fn zero_config_server(data: Option<&Path>) -> Server {
    let mut builder = ServerBuilder::new().without("QUARRY_ZERO_CONFIG");
    if let Some(dir) = data {
        builder = builder.data_dir(dir);
    }
    builder.start().await
}

/// The true answer, read straight from the demo database the server generated.
async fn germany_count(data: &Path) -> i64 {
    let path = data.join("demo.db");
    assert!(path.is_file(), "the server did not create {}", path.display());
    let mut db = SqliteConnectOptions::new().filename(&path).read_only(true).connect().await.expect("open demo.db");
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM customers WHERE country = 'Germany'")
        .fetch_one(&mut db)
        .await
        .expect("count German customers");
    db.close().await.expect("close demo.db");
    assert!(n > 0, "the demo shop has German customers (else the check proves little)");
    n
}

/// The single number of a one-cell result (`rows` = `[[n]]`).
fn single_number(results: &Value) -> i64 {
    assert_eq!(results["row_count"], 1, "one row expected: {results}");
    let cell = &results["rows"][0][0];
    cell.as_i64()
        .or_else(|| cell.as_str().and_then(|s| s.parse().ok()))
        .unwrap_or_else(|| panic!("not a number: {results}"))
}

/// The one connection the list shows, which must be the demo shop; its id.
async fn only_demo_connection(server: &Server, user: &User) -> String {
    let list = user.get(server, "/api/v1/connections").await.expect(200);
    assert_eq!(list["total"], 1, "exactly one connection: {list}");
    let demo = &list["items"][0];
    assert_eq!(demo["name"], "Demo shop", "{list}");
    assert_eq!(demo["source_type"], "sqlite", "{list}");
    demo["id"].as_str().expect("a connection id").to_string()
}

fn assert_executed(answer: &ChatAnswer, status: &str, expected: i64) {
    let done = &answer.done;
    assert_eq!(done["status"], status, "frames {:?}; done {done}", answer.types());
    let sql = done["query"].as_str().unwrap_or_else(|| panic!("no query in {done}"));
    assert!(sql.to_ascii_lowercase().contains("customers"), "{sql}");
    assert_eq!(single_number(&done["results"]), expected, "{done}");
    assert_eq!(done["cache_hit"], status == "cached", "{done}");
    assert!(done["session_id"].is_string() && done["message_id"].is_string(), "{done}");
}

#[tokio::test]
async fn openai_route_answers_from_the_demo_shop_and_the_banner_says_what_to_try() {
    let server = zero_config_server(None).await;
    let expected = germany_count(server.data_dir()).await;

    // (d) The console tells where to go and what to try.
    let banner = server.stderr();
    assert!(banner.contains(server.base_url()), "the banner names {}:\n{banner}", server.base_url());
    assert!(banner.contains(QUESTION), "the banner suggests a question:\n{banner}");
    assert!(banner.contains("demo.db") && banner.contains("offline"), "the banner names the defaults:\n{banner}");
    assert!(banner.contains("/api/v1/auth/register"), "the banner says how to start with the API:\n{banner}");

    // (a) The OpenAI-compatible route answers with no key, no database and no model configured.
    let body = json!({ "model": "quarry", "stream": false, "messages": [{ "role": "user", "content": QUESTION }] });
    let reply = server.send(server.http().post(server.url("/v1/chat/completions")).json_body(&body)).await;
    let completion = reply.expect(200);
    let content = completion["choices"][0]["message"]["content"].as_str().unwrap_or_else(|| panic!("{completion}"));
    assert!(content.contains("```sql"), "the answer shows its SQL:\n{content}");
    assert!(content.contains("customers") && content.contains("Germany"), "the SQL reads the customers:\n{content}");
    assert!(content.contains(&format!("| {expected} |")), "the table shows {expected}:\n{content}");
    assert_eq!(completion["choices"][0]["finish_reason"], "stop", "{completion}");
}

#[tokio::test]
async fn product_api_answers_from_the_demo_shop_and_keeps_everything_across_a_restart() {
    let data = tempfile::Builder::new().prefix("quarry-e2e-restart-").tempdir().expect("a data folder");

    // (b) First start: the first admin registers, sees the demo connection and gets an answer.
    let first = zero_config_server(Some(data.path())).await;
    let expected = germany_count(data.path()).await;
    let setup = first.get("/api/v1/auth/setup-status").await.expect(200);
    assert_eq!(setup["needs_setup"], true, "{setup}");
    let admin = register(&first, EMAIL, ADMIN_PASSWORD).await;
    let demo_id = only_demo_connection(&first, &admin).await;
    let answer = admin.ask(&first, &demo_id, QUESTION, None).await;
    assert_executed(&answer, "executed", expected);
    let types = answer.types();
    let at = |t: &str| types.iter().position(|x| x == t).unwrap_or_else(|| panic!("no {t} frame in {types:?}"));
    assert!(at("status") < at("sql") && at("sql") < at("row_batch"), "frame order {types:?}");
    let session_id = answer.done["session_id"].as_str().expect("a session").to_string();
    drop(first);

    // (c) Restart on the same folder: the same records, no second demo connection.
    let second = zero_config_server(Some(data.path())).await;
    assert_eq!(germany_count(data.path()).await, expected, "the demo database was kept, not regenerated");
    assert_eq!(login_reply(&second, EMAIL, "Wrong-Password-99!").await.status, 401, "a wrong password still fails");
    let admin = login(&second, EMAIL, ADMIN_PASSWORD).await;
    let setup = second.get("/api/v1/auth/setup-status").await.expect(200);
    assert_eq!(setup["needs_setup"], false, "{setup}");
    assert_eq!(only_demo_connection(&second, &admin).await, demo_id, "the same demo connection");
    let sessions = admin.get(&second, "/api/v1/chat/sessions").await.expect(200);
    let ids: Vec<&str> = sessions["items"].as_array().expect("items").iter().filter_map(|s| s["id"].as_str()).collect();
    assert_eq!(ids, [session_id.as_str()], "the earlier session is listed: {sessions}");
    let history = admin.get(&second, &format!("/api/v1/chat/sessions/{session_id}/history")).await.expect(200);
    assert_eq!(history["total"], 2, "question and answer: {history}");
    assert_eq!(history["items"][0]["content"], QUESTION, "{history}");

    let again = admin.ask(&second, &demo_id, QUESTION, None).await;
    assert_executed(&again, "cached", expected);
}
