//! MySQL / MariaDB catalog reads from `information_schema`: `TABLES` (kind, comment, the
//! `TABLE_ROWS` estimate), `COLUMNS` (type, nullability, default, comment) and
//! `KEY_COLUMN_USAGE` (primary and foreign keys). Three queries whatever the schema's size.
//!
//! `information_schema` text comes back with varying collations across versions (some binary),
//! so strings are read as bytes and decoded leniently.

use std::collections::HashMap;

use sqlx::Row;
use sqlx::mysql::{MySqlPool, MySqlRow};

use super::{Catalog, IntrospectOptions, catalog_error};
use crate::db::{DbError, Engine};
use crate::schema::{Column, ForeignKey, Table, TableKind};

/// A text column as a String whatever its collation.
fn text(row: &MySqlRow, i: usize) -> Option<String> {
    row.try_get::<Option<String>, _>(i).ok().flatten().or_else(|| {
        row.try_get::<Option<Vec<u8>>, _>(i).ok().flatten().map(|b| String::from_utf8_lossy(&b).into_owned())
    })
}

fn number(row: &MySqlRow, i: usize) -> Option<u64> {
    row.try_get::<Option<u64>, _>(i)
        .ok()
        .flatten()
        .or_else(|| row.try_get::<Option<i64>, _>(i).ok().flatten().and_then(|v| u64::try_from(v).ok()))
}

/// `?, ?, ?` for an IN list.
fn placeholders(n: usize) -> String {
    vec!["?"; n].join(", ")
}

pub(super) async fn read(pool: &MySqlPool, opts: &IntrospectOptions) -> Result<Catalog, DbError> {
    let err = catalog_error(Engine::MySql);
    let current: Option<String> = {
        let row = sqlx::query("SELECT DATABASE()").fetch_one(pool).await.map_err(&err)?;
        text(&row, 0)
    };
    let schemas: Vec<String> = match &opts.schemas {
        Some(s) if !s.is_empty() => s.clone(),
        _ => match &current {
            Some(db) => vec![db.clone()],
            None => {
                // No database in the URL: every user database.
                let rows = sqlx::query(
                    "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA \
                     WHERE SCHEMA_NAME NOT IN ('mysql', 'information_schema', 'performance_schema', 'sys')",
                )
                .fetch_all(pool)
                .await
                .map_err(&err)?;
                rows.iter().filter_map(|r| text(r, 0)).collect()
            }
        },
    };
    if schemas.is_empty() {
        return Ok(Catalog { default_schema: current, tables: Vec::new(), stats_samples: HashMap::new() });
    }
    let list = placeholders(schemas.len());

    let sql = format!(
        "SELECT TABLE_SCHEMA, TABLE_NAME, TABLE_TYPE, TABLE_COMMENT, TABLE_ROWS FROM information_schema.TABLES \
         WHERE TABLE_SCHEMA IN ({list}) ORDER BY TABLE_SCHEMA, TABLE_NAME"
    );
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for s in &schemas {
        q = q.bind(s);
    }
    let mut tables: Vec<Table> = Vec::new();
    let mut index: HashMap<(String, String), usize> = HashMap::new();
    for row in q.fetch_all(pool).await.map_err(&err)? {
        let (Some(schema), Some(name)) = (text(&row, 0), text(&row, 1)) else { continue };
        let kind = match text(&row, 2).as_deref() {
            Some("VIEW") | Some("SYSTEM VIEW") => TableKind::View,
            Some("BASE TABLE") | Some("SYSTEM VERSIONED") => TableKind::Table,
            // Sequences and anything newer are not queryable tables.
            _ => continue,
        };
        // Views report the comment "VIEW"; InnoDB may append its own notes after a "; ".
        let is_view_marker = |c: &String| kind == TableKind::View && c == "VIEW";
        let comment = text(&row, 3).filter(|c| !c.is_empty()).filter(|c| !is_view_marker(c));
        index.insert((schema.clone(), name.clone()), tables.len());
        tables.push(Table {
            schema: Some(schema),
            name,
            kind,
            comment,
            row_estimate: if kind == TableKind::View { None } else { number(&row, 4) },
            columns: Vec::new(),
            foreign_keys: Vec::new(),
        });
    }

    let sql = format!(
        "SELECT TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE, COLUMN_DEFAULT, COLUMN_COMMENT \
         FROM information_schema.COLUMNS WHERE TABLE_SCHEMA IN ({list}) \
         ORDER BY TABLE_SCHEMA, TABLE_NAME, ORDINAL_POSITION"
    );
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for s in &schemas {
        q = q.bind(s);
    }
    for row in q.fetch_all(pool).await.map_err(&err)? {
        let (Some(schema), Some(table), Some(name)) = (text(&row, 0), text(&row, 1), text(&row, 2)) else { continue };
        let Some(&t) = index.get(&(schema, table)) else { continue };
        tables[t].columns.push(Column {
            name,
            data_type: text(&row, 3).unwrap_or_default(),
            nullable: text(&row, 4).as_deref() == Some("YES"),
            // MariaDB spells "no default" as the text NULL (and quotes literals); MySQL uses SQL NULL.
            default: text(&row, 5).filter(|d| d != "NULL"),
            comment: text(&row, 6).filter(|c| !c.is_empty()),
            is_primary_key: false,
            sensitive: false,
            samples: Vec::new(),
        });
    }

    let sql = format!(
        "SELECT TABLE_SCHEMA, TABLE_NAME, CONSTRAINT_NAME, COLUMN_NAME, REFERENCED_TABLE_SCHEMA, \
         REFERENCED_TABLE_NAME, REFERENCED_COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE \
         WHERE TABLE_SCHEMA IN ({list}) AND (CONSTRAINT_NAME = 'PRIMARY' OR REFERENCED_TABLE_NAME IS NOT NULL) \
         ORDER BY TABLE_SCHEMA, TABLE_NAME, CONSTRAINT_NAME, ORDINAL_POSITION"
    );
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for s in &schemas {
        q = q.bind(s);
    }
    for row in q.fetch_all(pool).await.map_err(&err)? {
        let (Some(schema), Some(table), Some(constraint), Some(column)) =
            (text(&row, 0), text(&row, 1), text(&row, 2), text(&row, 3))
        else {
            continue;
        };
        let Some(&t) = index.get(&(schema, table)) else { continue };
        let table = &mut tables[t];
        if constraint == "PRIMARY" {
            if let Some(c) = table.columns.iter_mut().find(|c| c.name == column) {
                c.is_primary_key = true;
            }
            continue;
        }
        let (Some(ref_table), Some(ref_column)) = (text(&row, 5), text(&row, 6)) else { continue };
        let ref_schema = text(&row, 4);
        // Rows come ordered by constraint and position: extend the key being built.
        match table.foreign_keys.last_mut() {
            Some(fk) if fk.name.as_deref() == Some(constraint.as_str()) => {
                fk.columns.push(column);
                fk.ref_columns.push(ref_column);
            }
            _ => table.foreign_keys.push(ForeignKey {
                name: Some(constraint),
                columns: vec![column],
                ref_schema,
                ref_table,
                ref_columns: vec![ref_column],
            }),
        }
    }
    Ok(Catalog { default_schema: current, tables, stats_samples: HashMap::new() })
}
