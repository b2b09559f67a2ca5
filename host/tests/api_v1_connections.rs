//! `/api/v1/datasources` and `/api/v1/connections` over real HTTP: CRUD and who may do what,
//! connection tests against real SQLite, PostgreSQL and MariaDB, schema refresh with ETag/304,
//! privacy and execution mode, masked configs, a password that never appears in a response or
//! in the metadata database file, bad bodies that change nothing, and key rotation. The store's
//! connection queries also run on a PostgreSQL metadata store when `QUARRY_TEST_POSTGRES_URL` is
//! set; the PostgreSQL and MariaDB connection tests need `QUARRY_TEST_POSTGRES_URL` /
//! `QUARRY_TEST_MYSQL_URL` (otherwise they say "skipped").

mod support;

use std::path::{Path, PathBuf};

use quarry::connections::{self, REDACTED_SENTINEL};
use quarry::secrets::rotate::rotate_key;
use quarry::secrets::{Cipher, SecretsError};
use quarry::store::Store;
use quarry::store::connections::NewConnection;
use quarry::store::providers::NewProvider;
use reqwest::Method;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use sqlx::{Connection, Executor};
use support::product::ProductServer;

const PG_VAR: &str = "QUARRY_TEST_POSTGRES_URL";
const MYSQL_VAR: &str = "QUARRY_TEST_MYSQL_URL";
const PASSWORD: &str = "Sup3r-Secret-Pa55word!";

/// A SQLite database with customers (with an email), orders and a secrets table.
async fn sqlite_fixture(dir: &Path) -> PathBuf {
    let path = dir.join("shop.db");
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite:{}?mode=rwc", path.display())).await.unwrap();
    for sql in [
        "CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT, region TEXT)",
        "CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER REFERENCES customers(id), total REAL)",
        "CREATE TABLE secrets (id INTEGER PRIMARY KEY, value TEXT)",
        "INSERT INTO customers VALUES (1, 'Ann', 'ann@example.com', 'EU'), (2, 'Bob', 'bob@example.com', 'US')",
        "INSERT INTO orders VALUES (1, 1, 10.5), (2, 2, 20.0)",
    ] {
        conn.execute(sql).await.unwrap();
    }
    conn.close().await.unwrap();
    path
}

/// A started server with an admin and a member.
async fn setup() -> (ProductServer, String, String) {
    let server = ProductServer::start().await;
    let admin = server.register_admin().await;
    let member = server.add_user(&admin, "member@example.com", "member").await;
    (server, admin, member)
}

async fn create(server: &ProductServer, token: &str, body: &Value) -> (u16, Value) {
    server.post("/api/v1/connections", token, body).await
}

async fn total(server: &ProductServer, token: &str) -> i64 {
    let (status, body) = server.get("/api/v1/connections", token).await;
    assert_eq!(status, 200, "{body}");
    body["total"].as_i64().unwrap()
}

fn pg_body(name: &str) -> Value {
    json!({"name": name, "source_type": "postgresql",
           "config": {"host": "db.internal", "port": 5432, "database": "shop", "username": "reader",
                      "password": PASSWORD}})
}

#[tokio::test]
async fn crud_permissions_and_bad_input() {
    let (server, admin, member) = setup().await;
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite_fixture(dir.path()).await;

    // 401 without a token.
    for path in ["/api/v1/connections", "/api/v1/datasources"] {
        let (status, body) = server.call(Method::GET, path, None, None).await;
        assert_eq!(status, 401, "{path}: {body}");
    }
    let (status, types) = server.get("/api/v1/datasources", &member).await;
    assert_eq!(status, 200);
    let kinds: Vec<&str> = types.as_array().unwrap().iter().map(|t| t["source_type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["postgresql", "mysql", "sqlite"]);
    assert!(types[0]["config_schema"]["fields"].as_array().unwrap().iter().any(|f| f["name"] == "ssl_mode"));

    let (status, first) =
        create(&server, &admin, &json!({"name": "shop", "source_type": "sqlite", "config": {"path": db}})).await;
    assert_eq!(status, 201, "{first}");
    for key in ["id", "name", "source_type", "execution_mode", "is_active", "created_at", "updated_at"] {
        assert!(first.get(key).is_some(), "{key} missing: {first}");
    }
    assert_eq!(first["execution_mode"], "auto_execute");
    assert_eq!(first["schema_refreshed_at"], Value::Null);
    let (status, second) = create(&server, &admin, &pg_body("warehouse")).await;
    assert_eq!(status, 201, "{second}");
    let id = first["id"].as_str().unwrap();

    // Duplicate names and bad bodies change nothing.
    let (status, body) = create(&server, &admin, &pg_body("shop")).await;
    assert_eq!((status, body["detail"].as_str().is_some()), (409, true), "{body}");
    let bad_bodies = [
        json!({"name": "x", "source_type": "oracle", "config": {}}),
        json!({"source_type": "sqlite", "config": {"path": "/x.db"}}),
        json!({"name": "", "source_type": "sqlite", "config": {"path": "/x.db"}}),
        json!({"name": "x", "source_type": "sqlite", "config": {"path": "/x.db"}, "execution_mode": "sometimes"}),
        json!({"name": "x", "source_type": "sqlite", "config": {"path": "/x.db", "colour": "red"}}),
        json!({"name": "x", "source_type": "postgresql", "config": {"host": "h", "port": 99999, "database": "d",
                                                                    "username": "u", "password": PASSWORD}}),
        json!({"name": "x", "source_type": "sqlite", "config": {"path": "/x.db"},
               "privacy_settings": {"row_filter_sql": "1; DROP TABLE customers"}}),
        json!({"name": "x", "source_type": "sqlite", "config": {"path": "/x.db"},
               "privacy_settings": {"excluded_table": ["typo"]}}),
        json!({"name": "x", "source_type": "sqlite", "config": "sqlite:/x.db"}),
        json!({"name": "x", "source_type": "sqlite", "config": {"path": server.data_dir.path().join("quarry.db")}}),
    ];
    for body in &bad_bodies {
        let (status, reply) = create(&server, &admin, body).await;
        assert_eq!(status, 422, "{body} → {reply}");
        assert!(reply["detail"].is_array(), "{reply}");
        assert!(!reply.to_string().contains(PASSWORD), "{reply}");
    }
    let (status, _) = server.call(Method::POST, "/api/v1/connections", Some(&admin), None).await;
    assert_eq!(status, 422);
    assert_eq!(total(&server, &admin).await, 2);

    // Members read; only admins change or see configs.
    assert_eq!(total(&server, &member).await, 2);
    let (status, detail) = server.get(&format!("/api/v1/connections/{id}"), &member).await;
    assert_eq!(status, 200);
    assert!(detail["privacy_settings"]["sensitive_column_patterns"].as_array().unwrap().iter().any(|p| p == "email"));
    assert_eq!(create(&server, &member, &pg_body("mine")).await.0, 403);
    assert_eq!(server.delete(&format!("/api/v1/connections/{id}"), &member).await.0, 403);
    assert_eq!(server.get(&format!("/api/v1/connections/{id}/config"), &member).await.0, 403);
    let (status, _) = server.put(&format!("/api/v1/connections/{id}/config"), &member, &json!({"name": "z"})).await;
    assert_eq!(status, 403);
    let (status, _) = server.put(&format!("/api/v1/connections/{id}/privacy"), &member, &json!({})).await;
    assert_eq!(status, 403);
    assert_eq!(server.post("/api/v1/connections/test", &member, &json!({})).await.0, 403);
    assert_eq!(total(&server, &admin).await, 2);

    // Newest first, paginated.
    let (_, page) = server.get("/api/v1/connections?limit=1", &admin).await;
    assert_eq!((page["total"].as_i64(), page["limit"].as_i64()), (Some(2), Some(1)));
    assert_eq!(page["items"][0]["name"], "warehouse");
    let (_, page) = server.get("/api/v1/connections?limit=1&offset=1", &admin).await;
    assert_eq!(page["items"][0]["name"], "shop");
    assert_eq!(server.get("/api/v1/connections?limit=0", &admin).await.0, 422);

    // Unknown ids.
    for unknown in ["00000000-0000-4000-8000-000000000000", "not-a-uuid"] {
        for (method, suffix) in [
            (Method::GET, ""),
            (Method::DELETE, ""),
            (Method::GET, "/config"),
            (Method::GET, "/schema"),
            (Method::POST, "/test"),
            (Method::POST, "/schema/refresh"),
        ] {
            let (status, body) = server
                .call(method.clone(), &format!("/api/v1/connections/{unknown}{suffix}"), Some(&admin), None)
                .await;
            assert_eq!((status, body["detail"].as_str()), (404, Some("Connection not found")), "{method} {suffix}");
        }
        let path = format!("/api/v1/connections/{unknown}/execution-mode");
        assert_eq!(server.put(&path, &admin, &json!({"execution_mode": "review_first"})).await.0, 404);
    }

    // Rename, duplicate rename, delete, name reusable.
    let (status, renamed) =
        server.put(&format!("/api/v1/connections/{id}/config"), &admin, &json!({"name": "shop-eu"})).await;
    assert_eq!((status, renamed["name"].as_str()), (200, Some("shop-eu")), "{renamed}");
    let (status, _) =
        server.put(&format!("/api/v1/connections/{id}/config"), &admin, &json!({"name": "warehouse"})).await;
    assert_eq!(status, 409);
    let (status, body) = server.delete(&format!("/api/v1/connections/{id}"), &admin).await;
    assert_eq!((status, body), (204, Value::Null));
    assert_eq!(server.get(&format!("/api/v1/connections/{id}"), &admin).await.0, 404);
    assert_eq!(total(&server, &admin).await, 1);
    let (status, _) =
        create(&server, &admin, &json!({"name": "shop-eu", "source_type": "sqlite", "config": {"path": db}})).await;
    assert_eq!(status, 201);
}

#[tokio::test]
async fn passwords_never_leave_the_server() {
    let (server, admin, member) = setup().await;
    let mut replies: Vec<Value> = Vec::new();
    let (status, created) = create(&server, &admin, &pg_body("warehouse")).await;
    assert_eq!(status, 201);
    let id = created["id"].as_str().unwrap().to_string();
    replies.push(created);
    let url_body = json!({"name": "by-url", "source_type": "postgresql",
                          "config": {"url": format!("postgres://reader:{PASSWORD}@db.internal:5432/shop")}});
    let (status, by_url) = create(&server, &admin, &url_body).await;
    assert_eq!(status, 201);
    let url_id = by_url["id"].as_str().unwrap().to_string();
    replies.push(by_url);

    // The edit form sees the sentinel, also inside a URL.
    let (status, config) = server.get(&format!("/api/v1/connections/{id}/config"), &admin).await;
    assert_eq!(status, 200);
    assert_eq!(config["config"]["password"], REDACTED_SENTINEL);
    assert_eq!(config["config"]["host"], "db.internal");
    assert_eq!(config["source_type"], "postgresql");
    replies.push(config.clone());
    let (_, url_config) = server.get(&format!("/api/v1/connections/{url_id}/config"), &admin).await;
    assert!(url_config["config"]["url"].as_str().unwrap().contains(REDACTED_SENTINEL), "{url_config}");
    replies.push(url_config.clone());

    // Sending the form back keeps the stored password; a new host is taken.
    let mut form = config["config"].clone();
    form["host"] = json!("db2.internal");
    let (status, updated) =
        server.put(&format!("/api/v1/connections/{id}/config"), &admin, &json!({"config": form})).await;
    assert_eq!(status, 200, "{updated}");
    replies.push(updated);
    let (status, _) = server
        .put(&format!("/api/v1/connections/{url_id}/config"), &admin, &json!({"config": url_config["config"]}))
        .await;
    assert_eq!(status, 200);
    let cipher = Cipher::from_env(server.data_dir.path()).unwrap();
    for (conn, host) in [(&id, "db2.internal"), (&url_id, "db.internal")] {
        let record = server.store.connection(conn).await.unwrap().unwrap();
        let resolved = connections::resolve(&record, &cipher).unwrap();
        assert!(resolved.url.expose().contains(host), "{}", resolved.url);
        assert_eq!(connections::open_config(&record, &cipher).unwrap().secrets()[0], PASSWORD);
    }
    // A sentinel with nothing stored behind it is refused, and changes nothing.
    let (status, reply) = server
        .put(&format!("/api/v1/connections/{id}/config"), &admin, &json!({"config": {"token": REDACTED_SENTINEL}}))
        .await;
    assert_eq!(status, 422, "{reply}");
    replies.push(reply);

    // Failed tests do not repeat the password (a refused port, and a real server when there is one).
    let body = json!({"source_type": "postgresql",
                      "config": {"host": "127.0.0.1", "port": 1, "database": "d", "username": "nobody",
                                 "password": PASSWORD}});
    let (status, reply) = server.post("/api/v1/connections/test", &admin, &body).await;
    assert_eq!(status, 400, "{reply}");
    assert!(reply["detail"].as_str().unwrap().starts_with("Connection failed"), "{reply}");
    replies.push(reply);
    if let Ok(pg) = std::env::var(PG_VAR) {
        let u = url::Url::parse(&pg).unwrap();
        let body = json!({"source_type": "postgresql",
                          "config": {"url": format!("postgres://no_such_user_q:{PASSWORD}@{}:{}/{}",
                                     u.host_str().unwrap(), u.port().unwrap_or(5432), u.path().trim_start_matches('/'))}});
        let (status, reply) = server.post("/api/v1/connections/test", &admin, &body).await;
        assert_eq!(status, 400, "{reply}");
        replies.push(reply);
    }
    for path in ["/api/v1/connections".to_string(), format!("/api/v1/connections/{id}")] {
        for token in [&admin, &member] {
            replies.push(server.get(&path, token).await.1);
        }
    }
    for reply in &replies {
        let text = reply.to_string();
        assert!(!text.contains(PASSWORD) && !text.contains("Pa55word"), "password in a response: {text}");
    }

    // Not in the metadata database file (nor its WAL) either.
    server.store.close().await;
    let mut checked = 0;
    for entry in std::fs::read_dir(server.data_dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.file_name().unwrap().to_string_lossy().starts_with("quarry.db") {
            let bytes = std::fs::read(&path).unwrap();
            assert!(!bytes.windows(PASSWORD.len()).any(|w| w == PASSWORD.as_bytes()), "password in {}", path.display());
            checked += 1;
        }
    }
    assert!(checked >= 1);
}

#[tokio::test]
async fn test_route_on_sqlite() {
    let (server, admin, _member) = setup().await;
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite_fixture(dir.path()).await;
    let (status, reply) = server
        .post("/api/v1/connections/test", &admin, &json!({"source_type": "sqlite", "config": {"path": db}}))
        .await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["success"], true);
    assert!(reply["server_version"].as_str().unwrap().starts_with('3'), "{reply}");
    let missing = dir.path().join("missing.db");
    let (status, reply) = server
        .post("/api/v1/connections/test", &admin, &json!({"source_type": "sqlite", "config": {"path": missing}}))
        .await;
    assert_eq!(status, 400, "{reply}");
    assert!(!missing.exists(), "testing created the file");
    let (status, _) =
        server.post("/api/v1/connections/test", &admin, &json!({"source_type": "oracle", "config": {}})).await;
    assert_eq!(status, 400);
    // Unsaved tests write nothing.
    assert_eq!(total(&server, &admin).await, 0);

    let (_, created) =
        create(&server, &admin, &json!({"name": "shop", "source_type": "sqlite", "config": {"path": db}})).await;
    let (status, reply) =
        server.post(&format!("/api/v1/connections/{}/test", created["id"].as_str().unwrap()), &admin, &json!({})).await;
    assert_eq!((status, reply["success"].as_bool()), (200, Some(true)), "{reply}");
}

/// The config of a server URL as separate fields.
fn parts_of(url: &str) -> Value {
    let u = url::Url::parse(url).unwrap();
    json!({"host": u.host_str().unwrap(), "port": u.port(), "database": u.path().trim_start_matches('/'),
           "username": u.username(), "password": u.password().unwrap_or(""), "ssl_mode": "disable"})
}

async fn server_database_round(var: &str, source_type: &str) {
    let Ok(url) = std::env::var(var) else {
        eprintln!("skipped: {var} not set");
        return;
    };
    let (server, admin, member) = setup().await;
    for config in [json!({"url": url}), parts_of(&url)] {
        let body = json!({"source_type": source_type, "config": config});
        let (status, reply) = server.post("/api/v1/connections/test", &admin, &body).await;
        assert_eq!((status, reply["success"].as_bool()), (200, Some(true)), "{config} → {reply}");
        assert!(!reply["server_version"].as_str().unwrap_or("").is_empty());
    }
    let (status, created) = create(
        &server,
        &admin,
        &json!({"name": "real", "source_type": source_type, "config": parts_of(&url),
                "privacy_settings": {"include_sample_values": false}}),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap();
    let (status, reply) = server.post(&format!("/api/v1/connections/{id}/test"), &admin, &json!({})).await;
    assert_eq!(status, 200, "{reply}");
    let (status, schema) = server.post(&format!("/api/v1/connections/{id}/schema/refresh"), &admin, &json!({})).await;
    assert_eq!(status, 200, "{schema}");
    assert_eq!(schema["source_type"], source_type);
    assert!(schema["tables"].is_array());
    let (status, _) = server.get(&format!("/api/v1/connections/{id}/schema"), &member).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn test_route_and_refresh_on_postgres() {
    server_database_round(PG_VAR, "postgresql").await;
}

#[tokio::test]
async fn test_route_and_refresh_on_mariadb() {
    server_database_round(MYSQL_VAR, "mysql").await;
}

async fn raw_get(server: &ProductServer, path: &str, token: &str, etag: Option<&str>) -> reqwest::Response {
    let mut request = server.client.get(server.url(path)).bearer_auth(token);
    if let Some(etag) = etag {
        request = request.header("if-none-match", etag);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn schema_refresh_etag_and_privacy() {
    let (server, admin, member) = setup().await;
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite_fixture(dir.path()).await;
    let body = json!({"name": "shop", "source_type": "sqlite", "config": {"path": db},
                      "privacy_settings": {"excluded_tables": ["secrets"]}, "execution_mode": "review_first"});
    let (status, created) = create(&server, &admin, &body).await;
    assert_eq!((status, created["execution_mode"].as_str()), (201, Some("review_first")), "{created}");
    let id = created["id"].as_str().unwrap();
    let schema_path = format!("/api/v1/connections/{id}/schema");
    let refresh_path = format!("/api/v1/connections/{id}/schema/refresh");

    let (status, reply) = server.get(&schema_path, &member).await;
    assert_eq!((status, reply["detail"].as_str()), (404, Some("No schema cached — run a refresh first")));
    assert_eq!(server.post(&refresh_path, &member, &json!({})).await.0, 403);

    let (status, schema) = server.post(&refresh_path, &admin, &json!({})).await;
    assert_eq!(status, 200, "{schema}");
    let names: Vec<&str> = schema["tables"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["customers", "orders"]);
    let customers = &schema["tables"][0];
    let email = customers["columns"].as_array().unwrap().iter().find(|c| c["name"] == "email").unwrap();
    assert_eq!(
        (email["is_sensitive"].as_bool(), email["sample_values"].as_array().map(Vec::len)),
        (Some(true), Some(0))
    );
    let name = customers["columns"].as_array().unwrap().iter().find(|c| c["name"] == "name").unwrap();
    assert!(name["sample_values"].as_array().unwrap().contains(&json!("Ann")));
    assert_eq!(schema["relationships"][0]["to_table"], "customers");
    let (cached, _) = connections::cached_schema(&server.store, id).await.unwrap().unwrap();
    assert_eq!(cached.tables.len(), 2);
    assert!(cached.table(None, "customers").unwrap().column("email").unwrap().sensitive);

    // GET: the same body, an ETag over it, 304 on a match, for members too.
    let response = raw_get(&server, &schema_path, &member, None).await;
    assert_eq!(response.status(), 200);
    let etag = response.headers()["etag"].to_str().unwrap().to_string();
    assert_eq!(response.headers()["cache-control"], "private, max-age=300, must-revalidate");
    let bytes = response.bytes().await.unwrap();
    assert_eq!(etag.trim_matches('"'), &hex::encode(Sha256::digest(&bytes))[..32]);
    assert_eq!(serde_json::from_slice::<Value>(&bytes).unwrap(), schema);
    let response = raw_get(&server, &schema_path, &member, Some(&etag)).await;
    assert_eq!(response.status(), 304);
    assert!(response.bytes().await.unwrap().is_empty());
    assert_eq!(raw_get(&server, &schema_path, &member, Some("\"other\"")).await.status(), 200);
    let (_, detail) = server.get(&format!("/api/v1/connections/{id}"), &member).await;
    assert!(detail["schema_refreshed_at"].is_string(), "{detail}");

    // Privacy: a partial merge; bad input changes nothing; a change drops the cached schema.
    let privacy_path = format!("/api/v1/connections/{id}/privacy");
    for bad in [
        json!({"row_filter_sql": "1; DROP TABLE customers"}),
        json!({"row_filter_sql": "id IN (SELECT id FROM t) OR DELETE"}),
        json!({"row_filter_sql": "region = 'EU' region"}),
        json!({"excluded_table": ["typo"]}),
        json!({"excluded_tables": "customers"}),
        json!({"include_sample_values": "no"}),
        json!([1, 2]),
    ] {
        let (status, reply) = server.put(&privacy_path, &admin, &bad).await;
        assert_eq!(status, 422, "{bad} → {reply}");
    }
    assert_eq!(raw_get(&server, &schema_path, &member, None).await.status(), 200, "bad input dropped the schema");
    let (_, before) = server.get(&format!("/api/v1/connections/{id}"), &admin).await;
    assert_eq!(before["privacy_settings"]["excluded_tables"], json!(["secrets"]));
    assert_eq!(before["privacy_settings"]["row_filter_sql"], Value::Null);

    let update = json!({"excluded_columns": ["customers.region"], "row_filter_sql": "region = 'EU'"});
    let (status, detail) = server.put(&privacy_path, &admin, &update).await;
    assert_eq!(status, 200, "{detail}");
    assert_eq!(detail["privacy_settings"]["excluded_tables"], json!(["secrets"]), "merge lost a field");
    assert_eq!(detail["privacy_settings"]["row_filter_sql"], "region = 'EU'");
    assert_eq!(server.get(&schema_path, &member).await.0, 404);
    let (status, schema) = server.post(&refresh_path, &admin, &json!({})).await;
    assert_eq!(status, 200);
    let columns = schema["tables"][0]["columns"].as_array().unwrap();
    assert!(!columns.iter().any(|c| c["name"] == "region"), "excluded column still there");
    let new_etag = raw_get(&server, &schema_path, &member, None).await.headers()["etag"].to_str().unwrap().to_string();
    assert_ne!(new_etag, etag);

    // Execution mode.
    let mode_path = format!("/api/v1/connections/{id}/execution-mode");
    for bad in [json!({"execution_mode": "sometimes"}), json!({}), json!({"execution_mode": 1})] {
        assert_eq!(server.put(&mode_path, &admin, &bad).await.0, 422, "{bad}");
    }
    assert_eq!(server.put(&mode_path, &member, &json!({"execution_mode": "generate_only"})).await.0, 403);
    let (status, detail) = server.put(&mode_path, &admin, &json!({"execution_mode": "generate_only"})).await;
    assert_eq!((status, detail["execution_mode"].as_str()), (200, Some("generate_only")));
    assert!(detail["privacy_settings"].is_object());

    // What the chat gets.
    let record = server.store.connection(id).await.unwrap().unwrap();
    let resolved = connections::resolve(&record, &Cipher::from_env(server.data_dir.path()).unwrap()).unwrap();
    assert_eq!(resolved.execution_mode, connections::ExecutionMode::GenerateOnly);
    assert_eq!(resolved.row_filter_sql.as_deref(), Some("region = 'EU'"));
    assert!(resolved.privacy.excludes_column(None, "customers", "region"));

    // A connection whose database is gone: refresh fails with a 400 and keeps nothing.
    let gone = dir.path().join("gone.db");
    let (_, broken) =
        create(&server, &admin, &json!({"name": "gone", "source_type": "sqlite", "config": {"path": gone}})).await;
    let broken_id = broken["id"].as_str().unwrap();
    let (status, reply) =
        server.post(&format!("/api/v1/connections/{broken_id}/schema/refresh"), &admin, &json!({})).await;
    assert_eq!(status, 400, "{reply}");
    assert!(reply["detail"].as_str().unwrap().starts_with("Schema refresh failed: "), "{reply}");
    assert_eq!(server.get(&format!("/api/v1/connections/{broken_id}/schema"), &admin).await.0, 404);
}

#[tokio::test]
async fn key_rotation_reseals_everything() {
    let (server, admin, _member) = setup().await;
    let mut ids = Vec::new();
    for name in ["one", "two"] {
        let (status, created) = create(&server, &admin, &pg_body(name)).await;
        assert_eq!(status, 201);
        ids.push(created["id"].as_str().unwrap().to_string());
    }
    let old = Cipher::from_env(server.data_dir.path()).unwrap();
    let before = server.store.connection(&ids[0]).await.unwrap().unwrap().config_sealed;
    let provider = |key: Option<Vec<u8>>| NewProvider {
        provider_type: "openai".into(),
        display_name: "OpenAI".into(),
        api_key_sealed: key,
        ..NewProvider::default()
    };
    let with_key = server.store.insert_provider(provider(Some(old.seal(b"sk-test-1234")))).await.unwrap();
    server.store.insert_provider(provider(None)).await.unwrap();

    let rotation = rotate_key(&server.store, &old, |_| panic!("a key file is not announced")).await.unwrap();
    assert_eq!((rotation.counts.connections, rotation.counts.provider_keys), (2, 1));
    let sealed_key = server.store.provider(&with_key.id).await.unwrap().unwrap().api_key_sealed.unwrap();
    assert!(old.open(&sealed_key).is_err());
    assert_eq!(rotation.new.open(&sealed_key).unwrap(), b"sk-test-1234");
    let after = server.store.connection(&ids[0]).await.unwrap().unwrap().config_sealed;
    assert_ne!(before, after);
    assert!(matches!(old.open(&after), Err(SecretsError::WrongKey { .. })));
    let reloaded = Cipher::from_env(server.data_dir.path()).unwrap();
    assert_eq!(reloaded.key_id(), rotation.new.key_id());
    for id in &ids {
        let record = server.store.connection(id).await.unwrap().unwrap();
        assert_eq!(connections::open_config(&record, &reloaded).unwrap().secrets()[0], PASSWORD);
    }
    // The running server still holds the old key: it says so, without a secret and without a 500 body leak.
    let (status, reply) = server.get(&format!("/api/v1/connections/{}/config", ids[0]), &admin).await;
    assert_eq!(status, 500);
    assert!(reply["detail"].as_str().unwrap().contains("secret key"), "{reply}");
    assert!(!reply.to_string().contains(PASSWORD));
}

/// The store's connection queries on a PostgreSQL metadata store (fresh schema, dropped after).
#[tokio::test]
async fn store_on_postgres() {
    let Ok(admin_url) = std::env::var(PG_VAR) else {
        eprintln!("skipped: {PG_VAR} not set");
        return;
    };
    let schema = format!("quarry_conn_{}", uuid::Uuid::new_v4().simple());
    let mut admin = sqlx::PgConnection::connect(&admin_url).await.unwrap();
    admin.execute(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}"))).await.unwrap();
    let mut url = url::Url::parse(&admin_url).unwrap();
    url.query_pairs_mut().append_pair("options", &format!("-c search_path={schema}"));
    let outcome = tokio::spawn({
        let url = url.to_string();
        async move {
            let store = Store::open(&url).await.unwrap();
            let cipher = Cipher::generate();
            let new = |name: &str| NewConnection {
                name: name.into(),
                source_type: "postgresql".into(),
                config_sealed: cipher.seal(b"{\"url\":\"postgres://u:p@h/d\"}"),
                privacy: json!({"excluded_tables": ["x"]}),
                execution_mode: "auto_execute".into(),
            };
            let a = store.create_connection(new("a")).await.unwrap().unwrap();
            assert!(store.create_connection(new("a")).await.unwrap().is_err());
            let b = store.create_connection(new("b")).await.unwrap().unwrap();
            assert_eq!(store.connection(&a.id).await.unwrap().unwrap(), a);
            let (items, total) = store.list_connections(10, 0).await.unwrap();
            assert_eq!((total, items[0].id.as_str()), (2, b.id.as_str()));
            let now = chrono::Utc::now();
            assert!(store.store_connection_schema(&a.id, &json!({"t": 1}), "fp", now).await.unwrap());
            assert_eq!(store.connection_schema(&a.id).await.unwrap().unwrap().fingerprint, "fp");
            assert!(store.update_connection(&a.id, Some("b"), None).await.unwrap().is_err());
            let r = store.set_connection_privacy(&a.id, &json!({"row_filter_sql": "x = 1"})).await.unwrap().unwrap();
            assert_eq!(r.privacy["row_filter_sql"], "x = 1");
            assert!(store.connection_schema(&a.id).await.unwrap().is_none());
            let next = Cipher::generate();
            let counts =
                store.reseal_secrets(|v| cipher.open(v).map(|p| next.seal(&p)), |_| Ok(())).await.unwrap().unwrap();
            assert_eq!(counts.connections, 2);
            let sealed = store.connection(&b.id).await.unwrap().unwrap().config_sealed;
            assert!(next.open(&sealed).is_ok());
            assert!(store.delete_connection(&a.id).await.unwrap());
            store.create_connection(new("a")).await.unwrap().unwrap();
            store.close().await;
        }
    })
    .await;
    admin.execute(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE"))).await.unwrap();
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}
