//! Per-connection privacy settings as the schema and result code apply them.
//!
//! Excluded schemas, tables and columns never appear in the introspected schema (so the LLM
//! never hears of them); columns whose names match a sensitive pattern stay visible but are
//! marked, never sampled, and masked in results, also under another name (see [`super::lineage`]).
//! The product API stores these settings per connection and hands them over as this type.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::lineage::Lineage;
use crate::db::{Flavor, ResultSet};

/// Column-name fragments that usually hold personal or secret data. Not applied by default;
/// [`PrivacyPolicy::recommended`] uses them.
pub const RECOMMENDED_SENSITIVE_PATTERNS: &[&str] = &[
    "password",
    "passwd",
    "secret",
    "token",
    "api_key",
    "apikey",
    "private_key",
    "ssn",
    "social_security",
    "credit_card",
    "card_number",
    "cvv",
    "iban",
    "account_number",
    "email",
    "phone",
    "mobile",
    "address",
    "salary",
    "dob",
    "birth",
    "passport",
    "tax_id",
    "national_id",
    "license_number",
];

/// What must not reach the LLM (or, for masked columns, the user) from one connection.
///
/// Names match case-insensitively. Table entries are `table` or `schema.table`; column entries
/// are `column`, `table.column` or `schema.table.column`. Sensitive patterns match anywhere in
/// a column name (`email` matches `contact_email`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PrivacyPolicy {
    /// Schemas (PostgreSQL schemas, MySQL databases) left out entirely.
    pub excluded_schemas: Vec<String>,
    /// Tables left out entirely.
    pub excluded_tables: Vec<String>,
    /// Columns left out entirely.
    pub excluded_columns: Vec<String>,
    /// Column-name fragments: matching columns are shown as `[SENSITIVE]`, never sampled, masked.
    pub sensitive_column_patterns: Vec<String>,
}

/// Text put in place of a masked value.
pub const REDACTED: &str = "[REDACTED]";

impl PrivacyPolicy {
    /// No exclusions, and the [`RECOMMENDED_SENSITIVE_PATTERNS`].
    pub fn recommended() -> Self {
        Self {
            sensitive_column_patterns: RECOMMENDED_SENSITIVE_PATTERNS.iter().map(|s| s.to_string()).collect(),
            ..Self::default()
        }
    }

    /// Whether a whole schema is excluded.
    pub fn excludes_schema(&self, schema: Option<&str>) -> bool {
        schema.is_some_and(|s| self.excluded_schemas.iter().any(|e| e.eq_ignore_ascii_case(s)))
    }

    /// Whether a table is excluded (directly or through its schema).
    pub fn excludes_table(&self, schema: Option<&str>, table: &str) -> bool {
        self.excludes_schema(schema) || self.excluded_tables.iter().any(|e| matches_path(e, &[schema, Some(table)]))
    }

    /// Whether a column is excluded.
    pub fn excludes_column(&self, schema: Option<&str>, table: &str, column: &str) -> bool {
        self.excluded_columns.iter().any(|e| matches_path(e, &[schema, Some(table), Some(column)]))
    }

    /// Whether a column name matches a sensitive pattern.
    pub fn is_sensitive(&self, column: &str) -> bool {
        let column = column.to_ascii_lowercase();
        self.sensitive_column_patterns
            .iter()
            .map(|p| p.trim().to_ascii_lowercase())
            .any(|p| !p.is_empty() && column.contains(&p))
    }

    /// Replace the values of sensitive columns (and of columns named like an excluded column)
    /// with [`REDACTED`]. NULLs stay NULL. Result columns carry no table, so bare names decide.
    pub fn mask(&self, result: &mut ResultSet) {
        let masked: Vec<bool> = result.columns.iter().map(|c| self.masks_name(&c.name)).collect();
        apply_mask(result, &masked);
    }

    /// [`PrivacyPolicy::mask`] for the result of `sql`, also masking every column whose value
    /// derives from a masked column under another name (`email AS contact`, `lower(email)`, a
    /// CTE that renames it; see [`super::lineage`]). SQL that does not parse is masked by name.
    pub fn mask_query(&self, sql: &str, flavor: Flavor, result: &mut ResultSet) {
        let by_name = result.columns.iter().map(|c| self.masks_name(&c.name));
        let masked: Vec<bool> = match Lineage::of(sql, flavor) {
            Some(lineage) => {
                let names: Vec<&str> = result.columns.iter().map(|c| c.name.as_str()).collect();
                let derived = lineage.tainted_outputs(&names, |name| self.masks_name(name));
                by_name.zip(derived).map(|(a, b)| a || b).collect()
            }
            None => by_name.collect(),
        };
        apply_mask(result, &masked);
    }

    /// Whether a column called `name` is masked: sensitive, or named like an excluded column.
    fn masks_name(&self, name: &str) -> bool {
        self.is_sensitive(name)
            || self
                .excluded_columns
                .iter()
                .any(|e| e.rsplit('.').next().is_some_and(|bare| bare.trim().eq_ignore_ascii_case(name)))
    }
}

/// Replace the non-NULL values of the columns flagged in `masked` with [`REDACTED`].
fn apply_mask(result: &mut ResultSet, masked: &[bool]) {
    if !masked.contains(&true) {
        return;
    }
    for row in &mut result.rows {
        for (value, masked) in row.iter_mut().zip(masked) {
            if *masked && !value.is_null() {
                *value = Value::String(REDACTED.into());
            }
        }
    }
}

/// Does `entry` (`a`, `b.a` or `c.b.a`) name the path `[schema, table, (column)]`? Shorter
/// entries match the tail of the path.
fn matches_path(entry: &str, path: &[Option<&str>]) -> bool {
    let parts: Vec<&str> = entry.split('.').map(str::trim).collect();
    if parts.is_empty() || parts.len() > path.len() {
        return false;
    }
    let tail = &path[path.len() - parts.len()..];
    parts.iter().zip(tail).all(|(p, t)| t.is_some_and(|t| t.eq_ignore_ascii_case(p)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::ResultColumn;
    use serde_json::json;

    #[test]
    fn matching() {
        let p = PrivacyPolicy {
            excluded_schemas: vec!["audit".into()],
            excluded_tables: vec!["secrets".into(), "shop.staff".into()],
            excluded_columns: vec!["customers.notes".into(), "ssn_raw".into()],
            sensitive_column_patterns: vec!["email".into()],
        };
        assert!(p.excludes_table(Some("audit"), "log"));
        assert!(p.excludes_table(Some("public"), "SECRETS"));
        assert!(p.excludes_table(Some("shop"), "staff"));
        assert!(!p.excludes_table(Some("hr"), "staff"));
        assert!(p.excludes_column(Some("x"), "customers", "notes"));
        assert!(!p.excludes_column(Some("x"), "orders", "notes"));
        assert!(p.excludes_column(None, "t", "ssn_raw"));
        assert!(p.is_sensitive("Contact_Email"));
        assert!(!p.is_sensitive("name"));
        assert!(PrivacyPolicy::recommended().is_sensitive("phone_number"));

        let mut rs = ResultSet {
            columns: vec![
                ResultColumn { name: "id".into(), type_name: "int".into() },
                ResultColumn { name: "email".into(), type_name: "text".into() },
                ResultColumn { name: "ssn_raw".into(), type_name: "text".into() },
            ],
            rows: vec![vec![json!(1), json!("a@b.c"), json!(null)]],
            row_count: 1,
            truncated: false,
            execution_time_ms: 0,
        };
        p.mask(&mut rs);
        assert_eq!(rs.rows[0], vec![json!(1), json!(REDACTED), json!(null)]);
    }
}
