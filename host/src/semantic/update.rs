//! A partial update of a semantic model (the body of `PUT /connections/{id}/semantic`) and how
//! it is merged: `tables` deep-merges per table and per column (a `null` table or column removes
//! it); every other section given replaces the stored one wholesale; what is left out stays.

use std::collections::BTreeMap;

use serde::de::Deserializer;
use serde::{Deserialize, Serialize};

use super::model::{
    Aggregation, BusinessMetric, Cardinality, ColumnSemantic, DerivedColumn, Hierarchy, JoinHint, Relationship,
    Segment, SemanticModel, SemanticType, TableSemantic, TimeGranularity, ValueMapping, list_or_null,
};

/// The longest table or column key accepted, in characters.
pub const MAX_KEY_CHARS: usize = 256;

/// `absent` → `None`; `null` → `Some(None)`; a value → `Some(Some(v))`: so an update can clear a
/// field as well as leave it alone.
fn nullable<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// Changes to one column; every field optional (`null` clears an optional one).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ColumnUpdate {
    /// New display name.
    #[serde(default, deserialize_with = "nullable")]
    pub display_name: Option<Option<String>>,
    /// New description.
    #[serde(default, deserialize_with = "nullable")]
    pub description: Option<Option<String>>,
    /// New value mappings (replace the old ones).
    #[serde(default, deserialize_with = "nullable")]
    pub value_mappings: Option<Option<Vec<ValueMapping>>>,
    /// New sensitivity.
    #[serde(default)]
    pub is_sensitive: Option<bool>,
    /// New semantic type (an unknown name becomes `unknown`).
    #[serde(default)]
    pub semantic_type: Option<SemanticType>,
    /// New cardinality.
    #[serde(default, deserialize_with = "nullable_cardinality")]
    pub cardinality: Option<Option<Cardinality>>,
    /// New currency.
    #[serde(default, deserialize_with = "nullable")]
    pub currency: Option<Option<String>>,
    /// New unit.
    #[serde(default, deserialize_with = "nullable")]
    pub unit: Option<Option<String>>,
    /// New default aggregation.
    #[serde(default, deserialize_with = "nullable_aggregation")]
    pub default_aggregation: Option<Option<Aggregation>>,
    /// New additivity.
    #[serde(default)]
    pub is_non_additive: Option<bool>,
    /// New time granularity.
    #[serde(default, deserialize_with = "nullable_granularity")]
    pub time_granularity: Option<Option<TimeGranularity>>,
}

fn nullable_cardinality<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<Cardinality>>, D::Error> {
    let v = serde_json::Value::deserialize(d)?;
    Ok(Some(v.as_str().and_then(Cardinality::parse)))
}

fn nullable_aggregation<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<Aggregation>>, D::Error> {
    let v = serde_json::Value::deserialize(d)?;
    Ok(Some(v.as_str().and_then(Aggregation::parse)))
}

fn nullable_granularity<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<TimeGranularity>>, D::Error> {
    let v = serde_json::Value::deserialize(d)?;
    Ok(Some(v.as_str().and_then(TimeGranularity::parse)))
}

/// Changes to one table; every field optional (`null` clears an optional one).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TableUpdate {
    /// New display name.
    #[serde(default, deserialize_with = "nullable")]
    pub display_name: Option<Option<String>>,
    /// New description.
    #[serde(default, deserialize_with = "nullable")]
    pub description: Option<Option<String>>,
    /// New default filters (replace the old ones).
    #[serde(default, deserialize_with = "nullable")]
    pub default_filters: Option<Option<Vec<String>>>,
    /// New timestamp column.
    #[serde(default, deserialize_with = "nullable")]
    pub primary_timestamp_column: Option<Option<String>>,
    /// New date column.
    #[serde(default, deserialize_with = "nullable")]
    pub primary_date_column: Option<Option<String>>,
    /// New grain.
    #[serde(default, deserialize_with = "nullable")]
    pub grain: Option<Option<String>>,
    /// New domain.
    #[serde(default, deserialize_with = "nullable")]
    pub domain: Option<Option<String>>,
    /// New hierarchies (replace the old ones).
    #[serde(default, deserialize_with = "nullable")]
    pub hierarchies: Option<Option<Vec<Hierarchy>>>,
    /// New partition columns.
    #[serde(default, deserialize_with = "nullable")]
    pub partition_columns: Option<Option<Vec<String>>>,
    /// New cluster columns.
    #[serde(default, deserialize_with = "nullable")]
    pub cluster_columns: Option<Option<Vec<String>>>,
    /// New defining SQL.
    #[serde(default, deserialize_with = "nullable")]
    pub base_sql: Option<Option<String>>,
    /// Column changes by name, merged into the stored columns; `null` removes a column.
    #[serde(default)]
    pub columns: Option<BTreeMap<String, Option<ColumnUpdate>>>,
}

/// The body of `PUT /connections/{id}/semantic`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SemanticModelUpdate {
    /// Table changes by key, merged into the stored tables; `null` removes a table.
    #[serde(default)]
    pub tables: Option<BTreeMap<String, Option<TableUpdate>>>,
    /// Replaces the business metrics.
    #[serde(default, deserialize_with = "nullable_list")]
    pub business_metrics: Option<Vec<BusinessMetric>>,
    /// Replaces the join hints.
    #[serde(default, deserialize_with = "nullable_list")]
    pub common_joins: Option<Vec<JoinHint>>,
    /// Replaces the relationships.
    #[serde(default, deserialize_with = "nullable_list")]
    pub relationships: Option<Vec<Relationship>>,
    /// Replaces the derived columns.
    #[serde(default, deserialize_with = "nullable_list")]
    pub derived_columns: Option<Vec<DerivedColumn>>,
    /// Replaces the segments.
    #[serde(default, deserialize_with = "nullable_list")]
    pub segments: Option<Vec<Segment>>,
    /// Replaces the notes.
    #[serde(default, deserialize_with = "nullable_list")]
    pub notes: Option<Vec<String>>,
    /// Replaces the time expressions.
    #[serde(default)]
    pub time_expressions: Option<BTreeMap<String, String>>,
    /// Marks the model reviewed (or not).
    #[serde(default)]
    pub is_user_reviewed: Option<bool>,
}

/// A present list section: `null` is the empty list (the section is cleared).
fn nullable_list<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Vec<T>>, D::Error> {
    list_or_null(d).map(Some)
}

/// Why an update was refused (nothing is changed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpdateError {
    /// A table or column key is empty, too long or holds a control character.
    #[error("{what} key {key:?} is not allowed: {reason}")]
    BadKey {
        /// `table` or `column`.
        what: &'static str,
        /// The key (cut to a readable length).
        key: String,
        /// Why.
        reason: &'static str,
    },
    /// Some text holds a NUL character, which the store cannot keep.
    #[error("the model contains a NUL character")]
    NulCharacter,
}

impl SemanticModelUpdate {
    /// Check keys and text; `Ok` means [`apply`](Self::apply) will store cleanly.
    pub fn validate(&self) -> Result<(), UpdateError> {
        for (key, table) in self.tables.iter().flatten() {
            check_key("table", key)?;
            for column in table.iter().filter_map(|t| t.columns.as_ref()).flat_map(|c| c.keys()) {
                check_key("column", column)?;
            }
        }
        let text = serde_json::to_string(self).unwrap_or_default();
        if text.contains("\\u0000") {
            return Err(UpdateError::NulCharacter);
        }
        Ok(())
    }

    /// `model` with this update merged in.
    pub fn apply(self, mut model: SemanticModel) -> SemanticModel {
        if let Some(tables) = self.tables {
            for (key, change) in tables {
                match change {
                    None => {
                        model.tables.remove(&key);
                    }
                    Some(change) => change.apply(model.tables.entry(key).or_default()),
                }
            }
        }
        macro_rules! replace {
            ($($f:ident),*) => { $( if let Some(v) = self.$f { model.$f = v; } )* };
        }
        replace!(business_metrics, common_joins, relationships, derived_columns, segments, notes, time_expressions);
        if let Some(reviewed) = self.is_user_reviewed {
            model.is_user_reviewed = reviewed;
        }
        model
    }
}

impl TableUpdate {
    fn apply(self, table: &mut TableSemantic) {
        if let Some(v) = self.display_name {
            table.display_name = v.unwrap_or_default();
        }
        if let Some(v) = self.default_filters {
            table.default_filters = v.unwrap_or_default();
        }
        if let Some(v) = self.hierarchies {
            table.hierarchies = v.unwrap_or_default();
        }
        if let Some(v) = self.partition_columns {
            table.partition_columns = v.unwrap_or_default();
        }
        if let Some(v) = self.cluster_columns {
            table.cluster_columns = v.unwrap_or_default();
        }
        macro_rules! set {
            ($($f:ident),*) => { $( if let Some(v) = self.$f { table.$f = v; } )* };
        }
        set!(description, primary_timestamp_column, primary_date_column, grain, domain, base_sql);
        for (name, change) in self.columns.into_iter().flatten() {
            match change {
                None => {
                    table.columns.remove(&name);
                }
                Some(change) => change.apply(table.columns.entry(name).or_default()),
            }
        }
    }
}

impl ColumnUpdate {
    fn apply(self, column: &mut ColumnSemantic) {
        if let Some(v) = self.display_name {
            column.display_name = v.unwrap_or_default();
        }
        if let Some(v) = self.value_mappings {
            column.value_mappings = v.unwrap_or_default();
        }
        macro_rules! set {
            ($($f:ident),*) => { $( if let Some(v) = self.$f { column.$f = v; } )* };
        }
        set!(description, is_sensitive, semantic_type, cardinality, currency, unit, default_aggregation);
        set!(is_non_additive, time_granularity);
    }
}

fn check_key(what: &'static str, key: &str) -> Result<(), UpdateError> {
    let bad = |reason| UpdateError::BadKey { what, key: key.chars().take(80).collect(), reason };
    if key.trim().is_empty() {
        return Err(bad("it is empty"));
    }
    if key.chars().count() > MAX_KEY_CHARS {
        return Err(bad("it is longer than 256 characters"));
    }
    if key.chars().any(char::is_control) {
        return Err(bad("it holds a control character"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn model() -> SemanticModel {
        serde_json::from_value(json!({
            "tables": {
                "public.orders": {
                    "display_name": "Orders",
                    "description": "One row per order",
                    "default_filters": ["deleted_at IS NULL"],
                    "columns": {
                        "status": {"display_name": "Status", "value_mappings": [{"raw_value": "A", "display_value": "Active"}]},
                        "total": {"display_name": "Total", "semantic_type": "monetary", "currency": "EUR"}
                    }
                },
                "public.customers": {"display_name": "Customers"}
            },
            "notes": ["Fiscal year starts in April"],
            "segments": [{"name": "big", "sql_expression": "total > 1000"}]
        }))
        .unwrap()
    }

    fn update(v: serde_json::Value) -> SemanticModelUpdate {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn tables_merge_per_table_and_per_column() {
        let merged =
            update(json!({"tables": {"public.orders": {"columns": {"status": {"description": "Order state"}}}}}))
                .apply(model());
        let orders = &merged.tables["public.orders"];
        assert_eq!(orders.display_name, "Orders", "untouched table fields stay");
        assert_eq!(orders.default_filters, ["deleted_at IS NULL"]);
        let status = &orders.columns["status"];
        assert_eq!(status.description.as_deref(), Some("Order state"));
        assert_eq!(status.display_name, "Status", "untouched column fields stay");
        assert_eq!(status.value_mappings.len(), 1);
        assert_eq!(orders.columns["total"].currency.as_deref(), Some("EUR"), "other columns stay");
        assert!(merged.tables.contains_key("public.customers"), "other tables stay");
        assert_eq!(merged.notes, ["Fiscal year starts in April"], "sections not given stay");
    }

    #[test]
    fn new_tables_and_columns_are_created_and_null_removes() {
        let merged = update(json!({"tables": {
            "public.items": {"display_name": "Items", "columns": {"sku": {"semantic_type": "identifier"}}},
            "public.customers": null,
            "public.orders": {"description": null, "columns": {"total": null}}
        }}))
        .apply(model());
        assert_eq!(merged.tables["public.items"].columns["sku"].semantic_type, SemanticType::Identifier);
        assert!(!merged.tables.contains_key("public.customers"));
        let orders = &merged.tables["public.orders"];
        assert_eq!(orders.description, None);
        assert!(!orders.columns.contains_key("total"));
        assert!(orders.columns.contains_key("status"));
    }

    #[test]
    fn other_sections_are_replaced_wholesale() {
        let merged = update(json!({"notes": ["Amounts exclude VAT"], "segments": null, "is_user_reviewed": true}))
            .apply(model());
        assert_eq!(merged.notes, ["Amounts exclude VAT"]);
        assert!(merged.segments.is_empty());
        assert!(merged.is_user_reviewed);
        assert_eq!(merged.tables, model().tables);
    }

    #[test]
    fn bad_keys_and_nul_are_refused() {
        assert!(update(json!({"tables": {" ": {}}})).validate().is_err());
        assert!(update(json!({"tables": {"t": {"columns": {"a\nb": {}}}}})).validate().is_err());
        assert!(update(json!({"notes": ["a\u{0}b"]})).validate().is_err());
        assert!(update(json!({"tables": {"t": {"columns": {"c": {}}}}})).validate().is_ok());
        assert!(serde_json::from_value::<SemanticModelUpdate>(json!({"tables": {"t": {"columns": 3}}})).is_err());
    }
}
