//! The introspected [`Schema`] in the product API's `DataSourceSchema` shape (`GET
//! /connections/{id}/schema`): schemas, tables with columns, relationships from foreign keys.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::source::SourceType;
use crate::schema::{Schema, TableKind};

/// `{source_type, schemas[], tables[], relationships[], metadata{}}` for `schema`, read at
/// `refreshed_at`. Besides the reference fields, each column says whether it is sensitive
/// (`is_sensitive`) and `metadata` carries the fingerprint and the default schema.
pub fn datasource_schema(source_type: SourceType, schema: &Schema, refreshed_at: DateTime<Utc>) -> Value {
    let mut schema_names: Vec<&str> = schema.tables.iter().filter_map(|t| t.schema.as_deref()).collect();
    schema_names.sort_unstable();
    schema_names.dedup();
    let schemas: Vec<Value> = schema_names.iter().map(|name| json!({"name": name, "description": null})).collect();

    let mut relationships = Vec::new();
    let tables: Vec<Value> = schema
        .tables
        .iter()
        .map(|t| {
            for fk in &t.foreign_keys {
                for (from, to) in fk.columns.iter().zip(&fk.ref_columns) {
                    relationships.push(json!({
                        "from_schema": t.schema,
                        "from_table": t.name,
                        "from_column": from,
                        "to_schema": fk.ref_schema.as_ref().or(t.schema.as_ref()),
                        "to_table": fk.ref_table,
                        "to_column": to,
                        "relationship_type": "many_to_one",
                    }));
                }
            }
            let columns: Vec<Value> = t
                .columns
                .iter()
                .map(|c| {
                    json!({
                        "name": c.name,
                        "data_type": generic_type(&c.data_type),
                        "native_type": c.data_type,
                        "nullable": c.nullable,
                        "is_primary_key": c.is_primary_key,
                        "is_partition_key": false,
                        "is_sensitive": c.sensitive,
                        "description": c.comment,
                        "sample_values": c.samples,
                    })
                })
                .collect();
            let table_type = match t.kind {
                TableKind::Table => "table",
                TableKind::View => "view",
                TableKind::MaterializedView => "materialized_view",
            };
            json!({
                "catalog": null,
                "schema_name": t.schema,
                "name": t.name,
                "table_type": table_type,
                "columns": columns,
                "row_count_approx": t.row_estimate,
                "description": t.comment,
                "metadata": {},
            })
        })
        .collect();
    json!({
        "source_type": source_type.as_str(),
        "schemas": schemas,
        "tables": tables,
        "relationships": relationships,
        "metadata": {
            "fingerprint": schema.fingerprint,
            "default_schema": schema.default_schema,
            "refreshed_at": refreshed_at,
            "table_count": schema.tables.len(),
        },
    })
}

/// A portable type family for a native column type.
fn generic_type(native: &str) -> &'static str {
    let t = native.to_ascii_lowercase();
    let has = |words: &[&str]| words.iter().any(|w| t.contains(w));
    if has(&["point", "polygon", "geometry", "geography", "circle", "box"]) {
        "other"
    } else if t.ends_with("[]") || t.starts_with('_') || t.contains("array") {
        "array"
    } else if has(&["bool"]) || t == "tinyint(1)" || t == "bit(1)" {
        "boolean"
    } else if has(&["timestamp", "datetime"]) {
        "timestamp"
    } else if has(&["interval"]) {
        "interval"
    } else if has(&["date"]) {
        "date"
    } else if has(&["time"]) {
        "time"
    } else if has(&["int", "serial"]) {
        "integer"
    } else if has(&["numeric", "decimal", "money"]) {
        "decimal"
    } else if has(&["float", "double", "real"]) {
        "float"
    } else if has(&["json"]) {
        "json"
    } else if has(&["uuid"]) {
        "uuid"
    } else if has(&["blob", "bytea", "binary"]) {
        "binary"
    } else if has(&["char", "text", "string", "clob", "enum", "set(", "citext", "name"]) || t.is_empty() {
        "string"
    } else {
        "other"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Engine;
    use crate::schema::{Column, ForeignKey, Table};

    #[test]
    fn shape_and_types() {
        let col = |name: &str, ty: &str| Column {
            name: name.into(),
            data_type: ty.into(),
            nullable: true,
            default: None,
            comment: None,
            is_primary_key: name == "id",
            sensitive: name == "email",
            samples: vec![],
        };
        let schema = Schema {
            engine: Engine::Postgres,
            default_schema: Some("public".into()),
            tables: vec![Table {
                schema: Some("public".into()),
                name: "orders".into(),
                kind: TableKind::Table,
                comment: Some("All orders".into()),
                row_estimate: Some(42),
                columns: vec![
                    col("id", "integer"),
                    col("email", "varchar(255)"),
                    col("at", "timestamp with time zone"),
                ],
                foreign_keys: vec![ForeignKey {
                    name: None,
                    columns: vec!["customer_id".into()],
                    ref_schema: None,
                    ref_table: "customers".into(),
                    ref_columns: vec!["id".into()],
                }],
            }],
            fingerprint: "abc".into(),
        };
        let v = datasource_schema(SourceType::Postgresql, &schema, Utc::now());
        assert_eq!(v["schemas"], json!([{"name": "public", "description": null}]));
        let t = &v["tables"][0];
        assert_eq!((t["schema_name"].as_str(), t["row_count_approx"].as_u64()), (Some("public"), Some(42)));
        assert_eq!(t["columns"][0]["data_type"], "integer");
        assert_eq!(t["columns"][1]["is_sensitive"], true);
        assert_eq!(t["columns"][2]["data_type"], "timestamp");
        assert_eq!(v["relationships"][0]["to_schema"], "public");
        assert_eq!(v["metadata"]["fingerprint"], "abc");
        assert_eq!(generic_type("decimal(10,2)"), "decimal");
        assert_eq!(generic_type("TEXT"), "string");
        assert_eq!(generic_type("date"), "date");
    }
}
