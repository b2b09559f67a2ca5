//! PostgreSQL catalog reads: `pg_class` / `pg_attribute` / `pg_constraint` for structure,
//! `obj_description` / `col_description` for comments, `pg_class.reltuples` for row estimates and
//! `pg_stats.most_common_vals` for samples. Four queries whatever the schema's size.
//!
//! Only relations the role may read (`has_any_column_privilege`) are listed: the LLM should not
//! be told about tables its queries would be refused on. Partitions are hidden behind their parent.

use std::collections::HashMap;

use serde_json::Value;
use sqlx::Row;
use sqlx::postgres::PgPool;

use super::{Catalog, IntrospectOptions, catalog_error};
use crate::db::{DbError, Engine};
use crate::schema::{Column, ForeignKey, Table, TableKind};

const TABLES: &str = r#"
SELECT c.oid::int8 AS oid, n.nspname::text AS schema, c.relname::text AS name, c.relkind::text AS kind,
       obj_description(c.oid, 'pg_class') AS comment, c.reltuples::float8 AS reltuples
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
  AND NOT c.relispartition
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp%'
  AND (cardinality($1::text[]) = 0 OR n.nspname = ANY($1::text[]))
  AND has_any_column_privilege(c.oid, 'SELECT')
ORDER BY n.nspname, c.relname
"#;

const COLUMNS: &str = r#"
SELECT a.attrelid::int8 AS oid, a.attname::text AS name, format_type(a.atttypid, a.atttypmod) AS type,
       NOT a.attnotnull AS nullable, pg_get_expr(d.adbin, d.adrelid) AS default,
       col_description(a.attrelid, a.attnum) AS comment
FROM pg_attribute a
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE a.attrelid::int8 = ANY($1::int8[]) AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attrelid, a.attnum
"#;

const CONSTRAINTS: &str = r#"
SELECT con.conrelid::int8 AS oid, con.contype::text AS kind, con.conname::text AS name,
       ARRAY(SELECT a.attname::text FROM unnest(con.conkey) WITH ORDINALITY k(num, ord)
             JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.num ORDER BY k.ord) AS columns,
       fn.nspname::text AS ref_schema, fc.relname::text AS ref_table,
       ARRAY(SELECT a.attname::text FROM unnest(con.confkey) WITH ORDINALITY k(num, ord)
             JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.num ORDER BY k.ord) AS ref_columns
FROM pg_constraint con
LEFT JOIN pg_class fc ON fc.oid = con.confrelid
LEFT JOIN pg_namespace fn ON fn.oid = fc.relnamespace
WHERE con.contype IN ('p', 'f') AND con.conrelid::int8 = ANY($1::int8[])
ORDER BY con.conrelid, con.conname
"#;

// `most_common_vals` is `anyarray`; going through text to text[] works for every element type.
const STATS: &str = r#"
SELECT schemaname::text, tablename::text, attname::text, most_common_vals::text::text[] AS vals, avg_width
FROM pg_stats
WHERE schemaname = ANY($1::text[]) AND most_common_vals IS NOT NULL
ORDER BY schemaname, tablename, attname, inherited
"#;

/// Average width (bytes) above which a column's statistics values are not used as samples.
const MAX_STATS_WIDTH: i32 = 64;

pub(super) async fn read(pool: &PgPool, opts: &IntrospectOptions) -> Result<Catalog, DbError> {
    let err = catalog_error(Engine::Postgres);
    let schemas: Vec<String> = opts.schemas.clone().unwrap_or_default();
    let default_schema: Option<String> =
        sqlx::query_scalar("SELECT current_schema()::text").fetch_one(pool).await.map_err(&err)?;

    let mut tables: Vec<Table> = Vec::new();
    let mut by_oid: HashMap<i64, usize> = HashMap::new();
    for row in sqlx::query(TABLES).bind(&schemas).fetch_all(pool).await.map_err(&err)? {
        let oid: i64 = row.try_get("oid").map_err(&err)?;
        let kind: String = row.try_get("kind").map_err(&err)?;
        let kind = match kind.as_str() {
            "v" => TableKind::View,
            "m" => TableKind::MaterializedView,
            _ => TableKind::Table,
        };
        let reltuples: f64 = row.try_get("reltuples").map_err(&err)?;
        by_oid.insert(oid, tables.len());
        tables.push(Table {
            schema: row.try_get("schema").map_err(&err)?,
            name: row.try_get("name").map_err(&err)?,
            kind,
            comment: row.try_get("comment").map_err(&err)?,
            // -1 (PostgreSQL 14+) means never analysed; views have no estimate.
            row_estimate: (kind != TableKind::View && reltuples >= 0.0).then_some(reltuples.round() as u64),
            columns: Vec::new(),
            foreign_keys: Vec::new(),
        });
    }
    let oids: Vec<i64> = by_oid.keys().copied().collect();

    for row in sqlx::query(COLUMNS).bind(&oids).fetch_all(pool).await.map_err(&err)? {
        let oid: i64 = row.try_get("oid").map_err(&err)?;
        let Some(&t) = by_oid.get(&oid) else { continue };
        tables[t].columns.push(Column {
            name: row.try_get("name").map_err(&err)?,
            data_type: row.try_get("type").map_err(&err)?,
            nullable: row.try_get("nullable").map_err(&err)?,
            default: row.try_get("default").map_err(&err)?,
            comment: row.try_get("comment").map_err(&err)?,
            is_primary_key: false,
            sensitive: false,
            samples: Vec::new(),
        });
    }

    for row in sqlx::query(CONSTRAINTS).bind(&oids).fetch_all(pool).await.map_err(&err)? {
        let oid: i64 = row.try_get("oid").map_err(&err)?;
        let Some(&t) = by_oid.get(&oid) else { continue };
        let kind: String = row.try_get("kind").map_err(&err)?;
        let columns: Vec<String> = row.try_get("columns").map_err(&err)?;
        if kind == "p" {
            for c in tables[t].columns.iter_mut() {
                c.is_primary_key |= columns.contains(&c.name);
            }
        } else if let Some(ref_table) = row.try_get::<Option<String>, _>("ref_table").map_err(&err)? {
            tables[t].foreign_keys.push(ForeignKey {
                name: row.try_get("name").map_err(&err)?,
                columns,
                ref_schema: row.try_get("ref_schema").map_err(&err)?,
                ref_table,
                ref_columns: row.try_get("ref_columns").map_err(&err)?,
            });
        }
    }

    let mut stats_samples = HashMap::new();
    if opts.sample_values_per_column > 0 {
        let mut in_use: Vec<String> = tables.iter().filter_map(|t| t.schema.clone()).collect();
        in_use.sort();
        in_use.dedup();
        // pg_stats is a view that checks column privileges itself; an error here only costs samples.
        if let Ok(rows) = sqlx::query(STATS).bind(&in_use).fetch_all(pool).await {
            for row in rows {
                let (Ok(s), Ok(t), Ok(c)) =
                    (row.try_get::<String, _>(0), row.try_get::<String, _>(1), row.try_get::<String, _>(2))
                else {
                    continue;
                };
                let width: Option<i32> = row.try_get("avg_width").ok();
                if width.is_some_and(|w| w > MAX_STATS_WIDTH) {
                    continue;
                }
                let Ok(vals) = row.try_get::<Vec<Option<String>>, _>("vals") else { continue };
                let data_type = tables
                    .iter()
                    .find(|tb| tb.schema.as_deref() == Some(s.as_str()) && tb.name == t)
                    .and_then(|tb| tb.column(&c))
                    .map(|col| col.data_type.clone())
                    .unwrap_or_default();
                let vals: Vec<Value> = vals.into_iter().flatten().map(|v| typed_sample(&data_type, v)).collect();
                stats_samples.entry((s, t, c)).or_insert(vals);
            }
        }
    }
    Ok(Catalog { default_schema, tables, stats_samples })
}

/// Statistics values arrive as text; give numbers and booleans their JSON type so samples look
/// the same whether they came from statistics or from a read.
fn typed_sample(data_type: &str, text: String) -> Value {
    let t = data_type.to_ascii_lowercase();
    let integer = ["smallint", "integer", "bigint"].iter().any(|k| t.starts_with(k));
    let float = t.starts_with("real") || t.starts_with("double");
    if integer {
        if let Ok(i) = text.parse::<i64>() {
            return Value::from(i);
        }
    } else if float {
        if let Ok(f) = text.parse::<f64>() {
            return crate::db::values::float(f);
        }
    } else if t == "boolean" {
        return Value::Bool(text == "t" || text == "true");
    }
    Value::String(text)
}
