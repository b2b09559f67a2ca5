//! Schema linking: for a schema too large for the prompt, the tables a question needs.
//!
//! Lexical and deterministic, no embeddings: the question and each table are cut into terms
//! (lower-cased, `snake_case` and `camelCase` split, plurals folded: `categories` → `category`),
//! and a table scores by the question terms it contains, weighted by where: its name (3), a
//! column name (2), a comment (1), a sample value (1.5; "shipped orders" finds the table whose
//! `status` has the sample `'shipped'`). Then, in score order, each matching table is followed by
//! its foreign-key neighbours (tables it references, then tables referencing it), and tables are
//! taken in that order while their rendered size fits the budget. A schema that fits whole is
//! returned whole; at least one table is always kept.

use std::collections::{BTreeSet, HashSet};

use super::render::{RenderOptions, render_table};
use super::tokens::estimate_tokens;
use super::{Schema, Table};

/// Words too common in questions to say anything about tables.
const STOP_WORDS: &[&str] = &[
    "a", "an", "the", "of", "in", "on", "at", "to", "for", "by", "with", "from", "and", "or", "not", "is", "are",
    "was", "were", "be", "been", "do", "does", "did", "how", "many", "much", "what", "which", "who", "whom", "whose",
    "when", "where", "why", "show", "list", "give", "get", "find", "me", "all", "each", "every", "per", "than", "that",
    "this", "these", "those", "there", "their", "it", "its", "have", "has", "had", "any", "some", "most", "top",
    "number", "count", "total", "average", "avg", "sum", "max", "min", "last", "first", "between", "over", "under",
    "more", "less", "i", "we", "you", "they", "my", "our", "please", "can", "could", "would", "should", "s", "id",
];

/// Weights of where a question term is found in a table.
const W_TABLE_NAME: f64 = 3.0;
const W_COLUMN_NAME: f64 = 2.0;
const W_SAMPLE: f64 = 1.5;
const W_COMMENT: f64 = 1.0;

/// The tables of `schema` relevant to `question`, within `budget_tokens` of rendered text
/// (default [`RenderOptions`]).
pub fn link(schema: &Schema, question: &str, budget_tokens: usize) -> Schema {
    link_with(schema, question, budget_tokens, &RenderOptions::default())
}

/// [`link`] with explicit render options (the budget is measured with them).
///
/// The result keeps the original table order and the full schema's fingerprint (it is a view of
/// the same schema, and caches key on the schema, not the selection).
pub fn link_with(schema: &Schema, question: &str, budget_tokens: usize, opts: &RenderOptions) -> Schema {
    let costs: Vec<usize> = schema.tables.iter().map(|t| estimate_tokens(&render_table(schema, t, opts))).collect();
    if costs.iter().sum::<usize>() <= budget_tokens || schema.tables.len() <= 1 {
        return schema.clone();
    }
    let q_terms: BTreeSet<String> = terms(question).into_iter().filter(|t| !STOP_WORDS.contains(&t.as_str())).collect();
    let scores: Vec<f64> = schema.tables.iter().map(|t| score(t, &q_terms)).collect();

    // Matching tables by score (ties by position, i.e. by name), each followed by its neighbours.
    let mut ranked: Vec<usize> = (0..schema.tables.len()).filter(|&i| scores[i] > 0.0).collect();
    ranked.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    let mut order: Vec<usize> = Vec::new();
    let mut seen = HashSet::new();
    for &i in &ranked {
        for j in std::iter::once(i).chain(neighbours(schema, i)) {
            if seen.insert(j) {
                order.push(j);
            }
        }
    }
    if order.is_empty() {
        // Nothing matched: fall back to the largest tables, which are most often the facts asked about.
        let mut all: Vec<usize> = (0..schema.tables.len()).collect();
        all.sort_by_key(|&i| (std::cmp::Reverse(schema.tables[i].row_estimate.unwrap_or(0)), i));
        order = all;
    }

    let mut chosen = Vec::new();
    let mut used = 0;
    for i in order.iter().copied() {
        // Skip a table that does not fit but keep trying smaller ones behind it.
        if used + costs[i] <= budget_tokens {
            used += costs[i];
            chosen.push(i);
        }
    }
    if chosen.is_empty() {
        chosen.push(order[0]);
    }
    chosen.sort_unstable();
    Schema {
        engine: schema.engine,
        default_schema: schema.default_schema.clone(),
        tables: chosen.into_iter().map(|i| schema.tables[i].clone()).collect(),
        fingerprint: schema.fingerprint.clone(),
    }
}

/// Score a table against the question's terms.
fn score(table: &Table, q_terms: &BTreeSet<String>) -> f64 {
    let name_terms: HashSet<String> = terms(&table.name).into_iter().collect();
    let column_terms: HashSet<String> = table.columns.iter().flat_map(|c| terms(&c.name)).collect();
    let mut comment_terms: HashSet<String> = table.comment.iter().flat_map(|c| terms(c)).collect();
    comment_terms.extend(table.columns.iter().filter_map(|c| c.comment.as_deref()).flat_map(terms));
    let sample_terms: HashSet<String> = table
        .columns
        .iter()
        .filter(|c| !c.sensitive)
        .flat_map(|c| c.samples.iter())
        .filter_map(|v| v.as_str().map(terms).or_else(|| Some(terms(&v.to_string()))))
        .flatten()
        .collect();
    q_terms
        .iter()
        .map(|t| {
            if name_terms.contains(t) {
                W_TABLE_NAME
            } else if column_terms.contains(t) {
                W_COLUMN_NAME
            } else if sample_terms.contains(t) {
                W_SAMPLE
            } else if comment_terms.contains(t) {
                W_COMMENT
            } else {
                0.0
            }
        })
        .sum()
}

/// Indexes of the tables `i` references, then of the tables referencing `i`, each by position.
fn neighbours(schema: &Schema, i: usize) -> Vec<usize> {
    let table = &schema.tables[i];
    let find = |s: Option<&str>, n: &str| {
        schema.tables.iter().position(|t| t.name == n && (s.is_none() || t.schema.as_deref() == s))
    };
    let mut out: Vec<usize> =
        table.foreign_keys.iter().filter_map(|fk| find(fk.ref_schema.as_deref(), &fk.ref_table)).collect();
    out.sort_unstable();
    let mut incoming: Vec<usize> = schema
        .tables
        .iter()
        .enumerate()
        .filter(|(_, t)| {
            t.foreign_keys
                .iter()
                .any(|fk| fk.ref_table == table.name && (fk.ref_schema.is_none() || fk.ref_schema == table.schema))
        })
        .map(|(j, _)| j)
        .collect();
    incoming.sort_unstable();
    out.extend(incoming);
    out.retain(|&j| j != i);
    out
}

/// Lower-cased, singular terms of a text: split on anything not alphanumeric, on `camelCase`
/// boundaries and between letters and digits.
pub(crate) fn terms(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut prev: Option<char> = None;
    for c in text.chars() {
        let boundary = match prev {
            Some(p) => {
                !c.is_alphanumeric()
                    || (p.is_lowercase() && c.is_uppercase())
                    || (p.is_alphabetic() && c.is_ascii_digit())
                    || (p.is_ascii_digit() && c.is_alphabetic())
            }
            None => false,
        };
        if boundary && !cur.is_empty() {
            words.push(std::mem::take(&mut cur));
        }
        if c.is_alphanumeric() {
            cur.extend(c.to_lowercase());
        }
        prev = Some(c);
    }
    if !cur.is_empty() {
        words.push(cur);
    }
    words.into_iter().map(|w| stem(&w)).collect()
}

/// Fold English plurals: `categories` → `category`, `boxes` → `box`, `orders` → `order`;
/// leaves `status`, `address`, `analysis` alone.
fn stem(w: &str) -> String {
    let n = w.len();
    if n > 4 && w.ends_with("ies") {
        return format!("{}y", &w[..n - 3]);
    }
    if n > 4 && (w.ends_with("ses") || w.ends_with("xes") || w.ends_with("ches") || w.ends_with("shes")) {
        // `addresses` → `address`, `boxes` → `box`, but `cases`/`purchases` lose only the `s`.
        let base = &w[..n - 2];
        if base.ends_with("ss") || base.ends_with('x') || base.ends_with("ch") || base.ends_with("sh") {
            return base.to_string();
        }
        return w[..n - 1].to_string();
    }
    if n >= 3 && w.ends_with('s') && !w.ends_with("ss") && !w.ends_with("us") && !w.ends_with("is") {
        return w[..n - 1].to_string();
    }
    w.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terms_and_stems() {
        assert_eq!(terms("orderItems customer_ids"), vec!["order", "item", "customer", "id"]);
        assert_eq!(
            terms("Categories, addresses; status boxes purchases"),
            vec!["category", "address", "status", "box", "purchase"]
        );
        assert_eq!(terms("Q3 2024"), vec!["q", "3", "2024"]);
    }
}
