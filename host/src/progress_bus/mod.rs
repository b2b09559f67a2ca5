//! Progress fan-out: a turn's SSE frames, published under a topic (the chat session) and
//! followed by anyone watching that topic on any replica.
//!
//! Publishing hands the frame to this server's watchers at once and, when Redis is configured,
//! queues it for `PUBLISH quarry:progress:{topic}` so the other servers hand it to theirs. It never
//! waits and never fails: a Redis that is down (or a full queue) only keeps the frame on this
//! server. Watching subscribes in Redis over one pub/sub connection per server, which comes back
//! by itself when Redis does.
//!
//! - [`local`]: the in-process topics (a broadcast channel each, dropped with their last watcher);
//! - [`relay`]: the Redis publisher and subscriber.
//!
//! Frames are JSON objects with a `type`; a watcher too slow to keep up skips ahead and is told
//! with a `lagged` frame.

pub mod local;
pub mod relay;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast;

use self::local::{Change, Topics};
use self::relay::Relay;
use crate::shared_redis::{COMMAND_TIMEOUT, CONNECT_TIMEOUT, Redis};

/// Longest wait for Redis to confirm a new watcher's subscription before it watches this server
/// only (a connection and one command).
const FOLLOW_TIMEOUT: Duration = CONNECT_TIMEOUT.saturating_add(COMMAND_TIMEOUT);

/// Where progress frames go; cheap to clone.
#[derive(Clone)]
pub struct ProgressBus {
    inner: Arc<Inner>,
}

struct Inner {
    topics: Arc<Topics>,
    /// Present when Redis is configured.
    relay: Option<Relay>,
}

impl ProgressBus {
    /// A bus within this process only.
    pub fn in_process() -> Self {
        Self { inner: Arc::new(Inner { topics: Arc::default(), relay: None }) }
    }

    /// A bus shared with every server using `redis`. Starts its tasks: needs a Tokio runtime.
    pub fn with_redis(redis: Arc<Redis>) -> Self {
        let topics: Arc<Topics> = Arc::default();
        let relay = Relay::start(redis, topics.clone());
        Self { inner: Arc::new(Inner { topics, relay: Some(relay) }) }
    }

    /// Shared through `redis` when given, in this process otherwise.
    pub fn new(redis: Option<Arc<Redis>>) -> Self {
        redis.map_or_else(Self::in_process, Self::with_redis)
    }

    /// Whether frames travel between servers (Redis is configured; it may be down right now).
    pub fn is_shared(&self) -> bool {
        self.inner.relay.is_some()
    }

    /// Send `frame` (a JSON object) to everyone watching `topic`, here and on the other servers.
    /// Returns at once, whatever Redis does.
    pub fn publish(&self, topic: &str, frame: &str) {
        self.inner.topics.deliver(topic, Arc::from(frame));
        if let Some(relay) = &self.inner.relay {
            relay.publish(topic, frame);
        }
    }

    /// Watch `topic` from now on. Waits (briefly) until Redis relays the topic to this server, so
    /// that frames published anywhere after this returns arrive; see
    /// [`Subscription::across_replicas`].
    pub async fn subscribe(&self, topic: &str) -> Subscription {
        let mut follow = None;
        let receiver = self.inner.topics.join(topic, |_| {
            // Every watcher asks (not only the first): the answer tells each one whether Redis
            // relays the topic by now.
            follow = self.inner.relay.as_ref().map(|relay| relay.follow(topic));
        });
        let across_replicas = match follow {
            Some(answer) => matches!(tokio::time::timeout(FOLLOW_TIMEOUT, answer).await, Ok(Ok(true))),
            None => false,
        };
        Subscription { topic: topic.to_string(), receiver: Some(receiver), inner: self.inner.clone(), across_replicas }
    }

    /// How many topics have watchers on this server.
    pub fn watched_topics(&self) -> usize {
        self.inner.topics.len()
    }
}

/// One watcher of a topic; stops watching when dropped.
pub struct Subscription {
    topic: String,
    /// Always `Some` until dropped (taken first in `drop`, so the topic sees it gone).
    receiver: Option<broadcast::Receiver<Arc<str>>>,
    inner: Arc<Inner>,
    across_replicas: bool,
}

impl Subscription {
    /// Whether frames published on other servers reach this watcher (Redis is configured and
    /// confirmed the subscription); false means this server's frames only.
    pub fn across_replicas(&self) -> bool {
        self.across_replicas
    }

    /// The next frame; a `{"type":"lagged","missed":N}` frame when this watcher fell behind and
    /// N frames were skipped.
    pub async fn next(&mut self) -> Option<Arc<str>> {
        let receiver = self.receiver.as_mut()?;
        match receiver.recv().await {
            Ok(frame) => Some(frame),
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                Some(Arc::from(serde_json::json!({ "type": "lagged", "missed": missed }).to_string()))
            }
            Err(broadcast::error::RecvError::Closed) => None,
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        drop(self.receiver.take());
        let relay = self.inner.relay.as_ref();
        self.inner.topics.leave(&self.topic, |change| {
            if change == Change::Edge
                && let Some(relay) = relay
            {
                relay.unfollow(&self.topic);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn watchers_of_a_topic_get_its_frames_in_order_and_no_others() {
        let bus = ProgressBus::in_process();
        let mut first = bus.subscribe("s1").await;
        let mut second = bus.subscribe("s1").await;
        let mut other = bus.subscribe("s2").await;
        assert!(!first.across_replicas());
        bus.publish("s1", r#"{"type":"status"}"#);
        bus.publish("s1", r#"{"type":"done"}"#);
        bus.publish("s2", r#"{"type":"token"}"#);
        for watcher in [&mut first, &mut second] {
            assert_eq!(watcher.next().await.as_deref(), Some(r#"{"type":"status"}"#));
            assert_eq!(watcher.next().await.as_deref(), Some(r#"{"type":"done"}"#));
        }
        assert_eq!(other.next().await.as_deref(), Some(r#"{"type":"token"}"#));
    }

    #[tokio::test]
    async fn a_topic_is_dropped_with_its_last_watcher() {
        let bus = ProgressBus::in_process();
        // Nobody watches: publishing is a no-op, not an error.
        bus.publish("s1", "{}");
        let first = bus.subscribe("s1").await;
        let second = bus.subscribe("s1").await;
        assert_eq!(bus.watched_topics(), 1);
        drop(first);
        assert_eq!(bus.watched_topics(), 1);
        drop(second);
        assert_eq!(bus.watched_topics(), 0);
    }

    #[tokio::test]
    async fn a_slow_watcher_is_told_what_it_missed() {
        let bus = ProgressBus::in_process();
        let mut slow = bus.subscribe("s1").await;
        for i in 0..local::TOPIC_BUFFER + 3 {
            bus.publish("s1", &format!(r#"{{"n":{i}}}"#));
        }
        let lagged: serde_json::Value = serde_json::from_str(&slow.next().await.expect("a frame")).expect("JSON");
        assert_eq!(lagged["type"], "lagged");
        assert_eq!(lagged["missed"], 3);
        assert_eq!(slow.next().await.as_deref(), Some(r#"{"n":3}"#));
    }
}
