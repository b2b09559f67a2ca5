//! Introspected schemas kept per key for a TTL: in this process and, when Redis is configured
//! ([`SchemaCache::share`]), in Redis for every replica.
//!
//! Each key has its own async lock, so concurrent questions on a cold key introspect once and the
//! others wait for that result, while other keys are not held up. `refresh` re-introspects now;
//! `invalidate` forgets.
//!
//! **Shared tier.** A local miss reads `quarry:schema:{sha256(key)}` (the serde JSON of the
//! [`Schema`], fingerprint included, with the time it was introspected); only when Redis has
//! nothing does this server introspect, then stores the result with `SET … NX PX ttl` (a plain
//! miss never overwrites a newer refresh). `refresh` and `invalidate` overwrite or delete the key
//! and publish the key's hash on `quarry:schema:invalidate`; every server follows that channel
//! (one subscriber task, reconnecting on its own) and drops its local entry, so its next
//! question reads the new schema from Redis. A schema is never used more than `ttl` after it was
//! introspected, on any server: local entries filled from Redis expire when the Redis key does.
//!
//! **While Redis is down** each server works from its own entries, as without Redis. What can go
//! stale, and for how long:
//! - a refresh or invalidation on server A is not seen by B: B keeps its entry until the TTL
//!   ends, or until Redis is back, whichever comes first. When A's subscription comes back, A
//!   writes (or deletes) in Redis what it refreshed (or invalidated) meanwhile and publishes it;
//!   when B's comes back, B drops its local entries, because it may have missed messages;
//! - two servers refreshing the same key during one outage: the last to reconnect wins in
//!   Redis; both schemas were read after whatever change prompted the refreshes.
//!
//! Redis holds what the prompt sees of a schema, sample values included (privacy exclusions are
//! applied before caching), keyed by a hash that reveals neither the database URL nor the key.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use chrono::Utc;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use super::Schema;
use super::introspect::{IntrospectOptions, introspect};
use crate::db::{Database, DbError};
use crate::shared_redis::{Event, Redis};

struct Entry {
    schema: Arc<Schema>,
    /// When it was introspected (Unix milliseconds, comparable across servers).
    loaded_at_ms: i64,
    /// When this server stops using it.
    expires: Instant,
}

type Slot = Arc<tokio::sync::Mutex<Option<Entry>>>;

/// This server's entries, by the hash of their key.
#[derive(Default)]
struct Local {
    slots: Mutex<HashMap<String, Slot>>,
    /// Keys refreshed or invalidated here while Redis did not take it: sent when it is back.
    unsent: Mutex<HashSet<String>>,
}

impl Local {
    fn slots(&self) -> std::sync::MutexGuard<'_, HashMap<String, Slot>> {
        // A poisoned map only means another thread panicked mid-insert; the map itself is fine.
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn unsent(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.unsent.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn slot(&self, id: &str) -> Slot {
        self.slots().entry(id.to_string()).or_default().clone()
    }

    fn existing(&self, id: &str) -> Option<Slot> {
        self.slots().get(id).cloned()
    }

    fn forget(&self, id: &str) {
        self.slots().remove(id);
    }

    /// After a gap in the subscription: drop every entry but those refreshed here meanwhile (not
    /// sent yet), since other servers' announcements may have been missed.
    fn keep_only_unsent(&self) {
        let unsent = self.unsent().clone();
        self.slots().retain(|id, _| unsent.contains(id));
    }
}

/// Schemas by key, each valid for `ttl` after it was introspected.
pub struct SchemaCache {
    ttl: Duration,
    local: Arc<Local>,
    shared: OnceLock<Shared>,
}

/// The Redis tier and the task following its invalidations (stopped with the cache).
struct Shared {
    tier: Arc<Tier>,
    listener: tokio::task::JoinHandle<()>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

/// Where this cache keeps its schemas in Redis.
struct Tier {
    redis: Arc<Redis>,
    /// `quarry:` unless tests keep their runs apart.
    prefix: String,
    /// This cache's id in invalidation messages, so it skips its own.
    origin: String,
    ttl: Duration,
    /// Whether the invalidation channel is followed right now.
    following: AtomicBool,
}

/// A schema as Redis holds it.
#[derive(Serialize)]
struct Stored<'a> {
    loaded_at_ms: i64,
    schema: &'a Schema,
}

#[derive(Deserialize)]
struct Loaded {
    loaded_at_ms: i64,
    schema: Schema,
}

impl SchemaCache {
    /// An empty cache whose entries expire `ttl` after they were introspected.
    pub fn new(ttl: Duration) -> Self {
        Self { ttl, local: Arc::default(), shared: OnceLock::new() }
    }

    /// Share this cache through `redis`: keys and the invalidation channel start with `prefix`
    /// (normally [`crate::shared_redis::KEY_PREFIX`]). Starts the task that follows other
    /// servers' invalidations, so it needs a Tokio runtime. Only the first call counts; whether
    /// this one did.
    pub fn share(&self, redis: Arc<Redis>, prefix: &str) -> bool {
        if self.shared.get().is_some() {
            return false;
        }
        let tier = Arc::new(Tier {
            redis,
            prefix: prefix.to_string(),
            origin: uuid::Uuid::new_v4().simple().to_string(),
            ttl: self.ttl,
            following: AtomicBool::new(false),
        });
        let events = tier.redis.subscribe(tier.channel());
        let listener = tokio::spawn(follow_invalidations(tier.clone(), Arc::downgrade(&self.local), events));
        let shared = Shared { tier, listener };
        // Lost race with another `share`: ours is dropped, which stops its listener.
        self.shared.set(shared).is_ok()
    }

    /// Whether this cache hears other servers' refreshes right now: shared, and subscribed in Redis.
    pub fn is_following(&self) -> bool {
        self.tier().is_some_and(|tier| tier.following.load(Ordering::SeqCst))
    }

    fn tier(&self) -> Option<&Tier> {
        self.shared.get().map(|s| s.tier.as_ref())
    }

    /// The schema for `key` if this server holds a fresh one (Redis is not asked).
    pub async fn peek(&self, key: &str) -> Option<Arc<Schema>> {
        let slot = self.local.existing(&id_of(key))?;
        let guard = slot.lock().await;
        guard.as_ref().filter(|e| e.expires > Instant::now()).map(|e| e.schema.clone())
    }

    /// The schema for `key`: cached if fresh, else introspected from `db` now.
    pub async fn get(&self, key: &str, db: &Database, opts: &IntrospectOptions) -> Result<Arc<Schema>, DbError> {
        self.get_with(key, false, || introspect(db, opts)).await
    }

    /// Introspect `db` now and replace the cached schema for `key` (on every server sharing it).
    pub async fn refresh(&self, key: &str, db: &Database, opts: &IntrospectOptions) -> Result<Arc<Schema>, DbError> {
        self.get_with(key, true, || introspect(db, opts)).await
    }

    /// Forget `key` here and, when shared, on every server.
    pub async fn invalidate(&self, key: &str) {
        let id = id_of(key);
        self.local.forget(&id);
        if let Some(tier) = self.tier()
            && !tier.delete(&id).await
        {
            self.local.unsent().insert(id);
        }
    }

    /// The cached schema for `key` when fresh (and `force` is false), here or in Redis; else the
    /// result of `load`, which is then cached (and, when `force`, announced to the other
    /// servers). A failed load leaves any previous entry in place.
    pub async fn get_with<F, Fut>(&self, key: &str, force: bool, load: F) -> Result<Arc<Schema>, DbError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Schema, DbError>>,
    {
        let id = id_of(key);
        let slot = self.local.slot(&id);
        let mut guard = slot.lock().await;
        if !force {
            if let Some(e) = guard.as_ref().filter(|e| e.expires > Instant::now()) {
                return Ok(e.schema.clone());
            }
            if let Some(tier) = self.tier()
                && let Some(entry) = tier.get(&id).await
            {
                let schema = entry.schema.clone();
                *guard = Some(entry);
                return Ok(schema);
            }
        }
        let schema = Arc::new(load().await?);
        let entry = Entry {
            schema: schema.clone(),
            loaded_at_ms: Utc::now().timestamp_millis(),
            expires: Instant::now() + self.ttl,
        };
        if let Some(tier) = self.tier() {
            let sent = tier.put(&id, &entry, force).await;
            if force && !sent {
                self.local.unsent().insert(id);
            }
        }
        *guard = Some(entry);
        Ok(schema)
    }
}

impl Tier {
    fn key(&self, id: &str) -> String {
        format!("{}schema:{id}", self.prefix)
    }

    fn channel(&self) -> String {
        format!("{}schema:invalidate", self.prefix)
    }

    /// The schema Redis holds for `id`, if any and still within the TTL. One that does not read
    /// (written by another version of Quarry) counts as none.
    async fn get(&self, id: &str) -> Option<Entry> {
        let raw: Option<Vec<u8>> = self.redis.query(redis::cmd("GET").arg(self.key(id))).await.flatten();
        let loaded: Loaded = serde_json::from_slice(&raw?).ok()?;
        let left = self.left(loaded.loaded_at_ms)?;
        Some(Entry {
            schema: Arc::new(loaded.schema),
            loaded_at_ms: loaded.loaded_at_ms,
            expires: Instant::now() + left,
        })
    }

    /// Store `entry` for the rest of its TTL; `replace` overwrites and announces it, otherwise
    /// an existing (newer) value is kept. Whether Redis took it.
    async fn put(&self, id: &str, entry: &Entry, replace: bool) -> bool {
        let Some(left) = self.left(entry.loaded_at_ms) else {
            return true;
        };
        let Ok(value) = serde_json::to_vec(&Stored { loaded_at_ms: entry.loaded_at_ms, schema: &entry.schema }) else {
            return false;
        };
        let mut set = redis::cmd("SET");
        set.arg(self.key(id)).arg(value).arg("PX").arg(millis(left));
        if !replace {
            set.arg("NX");
            // `None` both when Redis is down and when NX kept the existing value: nothing to do.
            let _: Option<redis::Value> = self.redis.query(&set).await;
            return true;
        }
        let mut pipe = redis::pipe();
        pipe.add_command(set).ignore().cmd("PUBLISH").arg(self.channel()).arg(self.message(id)).ignore();
        self.redis.query_pipe::<()>(&pipe).await.is_some()
    }

    /// Delete `id` in Redis and announce it; whether Redis took it.
    async fn delete(&self, id: &str) -> bool {
        let mut pipe = redis::pipe();
        pipe.cmd("DEL").arg(self.key(id)).ignore().cmd("PUBLISH").arg(self.channel()).arg(self.message(id)).ignore();
        self.redis.query_pipe::<()>(&pipe).await.is_some()
    }

    /// What is left of the TTL of a schema introspected at `loaded_at_ms`; `None` when nothing.
    fn left(&self, loaded_at_ms: i64) -> Option<Duration> {
        // A clock behind another server's gives a negative age: count it as new, never past the TTL.
        let age = Duration::from_millis(u64::try_from(Utc::now().timestamp_millis() - loaded_at_ms).unwrap_or(0));
        self.ttl.checked_sub(age).filter(|left| !left.is_zero())
    }

    /// `{origin} {id}`: which key changed, and who changed it.
    fn message(&self, id: &str) -> String {
        format!("{} {id}", self.origin)
    }
}

/// Drop local entries other servers announce as changed; after every (re)subscription, send
/// what Redis missed from here and drop what this server may have missed. What Redis did not take
/// is tried again every retry interval of the handle. Ends with the cache.
async fn follow_invalidations(tier: Arc<Tier>, local: Weak<Local>, mut events: mpsc::Receiver<Event>) {
    loop {
        let event = match tokio::time::timeout(tier.redis.retry_every(), events.recv()).await {
            Ok(Some(event)) => Some(event),
            Ok(None) => return,
            Err(_) => None,
        };
        let Some(local) = local.upgrade() else {
            return;
        };
        match event {
            Some(Event::Message(payload)) => {
                let text = String::from_utf8_lossy(&payload);
                if let Some((origin, id)) = text.split_once(' ')
                    && origin != tier.origin
                {
                    local.forget(id);
                }
            }
            Some(Event::Subscribed) => {
                local.keep_only_unsent();
                send_unsent(&tier, &local).await;
                tier.following.store(true, Ordering::SeqCst);
            }
            Some(Event::Unsubscribed) => tier.following.store(false, Ordering::SeqCst),
            None if tier.following.load(Ordering::SeqCst) => send_unsent(&tier, &local).await,
            None => {}
        }
    }
}

/// Write to Redis (or delete there) what this server refreshed (or invalidated) while Redis did
/// not take it, and announce it; what still fails stays for the next try.
async fn send_unsent(tier: &Tier, local: &Local) {
    let unsent: Vec<String> = local.unsent().drain().collect();
    for id in unsent {
        let slot = local.existing(&id);
        let sent = match &slot {
            Some(slot) => {
                let guard = slot.lock().await;
                match guard.as_ref() {
                    Some(entry) => tier.put(&id, entry, true).await,
                    None => tier.delete(&id).await,
                }
            }
            None => tier.delete(&id).await,
        };
        if !sent {
            local.unsent().insert(id);
        }
    }
}

/// The hash a key is known by (in Redis, messages and the local map).
fn id_of(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Engine;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn schema(fp: &str) -> Schema {
        Schema { engine: Engine::Sqlite, default_schema: None, tables: vec![], fingerprint: fp.into() }
    }

    #[tokio::test]
    async fn ttl_refresh_invalidate() {
        let cache = SchemaCache::new(Duration::from_millis(200));
        let loads = AtomicUsize::new(0);
        let load = || async {
            let n = loads.fetch_add(1, Ordering::SeqCst);
            Ok(schema(&n.to_string()))
        };
        assert_eq!(cache.get_with("c1", false, load).await.unwrap().fingerprint, "0");
        assert_eq!(cache.get_with("c1", false, load).await.unwrap().fingerprint, "0");
        assert_eq!(cache.get_with("c1", true, load).await.unwrap().fingerprint, "1");
        assert_eq!(cache.get_with("c2", false, load).await.unwrap().fingerprint, "2");
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert!(cache.peek("c1").await.is_none());
        assert_eq!(cache.get_with("c1", false, load).await.unwrap().fingerprint, "3");
        cache.invalidate("c1").await;
        assert!(cache.peek("c1").await.is_none());
        let failed = cache.get_with("c2", true, || async { Err(DbError::Driver("down".into())) }).await;
        assert!(failed.is_err());
    }

    #[test]
    fn keys_are_hashed() {
        let id = id_of("postgres://user:pw@host/db\u{1f}\u{1f}3");
        assert_eq!(id.len(), 64);
        assert!(!id.contains("pw"));
        assert_ne!(id, id_of("postgres://user:pw@host/db\u{1f}\u{1f}4"));
    }
}
