//! The answer cache: question → SQL per connection, so a question asked again (or asked again in
//! other words) skips the LLM. It stores SQL only, never results: a hit is re-executed.
//!
//! A lookup tries, in order:
//! 1. **exact**: the same normalised question ([`text::Question::normalized`]) for the same
//!    connection and schema fingerprint, fresh under a *sliding* TTL (on
//!    `COALESCE(last_hit_at, created_at)`);
//! 2. **similar**: the fresh entry of that connection and fingerprint that the [`Scorer`] rates
//!    highest, if it reaches the policy's threshold and the scorer does not veto it.
//!
//! Guards, whatever the scorer says: no similar hit when the two questions name different
//! literals (numbers such as `$60k`, `1,000`, `5%`, `2024`; months; codes such as `q1`), and none
//! when either speaks of time relative to now ("last month", "ytd", "trailing 12 months"): for
//! those only an exact entry younger than [`RELATIVE_TIME_MAX_AGE`] counts, because its SQL may
//! hold dates that have gone stale.
//!
//! Similarity is lexical ([`LexicalScorer`], documented in [`similarity`]); an embedding scorer
//! can replace it through [`AnswerCache::with_scorer`]. Every change is atomic in the store (one
//! statement, or one transaction), so replicas sharing a PostgreSQL store can use one cache.

pub mod similarity;
pub mod text;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use serde::Serialize;

use crate::store::answer_cache::{CacheEntryRecord, NewCacheEntry};
use crate::store::{Page, Store, StoreError};

pub use similarity::{LexicalScorer, Scorer};
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
    /// The [`Scorer`] similarity a similar question needs (the lexical scorer gives 1.0 to the
    /// same content words in the same order). Above 1 (or NaN) turns the similar step off.
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
    /// 1.0 for an exact hit, else the scorer's similarity.
    pub similarity: f64,
    /// Whether the normalised questions were equal.
    pub exact: bool,
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
}

impl AnswerCache {
    /// A cache kept in `store`: lexical similarity, [`DEFAULT_CAPACITY`] entries per connection.
    pub fn new(store: Store) -> Self {
        Self { store, scorer: Arc::new(LexicalScorer), capacity: DEFAULT_CAPACITY, clock: Arc::new(Utc::now) }
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
    /// if there is a fresh one: exact first, then the most similar (see the module docs). A hit
    /// bumps the entry's `hit_count` and `last_hit_at` atomically; a miss counts one miss for
    /// the connection. A blank question is a miss that is not counted.
    pub async fn lookup(
        &self,
        connection_id: &str,
        question: &str,
        schema_fingerprint: &str,
        policy: &CachePolicy,
    ) -> Result<Option<CacheHit>, StoreError> {
        let q = Question::new(question);
        if q.normalized.is_empty() {
            return Ok(None);
        }
        let now = self.now();
        let used_since = policy.ttl.map_or(DateTime::UNIX_EPOCH, |ttl| before(now, ttl));
        let created_since = if q.relative_time { before(now, RELATIVE_TIME_MAX_AGE) } else { DateTime::UNIX_EPOCH };
        let store = &self.store;
        if let Some(entry) = store
            .cache_hit_exact(connection_id, &q.normalized, schema_fingerprint, used_since, created_since, now)
            .await?
        {
            return Ok(Some(hit(entry, 1.0, true)));
        }
        // A stale entry under this key would block storing a fresh answer (inserts keep what exists).
        store.cache_drop_stale(connection_id, &q.normalized, schema_fingerprint, used_since, created_since).await?;
        if !q.relative_time {
            let entries = store.cache_candidates(connection_id, schema_fingerprint, used_since, self.capacity).await?;
            for (entry, similarity) in self.similar_candidates(&q, entries, policy.threshold) {
                // Served only if still there and fresh: another replica may have evicted it.
                if let Some(served) = store.cache_hit_id(&entry.id, used_since, now).await? {
                    return Ok(Some(hit(served, similarity, false)));
                }
            }
        }
        store.cache_record_miss(connection_id).await?;
        Ok(None)
    }

    /// The entries that may answer `q`, best first: guards passed, score ≥ `threshold`.
    fn similar_candidates(
        &self,
        q: &Question,
        entries: Vec<CacheEntryRecord>,
        threshold: f64,
    ) -> Vec<(CacheEntryRecord, f64)> {
        let (entries, questions): (Vec<_>, Vec<_>) = entries
            .into_iter()
            .filter_map(|e| {
                let c = Question::new(&e.question_raw);
                let comparable = e.question_normalized != q.normalized && !c.relative_time && c.literals == q.literals;
                comparable.then_some((e, c))
            })
            .unzip();
        let scores = self.scorer.score_many(q, &questions);
        let mut ranked: Vec<(CacheEntryRecord, f64)> = entries
            .into_iter()
            .zip(questions.iter())
            .zip(scores)
            .filter(|((_, c), score)| *score >= threshold && self.scorer.may_share_answer(q, c))
            .map(|((e, _), score)| (e, score))
            .collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
        ranked
    }

    /// Count one miss for the connection (a lookup that misses already does).
    pub async fn record_miss(&self, connection_id: &str) -> Result<(), StoreError> {
        self.store.cache_record_miss(connection_id).await
    }

    /// The caller refused a hit (its SQL does not fit the asker's schema, or fails validation):
    /// count it as a miss instead. The entry stays (it may suit other users).
    pub async fn reject_hit(&self, connection_id: &str, entry_id: &str) -> Result<(), StoreError> {
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
        self.store_entry_with_capacity(
            connection_id,
            question,
            schema_fingerprint,
            sql,
            dialect,
            overwrite,
            self.capacity,
        )
        .await
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
        let q = Question::new(question);
        if q.normalized.is_empty() {
            return Ok(false);
        }
        let entry = NewCacheEntry {
            connection_id,
            question_normalized: &q.normalized,
            question_raw: question.trim(),
            schema_fingerprint,
            sql,
            dialect,
        };
        let (written, _evicted) = self.store.cache_insert(entry, overwrite, capacity.max(1), self.now()).await?;
        Ok(written)
    }

    /// Forget the answers a 👎 or a new example makes doubtful: the entry with the same
    /// normalised question (any fingerprint) and every entry of the connection whose question
    /// scores ≥ `threshold` against `question` (no guards: removing too much only costs a miss).
    /// How many entries went.
    pub async fn evict_similar(&self, connection_id: &str, question: &str, threshold: f64) -> Result<u64, StoreError> {
        let q = Question::new(question);
        if q.normalized.is_empty() {
            return Ok(0);
        }
        let entries = self.store.cache_entries_of(connection_id, EVICTION_SCAN_LIMIT).await?;
        let (entries, questions): (Vec<_>, Vec<_>) = entries
            .into_iter()
            .filter(|e| e.question_normalized != q.normalized)
            .map(|e| {
                let c = Question::new(&e.question_raw);
                (e, c)
            })
            .unzip();
        let scores = self.scorer.score_many(&q, &questions);
        let ids: Vec<String> =
            entries.into_iter().zip(scores).filter(|(_, s)| *s >= threshold).map(|(e, _)| e.id).collect();
        self.store.cache_delete_matching(connection_id, &q.normalized, &ids).await
    }

    /// Forget every entry of `connection_id` (schema refresh, privacy or semantic-model change,
    /// `DELETE /chat/cache/{id}`); how many were removed. Its miss counter stays.
    pub async fn clear_connection(&self, connection_id: &str) -> Result<u64, StoreError> {
        self.store.cache_clear_connection(connection_id).await
    }

    /// Forget every entry of a deleted connection and its miss counter; how many entries went.
    pub async fn forget_connection(&self, connection_id: &str) -> Result<u64, StoreError> {
        self.store.cache_forget_connection(connection_id).await
    }

    /// Delete one entry; whether it existed.
    pub async fn delete_entry(&self, entry_id: &str) -> Result<bool, StoreError> {
        self.store.cache_delete_entry(entry_id).await
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

fn hit(entry: CacheEntryRecord, similarity: f64, exact: bool) -> CacheHit {
    CacheHit {
        entry_id: entry.id,
        sql: entry.sql,
        dialect: entry.dialect,
        question_raw: entry.question_raw,
        similarity,
        exact,
    }
}

#[cfg(test)]
mod tests;
