//! From the recognised items of a question to a [`Query`]: which table the question is about,
//! what it measures, how it groups, filters, orders and limits — or why it cannot be answered.
//!
//! The shapes, tried in this order:
//! - top-N / superlatives: "top 5 products by price", "which customer spent the most",
//!   "the most common status", "what is the highest salary";
//! - counts: "how many orders in 2024", "number of customers per country";
//! - aggregates: "average salary per department", "total revenue by month";
//! - lists: "customers in Germany", "products over 100", "customers with more than 5 orders".

use crate::query::{Expr, Filter, OrderKey, Query, describe_range, number, path};
use crate::read::{AggFn, CmpOp, Concept, DatePart, DateRange, Item, Reading};
use crate::schema::{ColumnKind, Schema};
use crate::words::{identifier_stems, stem};

/// A planned query and a one-sentence description of it.
#[derive(Debug, Clone)]
pub struct Planned {
    /// The query.
    pub query: Query,
    /// What it does, for people.
    pub description: String,
}

/// Everything the items say, sorted by role.
struct Parts {
    tables: Vec<(usize, usize)>,
    columns: Vec<(usize, usize, usize)>,
    filters: Vec<Filter>,
    described: Vec<String>,
    compares: Vec<(usize, CmpOp, f64, Option<f64>)>,
    dates: Vec<DateRange>,
    groups: Vec<(usize, Item)>,
    superlative: Option<(usize, bool, Concept)>,
    top: Option<u64>,
    count: bool,
    distinct: bool,
    agg: Option<AggFn>,
    money: Option<usize>,
    which: bool,
    list: bool,
    price_word: bool,
    /// Tables that hold a filter's column (they may be named without another role).
    filter_tables: Vec<usize>,
}

/// Plan the question read as `reading`.
pub fn plan(schema: &Schema, reading: &Reading) -> Result<Planned, String> {
    if !reading.unknown.is_empty() {
        return Err(format!("it did not understand {}", quote_list(&reading.unknown)));
    }
    let mut p = sort(schema, reading)?;
    let planner = Planner { s: schema };
    planner.dispatch(&mut p)
}

fn quote_list(words: &[String]) -> String {
    let shown: Vec<String> = words.iter().take(5).map(|w| format!("\"{w}\"")).collect();
    shown.join(", ")
}

/// Sort the items into roles; grouping words take the name that follows them.
fn sort(schema: &Schema, reading: &Reading) -> Result<Parts, String> {
    let mut p = Parts {
        tables: Vec::new(),
        columns: Vec::new(),
        filters: Vec::new(),
        described: Vec::new(),
        compares: Vec::new(),
        dates: Vec::new(),
        groups: Vec::new(),
        superlative: None,
        top: None,
        count: false,
        distinct: false,
        agg: None,
        money: None,
        which: false,
        list: false,
        price_word: false,
        filter_tables: Vec::new(),
    };
    let items = &reading.items;
    let mut skip = vec![false; items.len()];
    // "status delivered": the column only says where the value is.
    for (k, (_, item)) in items.iter().enumerate() {
        if let Item::Column(t, c) = item {
            skip[k] = items.iter().any(|(_, it)| matches!(it, Item::Value(vt, vc, _) if vt == t && vc == c));
        }
    }
    for (k, (pos, item)) in items.iter().enumerate() {
        if skip[k] {
            continue;
        }
        match item {
            // "paid by credit card": "by" a value is a filter, not a grouping.
            Item::GroupBy
                if items
                    .get(k + 1)
                    .is_some_and(|(_, it)| matches!(it, Item::Value(..) | Item::LooseValue(..) | Item::Flag(..))) => {}
            Item::GroupBy => {
                let target =
                    items.iter().enumerate().skip(k + 1).find(|(_, (_, it))| {
                        matches!(it, Item::Table(_) | Item::Column(..) | Item::Part(_) | Item::Money)
                    });
                match target {
                    Some((j, (tpos, it))) => {
                        skip[j] = true;
                        p.groups.push((*tpos, it.clone()));
                    }
                    None => return Err("it could not tell what to group by".into()),
                }
            }
            Item::Without => {
                let target = items.get(k + 1).filter(|(_, it)| matches!(it, Item::Column(..)));
                match target {
                    Some((_, Item::Column(t, c))) => {
                        skip[k + 1] = true;
                        p.filters.push(Filter::Null(*t, *c));
                        p.filter_tables.push(*t);
                        p.described.push(format!("without a {}", schema.tables[*t].columns[*c].name));
                    }
                    _ => return Err("it does not handle \"no\"/\"without\" except before a column".into()),
                }
            }
            // "product categories": in a compound the last noun is the thing; the first only qualifies it.
            Item::Table(_)
                if items.get(k + 1).is_some_and(|(next, it)| *next == pos + 1 && matches!(it, Item::Table(_)))
                    && !reading.verbs.contains(&(pos + 1)) => {}
            Item::Table(t) => p.tables.push((*pos, *t)),
            Item::Column(t, c) => p.columns.push((*pos, *t, *c)),
            Item::Value(t, c, v) => {
                p.filters.push(Filter::Eq(*t, *c, v.clone()));
                p.filter_tables.push(*t);
                p.described.push(format!("{} is '{v}'", schema.tables[*t].columns[*c].name));
            }
            Item::LooseValue(t, c, v) => {
                p.filters.push(Filter::EqLower(*t, *c, v.clone()));
                p.filter_tables.push(*t);
                p.described.push(format!("{} is '{v}'", schema.tables[*t].columns[*c].name));
            }
            Item::Flag(t, c, b) => {
                p.filters.push(Filter::Flag(*t, *c, *b));
                p.filter_tables.push(*t);
                let name = &schema.tables[*t].columns[*c].name;
                p.described.push(if *b { format!("{name} is true") } else { format!("{name} is false") });
            }
            Item::Count => p.count = true,
            Item::Distinct => p.distinct = true,
            Item::Agg(f) => {
                if p.agg.is_some_and(|a| a != *f) {
                    return Err("it handles one aggregate per question".into());
                }
                p.agg = Some(*f);
            }
            Item::Superlative(most, c) => {
                if p.superlative.is_some() {
                    return Err("it handles one superlative per question".into());
                }
                p.superlative = Some((*pos, *most, *c));
            }
            Item::Top(n) => p.top = Some(*n),
            Item::Part(_) => return Err("it only groups by a date part after \"per\", \"by\" or \"each\"".into()),
            Item::Compare(op, a, b) => p.compares.push((*pos, *op, *a, *b)),
            Item::Date(r) => p.dates.push(r.clone()),
            Item::Money => p.money = Some(*pos),
            Item::Which => p.which = true,
            Item::List => p.list = true,
            Item::PriceWord => p.price_word = true,
            Item::Ambiguous(cands) => {
                let (t, c) = cands[0];
                return Err(format!(
                    "\"{}\" names columns of several tables; name the table too",
                    schema.tables[t].columns[c].name
                ));
            }
        }
    }
    if p.dates.len() > 1 {
        return Err("it handles one date range per question".into());
    }
    Ok(p)
}

struct Planner<'a> {
    s: &'a Schema,
}

/// A measure: what to sum, average or order by, and its table.
#[derive(Debug, Clone)]
struct Measure {
    table: usize,
    expr: Expr,
    name: String,
}

impl Planner<'_> {
    fn dispatch(&self, p: &mut Parts) -> Result<Planned, String> {
        // "by price" after a superlative or "top N" names the measure, not a grouping.
        if p.superlative.is_some() || p.top.is_some() {
            let mut kept = Vec::new();
            for (pos, g) in std::mem::take(&mut p.groups) {
                match g {
                    Item::Column(t, c) if self.s.tables[t].columns[c].kind.is_numeric() => p.columns.push((pos, t, c)),
                    Item::Money => p.money = Some(pos),
                    other => kept.push((pos, other)),
                }
            }
            p.groups = kept;
            p.columns.sort_by_key(|c| c.0);
        }
        if p.groups.iter().any(|(_, g)| matches!(g, Item::Money)) {
            return Err("it could not tell what to group by".into());
        }
        if p.count && p.agg == Some(AggFn::Avg) {
            return Err("it does not average counts".into());
        }
        let ranks = p.superlative.is_some() || p.top.is_some();
        // "revenue per category": money alone means its total.
        if !ranks && !p.count && p.agg.is_none() && p.money.is_some() {
            p.agg = Some(AggFn::Sum);
        }
        // "orders per status": groups alone mean a count.
        if !ranks && !p.count && p.agg.is_none() && !p.groups.is_empty() {
            p.count = true;
        }
        if ranks {
            self.top(p)
        } else if p.count && p.agg.is_none() {
            self.count(p)
        } else if p.agg.is_some() {
            self.aggregate(p)
        } else {
            self.list(p)
        }
    }

    // ------------------------------------------------------------------ shapes

    /// "how many X [filters] [per G]".
    fn count(&self, p: &mut Parts) -> Result<Planned, String> {
        // "how many distinct countries": the counted noun is a column.
        let counted_column = if p.distinct {
            p.columns.first().copied().filter(|(_, t, c)| !self.s.tables[*t].columns[*c].kind.is_temporal())
        } else {
            None
        };
        let root = match (p.tables.first(), counted_column) {
            (_, Some((_, t, _))) => t,
            (Some((_, t)), None) => *t,
            (None, None) => {
                self.filter_table(p).or_else(|| self.group_table(p)).ok_or("it could not tell what to count")?
            }
        };
        if let Some((_, t, c)) = counted_column {
            p.columns.remove(0);
            let mut q = Query::new(root);
            self.apply_filters(p, &mut q, None)?;
            self.no_leftovers(p, &[])?;
            let name = &self.s.tables[t].columns[c].name;
            q.select.push((Expr::CountDistinct(t, c), Some(format!("{name}_count"))));
            self.apply_groups(p, &mut q, "count")?;
            return Ok(self.finish(q, p, format!("Counts the distinct {name} values of {}", self.tname(t))));
        }
        let mut q = Query::new(root);
        self.apply_filters(p, &mut q, None)?;
        self.no_leftovers(p, &[root])?;
        q.select.push((Expr::CountRows, Some(format!("{}_count", self.singular(root)))));
        self.apply_groups(p, &mut q, &format!("{}_count", self.singular(root)))?;
        Ok(self.finish(q, p, format!("Counts the {}", self.tname(root))))
    }

    /// "average/total/min/max M [of X] [filters] [per G]".
    fn aggregate(&self, p: &mut Parts) -> Result<Planned, String> {
        let f = p.agg.ok_or("no aggregate")?;
        let anchor = p.tables.first().map(|(_, t)| *t).or_else(|| self.group_table(p));
        let m = self.measure(p, anchor)?.ok_or("it could not tell which column to aggregate")?;
        let kind = match &m.expr {
            Expr::Col(t, c) => self.s.tables[*t].columns[*c].kind,
            _ => ColumnKind::Decimal,
        };
        if !(kind.is_numeric() || (kind.is_temporal() && matches!(f, AggFn::Min | AggFn::Max))) {
            return Err(format!("{} is not a number", m.name));
        }
        let mut q = Query::new(m.table);
        self.apply_filters(p, &mut q, Some(m.table))?;
        self.no_leftovers(p, &[m.table])?;
        let alias = agg_alias(f, &m.name);
        q.select.push((Expr::Agg(f, Box::new(m.expr.clone())), Some(alias.clone())));
        self.check_fan_out(&q)?;
        self.apply_groups(p, &mut q, &alias)?;
        let what = format!("the {}", agg_words(f, &m.name));
        Ok(self.finish(q, p, format!("Computes {what}")))
    }

    /// Top-N and superlatives.
    fn top(&self, p: &mut Parts) -> Result<Planned, String> {
        let (spos, most, concept) = p.superlative.unwrap_or((0, true, Concept::Plain));
        let n = p.top.unwrap_or(1);
        let entity = p.tables.first().map(|(_, t)| *t);
        if concept == Concept::Frequency {
            return self.most_frequent(p, most, n);
        }
        // "which city has the most customers": the values of a column counted in its table.
        if let (Some((cpos, t, c)), Concept::Plain) = (p.columns.first().copied(), concept) {
            let text = self.s.tables[t].columns[c].kind == ColumnKind::Text;
            let counted = p.tables.iter().any(|(pos, x)| *pos > spos && *x == t);
            if p.which && text && counted && cpos < spos && p.agg.is_none() && p.money.is_none() {
                p.tables.retain(|(_, x)| *x != t);
                return self.most_frequent(p, most, n);
            }
        }
        // What follows the superlative: a table (count of it), a column, or money.
        let after_table = p.tables.iter().find(|(pos, t)| *pos > spos && Some(*t) != entity).map(|(_, t)| *t);
        if let (Some(e), Some(u), Concept::Plain) = (entity, after_table, concept)
            && p.columns.iter().all(|(_, t, _)| *t != u)
            && p.money.is_none()
            && p.agg.is_none()
        {
            return self.top_by_child_count(p, e, u, most, n);
        }
        let measure = match concept {
            Concept::Price => {
                let t = entity.or_else(|| p.columns.first().map(|c| c.1)).ok_or("it could not tell what to rank")?;
                Some(self.price_of(t).ok_or_else(|| format!("{} has no price column", self.tname(t)))?)
            }
            Concept::Date => {
                let t = entity.ok_or("it could not tell what to rank")?;
                let c = self.date_column(t, p).ok_or_else(|| format!("{} has no date column", self.tname(t)))?;
                Some(self.col_measure(t, c))
            }
            _ => self.measure(p, entity)?,
        };
        let Some(m) = measure else {
            // "top 5 customers": by money when money is reachable, else unclear.
            let e = entity.ok_or("it could not tell what to rank")?;
            let m = self.money_near(e).ok_or("it could not tell what to rank by")?;
            return self.top_grouped(p, e, m, Some(AggFn::Sum), most, n);
        };
        match entity {
            Some(e) if e != m.table => {
                let f = p.agg.or(if self.is_money(&m) || self.additive(&m) { Some(AggFn::Sum) } else { None });
                self.top_grouped(p, e, m, f, most, n)
            }
            _ => {
                let e = m.table;
                let asks_rows = entity.is_some() || p.which || p.list || p.top.is_some();
                if !asks_rows {
                    // "what is the highest salary": an aggregate.
                    let f = if most { AggFn::Max } else { AggFn::Min };
                    p.agg = Some(f);
                    p.columns.retain(|(_, t, c)| Expr::Col(*t, *c) != m.expr);
                    let mut q = Query::new(e);
                    self.apply_filters(p, &mut q, Some(e))?;
                    self.no_leftovers(p, &[e])?;
                    let alias = agg_alias(f, &m.name);
                    q.select.push((Expr::Agg(f, Box::new(m.expr.clone())), Some(alias)));
                    self.apply_groups(p, &mut q, "")?;
                    return Ok(self.finish(q, p, format!("Finds the {}", agg_words(f, &m.name))));
                }
                if p.agg.is_some() {
                    return Err("it does not rank rows by an aggregate of their own columns".into());
                }
                p.columns.retain(|(_, t, c)| Expr::Col(*t, *c) != m.expr);
                let mut q = Query::new(e);
                self.apply_filters(p, &mut q, Some(e))?;
                let extra = self.selected_columns(p, e);
                self.no_leftovers(p, &[e])?;
                if !p.groups.is_empty() {
                    return Err("it does not rank within groups".into());
                }
                for c in self.label(e) {
                    q.select.push((Expr::Col(e, c), None));
                }
                for c in extra {
                    if !q.select.iter().any(|(x, _)| *x == Expr::Col(e, c)) {
                        q.select.push((Expr::Col(e, c), None));
                    }
                }
                if !q.select.iter().any(|(x, _)| *x == m.expr) {
                    let alias = if matches!(m.expr, Expr::Col(..)) { None } else { Some(m.name.clone()) };
                    q.select.push((m.expr.clone(), alias));
                }
                q.filters.push(Filter::NotNull(m.expr.clone()));
                q.order.push((OrderKey::Expr(m.expr.clone()), most));
                q.limit = Some(n);
                self.check_fan_out(&q)?;
                let dir = if most { "highest" } else { "lowest" };
                Ok(self.finish(q, p, format!("{} with the {dir} {}", self.which_rows(e, n), m.name.replace('_', " "))))
            }
        }
    }

    /// "which customer has the most orders": rows of `child` counted per `entity`.
    fn top_by_child_count(
        &self,
        p: &mut Parts,
        entity: usize,
        child: usize,
        most: bool,
        n: u64,
    ) -> Result<Planned, String> {
        self.forward_path(child, entity)?;
        p.tables.retain(|(_, t)| *t != child);
        let mut q = Query::new(child);
        self.apply_filters(p, &mut q, Some(child))?;
        self.no_leftovers(p, &[entity, child])?;
        if !p.groups.is_empty() {
            return Err("it does not rank within groups".into());
        }
        self.group_by_entity(&mut q, entity);
        let alias = format!("{}_count", self.singular(child));
        q.select.push((Expr::CountRows, Some(alias.clone())));
        q.order.push((OrderKey::Alias(alias), most));
        q.limit = Some(n);
        let dir = if most { "most" } else { "fewest" };
        Ok(self.finish(q, p, format!("{} with the {dir} {}", self.which_rows(entity, n), self.tname(child))))
    }

    /// Entities ranked by an aggregate of a measure in another table.
    fn top_grouped(
        &self,
        p: &mut Parts,
        entity: usize,
        m: Measure,
        f: Option<AggFn>,
        most: bool,
        n: u64,
    ) -> Result<Planned, String> {
        let f =
            f.ok_or_else(|| format!("it could not tell how to combine {} per {}", m.name, self.singular(entity)))?;
        self.forward_path(m.table, entity)?;
        p.columns.retain(|(_, t, c)| Expr::Col(*t, *c) != m.expr);
        let mut q = Query::new(m.table);
        self.apply_filters(p, &mut q, Some(m.table))?;
        self.no_leftovers(p, &[entity, m.table])?;
        if !p.groups.is_empty() {
            return Err("it does not rank within groups".into());
        }
        self.group_by_entity(&mut q, entity);
        let alias = agg_alias(f, &m.name);
        q.select.push((Expr::Agg(f, Box::new(m.expr.clone())), Some(alias.clone())));
        q.order.push((OrderKey::Alias(alias), most));
        q.limit = Some(n);
        let dir = if most { "highest" } else { "lowest" };
        Ok(self.finish(q, p, format!("{} with the {dir} {}", self.which_rows(entity, n), agg_words(f, &m.name))))
    }

    /// "the most common status", "which payment method is used most often".
    fn most_frequent(&self, p: &mut Parts, most: bool, n: u64) -> Result<Planned, String> {
        let (root, group): (usize, Vec<Expr>) = if let Some((_, t, c)) = p.columns.first().copied() {
            p.columns.remove(0);
            let root = p.tables.first().map(|(_, x)| *x).filter(|x| *x != t).unwrap_or(t);
            (root, vec![Expr::Col(t, c)])
        } else if let Some((_, e)) = p.tables.first().copied() {
            p.tables.remove(0);
            // A table others reference is a list of things; how often each is used is counted
            // in the one table that references it.
            let referencing: Vec<usize> =
                crate::query::edges(self.s).iter().filter(|x| x.to == e).map(|x| x.from).collect();
            let mentioned = p.tables.iter().map(|(_, t)| *t).find(|t| referencing.contains(t));
            let child = match (mentioned, referencing.as_slice()) {
                (Some(c), _) => c,
                (None, [only]) => *only,
                (None, []) => e,
                _ => {
                    return Err(format!("several tables refer to {}; it could not tell which to count", self.tname(e)));
                }
            };
            p.tables.retain(|(_, t)| *t != child);
            if child == e {
                let label = self.label(e);
                if !self.has_name(e) {
                    return Err(format!("it could not tell what to count in {}", self.tname(e)));
                }
                (e, label.into_iter().map(|c| Expr::Col(e, c)).collect())
            } else {
                let mut g: Vec<Expr> = Vec::new();
                if let Some(pk) = self.pk(e) {
                    g.push(Expr::Col(e, pk));
                }
                g.extend(self.label(e).into_iter().filter(|c| Some(*c) != self.pk(e)).map(|c| Expr::Col(e, c)));
                (child, g)
            }
        } else {
            return Err("it could not tell what to count".into());
        };
        let mut q = Query::new(root);
        self.apply_filters(p, &mut q, Some(root))?;
        self.no_leftovers(p, &[root])?;
        for g in &group {
            q.select.push((g.clone(), None));
            q.group.push(g.clone());
        }
        q.select.push((Expr::CountRows, Some("count".into())));
        q.order.push((OrderKey::Alias("count".into()), most));
        q.limit = Some(n);
        let dir = if most { "most" } else { "least" };
        Ok(self.finish(q, p, format!("Finds the {dir} frequent values in {}", self.tname(root))))
    }

    /// "customers in Germany", "products over 100", "customers with more than 5 orders".
    fn list(&self, p: &mut Parts) -> Result<Planned, String> {
        // A bare column with no table and no "list"/"which" is not clearly a request for rows.
        if p.tables.is_empty() && !p.list && !p.which {
            return Err("it could not tell what to list or compute".into());
        }
        let root = match (p.tables.first(), p.columns.first()) {
            (Some((_, t)), _) => *t,
            (None, Some((_, t, _))) => *t,
            (None, None) => self.filter_table(p).ok_or("it could not tell what to list")?,
        };
        // "with more than 5 orders": a comparison followed by a table is a count per row.
        let child_cmp = p.compares.iter().enumerate().find_map(|(k, (pos, ..))| {
            p.tables.iter().find(|(tpos, t)| *tpos > *pos && *tpos <= pos + 4 && *t != root).map(|(_, t)| (k, *t))
        });
        if let Some((k, child)) = child_cmp {
            let (_, op, a, b) = p.compares.remove(k);
            self.forward_path(child, root)?;
            p.tables.retain(|(_, t)| *t != child);
            let mut q = Query::new(child);
            self.apply_filters(p, &mut q, Some(child))?;
            self.no_leftovers(p, &[root, child])?;
            self.group_by_entity(&mut q, root);
            let alias = format!("{}_count", self.singular(child));
            q.select.push((Expr::CountRows, Some(alias.clone())));
            q.having = Some((Expr::CountRows, op, a, b));
            q.order.push((OrderKey::Alias(alias), true));
            return Ok(self.finish(
                q,
                p,
                format!("Lists the {} by how many {} they have", self.tname(root), self.tname(child)),
            ));
        }
        if !p.groups.is_empty() {
            return Err("it groups only counts, sums and averages".into());
        }
        let mut q = Query::new(root);
        self.apply_filters(p, &mut q, Some(root))?;
        let cols = self.selected_columns(p, root);
        let others: Vec<(usize, usize)> = p.columns.iter().map(|(_, t, c)| (*t, *c)).collect();
        p.columns.clear();
        self.no_leftovers(p, &[root])?;
        if cols.is_empty() && others.is_empty() {
            q.select.push((Expr::Star(root), None));
        } else {
            for c in cols {
                q.select.push((Expr::Col(root, c), None));
            }
            for (t, c) in others {
                q.select.push((Expr::Col(t, c), None));
            }
            // A column that is not the table's own name repeats: list its values once.
            let label = self.label(root);
            q.distinct = q.select.iter().all(|(e, _)| match e {
                Expr::Col(t, c) => !(self.s.tables[*t].columns[*c].primary_key || (*t == root && label.contains(c))),
                _ => false,
            });
        }
        let (_, fans_out) = q.joins(self.s)?;
        if fans_out && !q.distinct && q.select.iter().all(|(e, _)| matches!(e, Expr::Star(_) | Expr::Col(..))) {
            q.distinct = true;
        }
        Ok(self.finish(q, p, format!("Lists the {}", self.tname(root))))
    }

    // ------------------------------------------------------------------ pieces

    /// Filters, comparisons and the date range, added to `q`.
    fn apply_filters(&self, p: &mut Parts, q: &mut Query, measure_table: Option<usize>) -> Result<(), String> {
        q.filters.append(&mut p.filters);
        for (pos, op, a, b) in std::mem::take(&mut p.compares) {
            // The nearest numeric column named before the comparison, else the money or price
            // of the table.
            let before = p
                .columns
                .iter()
                .enumerate()
                .filter(|(_, (cpos, t, c))| *cpos < pos && self.s.tables[*t].columns[*c].kind.is_numeric())
                .max_by_key(|(_, (cpos, ..))| *cpos)
                .map(|(k, (_, t, c))| (k, *t, *c));
            let target = match before {
                Some((k, t, c)) => {
                    p.columns.remove(k);
                    Expr::Col(t, c)
                }
                None => {
                    let t = measure_table.unwrap_or(q.root);
                    let m =
                        if !p.price_word && p.money.take().is_some() { self.money_near(t) } else { self.price_of(t) };
                    m.ok_or_else(|| format!("it could not tell which column \"{}\" compares", number(a)))?.expr
                }
            };
            p.described.push(match b {
                Some(b) => format!("between {} and {}", number(a), number(b)),
                None => format!("{} {}", op.sql(), number(a)),
            });
            q.filters.push(Filter::Cmp(target, op, a, b));
        }
        if let Some(range) = p.dates.pop() {
            // A date column the question names ("hired in 2020"), else the root's, else the
            // nearest table's that has one.
            let named = p
                .columns
                .iter()
                .position(|(_, t, c)| self.s.tables[*t].columns[*c].kind.is_temporal())
                .map(|k| p.columns.remove(k))
                .map(|(_, t, c)| (t, c));
            let found = named.or_else(|| self.date_column(q.root, p).map(|c| (q.root, c))).or_else(|| {
                let mut near: Vec<(usize, usize, usize)> = (0..self.s.tables.len())
                    .filter_map(|t| {
                        let c = self.date_column(t, p)?;
                        let steps = path(self.s, q.root, t)?;
                        // Only along many → one keys: the root's rows keep their meaning.
                        steps.iter().all(|(_, fwd)| *fwd).then_some((steps.len(), t, c))
                    })
                    .collect();
                near.sort();
                near.first().map(|(_, t, c)| (*t, *c))
            });
            match (found, &range) {
                (Some((t, c)), _) => q.filters.push(Filter::Date(t, c, range.clone())),
                (None, DateRange::Year(y)) => {
                    let yc = self.year_column(q.root).ok_or("it found no date column for the date range")?;
                    q.filters.push(Filter::YearEquals(q.root, yc, *y));
                }
                _ => return Err("it found no date column for the date range".into()),
            }
            p.described.push(describe_range(&range));
        }
        Ok(())
    }

    /// `GROUP BY` for the grouping words; the aggregate alias orders the groups.
    fn apply_groups(&self, p: &mut Parts, q: &mut Query, order_alias: &str) -> Result<(), String> {
        if p.groups.is_empty() {
            return Ok(());
        }
        let mut by = Vec::new();
        for (_, g) in std::mem::take(&mut p.groups) {
            let exprs: Vec<(Expr, Option<String>)> = match g {
                Item::Part(part) => {
                    let c = self.date_column(q.root, p).map(|c| (q.root, c)).or_else(|| {
                        q.filters.iter().find_map(|f| if let Filter::Date(t, c, _) = f { Some((*t, *c)) } else { None })
                    });
                    let (t, c) = c.ok_or_else(|| format!("{} has no date column to group by", self.tname(q.root)))?;
                    let name = match part {
                        DatePart::Day => "day",
                        DatePart::Week => "week",
                        DatePart::Month => "month",
                        DatePart::Quarter => "quarter",
                        DatePart::Year => "year",
                    };
                    by.push(name.to_string());
                    vec![(Expr::Part(part, t, c), Some(name.to_string()))]
                }
                Item::Column(t, c) => {
                    let col = &self.s.tables[t].columns[c];
                    // A foreign key groups by what it points at, by name.
                    let target = col.references.as_ref().and_then(|(rt, _)| self.s.table_index(rt));
                    match target {
                        Some(rt) if rt != t => {
                            by.push(self.singular(rt));
                            self.entity_exprs(rt)
                        }
                        _ => {
                            by.push(col.name.clone());
                            vec![(Expr::Col(t, c), None)]
                        }
                    }
                }
                Item::Table(t) => {
                    by.push(self.singular(t));
                    self.entity_exprs(t)
                }
                _ => return Err("it could not tell what to group by".into()),
            };
            for (e, alias) in exprs {
                q.group.push(e.clone());
                // A key with a name beside it is grouped by but not shown.
                let hidden_key = matches!(e, Expr::Col(t, c) if Some(c) == self.pk(t) && self.label(t) != [c]);
                if !hidden_key {
                    q.select.insert(q.select.iter().take_while(|(x, _)| !x.is_aggregate()).count(), (e, alias));
                }
            }
        }
        self.check_fan_out(q)?;
        if !order_alias.is_empty() {
            let time = q.group.iter().all(|e| matches!(e, Expr::Part(..)));
            if time {
                for g in q.group.clone() {
                    q.order.push((OrderKey::Expr(g), false));
                }
            } else {
                q.order.push((OrderKey::Alias(order_alias.to_string()), true));
            }
        }
        p.described.push(format!("per {}", by.join(" and ")));
        Ok(())
    }

    /// The key and name of `t`, for grouping by it.
    fn entity_exprs(&self, t: usize) -> Vec<(Expr, Option<String>)> {
        let mut out = Vec::new();
        if let Some(pk) = self.pk(t) {
            out.push((Expr::Col(t, pk), None));
        }
        for c in self.label(t) {
            if Some(c) != self.pk(t) {
                out.push((Expr::Col(t, c), None));
            }
        }
        out
    }

    /// Group by `entity`'s key and name; show only the name (the key keeps namesakes apart).
    fn group_by_entity(&self, q: &mut Query, entity: usize) {
        let label = self.label(entity);
        for (e, a) in self.entity_exprs(entity) {
            q.group.push(e.clone());
            let shown = matches!(e, Expr::Col(t, c) if label.contains(&c) && t == entity);
            if shown {
                q.select.push((e, a));
            }
        }
    }

    /// Refuse a sum or average whose joins would repeat the measured rows.
    fn check_fan_out(&self, q: &Query) -> Result<(), String> {
        let (_, fans_out) = q.joins(self.s)?;
        let sums = q.select.iter().any(|(e, _)| matches!(e, Expr::Agg(AggFn::Sum | AggFn::Avg, _)));
        if fans_out && sums {
            return Err("the tables involved would count some rows twice".into());
        }
        Ok(())
    }

    /// A path from `from` to `to` along many → one keys only.
    fn forward_path(&self, from: usize, to: usize) -> Result<(), String> {
        let steps = path(self.s, from, to)
            .ok_or_else(|| format!("no foreign-key path joins {} to {}", self.tname(from), self.tname(to)))?;
        if steps.iter().all(|(_, fwd)| *fwd) {
            Ok(())
        } else {
            Err(format!("{} does not belong to one {}", self.singular(from), self.singular(to)))
        }
    }

    /// Nothing the question named may be left without a role.
    fn no_leftovers(&self, p: &mut Parts, used_tables: &[usize]) -> Result<(), String> {
        if let Some((_, t, c)) = p.columns.first() {
            return Err(format!("it could not tell what to do with the column {}", self.s.tables[*t].columns[*c].name));
        }
        p.tables.retain(|(_, t)| !used_tables.contains(t));
        // Other tables may only be mentioned as the owner of a filter ("orders from customers in Germany").
        if let Some((_, t)) = p.tables.iter().find(|(_, t)| !p.filter_tables.contains(t)) {
            return Err(format!("it could not tell what to do with {}", self.tname(*t)));
        }
        p.tables.clear();
        if p.money.is_some() {
            return Err("it could not place the money measure".into());
        }
        Ok(())
    }

    /// The measure the question names: a numeric column, money, or a price.
    fn measure(&self, p: &mut Parts, anchor: Option<usize>) -> Result<Option<Measure>, String> {
        let numeric = p.columns.iter().position(|(_, t, c)| {
            let k = self.s.tables[*t].columns[*c].kind;
            k.is_numeric() || k.is_temporal()
        });
        if let Some(k) = numeric {
            let (_, t, c) = p.columns.remove(k);
            return Ok(Some(self.col_measure(t, c)));
        }
        if p.money.take().is_some() {
            let m = match anchor {
                Some(a) => self.money_near(a),
                None => self.money_anywhere(),
            };
            return m.map(Some).ok_or_else(|| "it found no money column (amount, total, price)".into());
        }
        Ok(None)
    }

    fn col_measure(&self, t: usize, c: usize) -> Measure {
        Measure { table: t, expr: Expr::Col(t, c), name: self.s.tables[t].columns[c].name.clone() }
    }

    /// Money columns by preference: names saying revenue/sales, then amount/total/paid, then
    /// quantity × price in one table, then a price.
    fn money_candidates(&self) -> Vec<(u8, Measure)> {
        let mut out = Vec::new();
        for (t, table) in self.s.tables.iter().enumerate() {
            let mut qty = None;
            let mut price = None;
            for (c, col) in table.columns.iter().enumerate() {
                if !col.kind.is_numeric() || col.primary_key || col.references.is_some() {
                    continue;
                }
                let stems = identifier_stems(&col.name);
                let has = |w: &[&str]| stems.iter().any(|s| w.iter().any(|x| stem(x) == *s));
                if has(&["discount", "tax", "shipping", "fee", "rate", "percent", "pct", "id", "count", "stock"]) {
                    continue;
                }
                if has(&["quantity", "qty", "unit"]) && !has(&["price", "cost"]) {
                    qty = Some(c);
                }
                let words = ["amount", "total", "subtotal", "paid", "spent", "payment"];
                let score = if has(&["revenue", "sales"]) {
                    5
                } else if has(&words) {
                    // `total_amount` says money twice: preferred to a bare `amount`.
                    let n = stems.iter().filter(|s| words.iter().any(|w| stem(w) == **s)).count();
                    if n > 1 { 4 } else { 3 }
                } else if has(&["price", "cost"]) {
                    if has(&["unit"]) || price.is_none() {
                        price = Some(c);
                    }
                    1
                } else {
                    continue;
                };
                out.push((score, self.col_measure(t, c)));
            }
            if let (Some(q), Some(pr)) = (qty, price) {
                let name = "revenue".to_string();
                out.push((
                    2,
                    Measure { table: t, expr: Expr::Mul(Box::new(Expr::Col(t, q)), Box::new(Expr::Col(t, pr))), name },
                ));
            }
        }
        out
    }

    /// The money measure nearest to `anchor` that can be summed per `anchor` row (its table
    /// reaches `anchor` along many → one keys), best name first.
    fn money_near(&self, anchor: usize) -> Option<Measure> {
        let mut best: Option<(usize, u8, Measure)> = None;
        for (score, m) in self.money_candidates() {
            let Some(steps) = path(self.s, m.table, anchor) else { continue };
            if !steps.iter().all(|(_, fwd)| *fwd) {
                continue;
            }
            // A bare price only counts in the anchor's own table.
            if score == 1 && m.table != anchor {
                continue;
            }
            // A real money column at any distance beats a bare price.
            let better = match &best {
                None => true,
                Some((_, s, _)) if (*s >= 2) != (score >= 2) => score >= 2,
                Some((d, s, _)) => steps.len() < *d || (steps.len() == *d && score > *s),
            };
            if better {
                best = Some((steps.len(), score, m));
            }
        }
        best.map(|(_, _, m)| m)
    }

    /// The best money measure in the whole schema, when one stands out.
    fn money_anywhere(&self) -> Option<Measure> {
        let mut c: Vec<(u8, Measure)> = self.money_candidates().into_iter().filter(|(s, _)| *s >= 2).collect();
        c.sort_by_key(|x| std::cmp::Reverse(x.0));
        match c.as_slice() {
            [] => None,
            [(_, m)] => Some(m.clone()),
            [(a, m), (b, _), ..] if a > b => Some(m.clone()),
            _ => None,
        }
    }

    fn is_money(&self, m: &Measure) -> bool {
        self.money_candidates().iter().any(|(s, x)| *s >= 2 && x.expr == m.expr)
    }

    fn additive(&self, m: &Measure) -> bool {
        match &m.expr {
            Expr::Col(_, _) => {
                let stems = identifier_stems(&m.name);
                stems.iter().any(|s| {
                    ["quantity", "units", "hours", "minutes", "points", "credits"].iter().any(|w| stem(w) == *s)
                })
            }
            _ => true,
        }
    }

    /// The price-like column of `t`.
    fn price_of(&self, t: usize) -> Option<Measure> {
        let table = &self.s.tables[t];
        let pick = |words: &[&str]| {
            table.columns.iter().position(|c| {
                c.kind.is_numeric()
                    && !c.primary_key
                    && c.references.is_none()
                    && identifier_stems(&c.name).iter().any(|s| words.iter().any(|w| stem(w) == *s))
            })
        };
        pick(&["price"])
            .or_else(|| pick(&["cost", "fee"]))
            .or_else(|| pick(&["amount", "total"]))
            .map(|c| self.col_measure(t, c))
    }

    /// The date column of `t`: one whose first word the question names, else one named after
    /// the table (`order_date` in `orders`), else one saying created/date, else the only one.
    fn date_column(&self, t: usize, _p: &Parts) -> Option<usize> {
        let table = &self.s.tables[t];
        let dates: Vec<usize> = (0..table.columns.len())
            .filter(|c| {
                let col = &table.columns[*c];
                col.kind.is_temporal()
                    || (col.kind == ColumnKind::Text && {
                        let st = identifier_stems(&col.name);
                        st.len() > 1 && matches!(st.last().map(String::as_str), Some("dat" | "at"))
                    })
            })
            .collect();
        let tstems = identifier_stems(&table.name);
        let named = |c: &usize| {
            let st = identifier_stems(&table.columns[*c].name);
            st.iter().any(|s| tstems.contains(s))
        };
        let generic = |c: &usize| {
            let st = identifier_stems(&table.columns[*c].name);
            st.iter().any(|s| ["created", "date", "placed", "timestamp", "time"].iter().any(|w| stem(w) == *s))
                && !st.iter().any(|s| ["updated", "modified", "deleted", "birth", "dob"].iter().any(|w| stem(w) == *s))
        };
        dates.iter().copied().find(named).or_else(|| dates.iter().copied().find(generic)).or_else(|| {
            let usable: Vec<usize> = dates
                .iter()
                .copied()
                .filter(|c| {
                    !identifier_stems(&table.columns[*c].name)
                        .iter()
                        .any(|s| ["updated", "birth"].iter().any(|w| stem(w) == *s))
                })
                .collect();
            (usable.len() == 1).then(|| usable[0])
        })
    }

    /// An integer column named like a year.
    fn year_column(&self, t: usize) -> Option<usize> {
        self.s.tables[t].columns.iter().position(|c| {
            c.kind == ColumnKind::Integer && identifier_stems(&c.name).last().is_some_and(|s| s == "year")
        })
    }

    /// The columns naming a row of `t`: `name`/`title`-like, or first and last name, else the key.
    fn label(&self, t: usize) -> Vec<usize> {
        let table = &self.s.tables[t];
        let text = |c: &usize| table.columns[*c].kind == ColumnKind::Text && !table.columns[*c].sensitive;
        let find = |words: &[&str]| {
            (0..table.columns.len()).filter(text).find(|c| {
                let st = identifier_stems(&table.columns[*c].name);
                st.last().is_some_and(|s| words.contains(&s.as_str()))
            })
        };
        let first = (0..table.columns.len())
            .filter(text)
            .find(|c| identifier_stems(&table.columns[*c].name) == ["first", "nam"]);
        let last = (0..table.columns.len())
            .filter(text)
            .find(|c| identifier_stems(&table.columns[*c].name) == ["last", "nam"]);
        if let (Some(f), Some(l)) = (first, last) {
            return vec![f, l];
        }
        if let Some(c) = find(&["nam", "titl", "label"]) {
            return vec![c];
        }
        if let Some(c) = (0..table.columns.len())
            .filter(text)
            .find(|c| table.columns[*c].references.is_none() && !table.columns[*c].primary_key)
        {
            return vec![c];
        }
        self.pk(t).into_iter().collect()
    }

    /// Whether `t` has a real name column (not just a fallback label).
    fn has_name(&self, t: usize) -> bool {
        self.s.tables[t].columns.iter().any(|c| {
            c.kind == ColumnKind::Text
                && identifier_stems(&c.name)
                    .last()
                    .is_some_and(|s| ["name", "title", "label"].iter().any(|w| stem(w) == *s))
        })
    }

    fn pk(&self, t: usize) -> Option<usize> {
        self.s.tables[t].columns.iter().position(|c| c.primary_key)
    }

    /// Columns of `root` the question names (to show them), removed from the leftovers.
    fn selected_columns(&self, p: &mut Parts, root: usize) -> Vec<usize> {
        let mut out = Vec::new();
        p.columns.retain(|(_, t, c)| {
            if *t == root {
                out.push(*c);
                false
            } else {
                true
            }
        });
        out
    }

    /// The table of the first filter, when nothing else names one.
    fn filter_table(&self, p: &Parts) -> Option<usize> {
        p.filter_tables.first().copied()
    }

    /// The table a grouping names, for finding money near it.
    fn group_table(&self, p: &Parts) -> Option<usize> {
        p.groups.iter().find_map(|(_, g)| match g {
            Item::Table(t) | Item::Column(t, _) => Some(*t),
            _ => None,
        })
    }

    /// "Finds the customer" for one row, "Lists the 5 customers" for more.
    fn which_rows(&self, t: usize, n: u64) -> String {
        if n == 1 {
            format!("Finds the {}", self.singular(t).replace('_', " "))
        } else {
            format!("Lists the {n} {}", self.tname(t))
        }
    }

    fn tname(&self, t: usize) -> String {
        self.s.tables[t].bare_name().replace('_', " ")
    }

    fn singular(&self, t: usize) -> String {
        let words = crate::words::identifier_words(&self.s.tables[t].name);
        let mut name = words.join("_");
        if name.ends_with("ies") {
            name.truncate(name.len() - 3);
            name.push('y');
        } else if name.ends_with('s') && !name.ends_with("ss") {
            name.pop();
        }
        name
    }

    fn finish(&self, q: Query, p: &Parts, what: String) -> Planned {
        let mut description = what;
        if !p.described.is_empty() {
            description.push_str(&format!(" ({})", p.described.join(", ")));
        }
        description.push('.');
        Planned { query: q, description }
    }
}

/// "total amount" rather than "total total amount".
fn agg_words(f: AggFn, name: &str) -> String {
    let words = name.replace('_', " ");
    if words.starts_with(f.word()) { words } else { format!("{} {words}", f.word()) }
}

/// The alias of an aggregate: `total_price`, `average_salary`; `sum_total_amount` when the
/// name already says "total".
fn agg_alias(f: AggFn, name: &str) -> String {
    if name.starts_with(f.word()) {
        format!("{}_{name}", f.sql().to_lowercase())
    } else {
        format!("{}_{name}", f.word())
    }
}
