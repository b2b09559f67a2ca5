//! The in-process half of the bus: one broadcast channel per topic that someone here listens
//! to, made by the first subscriber and dropped with the last.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::broadcast;

/// Frames kept per topic for a watcher that reads slowly; beyond this it skips ahead (and is told).
pub const TOPIC_BUFFER: usize = 256;

/// The topics with local subscribers.
#[derive(Default)]
pub struct Topics {
    senders: Mutex<HashMap<String, broadcast::Sender<Arc<str>>>>,
}

/// What [`Topics::join`] and [`Topics::leave`] changed: whether the topic was just made or dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// The first subscriber made the topic, or the last one dropped it.
    Edge,
    /// Others were already, or are still, listening.
    Unchanged,
}

impl Topics {
    /// A receiver on `topic`, making the topic if it is new. `on_change` runs under the lock, so
    /// the edges it reports reach their observer in the order they happened.
    pub fn join(&self, topic: &str, on_change: impl FnOnce(Change)) -> broadcast::Receiver<Arc<str>> {
        let mut senders = self.lock();
        if let Some(sender) = senders.get(topic) {
            on_change(Change::Unchanged);
            return sender.subscribe();
        }
        let (sender, receiver) = broadcast::channel(TOPIC_BUFFER);
        senders.insert(topic.to_string(), sender);
        on_change(Change::Edge);
        receiver
    }

    /// Forget `topic` when its last receiver has been dropped; `on_change` as for [`Topics::join`].
    pub fn leave(&self, topic: &str, on_change: impl FnOnce(Change)) {
        let mut senders = self.lock();
        let unused = senders.get(topic).is_some_and(|s| s.receiver_count() == 0);
        if unused {
            senders.remove(topic);
            on_change(Change::Edge);
        } else {
            on_change(Change::Unchanged);
        }
    }

    /// Hand `frame` to this process's subscribers of `topic` (none: nothing happens).
    pub fn deliver(&self, topic: &str, frame: Arc<str>) {
        if let Some(sender) = self.lock().get(topic) {
            // An error only means every receiver has just gone; `leave` is about to drop the topic.
            let _ = sender.send(frame);
        }
    }

    /// How many topics have subscribers here.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no topic has a subscriber here.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, broadcast::Sender<Arc<str>>>> {
        // A poisoned lock only means a panic elsewhere; the map is still consistent.
        self.senders.lock().unwrap_or_else(|e| e.into_inner())
    }
}
