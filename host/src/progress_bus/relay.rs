//! The Redis half of the bus: frames go out with `PUBLISH quarry:progress:{topic}` and come in on
//! one dedicated pub/sub connection per server, subscribed to exactly the topics someone here
//! watches.
//!
//! Two tasks do the work, so the chat never waits for Redis:
//! - the publisher drains a bounded queue and sends what it holds in one pipeline through the
//!   shared [`Redis`] handle (short timeouts, down/back logged once there). A full queue or a
//!   Redis that is down drops the frame for other servers only: this server's watchers got it
//!   already.
//! - the pump owns the pub/sub connection: it follows and unfollows topics as watchers come and
//!   go, hands incoming frames to the local topics, pings to notice a dead connection, and
//!   reconnects (subscribing everything again) until Redis is back.
//!
//! Every payload starts with the sending server's origin id, so a server skips its own frames
//! (its watchers got them directly) instead of seeing them twice.

use std::collections::HashSet;
use std::sync::Arc;

use futures::StreamExt;
use redis::aio::{PubSubSink, PubSubStream};
use tokio::sync::{mpsc, oneshot};

use super::local::Topics;
use crate::shared_redis::subscriber::{PING_EVERY, within};
use crate::shared_redis::Redis;

/// The Redis channel of a topic is this prefix followed by the topic.
pub const CHANNEL_PREFIX: &str = "quarry:progress:";
/// Frames waiting to be published; beyond this new ones skip Redis.
const PUBLISH_QUEUE: usize = 1024;
/// Frames sent in one pipeline at most.
const PUBLISH_BATCH: usize = 64;

/// The Redis channel of `topic`.
pub fn channel(topic: &str) -> String {
    format!("{CHANNEL_PREFIX}{topic}")
}

/// What the bus asks of the pump.
enum Command {
    /// Someone here watches `topic`; `ack` says whether Redis relays it to us.
    Follow { topic: String, ack: oneshot::Sender<bool> },
    /// Nobody here watches `topic` any more.
    Unfollow { topic: String },
}

/// The running publisher and pump; they stop when this is dropped.
pub struct Relay {
    origin: String,
    outbox: mpsc::Sender<(String, String)>,
    commands: mpsc::UnboundedSender<Command>,
}

impl Relay {
    /// Start the publisher and the pump on `redis`, delivering incoming frames to `topics`.
    /// Needs a Tokio runtime.
    pub fn start(redis: Arc<Redis>, topics: Arc<Topics>) -> Relay {
        let origin = uuid::Uuid::new_v4().simple().to_string();
        let (outbox, queued) = mpsc::channel(PUBLISH_QUEUE);
        let (commands, received) = mpsc::unbounded_channel();
        tokio::spawn(publish_queued(redis.clone(), queued));
        let pump = Pump { redis, origin: origin.clone(), topics, commands: received, wanted: HashSet::new() };
        tokio::spawn(pump.run());
        Relay { origin, outbox, commands }
    }

    /// Queue `frame` for the other servers; never waits.
    pub fn publish(&self, topic: &str, frame: &str) {
        let payload = format!("{} {frame}", self.origin);
        if let Err(mpsc::error::TrySendError::Full(_)) = self.outbox.try_send((channel(topic), payload)) {
            tracing::debug!(topic, "progress fan-out: publish queue full; frame kept on this server only");
        }
    }

    /// Follow `topic`; the answer says whether Redis relays it (false: this server only).
    pub fn follow(&self, topic: &str) -> oneshot::Receiver<bool> {
        let (ack, answer) = oneshot::channel();
        let _ = self.commands.send(Command::Follow { topic: topic.to_string(), ack });
        answer
    }

    /// Stop following `topic`.
    pub fn unfollow(&self, topic: &str) {
        let _ = self.commands.send(Command::Unfollow { topic: topic.to_string() });
    }
}

/// Publish queued frames, in order, a pipeline at a time, until the relay is dropped.
async fn publish_queued(redis: Arc<Redis>, mut queued: mpsc::Receiver<(String, String)>) {
    let mut batch = Vec::with_capacity(PUBLISH_BATCH);
    while queued.recv_many(&mut batch, PUBLISH_BATCH).await > 0 {
        let mut pipe = redis::pipe();
        for (channel, payload) in batch.drain(..) {
            pipe.cmd("PUBLISH").arg(channel).arg(payload).ignore();
        }
        // `None`: Redis is down (the handle says so once) and these frames stay on this server.
        let _: Option<()> = redis.query_pipe(&pipe).await;
    }
}

/// Why a subscription ended.
enum Ended {
    /// The relay was dropped: stop.
    Stopped,
    /// The connection failed: reconnect.
    Lost(String),
}

/// The task that owns the pub/sub connection.
struct Pump {
    redis: Arc<Redis>,
    origin: String,
    topics: Arc<Topics>,
    commands: mpsc::UnboundedReceiver<Command>,
    /// The topics watched here, subscribed again after a reconnect.
    wanted: HashSet<String>,
}

impl Pump {
    async fn run(mut self) {
        let mut acks = Vec::new();
        loop {
            let Some((sink, stream)) = self.connect(&mut acks).await else {
                return;
            };
            for ack in acks.drain(..) {
                let _ = ack.send(true);
            }
            if !self.redis.is_up() {
                // Lets the shared handle notice (and log once) that Redis is back.
                let _: Option<redis::Value> = self.redis.query(&redis::cmd("PING")).await;
            }
            match self.follow(sink, stream).await {
                Ended::Stopped => return,
                Ended::Lost(why) => {
                    tracing::debug!(
                        "progress fan-out: the Redis subscription ended ({}); reconnecting",
                        self.redis.redact(&why)
                    );
                    // Through the shared handle, so a Redis that went away is logged once, there.
                    let _: Option<redis::Value> = self.redis.query(&redis::cmd("PING")).await;
                }
            }
        }
    }

    /// A subscribed connection, once someone watches and Redis takes it; `None` when the relay
    /// is gone. Followers that arrive while Redis is unreachable are told so at once; the first
    /// one after a quiet spell waits for this attempt (`acks`).
    async fn connect(&mut self, acks: &mut Vec<oneshot::Sender<bool>>) -> Option<(PubSubSink, PubSubStream)> {
        loop {
            while self.wanted.is_empty() {
                match self.commands.recv().await? {
                    Command::Follow { topic, ack } => {
                        self.wanted.insert(topic);
                        acks.push(ack);
                    }
                    Command::Unfollow { topic } => {
                        self.wanted.remove(&topic);
                    }
                }
            }
            match self.open().await {
                Ok(connection) => return Some(connection),
                Err(why) => {
                    tracing::debug!("progress fan-out: cannot subscribe in Redis ({}); retrying", self.redis.redact(&why))
                }
            }
            for ack in acks.drain(..) {
                let _ = ack.send(false);
            }
            // As often as the shared handle retries, quietly (it logs down and back, once each).
            let retry = tokio::time::sleep(self.redis.retry_every());
            tokio::pin!(retry);
            loop {
                tokio::select! {
                    _ = &mut retry => break,
                    command = self.commands.recv() => match command? {
                        Command::Follow { topic, ack } => {
                            self.wanted.insert(topic);
                            let _ = ack.send(false);
                        }
                        Command::Unfollow { topic } => {
                            self.wanted.remove(&topic);
                        }
                    },
                }
            }
        }
    }

    /// A new pub/sub connection subscribed to every wanted topic.
    async fn open(&self) -> Result<(PubSubSink, PubSubStream), String> {
        self.redis.open_pubsub(self.wanted.iter().map(|t| channel(t)).collect()).await
    }

    /// Relay frames and follow commands until the connection fails or the relay is dropped.
    async fn follow(&mut self, mut sink: PubSubSink, mut stream: PubSubStream) -> Ended {
        let mut ping = tokio::time::interval(PING_EVERY);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ping.tick().await;
        loop {
            tokio::select! {
                message = stream.next() => match message {
                    Some(message) => self.deliver(&message),
                    None => return Ended::Lost("connection closed".into()),
                },
                command = self.commands.recv() => match command {
                    None => return Ended::Stopped,
                    Some(Command::Follow { topic, ack }) => {
                        if !self.wanted.contains(&topic)
                            && let Err(why) = within(sink.subscribe(channel(&topic))).await
                        {
                            // Subscribed again with the others once reconnected.
                            self.wanted.insert(topic);
                            let _ = ack.send(false);
                            return Ended::Lost(why);
                        }
                        self.wanted.insert(topic);
                        let _ = ack.send(true);
                    }
                    Some(Command::Unfollow { topic }) => {
                        if self.wanted.remove(&topic)
                            && let Err(why) = within(sink.unsubscribe(channel(&topic))).await
                        {
                            return Ended::Lost(why);
                        }
                    }
                },
                _ = ping.tick() => {
                    if let Err(why) = within(sink.ping::<redis::Value>()).await {
                        return Ended::Lost(why);
                    }
                }
            }
        }
    }

    /// Hand a frame from another server to the watchers here.
    fn deliver(&self, message: &redis::Msg) {
        let Some(topic) = message.get_channel_name().strip_prefix(CHANNEL_PREFIX) else {
            return;
        };
        let Ok(payload) = message.get_payload::<String>() else {
            return;
        };
        match payload.split_once(' ') {
            Some((origin, frame)) if origin != self.origin => self.topics.deliver(topic, Arc::from(frame)),
            _ => {}
        }
    }
}

