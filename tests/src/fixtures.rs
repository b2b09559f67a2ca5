//! Test databases: a small shop (customers and their orders) on SQLite, PostgreSQL or
//! MariaDB/MySQL, created fresh for one test and dropped after it.
//!
//! - SQLite: a file in a temporary folder, filled through a separate writable connection (Quarry
//!   opens SQLite read-only).
//! - PostgreSQL (`QUARRY_TEST_POSTGRES_URL`, e.g. `postgres://postgres@127.0.0.1:5432/test`) and
//!   MariaDB/MySQL (`QUARRY_TEST_MYSQL_URL`, e.g. `mysql://root@127.0.0.1:3306/test`): a new
//!   database `qe2e_<random>` created through that admin URL; the server gets a URL for the new
//!   database. With [`Fixture::with_read_only_user`] it connects as a new role that may only
//!   read, with a random password (which the secrets tests look for in responses and logs).
//!
//! When a backend's variable is unset, [`Fixture::create`] prints
//! `skipped: QUARRY_TEST_… not set` and returns `None`, and the test passes.

use serde_json::Value;
use sqlx::{AssertSqlSafe, MySqlPool, PgPool, Row, SqlitePool};

/// The database engines a scenario can run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file.
    Sqlite,
    /// PostgreSQL.
    Postgres,
    /// MariaDB or MySQL.
    MySql,
}

impl Backend {
    /// The environment variable with the admin URL, if this backend needs a server.
    pub fn env_var(self) -> Option<&'static str> {
        match self {
            Backend::Sqlite => None,
            Backend::Postgres => Some("QUARRY_TEST_POSTGRES_URL"),
            Backend::MySql => Some("QUARRY_TEST_MYSQL_URL"),
        }
    }
}

/// The customers in every fixture: `(id, name, city)`.
pub const CUSTOMERS: &[(i64, &str, &str)] =
    &[(1, "Alice", "Paris"), (2, "Bob", "Berlin"), (3, "Chloé", "Paris"), (4, "Dmitri", "Oslo"), (5, "Emma", "Berlin")];

/// The orders in every fixture: `(id, customer_id, total_cents, status)`.
pub const ORDERS: &[(i64, i64, i64, &str)] = &[
    (1, 1, 1250, "paid"),
    (2, 1, 3000, "paid"),
    (3, 2, 990, "cancelled"),
    (4, 3, 4500, "paid"),
    (5, 3, 1500, "refunded"),
    (6, 4, 2000, "paid"),
    (7, 5, 700, "cancelled"),
    (8, 5, 5200, "paid"),
];

/// A question every fixture can answer, used throughout the tests.
pub const PARIS_QUESTION: &str = "Which customers live in Paris?";
/// The model's plan for [`PARIS_QUESTION`].
pub const PARIS_PLAN: &str = "List the customers who live in Paris";
/// SQL answering [`PARIS_QUESTION`] on every engine.
pub const PARIS_SQL: &str = "SELECT name FROM customers WHERE city = 'Paris' ORDER BY name";

/// The rows [`PARIS_SQL`] returns, as the `/inference` routes render them.
pub fn paris_rows() -> Value {
    serde_json::json!([{"name": "Alice"}, {"name": "Chloé"}])
}

/// The schema, in SQL all three engines accept.
const SCHEMA: &[&str] = &[
    "CREATE TABLE customers (id INTEGER PRIMARY KEY, name VARCHAR(100) NOT NULL, city VARCHAR(100) NOT NULL)",
    "CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL REFERENCES customers(id), \
     total_cents INTEGER NOT NULL, status VARCHAR(20) NOT NULL)",
];

/// A connection pool to the test database, with full rights (for seeding and for checks).
#[derive(Debug, Clone)]
enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
    MySql(MySqlPool),
}

/// What to drop when the fixture goes away.
#[derive(Debug, Clone)]
enum Cleanup {
    /// The temporary folder goes with the fixture.
    None,
    /// Drop this database (and role, if any) through the admin URL.
    Postgres { admin_url: String, database: String, role: Option<String> },
    /// Drop this database (and user, if any) through the admin URL.
    MySql { admin_url: String, database: String, user: Option<String> },
}

/// One test database with the shop data in it.
#[derive(Debug)]
pub struct Fixture {
    backend: Backend,
    server_url: String,
    password: Option<String>,
    pool: Pool,
    cleanup: Cleanup,
    _dir: Option<tempfile::TempDir>,
}

impl Fixture {
    /// A fresh database on `backend`, or `None` (after printing why) when that backend is not
    /// configured. Panics when it is configured but cannot be set up.
    pub async fn create(backend: Backend) -> Option<Self> {
        Self::build(backend, false).await
    }

    /// Like [`Fixture::create`], but the server connects as a new read-only user with a random
    /// password ([`Fixture::password`]). SQLite has no users: same as `create`.
    pub async fn with_read_only_user(backend: Backend) -> Option<Self> {
        Self::build(backend, true).await
    }

    async fn build(backend: Backend, read_only_user: bool) -> Option<Self> {
        let admin_url = match backend.env_var() {
            None => String::new(),
            Some(var) => match std::env::var(var).ok().filter(|v| !v.trim().is_empty()) {
                Some(url) => url,
                None => {
                    println!("skipped: {var} not set");
                    return None;
                }
            },
        };
        let suffix = uuid::Uuid::new_v4().simple().to_string()[..12].to_string();
        let fixture = match backend {
            Backend::Sqlite => Self::sqlite().await,
            Backend::Postgres => Self::postgres(&admin_url, &suffix, read_only_user).await,
            Backend::MySql => Self::mysql(&admin_url, &suffix, read_only_user).await,
        };
        fixture.seed().await;
        if let Some(grant) = fixture.grant_statements() {
            for statement in grant {
                fixture.execute(&statement).await;
            }
        }
        Some(fixture)
    }

    async fn sqlite() -> Self {
        use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode};
        let dir = tempfile::Builder::new().prefix("quarry-e2e-db-").tempdir().expect("a temporary folder");
        let path = dir.path().join("shop.db");
        // A rollback journal, not WAL: a read-only reader of a WAL database needs its -shm file.
        let options =
            SqliteConnectOptions::new().filename(&path).create_if_missing(true).journal_mode(SqliteJournalMode::Delete);
        let pool = SqlitePool::connect_with(options).await.expect("create the SQLite fixture");
        Self {
            backend: Backend::Sqlite,
            server_url: format!("sqlite://{}", path.display()),
            password: None,
            pool: Pool::Sqlite(pool),
            cleanup: Cleanup::None,
            _dir: Some(dir),
        }
    }

    async fn postgres(admin_url: &str, suffix: &str, read_only_user: bool) -> Self {
        let database = format!("qe2e_{suffix}");
        let admin = PgPool::connect(admin_url)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to QUARRY_TEST_POSTGRES_URL: {e}"));
        exec(&admin, &format!("CREATE DATABASE {database}")).await;
        let (role, password) = if read_only_user {
            let role = format!("{database}_reader");
            let password = format!("pw-{}", uuid::Uuid::new_v4().simple());
            exec(&admin, &format!("CREATE ROLE {role} LOGIN PASSWORD '{password}'")).await;
            (Some(role), Some(password))
        } else {
            (None, None)
        };
        admin.close().await;
        let own_url = with_database(admin_url, &database, None);
        let server_url = with_database(admin_url, &database, role.as_deref().zip(password.as_deref()));
        let pool = PgPool::connect(&own_url).await.expect("connect to the new PostgreSQL database");
        Self {
            backend: Backend::Postgres,
            server_url,
            password,
            pool: Pool::Postgres(pool),
            cleanup: Cleanup::Postgres { admin_url: admin_url.to_string(), database, role },
            _dir: None,
        }
    }

    async fn mysql(admin_url: &str, suffix: &str, read_only_user: bool) -> Self {
        let database = format!("qe2e_{suffix}");
        let admin = MySqlPool::connect(admin_url)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to QUARRY_TEST_MYSQL_URL: {e}"));
        exec(&admin, &format!("CREATE DATABASE {database} CHARACTER SET utf8mb4")).await;
        let (user, password) = if read_only_user {
            let user = format!("{database}_r");
            let password = format!("pw-{}", uuid::Uuid::new_v4().simple());
            exec(&admin, &format!("CREATE USER '{user}'@'%' IDENTIFIED BY '{password}'")).await;
            exec(&admin, &format!("GRANT SELECT ON {database}.* TO '{user}'@'%'")).await;
            (Some(user), Some(password))
        } else {
            (None, None)
        };
        admin.close().await;
        let own_url = with_database(admin_url, &database, None);
        let server_url = with_database(admin_url, &database, user.as_deref().zip(password.as_deref()));
        let pool = MySqlPool::connect(&own_url).await.expect("connect to the new MySQL database");
        Self {
            backend: Backend::MySql,
            server_url,
            password,
            pool: Pool::MySql(pool),
            cleanup: Cleanup::MySql { admin_url: admin_url.to_string(), database, user },
            _dir: None,
        }
    }

    async fn seed(&self) {
        for statement in SCHEMA {
            self.execute(statement).await;
        }
        let customers: Vec<String> =
            CUSTOMERS.iter().map(|(id, name, city)| format!("({id}, '{name}', '{city}')")).collect();
        self.execute(&format!("INSERT INTO customers (id, name, city) VALUES {}", customers.join(", "))).await;
        let orders: Vec<String> = ORDERS
            .iter()
            .map(|(id, customer, total, status)| format!("({id}, {customer}, {total}, '{status}')"))
            .collect();
        self.execute(&format!(
            "INSERT INTO orders (id, customer_id, total_cents, status) VALUES {}",
            orders.join(", ")
        ))
        .await;
    }

    /// The statements that let the read-only role read (PostgreSQL grants per table).
    fn grant_statements(&self) -> Option<Vec<String>> {
        match &self.cleanup {
            Cleanup::Postgres { role: Some(role), .. } => {
                Some(vec![format!("GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}")])
            }
            _ => None,
        }
    }

    /// Which engine this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The URL the server is given (`QUARRY_DATABASE_URL`); holds the password when there is one.
    pub fn server_url(&self) -> &str {
        &self.server_url
    }

    /// The password in [`Fixture::server_url`], if any.
    pub fn password(&self) -> Option<&str> {
        self.password.as_deref()
    }

    /// SQL Query Engine's `POSTGRES_HOST`, `POSTGRES_PORT`, `POSTGRES_DB`, `POSTGRES_USER` and
    /// `POSTGRES_PASSWORD` for [`Fixture::server_url`] (PostgreSQL only; an empty password when
    /// the URL has none). The fixtures' user names and passwords need no URL escaping.
    pub fn postgres_vars(&self) -> Vec<(&'static str, String)> {
        assert_eq!(self.backend, Backend::Postgres, "POSTGRES_* variables describe a PostgreSQL database");
        let url = url::Url::parse(&self.server_url).expect("the fixture's URL parses");
        vec![
            ("POSTGRES_HOST", url.host_str().unwrap_or("127.0.0.1").to_string()),
            ("POSTGRES_PORT", url.port().unwrap_or(5432).to_string()),
            ("POSTGRES_DB", url.path().trim_start_matches('/').to_string()),
            ("POSTGRES_USER", url.username().to_string()),
            ("POSTGRES_PASSWORD", url.password().unwrap_or_default().to_string()),
        ]
    }

    /// Run a statement with full rights; panics on error.
    pub async fn execute(&self, sql: &str) {
        let result = match &self.pool {
            Pool::Sqlite(p) => sqlx::raw_sql(AssertSqlSafe(sql.to_string())).execute(p).await.map(|_| ()),
            Pool::Postgres(p) => sqlx::raw_sql(AssertSqlSafe(sql.to_string())).execute(p).await.map(|_| ()),
            Pool::MySql(p) => sqlx::raw_sql(AssertSqlSafe(sql.to_string())).execute(p).await.map(|_| ()),
        };
        result.unwrap_or_else(|e| panic!("fixture statement failed: {sql}: {e}"));
    }

    /// The first column of the first row of `sql`, as an integer.
    pub async fn scalar(&self, sql: &str) -> i64 {
        let q = AssertSqlSafe(sql.to_string());
        let result = match &self.pool {
            Pool::Sqlite(p) => sqlx::query(q).fetch_one(p).await.and_then(|r| r.try_get::<i64, _>(0)),
            Pool::Postgres(p) => sqlx::query(q).fetch_one(p).await.and_then(|r| r.try_get::<i64, _>(0)),
            Pool::MySql(p) => sqlx::query(q).fetch_one(p).await.and_then(|r| r.try_get::<i64, _>(0)),
        };
        result.unwrap_or_else(|e| panic!("fixture query failed: {sql}: {e}"))
    }

    /// How many rows `table` has now.
    pub async fn count(&self, table: &str) -> i64 {
        self.scalar(&format!("SELECT COUNT(*) FROM {table}")).await
    }

    /// A pool on the SQLite file (SQLite only): the benchmark times queries on it directly.
    pub fn sqlite_pool(&self) -> Option<&SqlitePool> {
        match &self.pool {
            Pool::Sqlite(p) => Some(p),
            _ => None,
        }
    }

    /// The error text the database gives for a query naming the missing column `nme` of
    /// `customers` (what a repair prompt must carry).
    pub fn unknown_column_error(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite => "no such column: nme",
            Backend::Postgres => "column \"nme\" does not exist",
            Backend::MySql => "Unknown column 'nme'",
        }
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let cleanup = self.cleanup.clone();
        if matches!(cleanup, Cleanup::None) {
            return;
        }
        // Drop runs inside the test's runtime, which cannot be blocked on: use a runtime of our own
        // on a thread of our own.
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
            rt.block_on(drop_database(cleanup));
        })
        .join();
        if dropped.is_err() {
            eprintln!("warning: dropping a test database failed");
        }
    }
}

async fn drop_database(cleanup: Cleanup) {
    match cleanup {
        Cleanup::None => {}
        Cleanup::Postgres { admin_url, database, role } => {
            let Ok(admin) = PgPool::connect(&admin_url).await else { return };
            exec_quiet(&admin, &format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)")).await;
            if let Some(role) = role {
                exec_quiet(&admin, &format!("DROP ROLE IF EXISTS {role}")).await;
            }
            admin.close().await;
        }
        Cleanup::MySql { admin_url, database, user } => {
            let Ok(admin) = MySqlPool::connect(&admin_url).await else { return };
            exec_quiet(&admin, &format!("DROP DATABASE IF EXISTS {database}")).await;
            if let Some(user) = user {
                exec_quiet(&admin, &format!("DROP USER IF EXISTS '{user}'@'%'")).await;
            }
            admin.close().await;
        }
    }
}

async fn exec<'c, DB, E>(executor: E, sql: &str)
where
    DB: sqlx::Database,
    E: sqlx::Executor<'c, Database = DB>,
{
    sqlx::raw_sql(AssertSqlSafe(sql.to_string()))
        .execute(executor)
        .await
        .unwrap_or_else(|e| panic!("fixture statement failed: {sql}: {e}"));
}

async fn exec_quiet<'c, DB, E>(executor: E, sql: &str)
where
    DB: sqlx::Database,
    E: sqlx::Executor<'c, Database = DB>,
{
    if let Err(e) = sqlx::raw_sql(AssertSqlSafe(sql.to_string())).execute(executor).await {
        eprintln!("warning: cleanup statement failed: {sql}: {e}");
    }
}

/// `url` pointing at `database` instead, with `user:password` when given.
fn with_database(url: &str, database: &str, credentials: Option<(&str, &str)>) -> String {
    let mut parsed = url::Url::parse(url).unwrap_or_else(|e| panic!("not a URL ({e}): check QUARRY_TEST_*_URL"));
    parsed.set_path(&format!("/{database}"));
    if let Some((user, password)) = credentials {
        parsed.set_username(user).expect("a URL with a host takes a user name");
        parsed.set_password(Some(password)).expect("a URL with a host takes a password");
    }
    parsed.to_string()
}

/// A JSON value as an integer: a number, or a string of digits (how some drivers render 64-bit
/// and decimal values).
pub fn int_of(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}
