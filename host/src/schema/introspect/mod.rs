//! Reading a schema from a live database: the engine-specific catalog reads live in one file per
//! engine; filtering by privacy and sampling values are shared and live here.
//!
//! Sampling is cheap by construction: PostgreSQL's `pg_stats.most_common_vals` first (no table
//! access at all); otherwise one `SELECT <columns> FROM <table> LIMIT <sample_scan_rows>` per
//! table, run through [`Database::execute_read_only`] with a short timeout, from which each
//! column's first distinct values are taken. `LIMIT` without `ORDER BY` stops after that many
//! rows, so no table is scanned in full. Columns that are sensitive, binary, JSON, XML or
//! spatial are never sampled, and long values are dropped.

mod mysql;
mod postgres;
mod sqlite;

use std::collections::HashMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::fingerprint::fingerprint;
use super::privacy::PrivacyPolicy;
use super::{Schema, Table};
use crate::db::{Database, DbError, Engine, ExecOptions, Pool};

/// What to read and how much.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct IntrospectOptions {
    /// Distinct sample values kept per column (the reference API's `schemaExamples`); 0 for none.
    pub sample_values_per_column: usize,
    /// Schemas to read (PostgreSQL schemas, MySQL databases). `None`: PostgreSQL every
    /// non-system schema the user can see, MySQL the connection's database, SQLite `main`.
    pub schemas: Option<Vec<String>>,
    /// Only these tables (`name` or `schema.name`), when set.
    pub tables: Option<Vec<String>>,
    /// Exclusions and sensitive columns.
    pub privacy: PrivacyPolicy,
    /// Time limit for each sampling query.
    pub sample_timeout: Duration,
    /// Rows read per table for sampling when catalog statistics have none.
    pub sample_scan_rows: usize,
    /// Sample values longer than this (in characters) are dropped.
    pub max_sample_chars: usize,
}

impl Default for IntrospectOptions {
    fn default() -> Self {
        Self {
            sample_values_per_column: 5,
            schemas: None,
            tables: None,
            privacy: PrivacyPolicy::default(),
            sample_timeout: Duration::from_secs(2),
            sample_scan_rows: 200,
            max_sample_chars: 100,
        }
    }
}

/// What an engine's catalog read returns.
pub(crate) struct Catalog {
    pub default_schema: Option<String>,
    pub tables: Vec<Table>,
    /// Samples the engine found in its statistics, by (schema, table, column).
    pub stats_samples: HashMap<(String, String, String), Vec<Value>>,
}

/// Introspect `db`: tables, views, columns, keys, comments, row estimates and samples, filtered
/// by `opts.privacy`, with the structure's fingerprint.
pub async fn introspect(db: &Database, opts: &IntrospectOptions) -> Result<Schema, DbError> {
    let mut catalog = match db.pool() {
        Pool::Postgres(pool) => postgres::read(pool, opts).await?,
        Pool::MySql(pool) => mysql::read(pool, opts).await?,
        Pool::Sqlite(pool) => sqlite::read(pool, opts).await?,
    };
    apply_filters(&mut catalog.tables, opts);
    if opts.sample_values_per_column > 0 {
        sample(db, &mut catalog, opts).await;
    }
    catalog.tables.sort_by(|a, b| (&a.schema, &a.name).cmp(&(&b.schema, &b.name)));
    let fingerprint = fingerprint(&catalog.tables);
    Ok(Schema { engine: db.engine(), default_schema: catalog.default_schema, tables: catalog.tables, fingerprint })
}

/// Drop excluded and not-included tables and columns (and foreign keys that would name them);
/// mark sensitive columns.
fn apply_filters(tables: &mut Vec<Table>, opts: &IntrospectOptions) {
    let privacy = &opts.privacy;
    let included = |t: &Table| {
        opts.tables.as_ref().is_none_or(|names| {
            names.iter().any(|n| match n.split_once('.') {
                Some((s, name)) => {
                    t.name.eq_ignore_ascii_case(name)
                        && t.schema.as_deref().is_some_and(|ts| ts.eq_ignore_ascii_case(s))
                }
                None => t.name.eq_ignore_ascii_case(n),
            })
        })
    };
    tables.retain(|t| included(t) && !privacy.excludes_table(t.schema.as_deref(), &t.name));
    let present: Vec<(Option<String>, String)> = tables.iter().map(|t| (t.schema.clone(), t.name.clone())).collect();
    let excluded_cols: Vec<(Option<String>, String, String)> = tables
        .iter()
        .flat_map(|t| {
            t.columns
                .iter()
                .filter(|c| privacy.excludes_column(t.schema.as_deref(), &t.name, &c.name))
                .map(|c| (t.schema.clone(), t.name.clone(), c.name.clone()))
                .collect::<Vec<_>>()
        })
        .collect();
    let is_excluded_col =
        |s: &Option<String>, t: &str, c: &str| excluded_cols.iter().any(|(es, et, ec)| es == s && et == t && ec == c);
    for t in tables.iter_mut() {
        let (schema, name) = (t.schema.clone(), t.name.clone());
        t.foreign_keys.retain(|fk| {
            let ref_schema = fk.ref_schema.clone().or_else(|| schema.clone());
            present.iter().any(|(s, n)| *s == ref_schema && *n == fk.ref_table)
                && !fk.columns.iter().any(|c| is_excluded_col(&schema, &name, c))
                && !fk.ref_columns.iter().any(|c| is_excluded_col(&ref_schema, &fk.ref_table, c))
        });
        t.columns.retain(|c| !is_excluded_col(&schema, &name, &c.name));
        for c in &mut t.columns {
            c.sensitive = privacy.is_sensitive(&c.name);
        }
    }
}

/// Types whose values are useless or harmful as prompt samples.
fn sampleable(data_type: &str) -> bool {
    let t = data_type.to_ascii_lowercase();
    const SKIP: &[&str] = &[
        "bytea",
        "blob",
        "binary",
        "json",
        "xml",
        "geometry",
        "geography",
        "point",
        "polygon",
        "line",
        "path",
        "circle",
        "box",
        "tsvector",
        "tsquery",
        "[]",
        "array",
        "bit",
        "uuid",
    ];
    !SKIP.iter().any(|s| t.contains(s))
}

/// Keep the first `n` distinct, short, non-null values.
fn distinct_samples(values: impl IntoIterator<Item = Value>, n: usize, max_chars: usize) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::new();
    for v in values {
        if out.len() >= n {
            break;
        }
        let too_long = match &v {
            Value::String(s) => s.chars().count() > max_chars || s.trim().is_empty(),
            Value::Null => true,
            other => other.to_string().len() > max_chars,
        };
        if !too_long && !out.contains(&v) {
            out.push(v);
        }
    }
    out
}

/// Fill in samples: statistics first, then one capped read per table for the rest.
async fn sample(db: &Database, catalog: &mut Catalog, opts: &IntrospectOptions) {
    let n = opts.sample_values_per_column;
    let engine = db.engine();
    for t in catalog.tables.iter_mut() {
        let schema = t.schema.clone().unwrap_or_default();
        let mut needed: Vec<usize> = Vec::new();
        for (i, c) in t.columns.iter_mut().enumerate() {
            if c.sensitive || !sampleable(&c.data_type) {
                continue;
            }
            match catalog.stats_samples.remove(&(schema.clone(), t.name.clone(), c.name.clone())) {
                Some(vals) if !vals.is_empty() => c.samples = distinct_samples(vals, n, opts.max_sample_chars),
                _ => needed.push(i),
            }
        }
        // Tables whose estimate says empty are read anyway: the estimate may be stale, and
        // the capped read of an empty table costs nothing.
        if needed.is_empty() {
            continue;
        }
        let cols: Vec<String> = needed.iter().map(|&i| quote_ident(engine, &t.columns[i].name)).collect();
        let from = match &t.schema {
            Some(s) if engine != Engine::Sqlite => {
                format!("{}.{}", quote_ident(engine, s), quote_ident(engine, &t.name))
            }
            _ => quote_ident(engine, &t.name),
        };
        let sql = format!("SELECT {} FROM {from} LIMIT {}", cols.join(", "), opts.sample_scan_rows.max(1));
        let exec = ExecOptions { statement_timeout: opts.sample_timeout, max_rows: opts.sample_scan_rows.max(1) };
        // Sampling is best effort: a view that errors or a slow table just gets no samples.
        let Ok(result) = db.execute_read_only(&sql, &exec).await else {
            continue;
        };
        for (k, &i) in needed.iter().enumerate() {
            let values = result.rows.iter().filter_map(|r| r.get(k).cloned());
            t.columns[i].samples = distinct_samples(values, n, opts.max_sample_chars);
        }
    }
}

/// Quote an identifier for `engine` (doubling the quote character inside it).
pub(crate) fn quote_ident(engine: Engine, name: &str) -> String {
    match engine {
        Engine::MySql => format!("`{}`", name.replace('`', "``")),
        _ => format!("\"{}\"", name.replace('"', "\"\"")),
    }
}

/// Turn a catalog-read error into a [`DbError`].
pub(crate) fn catalog_error(engine: Engine) -> impl Fn(sqlx::Error) -> DbError {
    move |e| crate::db::classify_error(engine, e)
}
