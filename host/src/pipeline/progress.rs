//! What the pipeline reports while it works: stage transitions, streamed tokens, the SQL of each
//! attempt. Clients turn these into SSE events or `<think>` lines; the pipeline never blocks on a
//! slow reader for long and never fails because nobody listens.

use tokio::sync::mpsc;

use super::answer::Answer;

/// The stages of one question, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Picking the connection, provider and dialect.
    Resolve,
    /// Introspecting (or reading the cached) schema.
    Schema,
    /// Choosing the tables relevant to the question.
    Link,
    /// Asking the LLM for SQL.
    Generate,
    /// Checking the SQL with the dialect plugin.
    Validate,
    /// Running it read-only.
    Execute,
    /// Asking the LLM to fix a failed attempt.
    Repair,
    /// Summarising the result.
    Explain,
    /// Saving the turn.
    Record,
}

impl Stage {
    /// The stage's name as events and timings spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Resolve => "resolve",
            Stage::Schema => "schema",
            Stage::Link => "link",
            Stage::Generate => "generate",
            Stage::Validate => "validate",
            Stage::Execute => "execute",
            Stage::Repair => "repair",
            Stage::Explain => "explain",
            Stage::Record => "record",
        }
    }
}

/// One progress report.
#[derive(Debug, Clone)]
pub enum Progress {
    /// A stage started; `message` says what is happening, for people.
    Stage {
        /// The stage.
        stage: Stage,
        /// What is happening.
        message: String,
    },
    /// A piece of the LLM's answer as it streams in.
    Token(String),
    /// The SQL of an attempt, once validated (again whenever repair changes it).
    Sql {
        /// 1 for the first attempt.
        attempt: u32,
        /// The SQL that will run.
        sql: String,
    },
    /// An attempt failed and will be repaired (or not, when retries are exhausted).
    AttemptFailed {
        /// 1 for the first attempt.
        attempt: u32,
        /// What went wrong.
        reason: String,
    },
    /// The explanation is ready.
    Explanation(String),
    /// The whole answer (last event).
    Done(Box<Answer>),
}

/// Where progress goes: a bounded channel, or nowhere.
#[derive(Debug, Clone, Default)]
pub struct ProgressSink {
    tx: Option<mpsc::Sender<Progress>>,
}

impl ProgressSink {
    /// Report to nobody.
    pub fn none() -> Self {
        Self { tx: None }
    }

    /// Report into a new channel of `capacity`; returns the sink and the receiving end.
    pub fn channel(capacity: usize) -> (Self, mpsc::Receiver<Progress>) {
        let (tx, rx) = mpsc::channel(capacity);
        (Self { tx: Some(tx) }, rx)
    }

    /// Send one report. Waits while the reader is slow (back-pressure); a reader that has gone
    /// away is ignored here, and the caller notices through [`ProgressSink::is_closed`].
    pub async fn send(&self, event: Progress) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(event).await;
        }
    }

    /// Report a stage transition.
    pub async fn stage(&self, stage: Stage, message: impl Into<String>) {
        self.send(Progress::Stage { stage, message: message.into() }).await;
    }

    /// Whether a reader was attached and has since gone away (the client disconnected).
    pub fn is_closed(&self) -> bool {
        self.tx.as_ref().is_some_and(|tx| tx.is_closed())
    }

    /// Completes when a reader that was attached goes away; never for [`ProgressSink::none`].
    pub async fn closed(&self) {
        match &self.tx {
            Some(tx) => tx.closed().await,
            None => std::future::pending().await,
        }
    }
}
