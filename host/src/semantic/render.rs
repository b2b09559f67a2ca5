//! The semantic model as the prompt's "Business context" section: compact text the model reads
//! next to the schema.
//!
//! Order: notes first (they are the operator's standing instructions), then for each table in
//! scope its description, default filters and annotated columns (display names, descriptions,
//! value mappings as "status 'A' means Active"), then join hints, relationships, metrics,
//! segments and derived columns. A section with few entries is shown whole; a longer one only
//! with the entries that touch a table in scope or are named in the question. Relative-date
//! snippets are added only when the question is about time.

use std::fmt::Write;

use super::model::{ColumnSemantic, SemanticModel, SemanticType, TableSemantic};

/// Entries a section may have and still be shown whole, whatever the scope.
pub const SMALL_SECTION: usize = 8;

/// Value mappings shown per column at most; the rest are counted.
pub const MAX_VALUE_MAPPINGS: usize = 40;

/// The business-context section for a question whose schema was narrowed to `tables_in_scope`
/// (keys as `"schema.table"` or `"table"`; empty means every table of the model). Empty when the
/// model has nothing to say about them.
pub fn render(model: &SemanticModel, question: &str, tables_in_scope: &[String]) -> String {
    let scope = Scope::new(tables_in_scope);
    let question_lc = question.to_lowercase();
    let mut out = String::new();

    let notes: Vec<&str> = model.notes.iter().map(|n| n.trim()).filter(|n| !n.is_empty()).collect();
    if !notes.is_empty() {
        out.push_str("Notes:\n");
        for note in notes {
            let _ = writeln!(out, "- {}", one_line(note));
        }
    }

    for (key, table) in model.tables.iter().filter(|(key, _)| scope.contains(key)) {
        render_table(&mut out, key, table);
    }

    // A section entry is relevant when it names a table in scope or is named in the question.
    let relevant = |tables: &[&str], name: &str, texts: &[&str]| {
        scope.is_all()
            || tables.iter().any(|t| scope.contains(t))
            || texts.iter().any(|t| scope.mentioned_in(t))
            || (!name.trim().is_empty() && question_lc.contains(&name.trim().to_lowercase()))
    };

    let joins: Vec<String> = pick(&model.common_joins, |j| {
        let tables: Vec<&str> = j.tables.iter().map(String::as_str).collect();
        relevant(&tables, "", &[&j.join_pattern])
    })
    .filter(|j| !j.join_pattern.trim().is_empty())
    .map(|j| {
        let mut line = format!("- {}: {}", j.tables.join(" + "), one_line(&j.join_pattern));
        suffix(&mut line, &j.description);
        line
    })
    .collect();
    section(&mut out, "Join hints", joins);

    let relationships: Vec<String> = pick(&model.relationships, |r| relevant(&[&r.from_table, &r.to_table], "", &[]))
        .map(|r| {
            let mut line = if r.join_sql.trim().is_empty() {
                format!("- {}.{} -> {}.{}", r.from_table, r.from_column, r.to_table, r.to_column)
            } else {
                format!("- {}", one_line(&r.join_sql))
            };
            let mut traits = Vec::new();
            if let Some(kind) = r.relationship_type {
                traits.push(kind.as_str().to_string());
            }
            if r.is_required {
                traits.push("never null: an inner join keeps every row".to_string());
            }
            if !traits.is_empty() {
                let _ = write!(line, " ({})", traits.join(", "));
            }
            suffix(&mut line, r.description.as_deref().unwrap_or(""));
            line
        })
        .collect();
    section(&mut out, "Relationships", relationships);

    let metrics: Vec<String> = pick(&model.business_metrics, |m| {
        let tables: Vec<&str> = m.related_tables.iter().map(String::as_str).collect();
        relevant(&tables, &m.name, &[m.definition.as_deref().unwrap_or("")])
    })
    .filter(|m| !m.name.trim().is_empty())
    .map(|m| {
        let formula = match (&m.numerator_expr, &m.denominator_expr) {
            (Some(n), Some(d)) => format!("({}) / NULLIF({}, 0)", n.trim(), d.trim()),
            _ => match (m.aggregation, m.definition.as_deref()) {
                (Some(agg), Some(def)) if !def.to_ascii_lowercase().contains(&format!("{}(", agg.as_str())) => {
                    format!("{}({})", agg.as_str().to_uppercase(), def.trim())
                }
                (_, Some(def)) => def.trim().to_string(),
                (_, None) => m.base_measure.clone().unwrap_or_default(),
            },
        };
        let mut line = format!("- {}", m.name.trim());
        if !formula.is_empty() {
            let _ = write!(line, " = {}", one_line(&formula));
        }
        let filters: Vec<&str> =
            m.filters.iter().chain(&m.measure_filters).map(|f| f.trim()).filter(|f| !f.is_empty()).collect();
        if !filters.is_empty() {
            let _ = write!(line, " where {}", filters.join(" AND "));
        }
        if let Some(window) = m.window.as_deref().filter(|w| !w.trim().is_empty()) {
            let _ = write!(line, " over {}", window.trim());
        }
        if m.is_non_additive {
            match m.non_additive_dimension.as_deref() {
                Some(dim) => {
                    let _ = write!(line, " (do not sum across {dim})");
                }
                None => line.push_str(" (not additive)"),
            }
        }
        suffix(&mut line, &m.description);
        line
    })
    .collect();
    section(&mut out, "Metrics (use these exact definitions)", metrics);

    let segments: Vec<String> = pick(&model.segments, |s| {
        let tables: Vec<&str> = s.applicable_tables.iter().map(String::as_str).collect();
        relevant(&tables, &s.name, &[])
    })
    .filter(|s| !s.name.trim().is_empty() && !s.sql_expression.trim().is_empty())
    .map(|s| {
        let mut line = format!("- {}: {}", s.name.trim(), one_line(&s.sql_expression));
        if !s.applicable_tables.is_empty() {
            let _ = write!(line, " (on {})", s.applicable_tables.join(", "));
        }
        suffix(&mut line, &s.description);
        line
    })
    .collect();
    section(&mut out, "Segments (named conditions)", segments);

    let derived: Vec<String> = pick(&model.derived_columns, |d| {
        let tables: Vec<&str> = d.base_tables.iter().chain(&d.available_on).map(String::as_str).collect();
        relevant(&tables, &d.name, &[])
    })
    .filter(|d| !d.name.trim().is_empty() && !d.sql_expression.trim().is_empty())
    .map(|d| {
        let mut line = format!("- {} = {}", d.name.trim(), one_line(&d.sql_expression));
        if !d.available_on.is_empty() {
            let _ = write!(line, " (on {})", d.available_on.join(", "));
        }
        suffix(&mut line, &d.description);
        line
    })
    .collect();
    section(&mut out, "Derived columns", derived);

    if is_temporal(&question_lc) && !model.time_expressions.is_empty() {
        let lines = model
            .time_expressions
            .iter()
            .filter(|(_, sql)| !sql.trim().is_empty())
            .map(|(name, sql)| format!("- {name}: {}", one_line(sql)))
            .collect();
        section(&mut out, "Relative dates", lines);
    }

    if out.is_empty() { out } else { format!("Business context:\n{out}") }
}

/// Every item when the section is small, else only those `keep` accepts.
fn pick<'a, T>(items: &'a [T], keep: impl Fn(&T) -> bool + 'a) -> impl Iterator<Item = &'a T> + 'a {
    let all = items.len() <= SMALL_SECTION;
    items.iter().filter(move |item| all || keep(item))
}

fn section(out: &mut String, title: &str, lines: Vec<String>) {
    if lines.is_empty() {
        return;
    }
    let _ = writeln!(out, "{title}:");
    for line in lines {
        out.push_str(&line);
        out.push('\n');
    }
}

fn render_table(out: &mut String, key: &str, table: &TableSemantic) {
    let mut head = format!("Table {key}");
    if !table.display_name.trim().is_empty() && !same_name(key, &table.display_name) {
        let _ = write!(head, " (\"{}\")", table.display_name.trim());
    }
    let mut facts = Vec::new();
    if let Some(d) = table.description.as_deref().filter(|d| !d.trim().is_empty()) {
        facts.push(one_line(d));
    }
    if let Some(g) = table.grain.as_deref().filter(|g| !g.trim().is_empty()) {
        facts.push(format!("one row = {}", g.trim()));
    }
    let columns: Vec<String> = table.columns.iter().filter_map(|(name, c)| column_line(name, c)).collect();
    let filters: Vec<&str> = table.default_filters.iter().map(|f| f.trim()).filter(|f| !f.is_empty()).collect();
    let time = table.primary_timestamp_column.as_deref().or(table.primary_date_column.as_deref());
    if facts.is_empty() && columns.is_empty() && filters.is_empty() && time.is_none() && head == format!("Table {key}")
    {
        return;
    }
    if !facts.is_empty() {
        let _ = write!(head, ": {}", facts.join("; "));
    }
    let _ = writeln!(out, "{head}");
    if !filters.is_empty() {
        let _ = writeln!(out, "  Always apply: {}", filters.join(" AND "));
    }
    if let Some(time) = time {
        let _ = writeln!(out, "  Dated by: {time}");
    }
    for line in columns {
        let _ = writeln!(out, "  - {line}");
    }
}

/// One column's line, or `None` when nothing is known beyond its name.
fn column_line(name: &str, c: &ColumnSemantic) -> Option<String> {
    let mut traits = Vec::new();
    if !c.display_name.trim().is_empty() && !same_name(name, &c.display_name) {
        traits.push(format!("\"{}\"", c.display_name.trim()));
    }
    if !matches!(c.semantic_type, SemanticType::Unknown) {
        traits.push(c.semantic_type.as_str().replace('_', " "));
    }
    for extra in [&c.currency, &c.unit].into_iter().flatten().filter(|s| !s.trim().is_empty()) {
        traits.push(extra.trim().to_string());
    }
    if let Some(agg) = c.default_aggregation {
        traits.push(format!("aggregate with {}", agg.as_str()));
    }
    if c.is_non_additive {
        traits.push("not additive".to_string());
    }
    let mut line = name.to_string();
    if !traits.is_empty() {
        let _ = write!(line, " ({})", traits.join(", "));
    }
    let mut said = !traits.is_empty();
    if c.is_sensitive {
        line.push_str(" [SENSITIVE: never select it]");
        said = true;
    }
    if let Some(d) = c.description.as_deref().filter(|d| !d.trim().is_empty()) {
        let _ = write!(line, ": {}", one_line(d));
        said = true;
    }
    if !c.value_mappings.is_empty() {
        let shown: Vec<String> = c
            .value_mappings
            .iter()
            .take(MAX_VALUE_MAPPINGS)
            .map(|m| {
                let mut s = format!("{name} '{}' means {}", m.raw_value.replace('\'', "''"), m.display_value.trim());
                if let Some(d) = m.description.as_deref().filter(|d| !d.trim().is_empty()) {
                    let _ = write!(s, " ({})", one_line(d));
                }
                s
            })
            .collect();
        let _ = write!(line, ". Values: {}", shown.join("; "));
        let more = c.value_mappings.len().saturating_sub(MAX_VALUE_MAPPINGS);
        if more > 0 {
            let _ = write!(line, "; … {more} more");
        }
        said = true;
    }
    said.then_some(line)
}

/// ` — text` after a line when `text` says something.
fn suffix(line: &mut String, text: &str) {
    if !text.trim().is_empty() {
        let _ = write!(line, " — {}", one_line(text));
    }
}

/// Whitespace (newlines included) collapsed, so one entry stays on one line.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `order_items` and "Order items" name the same thing: a display name that only restates the
/// key adds nothing to the prompt.
fn same_name(key: &str, display: &str) -> bool {
    let norm = |s: &str| s.chars().filter(|c| c.is_alphanumeric()).flat_map(char::to_lowercase).collect::<String>();
    let bare = key.rsplit('.').next().unwrap_or(key);
    norm(bare) == norm(display)
}

/// Whether the question is about time (then relative-date snippets help).
fn is_temporal(question_lc: &str) -> bool {
    const WORDS: &[&str] = &[
        "today",
        "yesterday",
        "tomorrow",
        "day",
        "week",
        "month",
        "quarter",
        "year",
        "ytd",
        "mtd",
        "since",
        "ago",
        "recent",
        "last",
        "past",
        "previous",
        "daily",
        "weekly",
        "monthly",
        "yearly",
        "annual",
        "trend",
        "over time",
        "date",
        "when",
    ];
    WORDS.iter().any(|w| question_lc.contains(w))
}

/// The tables a question's schema was narrowed to.
struct Scope {
    /// Lower-cased keys without quotes; empty means all.
    keys: Vec<String>,
}

impl Scope {
    fn new(tables: &[String]) -> Self {
        Self { keys: tables.iter().map(|t| normalise(t)).filter(|t| !t.is_empty()).collect() }
    }

    fn is_all(&self) -> bool {
        self.keys.is_empty()
    }

    /// `public.orders` matches `public.orders` and `orders`; `orders` matches any `x.orders`.
    fn contains(&self, table: &str) -> bool {
        if self.is_all() {
            return true;
        }
        let table = normalise(table);
        self.keys.iter().any(|k| {
            if *k == table {
                return true;
            }
            match (k.rsplit_once('.'), table.rsplit_once('.')) {
                (Some(_), Some(_)) => false,
                (Some((_, bare)), None) => bare == table,
                (None, Some((_, bare))) => bare == k,
                (None, None) => false,
            }
        })
    }

    /// Whether `text` (SQL) names a table in scope as a whole word.
    fn mentioned_in(&self, text: &str) -> bool {
        let text = text.to_lowercase();
        let words: Vec<&str> = text.split(|c: char| !(c.is_alphanumeric() || c == '_')).collect();
        self.keys.iter().any(|k| {
            let bare = k.rsplit('.').next().unwrap_or(k);
            words.contains(&bare)
        })
    }
}

fn normalise(table: &str) -> String {
    table.trim().replace(['"', '`', '[', ']'], "").to_lowercase()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn model() -> SemanticModel {
        serde_json::from_value(json!({
            "notes": ["Fiscal year starts in April", "  "],
            "tables": {
                "public.orders": {
                    "display_name": "Sales orders",
                    "description": "One row per order",
                    "default_filters": ["deleted_at IS NULL"],
                    "primary_timestamp_column": "created_at",
                    "columns": {
                        "status": {"display_name": "Status", "description": "Where the order stands",
                                   "value_mappings": [{"raw_value": "A", "display_value": "Active"},
                                                      {"raw_value": "C", "display_value": "Cancelled", "description": "refunded"}]},
                        "total": {"semantic_type": "monetary", "currency": "EUR"},
                        "id": {"display_name": "ID"},
                        "email": {"is_sensitive": true}
                    }
                },
                "public.customers": {"description": "People who bought something"},
                "audit.log": {"description": "Changes"}
            },
            "common_joins": [{"tables": ["public.orders", "public.customers"], "join_pattern": "orders.customer_id = customers.id", "description": "an order's buyer"}],
            "relationships": [{"from_table": "public.orders", "from_column": "customer_id", "to_table": "public.customers", "to_column": "id", "relationship_type": "many_to_one", "is_required": true}],
            "business_metrics": [{"name": "revenue", "aggregation": "sum", "definition": "orders.total", "filters": ["status = 'A'"], "description": "Money in"}],
            "segments": [{"name": "big orders", "sql_expression": "total > 1000", "applicable_tables": ["public.orders"]}],
            "time_expressions": {"today": "CURRENT_DATE"}
        }))
        .unwrap()
    }

    #[test]
    fn renders_notes_first_then_tables_in_scope_and_their_hints() {
        let text =
            render(&model(), "How many active orders per customer?", &["public.orders".into(), "customers".into()]);
        assert!(text.starts_with("Business context:\nNotes:\n- Fiscal year starts in April\n"), "{text}");
        assert!(text.contains("Table public.orders (\"Sales orders\"): One row per order"), "{text}");
        assert!(text.contains("Always apply: deleted_at IS NULL"), "{text}");
        assert!(text.contains("status 'A' means Active; status 'C' means Cancelled (refunded)"), "{text}");
        assert!(!text.contains("status (\"Status\")"), "a display name restating the name is left out: {text}");
        assert!(text.contains("total (monetary, EUR)"), "{text}");
        assert!(text.contains("email [SENSITIVE"), "{text}");
        assert!(!text.contains("  - id"), "a column with nothing to say is left out: {text}");
        assert!(text.contains("Table public.customers: People who bought something"), "{text}");
        assert!(!text.contains("audit.log"), "tables out of scope are left out: {text}");
        assert!(
            text.contains("- public.orders + public.customers: orders.customer_id = customers.id — an order's buyer")
        );
        assert!(text.contains("(many_to_one, never null"), "{text}");
        assert!(text.contains("- revenue = SUM(orders.total) where status = 'A' — Money in"), "{text}");
        assert!(text.contains("- big orders: total > 1000 (on public.orders)"), "{text}");
        assert!(!text.contains("CURRENT_DATE"), "no relative dates for a question not about time: {text}");
        let notes_at = text.find("Notes:").unwrap();
        assert!(
            notes_at < text.find("Table ").unwrap() && text.find("Table ").unwrap() < text.find("Join hints").unwrap()
        );
    }

    #[test]
    fn relative_dates_only_for_questions_about_time() {
        let text = render(&model(), "Revenue last month", &["public.orders".into()]);
        assert!(text.contains("Relative dates:\n- today: CURRENT_DATE"), "{text}");
    }

    #[test]
    fn large_sections_keep_only_entries_touching_the_scope_or_named_in_the_question() {
        let mut m = model();
        m.segments = (0..20)
            .map(|i| super::super::model::Segment {
                name: format!("seg{i}"),
                sql_expression: format!("x > {i}"),
                description: String::new(),
                applicable_tables: vec![if i == 3 { "public.orders".into() } else { format!("other.t{i}") }],
            })
            .collect();
        let text = render(&m, "which rows are in seg7?", &["orders".into()]);
        assert!(text.contains("- seg3: x > 3"), "{text}");
        assert!(text.contains("- seg7: x > 7"), "named in the question: {text}");
        assert!(!text.contains("- seg5:"), "{text}");
    }

    #[test]
    fn empty_scope_means_every_table_and_an_empty_model_renders_nothing() {
        let text = render(&model(), "q", &[]);
        assert!(text.contains("audit.log"));
        assert_eq!(render(&SemanticModel::default(), "q", &[]), "");
    }
}
