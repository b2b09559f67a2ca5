//! `schema` against real databases: introspection (tables, views, keys, comments, estimates,
//! samples, privacy), fingerprints, rendering and linking — the same small shop on each engine.
//!
//! PostgreSQL and MariaDB/MySQL read `QUARRY_TEST_POSTGRES_URL` / `QUARRY_TEST_MYSQL_URL` and skip,
//! saying so, when unset; each test uses its own schema / database. SQLite always runs.

use std::time::{Duration, Instant};

use quarry::db::{ConnectOptions, Database, DatabaseUrl};
use quarry::schema::{
    self, IntrospectOptions, PrivacyPolicy, RenderOptions, Schema, SchemaCache, TableKind, introspect, link, render,
};
use serde_json::json;
use sqlx::{Connection, Executor};

fn unique() -> String {
    format!("quarry_t_{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
}

/// The shop, in SQL every engine accepts once `$S.` is replaced by the schema prefix.
fn shop_sql(serial: &str, extra: &str) -> Vec<String> {
    let mut stmts: Vec<String> = vec![
        format!("CREATE TABLE $S.customers (id {serial} PRIMARY KEY, name VARCHAR(50) NOT NULL, email VARCHAR(80), country VARCHAR(2), notes VARCHAR(100))"),
        format!("CREATE TABLE $S.products (id {serial} PRIMARY KEY, title VARCHAR(50) NOT NULL, price DECIMAL(10,2))"),
        format!("CREATE TABLE $S.orders (id {serial} PRIMARY KEY, customer_id INT NOT NULL REFERENCES $S.customers(id), status VARCHAR(20) NOT NULL DEFAULT 'new', placed_at DATE)"),
        format!("CREATE TABLE $S.order_items (order_id INT NOT NULL REFERENCES $S.orders(id), product_id INT NOT NULL REFERENCES $S.products(id), qty INT NOT NULL, PRIMARY KEY (order_id, product_id))"),
        "CREATE TABLE $S.secrets (id INT PRIMARY KEY, k VARCHAR(20))".into(),
        "CREATE VIEW $S.order_totals AS SELECT o.id AS order_id, SUM(i.qty) AS items FROM $S.orders o JOIN $S.order_items i ON i.order_id = o.id GROUP BY o.id".into(),
        "INSERT INTO $S.customers (id, name, email, country, notes) VALUES (1, 'Ada', 'ada@example.com', 'GB', 'vip'), (2, 'Linus', 'linus@example.com', 'FI', 'x'), (3, 'Grace', 'grace@example.com', 'US', NULL)".into(),
        "INSERT INTO $S.products (id, title, price) VALUES (1, 'Widget', 9.99), (2, 'Gadget', 24.50)".into(),
        "INSERT INTO $S.orders (id, customer_id, status, placed_at) VALUES (1, 1, 'paid', '2024-01-05'), (2, 2, 'shipped', '2024-02-01'), (3, 1, 'shipped', '2024-02-03')".into(),
        "INSERT INTO $S.order_items (order_id, product_id, qty) VALUES (1, 1, 2), (2, 2, 1), (3, 1, 5)".into(),
    ];
    // Unrelated tables, so that linking has something to leave out.
    for t in ["employees", "departments", "payroll_runs", "warehouses", "suppliers", "audit_events"] {
        stmts.push(format!("CREATE TABLE $S.{t} (id INT PRIMARY KEY, label VARCHAR(40), created_on DATE, flag_a INT, flag_b INT, flag_c INT)"));
    }
    stmts.extend(extra.split(';').map(str::trim).filter(|s| !s.is_empty()).map(String::from));
    stmts
}

fn options() -> IntrospectOptions {
    IntrospectOptions {
        sample_values_per_column: 3,
        privacy: PrivacyPolicy {
            excluded_tables: vec!["secrets".into()],
            excluded_columns: vec!["customers.notes".into()],
            sensitive_column_patterns: vec!["email".into()],
            ..PrivacyPolicy::default()
        },
        ..IntrospectOptions::default()
    }
}

/// What every engine must report about the shop.
fn check_shop(s: &Schema, with_comments: bool) {
    let names: Vec<&str> = s.tables.iter().map(|t| t.name.as_str()).collect();
    for n in ["customers", "orders", "order_items", "products", "order_totals", "employees"] {
        assert!(names.contains(&n), "{n} missing from {names:?}");
    }
    assert!(!names.contains(&"secrets"), "excluded table listed");
    let customers = s.table(None, "customers").unwrap();
    assert!(customers.column("notes").is_none(), "excluded column listed");
    let email = customers.column("email").unwrap();
    assert!(email.sensitive && email.samples.is_empty(), "sensitive column sampled: {email:?}");
    assert!(customers.column("id").unwrap().is_primary_key);
    assert!(!customers.column("name").unwrap().nullable);
    let country = &customers.column("country").unwrap().samples;
    assert!(country.contains(&json!("GB")) && country.len() == 3, "{country:?}");
    let orders = s.table(None, "orders").unwrap();
    let status = &orders.column("status").unwrap().samples;
    assert!(status.contains(&json!("paid")) && status.contains(&json!("shipped")), "{status:?}");
    assert!(orders.column("status").unwrap().default.as_deref().is_some_and(|d| d.contains("new")));
    assert_eq!(orders.foreign_keys.len(), 1);
    let fk = &orders.foreign_keys[0];
    assert_eq!(
        (fk.columns.clone(), fk.ref_table.as_str(), fk.ref_columns.clone()),
        (vec!["customer_id".to_string()], "customers", vec!["id".to_string()])
    );
    let items = s.table(None, "order_items").unwrap();
    assert_eq!(items.primary_key(), vec!["order_id", "product_id"]);
    assert_eq!(items.foreign_keys.len(), 2);
    assert_eq!(s.table(None, "order_totals").unwrap().kind, TableKind::View);
    if with_comments {
        assert_eq!(orders.comment.as_deref(), Some("One row per checkout"));
        assert_eq!(orders.column("status").unwrap().comment.as_deref(), Some("Lifecycle state"));
    }
    let text = render(s, &RenderOptions::default()).text;
    let customers_ref = s.display_name(customers.schema.as_deref(), "customers");
    assert!(text.contains(&format!("REFERENCES {customers_ref}(id)")), "{text}");
    assert!(text.contains("'shipped'") && text.contains("[SENSITIVE]") && !text.contains("ada@example.com"), "{text}");
    assert!(text.contains("PRIMARY KEY (order_id, product_id)"), "{text}");
}

/// Linking a shipping question at a budget that fits about a third of the schema.
fn check_link(s: &Schema) {
    let full = render(s, &RenderOptions::default()).tokens;
    let linked = link(s, "How many orders were shipped to customers in each country?", full / 3);
    let names: Vec<&str> = linked.tables.iter().map(|t| t.name.as_str()).collect();
    assert!(names.contains(&"orders") && names.contains(&"customers"), "{names:?}");
    for filler in ["employees", "departments", "payroll_runs", "warehouses", "suppliers", "audit_events"] {
        assert!(!names.contains(&filler), "{filler} in {names:?}");
    }
    assert!(render(&linked, &RenderOptions::default()).tokens <= full / 3);
    assert_eq!(linked.fingerprint, s.fingerprint);
    // Deterministic.
    assert_eq!(link(s, "How many orders were shipped to customers in each country?", full / 3), linked);
    // A whole schema within budget comes back whole; a tiny budget still keeps one table.
    assert_eq!(link(s, "anything", full + 10).tables.len(), s.tables.len());
    assert_eq!(link(s, "order items per product", 1).tables.len(), 1);
}

// ---------------------------------------------------------------- PostgreSQL

#[tokio::test]
async fn pg_introspect_render_link() {
    let Ok(url) = std::env::var("QUARRY_TEST_POSTGRES_URL") else {
        eprintln!("skipped: QUARRY_TEST_POSTGRES_URL not set");
        return;
    };
    let mut admin = sqlx::PgConnection::connect(&url).await.unwrap();
    let s = unique();
    admin.execute(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {s}"))).await.unwrap();
    let extra = "COMMENT ON TABLE $S.orders IS 'One row per checkout'; COMMENT ON COLUMN $S.orders.status IS 'Lifecycle state'; ANALYZE $S.customers";
    for stmt in shop_sql("INT", extra) {
        admin.execute(sqlx::AssertSqlSafe(stmt.replace("$S", &s))).await.unwrap_or_else(|e| panic!("{stmt}: {e}"));
    }
    let db = Database::connect(&DatabaseUrl::parse(&url).unwrap(), &ConnectOptions::default()).await.unwrap();
    let opts = IntrospectOptions { schemas: Some(vec![s.clone()]), ..options() };
    let started = Instant::now();
    let schema = introspect(&db, &opts).await.unwrap();
    eprintln!("postgres: introspected {} tables in {:?}", schema.tables.len(), started.elapsed());
    check_shop(&schema, true);
    // ANALYZE ran on customers only: its estimate comes from the catalog.
    assert_eq!(schema.table(None, "customers").unwrap().row_estimate, Some(3));
    check_link(&schema);

    let again = introspect(&db, &opts).await.unwrap();
    assert_eq!(again.fingerprint, schema.fingerprint);
    admin.execute(sqlx::AssertSqlSafe(format!("ALTER TABLE {s}.orders ADD COLUMN note TEXT"))).await.unwrap();
    let changed = introspect(&db, &opts).await.unwrap();
    assert_ne!(changed.fingerprint, schema.fingerprint);

    admin.execute(sqlx::AssertSqlSafe(format!("DROP SCHEMA {s} CASCADE"))).await.unwrap();
    db.close().await;
}

// ---------------------------------------------------------------- MySQL / MariaDB

#[tokio::test]
async fn mysql_introspect_render_link() {
    let Ok(url) = std::env::var("QUARRY_TEST_MYSQL_URL") else {
        eprintln!("skipped: QUARRY_TEST_MYSQL_URL not set");
        return;
    };
    let mut admin = sqlx::MySqlConnection::connect(&url).await.unwrap();
    let s = unique();
    admin.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {s}"))).await.unwrap();
    let extra = "ALTER TABLE $S.orders COMMENT = 'One row per checkout'; \
                 ALTER TABLE $S.orders MODIFY status VARCHAR(20) NOT NULL DEFAULT 'new' COMMENT 'Lifecycle state'; \
                 ANALYZE TABLE $S.customers";
    for stmt in shop_sql("INT", extra) {
        admin.execute(sqlx::AssertSqlSafe(stmt.replace("$S", &s))).await.unwrap_or_else(|e| panic!("{stmt}: {e}"));
    }
    let mut u = url::Url::parse(&url).unwrap();
    u.set_path(&format!("/{s}"));
    let db = Database::connect(&DatabaseUrl::parse(u.as_str()).unwrap(), &ConnectOptions::default()).await.unwrap();
    let started = Instant::now();
    let schema = introspect(&db, &options()).await.unwrap();
    eprintln!("mysql: introspected {} tables in {:?}", schema.tables.len(), started.elapsed());
    assert_eq!(schema.default_schema.as_deref(), Some(s.as_str()));
    check_shop(&schema, true);
    check_link(&schema);

    let again = introspect(&db, &options()).await.unwrap();
    assert_eq!(again.fingerprint, schema.fingerprint);
    admin.execute(sqlx::AssertSqlSafe(format!("ALTER TABLE {s}.orders ADD COLUMN note TEXT"))).await.unwrap();
    assert_ne!(introspect(&db, &options()).await.unwrap().fingerprint, schema.fingerprint);

    admin.execute(sqlx::AssertSqlSafe(format!("DROP DATABASE {s}"))).await.unwrap();
    db.close().await;
}

// ---------------------------------------------------------------- SQLite

async fn sqlite_shop(extra: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shop.db");
    let mut w = sqlx::SqliteConnection::connect_with(
        &sqlx::sqlite::SqliteConnectOptions::new().filename(&path).create_if_missing(true),
    )
    .await
    .unwrap();
    for stmt in shop_sql("INTEGER", extra) {
        w.execute(sqlx::AssertSqlSafe(stmt.replace("$S.", ""))).await.unwrap_or_else(|e| panic!("{stmt}: {e}"));
    }
    w.close().await.unwrap();
    let url = format!("sqlite://{}", path.display());
    (dir, url)
}

#[tokio::test]
async fn sqlite_introspect_render_link() {
    let (_dir, url) = sqlite_shop("").await;
    let db = Database::connect(&DatabaseUrl::parse(&url).unwrap(), &ConnectOptions::default()).await.unwrap();
    let started = Instant::now();
    let schema = introspect(&db, &options()).await.unwrap();
    eprintln!("sqlite: introspected {} tables in {:?}", schema.tables.len(), started.elapsed());
    check_shop(&schema, false);
    assert_eq!(schema.table(None, "orders").unwrap().row_estimate, Some(3));
    check_link(&schema);
    assert_eq!(introspect(&db, &options()).await.unwrap().fingerprint, schema.fingerprint);
}

#[tokio::test]
async fn sqlite_fingerprint_changes_and_cache_refreshes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fp.db");
    let opts = sqlx::sqlite::SqliteConnectOptions::new().filename(&path).create_if_missing(true);
    let mut w = sqlx::SqliteConnection::connect_with(&opts).await.unwrap();
    w.execute("CREATE TABLE a (id INTEGER PRIMARY KEY, v TEXT); INSERT INTO a (v) VALUES ('x')").await.unwrap();
    let url = DatabaseUrl::parse(&format!("sqlite://{}", path.display())).unwrap();
    let db = Database::connect(&url, &ConnectOptions::default()).await.unwrap();

    let cache = SchemaCache::new(Duration::from_secs(60));
    let first = cache.get("conn-1", &db, &IntrospectOptions::default()).await.unwrap();
    // Data changes leave the fingerprint alone...
    w.execute("INSERT INTO a (v) VALUES ('y'), ('z')").await.unwrap();
    let fresh = introspect(&db, &IntrospectOptions::default()).await.unwrap();
    assert_eq!(fresh.fingerprint, first.fingerprint);
    // ...structure changes do not, and the cache only sees them on refresh.
    w.execute("ALTER TABLE a ADD COLUMN w INTEGER").await.unwrap();
    let cached = cache.get("conn-1", &db, &IntrospectOptions::default()).await.unwrap();
    assert_eq!(cached.fingerprint, first.fingerprint);
    let refreshed = cache.refresh("conn-1", &db, &IntrospectOptions::default()).await.unwrap();
    assert_ne!(refreshed.fingerprint, first.fingerprint);
    assert!(refreshed.table(None, "a").unwrap().column("w").is_some());
    w.close().await.unwrap();
}

#[test]
fn token_estimate_tracks_rendered_text() {
    let r = schema::tokens::estimate_tokens("CREATE TABLE orders (\n  id integer PRIMARY KEY,\n);");
    assert!((10..=20).contains(&r), "{r}");
}
