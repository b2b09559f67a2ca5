//! The answer cache and verified examples: the domain layer on the metadata store (SQLite, and
//! PostgreSQL when `QUARRY_TEST_POSTGRES_URL` is set — each case in a fresh schema), including
//! concurrent use and two "replicas" sharing one store; then the `/api/v1/chat/cache/...` and
//! `/api/v1/chat/examples/...` routes over HTTP with the product server.

mod support;

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use futures::FutureExt;
use quarry::answer_cache::{AnswerCache, CachePolicy, Clock, StoreOptions};
use quarry::embedding::{EmbedFuture, Embedder, Embedding, QuestionVectors, checked};
use quarry::examples;
use quarry::store::Store;
use quarry::store::examples::{ExampleChange, ExampleUpdate, NewExample};
use reqwest::Method;
use serde_json::{Value, json};
use sqlx::{Connection, Executor};
use support::product::ProductServer;

const PG_VAR: &str = "QUARRY_TEST_POSTGRES_URL";
const FP: &str = "fp-1";

// ---------------------------------------------------------------------------------------------
// Backends

/// A store to run a case on, the URL it was opened with, and how to throw it away.
struct Backend {
    store: Store,
    url: String,
    cleanup: Cleanup,
}

enum Cleanup {
    Sqlite(#[allow(dead_code)] tempfile::TempDir),
    Postgres { admin_url: String, schema: String },
}

async fn sqlite_backend() -> Backend {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("meta.db").display());
    let store = Store::open(&url).await.expect("open sqlite store");
    Backend { store, url, cleanup: Cleanup::Sqlite(dir) }
}

async fn postgres_backend() -> Option<Backend> {
    let Ok(admin_url) = std::env::var(PG_VAR) else {
        eprintln!("skipped: {PG_VAR} not set (the PostgreSQL half of this test)");
        return None;
    };
    let schema = format!("quarry_cache_{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let mut admin = sqlx::PgConnection::connect(&admin_url).await.expect("connect to the test PostgreSQL");
    admin.execute(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}"))).await.expect("create schema");
    admin.close().await.expect("close");
    let mut url = url::Url::parse(&admin_url).expect("test URL parses");
    url.query_pairs_mut().append_pair("options", &format!("-c search_path={schema}"));
    let url = url.to_string();
    let store = Store::open(&url).await.expect("open PostgreSQL store");
    Some(Backend { store, url, cleanup: Cleanup::Postgres { admin_url, schema } })
}

/// Run `case` on SQLite, then on PostgreSQL when configured, cleaning up even after a panic.
async fn on_every_backend<F, Fut>(case: F)
where
    F: Fn(Store, String) -> Fut,
    Fut: Future<Output = ()>,
{
    let mut backends = vec![sqlite_backend().await];
    if let Some(pg) = postgres_backend().await {
        backends.push(pg);
    }
    for Backend { store, url, cleanup } in backends {
        let name = store.backend();
        let outcome = AssertUnwindSafe(case(store.clone(), url)).catch_unwind().await;
        store.close().await;
        if let Cleanup::Postgres { admin_url, schema } = cleanup {
            let mut admin = sqlx::PgConnection::connect(&admin_url).await.expect("connect");
            admin.execute(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE"))).await.expect("drop schema");
        }
        if let Err(panic) = outcome {
            eprintln!("failed on the {name} backend");
            std::panic::resume_unwind(panic);
        }
    }
}

/// A clock the test moves, and the cache reading it.
fn clocked(store: Store) -> (AnswerCache, Arc<Mutex<DateTime<Utc>>>) {
    let start = Utc.with_ymd_and_hms(2026, 3, 1, 8, 0, 0).single().expect("date");
    let now = Arc::new(Mutex::new(start));
    let read = now.clone();
    let clock: Clock = Arc::new(move || *read.lock().expect("clock"));
    (AnswerCache::new(store).with_clock(clock), now)
}

fn advance(now: &Mutex<DateTime<Utc>>, hours: i64) {
    *now.lock().expect("clock") += chrono::Duration::hours(hours);
}

// ---------------------------------------------------------------------------------------------
// Domain layer on each backend

#[tokio::test]
async fn lookup_guards_ttl_and_lru_on_each_backend() {
    on_every_backend(|store, _url| async move {
        let (cache, now) = clocked(store);
        let cache = cache.with_capacity(4);
        let policy = CachePolicy { ttl: Some(Duration::from_secs(7 * 24 * 3600)), threshold: 0.87 };
        let ask = |q: &'static str| {
            let cache = cache.clone();
            async move { cache.lookup("c1", q, FP, &policy).await.expect("lookup") }
        };
        let store_q = |q: &'static str, sql: &'static str| {
            let cache = cache.clone();
            async move { cache.store_entry("c1", q, FP, sql, "sqlite", false).await.expect("store") }
        };

        assert!(store_q("How many customers?", "SELECT COUNT(*) FROM customers").await);
        assert!(store_q("orders over $60k", "SELECT * FROM orders WHERE total > 60000").await);
        assert!(store_q("sales last month", "SELECT 1").await);

        let hit = ask("how many customers are there").await.expect("paraphrase");
        assert!(hit.exact, "same content words in the same order");
        let typo = ask("how many custmers").await.expect("typo");
        assert!(!typo.exact && typo.similarity >= 0.87 && typo.similarity < 1.0);
        assert_eq!(typo.sql, "SELECT COUNT(*) FROM customers");
        assert!(ask("orders over $80k").await.is_none());
        assert!(ask("orders over $60,000").await.is_some(), "$60k and $60,000 are the same number");
        assert!(ask("sales this month").await.is_none());
        assert!(ask("sales last month").await.is_some());

        // 6 days on: the customers entry was used, the temporal one is too old.
        advance(&now, 6 * 24);
        assert!(ask("sales last month").await.is_none());
        assert!(ask("how many customers").await.is_some());
        // 6 more days: the sliding TTL kept "customers" (used 6 days ago), "orders" expired.
        advance(&now, 6 * 24);
        assert!(ask("how many customers").await.is_some());
        assert!(ask("orders over $60k").await.is_none());

        // LRU: capacity 4.
        for (i, q) in ["alpha report", "bravo report", "charlie report", "delta report"].iter().enumerate() {
            advance(&now, 1);
            assert!(cache.store_entry("c1", q, FP, &format!("SELECT {i}"), "sqlite", false).await.expect("store"));
        }
        let page = cache.entries("c1", 100, 0, None).await.expect("entries");
        assert_eq!(page.total, 4);
        let mut kept: Vec<String> = page.items.iter().map(|e| e.question_raw.clone()).collect();
        kept.sort();
        assert_eq!(kept, vec!["alpha report", "bravo report", "charlie report", "delta report"]);

        let stats = cache.stats().await.expect("stats");
        assert_eq!(stats.total_entries, 4);
        // Misses: $80k, this month, and the two stale entries; the hits went with the evicted entry.
        assert_eq!((stats.hit_count, stats.miss_count, stats.hit_rate), (0, 4, 0.0), "{stats:?}");
    })
    .await;
}

#[tokio::test]
async fn concurrent_use_counts_every_hit_and_keeps_the_capacity() {
    on_every_backend(|store, url| async move {
        let cache = AnswerCache::new(store.clone()).with_capacity(5);
        assert!(cache.store_entry("c1", "revenue by region", FP, "SELECT 1", "sqlite", false).await.expect("store"));

        // A second "replica": another pool on the same database.
        let other_store = Store::open(&url).await.expect("second handle");
        let other = AnswerCache::new(other_store.clone()).with_capacity(5);

        let policy = CachePolicy::default();
        let mut tasks = Vec::new();
        for i in 0..24 {
            let cache = if i % 2 == 0 { cache.clone() } else { other.clone() };
            tasks.push(tokio::spawn(async move { cache.lookup("c1", "Revenue by region?", FP, &policy).await }));
        }
        for task in tasks {
            assert!(task.await.expect("task").expect("lookup").is_some());
        }
        let page = cache.entries("c1", 10, 0, None).await.expect("entries");
        assert_eq!(page.items[0].hit_count, 24, "every concurrent hit is counted");

        // Concurrent stores of the same question: exactly one is written.
        let mut tasks = Vec::new();
        for i in 0..8 {
            let cache = if i % 2 == 0 { cache.clone() } else { other.clone() };
            tasks.push(tokio::spawn(async move {
                cache.store_entry("c2", "top products", FP, &format!("SELECT {i}"), "sqlite", false).await
            }));
        }
        let mut written = 0;
        for task in tasks {
            written += usize::from(task.await.expect("task").expect("store"));
        }
        assert_eq!(written, 1);

        // Concurrent stores of different questions never leave more than the capacity.
        let mut tasks = Vec::new();
        for i in 0..16 {
            let cache = if i % 2 == 0 { cache.clone() } else { other.clone() };
            tasks.push(tokio::spawn(async move {
                cache.store_entry("c3", &format!("question number {i}"), FP, "SELECT 1", "sqlite", false).await
            }));
        }
        for task in tasks {
            assert!(task.await.expect("task").expect("store"));
        }
        assert_eq!(cache.entries("c3", 100, 0, None).await.expect("entries").total, 5);

        // Concurrent misses are all counted.
        let before = cache.stats().await.expect("stats").miss_count;
        let mut tasks = Vec::new();
        for i in 0..10 {
            let cache = if i % 2 == 0 { cache.clone() } else { other.clone() };
            tasks.push(tokio::spawn(async move { cache.lookup("c9", "nothing cached here", FP, &policy).await }));
        }
        for task in tasks {
            assert!(task.await.expect("task").expect("lookup").is_none());
        }
        assert_eq!(cache.stats().await.expect("stats").miss_count, before + 10);
        other_store.close().await;
    })
    .await;
}

#[tokio::test]
async fn examples_store_and_similarity_on_each_backend() {
    on_every_backend(|store, _url| async move {
        let cache = AnswerCache::new(store.clone());
        let words = QuestionVectors::none();
        let a = examples::add(&store, &cache, &words, "c1", "postgres", "top 5 customers by revenue", "SELECT 1", 0.87)
            .await
            .expect("add")
            .expect("new");
        let feedback = |question: &'static str, sql: String, dialect: &'static str| {
            let store = store.clone();
            async move {
                examples::add_from_feedback(&store, &QuestionVectors::none(), "c1", dialect, question, &sql).await
            }
        };
        let b = feedback("how many orders were shipped", "SELECT 2".into(), "postgres").await.expect("feedback");
        let again = feedback("How many orders were shipped?", "SELECT 2".into(), "postgres").await.expect("again");
        assert_eq!(b.id, again.id, "deduplicated on connection + normalised question + SQL");
        let long_sql = format!("SELECT '{}'", "x".repeat(20_000));
        feedback("a long one", long_sql, "postgres").await.expect("long SQL");
        feedback("top 5 customers by revenue", "SELECT 3".into(), "mysql").await.expect("mysql");

        let (items, total) = store.list_examples("c1", 2, 0).await.expect("list");
        assert_eq!(total, 4);
        assert_eq!(items[0].id, a.id, "oldest first");
        let found =
            examples::similar(&store, "c1", "postgres", "top 10 customers by revenue", 3).await.expect("similar");
        assert_eq!(found.first().map(|e| e.sql.as_str()), Some("SELECT 1"));
        assert!(found.iter().all(|e| e.sql != "SELECT 3"), "another dialect's examples are not offered");

        // Editing into a duplicate is refused and changes nothing.
        let change = ExampleChange {
            question: Some(("how many orders were shipped", "count order ship")),
            sql: Some("SELECT 2"),
            ..ExampleChange::default()
        };
        assert_eq!(store.update_example(&a.id, change).await.expect("update"), ExampleUpdate::Duplicate);
        let change = ExampleChange { sql: Some("SELECT 10"), ..ExampleChange::default() };
        let ExampleUpdate::Updated(updated) = store.update_example(&a.id, change).await.expect("update") else {
            panic!("not updated")
        };
        assert_eq!((updated.question.as_str(), updated.sql.as_str()), ("top 5 customers by revenue", "SELECT 10"));
        assert!(updated.updated_at >= updated.created_at);
        assert_eq!(
            store.update_example("missing", ExampleChange::default()).await.expect("update"),
            ExampleUpdate::NotFound
        );

        assert!(
            examples::remove_from_feedback(&store, "c1", "how many orders were shipped", "SELECT 2")
                .await
                .expect("undo")
        );
        assert_eq!(examples::delete_for_connection(&store, "c1").await.expect("delete"), 3);
    })
    .await;
}

/// Vectors that need every bit of an `f32`: signs, tiny and huge values, a long dimension.
fn awkward_vector(seed: f32) -> Vec<f32> {
    let mut v = vec![seed, -0.0, -1.5e-38, f32::MIN_POSITIVE, 3.4e38, -123.456, 1.0 / 3.0];
    v.extend((0..1529).map(|i| (i as f32 * 0.37 + seed).sin()));
    v
}

/// Always answers with `awkward_vector`, seeded by the text's length.
struct Awkward;

impl Embedder for Awkward {
    fn embed<'a>(&'a self, texts: &'a [String]) -> EmbedFuture<'a> {
        Box::pin(async move {
            checked("awkward-1536", texts.iter().map(|t| awkward_vector(t.len() as f32)).collect(), texts.len())
        })
    }
}

#[tokio::test]
async fn question_vectors_round_trip_on_each_backend() {
    on_every_backend(|store, _url| async move {
        let cache = AnswerCache::new(store.clone());
        let vectors = QuestionVectors::new(Arc::new(Awkward));
        let options = StoreOptions { vectors: Some(&vectors), ..StoreOptions::default() };
        let question = "Count the customers";
        assert!(cache.store_entry_with("c1", question, FP, "SELECT 1", "sqlite", options).await.expect("store"));
        assert!(cache.store_entry("c1", "revenue by region", FP, "SELECT 2", "sqlite", false).await.expect("store"));
        let expected = Embedding { model: "awkward-1536".into(), vector: awkward_vector(question.len() as f32) };

        let candidates = store.cache_candidates("c1", FP, DateTime::UNIX_EPOCH, 10).await.expect("candidates");
        let stored = candidates.iter().find(|c| c.entry.question_raw == question).expect("stored");
        let read = stored.embedding.as_ref().expect("a vector");
        assert_eq!(read.model, expected.model);
        assert_eq!(
            read.vector.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
            expected.vector.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
            "bit for bit"
        );
        let plain = candidates.iter().find(|c| c.entry.question_raw == "revenue by region").expect("stored");
        assert_eq!(plain.embedding, None);
        let all = store.cache_entries_of("c1", 10).await.expect("entries");
        assert_eq!(all.iter().filter(|c| c.embedding.as_ref() == Some(&expected)).count(), 1);
        // Overwriting without a vector clears it: it may describe another wording.
        assert!(cache.store_entry("c1", "count the customers", FP, "SELECT 3", "sqlite", true).await.expect("store"));
        let candidates = store.cache_candidates("c1", FP, DateTime::UNIX_EPOCH, 10).await.expect("candidates");
        assert!(candidates.iter().all(|c| c.embedding.is_none()));

        // Examples: written with the insert, replaced with a new question, kept with new SQL.
        let embedding = Embedding { model: "awkward-1536".into(), vector: awkward_vector(1.0) };
        let new = NewExample {
            connection_id: "c1",
            question,
            question_normalized: "count customer",
            sql: "SELECT COUNT(*) FROM customers",
            dialect: "postgres",
            embedding: Some(&embedding),
        };
        let example = store.insert_example(new).await.expect("insert").expect("new");
        let read = store.examples_for("c1", "postgres", 10).await.expect("examples");
        assert_eq!(read[0].embedding.as_ref(), Some(&embedding));
        let sql_only = ExampleChange { sql: Some("SELECT COUNT(id) FROM customers"), ..ExampleChange::default() };
        assert!(matches!(
            store.update_example(&example.id, sql_only).await.expect("update"),
            ExampleUpdate::Updated(_)
        ));
        let read = store.examples_for("c1", "postgres", 10).await.expect("examples");
        assert_eq!(read[0].embedding.as_ref(), Some(&embedding), "a new SQL keeps the question's vector");
        let other = Embedding { model: "awkward-1536".into(), vector: awkward_vector(2.0) };
        let reworded = ExampleChange {
            question: Some(("How many clients?", "count client")),
            embedding: Some(&other),
            ..ExampleChange::default()
        };
        assert!(matches!(
            store.update_example(&example.id, reworded).await.expect("update"),
            ExampleUpdate::Updated(_)
        ));
        let read = store.examples_for("c1", "postgres", 10).await.expect("examples");
        assert_eq!(read[0].embedding.as_ref(), Some(&other));
        let without =
            ExampleChange { question: Some(("Number of clients", "count client")), ..ExampleChange::default() };
        assert!(matches!(store.update_example(&example.id, without).await.expect("update"), ExampleUpdate::Updated(_)));
        let read = store.examples_for("c1", "postgres", 10).await.expect("examples");
        assert_eq!(read[0].embedding, None, "a new question without a vector clears the old one");
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// HTTP

/// A SQLite connection over a database file in `dir` (not the server's data folder, which
/// connections may not use); its id.
async fn connection(server: &ProductServer, admin: &str, dir: &tempfile::TempDir, name: &str) -> String {
    let path = dir.path().join(format!("{name}.db"));
    let options = sqlx::sqlite::SqliteConnectOptions::new().filename(&path).create_if_missing(true);
    let pool = sqlx::SqlitePool::connect_with(options).await.expect("user database");
    sqlx::query("CREATE TABLE IF NOT EXISTS orders (id INTEGER PRIMARY KEY, status TEXT, total REAL)")
        .execute(&pool)
        .await
        .expect("create table");
    pool.close().await;
    let body = json!({ "name": name, "source_type": "sqlite", "config": { "path": path.display().to_string() } });
    let (status, reply) = server.post("/api/v1/connections", admin, &body).await;
    assert_eq!(status, 201, "create connection: {reply}");
    reply["id"].as_str().expect("id").to_string()
}

const UNKNOWN: &str = "00000000-0000-4000-8000-000000000000";

#[tokio::test]
async fn cache_routes() {
    let server = ProductServer::start().await;
    let admin = server.register_admin().await;
    let member = server.add_user(&admin, "member@example.com", "member").await;
    let user_dir = tempfile::tempdir().expect("temp dir");
    let conn = connection(&server, &admin, &user_dir, "shop").await;
    let other_conn = connection(&server, &admin, &user_dir, "other").await;
    let cache = AnswerCache::new(server.store.clone());
    for (q, sql) in
        [("how many orders", "SELECT COUNT(*) FROM orders"), ("orders by status", "SELECT status FROM orders")]
    {
        assert!(cache.store_entry(&conn, q, FP, sql, "sqlite", false).await.expect("seed"));
    }
    assert!(cache.store_entry(&other_conn, "100% paid orders", FP, "SELECT 1", "sqlite", false).await.expect("seed"));
    let policy = CachePolicy::default();
    for _ in 0..3 {
        assert!(cache.lookup(&conn, "How many orders?", FP, &policy).await.expect("lookup").is_some());
    }
    assert!(cache.lookup(&conn, "orders over 500", FP, &policy).await.expect("lookup").is_none());

    // Anonymous: 401 everywhere.
    for (method, path) in [
        (Method::GET, "/api/v1/chat/cache/stats".to_string()),
        (Method::GET, format!("/api/v1/chat/cache/{conn}/entries")),
        (Method::DELETE, format!("/api/v1/chat/cache/{conn}")),
    ] {
        assert_eq!(server.call(method, &path, None, None).await.0, 401, "{path}");
    }

    // Stats: not captured by /{connection_id}, for any signed-in user.
    let (status, stats) = server.get("/api/v1/chat/cache/stats", &member).await;
    assert_eq!(status, 200, "{stats}");
    assert_eq!(stats["total_entries"], 3);
    assert_eq!(stats["hit_count"], 3);
    assert_eq!(stats["miss_count"], 1);
    assert_eq!(stats["hit_rate"], 0.75);
    assert_eq!(stats["top_cached_queries"], json!([{ "question": "how many orders", "hit_count": 3 }]));

    // Entries: most hits first, paginated, searchable.
    let (status, page) = server.get(&format!("/api/v1/chat/cache/{conn}/entries"), &member).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!((page["total"].as_i64(), page["limit"].as_i64(), page["offset"].as_i64()), (Some(2), Some(20), Some(0)));
    let first = &page["items"][0];
    assert_eq!(first["question_raw"], "how many orders");
    assert_eq!(first["query_dialect"], "sqlite");
    assert_eq!(first["hit_count"], 3);
    assert!(first["created_at"].is_string() && first["last_hit_at"].is_string());
    assert!(page["items"][1]["last_hit_at"].is_null());
    assert!(first.get("sql").is_none(), "entries list questions, not SQL");
    let (_, page) = server.get(&format!("/api/v1/chat/cache/{conn}/entries?limit=1&offset=1"), &member).await;
    assert_eq!(page["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(page["items"][0]["question_raw"], "orders by status");
    let (_, page) = server.get(&format!("/api/v1/chat/cache/{conn}/entries?search=STATUS"), &member).await;
    assert_eq!(page["total"], 1);
    let (_, page) = server.get(&format!("/api/v1/chat/cache/{other_conn}/entries?search=%25"), &member).await;
    assert_eq!(page["total"], 1, "% is searched for literally: {page}");
    let (_, page) = server.get(&format!("/api/v1/chat/cache/{conn}/entries?search=%25"), &member).await;
    assert_eq!(page["total"], 0);
    for bad in ["limit=0", "limit=101", "limit=abc", "offset=-1"] {
        let (status, reply) = server.get(&format!("/api/v1/chat/cache/{conn}/entries?{bad}"), &member).await;
        assert_eq!(status, 422, "{bad}: {reply}");
        assert_eq!(reply["detail"][0]["loc"][0], "query", "{reply}");
    }
    let (status, reply) = server.get(&format!("/api/v1/chat/cache/{UNKNOWN}/entries"), &member).await;
    assert_eq!((status, reply["detail"].as_str()), (404, Some("Connection not found")));

    // Deleting: admins only.
    let entry_id = page_first_id(&server, &member, &conn).await;
    let entry_path = format!("/api/v1/chat/cache/entries/{entry_id}");
    assert_eq!(server.delete(&entry_path, &member).await.0, 403);
    assert_eq!(server.delete(&format!("/api/v1/chat/cache/{conn}"), &member).await.0, 403);
    assert_eq!(server.delete(&entry_path, &admin).await.0, 204);
    let (status, reply) = server.delete(&entry_path, &admin).await;
    assert_eq!((status, reply["detail"].as_str()), (404, Some("Cache entry not found")));
    assert_eq!(server.delete(&format!("/api/v1/chat/cache/{UNKNOWN}"), &admin).await.0, 404);
    let (status, body) = server.delete(&format!("/api/v1/chat/cache/{conn}"), &admin).await;
    assert_eq!((status, body), (204, Value::Null));
    let (_, page) = server.get(&format!("/api/v1/chat/cache/{conn}/entries"), &member).await;
    assert_eq!(page["total"], 0);
    let (_, page) = server.get(&format!("/api/v1/chat/cache/{other_conn}/entries"), &member).await;
    assert_eq!(page["total"], 1, "other connections keep their entries");
}

async fn page_first_id(server: &ProductServer, token: &str, conn: &str) -> String {
    let (_, page) = server.get(&format!("/api/v1/chat/cache/{conn}/entries"), token).await;
    page["items"][0]["id"].as_str().expect("an entry").to_string()
}

#[tokio::test]
async fn examples_routes() {
    let server = ProductServer::start().await;
    let admin = server.register_admin().await;
    let member = server.add_user(&admin, "member@example.com", "member").await;
    let user_dir = tempfile::tempdir().expect("temp dir");
    let conn = connection(&server, &admin, &user_dir, "shop").await;
    let path = format!("/api/v1/chat/examples/{conn}");
    let cache = AnswerCache::new(server.store.clone());
    assert!(
        cache.store_entry(&conn, "how many orders are there", FP, "SELECT 1", "sqlite", false).await.expect("seed")
    );
    assert!(cache.store_entry(&conn, "orders by status", FP, "SELECT 2", "sqlite", false).await.expect("seed"));

    assert_eq!(server.call(Method::GET, &path, None, None).await.0, 401);

    // A member adds an example: validated, 201, similar cache entries evicted.
    let body = json!({ "question": " How many orders? ", "query": "SELECT COUNT(*) FROM orders" });
    let (status, created) = server.post(&path, &member, &body).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["question"], "How many orders?");
    assert_eq!(created["query"], "SELECT COUNT(*) FROM orders");
    assert_eq!(created["query_dialect"], "sqlite");
    assert!(created["id"].as_str().is_some_and(|id| id.len() == 36));
    assert!(created["created_at"].is_string());
    let left = cache.entries(&conn, 10, 0, None).await.expect("entries");
    assert_eq!(left.items.iter().map(|e| e.question_raw.as_str()).collect::<Vec<_>>(), vec!["orders by status"]);

    let (status, reply) = server.post(&path, &member, &body).await;
    assert_eq!((status, reply["detail"].as_str()), (409, Some("This connection already has that example")));

    // Unsafe or unparsable SQL, and bad bodies: 422, nothing stored.
    for (query, kind) in [
        ("DELETE FROM orders", "sql_refused"),
        ("SELECT 1; DROP TABLE orders", "sql_refused"),
        ("SELEKT * FROM", "sql_parse_error"),
    ] {
        let (status, reply) = server.post(&path, &member, &json!({ "question": "q", "query": query })).await;
        assert_eq!(status, 422, "{query}: {reply}");
        let detail = reply["detail"].as_array().expect("a list of violations");
        assert!(!detail.is_empty());
        assert_eq!(detail[0]["type"], kind, "{reply}");
        assert_eq!(detail[0]["loc"], json!(["body", "query"]));
        assert!(detail[0]["msg"].as_str().is_some_and(|m| !m.is_empty()));
    }
    for bad in [
        json!({ "question": "q" }),
        json!({ "question": "  ", "query": "SELECT 1" }),
        json!({ "question": 5, "query": "SELECT 1" }),
        json!([]),
    ] {
        let (status, reply) = server.post(&path, &member, &bad).await;
        assert_eq!(status, 422, "{bad}: {reply}");
        assert!(reply["detail"].is_array(), "{reply}");
    }
    let (status, reply) = server.post(&format!("/api/v1/chat/examples/{UNKNOWN}"), &member, &body).await;
    assert_eq!((status, reply["detail"].as_str()), (404, Some("Connection not found")));

    let second =
        json!({ "question": "orders by status", "query": "SELECT status, COUNT(*) FROM orders GROUP BY status" });
    let (status, second) = server.post(&path, &admin, &second).await;
    assert_eq!(status, 201, "{second}");

    // List: oldest first, paginated.
    let (status, page) = server.get(&path, &member).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["total"], 2);
    assert_eq!(page["items"][0]["id"], created["id"]);
    assert_eq!(page["items"][1]["id"], second["id"]);
    let (_, page) = server.get(&format!("{path}?limit=1&offset=1"), &member).await;
    assert_eq!((page["items"][0]["id"].clone(), page["limit"].clone()), (second["id"].clone(), json!(1)));
    assert_eq!(server.get(&format!("/api/v1/chat/examples/{UNKNOWN}"), &member).await.0, 404);

    // Edit: re-validated; unsafe SQL refused and nothing changes.
    let id = created["id"].as_str().expect("id");
    let example_path = format!("/api/v1/chat/examples/{id}");
    let (status, reply) = server.put(&example_path, &member, &json!({ "query": "UPDATE orders SET total = 0" })).await;
    assert_eq!(status, 422, "{reply}");
    let (status, updated) = server.put(&example_path, &member, &json!({ "question": "Total number of orders" })).await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(
        (updated["question"].as_str(), updated["query"].as_str()),
        (Some("Total number of orders"), Some("SELECT COUNT(*) FROM orders"))
    );
    let (status, updated) =
        server.put(&example_path, &member, &json!({ "query": "SELECT COUNT(id) FROM orders" })).await;
    assert_eq!((status, updated["query"].as_str()), (200, Some("SELECT COUNT(id) FROM orders")));
    let (status, _) =
        server.put(&format!("/api/v1/chat/examples/{UNKNOWN}"), &member, &json!({ "question": "x" })).await;
    assert_eq!(status, 404);
    let duplicate =
        json!({ "question": "orders by status", "query": "SELECT status, COUNT(*) FROM orders GROUP BY status" });
    assert_eq!(server.put(&example_path, &member, &duplicate).await.0, 409);

    // The prompt's view.
    let found = examples::similar(&server.store, &conn, "sqlite", "total number of orders", 3).await.expect("similar");
    assert_eq!(found.first().map(|e| e.sql.as_str()), Some("SELECT COUNT(id) FROM orders"));

    // Delete: admins only.
    assert_eq!(server.delete(&example_path, &member).await.0, 403);
    assert_eq!(server.delete(&example_path, &admin).await.0, 204);
    assert_eq!(server.delete(&example_path, &admin).await.0, 404);
    let (_, page) = server.get(&path, &member).await;
    assert_eq!(page["total"], 1);
}
