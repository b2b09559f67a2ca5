//! How alike two questions are: [`compare`] uses the questions' vectors when both have one of
//! the same model (cosine, [`crate::embedding::Embedding::similarity`]), and their words
//! otherwise ([`Scorer`], by default [`LexicalScorer`]); [`Similarity::may_reuse`] adds the guard
//! that belongs to each way of comparing.
//!
//! One threshold (`semantic_similarity_threshold`, 0.87 by default) serves both scales. On the
//! lexical scale 1 means the same content words and 0.87 admits a typo in a short question; on
//! the cosine scale of current embedding models (OpenAI `text-embedding-3-*`, `nomic-embed-text`)
//! 0.87 is a close paraphrase, while merely related questions score well below it. Either way the
//! threshold says "as good as the same question", and raising it makes both stricter. Models whose
//! cosines crowd near 1 for any two texts (OpenAI `ada-002`) want a higher value, about 0.93.
//!
//! [`LexicalScorer`] compares the [`Question`]s' normalised content tokens:
//! `score = 0.6 · cos(tokens) + 0.4 · cos(trigrams)`, where `tokens` is the bag of content words
//! *and* adjacent word pairs (so "customers without orders" is not "orders without customers")
//! and `trigrams` the character trigrams of the normalised text (so a typo costs a little, not
//! a whole word). A word one edit away from a word of the other question (both ≥ 6 letters,
//! neither a literal) counts as that word: "custmers" matches "customers".
//!
//! Identical normalised text scores 1. For reuse of an answer, it also requires that both
//! questions use the same content words (up to such typos, any order): lexical similarity cannot
//! tell "revenue in Berlin" from "revenue in Paris" by degree, only by the word that differs.
//!
//! Vectors see past the words ("How many clients do we have?" is "Count the customers"), so that
//! veto would defeat them; they are blind to names instead, so a hit by vectors needs the same
//! named values ([`super::names`]). The literal and relative-time guards are the cache's, and
//! apply whichever way two questions were compared.

use std::collections::{HashMap, HashSet};

use super::text::Question;
use crate::embedding::Embedding;

/// How alike two questions were found, and by what.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Similarity {
    /// The cosine of their vectors (same model), in `[0, 1]`.
    Vectors(f64),
    /// The [`Scorer`]'s similarity of their words, in `[0, 1]`.
    Words(f64),
}

impl Similarity {
    /// The score, whichever way it was found.
    pub fn score(self) -> f64 {
        match self {
            Similarity::Vectors(s) | Similarity::Words(s) => s,
        }
    }

    /// Whether it was found by comparing vectors.
    pub fn by_vectors(self) -> bool {
        matches!(self, Similarity::Vectors(_))
    }

    /// Whether an answer to `candidate` may be served for `query`: the score reaches `threshold`
    /// (never for NaN) and the guard of the way they were compared passes — the same named
    /// values for vectors, the scorer's veto for words.
    pub fn may_reuse(self, scorer: &dyn Scorer, query: &Question, candidate: &Question, threshold: f64) -> bool {
        self.score() >= threshold
            && match self {
                Similarity::Vectors(_) => query.names == candidate.names,
                Similarity::Words(_) => scorer.may_share_answer(query, candidate),
            }
    }
}

/// How alike `query` and `candidate` are: by their vectors when both have one from the same
/// model (and dimension), else by `scorer` over their words.
pub fn compare(
    scorer: &dyn Scorer,
    query: &Question,
    query_vector: Option<&Embedding>,
    candidate: &Question,
    candidate_vector: Option<&Embedding>,
) -> Similarity {
    match query_vector.zip(candidate_vector).and_then(|(q, c)| q.similarity(c)) {
        Some(cosine) => Similarity::Vectors(cosine),
        None => Similarity::Words(scorer.score(query, candidate)),
    }
}

/// Weight of the word (and word-pair) cosine in [`LexicalScorer`]'s score; the rest is trigrams.
const TOKEN_WEIGHT: f64 = 0.6;

/// Shortest word that typo matching considers.
const MIN_TYPO_WORD_CHARS: usize = 6;

/// Scores how alike two questions are by their words, in `[0, 1]`: what [`compare`] falls back
/// to when the two have no comparable vectors.
///
/// The numeric and relative-time guards are not the scorer's job: the cache applies them
/// whatever scores.
pub trait Scorer: Send + Sync {
    /// A short name for logs (`"lexical"`).
    fn name(&self) -> &'static str;

    /// Similarity of `a` and `b` in `[0, 1]`; 1 for the same normalised question. Symmetric.
    fn score(&self, a: &Question, b: &Question) -> f64;

    /// Whether an answer to `a` may be reused for `b` at all, whatever the score: the scorer's
    /// own veto (the lexical scorer demands the same content words). Default: no veto.
    fn may_share_answer(&self, _a: &Question, _b: &Question) -> bool {
        true
    }
}

/// The built-in scorer: cosine over content words, word pairs and character trigrams.
#[derive(Debug, Clone, Copy, Default)]
pub struct LexicalScorer;

impl Scorer for LexicalScorer {
    fn name(&self) -> &'static str {
        "lexical"
    }

    fn score(&self, a: &Question, b: &Question) -> f64 {
        if a.normalized == b.normalized {
            return if a.normalized.is_empty() { 0.0 } else { 1.0 };
        }
        let b_tokens = align(&a.tokens, &b.tokens);
        let tokens = cosine(&token_vector(&a.tokens), &token_vector(&b_tokens));
        let trigrams = cosine(&trigram_vector(&a.normalized), &trigram_vector(&b.normalized));
        (TOKEN_WEIGHT * tokens + (1.0 - TOKEN_WEIGHT) * trigrams).clamp(0.0, 1.0)
    }

    fn may_share_answer(&self, a: &Question, b: &Question) -> bool {
        let b_tokens = align(&a.tokens, &b.tokens);
        let left: HashSet<&str> = a.tokens.iter().map(String::as_str).collect();
        let right: HashSet<&str> = b_tokens.iter().map(String::as_str).collect();
        left == right
    }
}

/// `b`'s tokens, each word that is one typo away from a word only `a` has replaced by it.
fn align(a: &[String], b: &[String]) -> Vec<String> {
    let in_a: HashSet<&str> = a.iter().map(String::as_str).collect();
    let in_b: HashSet<&str> = b.iter().map(String::as_str).collect();
    let only_a: Vec<&str> = a.iter().map(String::as_str).filter(|t| !in_b.contains(t) && typo_candidate(t)).collect();
    b.iter()
        .map(|t| {
            if in_a.contains(t.as_str()) || !typo_candidate(t) {
                return t.clone();
            }
            match only_a.iter().find(|o| within_one_edit(o, t)) {
                Some(o) => (*o).to_string(),
                None => t.clone(),
            }
        })
        .collect()
}

/// Long enough, and not a literal (numbers and codes must match exactly).
fn typo_candidate(token: &str) -> bool {
    token.chars().count() >= MIN_TYPO_WORD_CHARS && token.chars().all(char::is_alphabetic)
}

/// One insertion, deletion, substitution or swap of neighbours turns `a` into `b`.
fn within_one_edit(a: &str, b: &str) -> bool {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let prefix = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let (ra, rb) = (&a[prefix..], &b[prefix..]);
    match (ra.len(), rb.len()) {
        (0, 0) => true,
        (x, y) if x == y => ra[1..] == rb[1..] || (x >= 2 && ra[0] == rb[1] && ra[1] == rb[0] && ra[2..] == rb[2..]),
        (x, y) if x == y + 1 => ra[1..] == *rb,
        (x, y) if y == x + 1 => *ra == rb[1..],
        _ => false,
    }
}

/// Counts of each word and each adjacent pair of words.
fn token_vector(tokens: &[String]) -> HashMap<String, f64> {
    let mut v = HashMap::new();
    for t in tokens {
        *v.entry(t.clone()).or_insert(0.0) += 1.0;
    }
    for pair in tokens.windows(2) {
        *v.entry(format!("{} {}", pair[0], pair[1])).or_insert(0.0) += 1.0;
    }
    v
}

/// Counts of each character trigram of ` text ` (padded, so word edges count).
fn trigram_vector(text: &str) -> HashMap<String, f64> {
    let chars: Vec<char> = format!(" {text} ").chars().collect();
    let mut v = HashMap::new();
    for w in chars.windows(3) {
        *v.entry(w.iter().collect::<String>()).or_insert(0.0) += 1.0;
    }
    v
}

fn cosine(a: &HashMap<String, f64>, b: &HashMap<String, f64>) -> f64 {
    let dot: f64 = a.iter().filter_map(|(k, x)| b.get(k).map(|y| x * y)).sum();
    let norm = |v: &HashMap<String, f64>| v.values().map(|x| x * x).sum::<f64>().sqrt();
    let denominator = norm(a) * norm(b);
    if denominator == 0.0 { 0.0 } else { dot / denominator }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn score(a: &str, b: &str) -> f64 {
        LexicalScorer.score(&Question::new(a), &Question::new(b))
    }

    fn shares(a: &str, b: &str) -> bool {
        LexicalScorer.may_share_answer(&Question::new(a), &Question::new(b))
    }

    #[test]
    fn paraphrases_with_the_same_content_score_one() {
        assert_eq!(score("how many customers", "How many customers are there?"), 1.0);
        assert_eq!(score("List all customers", "show me every customer"), 1.0);
        assert!(shares("how many customers", "how many customers are there?"));
    }

    #[test]
    fn a_typo_costs_little() {
        let s = score("how many customers", "how many custmers");
        assert!(s > 0.87 && s < 1.0, "{s}");
        assert!(shares("how many customers", "how many custmers"));
    }

    #[test]
    fn word_order_and_different_words_cost_a_lot() {
        let s = score("customers without orders", "orders without customers");
        assert!(s < 0.8, "{s}");
        let s = score("total revenue in berlin", "total revenue in paris");
        assert!(s < 0.8, "{s}");
        assert!(!shares("total revenue in berlin", "total revenue in paris"));
        assert!(!shares("total revenue by region", "total revenue by region and product"));
        assert!(!shares("customers in austria", "customers in australia"));
    }

    #[test]
    fn scores_are_graded_for_ranking() {
        let close = score("top 5 products by revenue", "top 10 products by revenue");
        let far = score("top 5 products by revenue", "average delivery time per courier");
        assert!(close > 0.4 && close < 1.0, "{close}");
        assert!(far < 0.2, "{far}");
        assert!(close > far);
        assert_eq!(score("", ""), 0.0);
    }

    #[test]
    fn one_edit_is_recognised() {
        assert!(within_one_edit("customer", "custmer"));
        assert!(within_one_edit("customer", "cusotmer"));
        assert!(within_one_edit("customer", "customers"));
        assert!(within_one_edit("customer", "cuztomer"));
        assert!(!within_one_edit("customer", "costumes"));
        assert!(!within_one_edit("berlin", "paris"));
    }

    #[test]
    fn score_is_symmetric() {
        let pairs = [("how many custmers", "how many customers"), ("orders by month", "monthly orders count")];
        for (a, b) in pairs {
            assert!((score(a, b) - score(b, a)).abs() < 1e-9, "{a} / {b}");
        }
    }
}
