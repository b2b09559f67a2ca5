//! The schema as compact DDL-like text for the prompt, with its token estimate.
//!
//! ```text
//! -- customers: people who order (~1200 rows)
//! CREATE TABLE shop.customers (
//!   id integer PRIMARY KEY,
//!   email text NOT NULL, -- [SENSITIVE]
//!   country text, -- e.g. 'DE', 'FR', 'US'
//! );
//! CREATE TABLE shop.orders (
//!   id integer PRIMARY KEY,
//!   customer_id integer NOT NULL REFERENCES shop.customers(id),
//!   status text NOT NULL DEFAULT 'new', -- order state; e.g. 'paid', 'shipped'
//! );
//! ```
//! Models read this like real DDL, which is what they write SQL against; comments carry what DDL
//! cannot (descriptions, sample values, sizes). A trailing comma before `)` is kept on purpose:
//! it lets a column's `--` comment end the line without special cases, and costs one token.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::tokens::estimate_tokens;
use super::{Schema, Table, TableKind};

/// What to include when rendering.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RenderOptions {
    /// Sample values shown per column (0 for none).
    pub samples_per_column: usize,
    /// Longer sample values are cut to this many characters.
    pub max_sample_chars: usize,
    /// Show table and column comments.
    pub include_comments: bool,
    /// Show approximate row counts.
    pub include_row_counts: bool,
}

impl Default for RenderOptions {
    fn default() -> Self {
        Self { samples_per_column: 3, max_sample_chars: 40, include_comments: true, include_row_counts: true }
    }
}

/// Rendered schema text and its estimated token count ([`estimate_tokens`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RenderedSchema {
    /// The DDL-like text.
    pub text: String,
    /// Estimated tokens of `text`.
    pub tokens: usize,
}

/// Render every table of `schema`.
pub fn render(schema: &Schema, opts: &RenderOptions) -> RenderedSchema {
    let text = schema.tables.iter().map(|t| render_table(schema, t, opts)).collect::<Vec<_>>().join("\n");
    let tokens = estimate_tokens(&text);
    RenderedSchema { text, tokens }
}

/// Render one table (used by linking to price tables one at a time).
pub fn render_table(schema: &Schema, table: &Table, opts: &RenderOptions) -> String {
    let mut out = String::new();
    let name = schema.display_name(table.schema.as_deref(), &table.name);
    let mut header = Vec::new();
    if opts.include_comments
        && let Some(c) = table.comment.as_deref().map(one_line).filter(|c| !c.is_empty())
    {
        header.push(c);
    }
    if opts.include_row_counts
        && table.kind != TableKind::View
        && let Some(n) = table.row_estimate
    {
        header.push(format!("~{n} rows"));
    }
    if !header.is_empty() {
        out.push_str(&format!("-- {}\n", header.join("; ")));
    }
    let keyword = match table.kind {
        TableKind::Table => "TABLE",
        TableKind::View => "VIEW",
        TableKind::MaterializedView => "MATERIALIZED VIEW",
    };
    out.push_str(&format!("CREATE {keyword} {name} (\n"));
    let pk = table.primary_key();
    for c in &table.columns {
        out.push_str(&format!("  {} {}", c.name, c.data_type));
        if pk.len() == 1 && c.is_primary_key {
            out.push_str(" PRIMARY KEY");
        } else if !c.nullable {
            out.push_str(" NOT NULL");
        }
        if let Some(d) = c.default.as_deref().filter(|d| !is_noise_default(d)) {
            out.push_str(&format!(" DEFAULT {}", truncate(&one_line(d), 40)));
        }
        // Single-column foreign keys read best inline.
        if let Some(fk) = table.foreign_keys.iter().find(|fk| fk.columns.len() == 1 && fk.columns[0] == c.name) {
            out.push_str(&format!(
                " REFERENCES {}({})",
                schema.display_name(fk.ref_schema.as_deref(), &fk.ref_table),
                fk.ref_columns.join(", ")
            ));
        }
        out.push(',');
        let mut notes = Vec::new();
        if opts.include_comments
            && let Some(cm) = c.comment.as_deref().map(one_line).filter(|s| !s.is_empty())
        {
            notes.push(cm);
        }
        if c.sensitive {
            notes.push("[SENSITIVE]".into());
        } else if opts.samples_per_column > 0 && !c.samples.is_empty() {
            let shown: Vec<String> = c
                .samples
                .iter()
                .take(opts.samples_per_column)
                .map(|v| sample_literal(v, opts.max_sample_chars))
                .collect();
            notes.push(format!("e.g. {}", shown.join(", ")));
        }
        if !notes.is_empty() {
            out.push_str(&format!(" -- {}", notes.join("; ")));
        }
        out.push('\n');
    }
    if pk.len() > 1 {
        out.push_str(&format!("  PRIMARY KEY ({}),\n", pk.join(", ")));
    }
    for fk in table.foreign_keys.iter().filter(|fk| fk.columns.len() > 1) {
        out.push_str(&format!(
            "  FOREIGN KEY ({}) REFERENCES {}({}),\n",
            fk.columns.join(", "),
            schema.display_name(fk.ref_schema.as_deref(), &fk.ref_table),
            fk.ref_columns.join(", ")
        ));
    }
    out.push_str(");\n");
    out
}

/// Sequence defaults say nothing a read query needs.
fn is_noise_default(d: &str) -> bool {
    let d = d.trim().to_ascii_lowercase();
    d.starts_with("nextval(") || d == "null"
}

/// A sample as a SQL-ish literal: strings quoted (as the model must write them), numbers bare.
fn sample_literal(v: &Value, max_chars: usize) -> String {
    match v {
        Value::String(s) => format!("'{}'", truncate(&one_line(s), max_chars).replace('\'', "''")),
        Value::Null => "NULL".into(),
        other => truncate(&other.to_string(), max_chars),
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn truncate(s: &str, max_chars: usize) -> String {
    if s.chars().count() <= max_chars {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max_chars.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Column, ForeignKey};
    use super::*;
    use crate::db::Engine;
    use serde_json::json;

    fn col(name: &str, ty: &str, pk: bool) -> Column {
        Column {
            name: name.into(),
            data_type: ty.into(),
            nullable: !pk,
            default: None,
            comment: None,
            is_primary_key: pk,
            sensitive: false,
            samples: vec![],
        }
    }

    #[test]
    fn renders_ddl_with_fks_and_samples() {
        let mut status = col("status", "text", false);
        status.samples = vec![json!("paid"), json!("it's"), json!("shipped"), json!("x")];
        status.comment = Some("order state".into());
        let mut email = col("email", "text", false);
        email.sensitive = true;
        email.samples = vec![json!("a@b.c")];
        let schema = Schema {
            engine: Engine::Postgres,
            default_schema: Some("public".into()),
            fingerprint: String::new(),
            tables: vec![Table {
                schema: Some("public".into()),
                name: "orders".into(),
                kind: TableKind::Table,
                comment: Some("Customer\norders".into()),
                row_estimate: Some(1200),
                columns: vec![col("id", "integer", true), col("customer_id", "integer", false), status, email],
                foreign_keys: vec![ForeignKey {
                    name: None,
                    columns: vec!["customer_id".into()],
                    ref_schema: Some("crm".into()),
                    ref_table: "customers".into(),
                    ref_columns: vec!["id".into()],
                }],
            }],
        };
        let r = render(&schema, &RenderOptions::default());
        assert_eq!(
            r.text,
            "-- Customer orders; ~1200 rows\nCREATE TABLE orders (\n  id integer PRIMARY KEY,\n  \
             customer_id integer REFERENCES crm.customers(id),\n  \
             status text, -- order state; e.g. 'paid', 'it''s', 'shipped'\n  email text, -- [SENSITIVE]\n);\n"
        );
        assert_eq!(r.tokens, estimate_tokens(&r.text));
    }
}
