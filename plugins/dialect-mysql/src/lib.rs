//! Quarry's MySQL dialect plugin: what is MySQL-specific (parser dialect, dangerous functions,
//! MariaDB's executable comments, prompt notes). Validation itself lives in
//! `quarry-dialect-core`.

use quarry_dialect_core::sqlparser::dialect::MySqlDialect;
use quarry_dialect_core::{DeniedFunction as F, Dialect};

/// The MySQL dialect (also used for MariaDB).
pub struct MySql;

impl Dialect for MySql {
    type Parser = MySqlDialect;
    const NAME: &'static str = "mysql";
    const ENGINE: &'static str = "MySQL";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str = "MySQL SQL: read-only validation and prompt guidance";
    const GUIDANCE: &'static str = GUIDANCE;
    const DENIED_FUNCTIONS: &'static [F] = DENIED;
    // `sqlparser` reads `/*! … */` as SQL (MySQL executes it) but `/*M! … */` as a comment,
    // which MariaDB executes.
    const EXECUTABLE_COMMENTS: &'static [(&'static str, &'static str)] = &[("M!", "MariaDB")];
}

quarry_dialect_core::export_dialect!(MySql);

const GUIDANCE: &str = r#"
MySQL notes:
- Quote identifiers with backticks (`order date`); strings with single quotes. Double quotes make strings, not names (unless ANSI_QUOTES is set), so never use them for names.
- Case-insensitive matching: the usual collations already make = and LIKE ignore case; to be explicit use LOWER(col) LIKE LOWER('%abc%'). There is no ILIKE.
- Current date/time: CURDATE(), NOW(). Parts with YEAR(d), MONTH(d), EXTRACT(MONTH FROM d); a timestamp's day with DATE(ts); month truncation/format with DATE_FORMAT(d, '%Y-%m-01') or DATE_FORMAT(d, '%Y-%m').
- Intervals: DATE_SUB(CURDATE(), INTERVAL 30 DAY), d + INTERVAL 1 MONTH; DATEDIFF(a, b) gives days, TIMESTAMPDIFF(MONTH, a, b) other units.
- / always gives a decimal (5 / 2 = 2.5000); DIV is integer division. Division by zero gives NULL.
- Concatenate with CONCAT(a, b) (NULL if any argument is NULL) or CONCAT_WS(', ', a, b); || means OR, not concatenation. GROUP_CONCAT(col SEPARATOR ', ') aggregates text.
- Limit rows with LIMIT n or LIMIT n OFFSET m (LIMIT m, n means offset m, count n).
- Selected columns must be aggregated or in GROUP BY (ONLY_FULL_GROUP_BY); ANY_VALUE(col) picks one.
- There is no FULL OUTER JOIN: combine a LEFT JOIN and a RIGHT JOIN with UNION.
- Booleans are 1/0; IF(cond, a, b) and IFNULL(a, b) exist besides CASE and COALESCE.
- Cast with CAST(x AS DECIMAL(10,2)), CAST(x AS SIGNED), CAST(x AS CHAR); parse dates with STR_TO_DATE('31/01/2024', '%d/%m/%Y').
- WITH (common table expressions) and window functions need MySQL 8.0 or later.
- Send exactly one read-only statement: a single SELECT (or WITH … SELECT).
"#;

/// Functions with side effects or reach beyond the tables: sleeping, files, locks, replication
/// waits, user-defined system calls, and server administration.
#[rustfmt::skip]
const DENIED: &[F] = &[
    F::new("sleep", "it sleeps, tying up a connection"),
    F::new("benchmark", "it burns CPU on purpose"),
    F::new("load_file", "it reads files on the database server"),
    F::new("get_lock", "it takes named locks"),
    F::new("release_lock", "it releases named locks"),
    F::new("release_all_locks", "it releases named locks"),
    F::new("is_free_lock", "it inspects named locks"),
    F::new("is_used_lock", "it inspects named locks"),
    F::new("service_get_*", "it takes locking-service locks"),
    F::new("service_release_locks", "it releases locking-service locks"),
    F::new("master_pos_wait", "it waits for replication"),
    F::new("source_pos_wait", "it waits for replication"),
    F::new("master_gtid_wait", "it waits for replication"),
    F::new("wait_for_executed_gtid_set", "it waits for replication"),
    F::new("wait_until_sql_thread_after_gtids", "it waits for replication"),
    F::new("sys_exec", "it runs operating-system commands"),
    F::new("sys_eval", "it runs operating-system commands"),
    F::new("sys_get", "it reads the server's environment"),
    F::new("sys_set", "it changes the server's environment"),
    F::new("asynchronous_connection_failover_*", "it changes replication settings"),
    F::new("group_replication_*", "it administers replication"),
    F::new("audit_log_*", "it administers the audit log"),
    F::new("keyring_*", "it reads or changes the keyring"),
    F::new("version_tokens_*", "it changes server version tokens"),
    F::new("mysql_firewall_*", "it administers the firewall"),
    F::new("set_firewall_*", "it administers the firewall"),
];
