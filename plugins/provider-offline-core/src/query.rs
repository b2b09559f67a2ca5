//! A query as the translator builds it — a root table, joins along foreign keys, selected
//! expressions, filters, grouping, ordering, a limit — and its SQL in one dialect.
//!
//! Joins are found by a breadth-first search over the foreign keys. A join that follows a key
//! from the referencing table to the referenced one (many → one) never repeats the root's rows;
//! one the other way does ("fan-out"), which the planner must avoid for sums and averages.

use std::collections::VecDeque;

use crate::dialect::{Dialect, Unit};
use crate::read::{AggFn, CmpOp, DatePart, DateRange};
use crate::schema::Schema;

/// A foreign key between two tables: `from.from_col` references `to.to_col`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Edge {
    /// The referencing table.
    pub from: usize,
    /// Its column.
    pub from_col: usize,
    /// The referenced table.
    pub to: usize,
    /// Its column.
    pub to_col: usize,
}

/// Every single-column foreign key of `schema` whose target is in the schema (self-references skipped).
pub fn edges(schema: &Schema) -> Vec<Edge> {
    let mut out = Vec::new();
    for (ti, t) in schema.tables.iter().enumerate() {
        for (ci, c) in t.columns.iter().enumerate() {
            let Some((rt, rc)) = &c.references else { continue };
            let Some(to) = schema.table_index(rt) else { continue };
            if to == ti {
                continue;
            }
            let Some(to_col) = schema.tables[to].columns.iter().position(|x| x.name.eq_ignore_ascii_case(rc)) else {
                continue;
            };
            out.push(Edge { from: ti, from_col: ci, to, to_col });
        }
    }
    out
}

/// The shortest join path from `a` to `b`: each step is an edge and whether it is walked from
/// the referencing side (many → one). `None` when they are not connected; ambiguous paths
/// (two keys between the same tables) take the first key.
pub fn path(schema: &Schema, a: usize, b: usize) -> Option<Vec<(Edge, bool)>> {
    if a == b {
        return Some(Vec::new());
    }
    let all = edges(schema);
    let mut prev: Vec<Option<(usize, Edge, bool)>> = vec![None; schema.tables.len()];
    let mut seen = vec![false; schema.tables.len()];
    let mut queue = VecDeque::from([a]);
    seen[a] = true;
    while let Some(t) = queue.pop_front() {
        for e in &all {
            let (next, forward) = if e.from == t {
                (e.to, true)
            } else if e.to == t {
                (e.from, false)
            } else {
                continue;
            };
            if seen[next] {
                continue;
            }
            seen[next] = true;
            prev[next] = Some((t, *e, forward));
            if next == b {
                let mut steps = Vec::new();
                let mut cur = b;
                while let Some((p, e, f)) = prev[cur] {
                    steps.push((e, f));
                    cur = p;
                    if cur == a {
                        break;
                    }
                }
                steps.reverse();
                return Some(steps);
            }
            queue.push_back(next);
        }
    }
    None
}

/// An expression over the schema's columns.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A column: table, column.
    Col(usize, usize),
    /// `COUNT(*)`, or `COUNT(DISTINCT root key)` when joins repeat the root's rows.
    CountRows,
    /// `COUNT(DISTINCT col)`.
    CountDistinct(usize, usize),
    /// An aggregate of an expression.
    Agg(AggFn, Box<Expr>),
    /// A product (quantity × price).
    Mul(Box<Expr>, Box<Expr>),
    /// A part of a date column.
    Part(DatePart, usize, usize),
    /// Every column of a table.
    Star(usize),
}

impl Expr {
    fn tables(&self, out: &mut Vec<usize>) {
        match self {
            Expr::Col(t, _) | Expr::CountDistinct(t, _) | Expr::Part(_, t, _) | Expr::Star(t) => out.push(*t),
            Expr::Agg(_, e) => e.tables(out),
            Expr::Mul(a, b) => {
                a.tables(out);
                b.tables(out);
            }
            Expr::CountRows => {}
        }
    }

    /// Whether it aggregates.
    pub fn is_aggregate(&self) -> bool {
        matches!(self, Expr::CountRows | Expr::CountDistinct(..) | Expr::Agg(..))
    }
}

/// A `WHERE` condition.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// `col = 'literal'` (a value as the schema spells it).
    Eq(usize, usize, String),
    /// `LOWER(col) = 'value'`.
    EqLower(usize, usize, String),
    /// `col = TRUE/FALSE`.
    Flag(usize, usize, bool),
    /// A numeric comparison (`Between` uses both numbers).
    Cmp(Expr, CmpOp, f64, Option<f64>),
    /// A date range on a date column.
    Date(usize, usize, DateRange),
    /// `col = n` on a year column.
    YearEquals(usize, usize, i32),
    /// `col IS NULL`.
    Null(usize, usize),
    /// `col IS NOT NULL` (ordering by a column puts its NULLs aside).
    NotNull(Expr),
}

impl Filter {
    fn tables(&self, out: &mut Vec<usize>) {
        match self {
            Filter::Eq(t, ..)
            | Filter::EqLower(t, ..)
            | Filter::Flag(t, ..)
            | Filter::Date(t, ..)
            | Filter::YearEquals(t, ..)
            | Filter::Null(t, _) => out.push(*t),
            Filter::Cmp(e, ..) | Filter::NotNull(e) => e.tables(out),
        }
    }
}

/// What to order by.
#[derive(Debug, Clone, PartialEq)]
pub enum OrderKey {
    /// A selected expression's alias.
    Alias(String),
    /// An expression.
    Expr(Expr),
}

/// One query.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    /// The table in `FROM`.
    pub root: usize,
    /// Selected expressions and their aliases.
    pub select: Vec<(Expr, Option<String>)>,
    /// `SELECT DISTINCT`.
    pub distinct: bool,
    /// `WHERE` conditions, joined with `AND`.
    pub filters: Vec<Filter>,
    /// `GROUP BY`.
    pub group: Vec<Expr>,
    /// `HAVING agg op n`.
    pub having: Option<(Expr, CmpOp, f64, Option<f64>)>,
    /// `ORDER BY`: key, descending.
    pub order: Vec<(OrderKey, bool)>,
    /// `LIMIT`.
    pub limit: Option<u64>,
}

impl Query {
    /// An empty query on `root`.
    pub fn new(root: usize) -> Self {
        Query {
            root,
            select: Vec::new(),
            distinct: false,
            filters: Vec::new(),
            group: Vec::new(),
            having: None,
            order: Vec::new(),
            limit: None,
        }
    }

    /// Every table the query needs, root first.
    fn needed(&self) -> Vec<usize> {
        let mut out = vec![self.root];
        for (e, _) in &self.select {
            e.tables(&mut out);
        }
        for f in &self.filters {
            f.tables(&mut out);
        }
        for g in &self.group {
            g.tables(&mut out);
        }
        if let Some((e, ..)) = &self.having {
            e.tables(&mut out);
        }
        for (k, _) in &self.order {
            if let OrderKey::Expr(e) = k {
                e.tables(&mut out);
            }
        }
        let mut seen = Vec::new();
        for t in out {
            if !seen.contains(&t) {
                seen.push(t);
            }
        }
        seen
    }

    /// The joins from the root to every needed table, and whether any repeats the root's rows.
    pub fn joins(&self, schema: &Schema) -> Result<(Vec<(usize, Edge)>, bool), String> {
        let mut joined = vec![self.root];
        let mut steps = Vec::new();
        let mut fans_out = false;
        for t in self.needed() {
            if joined.contains(&t) {
                continue;
            }
            // Join from the nearest table already in the query.
            let best = joined.iter().filter_map(|&from| path(schema, from, t)).min_by_key(Vec::len);
            let Some(p) = best else {
                return Err(format!(
                    "no foreign-key path joins {} to {}",
                    schema.tables[self.root].name, schema.tables[t].name
                ));
            };
            for (e, forward) in p {
                let next = if forward { e.to } else { e.from };
                if joined.contains(&next) {
                    continue;
                }
                fans_out |= !forward;
                joined.push(next);
                steps.push((next, e));
            }
        }
        Ok((steps, fans_out))
    }

    /// The SQL.
    pub fn sql(&self, schema: &Schema, d: Dialect) -> Result<String, String> {
        let (joins, fans_out) = self.joins(schema)?;
        let aliases = aliases(schema, self.root, &joins);
        let r = Render { schema, d, aliases: &aliases, root: self.root, fans_out };
        let mut sql = String::from("SELECT ");
        if self.distinct {
            sql.push_str("DISTINCT ");
        }
        let cols: Vec<String> = self
            .select
            .iter()
            .map(|(e, a)| match a {
                Some(a) => format!("{} AS {}", r.expr(e), d.ident(a)),
                None => r.expr(e),
            })
            .collect();
        sql.push_str(&cols.join(", "));
        sql.push_str(&format!("\nFROM {}", r.table_ref(self.root)));
        for (t, e) in &joins {
            let on = format!("{} = {}", r.col(e.from, e.from_col), r.col(e.to, e.to_col));
            sql.push_str(&format!("\nJOIN {} ON {on}", r.table_ref(*t)));
        }
        if !self.filters.is_empty() {
            let conds: Vec<String> = self.filters.iter().map(|f| r.filter(f)).collect();
            sql.push_str(&format!("\nWHERE {}", conds.join("\n  AND ")));
        }
        if !self.group.is_empty() {
            let g: Vec<String> = self.group.iter().map(|e| r.expr(e)).collect();
            sql.push_str(&format!("\nGROUP BY {}", g.join(", ")));
        }
        if let Some((e, op, a, b)) = &self.having {
            sql.push_str(&format!("\nHAVING {}", cmp(&r.expr(e), *op, *a, *b)));
        }
        if !self.order.is_empty() {
            let o: Vec<String> = self
                .order
                .iter()
                .map(|(k, desc)| {
                    let key = match k {
                        OrderKey::Alias(a) => d.ident(a),
                        OrderKey::Expr(e) => r.expr(e),
                    };
                    if *desc { format!("{key} DESC") } else { key }
                })
                .collect();
            sql.push_str(&format!("\nORDER BY {}", o.join(", ")));
        }
        if let Some(n) = self.limit {
            sql.push_str(&format!("\nLIMIT {n}"));
        }
        Ok(sql)
    }
}

/// Short aliases (`o`, `c`, `oi`) when the query joins; none otherwise.
fn aliases(schema: &Schema, root: usize, joins: &[(usize, Edge)]) -> Vec<(usize, String)> {
    if joins.is_empty() {
        return Vec::new();
    }
    let mut out: Vec<(usize, String)> = Vec::new();
    for t in std::iter::once(root).chain(joins.iter().map(|(t, _)| *t)) {
        let words = crate::words::identifier_words(&schema.tables[t].name);
        let mut base: String = words.iter().filter_map(|w| w.chars().next()).collect();
        if base.is_empty() || !base.chars().next().is_some_and(|c| c.is_ascii_lowercase()) {
            base = "t".into();
        }
        let mut alias = base.clone();
        let mut n = 2;
        while out.iter().any(|(_, a)| *a == alias) || crate::dialect::Dialect::Postgres.ident(&alias) != alias {
            alias = format!("{base}{n}");
            n += 1;
        }
        out.push((t, alias));
    }
    out
}

struct Render<'a> {
    schema: &'a Schema,
    d: Dialect,
    aliases: &'a [(usize, String)],
    root: usize,
    fans_out: bool,
}

impl Render<'_> {
    fn alias(&self, t: usize) -> Option<&str> {
        self.aliases.iter().find(|(x, _)| *x == t).map(|(_, a)| a.as_str())
    }

    fn table_ref(&self, t: usize) -> String {
        let name = self.d.table(&self.schema.tables[t].name);
        match self.alias(t) {
            Some(a) => format!("{name} {a}"),
            None => name,
        }
    }

    fn col(&self, t: usize, c: usize) -> String {
        let name = self.d.ident(&self.schema.tables[t].columns[c].name);
        match self.alias(t) {
            Some(a) => format!("{a}.{name}"),
            None => name,
        }
    }

    fn expr(&self, e: &Expr) -> String {
        match e {
            Expr::Col(t, c) => self.col(*t, *c),
            Expr::CountRows => {
                let pk = self.schema.tables[self.root].columns.iter().position(|c| c.primary_key);
                match pk {
                    Some(pk) if self.fans_out => format!("COUNT(DISTINCT {})", self.col(self.root, pk)),
                    _ => "COUNT(*)".into(),
                }
            }
            Expr::CountDistinct(t, c) => format!("COUNT(DISTINCT {})", self.col(*t, *c)),
            // Exact values: rounding is for whoever shows them (small averages would vanish).
            Expr::Agg(f, inner) => format!("{}({})", f.sql(), self.expr(inner)),
            Expr::Mul(a, b) => format!("{} * {}", self.expr(a), self.expr(b)),
            Expr::Part(p, t, c) => {
                let col = self.col(*t, *c);
                match p {
                    DatePart::Day => self.d.day_of(&col),
                    DatePart::Week => self.d.week_of(&col),
                    DatePart::Month => self.d.month_of(&col),
                    DatePart::Quarter => self.d.quarter_of(&col),
                    DatePart::Year => self.d.year_of(&col),
                }
            }
            Expr::Star(t) => match self.alias(*t) {
                Some(a) => format!("{a}.*"),
                None => "*".into(),
            },
        }
    }

    fn filter(&self, f: &Filter) -> String {
        let d = self.d;
        match f {
            Filter::Eq(t, c, v) => format!("{} = {}", self.col(*t, *c), d.string(v)),
            Filter::EqLower(t, c, v) => d.equals_ignoring_case(&self.col(*t, *c), &v.to_lowercase()),
            Filter::Flag(t, c, b) => format!("{} = {}", self.col(*t, *c), d.boolean(*b)),
            Filter::Cmp(e, op, a, b) => cmp(&self.expr(e), *op, *a, *b),
            Filter::YearEquals(t, c, y) => format!("{} = {y}", self.col(*t, *c)),
            Filter::Null(t, c) => format!("{} IS NULL", self.col(*t, *c)),
            Filter::NotNull(e) => format!("{} IS NOT NULL", self.expr(e)),
            Filter::Date(t, c, range) => {
                let col = self.col(*t, *c);
                let (from, to) = date_bounds(d, range);
                match to {
                    Some(to) => format!("{col} >= {from} AND {col} < {to}"),
                    None => format!("{col} >= {from}"),
                }
            }
        }
    }
}

/// `expr op n`, or `expr BETWEEN a AND b`.
fn cmp(expr: &str, op: CmpOp, a: f64, b: Option<f64>) -> String {
    match (op, b) {
        (CmpOp::Between, Some(b)) => format!("{expr} BETWEEN {} AND {}", number(a), number(b)),
        _ => format!("{expr} {} {}", op.sql(), number(a)),
    }
}

/// A number as SQL: integers without a decimal point.
pub fn number(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 { format!("{}", n as i64) } else { format!("{n}") }
}

/// The inclusive start and exclusive end of a range, as SQL expressions.
fn date_bounds(d: Dialect, range: &DateRange) -> (String, Option<String>) {
    let lit = |y: i32, m: u32| d.string(&format!("{y:04}-{m:02}-01"));
    match *range {
        DateRange::Last(n, unit) => (d.days_ago(n, unit), None),
        DateRange::This(unit) => (d.period_start(unit, 0), None),
        DateRange::Previous(unit) => (d.period_start(unit, 1), Some(d.period_start(unit, 0))),
        DateRange::Year(y) => (lit(y, 1), Some(lit(y + 1, 1))),
        DateRange::Month(y, m) => {
            let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
            (lit(y, m), Some(lit(ny, nm)))
        }
    }
}

/// How a range reads in a description.
pub fn describe_range(range: &DateRange) -> String {
    let unit = |u: Unit| u.name();
    match range {
        DateRange::Last(n, u) => format!("in the last {n} {}s", unit(*u)),
        DateRange::This(Unit::Day) => "today".into(),
        DateRange::This(u) => format!("this {}", unit(*u)),
        DateRange::Previous(Unit::Day) => "yesterday".into(),
        DateRange::Previous(u) => format!("last {}", unit(*u)),
        DateRange::Year(y) => format!("in {y}"),
        DateRange::Month(y, m) => format!("in {y}-{m:02}"),
    }
}
