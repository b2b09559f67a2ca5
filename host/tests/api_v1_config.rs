//! The product API's configuration routes over real HTTP: a connection's semantic model (ETag,
//! partial merge, delete), LLM provider configs (placeholders, keys never shown nor stored in
//! the clear, live test and model listing against a local fake OpenAI-compatible server) and
//! the live settings (round trip, validation, roles).
//!
//! Each case runs on a server over a SQLite store, and again over PostgreSQL when
//! `QUARRY_TEST_POSTGRES_URL` is set (in a fresh schema, dropped afterwards).

mod support;

use std::future::Future;
use std::panic::AssertUnwindSafe;

use futures::FutureExt;
use quarry::store::Store;
use reqwest::Method;
use reqwest::header::{ETAG, IF_NONE_MATCH};
use serde_json::{Value, json};
use sqlx::{Connection, Executor};
use support::product::ProductServer;
use support::{FakeServer, Reply};

/// An API key that must never come back.
const SECRET_KEY: &str = "sk-test-NEVER-SHOW-7f3a9c";

const PG_VAR: &str = "QUARRY_TEST_POSTGRES_URL";

/// Run `case` on a server over SQLite, then over PostgreSQL if configured (its schema dropped
/// afterwards, even when the case fails).
async fn on_each_backend<F, Fut>(case: F)
where
    F: Fn(ProductServer) -> Fut,
    Fut: Future<Output = ()>,
{
    case(ProductServer::start().await).await;
    let Ok(admin_url) = std::env::var(PG_VAR) else {
        eprintln!("skipped: {PG_VAR} not set (the PostgreSQL half of this test)");
        return;
    };
    let schema = format!("quarry_cfg_{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let mut admin = sqlx::PgConnection::connect(&admin_url).await.expect("connect to the test PostgreSQL");
    admin.execute(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}"))).await.expect("create schema");
    let mut url = url::Url::parse(&admin_url).expect("test URL parses");
    url.query_pairs_mut().append_pair("options", &format!("-c search_path={schema}"));
    let store = Store::open(url.as_str()).await.expect("open the PostgreSQL store");
    let server = ProductServer::start_on(store.clone(), tempfile::tempdir().unwrap()).await;
    let outcome = AssertUnwindSafe(case(server)).catch_unwind().await;
    store.close().await;
    admin.execute(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE"))).await.expect("drop schema");
    if let Err(panic) = outcome {
        eprintln!("failed on the postgres backend");
        std::panic::resume_unwind(panic);
    }
}

/// A SQLite connection to a small database file in `dir` (outside the data folder); its id.
async fn connection(server: &ProductServer, admin: &str, dir: &tempfile::TempDir) -> String {
    let path = dir.path().join("user-data.db");
    let options = sqlx::sqlite::SqliteConnectOptions::new().filename(&path).create_if_missing(true);
    let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
    sqlx::query("CREATE TABLE IF NOT EXISTS orders (id INTEGER PRIMARY KEY, status TEXT, total REAL)")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let body = json!({"name": "shop", "source_type": "sqlite", "config": {"path": path.to_str().unwrap()}});
    let (status, reply) = server.post("/api/v1/connections", admin, &body).await;
    assert_eq!(status, 201, "create connection: {reply}");
    reply["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn semantic_model_get_put_etag_merge_delete() {
    on_each_backend(semantic_case).await;
}

async fn semantic_case(server: ProductServer) {
    let admin = server.register_admin().await;
    let member = server.add_user(&admin, "member@example.com", "member").await;
    let user_data = tempfile::tempdir().unwrap();
    let id = connection(&server, &admin, &user_data).await;
    let path = format!("/api/v1/connections/{id}/semantic");

    let (status, _) = server.get(&path, &admin).await;
    assert_eq!(status, 404, "no model yet");
    let (status, _) = server.call(Method::GET, &path, None, None).await;
    assert_eq!(status, 401);
    let (status, _) = server.get("/api/v1/connections/00000000-0000-4000-8000-000000000000/semantic", &admin).await;
    assert_eq!(status, 404, "unknown connection");

    let model = json!({
        "tables": {"orders": {
            "display_name": "Orders",
            "default_filters": ["status <> 'X'"],
            "columns": {
                "status": {"display_name": "Status", "value_mappings": [{"raw_value": "A", "display_value": "Active"}],
                           "semantic_type": "no-such-type", "surprise": 1},
                "total": {"display_name": "Total", "semantic_type": "monetary"}
            }
        }},
        "notes": ["Amounts are in EUR"],
        "unknown_section": {"a": 1}
    });
    let (status, _) = server.put(&path, &member, &model).await;
    assert_eq!(status, 403, "members may not change it");
    let (status, saved) = server.put(&path, &admin, &model).await;
    assert_eq!(status, 200, "{saved}");
    assert_eq!(saved["tables"]["orders"]["columns"]["status"]["semantic_type"], "unknown");
    assert!(saved.get("unknown_section").is_none());
    assert!(saved["tables"]["orders"]["columns"]["status"].get("surprise").is_none());

    // Members read it, with an ETag; sending it back gives 304.
    let response = server.client.get(server.url(&path)).bearer_auth(&member).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let etag = response.headers().get(ETAG).expect("etag").to_str().unwrap().to_string();
    assert_eq!(etag.trim_matches('"').len(), 32);
    let body: Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
    assert_eq!(body, saved);
    let response =
        server.client.get(server.url(&path)).bearer_auth(&member).header(IF_NONE_MATCH, &etag).send().await.unwrap();
    assert_eq!(response.status(), 304);

    // A partial update of one column keeps the other column, the table's fields and other sections.
    let (status, merged) = server
        .put(&path, &admin, &json!({"tables": {"orders": {"columns": {"status": {"description": "Order state"}}}}}))
        .await;
    assert_eq!(status, 200, "{merged}");
    let orders = &merged["tables"]["orders"];
    assert_eq!(orders["columns"]["status"]["description"], "Order state");
    assert_eq!(orders["columns"]["status"]["value_mappings"][0]["display_value"], "Active");
    assert_eq!(orders["columns"]["total"]["semantic_type"], "monetary");
    assert_eq!(orders["default_filters"], json!(["status <> 'X'"]));
    assert_eq!(merged["notes"], json!(["Amounts are in EUR"]));
    let response =
        server.client.get(server.url(&path)).bearer_auth(&member).header(IF_NONE_MATCH, &etag).send().await.unwrap();
    assert_eq!(response.status(), 200, "the old ETag no longer matches");

    // Bad bodies: 422 and nothing changes.
    for bad in [json!({"notes": "not a list"}), json!({"tables": {"": {}}}), json!([1, 2])] {
        let (status, reply) = server.put(&path, &admin, &bad).await;
        assert_eq!(status, 422, "{bad} → {reply}");
    }
    let (_, now) = server.get(&path, &admin).await;
    assert_eq!(now, merged);

    let (status, _) = server.delete(&path, &member).await;
    assert_eq!(status, 403);
    let (status, _) = server.delete(&path, &admin).await;
    assert_eq!(status, 204);
    let (status, _) = server.get(&path, &admin).await;
    assert_eq!(status, 404);
    let (status, _) = server.delete(&path, &admin).await;
    assert_eq!(status, 404);
}

fn chat_completion(text: &str) -> Value {
    json!({"id": "c1", "object": "chat.completion", "created": 1, "model": "test-model",
           "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
           "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6}})
}

/// Every file of the SQLite store (main file, WAL, shared memory), concatenated.
fn store_bytes(server: &ProductServer) -> Vec<u8> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir(server.data_dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("quarry.db")) {
            all.extend(std::fs::read(&path).unwrap());
        }
    }
    all
}

#[tokio::test]
async fn provider_configs_keys_test_and_models() {
    on_each_backend(provider_case).await;
}

async fn provider_case(server: ProductServer) {
    let llm = FakeServer::start().await;
    let admin = server.register_admin().await;
    let member = server.add_user(&admin, "member@example.com", "member").await;
    let mut seen = Vec::new();

    // Before any config: one placeholder per type.
    let (status, list) = server.get("/api/v1/providers", &member).await;
    assert_eq!(status, 200, "{list}");
    let items = list["items"].as_array().unwrap();
    for ty in ["openai", "groq", "openrouter", "openai-compatible", "lmstudio", "vllm", "anthropic", "ollama"] {
        let entry = items.iter().find(|i| i["provider_type"] == ty).unwrap_or_else(|| panic!("{ty} missing: {list}"));
        assert_eq!(entry["id"], Value::Null);
        assert_eq!(entry["is_configured"], false);
    }
    assert_eq!(list["total"], items.len());
    // Embeddings: OpenAI's by default; none for a type without a default or whose plugin has none.
    let placeholder = |ty: &str| items.iter().find(|i| i["provider_type"] == ty).cloned().unwrap_or_default();
    let openai = placeholder("openai");
    assert_eq!(
        (openai["current_embedding_model"].clone(), openai["offers_embeddings"].clone()),
        (json!("text-embedding-3-small"), json!(true))
    );
    for ty in ["anthropic", "openai-compatible", "ollama"] {
        let entry = placeholder(ty);
        assert_eq!(
            (entry["current_embedding_model"].clone(), entry["offers_embeddings"].clone()),
            (Value::Null, json!(false)),
            "{ty}"
        );
    }

    // Create: members may not; bad values are 422; the key is never shown.
    let body = json!({"api_key": SECRET_KEY, "base_url": llm.url("/v1"), "model": "test-model", "is_active": true,
                      "display_name": "Local", "temperature": 0.2, "max_tokens": 512, "embedding_model": "emb-model"});
    let (status, _) = server.post("/api/v1/providers/openai-compatible", &member, &body).await;
    assert_eq!(status, 403);
    for (field, value) in
        [("temperature", json!(2.5)), ("max_tokens", json!(0)), ("embedding_model", json!("emb\u{7}"))]
    {
        let mut bad = body.clone();
        bad[field] = value;
        let (status, reply) = server.post("/api/v1/providers/openai-compatible", &admin, &bad).await;
        assert_eq!(status, 422, "{reply}");
        assert!(reply.to_string().contains(field), "{reply}");
        seen.push(reply);
    }
    let (status, reply) = server.post("/api/v1/providers/no-such-type", &admin, &body).await;
    assert_eq!(status, 400, "{reply}");
    let (status, created) = server.post("/api/v1/providers/openai-compatible", &admin, &body).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["has_api_key"], true);
    assert_eq!(created["is_active"], true);
    assert_eq!(created["current_model"], "test-model");
    assert_eq!(created["embedding_model"], "emb-model");
    assert_eq!(created["current_embedding_model"], "emb-model");
    assert_eq!(created["offers_embeddings"], true);
    let id = created["id"].as_str().unwrap().to_string();
    seen.push(created.clone());

    let (status, list) = server.get("/api/v1/providers", &member).await;
    assert_eq!(status, 200);
    let compatible: Vec<&Value> =
        list["items"].as_array().unwrap().iter().filter(|i| i["provider_type"] == "openai-compatible").collect();
    assert_eq!(compatible.len(), 1, "the saved config replaces the placeholder: {list}");
    assert_eq!(compatible[0]["id"], id.as_str());
    seen.push(list.clone());
    let (status, page) = server.get("/api/v1/providers?limit=2&offset=1", &member).await;
    assert_eq!(status, 200);
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    assert_eq!(page["items"][0], list["items"][1]);
    let (status, one) = server.get(&format!("/api/v1/providers/{id}"), &member).await;
    assert_eq!(status, 200);
    seen.push(one);

    // Test and list models with the saved credentials.
    llm.reply("/v1/chat/completions", Reply::json(200, chat_completion("OK")));
    llm.reply("/v1/embeddings", Reply::json(200, json!({"data": [{"index": 0, "embedding": [0.5, 0.25, 1.0]}]})));
    let (status, outcome) = server.post(&format!("/api/v1/providers/{id}/test"), &admin, &json!({})).await;
    assert_eq!(status, 200);
    assert_eq!(outcome["success"], true, "{outcome}");
    assert!(outcome["message"].as_str().unwrap().contains("embeddings from emb-model (3 dimensions)"), "{outcome}");
    seen.push(outcome);
    let sent = llm.requests().into_iter().find(|r| r.path == "/v1/chat/completions").unwrap();
    assert_eq!(sent.header("authorization"), Some(format!("Bearer {SECRET_KEY}").as_str()), "the key was opened");
    assert_eq!(sent.json()["model"], "test-model");
    let embedded = llm.requests().into_iter().find(|r| r.path == "/v1/embeddings").unwrap();
    assert_eq!(embedded.json()["model"], "emb-model");
    // A failed embedding is reported, but the completion check decides success.
    llm.reply("/v1/chat/completions", Reply::json(200, chat_completion("OK")));
    llm.reply(
        "/v1/embeddings",
        Reply::json(
            404,
            json!({"error": {"message": "The model `emb-model` does not exist", "code": "model_not_found"}}),
        ),
    );
    let (_, outcome) = server.post(&format!("/api/v1/providers/{id}/test"), &admin, &json!({})).await;
    assert_eq!(outcome["success"], true, "{outcome}");
    assert!(outcome["message"].as_str().unwrap().contains("embeddings failed: model not found"), "{outcome}");

    llm.reply("/v1/models", Reply::json(200, json!({"data": [{"id": "zeta"}, {"id": "alpha"}, {"id": "mid"}]})));
    let (status, models) = server.post(&format!("/api/v1/providers/{id}/models"), &admin, &json!({})).await;
    assert_eq!((status, models.clone()), (200, json!(["alpha", "mid", "zeta"])));
    let (_, one) = server.get(&format!("/api/v1/providers/{id}"), &member).await;
    assert_eq!(one["available_models"], json!(["alpha", "mid", "zeta"]), "remembered");

    // Unsaved credentials.
    llm.reply("/v1/models", Reply::json(200, json!({"data": [{"id": "b"}, {"id": "a"}]})));
    let unsaved = json!({"provider_type": "openai-compatible", "api_key": SECRET_KEY, "base_url": llm.url("/v1")});
    let (status, models) = server.post("/api/v1/providers/models", &admin, &unsaved).await;
    assert_eq!((status, models), (200, json!(["a", "b"])));
    let (status, _) = server.post("/api/v1/providers/models", &member, &unsaved).await;
    assert_eq!(status, 403);
    let (status, reply) = server
        .post("/api/v1/providers/models", &admin, &json!({"provider_type": "nonsense", "base_url": llm.url("/v1")}))
        .await;
    assert_eq!(status, 400, "{reply}");

    // A failing provider: 200 with success false, and the key nowhere in the message.
    llm.reply(
        "/v1/chat/completions",
        Reply::json(401, json!({"error": {"message": format!("Incorrect API key provided: {SECRET_KEY}")}})),
    );
    let failing =
        json!({"provider_type": "openai-compatible", "api_key": SECRET_KEY, "base_url": llm.url("/v1"), "model": "m"});
    let (status, outcome) = server.post("/api/v1/providers/test", &admin, &failing).await;
    assert_eq!(status, 200);
    assert_eq!(outcome["success"], false, "{outcome}");
    assert!(!outcome["message"].as_str().unwrap().is_empty());
    seen.push(outcome);
    llm.reply("/v1/models", Reply::json(401, json!({"error": {"message": "bad key"}})));
    let (status, reply) = server.post("/api/v1/providers/models", &admin, &unsaved).await;
    assert_eq!(status, 502, "{reply}");
    seen.push(reply);
    let dead = json!({"provider_type": "openai-compatible", "base_url": "http://127.0.0.1:9/v1", "model": "m"});
    let (status, outcome) = server.post("/api/v1/providers/test", &admin, &dead).await;
    assert_eq!((status, outcome["success"].clone()), (200, json!(false)), "{outcome}");

    // Partial update: a new model keeps the key; an empty key removes it.
    let (status, updated) =
        server.put(&format!("/api/v1/providers/{id}/config"), &admin, &json!({"model": "other-model"})).await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!((updated["current_model"].clone(), updated["has_api_key"].clone()), (json!("other-model"), json!(true)));
    assert_eq!(updated["temperature"], 0.2);
    let (status, _) = server.put(&format!("/api/v1/providers/{id}/config"), &admin, &json!({"temperature": -1})).await;
    assert_eq!(status, 422);
    let (status, _) = server.put(&format!("/api/v1/providers/{id}/config"), &member, &json!({"model": "x"})).await;
    assert_eq!(status, 403);
    assert_eq!(updated["embedding_model"], "emb-model", "left alone");
    seen.push(updated);

    // The embedding model: turned off, then back to the type's default (none for this type).
    let (status, off) =
        server.put(&format!("/api/v1/providers/{id}/config"), &admin, &json!({"embedding_model": "off"})).await;
    assert_eq!(status, 200, "{off}");
    assert_eq!(
        (off["embedding_model"].clone(), off["current_embedding_model"].clone(), off["offers_embeddings"].clone()),
        (json!("off"), Value::Null, json!(false))
    );
    let (status, reset) =
        server.put(&format!("/api/v1/providers/{id}/config"), &admin, &json!({"embedding_model": null})).await;
    assert_eq!(status, 200, "{reset}");
    assert_eq!((reset["embedding_model"].clone(), reset["offers_embeddings"].clone()), (Value::Null, json!(false)));
    let (_, one) = server.get(&format!("/api/v1/providers/{id}"), &member).await;
    assert_eq!(one["embedding_model"], Value::Null, "stored");

    for reply in &seen {
        assert!(!reply.to_string().contains(SECRET_KEY), "the key leaked: {reply}");
    }
    if server.store.backend() == "sqlite" {
        let bytes = store_bytes(&server);
        assert!(!bytes.is_empty());
        assert!(!bytes.windows(SECRET_KEY.len()).any(|w| w == SECRET_KEY.as_bytes()), "the key is stored in the clear");
    }

    let (status, cleared) =
        server.put(&format!("/api/v1/providers/{id}/config"), &admin, &json!({"api_key": ""})).await;
    assert_eq!((status, cleared["has_api_key"].clone()), (200, json!(false)));

    let (status, _) = server.delete(&format!("/api/v1/providers/{id}"), &member).await;
    assert_eq!(status, 403);
    let (status, _) = server.delete(&format!("/api/v1/providers/{id}"), &admin).await;
    assert_eq!(status, 204);
    let (status, _) = server.get(&format!("/api/v1/providers/{id}"), &admin).await;
    assert_eq!(status, 404);
    let (status, _) = server.delete(&format!("/api/v1/providers/{id}"), &admin).await;
    assert_eq!(status, 404);
    let (status, _) = server.call(Method::GET, "/api/v1/providers", None, None).await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn settings_round_trip_validation_and_roles() {
    on_each_backend(settings_case).await;
}

async fn settings_case(server: ProductServer) {
    let admin = server.register_admin().await;
    let member = server.add_user(&admin, "member@example.com", "member").await;

    let (status, _) = server.call(Method::GET, "/api/v1/settings", None, None).await;
    assert_eq!(status, 401);
    let (status, defaults) = server.get("/api/v1/settings", &member).await;
    assert_eq!(status, 200, "{defaults}");
    assert_eq!(defaults["default_row_limit"], 1000);
    assert_eq!(defaults["max_row_limit"], 10000);
    assert_eq!(defaults["default_query_timeout"], 30);
    assert_eq!(defaults["cache_enabled"], true);
    assert_eq!(defaults["cache_ttl_secs"], 2_592_000);
    assert_eq!(defaults["semantic_similarity_threshold"], 0.87);
    assert_eq!(defaults["cache_max_entries_per_connection"], 500);
    assert_eq!(defaults["schema_token_budget"], 6000);
    assert_eq!(defaults["log_level"], "info");

    let (status, _) = server.put("/api/v1/settings", &member, &json!({"default_row_limit": 5})).await;
    assert_eq!(status, 403);

    let change = json!({"default_row_limit": 200, "cache_enabled": false, "semantic_similarity_threshold": 0.9,
                        "log_level": "info,quarry=debug"});
    let (status, changed) = server.put("/api/v1/settings", &admin, &change).await;
    assert_eq!(status, 200, "{changed}");
    let (_, read) = server.get("/api/v1/settings", &member).await;
    assert_eq!(read, changed);
    assert_eq!((read["default_row_limit"].clone(), read["cache_enabled"].clone()), (json!(200), json!(false)));
    assert_eq!(read["log_level"], "info,quarry=debug");
    assert_eq!(read["max_row_limit"], 10000, "untouched settings keep their value");

    for (bad, field) in [
        (json!({"default_row_limit": 0}), "default_row_limit"),
        (json!({"semantic_similarity_threshold": 1.2}), "semantic_similarity_threshold"),
        (json!({"cache_enabled": "no"}), "cache_enabled"),
        (json!({"log_level": "shout"}), "log_level"),
        (json!({"no_such_setting": 1}), "no_such_setting"),
        (json!({"max_row_limit": 100}), "max_row_limit"),
        (json!({"cache_ttl_secs": 3600, "default_query_timeout": -5}), "default_query_timeout"),
    ] {
        let (status, reply) = server.put("/api/v1/settings", &admin, &bad).await;
        assert_eq!(status, 422, "{bad} → {reply}");
        assert!(reply["detail"].as_array().unwrap().iter().any(|e| e["loc"] == json!(["body", field])), "{reply}");
    }
    let (status, _) = server.put("/api/v1/settings", &admin, &json!([1])).await;
    assert_eq!(status, 422);
    let (_, after) = server.get("/api/v1/settings", &admin).await;
    assert_eq!(after, changed, "nothing was saved by a refused change");
}
