//! The answer cache's hot tier: exact hits served from Redis, shared by every replica, before the
//! metadata store is asked. The store stays the source of truth; Redis only holds copies.
//!
//! **Keys.** `quarry:answer:{connection}:{generation}:{fingerprint}:{sha256(normalized question)}`
//! → JSON `{id, sql, dialect, question, created_at, used_at}`, for at most [`HOT_TTL`], the
//! policy's sliding TTL, and, for a relative-time question, what is left of
//! [`RELATIVE_TIME_MAX_AGE`].
//!
//! **Lookup.** The connection's generation is read from the store (one primary-key read: no write,
//! no row lock, where the store's own exact step is an `UPDATE`), then the key is read from Redis.
//! A copy is served only if it is fresh by the policy in force now (`used_at` within the sliding
//! TTL, `created_at` within the relative-time age). Otherwise the lookup goes on in the store as
//! without Redis, and an exact hit there is copied to Redis. Stored answers are copied too.
//!
//! **Hits still count.** A hit served from Redis is counted in the store shortly after (batched
//! per entry, within [`FLUSH_AFTER`]), moving `last_hit_at` as a store hit would, so the stats,
//! the top questions and the sliding TTL stay right; [`AnswerCache::stats`] and
//! [`AnswerCache::entries`] count what is pending first. A hit the caller rejects before then is
//! taken back from the pending count.
//!
//! **Deletions make copies unservable, even when Redis is down.** Every deletion of a
//! connection's entries (clear, schema refresh, privacy or semantic-model change, 👎 eviction,
//! deleting one entry, an overwrite) adds one to the connection's generation in the store, after
//! deleting. The generation is read before the store is (lookup) or written (store): so a copy
//! made under generation g holds an entry that was in the store after g was current, and any later
//! deletion of it moves the generation past g. Copies under an old generation are never read
//! again and expire with their TTL; nothing has to reach Redis for the deletion to take effect.
//!
//! **What can be stale.** Only one case, and harmless: an entry dropped by the per-connection
//! capacity (least recently used) is not a deletion that bumps the generation (that would empty
//! the hot tier on every insert at capacity), so its copy may still be served, at most until its
//! TTL ends or the first such hit's count finds the entry gone and deletes the copy. Its SQL is
//! as valid as it was: same connection, schema fingerprint and generation. That hit is not
//! counted (the entry is gone).
//!
//! **Redis down.** Lookups and writes use the store as without Redis (the shared handle logs the
//! outage once, and its return); nothing needs repair when Redis is back, stale copies being
//! unservable by their generation.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{AnswerCache, CacheHit, Question, RELATIVE_TIME_MAX_AGE, Similarity, hit};
use crate::shared_redis::{KEY_PREFIX, Redis};
use crate::store::answer_cache::CacheEntryRecord;
use crate::store::{Store, StoreError};

/// The longest a copy stays in Redis: a hot entry goes back to the store once per this, at most.
pub const HOT_TTL: Duration = Duration::from_secs(3600);
/// How soon hits served from Redis are counted in the store.
pub const FLUSH_AFTER: Duration = Duration::from_millis(200);
/// After the store failed to take the counts, when to try again.
const FLUSH_RETRY: Duration = Duration::from_secs(5);

/// Exact answers in Redis for one [`AnswerCache`] (and its clones).
pub(super) struct HotTier {
    redis: Arc<Redis>,
    /// `quarry:` unless tests keep their runs apart.
    prefix: String,
    store: Store,
    /// Hits served from Redis, not yet counted in the store, by entry id.
    pending: Mutex<HashMap<String, Pending>>,
    /// Whether a flush of `pending` is on its way.
    flush_scheduled: AtomicBool,
    /// Held through a whole flush, so a flush that finds nothing pending returns only once the
    /// counts another one took are in the store (stats read after it include them).
    flushing: tokio::sync::Mutex<()>,
}

/// Hits of one entry waiting to be counted.
struct Pending {
    hits: i64,
    last_at: DateTime<Utc>,
    /// The copy they were served from: deleted if the entry turns out to be gone.
    key: String,
}

/// An entry as Redis holds it.
#[derive(Debug, Serialize, Deserialize)]
struct Copy {
    id: String,
    sql: String,
    dialect: String,
    question: String,
    created_at: DateTime<Utc>,
    /// When the store last confirmed it in use (stored or served): the sliding TTL runs from here.
    used_at: DateTime<Utc>,
}

/// One question's place in Redis under the connection's generation at the time it was read.
pub(super) struct Bound {
    tier: Arc<HotTier>,
    connection_id: String,
    fingerprint: String,
    /// SHA-256 of the normalised question.
    digest: String,
    normalized: String,
    relative_time: bool,
    generation: i64,
}

impl HotTier {
    fn pending(&self) -> std::sync::MutexGuard<'_, HashMap<String, Pending>> {
        // A poisoned lock only means a panic elsewhere; the counts are plain values and still valid.
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Count one hit of `id` served from `key`, and make sure a flush comes.
    fn count_hit(self: &Arc<Self>, id: &str, key: String, at: DateTime<Utc>) {
        {
            let mut pending = self.pending();
            let entry = pending.entry(id.to_string()).or_insert(Pending { hits: 0, last_at: at, key });
            entry.hits += 1;
            entry.last_at = entry.last_at.max(at);
        }
        self.schedule_flush(FLUSH_AFTER);
    }

    fn schedule_flush(self: &Arc<Self>, after: Duration) {
        if !self.flush_scheduled.swap(true, Ordering::SeqCst) {
            let tier = self.clone();
            tokio::spawn(async move {
                tokio::time::sleep(after).await;
                tier.flush().await;
            });
        }
    }

    /// Count the pending hits in the store. An entry that is gone loses its Redis copy; counts
    /// the store did not take wait for the next try.
    async fn flush(self: &Arc<Self>) {
        let _flushing = self.flushing.lock().await;
        // Cleared before taking: hits counted after the take schedule a flush of their own.
        self.flush_scheduled.store(false, Ordering::SeqCst);
        let taken = std::mem::take(&mut *self.pending());
        let mut failed = false;
        for (id, counted) in taken {
            match self.store.cache_count_hits(&id, counted.hits, counted.last_at).await {
                Ok(true) => {}
                Ok(false) => {
                    let _: Option<i64> = self.redis.query(redis::cmd("DEL").arg(&counted.key)).await;
                }
                Err(e) => {
                    if !failed {
                        tracing::warn!("could not count answer-cache hits served from Redis (will retry): {e}");
                    }
                    failed = true;
                    let hits = counted.hits;
                    let mut pending = self.pending();
                    let entry = pending.entry(id).or_insert(Pending { hits: 0, ..counted });
                    entry.hits += hits;
                }
            }
        }
        if failed {
            self.schedule_flush(FLUSH_RETRY);
        }
    }

    /// Take back one pending hit of `id`; whether there was one.
    fn take_back(&self, id: &str) -> bool {
        let mut pending = self.pending();
        let Some(entry) = pending.get_mut(id) else {
            return false;
        };
        entry.hits -= 1;
        if entry.hits <= 0 {
            pending.remove(id);
        }
        true
    }
}

impl Bound {
    fn key(&self) -> String {
        let Bound { tier, connection_id, generation, fingerprint, digest, .. } = self;
        format!("{}answer:{connection_id}:{generation}:{fingerprint}:{digest}", tier.prefix)
    }

    /// The copy in Redis if it is fresh by these cut-offs, counted as a hit.
    pub(super) async fn serve(
        &self,
        used_since: DateTime<Utc>,
        created_since: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Option<CacheHit> {
        let key = self.key();
        let raw: Option<Vec<u8>> = self.tier.redis.query(redis::cmd("GET").arg(&key)).await.flatten();
        let copy: Copy = serde_json::from_slice(&raw?).ok()?;
        if copy.used_at < used_since || copy.created_at < created_since {
            return None;
        }
        self.tier.count_hit(&copy.id, key, now);
        let entry = CacheEntryRecord {
            id: copy.id,
            connection_id: self.connection_id.clone(),
            question_normalized: self.normalized.clone(),
            question_raw: copy.question,
            schema_fingerprint: self.fingerprint.clone(),
            sql: copy.sql,
            dialect: copy.dialect,
            hit_count: 0,
            created_at: copy.created_at,
            last_hit_at: Some(now),
        };
        Some(hit(entry, Similarity::Words(1.0), true))
    }

    /// Copy `entry`, in use at `now`, to Redis for as long as it may be served (`ttl`: the
    /// policy's sliding TTL, when known). Redis being down is not an error: the store has it.
    pub(super) async fn fill(&self, entry: &CacheEntryRecord, now: DateTime<Utc>, ttl: Option<Duration>) {
        let mut left = ttl.map_or(HOT_TTL, |ttl| ttl.min(HOT_TTL));
        if self.relative_time {
            let age = (now - entry.created_at).to_std().unwrap_or(Duration::ZERO);
            left = left.min(RELATIVE_TIME_MAX_AGE.saturating_sub(age));
        }
        let millis = u64::try_from(left.as_millis()).unwrap_or(u64::MAX);
        if millis == 0 {
            return;
        }
        let copy = Copy {
            id: entry.id.clone(),
            sql: entry.sql.clone(),
            dialect: entry.dialect.clone(),
            question: entry.question_raw.clone(),
            created_at: entry.created_at,
            used_at: now,
        };
        let Ok(value) = serde_json::to_vec(&copy) else {
            return;
        };
        let _: Option<()> =
            self.tier.redis.query(redis::cmd("SET").arg(self.key()).arg(value).arg("PX").arg(millis)).await;
    }
}

impl AnswerCache {
    /// The same cache with exact hits kept in `redis` too, shared by every server using it (see
    /// the [`hot`](self) module for what that changes, and what it does not).
    pub fn with_redis(self, redis: Arc<Redis>) -> Self {
        self.with_redis_prefix(redis, KEY_PREFIX)
    }

    /// [`AnswerCache::with_redis`] with keys starting with `prefix` instead of `quarry:` (tests
    /// keep their runs apart).
    pub fn with_redis_prefix(mut self, redis: Arc<Redis>, prefix: &str) -> Self {
        self.hot = Some(Arc::new(HotTier {
            redis,
            prefix: prefix.to_string(),
            store: self.store.clone(),
            pending: Mutex::new(HashMap::new()),
            flush_scheduled: AtomicBool::new(false),
            flushing: tokio::sync::Mutex::new(()),
        }));
        self
    }

    /// Where `q` lives in Redis for this connection and schema, under the connection's current
    /// generation (read now); `None` without Redis.
    pub(super) async fn hot_bind(
        &self,
        connection_id: &str,
        q: &Question,
        fingerprint: &str,
    ) -> Result<Option<Bound>, StoreError> {
        let Some(tier) = &self.hot else {
            return Ok(None);
        };
        let generation = self.store.cache_generation(connection_id).await?;
        Ok(Some(Bound {
            tier: tier.clone(),
            connection_id: connection_id.to_string(),
            fingerprint: fingerprint.to_string(),
            digest: hex::encode(Sha256::digest(q.normalized.as_bytes())),
            normalized: q.normalized.clone(),
            relative_time: q.relative_time,
            generation,
        }))
    }

    /// After an answer was written to the store (`bound`: bound before writing): an overwrite
    /// starts a new generation (the replaced SQL may have copies; done with or without Redis),
    /// then the entry is copied to Redis under the generation current now.
    pub(super) async fn after_store(
        &self,
        connection_id: &str,
        bound: Option<Bound>,
        overwrite: bool,
    ) -> Result<(), StoreError> {
        let generation = if overwrite { Some(self.store.cache_bump_generation(connection_id).await?) } else { None };
        let Some(mut bound) = bound else {
            return Ok(());
        };
        if let Some(generation) = generation {
            bound.generation = generation;
        }
        let stored = self.store.cache_entry_by_key(&bound.connection_id, &bound.normalized, &bound.fingerprint).await?;
        if let Some(entry) = stored {
            bound.fill(&entry, self.now(), None).await;
        }
        Ok(())
    }

    /// Some of the connection's entries were deleted (or replaced): copies made before are stale.
    /// Done with or without Redis, so that a server without it never leaves servable copies.
    pub(super) async fn retire(&self, connection_id: &str) -> Result<(), StoreError> {
        self.store.cache_bump_generation(connection_id).await.map(drop)
    }

    /// Take back a hit of `entry_id` served from Redis and not yet counted; whether there was one.
    pub(super) fn take_back_hot_hit(&self, entry_id: &str) -> bool {
        self.hot.as_ref().is_some_and(|tier| tier.take_back(entry_id))
    }

    /// Count the hits served from Redis that are still pending (stats read after this include them).
    pub async fn flush_hot_hits(&self) {
        if let Some(tier) = &self.hot {
            tier.flush().await;
        }
    }
}
