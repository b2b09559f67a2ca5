//! Read-only SQL validation shared by Quarry's dialect plugins.
//!
//! A dialect plugin (`dialect-postgres`, `dialect-mysql`, `dialect-sqlite`) is a tiny crate: a type
//! implementing [`Dialect`] (its `sqlparser` dialect, its extra deny-list of functions, its prompt
//! guidance) and one [`export_dialect!`] call. Everything else lives here, as plain Rust that the
//! native tests drive through [`validate`]; the WebAssembly glue is the thin [`Component`] type.
//!
//! # What `validate` accepts
//!
//! Exactly one read-only query: `SELECT`, `WITH … SELECT`, `UNION` / `INTERSECT` / `EXCEPT`,
//! `VALUES`, and `EXPLAIN` (or MySQL `DESCRIBE`) of one of those without `ANALYZE`.
//! A single trailing `;` is fine. The input is parsed, never grepped, so comments, letter case,
//! keywords inside string literals or quoted identifiers, and odd whitespace change nothing.
//!
//! # Violation codes
//!
//! Every refusal carries one or more violations with one of these stable codes:
//!
//! | code | meaning |
//! | --- | --- |
//! | `parse-error` | the parser could not read the SQL; the message carries the parser's error |
//! | `empty` | only whitespace, comments or `;` |
//! | `multiple-statements` | more than one statement (a single trailing `;` is fine) |
//! | `not-read-only` | a statement that is not a query: DML, DDL, `GRANT`/`REVOKE`, transaction control, `SET`/`RESET`/`USE`, `COPY`, `CALL`, `DO`, `LOAD`, `INSTALL`, `ATTACH`/`DETACH`, `PRAGMA`, `VACUUM`, … (also `EXPLAIN` of such a statement) |
//! | `not-a-query` | a read-only metadata statement that is not a query: `SHOW`, `DESCRIBE table`, `EXPLAIN table` |
//! | `select-into` | `SELECT … INTO` (a new table, or variables) |
//! | `into-outfile` | MySQL `INTO OUTFILE` / `INTO DUMPFILE` |
//! | `locking-clause` | `FOR UPDATE` / `FOR SHARE` / `FOR NO KEY UPDATE` / `FOR KEY SHARE` / `LOCK IN SHARE MODE`, at any level |
//! | `data-modifying-cte` | `INSERT` / `UPDATE` / `DELETE` / `MERGE` inside a `WITH` (or anywhere inside the query) |
//! | `explain-analyze` | `EXPLAIN ANALYZE` (or PostgreSQL `EXPLAIN (ANALYZE)`), which runs the statement |
//! | `denied-function` | a function on the dialect's deny-list or the policy's `denied-functions`, anywhere in the statement |
//! | `table-not-allowed` | a table outside the policy's `allowed-tables` |
//! | `too-complex` | more than 1 000 operators (`+`, `OR`, `UNION`, …): a tree that deep could overflow the plugin's stack |
//! | `executable-comment` | MySQL dialect: a MariaDB `/*M! … */` comment, which MariaDB executes |
//!
//! # Decisions worth knowing
//!
//! - `SHOW` and `DESCRIBE table` are read-only but are refused (`not-a-query`): they have no
//!   statement kind in the contract, the row limit and `allowed-tables` cannot be applied to them,
//!   and the schema is already in the prompt (or readable from `information_schema`).
//! - `PRAGMA` is refused outright (`not-read-only`): many pragmas write. SQLite's table-valued
//!   pragma functions (`SELECT * FROM pragma_table_info('t')`) stay allowed, because SQLite only
//!   offers that form for pragmas without side effects.
//! - `EXPLAIN` gets no row limit: it returns a plan, not the query's rows, and a limit would
//!   change the plan shown. The explained statement is checked like any other query.
//! - MySQL `/*! … */` comments are executed by MySQL, so `sqlparser`'s MySQL dialect reads their
//!   content as SQL and it is checked like the rest. MariaDB `/*M! … */` is refused.
//! - MySQL optimizer hints (`/*+ … */`) are removed from the output (with a warning): hints such
//!   as `MAX_EXECUTION_TIME` or `SET_VAR` could override the host's own limits.
//! - The returned SQL is always re-printed by the parser, so comments never reach the database.
//! - Borderline functions: PostgreSQL `currval` / `lastval` (they read the session's own sequence
//!   value) and MySQL `uuid_short` stay allowed; `nextval` / `setval` and `txid_current` (which
//!   assigns a transaction id) are refused; SQLite `randomblob` / `zeroblob` are refused at any
//!   size, because SQLite runs inside the host process and would allocate whatever is asked.
//!
//! # Row limit (`policy.row-limit`)
//!
//! Applied at the outermost query only, never inside a subquery, so aggregates never change: no
//! `LIMIT` adds one; a larger literal `LIMIT` (or `FETCH FIRST n ROWS`, or MySQL `LIMIT o, n`) is
//! lowered; a smaller one is kept; a non-literal limit (`LIMIT ALL`, `LIMIT -1`, an expression) is
//! replaced. A plain aggregate without `GROUP BY` (one row by construction) is left alone. For a
//! set operation the limit covers the whole result. Each change is reported as a warning.
//!
//! # Policy matching rules
//!
//! - `allowed-tables`: a reference matches an entry when both are equal (`s.t` = `s.t`, `t` = `t`);
//!   an unqualified reference `t` matches an entry `s.t`; a reference `s.t` matches an entry `t`
//!   only when `s` is the dialect's default schema (`public`, `main`). Common table expressions
//!   are not tables; table-valued functions are not tables either.
//! - `denied-functions` (and the dialect deny-lists): compared case-insensitively with the
//!   function's own name (its last name part, so `pg_catalog.pg_sleep` is `pg_sleep`), or with
//!   the whole dotted name when the entry contains a dot. An entry ending in `*` is a prefix.
//!   Quoted names are compared lower-cased too, so `"PG_SLEEP"()` is refused as well (it names a
//!   function that does not exist in PostgreSQL, so nothing good is lost).

mod analyze;
#[cfg(target_arch = "wasm32")]
mod arena;
mod limit;
mod names;
mod validate;

pub use validate::validate;

/// Each call runs in a fresh instance: allocate from a bump arena (see [`arena`]).
#[cfg(target_arch = "wasm32")]
#[global_allocator]
static ALLOCATOR: arena::BumpThenSystem = arena::BumpThenSystem;

/// Quarry's `sql-dialect` world, generated from `wit/`.
///
/// The export macro is public so that each dialect crate can export [`Component`] for its own
/// [`Dialect`]; see [`export_dialect!`].
#[allow(missing_docs, clippy::all)]
pub mod bindings {
    wit_bindgen::generate!({
        world: "sql-dialect",
        path: "../../wit",
        pub_export_macro: true,
        default_bindings_module: "quarry_dialect_core::bindings",
    });
}

pub use bindings::exports::quarry::plugin::dialect::{Policy, StatementKind, Validated, Violation};
/// The parser, re-exported so that dialect crates name their `sqlparser` dialect without
/// depending on `sqlparser` themselves (and so always on the same version).
pub use sqlparser;

use bindings::exports::quarry::plugin::dialect::Guest;
use bindings::quarry::plugin::log::{Level, log};
use bindings::quarry::plugin::types::PluginInfo;
use core::marker::PhantomData;

/// A function a dialect refuses, and why (the reason goes into the violation message).
#[derive(Debug, Clone, Copy)]
pub struct DeniedFunction {
    /// Lower-case function name; a trailing `*` makes it a prefix (`pg_advisory_*`).
    pub pattern: &'static str,
    /// Why it is refused, as a clause: "sleeps and ties up a connection".
    pub reason: &'static str,
}

impl DeniedFunction {
    /// A deny-list entry; `const` so that deny-lists can be `static` tables.
    pub const fn new(pattern: &'static str, reason: &'static str) -> Self {
        Self { pattern, reason }
    }
}

/// What one SQL dialect plugin knows about its database engine.
///
/// Everything is an associated item, because the generated `Guest` trait has no `self`.
pub trait Dialect: 'static {
    /// The `sqlparser` dialect used to read this engine's SQL.
    type Parser: sqlparser::dialect::Dialect + Default;
    /// Short machine name, `[a-z0-9-]` (for example `postgres`); matches `plugin.toml`.
    const NAME: &'static str;
    /// The engine's name for people (`PostgreSQL`), used in violation messages.
    const ENGINE: &'static str;
    /// The plugin's version (usually `env!("CARGO_PKG_VERSION")`).
    const VERSION: &'static str;
    /// One line for people.
    const DESCRIPTION: &'static str;
    /// Notes for the LLM on writing SQL for this engine, returned by `prompt-guidance`.
    const GUIDANCE: &'static str;
    /// Functions this engine must never run from a generated query.
    const DENIED_FUNCTIONS: &'static [DeniedFunction];
    /// Schemas an unqualified `allowed-tables` entry also matches (`public` for PostgreSQL).
    const DEFAULT_SCHEMAS: &'static [&'static str] = &[];
    /// Block-comment openings (after `/*`) this engine executes but `sqlparser` treats as plain
    /// comments, with the engine's name for the message: MariaDB's `M!`.
    const EXECUTABLE_COMMENTS: &'static [(&'static str, &'static str)] = &[];
}

/// The component for dialect `D`: implements the generated `Guest` trait by calling [`validate`].
///
/// Exported by [`export_dialect!`]; never constructed.
pub struct Component<D>(PhantomData<D>);

impl<D: Dialect> Guest for Component<D> {
    fn info() -> PluginInfo {
        PluginInfo {
            name: D::NAME.into(),
            version: D::VERSION.into(),
            description: D::DESCRIPTION.into(),
        }
    }

    fn prompt_guidance() -> String {
        D::GUIDANCE.trim().to_string()
    }

    fn validate(sql: String, policy: Policy) -> Result<Validated, Vec<Violation>> {
        let verdict = validate::<D>(&sql, &policy);
        // One debug line per call: enough to follow a repair loop in the host's log, and the
        // only place the log import is touched, so the core stays testable natively.
        let line = match &verdict {
            Ok(v) => format!("accepted {:?}, {} table(s)", v.kind, v.tables.len()),
            Err(violations) => {
                let codes: Vec<&str> = violations.iter().map(|v| v.code.as_str()).collect();
                format!("refused: {}", codes.join(", "))
            }
        };
        log(Level::Debug, &line);
        verdict
    }
}

/// Export [`Component`] for a [`Dialect`] as this crate's `sql-dialect` component.
///
/// Expands to nothing on targets other than `wasm32`, so dialect crates can also be linked
/// natively (as `rlib`s, all three into one test binary) without clashing export symbols.
///
/// ```ignore
/// quarry_dialect_core::export_dialect!(Postgres);
/// ```
#[macro_export]
macro_rules! export_dialect {
    ($dialect:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            // The generated macro takes a plain identifier, not a generic type.
            type QuarryDialectComponent = $crate::Component<$dialect>;
    $crate::bindings::export!(QuarryDialectComponent with_types_in $crate::bindings);
        };
    };
}
