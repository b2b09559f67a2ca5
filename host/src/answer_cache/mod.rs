//! The answer cache: question → SQL per connection, so a question asked again (or asked again in
//! other words) skips the LLM. It stores SQL only, never results: a hit is re-executed.
//!
//! A lookup tries, in order:
//! 1. **exact**: the same normalised question ([`text::Question::normalized`]) for the same
//!    connection and schema fingerprint, fresh under a *sliding* TTL (on
//!    `COALESCE(last_hit_at, created_at)`);
//! 2. **similar**: the fresh entry of that connection and fingerprint rated most alike, if it
//!    reaches the policy's threshold and passes the guard of the way it was compared
//!    ([`similarity`]): by the cosine of the questions' vectors when the provider offers
//!    embeddings and the entry has a vector of the same model, by their words ([`Scorer`],
//!    [`LexicalScorer`]) otherwise — per entry, so entries stored before embeddings were
//!    configured still match lexically.
//!
//! Guards, whatever the comparison: no similar hit when the two questions name different
//! literals (numbers such as `$60k`, `1,000`, `5%`, `2024`; months; codes such as `q1`), and none
//! when either speaks of time relative to now ("last month", "ytd", "trailing 12 months"): for
//! those only an exact entry younger than [`RELATIVE_TIME_MAX_AGE`] counts, because its SQL may
//! hold dates that have gone stale. A hit by vectors also needs the same named values
//! ([`names`]: "revenue in Berlin" never answers "revenue in Paris").
//!
//! The question's vector comes from a [`QuestionVectors`], one per request: it is asked for only
//! when an entry has a vector to compare with (or an answer is stored), at most once per question,
//! so the answer stored after a miss reuses the vector the lookup computed. Without an embedder,
//! or when it fails or is slow, questions are compared by their words. Every change is atomic in
//! the store (one statement, or one transaction), so replicas sharing a PostgreSQL store can use
//! one cache. With Redis configured, the exact step is served from copies there first, and stored
//! answers are copied there ([`hot`]: the store stays the source of truth).

pub mod hot;
pub mod names;
pub mod similarity;
pub mod text;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use serde::Serialize;

use crate::embedding::QuestionVectors;
use crate::store::answer_cache::{CacheCandidate, CacheEntryRecord, NewCacheEntry};
use crate::store::{Page, Store, StoreError};

pub use similarity::{LexicalScorer, Scorer, Similarity, compare};
pub use text::Question;

/// Entries kept per connection; the least recently used beyond it are evicted on insert.
pub const DEFAULT_CAPACITY: usize = 500;

/// The similarity a similar-question hit needs unless the settings say otherwise.
pub const DEFAULT_THRESHOLD: f64 = 0.87;

/// The sliding TTL unless the settings say otherwise: 30 days.
pub const DEFAULT_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

/// The oldest an exact entry may be (since it was stored) to answer a relative-time question.
pub const RELATIVE_TIME_MAX_AGE: Duration = Duration::from_secs(24 * 3600);

/// Entries [`AnswerCache::evict_similar`] looks at per connection (more than any capacity in use).
const EVICTION_SCAN_LIMIT: usize = 10_000;

/// How [`AnswerCache::lookup`] decides freshness and similarity.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CachePolicy {
    /// Sliding time to live: an entry not stored or served for this long is invisible. `None`:
    /// entries never expire.
    pub ttl: Option<Duration>,
    /// The similarity a similar question needs, on either scale (cosine of vectors, or the
    /// lexical scorer's, which gives 1.0 to the same content words in the same order; see
    /// [`similarity`]). Above 1 (or NaN) turns the similar step off.
    pub threshold: f64,
}

impl Default for CachePolicy {
    /// 30 days and 0.87, the defaults of `cache_ttl_secs` and `semantic_similarity_threshold`.
    fn default() -> Self {
        Self { ttl: Some(DEFAULT_TTL), threshold: DEFAULT_THRESHOLD }
    }
}

impl CachePolicy {
    /// From the live settings: `cache_ttl_secs` (0: never expire) and
    /// `semantic_similarity_threshold`.
    pub fn from_settings(settings: &crate::app_settings::Settings) -> Self {
        let ttl = (settings.cache_ttl_secs > 0).then(|| Duration::from_secs(settings.cache_ttl_secs));
        Self { ttl, threshold: settings.semantic_similarity_threshold }
    }
}

/// A cached answer to serve.
#[derive(Debug, Clone, PartialEq)]
pub struct CacheHit {
    /// The entry served (for `reject_hit`, `delete_entry`, the message's record).
    pub entry_id: String,
    /// The cached SQL, to validate against the asker's schema and run.
    pub sql: String,
    /// The dialect plugin it was written for.
    pub dialect: String,
    /// The question it was cached for.
    pub question_raw: String,
    /// 1.0 for an exact hit, else the similarity it was found with.
    pub similarity: f64,
    /// Whether the normalised questions were equal.
    pub exact: bool,
    /// Whether it was found by comparing the questions' vectors.
    pub by_vectors: bool,
}

/// How [`AnswerCache::store_entry_with`] stores an answer.
#[derive(Debug, Clone, Copy, Default)]
pub struct StoreOptions<'a> {
    /// Replace an entry with the same key (`force_refresh`); otherwise it is kept.
    pub overwrite: bool,
    /// Entries kept for the connection (at least 1); `None`: the cache's capacity.
    pub capacity: Option<usize>,
    /// Where the question's vector comes from; `None`: no vector is stored.
    pub vectors: Option<&'a QuestionVectors>,
}

/// A cache entry as listed.
pub type CacheEntry = CacheEntryRecord;

/// One of the most-served questions.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TopQuery {
    /// The question as first asked.
    pub question: String,
    /// Times served.
    pub hit_count: i64,
}

/// Usage over every connection (`GET /chat/cache/stats`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CacheStats {
    /// Entries stored.
    pub total_entries: i64,
    /// Hits over all entries.
    pub hit_count: i64,
    /// Misses over all connections.
    pub miss_count: i64,
    /// `hit_count / (hit_count + miss_count)`, 0 when both are 0.
    pub hit_rate: f64,
    /// The five most-served questions, most hits first.
    pub top_cached_queries: Vec<TopQuery>,
}

/// Where the cache reads the time (tests move it).
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// The answer cache. Clone is cheap.
#[derive(Clone)]
pub struct AnswerCache {
    store: Store,
    scorer: Arc<dyn Scorer>,
    capacity: usize,
    clock: Clock,
    /// Exact answers copied to Redis, when configured ([`AnswerCache::with_redis`]).
    hot: Option<Arc<hot::HotTier>>,
}

impl AnswerCache {
    /// A cache kept in `store`: lexical similarity, [`DEFAULT_CAPACITY`] entries per connection.
    pub fn new(store: Store) -> Self {
        Self { store, scorer: Arc::new(LexicalScorer), capacity: DEFAULT_CAPACITY, clock: Arc::new(Utc::now), hot: None }
    }

    /// The same cache keeping at most `capacity` (at least 1) entries per connection.
    pub fn with_capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity.max(1);
        self
    }

    /// The same cache comparing questions with `scorer`.
    pub fn with_scorer(mut self, scorer: Arc<dyn Scorer>) -> Self {
        self.scorer = scorer;
        self
    }

    /// The same cache reading the time from `clock`.
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// The scorer questions are compared with.
    pub fn scorer(&self) -> &Arc<dyn Scorer> {
        &self.scorer
    }

    /// Entries kept per connection.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    fn now(&self) -> DateTime<Utc> {
        (self.clock)().trunc_subsecs(6)
    }

    /// The cached answer for `question` on `connection_id` with the schema `schema_fingerprint`,
    /// if there is a fresh one: exact first, then the most similar by words (see the module
    /// docs). A hit bumps the entry's `hit_count` and `last_hit_at` atomically; a miss counts
    /// one miss for the connection. A blank question is a miss that is not counted.
    pub async fn lookup(
        &self,
        connection_id: &str,
        question: &str,
        schema_fingerprint: &str,
        policy: &CachePolicy,
    ) -> Result<Option<CacheHit>, StoreError> {
        self.lookup_with(connection_id, question, schema_fingerprint, policy, &QuestionVectors::none()).await
    }

    /// [`AnswerCache::lookup`], comparing by vectors where it can: the question's comes from
    /// `vectors`, asked only when the similar step has an entry with a vector.
    pub async fn lookup_with(
        &self,
        connection_id: &str,
        question: &str,
        schema_fingerprint: &str,
        policy: &CachePolicy,
        vectors: &QuestionVectors,
    ) -> Result<Option<CacheHit>, StoreError> {
        let q = Question::new(question);
        if q.normalized.is_empty() {
            return Ok(None);
        }
        let now = self.now();
        let used_since = policy.ttl.map_or(DateTime::UNIX_EPOCH, |ttl| before(now, ttl));
        let created_since = if q.relative_time { before(now, RELATIVE_TIME_MAX_AGE) } else { DateTime::UNIX_EPOCH };
        let store = &self.store;
        let hot = self.hot_bind(connection_id, &q, schema_fingerprint).await?;
        if let Some(hot) = &hot
            && let Some(found) = hot.serve(used_since, created_since, now).await
        {
            return Ok(Some(found));
        }
        if let Some(entry) = store
            .cache_hit_exact(connection_id, &q.normalized, schema_fingerprint, used_since, created_since, now)
            .await?
        {
            if let Some(hot) = &hot {
                hot.fill(&entry, now, policy.ttl).await;
            }
            return Ok(Some(hit(entry, Similarity::Words(1.0), true)));
        }
        // A stale entry under this key would block storing a fresh answer (inserts keep what exists).
        store.cache_drop_stale(connection_id, &q.normalized, schema_fingerprint, used_since, created_since).await?;
        // A threshold above 1 (or NaN) turns the similar step off: no vector is asked for.
        if !q.relative_time && policy.threshold <= 1.0 {
            let candidates =
                store.cache_candidates(connection_id, schema_fingerprint, used_since, self.capacity).await?;
            for (entry, similarity) in self.similar_candidates(&q, candidates, policy.threshold, vectors).await {
                // Served only if still there and fresh: another replica may have evicted it.
                if let Some(served) = store.cache_hit_id(&entry.id, used_since, now).await? {
                    return Ok(Some(hit(served, similarity, false)));
                }
            }
        }
        store.cache_record_miss(connection_id).await?;
        Ok(None)
    }

    /// The entries that may answer `q`, best first: the literal and relative-time guards passed,
    /// then compared (by vectors where both have one) and kept if [`Similarity::may_reuse`].
    async fn similar_candidates(
        &self,
        q: &Question,
        candidates: Vec<CacheCandidate>,
        threshold: f64,
        vectors: &QuestionVectors,
    ) -> Vec<(CacheEntryRecord, Similarity)> {
        let comparable: Vec<(CacheCandidate, Question)> = candidates
            .into_iter()
            .filter_map(|c| {
                let other = Question::new(&c.entry.question_raw);
                let comparable =
                    c.entry.question_normalized != q.normalized && !other.relative_time && other.literals == q.literals;
                comparable.then_some((c, other))
            })
            .collect();
        let vector = if comparable.iter().any(|(c, _)| c.embedding.is_some()) { vectors.of(&q.raw).await } else { None };
        let scorer = self.scorer.as_ref();
        let mut ranked: Vec<(CacheEntryRecord, Similarity)> = comparable
            .into_iter()
            .filter_map(|(c, other)| {
                let similarity = compare(scorer, q, vector.as_ref(), &other, c.embedding.as_ref());
                similarity.may_reuse(scorer, q, &other, threshold).then_some((c.entry, similarity))
            })
            .collect();
        ranked.sort_by(|a, b| b.1.score().total_cmp(&a.1.score()));
        ranked
    }

    /// Count one miss for the connection (a lookup that misses already does).
    pub async fn record_miss(&self, connection_id: &str) -> Result<(), StoreError> {
        self.store.cache_record_miss(connection_id).await
    }

    /// The caller refused a hit (its SQL does not fit the asker's schema, or fails validation):
    /// count it as a miss instead. The entry stays (it may suit other users).
    pub async fn reject_hit(&self, connection_id: &str, entry_id: &str) -> Result<(), StoreError> {
        if self.take_back_hot_hit(entry_id) {
            return self.store.cache_record_miss(connection_id).await;
        }
        self.store.cache_undo_hit(connection_id, entry_id).await
    }

    /// Remember `sql` as the answer to `question`. An entry with the same normalised question,
    /// connection and fingerprint is kept unless `overwrite` (`force_refresh`). Then the
    /// connection's least recently used entries beyond the capacity are evicted, in the same
    /// transaction. Returns whether `sql` was stored; `false` also for a blank question.
    /// [`StoreError::InvalidInput`] for a NUL character in any text.
    pub async fn store_entry(
        &self,
        connection_id: &str,
        question: &str,
        schema_fingerprint: &str,
        sql: &str,
        dialect: &str,
        overwrite: bool,
    ) -> Result<bool, StoreError> {
        let options = StoreOptions { overwrite, ..StoreOptions::default() };
        self.store_entry_with(connection_id, question, schema_fingerprint, sql, dialect, options).await
    }

    /// [`AnswerCache::store_entry`] with another capacity than the cache's (the live setting
    /// `cache_max_entries_per_connection`; at least 1).
    #[allow(clippy::too_many_arguments)]
    pub async fn store_entry_with_capacity(
        &self,
        connection_id: &str,
        question: &str,
        schema_fingerprint: &str,
        sql: &str,
        dialect: &str,
        overwrite: bool,
        capacity: usize,
    ) -> Result<bool, StoreError> {
        let options = StoreOptions { overwrite, capacity: Some(capacity), vectors: None };
        self.store_entry_with(connection_id, question, schema_fingerprint, sql, dialect, options).await
    }

    /// [`AnswerCache::store_entry`] with [`StoreOptions`]: another capacity, and the question's
    /// vector from `options.vectors` (the one the lookup computed, when it did).
    pub async fn store_entry_with(
        &self,
        connection_id: &str,
        question: &str,
        schema_fingerprint: &str,
        sql: &str,
        dialect: &str,
        options: StoreOptions<'_>,
    ) -> Result<bool, StoreError> {
        let q = Question::new(question);
        if q.normalized.is_empty() {
            return Ok(false);
        }
        // A relative-time entry is never compared by similarity: its vector would go unused.
        let embedding = match options.vectors {
            Some(vectors) if !q.relative_time => vectors.of(question).await,
            _ => None,
        };
        let entry = NewCacheEntry {
            connection_id,
            question_normalized: &q.normalized,
            question_raw: question.trim(),
            schema_fingerprint,
            sql,
            dialect,
            embedding: embedding.as_ref(),
        };
        let capacity = options.capacity.unwrap_or(self.capacity).max(1);
        // Bound before writing: see the `hot` module on why the order makes copies safe.
        let hot = self.hot_bind(connection_id, &q, schema_fingerprint).await?;
        let (written, _evicted) = self.store.cache_insert(entry, options.overwrite, capacity, self.now()).await?;
        if written {
            self.after_store(connection_id, hot, options.overwrite).await?;
        }
        Ok(written)
    }

    /// Forget the answers a 👎 or a new example makes doubtful: the entry with the same
    /// normalised question (any fingerprint) and every entry of the connection whose question
    /// scores ≥ `threshold` against `question` by words (no guards: removing too much only
    /// costs a miss). How many entries went.
    pub async fn evict_similar(&self, connection_id: &str, question: &str, threshold: f64) -> Result<u64, StoreError> {
        self.evict_similar_with(connection_id, question, threshold, &QuestionVectors::none()).await
    }

    /// [`AnswerCache::evict_similar`], comparing by vectors where both questions have one of the
    /// same model (the question's from `vectors`, asked only if an entry has a vector).
    pub async fn evict_similar_with(
        &self,
        connection_id: &str,
        question: &str,
        threshold: f64,
        vectors: &QuestionVectors,
    ) -> Result<u64, StoreError> {
        let q = Question::new(question);
        if q.normalized.is_empty() {
            return Ok(0);
        }
        let candidates: Vec<CacheCandidate> = self
            .store
            .cache_entries_of(connection_id, EVICTION_SCAN_LIMIT)
            .await?
            .into_iter()
            .filter(|c| c.entry.question_normalized != q.normalized)
            .collect();
        let vector = if candidates.iter().any(|c| c.embedding.is_some()) { vectors.of(question).await } else { None };
        let ids: Vec<String> = candidates
            .into_iter()
            .filter(|c| {
                let other = Question::new(&c.entry.question_raw);
                compare(self.scorer.as_ref(), &q, vector.as_ref(), &other, c.embedding.as_ref()).score() >= threshold
            })
            .map(|c| c.entry.id)
            .collect();
        let deleted = self.store.cache_delete_matching(connection_id, &q.normalized, &ids).await?;
        self.retire(connection_id).await?;
        Ok(deleted)
    }

    /// Forget every entry of `connection_id` (schema refresh, privacy or semantic-model change,
    /// `DELETE /chat/cache/{id}`); how many were removed. Its miss counter stays.
    pub async fn clear_connection(&self, connection_id: &str) -> Result<u64, StoreError> {
        let deleted = self.store.cache_clear_connection(connection_id).await?;
        self.retire(connection_id).await?;
        Ok(deleted)
    }

    /// Forget every entry of a deleted connection and its miss counter; how many entries went.
    pub async fn forget_connection(&self, connection_id: &str) -> Result<u64, StoreError> {
        let deleted = self.store.cache_forget_connection(connection_id).await?;
        self.retire(connection_id).await?;
        Ok(deleted)
    }

    /// Delete one entry; whether it existed.
    pub async fn delete_entry(&self, entry_id: &str) -> Result<bool, StoreError> {
        let connection_id = self.store.cache_entry_connection(entry_id).await?;
        let deleted = self.store.cache_delete_entry(entry_id).await?;
        if let Some(connection_id) = connection_id.filter(|_| deleted) {
            self.retire(&connection_id).await?;
        }
        Ok(deleted)
    }

    /// Delete every entry stale under `ttl` (at start-up; lookups never see them anyway). `None`
    /// deletes nothing. How many went.
    pub async fn prune(&self, ttl: Option<Duration>) -> Result<u64, StoreError> {
        match ttl {
            Some(ttl) => self.store.cache_prune(before(self.now(), ttl)).await,
            None => Ok(0),
        }
    }

    /// Usage over all connections.
    pub async fn stats(&self) -> Result<CacheStats, StoreError> {
        self.flush_hot_hits().await;
        let totals = self.store.cache_totals(5).await?;
        let asked = totals.hit_count.saturating_add(totals.miss_count);
        let hit_rate = if asked > 0 { totals.hit_count as f64 / asked as f64 } else { 0.0 };
        Ok(CacheStats {
            total_entries: totals.total_entries,
            hit_count: totals.hit_count,
            miss_count: totals.miss_count,
            hit_rate,
            top_cached_queries: totals
                .top
                .into_iter()
                .map(|(question, hit_count)| TopQuery { question, hit_count })
                .collect(),
        })
    }

    /// One page of the connection's entries, most hits first; with `search`, only those whose
    /// question contains it (case-insensitive).
    pub async fn entries(
        &self,
        connection_id: &str,
        limit: usize,
        offset: usize,
        search: Option<&str>,
    ) -> Result<Page<CacheEntry>, StoreError> {
        self.flush_hot_hits().await;
        let search = search.map(str::trim).filter(|s| !s.is_empty());
        let (items, total) = self.store.cache_page(connection_id, search, limit, offset).await?;
        Ok(Page { items, total, limit, offset })
    }
}

/// `now − span`, not before the Unix epoch (which every cut-off compare treats as "always").
fn before(now: DateTime<Utc>, span: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(span)
        .ok()
        .and_then(|d| now.checked_sub_signed(d))
        .filter(|t| *t > DateTime::UNIX_EPOCH)
        .unwrap_or(DateTime::UNIX_EPOCH)
}

fn hit(entry: CacheEntryRecord, similarity: Similarity, exact: bool) -> CacheHit {
    CacheHit {
        entry_id: entry.id,
        sql: entry.sql,
        dialect: entry.dialect,
        question_raw: entry.question_raw,
        similarity: similarity.score(),
        exact,
        by_vectors: similarity.by_vectors(),
    }
}

#[cfg(test)]
mod tests;
