//! A stable hash of a schema's structure, for cache keys: it changes when a table, column,
//! type, key or comment changes, and not when data changes (samples, row counts).

use sha2::{Digest, Sha256};

use super::Table;

/// Hex SHA-256 (first 16 bytes) over a canonical text of the structure. Tables are taken in
/// (schema, name) order so that catalog ordering does not matter; columns keep declaration order,
/// which is part of the structure.
pub fn fingerprint(tables: &[Table]) -> String {
    let mut sorted: Vec<&Table> = tables.iter().collect();
    sorted.sort_by(|a, b| (&a.schema, &a.name).cmp(&(&b.schema, &b.name)));
    let mut h = Sha256::new();
    // Fields are separated by \x1f and records by \x1e, which do not occur in identifiers.
    let mut field = |s: &str| {
        h.update(s.as_bytes());
        h.update([0x1f]);
    };
    for t in sorted {
        field("T");
        field(t.schema.as_deref().unwrap_or(""));
        field(&t.name);
        field(&format!("{:?}", t.kind));
        field(t.comment.as_deref().unwrap_or(""));
        for c in &t.columns {
            field("C");
            field(&c.name);
            field(&c.data_type);
            field(if c.nullable { "null" } else { "not null" });
            field(c.default.as_deref().unwrap_or(""));
            field(if c.is_primary_key { "pk" } else { "" });
            field(if c.sensitive { "sensitive" } else { "" });
            field(c.comment.as_deref().unwrap_or(""));
        }
        for fk in &t.foreign_keys {
            field("F");
            field(&fk.columns.join(","));
            field(fk.ref_schema.as_deref().unwrap_or(""));
            field(&fk.ref_table);
            field(&fk.ref_columns.join(","));
        }
        field("\u{1e}");
    }
    hex::encode(&h.finalize()[..16])
}
