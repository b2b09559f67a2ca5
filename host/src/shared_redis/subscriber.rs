//! One Redis channel followed over a dedicated pub/sub connection that comes back by itself.
//!
//! [`Redis::subscribe`] starts a task that connects, subscribes and hands every message to the
//! returned receiver. When the connection fails (or a ping goes unanswered, for a connection that
//! died silently) it connects again every retry interval of the handle, quietly: the shared
//! handle's commands already log Redis going away and coming back, once each. After every
//! (re)subscription the receiver gets [`Event::Subscribed`] first, so the owner knows that
//! messages may have been missed before it, and [`Event::Unsubscribed`] when the connection is
//! lost. Dropping the receiver ends the task.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use redis::aio::{PubSubSink, PubSubStream};
use tokio::sync::mpsc;

use super::{COMMAND_TIMEOUT, CONNECT_TIMEOUT, Redis};

/// How often an idle subscription is pinged, to notice a connection that died silently.
pub const PING_EVERY: Duration = Duration::from_secs(5);
/// Messages waiting for the owner at most; the task waits when it is behind.
const QUEUE: usize = 256;

/// What a subscription hands its owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Subscribed (again): messages published while not subscribed were missed.
    Subscribed,
    /// The subscription was lost; messages are missed until the next [`Event::Subscribed`].
    Unsubscribed,
    /// A message's payload.
    Message(Vec<u8>),
}

impl Redis {
    /// Follow `channel`: messages arrive on the receiver, preceded by [`Event::Subscribed`] after
    /// every (re)connection. Needs a Tokio runtime; the task ends when the receiver is dropped.
    pub fn subscribe(self: &Arc<Self>, channel: impl Into<String>) -> mpsc::Receiver<Event> {
        let (events, receiver) = mpsc::channel(QUEUE);
        tokio::spawn(follow_forever(self.clone(), channel.into(), events));
        receiver
    }
}

async fn follow_forever(redis: Arc<Redis>, channel: String, events: mpsc::Sender<Event>) {
    loop {
        let opened = tokio::select! {
            () = events.closed() => return,
            opened = redis.open_pubsub(vec![channel.clone()]) => opened,
        };
        match opened {
            Ok((sink, stream)) => {
                if events.send(Event::Subscribed).await.is_err() {
                    return;
                }
                let why = tokio::select! {
                    () = events.closed() => return,
                    why = relay(sink, stream, &events) => why,
                };
                tracing::debug!("Redis subscription to {channel} ended ({}); reconnecting", redis.redact(&why));
                if events.send(Event::Unsubscribed).await.is_err() {
                    return;
                }
            }
            Err(why) => tracing::debug!("cannot subscribe to {channel} in Redis ({}); retrying", redis.redact(&why)),
        }
        tokio::select! {
            () = events.closed() => return,
            () = tokio::time::sleep(redis.retry_every) => {}
        }
    }
}

impl Redis {
    /// A new pub/sub connection (not the shared command connection) subscribed to `channels`,
    /// within [`CONNECT_TIMEOUT`] and [`COMMAND_TIMEOUT`]; the failure as text (not redacted).
    pub async fn open_pubsub(&self, channels: Vec<String>) -> Result<(PubSubSink, PubSubStream), String> {
        let pubsub = tokio::time::timeout(CONNECT_TIMEOUT, self.client.get_async_pubsub())
            .await
            .map_err(|_| format!("no connection within {} ms", CONNECT_TIMEOUT.as_millis()))?
            .map_err(|e| e.to_string())?;
        let (mut sink, stream) = pubsub.split();
        within(sink.subscribe(channels)).await?;
        Ok((sink, stream))
    }

    /// `text` without the Redis password (errors may quote the connection's settings).
    pub fn redact(&self, text: &str) -> String {
        match self.config.password() {
            Some(password) => text.replace(password, "***"),
            None => text.to_string(),
        }
    }
}

/// Hand messages over until the connection fails (or the owner is gone); why it ended.
async fn relay(mut sink: PubSubSink, mut stream: PubSubStream, events: &mpsc::Sender<Event>) -> String {
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ping.tick().await;
    loop {
        tokio::select! {
            message = stream.next() => match message {
                Some(message) => {
                    if events.send(Event::Message(message.get_payload_bytes().to_vec())).await.is_err() {
                        return "the owner is gone".into();
                    }
                }
                None => return "connection closed".into(),
            },
            _ = ping.tick() => {
                if let Err(why) = within(sink.ping::<redis::Value>()).await {
                    return why;
                }
            }
        }
    }
}

/// `command` within [`COMMAND_TIMEOUT`], its failure as text.
pub async fn within<T>(command: impl Future<Output = redis::RedisResult<T>>) -> Result<T, String> {
    match tokio::time::timeout(COMMAND_TIMEOUT, command).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {} ms", COMMAND_TIMEOUT.as_millis())),
    }
}

