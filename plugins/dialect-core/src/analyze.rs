//! One walk over a parsed query that finds everything the policy cares about: the tables it
//! reads (with `WITH` names scoped the way the engines scope them), the functions it calls
//! (scalar and table-valued, anywhere: subqueries, CTEs, arguments, `ORDER BY`, `HAVING`, …),
//! and the read-only rules that can be broken below the top level (`SELECT … INTO`, locking
//! clauses, data-modifying statements inside `WITH`).

use core::ops::ControlFlow;

use sqlparser::ast::{
    Expr, Ident, ObjectName, Query, Select, SetExpr, Spanned, Statement, TableFactor, Visit,
    Visitor,
};
use sqlparser::tokenizer::Location;

use crate::DeniedFunction;
use crate::names::{function_matches, name_parts};

/// A rule broken somewhere inside the query.
#[derive(Debug)]
pub(crate) struct Finding {
    /// Violation code (see the crate docs).
    pub code: &'static str,
    /// Message for the LLM.
    pub message: String,
    /// Where, when the parser knows.
    pub at: Option<Location>,
}

/// What [`analyze`] found.
#[derive(Debug, Default)]
pub(crate) struct Analysis {
    /// Every table reference (not CTE references, not table-valued functions), in walk order,
    /// with the position of its name: lower-case name parts.
    pub tables: Vec<(Location, Vec<String>)>,
    /// Broken rules.
    pub findings: Vec<Finding>,
    /// Whether some `SELECT` carries MySQL optimizer hints (`/*+ … */`).
    pub has_optimizer_hints: bool,
}

/// Walk `query` and everything inside it.
pub(crate) fn analyze(
    query: &Query,
    denied: &[DeniedFunction],
    policy_denied: &[String],
) -> Analysis {
    let mut walker = Walker {
        denied,
        policy_denied,
        scopes: Vec::new(),
        pending: Vec::new(),
        out: Analysis::default(),
    };
    // The walker never breaks; the result carries no information.
    let _ = query.visit(&mut walker);
    walker.out
}

/// The name a `WITH` entry or a table reference resolves by: unquoted identifiers fold to lower
/// case, quoted ones keep their case. Comparing folded names can only make a CTE reference look
/// like a table (a false refusal), never make a real table look like a CTE (a bypass).
fn folded(ident: &Ident) -> String {
    if ident.quote_style.is_some() {
        ident.value.clone()
    } else {
        ident.value.to_lowercase()
    }
}

struct Walker<'a> {
    denied: &'a [DeniedFunction],
    policy_denied: &'a [String],
    /// For each query being walked, the `WITH` names visible in it (folded).
    scopes: Vec<Vec<String>>,
    /// Scopes decided by an enclosing query for its CTE bodies, keyed by the body's address: a
    /// CTE body sees only the CTEs before it (all of them under `WITH RECURSIVE`), never the
    /// names its own query defines later, so `WITH t AS (SELECT * FROM t)` reads the table `t`.
    pending: Vec<(*const Query, Vec<String>)>,
    out: Analysis,
}

impl Walker<'_> {
    /// Refuse `name` if a deny-list covers it.
    fn check_function(&mut self, name: &ObjectName) {
        let parts = name_parts(name);
        let reason = if let Some(entry) = self
            .denied
            .iter()
            .find(|d| function_matches(d.pattern, &parts))
        {
            entry.reason
        } else if self
            .policy_denied
            .iter()
            .any(|p| function_matches(p, &parts))
        {
            "denied by this connection's policy"
        } else {
            return;
        };
        self.out.findings.push(Finding {
            code: "denied-function",
            message: format!(
                "Function `{}` is not allowed ({reason}). Remove the call and answer from the \
                 tables with ordinary SQL functions.",
                parts.join(".")
            ),
            at: Some(name.span().start),
        });
    }

    fn is_cte(&self, name: &ObjectName) -> bool {
        match name.0.as_slice() {
            [part] => match (part.as_ident(), self.scopes.last()) {
                (Some(ident), Some(scope)) => scope.contains(&folded(ident)),
                _ => false,
            },
            _ => false,
        }
    }

    /// `TABLE t` in a query body (or an operand of a set operation) names a table without a
    /// `TableFactor`, so it is collected here.
    fn collect_table_commands(&mut self, body: &SetExpr) {
        match body {
            SetExpr::Table(table) => {
                if let Some(name) = &table.table_name {
                    let mut parts: Vec<String> = Vec::new();
                    if let Some(schema) = &table.schema_name {
                        parts.push(schema.to_lowercase());
                    }
                    parts.push(name.to_lowercase());
                    self.out.tables.push((Location::empty(), parts));
                }
            }
            SetExpr::SetOperation { left, right, .. } => {
                self.collect_table_commands(left);
                self.collect_table_commands(right);
            }
            _ => {}
        }
    }
}

impl Visitor for Walker<'_> {
    type Break = ();

    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<()> {
        let address = query as *const Query;
        let base = match self.pending.iter().position(|(p, _)| *p == address) {
            Some(i) => self.pending.swap_remove(i).1,
            None => self.scopes.last().cloned().unwrap_or_default(),
        };
        let mut scope = base.clone();
        if let Some(with) = &query.with {
            let names: Vec<String> = with
                .cte_tables
                .iter()
                .map(|c| folded(&c.alias.name))
                .collect();
            for (i, cte) in with.cte_tables.iter().enumerate() {
                let visible_up_to = if with.recursive { names.len() } else { i };
                let mut visible = base.clone();
                visible.extend(names[..visible_up_to].iter().cloned());
                self.pending.push((&*cte.query as *const Query, visible));
            }
            scope.extend(names);
        }
        if let Some(lock) = query.locks.first() {
            self.out.findings.push(Finding {
                code: "locking-clause",
                message: format!(
                    "`FOR {}` takes row locks and is not allowed. Remove the locking clause; a \
                     plain SELECT reads the same rows.",
                    lock.lock_type
                ),
                at: lock.of.as_ref().map(|of| of.span().start),
            });
        }
        self.collect_table_commands(&query.body);
        self.scopes.push(scope);
        ControlFlow::Continue(())
    }

    fn post_visit_query(&mut self, _query: &Query) -> ControlFlow<()> {
        self.scopes.pop();
        ControlFlow::Continue(())
    }

    fn pre_visit_select(&mut self, select: &Select) -> ControlFlow<()> {
        if let Some(into) = &select.into {
            self.out.findings.push(Finding {
                code: "select-into",
                message: format!(
                    "`SELECT … {into}` stores the result in a table or variables and is not \
                     allowed. Remove the INTO clause; Quarry returns the result rows itself."
                ),
                at: into.targets.first().map(|t| t.span().start),
            });
        }
        if !select.optimizer_hints.is_empty() {
            self.out.has_optimizer_hints = true;
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, factor: &TableFactor) -> ControlFlow<()> {
        match factor {
            // `FROM f(args)`: a table-valued function, not a table.
            TableFactor::Table {
                name,
                args: Some(_),
                ..
            } => self.check_function(name),
            TableFactor::Table {
                name, args: None, ..
            } if !self.is_cte(name) => {
                self.out.tables.push((name.span().start, name_parts(name)));
            }
            TableFactor::Function { name, .. } => self.check_function(name),
            _ => {}
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<()> {
        if let Expr::Function(function) = expr {
            self.check_function(&function.name);
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_statement(&mut self, statement: &Statement) -> ControlFlow<()> {
        // The walk starts at a query, so any statement met is nested in it: PostgreSQL's
        // `WITH x AS (DELETE … RETURNING …)` and the like.
        let printed = statement.to_string();
        let keyword = printed
            .split_whitespace()
            .next()
            .unwrap_or("?")
            .to_uppercase();
        self.out.findings.push(Finding {
            code: "data-modifying-cte",
            message: format!(
                "The query contains `{keyword}` inside WITH or a subquery, which changes data. \
                 Only SELECT is allowed there; rewrite that part as a SELECT."
            ),
            at: Some(statement.span().start),
        });
        ControlFlow::Continue(())
    }
}
