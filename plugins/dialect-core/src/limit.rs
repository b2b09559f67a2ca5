//! Applying the policy's row limit to the outermost query.
//!
//! Only the outermost level is touched: a limit inside a subquery or a CTE would change what
//! the query computes (an aggregate over fewer rows), while one at the top only caps how many
//! result rows come back.

use core::ops::ControlFlow;

use sqlparser::ast::{
    Expr, GroupByExpr, LimitClause, Query, Select, SelectItem, SetExpr, Value, Visit, Visitor,
};

/// Functions that make a `SELECT` without `GROUP BY` return exactly one row. Missing one only
/// costs a harmless `LIMIT` on a one-row result.
#[rustfmt::skip]
const AGGREGATES: &[&str] = &[
    "any_value", "array_agg", "avg", "bit_and", "bit_or", "bit_xor", "bool_and", "bool_or", "corr",
    "count", "covar_pop", "covar_samp", "every", "group_concat", "json_agg", "json_arrayagg",
    "json_group_array", "json_group_object", "json_object_agg", "json_objectagg", "jsonb_agg",
    "jsonb_object_agg", "max", "median", "min", "mode", "percentile_cont", "percentile_disc",
    "regr_avgx", "regr_avgy", "regr_count", "regr_intercept", "regr_r2", "regr_slope", "regr_sxx",
    "regr_sxy", "regr_syy", "std", "stddev", "stddev_pop", "stddev_samp", "string_agg", "sum",
    "total", "var_pop", "var_samp", "variance", "xmlagg",
];

/// Cap `query`'s result at `limit` rows, pushing a warning for every change.
pub(crate) fn apply_row_limit(query: &mut Query, limit: u64, warnings: &mut Vec<String>) {
    // `(SELECT … LIMIT 5)` as a whole statement: the parentheses add nothing, so the limit
    // belongs on the inner query (SQLite would not even accept one outside them).
    let bare_parentheses = query.with.is_none()
        && query.order_by.is_none()
        && query.limit_clause.is_none()
        && query.fetch.is_none();
    if bare_parentheses && let SetExpr::Query(inner) = query.body.as_mut() {
        return apply_row_limit(inner, limit, warnings);
    }
    if let SetExpr::Select(select) = query.body.as_ref()
        && is_single_row_aggregate(select)
    {
        return;
    }
    // `FETCH FIRST n ROWS ONLY` is a limit too; PostgreSQL refuses LIMIT and FETCH together.
    if let Some(fetch) = &mut query.fetch {
        if fetch.percent {
            fetch.percent = false;
            fetch.quantity = Some(number(limit));
            warnings.push(format!("FETCH … PERCENT replaced by the row limit {limit}"));
        } else if let Some(quantity) = &mut fetch.quantity {
            cap(quantity, limit, "FETCH FIRST", warnings);
        }
        return;
    }
    match &mut query.limit_clause {
        None => {
            query.limit_clause = Some(LimitClause::LimitOffset {
                limit: Some(number(limit)),
                offset: None,
                limit_by: Vec::new(),
            });
            warnings.push(format!("row limit {limit} applied"));
        }
        // `LIMIT ALL`, or `OFFSET n` alone.
        Some(LimitClause::LimitOffset {
            limit: existing @ None,
            ..
        }) => {
            *existing = Some(number(limit));
            warnings.push(format!("row limit {limit} applied"));
        }
        Some(LimitClause::LimitOffset {
            limit: Some(existing),
            ..
        })
        | Some(LimitClause::OffsetCommaLimit {
            limit: existing, ..
        }) => {
            cap(existing, limit, "LIMIT", warnings);
        }
    }
}

/// Lower an existing limit expression to `limit` unless it is a literal no larger than it.
fn cap(existing: &mut Expr, limit: u64, what: &str, warnings: &mut Vec<String>) {
    match literal(existing) {
        Some(n) if n <= limit => {}
        Some(n) => {
            *existing = number(limit);
            warnings.push(format!("existing {what} {n} lowered to {limit}"));
        }
        // `LIMIT -1` (no limit in SQLite), `LIMIT (SELECT …)`, `LIMIT $1`: unknowable here.
        None => {
            let before = existing.to_string();
            *existing = number(limit);
            warnings.push(format!("{what} {before} replaced by the row limit {limit}"));
        }
    }
}

fn literal(expr: &Expr) -> Option<u64> {
    match expr {
        Expr::Value(v) => match &v.value {
            Value::Number(digits, _) => digits.parse().ok(),
            _ => None,
        },
        Expr::Nested(inner) => literal(inner),
        _ => None,
    }
}

fn number(n: u64) -> Expr {
    Expr::value(Value::Number(n.to_string(), false))
}

/// A `SELECT` without `GROUP BY` whose select list calls an aggregate (outside any subquery or
/// window): it returns one row (or none, with `HAVING`), so a limit would only add noise.
fn is_single_row_aggregate(select: &Select) -> bool {
    let no_group_by = matches!(&select.group_by, GroupByExpr::Expressions(e, _) if e.is_empty());
    no_group_by
        && select.projection.iter().any(|item| match item {
            SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => {
                let mut finder = AggregateFinder { depth: 0 };
                e.visit(&mut finder).is_break()
            }
            _ => false,
        })
}

/// Breaks on the first aggregate call at the top level of an expression.
struct AggregateFinder {
    /// Subquery nesting: aggregates inside a subquery say nothing about the outer query.
    depth: usize,
}

impl Visitor for AggregateFinder {
    type Break = ();

    fn pre_visit_query(&mut self, _query: &Query) -> ControlFlow<()> {
        self.depth += 1;
        ControlFlow::Continue(())
    }

    fn post_visit_query(&mut self, _query: &Query) -> ControlFlow<()> {
        self.depth -= 1;
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<()> {
        if self.depth == 0
            && let Expr::Function(f) = expr
            && f.over.is_none()
            && let Some(name) = f.name.0.last().and_then(|p| p.as_ident())
            && AGGREGATES.contains(&name.value.to_lowercase().as_str())
        {
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    }
}
