//! Verified examples: question → SQL pairs a person vouched for (a 👍, or added by hand), fed to
//! the prompt as few-shot when the cache misses.
//!
//! - [`similar_with`]: the `k` examples of a connection and dialect most like a question, by the
//!   cosine of the questions' vectors where the provider offers embeddings and the example has a
//!   vector of the same model (at least [`MIN_VECTOR_SIMILARITY`]), by the lexical scorer
//!   otherwise (at least [`MIN_SIMILARITY`]); [`similar`] compares words only;
//! - [`add`]: add one by hand (deduplicated, with its question's vector when one can be had)
//!   and evict the cache entries it supersedes;
//! - [`add_from_feedback`] / [`remove_from_feedback`]: a 👍 and its undo;
//! - [`check_sql`]: the dialect plugin's verdict on an example's SQL (examples must be safe to
//!   show the LLM as a model answer, so unsafe or unparsable SQL is refused);
//! - [`dialect_for_source`]: which dialect plugin a connection's `source_type` uses.

use crate::answer_cache::{AnswerCache, LexicalScorer, Question, Similarity, compare};
use crate::embedding::{Embedding, QuestionVectors};
use crate::pipeline::validate::{Verdict, validate};
use crate::plugins::dialect::default_policy;
use crate::plugins::{CallError, PluginRegistry};
use crate::store::examples::{ExampleRecord, NewExample};
use crate::store::{Store, StoreError};

/// The least lexical similarity an example needs to be offered to the prompt. Low on purpose: a
/// loosely related example still shows the schema's idioms; an unrelated one (≈ 0) does not.
pub const MIN_SIMILARITY: f64 = 0.2;

/// The least cosine similarity of vectors an example needs. Higher than [`MIN_SIMILARITY`]:
/// sentence embeddings rate any two questions about data somewhat alike (0.1–0.3 for unrelated
/// ones with current models).
pub const MIN_VECTOR_SIMILARITY: f64 = 0.35;

/// Examples the prompt gets unless told otherwise.
pub const DEFAULT_K: usize = 3;

/// Longest question accepted, in characters.
pub const MAX_QUESTION_CHARS: usize = 2_000;

/// Examples of a connection and dialect that [`similar`] compares (most recently changed first).
const CANDIDATE_LIMIT: usize = 2_000;

/// An example as the prompt shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Example {
    /// The question.
    pub question: String,
    /// The SQL that answers it.
    pub sql: String,
}

/// Why an example's SQL could not be accepted.
#[derive(Debug, thiserror::Error)]
pub enum SqlCheckError {
    /// No dialect plugin of that name is loaded.
    #[error("no dialect plugin named {0:?} is loaded")]
    NoDialect(String),
    /// The plugin failed while judging (the SQL was never judged).
    #[error("the dialect plugin failed: {0}")]
    Plugin(#[from] CallError),
}

/// The dialect plugin for a connection's `source_type`: `postgresql` → `postgres`, `mysql`,
/// `sqlite`. `None` for anything else.
pub fn dialect_for_source(source_type: &str) -> Option<&'static str> {
    match source_type {
        "postgresql" | "postgres" => Some("postgres"),
        "mysql" | "mariadb" => Some("mysql"),
        "sqlite" => Some("sqlite"),
        _ => None,
    }
}

/// The dialect plugin `dialect`'s verdict on `sql` with no row limit: `Ok(vec![])` when it may
/// be stored, else one message per violation (`[code] message`).
pub async fn check_sql(registry: &PluginRegistry, dialect: &str, sql: &str) -> Result<Vec<String>, SqlCheckError> {
    let plugin = registry.current().dialect(dialect).ok_or_else(|| SqlCheckError::NoDialect(dialect.to_string()))?;
    Ok(match validate(&plugin, sql, &default_policy(None)).await? {
        Verdict::Accepted(_) => Vec::new(),
        Verdict::Refused(violations) => violations,
    })
}

/// The `k` examples of `connection_id` written for `dialect` most similar to `question` by their
/// words, best first, each scoring at least [`MIN_SIMILARITY`] with the lexical scorer.
pub async fn similar(
    store: &Store,
    connection_id: &str,
    dialect: &str,
    question: &str,
    k: usize,
) -> Result<Vec<Example>, StoreError> {
    similar_with(store, &QuestionVectors::none(), connection_id, dialect, question, k).await
}

/// [`similar`], comparing by vectors where the question (from `vectors`, asked only if some
/// example has a vector) and the example have one of the same model.
pub async fn similar_with(
    store: &Store,
    vectors: &QuestionVectors,
    connection_id: &str,
    dialect: &str,
    question: &str,
    k: usize,
) -> Result<Vec<Example>, StoreError> {
    let q = Question::new(question);
    if k == 0 || q.normalized.is_empty() {
        return Ok(Vec::new());
    }
    let candidates = store.examples_for(connection_id, dialect, CANDIDATE_LIMIT).await?;
    let vector = if candidates.iter().any(|c| c.embedding.is_some()) { vectors.of(question).await } else { None };
    let mut ranked: Vec<(f64, ExampleRecord)> = candidates
        .into_iter()
        .filter_map(|c| {
            let other = Question::new(&c.example.question);
            let similarity = compare(&LexicalScorer, &q, vector.as_ref(), &other, c.embedding.as_ref());
            let least = match similarity {
                Similarity::Vectors(_) => MIN_VECTOR_SIMILARITY,
                Similarity::Words(_) => MIN_SIMILARITY,
            };
            (similarity.score() >= least).then_some((similarity.score(), c.example))
        })
        .collect();
    // Best first; among equals the most recently changed (the order they came in).
    ranked.sort_by(|a, b| b.0.total_cmp(&a.0));
    Ok(ranked.into_iter().take(k).map(|(_, r)| Example { question: r.question, sql: r.sql }).collect())
}

/// Add an example by hand, with its question's vector from `vectors` when it offers one, and
/// evict the cache entries for similar questions (score ≥ `threshold`), so the next ask goes to
/// the LLM with the new example. `None` when the connection already has this question and SQL
/// (nothing changes). The SQL must have passed [`check_sql`]; the question is trimmed.
#[allow(clippy::too_many_arguments)]
pub async fn add(
    store: &Store,
    cache: &AnswerCache,
    vectors: &QuestionVectors,
    connection_id: &str,
    dialect: &str,
    question: &str,
    sql: &str,
    threshold: f64,
) -> Result<Option<ExampleRecord>, StoreError> {
    let draft = Draft::of(vectors, question, sql).await;
    let Some(record) = store.insert_example(draft.for_connection(connection_id, dialect)).await? else {
        return Ok(None);
    };
    cache.evict_similar_with(connection_id, &draft.question, threshold, vectors).await?;
    Ok(Some(record))
}

/// A 👍: keep `question` → `sql` as an example (with its question's vector from `vectors` when
/// it offers one), unless the connection already has the same normalised question with the same
/// SQL (then that one is returned).
pub async fn add_from_feedback(
    store: &Store,
    vectors: &QuestionVectors,
    connection_id: &str,
    dialect: &str,
    question: &str,
    sql: &str,
) -> Result<ExampleRecord, StoreError> {
    let draft = Draft::of(vectors, question, sql).await;
    let new = draft.for_connection(connection_id, dialect);
    if let Some(record) = store.insert_example(new).await? {
        return Ok(record);
    }
    // A concurrent undo may have removed the duplicate in between: then insert again.
    match store.example_matching(connection_id, &draft.normalized, &draft.sql).await? {
        Some(record) => Ok(record),
        None => store
            .insert_example(new)
            .await?
            .ok_or_else(|| StoreError::InvalidInput("the example changed concurrently; try again".to_string())),
    }
}

/// A question → SQL pair ready to store: both trimmed, the question normalised and, when
/// `vectors` offers one, embedded.
struct Draft {
    question: String,
    normalized: String,
    sql: String,
    embedding: Option<Embedding>,
}

impl Draft {
    async fn of(vectors: &QuestionVectors, question: &str, sql: &str) -> Draft {
        let question = question.trim();
        let embedding = vectors.of(question).await;
        Draft {
            question: question.to_string(),
            normalized: Question::new(question).normalized,
            sql: sql.trim().to_string(),
            embedding,
        }
    }

    /// The row for `connection_id`, written for `dialect`.
    fn for_connection<'a>(&'a self, connection_id: &'a str, dialect: &'a str) -> NewExample<'a> {
        NewExample {
            connection_id,
            question: &self.question,
            question_normalized: &self.normalized,
            sql: &self.sql,
            dialect,
            embedding: self.embedding.as_ref(),
        }
    }
}

/// Undo a 👍: delete the connection's example with this question (normalised) and SQL; whether
/// there was one.
pub async fn remove_from_feedback(
    store: &Store,
    connection_id: &str,
    question: &str,
    sql: &str,
) -> Result<bool, StoreError> {
    let q = Question::new(question.trim());
    Ok(store.delete_example_matching(connection_id, &q.normalized, sql.trim()).await? > 0)
}

/// Delete every example of a deleted connection; how many went.
pub async fn delete_for_connection(store: &Store, connection_id: &str) -> Result<u64, StoreError> {
    store.delete_connection_examples(connection_id).await
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONN: &str = "conn-1";

    async fn store() -> Store {
        Store::open("sqlite::memory:").await.expect("store")
    }

    #[tokio::test]
    async fn similar_ranks_by_lexical_similarity_within_connection_and_dialect() {
        let store = store().await;
        for (q, sql) in [
            ("top 5 customers by revenue", "SELECT name FROM customers ORDER BY revenue DESC LIMIT 5"),
            ("how many orders were shipped", "SELECT COUNT(*) FROM orders WHERE shipped"),
            ("average delivery time per courier", "SELECT courier, AVG(t) FROM d GROUP BY 1"),
        ] {
            add_from_feedback(&store, &QuestionVectors::none(), CONN, "sqlite", q, sql).await.expect("add");
        }
        add_from_feedback(&store, &QuestionVectors::none(), CONN, "postgres", "top 5 customers by revenue", "SELECT 1")
            .await
            .expect("add");
        add_from_feedback(
            &store,
            &QuestionVectors::none(),
            "conn-2",
            "sqlite",
            "top 10 customers by revenue",
            "SELECT 2",
        )
        .await
        .expect("add");

        let found = similar(&store, CONN, "sqlite", "top 10 customers by total revenue", 3).await.expect("similar");
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].question, "top 5 customers by revenue");
        assert!(found[0].sql.contains("LIMIT 5"));

        let found = similar(&store, CONN, "sqlite", "number of shipped orders by courier", 3).await.expect("similar");
        assert_eq!(found[0].question, "how many orders were shipped", "{found:?}");
        assert!(found.len() <= 3);
        assert!(similar(&store, CONN, "sqlite", "zebra giraffe", 3).await.expect("similar").is_empty());
        assert!(similar(&store, CONN, "sqlite", "top customers", 0).await.expect("similar").is_empty());
    }

    #[tokio::test]
    async fn feedback_examples_are_deduplicated_and_undone() {
        let store = store().await;
        let first = add_from_feedback(
            &store,
            &QuestionVectors::none(),
            CONN,
            "sqlite",
            "How many customers?",
            "SELECT COUNT(*) FROM c",
        )
        .await
        .expect("add");
        let again = add_from_feedback(
            &store,
            &QuestionVectors::none(),
            CONN,
            "sqlite",
            "how many customers",
            " SELECT COUNT(*) FROM c\n",
        )
        .await
        .expect("add again");
        assert_eq!(first.id, again.id);
        let other = add_from_feedback(
            &store,
            &QuestionVectors::none(),
            CONN,
            "sqlite",
            "how many customers",
            "SELECT COUNT(id) FROM c",
        )
        .await
        .expect("other sql");
        assert_ne!(first.id, other.id);
        assert_eq!(store.list_examples(CONN, 10, 0).await.expect("list").1, 2);

        assert!(
            remove_from_feedback(&store, CONN, "How many customers are there", "SELECT COUNT(*) FROM c")
                .await
                .expect("undo")
        );
        assert!(
            !remove_from_feedback(&store, CONN, "how many customers", "SELECT COUNT(*) FROM c").await.expect("undo")
        );
        let (left, total) = store.list_examples(CONN, 10, 0).await.expect("list");
        assert_eq!(total, 1);
        assert_eq!(left[0].id, other.id);
        assert_eq!(delete_for_connection(&store, CONN).await.expect("delete"), 1);
    }

    #[tokio::test]
    async fn adding_by_hand_evicts_similar_cache_entries() {
        let store = store().await;
        let cache = AnswerCache::new(store.clone());
        assert!(cache.store_entry(CONN, "how many customers", "fp", "SELECT 1", "sqlite", false).await.expect("store"));
        assert!(cache.store_entry(CONN, "revenue by region", "fp", "SELECT 2", "sqlite", false).await.expect("store"));
        let added = add(
            &store,
            &cache,
            &QuestionVectors::none(),
            CONN,
            "sqlite",
            " How many customers are there? ",
            "SELECT COUNT(*) FROM c",
            0.87,
        )
        .await
        .expect("add")
        .expect("new");
        assert_eq!(added.question, "How many customers are there?");
        assert_eq!(cache.stats().await.expect("stats").total_entries, 1);
        let words = QuestionVectors::none();
        let duplicate =
            add(&store, &cache, &words, CONN, "sqlite", "how many customers", "SELECT COUNT(*) FROM c", 0.87);
        assert!(duplicate.await.expect("add").is_none());
    }

    #[tokio::test]
    async fn examples_with_vectors_rank_by_them() {
        use std::sync::Arc;

        use crate::embedding::testing::Concepts;

        let store = store().await;
        let embedder = Arc::new(Concepts::new("concepts-v1"));
        let request = || QuestionVectors::new(embedder.clone());
        for (q, sql) in [
            ("Count the customers", "SELECT COUNT(*) FROM customers"),
            ("revenue by product", "SELECT product, SUM(total) FROM s GROUP BY 1"),
        ] {
            add_from_feedback(&store, &request(), CONN, "sqlite", q, sql).await.expect("add");
        }
        // Stored without a vector: ranked by its words.
        let words = QuestionVectors::none();
        add_from_feedback(&store, &words, CONN, "sqlite", "how many clients per city", "SELECT 1").await.expect("add");
        let stored = store.examples_for(CONN, "sqlite", 10).await.expect("examples");
        assert_eq!(stored.iter().filter(|c| c.embedding.is_some()).count(), 2);

        let vectors = request();
        let found = similar_with(&store, &vectors, CONN, "sqlite", "How many clients do we have?", 3).await;
        let found = found.expect("similar");
        assert_eq!(found[0].question, "Count the customers", "{found:?}");
        assert!(found.iter().any(|e| e.question == "how many clients per city"), "{found:?}");
        assert!(found.iter().all(|e| e.question != "revenue by product"), "unrelated: {found:?}");
        assert_eq!(vectors.calls(), 1);
        // By words alone the paraphrase is only loosely related.
        let found = similar(&store, CONN, "sqlite", "How many clients do we have?", 3).await.expect("similar");
        assert_eq!(found[0].question, "how many clients per city", "{found:?}");
    }

    #[test]
    fn source_types_map_to_dialects() {
        assert_eq!(dialect_for_source("postgresql"), Some("postgres"));
        assert_eq!(dialect_for_source("mysql"), Some("mysql"));
        assert_eq!(dialect_for_source("sqlite"), Some("sqlite"));
        assert_eq!(dialect_for_source("oracle"), None);
    }
}
