//! `db` against real databases: value mapping, read-only refusals, statement timeouts, row caps.
//!
//! PostgreSQL and MariaDB/MySQL tests read `QUARRY_TEST_POSTGRES_URL` / `QUARRY_TEST_MYSQL_URL`
//! (e.g. `postgres://postgres@127.0.0.1:5432/test`, `mysql://root@127.0.0.1:3306/test`) and
//! skip, saying so, when unset. Each test works in its own schema (PostgreSQL) or database
//! (MySQL) named `quarry_t_<random>`, dropped at the end, so tests run in parallel. SQLite tests
//! use files in temporary directories and always run.

use std::time::{Duration, Instant};

use quarry::db::{ConnectOptions, Database, DatabaseUrl, DbError, ExecOptions, Flavor};
use serde_json::{Value, json};
use sqlx::{Connection, Executor};

fn unique(prefix: &str) -> String {
    format!("{prefix}{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
}

fn opts(timeout_ms: u64, max_rows: usize) -> ExecOptions {
    ExecOptions { statement_timeout: Duration::from_millis(timeout_ms), max_rows }
}

/// Run `sql` and return its single row as a column-name → value object.
async fn one_row(db: &Database, sql: &str) -> serde_json::Map<String, Value> {
    let rs = db.execute_read_only(sql, &ExecOptions::default()).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    assert_eq!(rs.row_count, 1, "{sql}");
    rs.columns.iter().map(|c| c.name.clone()).zip(rs.rows[0].iter().cloned()).collect()
}

fn assert_row(actual: &serde_json::Map<String, Value>, expected: Value) {
    for (k, v) in expected.as_object().expect("object") {
        assert_eq!(actual.get(k), Some(v), "column {k}");
    }
}

// ---------------------------------------------------------------- PostgreSQL

struct Pg {
    admin: sqlx::PgConnection,
    db: Database,
    schema: String,
}

async fn pg() -> Option<Pg> {
    let Ok(url) = std::env::var("QUARRY_TEST_POSTGRES_URL") else {
        eprintln!("skipped: QUARRY_TEST_POSTGRES_URL not set");
        return None;
    };
    let mut admin = sqlx::PgConnection::connect(&url).await.expect("admin connection");
    let schema = unique("quarry_t_");
    admin.execute(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}"))).await.expect("create schema");
    let db = Database::connect(&DatabaseUrl::parse(&url).unwrap(), &ConnectOptions::default()).await.expect("connect");
    Some(Pg { admin, db, schema })
}

impl Pg {
    async fn exec(&mut self, sql: &str) {
        let sql = sql.replace("$S", &self.schema);
        self.admin.execute(sqlx::AssertSqlSafe(sql.clone())).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    async fn drop(mut self) {
        let s = self.schema.clone();
        self.exec(&format!("DROP SCHEMA {s} CASCADE")).await;
        self.db.close().await;
    }
}

#[tokio::test]
async fn pg_value_types() {
    let Some(mut fx) = pg().await else { return };
    fx.exec("CREATE TYPE $S.mood AS ENUM ('happy', 'sad')").await;
    let sql = format!(
        r#"SELECT 42::int2 AS i2, 2147483647::int4 AS i4, 9223372036854775807::int8 AS i8,
        1.5::float4 AS f4, 0.1::float4 AS f4b, 0.1::float8 AS f8, 'NaN'::float8 AS nan, '-Infinity'::float4 AS ninf,
        12.50::numeric(10,2) AS n1, 12345678901234567890.123456789::numeric AS n2, '-0.0001'::numeric AS n3,
        'NaN'::numeric AS n4, 0::numeric AS n5,
        true AS t, false AS f, 'hi'::text AS txt, 'ab'::char(3) AS ch, 'x'::varchar AS vc,
        '2024-03-01'::date AS d, '2024-03-01 12:30:05.123'::timestamp AS ts,
        '2024-03-01 12:30:05+02'::timestamptz AS tstz, '12:30:00'::time AS tm, '12:30:00.5+02'::timetz AS tmtz,
        '1 year 2 mons 3 days 04:05:06.5'::interval AS iv, 'infinity'::date AS dinf, '-infinity'::timestamp AS tsninf,
        '{{"a":[1,2.5,null]}}'::json AS j, '{{"b":true}}'::jsonb AS jb, '\xdeadbeef'::bytea AS by,
        'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid AS u, ARRAY[1,2,NULL]::int[] AS arr,
        ARRAY[['a','b'],['c','d']]::text[] AS arr2, '{{}}'::int[] AS arr0, '192.168.0.1'::inet AS ip, '10.0.0.0/8'::cidr AS net,
        'happy'::{s}.mood AS mood, NULL::int AS nul, B'101' AS bits"#,
        s = fx.schema
    );
    let row = one_row(&fx.db, &sql).await;
    assert_row(
        &row,
        json!({
            "i2": 42, "i4": 2147483647, "i8": 9223372036854775807i64,
            "f4": 1.5, "f4b": 0.1, "f8": 0.1, "nan": "NaN", "ninf": "-Infinity",
            "n1": "12.50", "n2": "12345678901234567890.123456789", "n3": "-0.0001", "n4": "NaN", "n5": "0",
            "t": true, "f": false, "txt": "hi", "ch": "ab ", "vc": "x",
            "d": "2024-03-01", "ts": "2024-03-01T12:30:05.123", "tstz": "2024-03-01T10:30:05Z",
            "tm": "12:30:00", "tmtz": "12:30:00.500+02:00", "iv": "P1Y2M3DT4H5M6.5S",
            "dinf": "infinity", "tsninf": "-infinity",
            "j": {"a": [1, 2.5, null]}, "jb": {"b": true}, "by": "3q2+7w==",
            "u": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "arr": [1, 2, null], "arr2": [["a", "b"], ["c", "d"]],
            "arr0": [], "ip": "192.168.0.1", "net": "10.0.0.0/8", "mood": "happy", "nul": null, "bits": "101"
        }),
    );
    fx.drop().await;
}

#[tokio::test]
async fn pg_read_only_refusals() {
    let Some(mut fx) = pg().await else { return };
    fx.exec("CREATE TABLE $S.t (id serial PRIMARY KEY, v int)").await;
    fx.exec("INSERT INTO $S.t (v) VALUES (1)").await;
    let s = fx.schema.clone();
    for sql in [
        format!("INSERT INTO {s}.t (v) VALUES (2)"),
        format!("UPDATE {s}.t SET v = 3"),
        format!("DELETE FROM {s}.t"),
        format!("SELECT nextval('{s}.t_id_seq')"),
        "CREATE TEMP TABLE tmp_x (a int)".to_string(),
        format!("CREATE TABLE {s}.t2 (a int)"),
        format!("WITH x AS (INSERT INTO {s}.t (v) VALUES (9) RETURNING 1) SELECT * FROM x"),
    ] {
        match fx.db.execute_read_only(&sql, &ExecOptions::default()).await {
            Err(DbError::ReadOnly { .. }) => {}
            other => panic!("{sql}: expected a read-only refusal, got {other:?}"),
        }
    }
    // A second statement cannot ride along: the extended protocol takes one.
    let smuggled = fx.db.execute_read_only(&format!("SELECT 1; DELETE FROM {s}.t"), &ExecOptions::default()).await;
    assert!(matches!(smuggled, Err(DbError::Sql { .. })), "{smuggled:?}");
    let row = one_row(
        &fx.db,
        &format!("SELECT count(*) AS n, sum(v) AS s, current_setting('transaction_read_only') AS ro FROM {s}.t"),
    )
    .await;
    assert_row(&row, json!({"n": 1, "s": 1, "ro": "on"}));
    fx.drop().await;
}

#[tokio::test]
async fn pg_statement_timeout_and_pool_reuse() {
    let Some(fx) = pg().await else { return };
    let started = Instant::now();
    let r = fx.db.execute_read_only("SELECT pg_sleep(10)", &opts(500, 10)).await;
    let took = started.elapsed();
    assert!(matches!(r, Err(DbError::Timeout { timeout_ms: 500 })), "{r:?}");
    assert!(took < Duration::from_secs(3), "took {took:?}");
    // The connection went back clean: no transaction, no leftover timeout.
    let row = one_row(&fx.db, "SELECT 1 AS one, current_setting('statement_timeout') AS st").await;
    assert_row(&row, json!({"one": 1, "st": "30s"}));
    fx.drop().await;
}

#[tokio::test]
async fn pg_row_cap_and_errors() {
    let Some(fx) = pg().await else { return };
    let rs = fx.db.execute_read_only("SELECT g FROM generate_series(1, 100) g", &opts(5000, 10)).await.unwrap();
    assert_eq!((rs.row_count, rs.truncated, rs.rows[9][0].clone()), (10, true, json!(10)));
    let rs = fx.db.execute_read_only("SELECT g FROM generate_series(1, 10) g", &opts(5000, 10)).await.unwrap();
    assert_eq!((rs.row_count, rs.truncated), (10, false));
    let rs = fx.db.execute_read_only("SELECT 1 AS x, 'a'::text AS y WHERE false", &opts(5000, 10)).await.unwrap();
    assert_eq!(rs.row_count, 0);
    assert_eq!(
        rs.columns.iter().map(|c| (c.name.as_str(), c.type_name.as_str())).collect::<Vec<_>>(),
        vec![("x", "INT4"), ("y", "TEXT")]
    );
    match fx.db.execute_read_only("SELECT nope FROM nowhere_at_all", &opts(5000, 10)).await {
        Err(DbError::Sql { message, code }) => {
            assert!(message.contains("nowhere_at_all"), "{message}");
            assert_eq!(code.as_deref(), Some("42P01"));
        }
        other => panic!("{other:?}"),
    }
    fx.drop().await;
}

#[tokio::test]
async fn pg_connect_errors_hide_the_password() {
    let Ok(url) = std::env::var("QUARRY_TEST_POSTGRES_URL") else {
        eprintln!("skipped: QUARRY_TEST_POSTGRES_URL not set");
        return;
    };
    let mut u = url::Url::parse(&url).unwrap();
    u.set_path("/quarry_no_such_database_xyz");
    let _ = u.set_password(Some("hunter2-secret"));
    let _ = u.set_username("quarry_no_such_user");
    let err = Database::connect(&DatabaseUrl::parse(u.as_str()).unwrap(), &ConnectOptions::default())
        .await
        .expect_err("must fail");
    let text = format!("{err} {err:?}");
    assert!(matches!(err, DbError::Connect(_)), "{text}");
    assert!(!text.contains("hunter2-secret"), "{text}");
}

// ---------------------------------------------------------------- MySQL / MariaDB

struct My {
    admin: sqlx::MySqlConnection,
    db: Database,
    name: String,
}

async fn my() -> Option<My> {
    let Ok(url) = std::env::var("QUARRY_TEST_MYSQL_URL") else {
        eprintln!("skipped: QUARRY_TEST_MYSQL_URL not set");
        return None;
    };
    let mut admin = sqlx::MySqlConnection::connect(&url).await.expect("admin connection");
    let name = unique("quarry_t_");
    admin.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).await.expect("create database");
    admin.execute(sqlx::AssertSqlSafe(format!("USE {name}"))).await.expect("use");
    let mut u = url::Url::parse(&url).unwrap();
    u.set_path(&format!("/{name}"));
    let db =
        Database::connect(&DatabaseUrl::parse(u.as_str()).unwrap(), &ConnectOptions::default()).await.expect("connect");
    Some(My { admin, db, name })
}

impl My {
    async fn exec(&mut self, sql: &str) {
        self.admin.execute(sqlx::AssertSqlSafe(sql.to_string())).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    async fn drop(mut self) {
        let n = self.name.clone();
        self.exec(&format!("DROP DATABASE {n}")).await;
        self.db.close().await;
    }
}

#[tokio::test]
async fn mysql_value_types() {
    let Some(mut fx) = my().await else { return };
    fx.exec(
        "CREATE TABLE vals (ti TINYINT, b BOOLEAN, si SMALLINT, i INT, bi BIGINT, ubi BIGINT UNSIGNED, f FLOAT, \
         d DOUBLE, dec1 DECIMAL(30,10), dec2 DECIMAL(10,2), dt DATE, dtt DATETIME(6), ts TIMESTAMP(3) NULL, tm TIME, y YEAR, \
         c CHAR(3), vc VARCHAR(10), tx TEXT, bin VARBINARY(4), bl BLOB, bt BIT(8), e ENUM('x','y'), j JSON, n INT, \
         vb VARCHAR(5) COLLATE utf8mb4_bin)",
    )
    .await;
    fx.exec(
        "INSERT INTO vals VALUES (-5, 1, 300, 70000, 9007199254740993, 18446744073709551615, 1.5, 0.1, \
         12345678901234567890.0123456789, -0.50, '2024-03-01', '2024-03-01 12:30:05.123456', '2024-03-01 12:30:05.120', \
         '-838:59:59', 2024, 'ab', 'héllo', 'text', X'DEADBEEF', X'00FF', b'10100101', 'y', '{\"a\": [1, 2]}', NULL, 'Bin')",
    )
    .await;
    let row = one_row(&fx.db, "SELECT * FROM vals").await;
    let mariadb = fx.db.flavor() == Flavor::MariaDB;
    assert_row(
        &row,
        json!({
            "ti": -5, "b": 1, "si": 300, "i": 70000, "bi": 9007199254740993i64, "ubi": 18446744073709551615u64,
            "f": 1.5, "d": 0.1, "dec1": "12345678901234567890.0123456789", "dec2": "-0.50",
            "dt": "2024-03-01", "dtt": "2024-03-01T12:30:05.123456", "ts": "2024-03-01T12:30:05.120Z",
            "tm": "-838:59:59", "y": 2024, "c": "ab", "vc": "héllo", "tx": "text", "bin": "3q2+7w==", "bl": "AP8=",
            "bt": 165, "e": "y", "n": null, "vb": "Bin",
            // MariaDB's JSON is LONGTEXT: it arrives as text. MySQL's is a JSON type.
            "j": if mariadb { json!("{\"a\": [1, 2]}") } else { json!({"a": [1, 2]}) }
        }),
    );
    let row =
        one_row(&fx.db, "SELECT 1 AS one, 1.5 AS dec_lit, COUNT(*) AS cnt, SUM(i) AS total, NULL AS nothing FROM vals")
            .await;
    assert_row(&row, json!({"one": 1, "dec_lit": "1.5", "cnt": 1, "total": "70000", "nothing": null}));
    fx.drop().await;
}

#[tokio::test]
async fn mysql_read_only_refusals() {
    let Some(mut fx) = my().await else { return };
    fx.exec("CREATE TABLE t (id INT AUTO_INCREMENT PRIMARY KEY, v INT)").await;
    fx.exec("INSERT INTO t (v) VALUES (1)").await;
    for sql in [
        "INSERT INTO t (v) VALUES (2)",
        "UPDATE t SET v = 3",
        "DELETE FROM t",
        "CREATE TEMPORARY TABLE tmp_x (a INT)",
        // DDL commits implicitly; the session-level READ ONLY still refuses it.
        "CREATE TABLE t2 (a INT)",
    ] {
        match fx.db.execute_read_only(sql, &ExecOptions::default()).await {
            Err(DbError::ReadOnly { .. }) => {}
            other => panic!("{sql}: expected a read-only refusal, got {other:?}"),
        }
    }
    // Switching read-only off for the session does not carry over to the next execution.
    let _ = fx.db.execute_read_only("SET SESSION transaction_read_only = 0", &ExecOptions::default()).await;
    let r = fx.db.execute_read_only("INSERT INTO t (v) VALUES (4)", &ExecOptions::default()).await;
    assert!(matches!(r, Err(DbError::ReadOnly { .. })), "{r:?}");
    let smuggled = fx.db.execute_read_only("SELECT 1; DELETE FROM t", &ExecOptions::default()).await;
    assert!(matches!(smuggled, Err(DbError::Sql { .. })), "{smuggled:?}");
    let row = one_row(&fx.db, "SELECT COUNT(*) AS n, (SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()) AS tables FROM t").await;
    assert_row(&row, json!({"n": 1, "tables": 1}));
    fx.drop().await;
}

#[tokio::test]
async fn mysql_statement_timeout_and_pool_reuse() {
    let Some(fx) = my().await else { return };
    let started = Instant::now();
    let r = fx.db.execute_read_only("SELECT SLEEP(10)", &opts(1000, 10)).await;
    let took = started.elapsed();
    assert!(matches!(r, Err(DbError::Timeout { timeout_ms: 1000 })), "{r:?}");
    assert!(took < Duration::from_secs(4), "took {took:?}");
    let row = one_row(&fx.db, "SELECT 1 AS one").await;
    assert_row(&row, json!({"one": 1}));
    fx.drop().await;
}

#[tokio::test]
async fn mysql_row_cap() {
    let Some(fx) = my().await else { return };
    let sql = "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 100) SELECT n FROM r";
    let rs = fx.db.execute_read_only(sql, &opts(5000, 10)).await.unwrap();
    assert_eq!((rs.row_count, rs.truncated, rs.rows[9][0].clone()), (10, true, json!(10)));
    let rs = fx.db.execute_read_only("SELECT 1 AS x FROM DUAL WHERE 1 = 0", &opts(5000, 10)).await.unwrap();
    assert_eq!((rs.row_count, rs.columns[0].name.as_str()), (0, "x"));
    let one = one_row(&fx.db, "SELECT 2 AS two").await;
    assert_row(&one, json!({"two": 2}));
    fx.drop().await;
}

// ---------------------------------------------------------------- SQLite

/// A SQLite file written with `setup`, then opened through Quarry (read-only).
async fn sqlite(setup: &str) -> (tempfile::TempDir, Database) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let mut w = sqlx::SqliteConnection::connect_with(
        &sqlx::sqlite::SqliteConnectOptions::new().filename(&path).create_if_missing(true),
    )
    .await
    .unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(setup.to_string())).execute(&mut w).await.unwrap();
    w.close().await.unwrap();
    let url = DatabaseUrl::parse(&format!("sqlite://{}", path.display())).unwrap();
    let db = Database::connect(&url, &ConnectOptions::default()).await.unwrap();
    (dir, db)
}

#[tokio::test]
async fn sqlite_value_types() {
    let (_dir, db) = sqlite(
        "CREATE TABLE v (i INTEGER, big INTEGER, r REAL, inf REAL, t TEXT, b BLOB, n INTEGER, flag BOOLEAN, \
         price DECIMAL(10,2), day DATE, j JSON);
         INSERT INTO v VALUES (42, 9223372036854775807, 0.1, 9e999, 'héllo', X'DEADBEEF', NULL, 1, 12.5, '2024-03-01', '{\"a\":1}');",
    )
    .await;
    let row = one_row(&db, "SELECT * FROM v").await;
    assert_row(
        &row,
        json!({"i": 42, "big": 9223372036854775807i64, "r": 0.1, "inf": "Infinity", "t": "héllo", "b": "3q2+7w==",
               "n": null, "flag": 1, "price": 12.5, "day": "2024-03-01", "j": "{\"a\":1}"}),
    );
    let row = one_row(&db, "SELECT 1 + 1 AS two, 'x' || 'y' AS xy, NULL AS z").await;
    assert_row(&row, json!({"two": 2, "xy": "xy", "z": null}));
    assert_eq!(db.flavor(), Flavor::SQLite);
}

#[tokio::test]
async fn sqlite_read_only_refusals() {
    let (_dir, db) = sqlite("CREATE TABLE t (id INTEGER PRIMARY KEY, v INT); INSERT INTO t (v) VALUES (1);").await;
    for sql in [
        "INSERT INTO t (v) VALUES (2)",
        "UPDATE t SET v = 3",
        "DELETE FROM t",
        "CREATE TEMP TABLE tmp_x (a)",
        "CREATE TABLE t2 (a)",
    ] {
        match db.execute_read_only(sql, &ExecOptions::default()).await {
            Err(DbError::ReadOnly { .. }) => {}
            other => panic!("{sql}: expected a read-only refusal, got {other:?}"),
        }
    }
    let _ = db.execute_read_only("PRAGMA query_only = 0", &ExecOptions::default()).await;
    let r = db.execute_read_only("CREATE TEMP TABLE tmp_y (a)", &ExecOptions::default()).await;
    assert!(matches!(r, Err(DbError::ReadOnly { .. })), "{r:?}");
    let row = one_row(&db, "SELECT count(*) AS n, sum(v) AS s FROM t").await;
    assert_row(&row, json!({"n": 1, "s": 1}));
}

#[tokio::test]
async fn sqlite_runaway_recursive_cte_is_interrupted() {
    let (_dir, db) = sqlite("CREATE TABLE t (a INT);").await;
    let started = Instant::now();
    let r = db
        .execute_read_only(
            "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT count(*) FROM r",
            &opts(500, 10),
        )
        .await;
    let took = started.elapsed();
    assert!(matches!(r, Err(DbError::Timeout { timeout_ms: 500 })), "{r:?}");
    assert!(took < Duration::from_millis(1500), "took {took:?}");
    // The handler is gone and the pool works: a longer query right after is not cut short.
    let rs = db
        .execute_read_only("WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 200000) SELECT count(*) AS c FROM r", &opts(10_000, 10))
        .await
        .unwrap();
    assert_eq!(rs.rows[0][0], json!(200000));
}

#[tokio::test]
async fn sqlite_row_cap() {
    let (_dir, db) = sqlite("CREATE TABLE t (a INT);").await;
    let sql = "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 100) SELECT n FROM r";
    let rs = db.execute_read_only(sql, &opts(5000, 10)).await.unwrap();
    assert_eq!((rs.row_count, rs.truncated, rs.rows[9][0].clone()), (10, true, json!(10)));
    let rs = db.execute_read_only("SELECT a FROM t", &opts(5000, 10)).await.unwrap();
    assert_eq!((rs.row_count, rs.truncated, rs.columns[0].name.as_str()), (0, false, "a"));
}

#[tokio::test]
async fn sqlite_missing_file_is_a_connect_error() {
    let url = DatabaseUrl::parse("sqlite:///nonexistent/dir/quarry.db").unwrap();
    let r = Database::connect(&url, &ConnectOptions::default()).await;
    assert!(matches!(r, Err(DbError::Connect(_))), "{r:?}");
}

/// Not a check: prints the median wall time of `SELECT 1` through `execute_read_only` per
/// engine (transaction set-up and tear-down included). `cargo test --test db -- --ignored --nocapture`.
#[tokio::test]
#[ignore]
async fn measure_execute_overhead() {
    async fn median(db: &Database) -> Duration {
        let mut times = Vec::new();
        for _ in 0..200 {
            let t = Instant::now();
            db.execute_read_only("SELECT 1 AS one", &ExecOptions::default()).await.unwrap();
            times.push(t.elapsed());
        }
        times.sort();
        times[times.len() / 2]
    }
    if let Some(fx) = pg().await {
        eprintln!("postgres: median {:?}", median(&fx.db).await);
        fx.drop().await;
    }
    if let Some(fx) = my().await {
        eprintln!("mysql/mariadb: median {:?}", median(&fx.db).await);
        fx.drop().await;
    }
    let (_dir, db) = sqlite("CREATE TABLE t (a INT);").await;
    eprintln!("sqlite: median {:?}", median(&db).await);
}

// ---------------------------------------------------------------- cancellation

/// A cancel signal that fires `after` from now.
async fn cancel_after(after: Duration) {
    tokio::time::sleep(after).await;
}

/// Whether `probe` ("does the statement still run on the server?") still says yes when `grace`
/// has passed; false as soon as it says no.
async fn still_running(grace: Duration, mut probe: impl AsyncFnMut() -> bool) -> bool {
    let deadline = Instant::now() + grace;
    loop {
        if !probe().await {
            return false;
        }
        if Instant::now() > deadline {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Run `sql` (which sleeps 30 s) with a statement timeout of a minute and a cancel signal after
/// half a second: it must come back [`DbError::Cancelled`], and `running` (does the server still
/// run it?) must turn false within the grace period, which only a cancellation on the server does.
async fn assert_cancelled_on_the_server(db: &Database, sql: &str, running: impl AsyncFnMut() -> bool) {
    let r = db.execute_read_only_until(sql, &opts(60_000, 10), cancel_after(Duration::from_millis(500))).await;
    assert!(matches!(r, Err(DbError::Cancelled)), "{r:?}");
    assert!(!still_running(Duration::from_secs(10), running).await, "the statement still runs on the server");
    // The pool still answers.
    assert_row(&one_row(db, "SELECT 1 AS one").await, json!({"one": 1}));
}

#[tokio::test]
async fn pg_a_cancelled_statement_stops_on_the_server() {
    let Some(mut fx) = pg().await else { return };
    let marker = unique("cancel_me_");
    let like = format!("%{marker}%");
    let probe = "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE $1 AND pid <> pg_backend_pid()";
    let admin = &mut fx.admin;
    assert_cancelled_on_the_server(&fx.db, &format!("SELECT pg_sleep(30) AS {marker}"), async || {
        let n: i64 = sqlx::query_scalar(probe).bind(&like).fetch_one(&mut *admin).await.expect("pg_stat_activity");
        n > 0
    })
    .await;
    fx.drop().await;
}

#[tokio::test]
async fn mysql_a_cancelled_statement_stops_on_the_server() {
    let Some(mut fx) = my().await else { return };
    let marker = unique("cancel_me_");
    let like = format!("%{marker}%");
    let probe = "SELECT COUNT(*) FROM information_schema.PROCESSLIST \
                 WHERE COMMAND IN ('Query', 'Execute') AND INFO LIKE ? AND ID <> CONNECTION_ID()";
    let admin = &mut fx.admin;
    assert_cancelled_on_the_server(&fx.db, &format!("SELECT SLEEP(30) AS {marker}"), async || {
        let n: i64 = sqlx::query_scalar(probe).bind(&like).fetch_one(&mut *admin).await.expect("processlist");
        n > 0
    })
    .await;
    fx.drop().await;
}

#[tokio::test]
async fn sqlite_a_cancelled_statement_is_interrupted() {
    let (dir, db) = sqlite("CREATE TABLE t (a INT); INSERT INTO t VALUES (1);").await;
    // Reads `t` at every step, so it holds a shared lock on the file for as long as it runs.
    let runaway = "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r, t) SELECT count(*) FROM r";
    let r = db.execute_read_only_until(runaway, &opts(60_000, 10), cancel_after(Duration::from_millis(300))).await;
    assert!(matches!(r, Err(DbError::Cancelled)), "{r:?}");
    // An exclusive lock needs every reader gone: it is granted (within the grace period) only if
    // the statement was interrupted, not left running until its 60 s timeout.
    let mut writer = sqlx::SqliteConnection::connect_with(
        &sqlx::sqlite::SqliteConnectOptions::new()
            .filename(dir.path().join("t.db"))
            .busy_timeout(Duration::from_secs(10)),
    )
    .await
    .expect("writer");
    sqlx::raw_sql("BEGIN EXCLUSIVE; COMMIT").execute(&mut writer).await.expect("the reader stopped");
    // The interrupted connection is not reused; the next statement runs normally.
    let rs = db.execute_read_only("SELECT count(*) AS n FROM t", &opts(10_000, 10)).await.expect("after cancel");
    assert_eq!(rs.rows[0][0], json!(1));
}

#[tokio::test]
async fn a_cancel_signal_after_the_answer_changes_nothing() {
    let (_dir, db) = sqlite("CREATE TABLE t (a INT); INSERT INTO t VALUES (1), (2);").await;
    let rs = db
        .execute_read_only_until("SELECT sum(a) AS s FROM t", &opts(10_000, 10), cancel_after(Duration::from_secs(5)))
        .await
        .expect("answers before the signal");
    assert_eq!(rs.rows[0][0], json!(3));
}
