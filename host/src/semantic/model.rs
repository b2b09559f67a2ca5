//! The semantic model's shape: what an admin (or a generator) says about a connection's tables
//! and columns beyond their names and types.
//!
//! Reading is lenient on purpose, because models are written by people and by LLMs: unknown keys
//! are dropped, an enum string that is not one of ours becomes `unknown` (or is left out where
//! the field is optional), and a missing field takes its default. Only a value of the wrong JSON
//! kind where a string, list or object belongs (a number as a description) is refused.

use std::collections::BTreeMap;

use serde::de::Deserializer;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// An enum read from any JSON value: one of its names (case-insensitive, `-` and spaces taken as
/// `_`) or, for anything else, `$fallback`.
macro_rules! lenient_enum {
    ($(#[$meta:meta])* $name:ident, fallback = $fallback:ident, { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            /// The name as written in JSON.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            /// The variant called `text`, if there is one.
            pub fn parse(text: &str) -> Option<Self> {
                let norm = text.trim().to_ascii_lowercase().replace(['-', ' '], "_");
                match norm.as_str() { $($text => Some($name::$variant),)+ _ => None }
            }
        }

        impl Default for $name {
            fn default() -> Self {
                $name::$fallback
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let value = Value::deserialize(d)?;
                Ok(value.as_str().and_then($name::parse).unwrap_or($name::$fallback))
            }
        }
    };
}

/// An optional enum field: a known name gives `Some`, anything else (including `null`) `None`.
fn lenient_option<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: LenientParse,
{
    let value = Value::deserialize(d)?;
    Ok(value.as_str().and_then(T::parse_text))
}

/// Enums an optional field may hold (see [`lenient_option`]).
trait LenientParse: Sized {
    fn parse_text(text: &str) -> Option<Self>;
}

macro_rules! lenient_parse {
    ($($t:ty),*) => { $(impl LenientParse for $t { fn parse_text(text: &str) -> Option<Self> { <$t>::parse(text) } })* };
}

/// A text field that also takes a number or a boolean (a raw value `1`, `true`), as its JSON text;
/// `null` is the empty string.
pub(crate) fn scalar_text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    match Value::deserialize(d)? {
        Value::String(s) => Ok(s),
        Value::Null => Ok(String::new()),
        v @ (Value::Number(_) | Value::Bool(_)) => Ok(v.to_string()),
        other => Err(serde::de::Error::custom(format!("expected a string, number or boolean, got {}", kind(&other)))),
    }
}

/// A text field where `null` means empty.
pub(crate) fn text_or_null<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(Option::<String>::deserialize(d)?.unwrap_or_default())
}

/// A list field where `null` means empty.
pub(crate) fn list_or_null<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Vec<T>, D::Error> {
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

/// A boolean field where `null` means false.
fn bool_or_null<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    Ok(Option::<bool>::deserialize(d)?.unwrap_or_default())
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

lenient_enum!(
    /// What a column holds, for people and for the prompt.
    SemanticType, fallback = Unknown, {
        /// A key or code that identifies a row.
        Identifier = "identifier",
        /// A status or state code.
        StatusFlag = "status_flag",
        /// Money.
        Monetary = "monetary",
        /// A percentage.
        Percentage = "percentage",
        /// A point in time.
        Timestamp = "timestamp",
        /// A calendar date.
        Date = "date",
        /// Prose.
        FreeText = "free_text",
        /// One of a few categories.
        Categorical = "categorical",
        /// Yes / no.
        BooleanFlag = "boolean_flag",
        /// A reference to another table.
        ForeignKey = "foreign_key",
        /// A URL.
        Url = "url",
        /// An e-mail address.
        Email = "email",
        /// A phone number.
        Phone = "phone",
        /// A measured quantity (see `unit`).
        Measurement = "measurement",
        /// A count of things.
        Count = "count",
        /// Not known (also what any unrecognised value becomes).
        Unknown = "unknown",
    }
);

lenient_enum!(
    /// Roughly how many distinct values a column has.
    Cardinality, fallback = High, {
        /// Every value distinct.
        Unique = "unique",
        /// Many distinct values.
        High = "high",
        /// Some.
        Medium = "medium",
        /// A handful.
        Low = "low",
    }
);

lenient_enum!(
    /// How a measure is usually aggregated.
    Aggregation, fallback = Sum, {
        /// SUM.
        Sum = "sum",
        /// COUNT.
        Count = "count",
        /// COUNT(DISTINCT …).
        CountDistinct = "count_distinct",
        /// An approximate distinct count.
        CountDistinctApprox = "count_distinct_approx",
        /// AVG.
        Average = "average",
        /// MAX.
        Max = "max",
        /// MIN.
        Min = "min",
        /// The median.
        Median = "median",
    }
);

lenient_enum!(
    /// The finest time unit a time column is meaningful at.
    TimeGranularity, fallback = Day, {
        /// Seconds.
        Second = "second",
        /// Minutes.
        Minute = "minute",
        /// Hours.
        Hour = "hour",
        /// Days.
        Day = "day",
        /// Weeks.
        Week = "week",
        /// Months.
        Month = "month",
        /// Quarters.
        Quarter = "quarter",
        /// Years.
        Year = "year",
    }
);

lenient_enum!(
    /// How a metric's value is best shown.
    FormatHint, fallback = Integer, {
        /// Euros.
        CurrencyEur = "currency_eur",
        /// US dollars.
        CurrencyUsd = "currency_usd",
        /// Pounds sterling.
        CurrencyGbp = "currency_gbp",
        /// A percentage.
        Percentage = "percentage",
        /// A whole number.
        Integer = "integer",
    }
);

lenient_enum!(
    /// The kind of a business metric, which says which of its fields matter.
    MetricType, fallback = Simple, {
        /// `aggregation` over `definition`, with `measure_filters`.
        Simple = "simple",
        /// `numerator_expr` / `denominator_expr`.
        Ratio = "ratio",
        /// An expression over other metrics (`definition`).
        Derived = "derived",
        /// A running `aggregation` of `definition` over `window`.
        Cumulative = "cumulative",
        /// `conversion_measure` over `base_measure` per `entity` within `window`.
        Conversion = "conversion",
    }
);

lenient_enum!(
    /// How rows of two tables relate.
    RelationshipType, fallback = ManyToOne, {
        /// Many `from` rows per `to` row.
        ManyToOne = "many_to_one",
        /// One to one.
        OneToOne = "one_to_one",
        /// One `from` row per many `to` rows.
        OneToMany = "one_to_many",
    }
);

lenient_enum!(
    /// Where an automatic generation of the model stands.
    GenerationStatus, fallback = Idle, {
        /// Nothing running.
        Idle = "idle",
        /// Tables are being annotated in batches.
        TablesPartial = "tables_partial",
        /// Done.
        Complete = "complete",
    }
);

lenient_parse!(Cardinality, Aggregation, TimeGranularity, FormatHint, RelationshipType);

/// A raw value of a column and what it means.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ValueMapping {
    /// The value as stored (`"A"`, `1`).
    #[serde(default, deserialize_with = "scalar_text")]
    pub raw_value: String,
    /// What people call it (`"Active"`).
    #[serde(default, deserialize_with = "scalar_text")]
    pub display_value: String,
    /// More about it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// What is known about one column.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ColumnSemantic {
    /// The name people use.
    #[serde(default, deserialize_with = "text_or_null")]
    pub display_name: String,
    /// What it holds.
    #[serde(default)]
    pub description: Option<String>,
    /// Codes and their meanings.
    #[serde(default, deserialize_with = "list_or_null")]
    pub value_mappings: Vec<ValueMapping>,
    /// Personal or secret data that must not be selected.
    #[serde(default, deserialize_with = "bool_or_null")]
    pub is_sensitive: bool,
    /// What kind of value it is.
    #[serde(default)]
    pub semantic_type: SemanticType,
    /// How many distinct values.
    #[serde(default, deserialize_with = "lenient_option")]
    pub cardinality: Option<Cardinality>,
    /// ISO currency code of a monetary column.
    #[serde(default)]
    pub currency: Option<String>,
    /// Unit of a measurement.
    #[serde(default)]
    pub unit: Option<String>,
    /// How it is usually aggregated.
    #[serde(default, deserialize_with = "lenient_option")]
    pub default_aggregation: Option<Aggregation>,
    /// Summing it across rows is meaningless (balances, ratios).
    #[serde(default, deserialize_with = "bool_or_null")]
    pub is_non_additive: bool,
    /// The finest meaningful time unit of a time column.
    #[serde(default, deserialize_with = "lenient_option")]
    pub time_granularity: Option<TimeGranularity>,
}

/// A drill-down path, coarse to fine.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Hierarchy {
    /// Its name.
    #[serde(default, deserialize_with = "text_or_null")]
    pub name: String,
    /// Column names, coarse to fine.
    #[serde(default, deserialize_with = "list_or_null")]
    pub levels: Vec<String>,
}

/// What is known about one table.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TableSemantic {
    /// The name people use.
    #[serde(default, deserialize_with = "text_or_null")]
    pub display_name: String,
    /// What a row is.
    #[serde(default)]
    pub description: Option<String>,
    /// SQL conditions every query of the table should apply (`deleted_at IS NULL`).
    #[serde(default, deserialize_with = "list_or_null")]
    pub default_filters: Vec<String>,
    /// Columns by name.
    #[serde(default)]
    pub columns: BTreeMap<String, ColumnSemantic>,
    /// The column that dates a row (a timestamp).
    #[serde(default)]
    pub primary_timestamp_column: Option<String>,
    /// The column that dates a row (a date).
    #[serde(default)]
    pub primary_date_column: Option<String>,
    /// What one row stands for ("one order line").
    #[serde(default)]
    pub grain: Option<String>,
    /// Drill-down paths.
    #[serde(default, deserialize_with = "list_or_null")]
    pub hierarchies: Vec<Hierarchy>,
    /// Columns the table is partitioned by.
    #[serde(default, deserialize_with = "list_or_null")]
    pub partition_columns: Vec<String>,
    /// Columns the table is clustered by.
    #[serde(default, deserialize_with = "list_or_null")]
    pub cluster_columns: Vec<String>,
    /// SQL that defines the table when it is virtual.
    #[serde(default)]
    pub base_sql: Option<String>,
    /// The business area (`sales`, `billing`).
    #[serde(default)]
    pub domain: Option<String>,
}

/// A named business measure.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BusinessMetric {
    /// Its name ("revenue").
    #[serde(default, deserialize_with = "text_or_null")]
    pub name: String,
    /// Which of the fields below matter.
    #[serde(default)]
    pub metric_type: MetricType,
    /// What it means.
    #[serde(default, deserialize_with = "text_or_null")]
    pub description: String,
    /// The SQL expression (simple, derived, cumulative).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub definition: Option<String>,
    /// The aggregation (simple, cumulative).
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient_option")]
    pub aggregation: Option<Aggregation>,
    /// Conditions on the measure itself (simple).
    #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "list_or_null")]
    pub measure_filters: Vec<String>,
    /// Numerator (ratio).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub numerator_expr: Option<String>,
    /// Denominator (ratio).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub denominator_expr: Option<String>,
    /// The window (cumulative, conversion), e.g. `7 days`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<String>,
    /// The starting measure (conversion).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_measure: Option<String>,
    /// The converted measure (conversion).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversion_measure: Option<String>,
    /// The entity that converts (conversion).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entity: Option<String>,
    /// How the rate is computed (conversion).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calculation: Option<String>,
    /// Conditions the metric always applies.
    #[serde(default, deserialize_with = "list_or_null")]
    pub filters: Vec<String>,
    /// Tables it is computed from.
    #[serde(default, deserialize_with = "list_or_null")]
    pub related_tables: Vec<String>,
    /// How to show it.
    #[serde(default, deserialize_with = "lenient_option")]
    pub format_hint: Option<FormatHint>,
    /// Summing it across a dimension is meaningless.
    #[serde(default, deserialize_with = "bool_or_null")]
    pub is_non_additive: bool,
    /// The dimension it cannot be summed across (e.g. time for a balance).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub non_additive_dimension: Option<String>,
}

/// A join hint: how some tables are usually joined.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct JoinHint {
    /// When to use it.
    #[serde(default, deserialize_with = "text_or_null")]
    pub description: String,
    /// The tables it joins.
    #[serde(default, deserialize_with = "list_or_null")]
    pub tables: Vec<String>,
    /// The join condition or clause.
    #[serde(default, deserialize_with = "text_or_null")]
    pub join_pattern: String,
}

/// A computed column available on some tables.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DerivedColumn {
    /// Its name.
    #[serde(default, deserialize_with = "text_or_null")]
    pub name: String,
    /// The SQL expression.
    #[serde(default, deserialize_with = "text_or_null")]
    pub sql_expression: String,
    /// Tables the expression reads.
    #[serde(default, deserialize_with = "list_or_null")]
    pub base_tables: Vec<String>,
    /// What it means.
    #[serde(default, deserialize_with = "text_or_null")]
    pub description: String,
    /// How to show it.
    #[serde(default, deserialize_with = "lenient_option")]
    pub format_hint: Option<FormatHint>,
    /// Tables on which it may be used.
    #[serde(default, deserialize_with = "list_or_null")]
    pub available_on: Vec<String>,
}

/// A foreign-key relationship.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Relationship {
    /// The referencing table.
    #[serde(default, deserialize_with = "text_or_null")]
    pub from_table: String,
    /// The referencing column.
    #[serde(default, deserialize_with = "text_or_null")]
    pub from_column: String,
    /// The referenced table.
    #[serde(default, deserialize_with = "text_or_null")]
    pub to_table: String,
    /// The referenced column.
    #[serde(default, deserialize_with = "text_or_null")]
    pub to_column: String,
    /// The join condition.
    #[serde(default, deserialize_with = "text_or_null")]
    pub join_sql: String,
    /// Cardinality of the relationship.
    #[serde(default, deserialize_with = "lenient_option")]
    pub relationship_type: Option<RelationshipType>,
    /// The key is NOT NULL, so an inner join loses no rows.
    #[serde(default, deserialize_with = "bool_or_null")]
    pub is_required: bool,
    /// More about it.
    #[serde(default)]
    pub description: Option<String>,
    /// What the referenced row is ("customer").
    #[serde(default)]
    pub entity_type: Option<String>,
}

/// A named condition (`vip customers` → `lifetime_value > 10000`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Segment {
    /// Its name.
    #[serde(default, deserialize_with = "text_or_null")]
    pub name: String,
    /// The WHERE fragment.
    #[serde(default, deserialize_with = "text_or_null")]
    pub sql_expression: String,
    /// What it means.
    #[serde(default, deserialize_with = "text_or_null")]
    pub description: String,
    /// Tables it applies to.
    #[serde(default, deserialize_with = "list_or_null")]
    pub applicable_tables: Vec<String>,
}

/// How far an automatic generation has come.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GenerationProgress {
    /// Tables annotated so far.
    #[serde(default)]
    pub tables_done: u64,
    /// Tables to annotate.
    #[serde(default)]
    pub tables_total: u64,
    /// Tables per batch.
    #[serde(default)]
    pub batch_size: u64,
}

/// Everything known about a connection's data beyond its schema. Stored as one JSON document
/// per connection; tables are keyed `"schema.table"` (or `"table"` where there are no schemas).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SemanticModel {
    /// Tables by key.
    #[serde(default)]
    pub tables: BTreeMap<String, TableSemantic>,
    /// Business measures.
    #[serde(default, deserialize_with = "list_or_null")]
    pub business_metrics: Vec<BusinessMetric>,
    /// How tables are usually joined.
    #[serde(default, deserialize_with = "list_or_null")]
    pub common_joins: Vec<JoinHint>,
    /// Computed columns.
    #[serde(default, deserialize_with = "list_or_null")]
    pub derived_columns: Vec<DerivedColumn>,
    /// Foreign keys.
    #[serde(default, deserialize_with = "list_or_null")]
    pub relationships: Vec<Relationship>,
    /// Named conditions.
    #[serde(default, deserialize_with = "list_or_null")]
    pub segments: Vec<Segment>,
    /// Free text the prompt starts its business context with.
    #[serde(default, deserialize_with = "list_or_null")]
    pub notes: Vec<String>,
    /// Dialect snippets for relative dates (`today`, `this_month`, …).
    #[serde(default)]
    pub time_expressions: BTreeMap<String, String>,
    /// The database's time zone.
    #[serde(default)]
    pub db_timezone: Option<String>,
    /// Fingerprint of the schema the model was made for.
    #[serde(default, deserialize_with = "text_or_null")]
    pub schema_hash: String,
    /// The dialect the SQL fragments are written in.
    #[serde(default, deserialize_with = "text_or_null")]
    pub source_dialect: String,
    /// What a generation could not do.
    #[serde(default, deserialize_with = "list_or_null")]
    pub generation_warnings: Vec<String>,
    /// Where a generation stands.
    #[serde(default)]
    pub generation_status: GenerationStatus,
    /// How far it has come.
    #[serde(default)]
    pub generation_progress: Option<GenerationProgress>,
    /// When it was generated (RFC 3339).
    #[serde(default)]
    pub generated_at: Option<String>,
    /// A person has reviewed it.
    #[serde(default, deserialize_with = "bool_or_null")]
    pub is_user_reviewed: bool,
    /// The model that generated it.
    #[serde(default)]
    pub generation_model: Option<String>,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn unknown_keys_are_dropped_and_bad_enums_coerced() {
        let model: SemanticModel = serde_json::from_value(json!({
            "tables": {"public.orders": {
                "display_name": "Orders",
                "whatever": 1,
                "columns": {"status": {
                    "semantic_type": "Status-Flag", "cardinality": "gigantic", "default_aggregation": 3,
                    "value_mappings": [{"raw_value": 1, "display_value": "Active"}]
                }, "note": {"semantic_type": "poem"}}
            }},
            "relationships": [{"from_table": "orders", "relationship_type": "many_to_many"}],
            "generation_status": "weird",
            "extra_section": []
        }))
        .unwrap();
        let table = &model.tables["public.orders"];
        let status = &table.columns["status"];
        assert_eq!(status.semantic_type, SemanticType::StatusFlag);
        assert_eq!(status.cardinality, None);
        assert_eq!(status.default_aggregation, None);
        assert_eq!(status.value_mappings[0].raw_value, "1");
        assert_eq!(table.columns["note"].semantic_type, SemanticType::Unknown);
        assert_eq!(model.relationships[0].relationship_type, None);
        assert_eq!(model.generation_status, GenerationStatus::Idle);
        let back = serde_json::to_value(&model).unwrap();
        assert!(back.get("extra_section").is_none());
        assert!(back["tables"]["public.orders"].get("whatever").is_none());
        assert_eq!(back["tables"]["public.orders"]["columns"]["note"]["semantic_type"], "unknown");
    }

    #[test]
    fn a_value_of_the_wrong_kind_is_refused() {
        assert!(serde_json::from_value::<SemanticModel>(json!({"notes": "one note"})).is_err());
        assert!(serde_json::from_value::<SemanticModel>(json!({"tables": {"t": {"description": 5}}})).is_err());
    }
}
