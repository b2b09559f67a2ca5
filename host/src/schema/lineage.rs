//! Which source columns feed each output column of a query, so masking follows a sensitive
//! column through aliases: `SELECT email AS contact`, `lower(email)`, a CTE or a derived table
//! that renames it, a `UNION` that lines it up under another name.
//!
//! The analysis is deliberately coarse and errs towards masking:
//! - every name a query level defines (an alias, or a projected column) maps to the bare column
//!   names its expression mentions, anywhere in the statement; a name is *tainted* when it, or
//!   anything it mentions (transitively), is sensitive;
//! - the statement's own output columns are also tracked by position where that is knowable (no
//!   wildcard, or `SELECT *` over one derived table, as the row-filter wrapper does), because a
//!   driver names an unaliased expression as it likes (PostgreSQL calls `lower(email)` `lower`);
//! - `COUNT(…)` reveals no values, so it taints nothing.
//!
//! A name defined twice is tainted if either definition is (over-masking a homonym is the safe
//! failure). SQL that does not parse yields no lineage; masking then falls back to result names.

use std::collections::{HashMap, HashSet};
use std::ops::ControlFlow;

use sqlparser::ast::{
    Expr, FunctionArguments, ObjectNamePart, Query, SelectItem, SetExpr, Statement, TableFactor, Visit, Visitor,
};
use sqlparser::dialect::{Dialect, MySqlDialect, PostgreSqlDialect, SQLiteDialect};
use sqlparser::parser::Parser;

use crate::db::Flavor;

/// The lineage of one statement's output columns.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Lineage {
    /// Every name some query level defines → the bare column names its expressions mention
    /// (lowercase).
    names: HashMap<String, HashSet<String>>,
    /// The statement's output columns in order, each → the names it mentions; `None` when a
    /// wildcard makes positions unknowable.
    outputs: Option<Vec<HashSet<String>>>,
}

impl Lineage {
    /// The lineage of `sql` as `flavor` parses it; `None` when it is not one parsable statement.
    pub fn of(sql: &str, flavor: Flavor) -> Option<Lineage> {
        let dialect = dialect_for(flavor);
        let statements = Parser::parse_sql(dialect.as_ref(), sql).ok()?;
        let [statement] = statements.as_slice() else {
            return None;
        };
        let Statement::Query(query) = statement else {
            return None;
        };
        let mut names = Names::default();
        let _ = statement.visit(&mut names);
        Some(Lineage { names: names.0, outputs: positional(query) })
    }

    /// Which of `columns` (the result's names, in order) carry a value derived from a column
    /// for which `sensitive` holds.
    pub fn tainted_outputs<S: AsRef<str>>(&self, columns: &[S], sensitive: impl Fn(&str) -> bool) -> Vec<bool> {
        let tainted = self.tainted_names(&sensitive);
        let by_position = self.outputs.as_ref().filter(|o| o.len() == columns.len());
        columns
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let name = name.as_ref().to_lowercase();
                tainted.contains(&name)
                    || by_position.is_some_and(|o| o[i].iter().any(|r| tainted.contains(r) || sensitive(r)))
            })
            .collect()
    }

    /// Every name that is sensitive itself or mentions, transitively, a sensitive name.
    fn tainted_names(&self, sensitive: &impl Fn(&str) -> bool) -> HashSet<String> {
        let mut tainted: HashSet<String> = self
            .names
            .iter()
            .flat_map(|(name, refs)| std::iter::once(name).chain(refs))
            .filter(|n| sensitive(n))
            .cloned()
            .collect();
        // A fixpoint: each pass taints the names that mention a tainted one.
        loop {
            let before = tainted.len();
            for (name, refs) in &self.names {
                if !tainted.contains(name) && refs.iter().any(|r| tainted.contains(r)) {
                    tainted.insert(name.clone());
                }
            }
            if tainted.len() == before {
                return tainted;
            }
        }
    }
}

fn dialect_for(flavor: Flavor) -> Box<dyn Dialect> {
    match flavor {
        Flavor::PostgreSQL => Box::new(PostgreSqlDialect {}),
        Flavor::MySQL | Flavor::MariaDB => Box::new(MySqlDialect {}),
        Flavor::SQLite => Box::new(SQLiteDialect {}),
    }
}

/// Collects, from every query level, each defined name and what it mentions.
#[derive(Default)]
struct Names(HashMap<String, HashSet<String>>);

impl Visitor for Names {
    type Break = ();

    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<()> {
        self.add_set_expr(&query.body);
        if let Some(with) = &query.with {
            // `WITH t(a, b) AS (SELECT x, y …)`: the CTE's column list renames by position.
            for cte in &with.cte_tables {
                let Some(outputs) = positional(&cte.query) else { continue };
                for (column, refs) in cte.alias.columns.iter().zip(outputs) {
                    self.define(&column.name.value, refs);
                }
            }
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, factor: &TableFactor) -> ControlFlow<()> {
        // `(SELECT x, y …) AS t(a, b)` renames by position too.
        if let TableFactor::Derived { subquery, alias: Some(alias), .. } = factor
            && let Some(outputs) = positional(subquery)
        {
            for (column, refs) in alias.columns.iter().zip(outputs) {
                self.define(&column.name.value, refs);
            }
        }
        ControlFlow::Continue(())
    }
}

impl Names {
    fn add_set_expr(&mut self, body: &SetExpr) {
        match body {
            SetExpr::Select(select) => {
                for item in &select.projection {
                    if let Some((name, expr)) = named_item(item) {
                        self.define(&name, mentions(expr));
                    }
                }
            }
            SetExpr::SetOperation { left, right, .. } => {
                self.add_set_expr(left);
                self.add_set_expr(right);
                // The result takes the left side's names, the rows come from both sides.
                if let (Some(l), Some(r)) = (positional_set(left), positional_set(right))
                    && let Some(names) = output_names(left)
                {
                    for ((name, l), r) in names.iter().zip(l).zip(r) {
                        self.define(name, l.union(&r).cloned().collect());
                    }
                }
            }
            _ => {}
        }
    }

    fn define(&mut self, name: &str, refs: HashSet<String>) {
        let name = name.to_lowercase();
        let entry = self.0.entry(name.clone()).or_default();
        entry.extend(refs.into_iter().filter(|r| *r != name));
    }
}

/// The name a projection item defines and its expression (none for wildcards).
fn named_item(item: &SelectItem) -> Option<(String, &Expr)> {
    match item {
        SelectItem::ExprWithAlias { expr, alias } => Some((alias.value.clone(), expr)),
        SelectItem::UnnamedExpr(expr) => Some((bare_name(expr).unwrap_or_else(|| expr.to_string()), expr)),
        SelectItem::ExprWithAliases { .. } | SelectItem::QualifiedWildcard(..) | SelectItem::Wildcard(_) => None,
    }
}

/// `col` or `t.col` → `col`.
fn bare_name(expr: &Expr) -> Option<String> {
    match expr {
        Expr::Identifier(ident) => Some(ident.value.clone()),
        Expr::CompoundIdentifier(parts) => parts.last().map(|p| p.value.clone()),
        Expr::Nested(inner) => bare_name(inner),
        _ => None,
    }
}

/// The bare column names `expr` mentions (in subqueries too), lowercase; nothing for `COUNT(…)`.
fn mentions(expr: &Expr) -> HashSet<String> {
    struct Mentions(HashSet<String>);
    impl Visitor for Mentions {
        type Break = ();
        fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<()> {
            if let Some(name) = bare_name(expr) {
                self.0.insert(name.to_lowercase());
            }
            ControlFlow::Continue(())
        }
    }
    if is_count(expr) {
        return HashSet::new();
    }
    let mut found = Mentions(HashSet::new());
    let _ = expr.visit(&mut found);
    found.0
}

/// `COUNT(…)` (any arguments, no window tricks that could return a value).
fn is_count(expr: &Expr) -> bool {
    let Expr::Function(function) = expr else { return false };
    let is_count = function
        .name
        .0
        .last()
        .and_then(ObjectNamePart::as_ident)
        .is_some_and(|ident| ident.value.eq_ignore_ascii_case("count"));
    is_count && matches!(function.args, FunctionArguments::List(_) | FunctionArguments::None)
}

/// The query's output columns in order → what each mentions, when knowable.
fn positional(query: &Query) -> Option<Vec<HashSet<String>>> {
    positional_set(&query.body)
}

fn positional_set(body: &SetExpr) -> Option<Vec<HashSet<String>>> {
    match body {
        SetExpr::Select(select) => {
            if let [SelectItem::Wildcard(_)] = select.projection.as_slice()
                && let [from] = select.from.as_slice()
                && from.joins.is_empty()
                && let TableFactor::Derived { subquery, .. } = &from.relation
            {
                // `SELECT * FROM (<query>) AS t …`: the inner query's columns, in its order.
                return positional(subquery);
            }
            select.projection.iter().map(|item| named_item(item).map(|(_, expr)| mentions(expr))).collect()
        }
        SetExpr::Query(query) => positional(query),
        SetExpr::SetOperation { left, right, .. } => {
            let (left, right) = (positional_set(left)?, positional_set(right)?);
            (left.len() == right.len()).then(|| left.into_iter().zip(right).map(|(l, r)| &l | &r).collect())
        }
        _ => None,
    }
}

/// The names a set expression's columns get (its first SELECT's), when it has no wildcard.
fn output_names(body: &SetExpr) -> Option<Vec<String>> {
    match body {
        SetExpr::Select(select) => select.projection.iter().map(|item| named_item(item).map(|(n, _)| n)).collect(),
        SetExpr::Query(query) => output_names(&query.body),
        SetExpr::SetOperation { left, .. } => output_names(left),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn masked(sql: &str, columns: &[&str]) -> Vec<bool> {
        masked_in(sql, columns, Flavor::PostgreSQL)
    }

    fn masked_in(sql: &str, columns: &[&str], flavor: Flavor) -> Vec<bool> {
        let lineage = Lineage::of(sql, flavor).expect("parses");
        lineage.tainted_outputs(columns, |name| name.to_lowercase().contains("email"))
    }

    #[test]
    fn an_alias_does_not_hide_a_sensitive_column() {
        assert_eq!(masked("SELECT name, email AS contact FROM customers", &["name", "contact"]), [false, true]);
        assert_eq!(masked("SELECT c.email AS c FROM customers c", &["c"]), [true]);
    }

    #[test]
    fn an_expression_over_a_sensitive_column_is_tainted_by_position() {
        // PostgreSQL names this column `lower`.
        assert_eq!(masked("SELECT id, lower(email) FROM customers", &["id", "lower"]), [false, true]);
        assert_eq!(masked("SELECT MAX(email) AS m, COUNT(email) AS n FROM customers", &["m", "n"]), [true, false]);
    }

    #[test]
    fn renaming_through_ctes_and_derived_tables_is_followed() {
        let sql = "WITH x AS (SELECT email AS e, id FROM customers) SELECT e AS shown, id FROM x";
        assert_eq!(masked(sql, &["shown", "id"]), [true, false]);
        let sql = "SELECT t.a FROM (SELECT email FROM customers) AS t(a)";
        assert_eq!(masked(sql, &["a"]), [true]);
        let sql = "WITH x(a, b) AS (SELECT id, email FROM customers) SELECT * FROM x";
        assert_eq!(masked(sql, &["a", "b"]), [false, true]);
    }

    #[test]
    fn the_row_filter_wrapper_keeps_positions() {
        let sql = "SELECT * FROM (\nSELECT id, upper(email) FROM customers\n) AS _quarry_q WHERE (id > 0)";
        assert_eq!(masked(sql, &["id", "upper"]), [false, true]);
    }

    #[test]
    fn a_union_lines_columns_up_by_position() {
        let sql = "SELECT name FROM suppliers UNION SELECT email FROM customers";
        assert_eq!(masked(sql, &["name"]), [true]);
    }

    #[test]
    fn a_subquery_in_the_projection_is_followed() {
        let sql = "SELECT o.id, (SELECT c.email FROM customers c WHERE c.id = o.customer_id) AS who FROM orders o";
        assert_eq!(masked(sql, &["id", "who"]), [false, true]);
    }

    #[test]
    fn harmless_queries_mask_nothing() {
        assert_eq!(masked("SELECT id, name FROM customers ORDER BY name", &["id", "name"]), [false, false]);
        assert_eq!(masked("SELECT COUNT(*) AS n FROM customers WHERE email LIKE '%@x'", &["n"]), [false]);
    }

    #[test]
    fn mysql_backticks_parse() {
        assert_eq!(masked_in("SELECT `email` AS `c` FROM `customers`", &["c"], Flavor::MySQL), [true]);
    }

    #[test]
    fn unparsable_sql_has_no_lineage() {
        assert!(Lineage::of("SELEC nonsense", Flavor::SQLite).is_none());
        assert!(Lineage::of("SELECT 1; SELECT 2", Flavor::SQLite).is_none());
    }
}
