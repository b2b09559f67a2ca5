//! SQLite catalog reads: `sqlite_master` for tables and views, the table-valued pragmas
//! `pragma_table_info` and `pragma_foreign_key_list` for columns and keys, and `sqlite_stat1`
//! (written by `ANALYZE`) for row estimates, else a count capped at [`COUNT_CAP`] rows.
//!
//! SQLite has no comments in its catalog; columns and tables have none.

use std::collections::HashMap;

use sqlx::Row;
use sqlx::sqlite::SqlitePool;

use super::{Catalog, IntrospectOptions, catalog_error, quote_ident};
use crate::db::{DbError, Engine};
use crate::schema::{Column, ForeignKey, Table, TableKind};

/// A table without statistics is counted up to this many rows; a count at the cap means "at least".
pub const COUNT_CAP: u64 = 100_000;

pub(super) async fn read(pool: &SqlitePool, opts: &IntrospectOptions) -> Result<Catalog, DbError> {
    let err = catalog_error(Engine::Sqlite);
    // Only `main`: attached databases are not part of a connection URL.
    if opts.schemas.as_ref().is_some_and(|s| !s.is_empty() && !s.iter().any(|s| s == "main")) {
        return Ok(Catalog { default_schema: Some("main".into()), tables: Vec::new(), stats_samples: HashMap::new() });
    }
    let rows = sqlx::query(
        "SELECT name, type FROM sqlite_master WHERE type IN ('table', 'view') \
         AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name",
    )
    .fetch_all(pool)
    .await
    .map_err(&err)?;

    let stats: HashMap<String, u64> = {
        let has_stat1: Option<i64> =
            sqlx::query_scalar("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sqlite_stat1'")
                .fetch_optional(pool)
                .await
                .map_err(&err)?;
        let mut m = HashMap::new();
        if has_stat1.is_some() {
            for r in sqlx::query("SELECT tbl, stat FROM sqlite_stat1").fetch_all(pool).await.map_err(&err)? {
                let (Ok(tbl), Ok(stat)) = (r.try_get::<String, _>(0), r.try_get::<String, _>(1)) else { continue };
                // The first number of `stat` is the table's row count (for every index of it).
                if let Some(n) = stat.split_whitespace().next().and_then(|n| n.parse().ok()) {
                    m.entry(tbl).or_insert(n);
                }
            }
        }
        m
    };

    let mut tables = Vec::new();
    for row in rows {
        let name: String = row.try_get(0).map_err(&err)?;
        let kind =
            if row.try_get::<String, _>(1).map_err(&err)? == "view" { TableKind::View } else { TableKind::Table };
        let mut columns = Vec::new();
        for c in sqlx::query("SELECT name, type, \"notnull\", dflt_value, pk FROM pragma_table_info(?1) ORDER BY cid")
            .bind(&name)
            .fetch_all(pool)
            .await
            .map_err(&err)?
        {
            let pk: i64 = c.try_get(4).map_err(&err)?;
            columns.push(Column {
                name: c.try_get(0).map_err(&err)?,
                data_type: c.try_get::<Option<String>, _>(1).map_err(&err)?.unwrap_or_default(),
                nullable: c.try_get::<i64, _>(2).map_err(&err)? == 0 && pk == 0,
                default: c.try_get(3).map_err(&err)?,
                comment: None,
                is_primary_key: pk > 0,
                sensitive: false,
                samples: Vec::new(),
            });
        }
        let mut foreign_keys: Vec<(i64, ForeignKey)> = Vec::new();
        for f in sqlx::query("SELECT id, \"table\", \"from\", \"to\" FROM pragma_foreign_key_list(?1) ORDER BY id, seq")
            .bind(&name)
            .fetch_all(pool)
            .await
            .map_err(&err)?
        {
            let id: i64 = f.try_get(0).map_err(&err)?;
            let ref_table: String = f.try_get(1).map_err(&err)?;
            let from: String = f.try_get(2).map_err(&err)?;
            // NULL `to` means "the referenced table's primary key"; resolved below.
            let to: Option<String> = f.try_get(3).map_err(&err)?;
            match foreign_keys.last_mut() {
                Some((last, fk)) if *last == id => {
                    fk.columns.push(from);
                    fk.ref_columns.extend(to);
                }
                _ => foreign_keys.push((
                    id,
                    ForeignKey {
                        name: None,
                        columns: vec![from],
                        ref_schema: Some("main".into()),
                        ref_table,
                        ref_columns: to.into_iter().collect(),
                    },
                )),
            }
        }
        let row_estimate = match kind {
            TableKind::View => None,
            _ => match stats.get(&name) {
                Some(n) => Some(*n),
                None => {
                    let sql = format!(
                        "SELECT count(*) FROM (SELECT 1 FROM {} LIMIT {COUNT_CAP})",
                        quote_ident(Engine::Sqlite, &name)
                    );
                    sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql))
                        .fetch_one(pool)
                        .await
                        .ok()
                        .and_then(|n| u64::try_from(n).ok())
                }
            },
        };
        tables.push(Table {
            schema: Some("main".into()),
            name,
            kind,
            comment: None,
            row_estimate,
            columns,
            foreign_keys: foreign_keys.into_iter().map(|(_, fk)| fk).collect(),
        });
    }

    // Resolve implicit references to a parent's primary key.
    let pks: HashMap<String, Vec<String>> = tables
        .iter()
        .map(|t| (t.name.to_ascii_lowercase(), t.primary_key().iter().map(|s| s.to_string()).collect()))
        .collect();
    for t in tables.iter_mut() {
        for fk in t.foreign_keys.iter_mut() {
            if fk.ref_columns.len() != fk.columns.len() {
                fk.ref_columns = pks.get(&fk.ref_table.to_ascii_lowercase()).cloned().unwrap_or_default();
            }
        }
    }
    Ok(Catalog { default_schema: Some("main".into()), tables, stats_samples: HashMap::new() })
}
