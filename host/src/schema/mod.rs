//! The user database's schema, as the NL→SQL prompt needs it.
//!
//! - [`introspect()`]: read tables, views, columns, keys, comments, row estimates and a few sample
//!   values from the catalog of PostgreSQL, MySQL/MariaDB or SQLite (catalog statistics first,
//!   never a full scan), filtered by a [`PrivacyPolicy`];
//! - [`fingerprint()`](fingerprint::fingerprint): a stable hash of the structure, for cache keys;
//! - [`SchemaCache`]: one introspection per connection, kept for a TTL, refreshable;
//! - [`lineage`]: which source columns feed each output column, so masking follows aliases;
//! - [`render()`]: compact DDL-like text for the prompt, with its token estimate;
//! - [`link()`]: for schemas over the token budget, the tables a question needs plus their
//!   foreign-key neighbours.

mod cache;
pub mod fingerprint;
mod introspect;
pub mod lineage;
mod link;
mod privacy;
mod render;
pub mod tokens;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::db::Engine;

pub use cache::SchemaCache;
pub use introspect::{IntrospectOptions, introspect};
pub use link::{link, link_with};
pub use privacy::{PrivacyPolicy, RECOMMENDED_SENSITIVE_PATTERNS, REDACTED};
pub use render::{RenderOptions, RenderedSchema, render, render_table};

/// A database's schema: its tables and views with their columns and keys.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Schema {
    /// The engine it was read from (decides quoting and dialect in the prompt).
    pub engine: Engine,
    /// The schema unqualified names resolve to (PostgreSQL `current_schema()`, MySQL
    /// `DATABASE()`, SQLite `main`). Tables in it are rendered without a qualifier.
    pub default_schema: Option<String>,
    /// Tables and views, ordered by (schema, name).
    pub tables: Vec<Table>,
    /// Hash of the structure (not of samples or row counts); see [`fingerprint::fingerprint`].
    pub fingerprint: String,
}

impl Schema {
    /// The table `name` (optionally in `schema`), compared case-insensitively.
    pub fn table(&self, schema: Option<&str>, name: &str) -> Option<&Table> {
        self.tables.iter().find(|t| {
            t.name.eq_ignore_ascii_case(name)
                && schema.is_none_or(|s| t.schema.as_deref().is_some_and(|ts| ts.eq_ignore_ascii_case(s)))
        })
    }

    /// How a table is named in SQL for this schema: qualified unless it lives in the default schema.
    pub fn display_name(&self, schema: Option<&str>, name: &str) -> String {
        match schema {
            Some(s) if self.default_schema.as_deref() != Some(s) => format!("{s}.{name}"),
            _ => name.to_string(),
        }
    }
}

/// Whether a relation is a table or a kind of view.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TableKind {
    /// A base table (including partitioned and foreign tables).
    Table,
    /// A view.
    View,
    /// A PostgreSQL materialized view.
    MaterializedView,
}

/// One table or view.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Table {
    /// Its schema (PostgreSQL schema, MySQL database, SQLite `main`).
    pub schema: Option<String>,
    /// Its name.
    pub name: String,
    /// Table or view.
    pub kind: TableKind,
    /// The table comment, if any.
    pub comment: Option<String>,
    /// Approximate row count from catalog statistics (`None` when unknown, e.g. never analysed).
    pub row_estimate: Option<u64>,
    /// Columns in declaration order.
    pub columns: Vec<Column>,
    /// Foreign keys from this table to others.
    pub foreign_keys: Vec<ForeignKey>,
}

impl Table {
    /// The primary-key columns, in key order.
    pub fn primary_key(&self) -> Vec<&str> {
        self.columns.iter().filter(|c| c.is_primary_key).map(|c| c.name.as_str()).collect()
    }

    /// The column `name`, compared case-insensitively.
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name.eq_ignore_ascii_case(name))
    }
}

/// One column.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Column {
    /// Its name.
    pub name: String,
    /// Its declared type as the database spells it (`integer`, `varchar(255)`, `decimal(10,2)`).
    pub data_type: String,
    /// Whether NULL is allowed.
    pub nullable: bool,
    /// The default expression, if any.
    pub default: Option<String>,
    /// The column comment, if any.
    pub comment: Option<String>,
    /// Part of the primary key.
    pub is_primary_key: bool,
    /// Matches a sensitive-column pattern of the privacy policy: shown, marked, never sampled.
    pub sensitive: bool,
    /// A few distinct values, as JSON (see [`crate::db::values`]); empty when not sampled.
    pub samples: Vec<Value>,
}

/// A foreign key: `columns` of the owning table reference `ref_columns` of another.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForeignKey {
    /// Constraint name, where the engine has one.
    pub name: Option<String>,
    /// Referencing columns in the owning table.
    pub columns: Vec<String>,
    /// Schema of the referenced table.
    pub ref_schema: Option<String>,
    /// The referenced table.
    pub ref_table: String,
    /// Referenced columns, paired with `columns`.
    pub ref_columns: Vec<String>,
}
