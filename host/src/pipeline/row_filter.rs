//! A connection's mandatory row filter: every query that runs on it is wrapped so that only rows
//! meeting the filter come back, whatever the query (generated, cached, approved or edited).
//!
//! `SELECT … LIMIT n` becomes `SELECT * FROM (SELECT …) AS _quarry_rows WHERE (<filter>) LIMIT n`:
//! the limit moves outside, so filtering never leaves a page short because rows were cut first.
//! The wrapped query is validated again by the dialect plugin before it runs, so a filter cannot
//! smuggle anything the validator refuses.

use sqlparser::ast::{Expr, Statement};
use sqlparser::dialect::{Dialect, MySqlDialect, PostgreSqlDialect, SQLiteDialect};
use sqlparser::parser::Parser;

use crate::db::Flavor;

/// Why a query could not be wrapped.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RowFilterError {
    /// The filter is not one SQL boolean expression.
    #[error("the filter is not a valid SQL expression: {0}")]
    Filter(String),
    /// The query is not one SELECT-like statement.
    #[error("the query cannot be wrapped: {0}")]
    Query(String),
}

/// The sqlparser dialect for `flavor`.
fn dialect(flavor: Flavor) -> Box<dyn Dialect> {
    match flavor {
        Flavor::PostgreSQL => Box::new(PostgreSqlDialect {}),
        Flavor::MySQL | Flavor::MariaDB => Box::new(MySqlDialect {}),
        Flavor::SQLite => Box::new(SQLiteDialect {}),
    }
}

/// Check that `filter` is one boolean-looking SQL expression (no statement separators, no trailing
/// text). Used when the filter is saved and again before each use.
pub fn parse_filter(filter: &str, flavor: Flavor) -> Result<Expr, RowFilterError> {
    let dialect = dialect(flavor);
    let mut parser =
        Parser::new(dialect.as_ref()).try_with_sql(filter).map_err(|e| RowFilterError::Filter(e.to_string()))?;
    let expr = parser.parse_expr().map_err(|e| RowFilterError::Filter(e.to_string()))?;
    if parser.peek_token().token != sqlparser::tokenizer::Token::EOF {
        return Err(RowFilterError::Filter("unexpected text after the expression".into()));
    }
    Ok(expr)
}

/// `sql` (one query) wrapped so that only rows meeting `filter` come back, its LIMIT moved outside.
pub fn with_row_filter(sql: &str, filter: &str, flavor: Flavor) -> Result<String, RowFilterError> {
    let filter = parse_filter(filter, flavor)?;
    let dialect = dialect(flavor);
    let mut statements = Parser::parse_sql(dialect.as_ref(), sql).map_err(|e| RowFilterError::Query(e.to_string()))?;
    let (Some(Statement::Query(mut query)), true) = (statements.pop(), statements.is_empty()) else {
        return Err(RowFilterError::Query("expected exactly one query".into()));
    };
    let limit = query.limit_clause.take();
    let outer = match limit {
        Some(limit) => format!("SELECT * FROM ({query}) AS _quarry_rows WHERE ({filter}){limit}"),
        None => format!("SELECT * FROM ({query}) AS _quarry_rows WHERE ({filter})"),
    };
    Ok(outer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_moves_outside_the_filter() {
        let wrapped =
            with_row_filter("SELECT id, region FROM t ORDER BY id LIMIT 5", "region = 'EU'", Flavor::PostgreSQL)
                .expect("wrapped");
        assert_eq!(
            wrapped,
            "SELECT * FROM (SELECT id, region FROM t ORDER BY id) AS _quarry_rows WHERE (region = 'EU') LIMIT 5"
        );
    }

    #[test]
    fn a_query_without_limit_is_wrapped_whole() {
        let wrapped = with_row_filter("SELECT a FROM t", "a > 1", Flavor::SQLite).expect("wrapped");
        assert_eq!(wrapped, "SELECT * FROM (SELECT a FROM t) AS _quarry_rows WHERE (a > 1)");
    }

    #[test]
    fn a_filter_with_a_second_statement_is_refused() {
        assert!(matches!(parse_filter("1=1; DROP TABLE t", Flavor::PostgreSQL), Err(RowFilterError::Filter(_))));
        assert!(matches!(parse_filter("a = 1) OR (1=1", Flavor::PostgreSQL), Err(RowFilterError::Filter(_))));
        assert!(parse_filter("tenant_id = 7 AND deleted_at IS NULL", Flavor::MySQL).is_ok());
    }

    #[test]
    fn several_statements_cannot_be_wrapped() {
        assert!(matches!(
            with_row_filter("SELECT 1; SELECT 2", "a = 1", Flavor::PostgreSQL),
            Err(RowFilterError::Query(_))
        ));
    }
}
