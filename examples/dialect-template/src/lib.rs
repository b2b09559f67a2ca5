//! An example `sql-dialect` plugin for DuckDB, written against Quarry's WIT contract.
//!
//! It accepts a single `SELECT` (or `WITH … SELECT`, set operation, `VALUES`) and refuses the
//! rest, applies the host's row limit, and lists the tables read. Quarry's built-in dialects do
//! much more (deny-lists of dangerous functions, locking clauses, EXPLAIN, …); start here, then
//! read `plugins/dialect-core` for the full rules.

// Generate the guest bindings from Quarry's WIT files (copy `wit/` next to your crate if you
// build outside Quarry's tree, and point `path` at it).
wit_bindgen::generate!({ world: "sql-dialect", path: "../../wit" });

use std::ops::ControlFlow;

use exports::quarry::plugin::dialect::{Guest, Policy, StatementKind, Validated, Violation};
use quarry::plugin::types::PluginInfo;
use sqlparser::ast::{Expr, LimitClause, SetExpr, Statement, Value, visit_relations};
use sqlparser::dialect::DuckDbDialect;
use sqlparser::parser::Parser;

struct DuckDb;

impl Guest for DuckDb {
    fn info() -> PluginInfo {
        PluginInfo { name: "duckdb".into(), version: "0.1.0".into(), description: "DuckDB SQL (example)".into() }
    }

    fn prompt_guidance() -> String {
        "DuckDB: quote identifiers with double quotes; use ILIKE for case-insensitive matching; \
         date_trunc('month', ts) truncates dates; LIMIT n caps rows."
            .into()
    }

    fn validate(sql: String, policy: Policy) -> Result<Validated, Vec<Violation>> {
        let mut statements = Parser::parse_sql(&DuckDbDialect {}, &sql)
            .map_err(|e| vec![violation("parse-error", format!("The query could not be parsed: {e}. Fix the syntax."))])?;
        if statements.len() != 1 {
            return Err(vec![violation("multiple-statements", "Send exactly one statement.".into())]);
        }
        let Statement::Query(query) = &mut statements[0] else {
            return Err(vec![violation("not-read-only", "Only read-only SELECT queries are allowed.".into())]);
        };
        let kind = match query.body.as_ref() {
            SetExpr::Select(_) if query.with.is_some() => StatementKind::WithSelect,
            SetExpr::Select(_) => StatementKind::Select,
            SetExpr::SetOperation { .. } => StatementKind::SetOperation,
            SetExpr::Values(_) => StatementKind::Values,
            _ => return Err(vec![violation("not-read-only", "Only read-only SELECT queries are allowed.".into())]),
        };
        let mut warnings = Vec::new();
        if let Some(cap) = policy.row_limit {
            // Keep a smaller LIMIT; otherwise cap it.
            let existing = match &query.limit_clause {
                Some(LimitClause::LimitOffset { limit: Some(Expr::Value(v)), .. }) => match &v.value {
                    Value::Number(n, _) => n.parse::<u64>().ok(),
                    _ => None,
                },
                _ => None,
            };
            if existing.is_none_or(|n| n > cap) {
                query.limit_clause = Some(LimitClause::LimitOffset {
                    limit: Some(Expr::value(Value::Number(cap.to_string(), false))),
                    offset: None,
                    limit_by: vec![],
                });
                warnings.push(format!("row limit {cap} applied"));
            }
        }
        let mut tables = Vec::new();
        let _ = visit_relations(&statements, |name| {
            let t = name.to_string().to_lowercase();
            if !tables.contains(&t) {
                tables.push(t);
            }
            ControlFlow::<()>::Continue(())
        });
        Ok(Validated { sql: statements[0].to_string(), kind, tables, warnings })
    }
}

fn violation(code: &str, message: String) -> Violation {
    Violation { code: code.into(), message, offset: None }
}

export!(DuckDb);
