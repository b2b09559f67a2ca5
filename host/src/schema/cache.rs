//! Introspected schemas kept per connection for a TTL.
//!
//! One entry per key (the connection id). Each key has its own async lock, so concurrent
//! questions on a cold connection introspect once and the others wait for that result, while
//! other connections are not held up. `refresh` re-introspects now; `invalidate` forgets.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::Schema;
use super::introspect::{IntrospectOptions, introspect};
use crate::db::{Database, DbError};

struct Entry {
    schema: Arc<Schema>,
    loaded: Instant,
}

type Slot = Arc<tokio::sync::Mutex<Option<Entry>>>;

/// Schemas by connection id, each valid for `ttl`.
pub struct SchemaCache {
    ttl: Duration,
    slots: Mutex<HashMap<String, Slot>>,
}

impl SchemaCache {
    /// An empty cache whose entries expire `ttl` after they were loaded.
    pub fn new(ttl: Duration) -> Self {
        Self { ttl, slots: Mutex::new(HashMap::new()) }
    }

    fn slot(&self, key: &str) -> Slot {
        // A poisoned map only means another thread panicked mid-insert; the map itself is fine.
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        slots.entry(key.to_string()).or_default().clone()
    }

    /// The cached schema for `key` if present and fresh.
    pub async fn peek(&self, key: &str) -> Option<Arc<Schema>> {
        let slot = self.slot(key);
        let guard = slot.lock().await;
        guard.as_ref().filter(|e| e.loaded.elapsed() < self.ttl).map(|e| e.schema.clone())
    }

    /// The schema for `key`: cached if fresh, else introspected from `db` now.
    pub async fn get(&self, key: &str, db: &Database, opts: &IntrospectOptions) -> Result<Arc<Schema>, DbError> {
        self.get_with(key, false, || introspect(db, opts)).await
    }

    /// Introspect `db` now and replace the cached schema for `key`.
    pub async fn refresh(&self, key: &str, db: &Database, opts: &IntrospectOptions) -> Result<Arc<Schema>, DbError> {
        self.get_with(key, true, || introspect(db, opts)).await
    }

    /// Forget `key` (after a connection or privacy change).
    pub fn invalidate(&self, key: &str) {
        self.slots.lock().unwrap_or_else(|e| e.into_inner()).remove(key);
    }

    /// The cached schema for `key` when fresh (and `force` is false), else the result of `load`,
    /// which is then cached. A failed load leaves any previous entry in place.
    pub async fn get_with<F, Fut>(&self, key: &str, force: bool, load: F) -> Result<Arc<Schema>, DbError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Schema, DbError>>,
    {
        let slot = self.slot(key);
        let mut guard = slot.lock().await;
        if !force && let Some(e) = guard.as_ref().filter(|e| e.loaded.elapsed() < self.ttl) {
            return Ok(e.schema.clone());
        }
        let schema = Arc::new(load().await?);
        *guard = Some(Entry { schema: schema.clone(), loaded: Instant::now() });
        Ok(schema)
    }
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
        cache.invalidate("c1");
        assert!(cache.peek("c1").await.is_none());
        let failed = cache.get_with("c2", true, || async { Err(DbError::Driver("down".into())) }).await;
        assert!(failed.is_err());
    }
}
