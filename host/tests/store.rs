//! The metadata store (`quarry::store`): sessions and their turns, on SQLite and PostgreSQL.
//!
//! Every case runs against a fresh SQLite file in a temporary folder, then against PostgreSQL when
//! `QUARRY_TEST_POSTGRES_URL` is set (e.g. `postgres://postgres@127.0.0.1:5432/test`; otherwise it
//! says "skipped"). On PostgreSQL each case gets its own schema `quarry_store_<random>`, selected
//! with the URL's `options=-c search_path=…` and dropped at the end (even when the case fails), so
//! parallel tests and parallel runs never see each other's rows.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::time::Duration;

use futures::FutureExt;
use quarry::store::{MAX_SESSION_ID_CHARS, NewTurn, Store, StoreError, Turn};
use serde_json::json;
use sqlx::{Connection, Executor};

const PG_VAR: &str = "QUARRY_TEST_POSTGRES_URL";

/// What a case gets: an open store and the URL it was opened with (to open it again).
#[derive(Clone)]
struct Ctx {
    store: Store,
    url: String,
}

/// How to throw a backend's data away after a case.
enum Cleanup {
    /// The folder holding the SQLite file; removed on drop.
    Sqlite(#[allow(dead_code)] tempfile::TempDir),
    /// The schema to drop, through a connection to `admin_url`.
    Postgres { admin_url: String, schema: String },
}

fn random_suffix() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..12].to_string()
}

async fn sqlite_backend() -> (Ctx, Cleanup) {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("meta.db").display());
    let store = Store::open(&url).await.unwrap_or_else(|e| panic!("open {url}: {e}"));
    (Ctx { store, url }, Cleanup::Sqlite(dir))
}

async fn postgres_backend() -> Option<(Ctx, Cleanup)> {
    let Ok(admin_url) = std::env::var(PG_VAR) else {
        eprintln!("skipped: {PG_VAR} not set (the PostgreSQL half of this test)");
        return None;
    };
    let schema = format!("quarry_store_{}", random_suffix());
    let mut admin = sqlx::PgConnection::connect(&admin_url).await.expect("connect to the test PostgreSQL");
    admin.execute(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}"))).await.expect("create schema");
    admin.close().await.expect("close admin connection");
    let mut url = url::Url::parse(&admin_url).expect("test URL parses");
    url.query_pairs_mut().append_pair("options", &format!("-c search_path={schema}"));
    let url = url.to_string();
    let store = Store::open(&url).await.unwrap_or_else(|e| panic!("open PostgreSQL store: {e}"));
    Some((Ctx { store, url }, Cleanup::Postgres { admin_url, schema }))
}

/// Run `case` on one backend, then clean up whether or not it panicked.
async fn run_case<F, Fut>(ctx: Ctx, cleanup: Cleanup, case: &F)
where
    F: Fn(Ctx) -> Fut,
    Fut: Future<Output = ()>,
{
    let store = ctx.store.clone();
    let backend = store.backend();
    let outcome = AssertUnwindSafe(case(ctx)).catch_unwind().await;
    store.close().await;
    if let Cleanup::Postgres { admin_url, schema } = cleanup {
        let mut admin = sqlx::PgConnection::connect(&admin_url).await.expect("connect to the test PostgreSQL");
        admin.execute(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE"))).await.expect("drop schema");
    }
    if let Err(panic) = outcome {
        eprintln!("failed on the {backend} backend");
        std::panic::resume_unwind(panic);
    }
}

/// Run `case` against SQLite, then PostgreSQL if configured.
async fn on_each_backend<F, Fut>(case: F)
where
    F: Fn(Ctx) -> Fut,
    Fut: Future<Output = ()>,
{
    let (ctx, cleanup) = sqlite_backend().await;
    run_case(ctx, cleanup, &case).await;
    if let Some((ctx, cleanup)) = postgres_backend().await {
        run_case(ctx, cleanup, &case).await;
    }
}

fn new_turn(session: &str, question: &str) -> NewTurn {
    NewTurn {
        session_id: session.to_string(),
        question: question.to_string(),
        status: "executed".to_string(),
        ..NewTurn::default()
    }
}

async fn append(store: &Store, session: &str, question: &str) -> Turn {
    store.append_turn(new_turn(session, question)).await.unwrap_or_else(|e| panic!("append to {session}: {e}"))
}

fn seqs(turns: &[Turn]) -> Vec<i64> {
    turns.iter().map(|t| t.seq).collect()
}

fn is_invalid<T: std::fmt::Debug>(result: Result<T, StoreError>) -> bool {
    matches!(result, Err(StoreError::InvalidInput(_)))
}

#[tokio::test]
async fn recent_turns_are_the_last_ones_oldest_first() {
    on_each_backend(|Ctx { store, .. }| async move {
        let full = NewTurn {
            session_id: "chat-1".into(),
            question: "How many orders were placed in 2024?".into(),
            description: Some("Count orders with a 2024 order date".into()),
            sql: Some("SELECT COUNT(*) FROM orders WHERE order_date >= '2024-01-01'".into()),
            dialect: Some("postgres".into()),
            status: "executed".into(),
            result_summary: Some("1 row: count = 4211".into()),
            row_count: Some(1),
            error: None,
            input_tokens: 1234,
            output_tokens: 56,
            timings_ms: json!({"generate": 812, "validate": 1, "execute": 14.5}),
            attempts: json!([{"sql": "SELECT 1", "error": "no such column: x"}, {"sql": "SELECT COUNT(*) FROM orders"}]),
        };
        let first = store.append_turn(full.clone()).await.expect("append");
        assert_eq!(first.seq, 1);
        assert_eq!(first.id.len(), 36, "a UUID: {}", first.id);
        for i in 2..=5 {
            let t = append(&store, "chat-1", &format!("follow-up {i}")).await;
            assert_eq!(t.seq, i);
        }
        append(&store, "chat-2", "another chat").await;

        let last3 = store.recent_turns("chat-1", 3).await.expect("recent");
        assert_eq!(seqs(&last3), [3, 4, 5]);
        assert_eq!(last3[2].question, "follow-up 5");
        assert!(last3.iter().all(|t| t.session_id == "chat-1"));

        let all = store.recent_turns("chat-1", 100).await.expect("recent");
        assert_eq!(seqs(&all), [1, 2, 3, 4, 5]);
        // Every field reads back exactly as written (timestamps included).
        assert_eq!(all[0], first);
        assert_eq!(all[0].timings_ms, full.timings_ms);
        assert_eq!(all[0].attempts, full.attempts);
        assert_eq!(all[1].description, None);
        assert_eq!(all[1].timings_ms, json!({}));
        assert_eq!(all[1].attempts, json!([]));
        assert!(all.windows(2).all(|w| w[0].created_at <= w[1].created_at));

        assert!(store.recent_turns("chat-1", 0).await.expect("recent").is_empty());
        assert!(store.recent_turns("no-such-chat", 5).await.expect("recent").is_empty());
        assert_eq!(seqs(&store.recent_turns("chat-2", 5).await.expect("recent")), [1]);
    })
    .await;
}

#[tokio::test]
async fn history_pages_carry_the_total() {
    on_each_backend(|Ctx { store, .. }| async move {
        for i in 1..=7 {
            append(&store, "h", &format!("q{i}")).await;
        }
        append(&store, "other", "not counted").await;

        let page = store.history("h", 3, 0).await.expect("history");
        assert_eq!((seqs(&page.items), page.total, page.limit, page.offset), (vec![1, 2, 3], 7, 3, 0));
        let page = store.history("h", 3, 3).await.expect("history");
        assert_eq!((seqs(&page.items), page.total), (vec![4, 5, 6], 7));
        let page = store.history("h", 3, 6).await.expect("history");
        assert_eq!((seqs(&page.items), page.total), (vec![7], 7));
        assert_eq!(page.items[0].question, "q7");
        let page = store.history("h", 3, 10).await.expect("history");
        assert_eq!((page.items.len(), page.total), (0, 7));
        let page = store.history("h", usize::MAX, 0).await.expect("history with a huge limit");
        assert_eq!(page.items.len(), 7);
        let page = store.history("nobody", 10, 0).await.expect("history");
        assert_eq!((page.items.len(), page.total), (0, 0));
    })
    .await;
}

#[tokio::test]
async fn sessions_are_listed_most_recently_active_first() {
    on_each_backend(|Ctx { store, .. }| async move {
        let long_question = format!("Please   list\n every {} customer", "very ".repeat(30));
        for (session, question) in [("a", long_question.as_str()), ("b", "second"), ("c", "third")] {
            append(&store, session, question).await;
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        append(&store, "a", "a follow-up").await;

        let page = store.list_sessions(10, 0).await.expect("list");
        let ids: Vec<&str> = page.items.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, ["a", "c", "b"]);
        assert_eq!(page.total, 3);
        let a = &page.items[0];
        assert_eq!(a.turn_count, 2);
        assert!(a.updated_at > a.created_at);
        assert_eq!(a.title.chars().count(), 80, "{}", a.title);
        assert!(a.title.starts_with("Please list every very very"), "{}", a.title);
        assert!(a.title.ends_with('…'), "{}", a.title);
        assert_eq!(page.items[1].title, "third");
        assert_eq!(page.items[1].turn_count, 1);

        let page = store.list_sessions(2, 1).await.expect("list");
        let ids: Vec<&str> = page.items.iter().map(|s| s.id.as_str()).collect();
        assert_eq!((ids, page.total, page.limit, page.offset), (vec!["c", "b"], 3, 2, 1));
        let page = store.list_sessions(2, 3).await.expect("list");
        assert_eq!((page.items.len(), page.total), (0, 3));
    })
    .await;
}

#[tokio::test]
async fn deleting_a_session_removes_its_turns() {
    on_each_backend(|Ctx { store, .. }| async move {
        for i in 1..=3 {
            append(&store, "gone", &format!("q{i}")).await;
        }
        append(&store, "kept", "stays").await;

        assert!(store.delete_session("gone").await.expect("delete"));
        assert!(store.recent_turns("gone", 10).await.expect("recent").is_empty());
        assert_eq!(store.history("gone", 10, 0).await.expect("history").total, 0);
        let listed = store.list_sessions(10, 0).await.expect("list");
        assert_eq!(listed.total, 1);
        assert_eq!(listed.items[0].id, "kept");
        assert_eq!(store.history("kept", 10, 0).await.expect("history").total, 1);

        assert!(!store.delete_session("gone").await.expect("delete again"));
        assert!(!store.delete_session("never-existed").await.expect("delete unknown"));

        // The id can be used again and starts over.
        assert_eq!(append(&store, "gone", "back again").await.seq, 1);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_appends_get_consecutive_seq() {
    on_each_backend(|Ctx { store, url }| async move {
        // A second store on the same database stands for a second replica.
        let other = Store::open(&url).await.expect("second store");
        const N: i64 = 32;
        let tasks: Vec<_> = (0..N)
            .map(|i| {
                let store = if i % 2 == 0 { store.clone() } else { other.clone() };
                tokio::spawn(async move {
                    let a = store.append_turn(new_turn("busy", &format!("q{i}"))).await;
                    let b = store.append_turn(new_turn(&format!("solo-{i}"), "alone")).await;
                    (a, b)
                })
            })
            .collect();
        let mut got = Vec::new();
        for task in tasks {
            let (a, b) = task.await.expect("task");
            got.push(a.expect("append to the shared session").seq);
            assert_eq!(b.expect("append to an own session").seq, 1);
        }
        got.sort_unstable();
        assert_eq!(got, (1..=N).collect::<Vec<_>>());

        let stored = store.history("busy", 100, 0).await.expect("history");
        assert_eq!(stored.total, N);
        assert_eq!(seqs(&stored.items), (1..=N).collect::<Vec<_>>());
        let mut questions: Vec<String> = stored.items.iter().map(|t| t.question.clone()).collect();
        questions.sort();
        let mut expected: Vec<String> = (0..N).map(|i| format!("q{i}")).collect();
        expected.sort();
        assert_eq!(questions, expected);
        let listed = store.list_sessions(100, 0).await.expect("list");
        assert_eq!(listed.total, N + 1);
        let busy = listed.items.iter().find(|s| s.id == "busy").expect("busy session listed");
        assert_eq!(busy.turn_count, N);
        other.close().await;
    })
    .await;
}

#[tokio::test]
async fn invalid_session_ids_are_refused() {
    on_each_backend(|Ctx { store, .. }| async move {
        let too_long = "x".repeat(MAX_SESSION_ID_CHARS + 1);
        for bad in ["", too_long.as_str(), "nul\0inside"] {
            assert!(is_invalid(store.append_turn(new_turn(bad, "q")).await), "append {bad:?}");
            assert!(is_invalid(store.recent_turns(bad, 5).await), "recent {bad:?}");
            assert!(is_invalid(store.history(bad, 5, 0).await), "history {bad:?}");
            assert!(is_invalid(store.delete_session(bad).await), "delete {bad:?}");
        }
        // The limit counts characters, not bytes.
        let widest = "é".repeat(MAX_SESSION_ID_CHARS);
        assert_eq!(append(&store, &widest, "fits").await.seq, 1);
        assert_eq!(store.recent_turns(&widest, 5).await.expect("recent").len(), 1);

        // NUL in any text is refused on both backends alike (PostgreSQL cannot store it).
        let mut turn = new_turn("ok", "q");
        turn.sql = Some("SELECT '\0'".into());
        assert!(is_invalid(store.append_turn(turn).await));
        let mut turn = new_turn("ok", "q");
        turn.attempts = json!([{"sql": "\0"}]);
        assert!(is_invalid(store.append_turn(turn).await));
        // Nothing was written by the refused appends.
        assert_eq!(store.list_sessions(10, 0).await.expect("list").total, 1);
    })
    .await;
}

/// How many migrations the database has recorded as applied.
async fn applied_migrations(url: &str) -> i64 {
    let sql = "SELECT COUNT(*) FROM _sqlx_migrations WHERE success";
    if url.starts_with("sqlite") {
        let mut conn = sqlx::SqliteConnection::connect(url).await.expect("raw SQLite connection");
        sqlx::query_scalar(sql).fetch_one(&mut conn).await.expect("count migrations")
    } else {
        let mut conn = sqlx::PgConnection::connect(url).await.expect("raw PostgreSQL connection");
        sqlx::query_scalar(sql).fetch_one(&mut conn).await.expect("count migrations")
    }
}

#[tokio::test]
async fn reopening_keeps_data_and_migrations_run_once() {
    on_each_backend(|Ctx { store, url }| async move {
        let first = append(&store, "persist", "remember me").await;
        store.close().await;
        let applied = applied_migrations(&url).await;
        assert!(applied >= 1);

        let reopened = Store::open(&url).await.expect("reopen");
        let again = Store::open(&url).await.expect("open a third time");
        assert_eq!(applied_migrations(&url).await, applied, "re-running migrations applies nothing");
        assert_eq!(reopened.recent_turns("persist", 5).await.expect("recent"), vec![first]);
        assert_eq!(append(&again, "persist", "second").await.seq, 2);
        reopened.close().await;
        again.close().await;
    })
    .await;
}

#[tokio::test]
async fn in_memory_sqlite_store_works() {
    let store = Store::open("sqlite::memory:").await.expect("open in memory");
    assert_eq!(store.backend(), "sqlite");
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move { store.append_turn(new_turn("mem", &format!("q{i}"))).await })
        })
        .collect();
    for task in tasks {
        task.await.expect("task").expect("append");
    }
    assert_eq!(seqs(&store.recent_turns("mem", 100).await.expect("recent")), (1..=16).collect::<Vec<_>>());
    // A second in-memory store is a different database.
    let other = Store::open("sqlite::memory:").await.expect("open another");
    assert_eq!(other.list_sessions(10, 0).await.expect("list").total, 0);
}

#[tokio::test]
async fn from_env_defaults_to_sqlite_in_a_private_data_dir() {
    if std::env::var_os("QUARRY_METADATA_URL").is_some() {
        eprintln!("skipped: QUARRY_METADATA_URL is set, so from_env would not use the data folder");
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let data_dir = dir.path().join("nested").join("data");
    let store = Store::from_env(&data_dir).await.expect("from_env");
    assert_eq!(store.backend(), "sqlite");
    append(&store, "s", "q").await;
    store.close().await;
    let db_file = data_dir.join("quarry.db");
    assert!(db_file.is_file());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &std::path::Path| std::fs::metadata(p).expect("metadata").permissions().mode() & 0o777;
        assert_eq!(mode(&data_dir), 0o700);
        assert_eq!(mode(&db_file), 0o600);
    }
    let store = Store::open_sqlite(&db_file).await.expect("open the same file by path");
    assert_eq!(store.history("s", 10, 0).await.expect("history").total, 1);
}

#[tokio::test]
async fn open_errors_never_show_the_password() {
    for url in ["mysql://root:Sup3r-Secret@127.0.0.1:3306/meta", "redis://:Sup3r-Secret@127.0.0.1/0", "nonsense"] {
        let err = Store::open(url).await.expect_err(url);
        assert!(matches!(err, StoreError::Open { .. }), "{url}: {err:?}");
        let shown = format!("{err} / {err:?}");
        assert!(!shown.contains("Sup3r-Secret"), "{shown}");
    }
    let Ok(pg) = std::env::var(PG_VAR) else {
        eprintln!("skipped: {PG_VAR} not set (the PostgreSQL half of this test)");
        return;
    };
    // A role that does not exist: the server refuses at once, and the message must not echo the password.
    let mut url = url::Url::parse(&pg).expect("test URL parses");
    url.set_username("quarry_no_such_role").expect("set user");
    url.set_password(Some("Sup3r-Secret")).expect("set password");
    let err = Store::open(url.as_str()).await.expect_err("unknown role");
    let shown = format!("{err} / {err:?}");
    assert!(matches!(err, StoreError::Open { .. }), "{shown}");
    assert!(!shown.contains("Sup3r-Secret"), "{shown}");
    assert!(shown.contains("***"), "the URL is shown redacted: {shown}");
}

#[tokio::test]
async fn pages_and_turns_serialize_for_the_api() {
    let store = Store::open("sqlite::memory:").await.expect("open in memory");
    append(&store, "s", "q").await;
    let page = store.history("s", 10, 0).await.expect("history");
    let value = serde_json::to_value(&page).expect("serialize");
    assert_eq!(value["total"], 1);
    assert_eq!(value["limit"], 10);
    assert_eq!(value["offset"], 0);
    let turn = &value["items"][0];
    assert_eq!(turn["seq"], 1);
    assert_eq!(turn["session_id"], "s");
    assert!(turn["created_at"].as_str().is_some_and(|t| t.ends_with('Z')), "{turn}");
    let sessions = serde_json::to_value(store.list_sessions(10, 0).await.expect("list")).expect("serialize");
    assert_eq!(sessions["items"][0]["title"], "q");
}

#[tokio::test]
async fn deleting_a_user_deletes_their_chat_sessions_only() {
    use quarry::auth::Role;
    use quarry::store::chat::ChatExtras;
    use quarry::store::users::{NewUser, UserDeletion};

    on_each_backend(|Ctx { store, .. }| async move {
        let new_user = |email: &str, role: Role| NewUser {
            email: email.to_string(),
            display_name: None,
            password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA".to_string(),
            role,
        };
        let admin = store.register_first_user(new_user("admin@example.com", Role::Admin)).await.expect("admin");
        let admin = admin.expect("first user").user();
        let bob = store.create_user(new_user("bob@example.com", Role::Member)).await.expect("bob").expect("created");
        let bob = bob.user();
        for (user, session) in [(&bob.id, "bob-1"), (&bob.id, "bob-2"), (&admin.id, "admin-1")] {
            let extras = ChatExtras { user_id: user.clone(), connection_id: "conn".into(), ..ChatExtras::default() };
            store.append_chat_turn(new_turn(session, "How many orders?"), extras).await.expect("turn");
        }
        assert!(matches!(store.delete_user(&bob.id).await.expect("delete"), UserDeletion::Deleted));
        for gone in ["bob-1", "bob-2"] {
            assert!(store.chat_session(gone).await.expect("lookup").is_none(), "{gone} is deleted");
            assert!(store.recent_turns(gone, 10).await.expect("turns").is_empty(), "{gone}'s turns are deleted");
        }
        assert!(store.chat_session("admin-1").await.expect("lookup").is_some(), "other users keep theirs");
        assert_eq!(store.recent_turns("admin-1", 10).await.expect("turns").len(), 1);
    })
    .await;
}
