//! Quarry's SQLite dialect plugin: what is SQLite-specific (parser dialect, dangerous functions,
//! prompt notes). Validation itself lives in `quarry-dialect-core`.

use quarry_dialect_core::sqlparser::dialect::SQLiteDialect;
use quarry_dialect_core::{DeniedFunction as F, Dialect};

/// The SQLite dialect.
pub struct Sqlite;

impl Dialect for Sqlite {
    type Parser = SQLiteDialect;
    const NAME: &'static str = "sqlite";
    const ENGINE: &'static str = "SQLite";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str = "SQLite SQL: read-only validation and prompt guidance";
    const GUIDANCE: &'static str = GUIDANCE;
    const DENIED_FUNCTIONS: &'static [F] = DENIED;
    const DEFAULT_SCHEMAS: &'static [&'static str] = &["main"];
}

quarry_dialect_core::export_dialect!(Sqlite);

const GUIDANCE: &str = r#"
SQLite notes:
- Quote identifiers with double quotes ("Order Date"); strings with single quotes. Never put text in double quotes: a double-quoted word that matches no column silently becomes a string.
- Case-insensitive matching: LIKE already ignores case for ASCII letters, = does not: use col = 'x' COLLATE NOCASE or LOWER(col) = LOWER('x'). GLOB is case-sensitive. There is no ILIKE.
- There is no date type: dates are usually TEXT like '2024-01-31 12:00:00'. Use DATE(), DATETIME(), STRFTIME('%Y', d); STRFTIME returns text, so compare with '2024' or CAST(STRFTIME('%Y', d) AS INTEGER). STRFTIME('%Y-%m', d) truncates to the month; DATE('now') is today.
- Intervals are modifiers: DATE('now', '-30 days'), DATE(d, 'start of month', '+1 month'); days between two dates: JULIANDAY(a) - JULIANDAY(b).
- Integer division truncates (5 / 2 = 2): write x * 1.0 / y or CAST(x AS REAL) / y. Division by zero gives NULL.
- Concatenate with || (NULL if either side is NULL); GROUP_CONCAT(col, ', ') aggregates text.
- Limit rows with LIMIT n [OFFSET m].
- Typing is dynamic: numbers stored as text compare as text, so CAST(x AS INTEGER) or CAST(x AS REAL) before comparing or summing them.
- IIF(cond, a, b), IFNULL, COALESCE and CASE are available; booleans are 1/0.
- RIGHT and FULL OUTER JOIN need SQLite 3.39 or later; a LEFT JOIN with the tables swapped works everywhere.
- Send exactly one read-only statement: a single SELECT (or WITH … SELECT); no PRAGMA, ATTACH or writes.
"#;

/// Functions with side effects or reach beyond the tables: extensions, files, SQL given as
/// text, and blobs of any size (they are allocated inside the host process).
#[rustfmt::skip]
const DENIED: &[F] = &[
    F::new("load_extension", "it loads native code into the database"),
    F::new("readfile", "it reads files"),
    F::new("writefile", "it writes files"),
    F::new("fsdir", "it lists files"),
    F::new("lsdir", "it lists files"),
    F::new("zipfile*", "it reads or writes archive files"),
    F::new("edit", "it starts an editor"),
    F::new("fts3_tokenizer", "it can register native code"),
    F::new("eval", "it runs SQL given as text"),
    F::new("zeroblob", "it allocates memory of any size"),
    F::new("randomblob", "it allocates memory of any size"),
];
