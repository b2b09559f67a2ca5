//! Quarry's PostgreSQL dialect plugin: what is PostgreSQL-specific (parser dialect, dangerous
//! functions, prompt notes). Validation itself lives in `quarry-dialect-core`.

use quarry_dialect_core::sqlparser::dialect::PostgreSqlDialect;
use quarry_dialect_core::{DeniedFunction as F, Dialect};

/// The PostgreSQL dialect.
pub struct Postgres;

impl Dialect for Postgres {
    type Parser = PostgreSqlDialect;
    const NAME: &'static str = "postgres";
    const ENGINE: &'static str = "PostgreSQL";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str = "PostgreSQL SQL: read-only validation and prompt guidance";
    const GUIDANCE: &'static str = GUIDANCE;
    const DENIED_FUNCTIONS: &'static [F] = DENIED;
    const DEFAULT_SCHEMAS: &'static [&'static str] = &["public"];
}

quarry_dialect_core::export_dialect!(Postgres);

const GUIDANCE: &str = r#"
PostgreSQL notes:
- Quote identifiers with double quotes ("Order Date"); unquoted names fold to lower case, so mixed-case names must be quoted exactly as defined. Strings use single quotes ('it''s').
- Case-insensitive matching: col ILIKE '%abc%' (LIKE is case-sensitive), or LOWER(col) = LOWER('Abc').
- Current date/time: CURRENT_DATE, NOW(). Truncate with DATE_TRUNC('month', ts); parts with EXTRACT(YEAR FROM ts); format with TO_CHAR(ts, 'YYYY-MM').
- Intervals: ts - INTERVAL '30 days', ts + INTERVAL '1 month'; CURRENT_DATE - 7 is a date; date - date is an integer number of days; AGE(a, b) is an interval.
- Integer division truncates (5 / 2 = 2): write 100.0 * x / y or x::numeric / y. ROUND(v, 2) needs numeric: ROUND(v::numeric, 2).
- Division by zero is an error: divide by NULLIF(y, 0).
- Concatenate with || (NULL if either side is NULL) or CONCAT(a, b) (skips NULLs); STRING_AGG(col, ', ') aggregates text.
- Limit rows with LIMIT n [OFFSET m] (or FETCH FIRST n ROWS ONLY).
- Every selected column that is not aggregated must be in GROUP BY. Conditional aggregates: COUNT(*) FILTER (WHERE status = 'paid').
- NULLs sort last in ascending order and first in descending order; add NULLS LAST when needed.
- Cast with CAST(x AS type) or x::type; '2024-01-31'::date, TO_DATE(text, 'DD/MM/YYYY').
- Send exactly one read-only statement: a single SELECT (or WITH … SELECT).
"#;

/// Functions with side effects or reach beyond the tables: files, sessions, locks, sequences,
/// server administration, and functions that run SQL given as text (which would escape every
/// other check).
#[rustfmt::skip]
const DENIED: &[F] = &[
    F::new("pg_sleep*", "it sleeps, tying up a connection"),
    F::new("pg_read_file", "it reads files on the database server"),
    F::new("pg_read_binary_file", "it reads files on the database server"),
    F::new("pg_ls_*", "it lists directories on the database server"),
    F::new("pg_stat_file", "it inspects files on the database server"),
    F::new("pg_file_*", "it writes or removes files on the database server"),
    F::new("pg_logdir_ls", "it lists directories on the database server"),
    F::new("lo_*", "it reads or writes large objects and server files"),
    F::new("loread", "it reads large objects"),
    F::new("lowrite", "it writes large objects"),
    F::new("dblink*", "it connects to other databases"),
    F::new("set_config", "it changes server settings"),
    F::new("pg_terminate_backend", "it ends other sessions"),
    F::new("pg_cancel_backend", "it cancels other sessions' queries"),
    F::new("pg_signal_backend", "it signals other sessions"),
    F::new("pg_reload_conf", "it administers the server"),
    F::new("pg_rotate_logfile*", "it administers the server"),
    F::new("pg_advisory_*", "it takes advisory locks"),
    F::new("pg_try_advisory_*", "it takes advisory locks"),
    F::new("nextval", "it advances a sequence, which is a write"),
    F::new("setval", "it changes a sequence, which is a write"),
    F::new("txid_current", "it assigns a transaction id, which is a write"),
    F::new("pg_current_xact_id", "it assigns a transaction id, which is a write"),
    F::new("pg_switch_wal", "it administers the server"),
    F::new("pg_switch_xlog", "it administers the server"),
    F::new("pg_create_*", "it creates restore points or replication slots"),
    F::new("pg_drop_replication_slot", "it changes replication state"),
    F::new("pg_copy_logical_replication_slot", "it changes replication state"),
    F::new("pg_copy_physical_replication_slot", "it changes replication state"),
    F::new("pg_replication_*", "it changes replication state"),
    F::new("pg_logical_*", "it consumes replication changes or writes to the WAL"),
    F::new("pg_promote", "it administers the server"),
    F::new("pg_wal_replay_*", "it administers the server"),
    F::new("pg_backup_*", "it administers the server"),
    F::new("pg_start_backup", "it administers the server"),
    F::new("pg_stop_backup", "it administers the server"),
    F::new("pg_log_*", "it administers the server"),
    F::new("pg_stat_reset*", "it resets statistics"),
    F::new("pg_stat_statements_reset", "it resets statistics"),
    F::new("pg_set_*", "it changes planner statistics"),
    F::new("pg_clear_*", "it changes planner statistics"),
    F::new("pg_restore_*", "it changes planner statistics"),
    F::new("pg_import_system_collations", "it changes the catalog"),
    F::new("pg_truncate_visibility_map", "it changes storage"),
    F::new("pg_notify", "it sends notifications to other sessions"),
    F::new("binary_upgrade_*", "it changes the catalog"),
    F::new("query_to_xml*", "it runs SQL given as text"),
    F::new("cursor_to_xml*", "it reads from a cursor"),
    F::new("table_to_xml*", "it reads a whole table named in text, bypassing the table checks"),
    F::new("schema_to_xml*", "it reads whole schemas, bypassing the table checks"),
    F::new("database_to_xml*", "it reads the whole database, bypassing the table checks"),
    F::new("ts_stat", "it runs SQL given as text"),
    F::new("ts_rewrite", "it can run SQL given as text"),
];
