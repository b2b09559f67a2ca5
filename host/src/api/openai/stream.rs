//! A running question turned into an OpenAI reply, streamed or whole. Either way the reply reads
//! the same: `<think>\n`, one line per progress report, `\n</think>\n\n`, then the answer in
//! markdown (see [`super::format`]).
//!
//! Streamed, it is a `text/event-stream` of `data: {json}\n\n` events — for chat a first chunk
//! with the assistant role, then one chunk per piece of text, a last chunk with an empty delta
//! and `finish_reason: "stop"`, and `data: [DONE]`. Once streaming has begun the status is
//! 200 whatever happens, so an engine failure is written into the answer part. Dropping the
//! stream (the client went away) drops the [`Job`], which tells the engine to stop.

use std::convert::Infallible;
use std::sync::Arc;

use axum::body::Body;
use axum::http::HeaderValue;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::stream::{self, StreamExt};

use super::format::{answer_markdown, error_markdown, progress_line};
use super::types::{
    AssistantMessage, ChatChoice, ChatCompletion, ChatCompletionChunk, ChunkChoice, Delta,
    TextChoice, TextCompletion, TextCompletionChunk, Usage,
};
use crate::api::job::{Job, JobError, Update};
use crate::api::state::unix_now;
use crate::pipeline::answer::Answer;

/// Opens the `<think>` section.
pub const THINK_OPEN: &str = "<think>\n";
/// Closes it.
pub const THINK_CLOSE: &str = "\n</think>\n\n";
/// The stream's last event.
pub const DONE_EVENT: &str = "data: [DONE]\n\n";

/// Which OpenAI API the reply is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// `/v1/chat/completions`: `chat.completion(.chunk)` objects.
    Chat,
    /// `/v1/completions`: `text_completion` objects.
    Text,
}

/// One reply: its id, creation time and model name, shared by all of its chunks.
#[derive(Debug, Clone)]
pub struct Reply {
    flavor: Flavor,
    id: String,
    created: u64,
    model: String,
}

impl Reply {
    /// A new reply of `flavor` from model `model`.
    pub fn new(flavor: Flavor, model: &str) -> Self {
        let prefix = match flavor {
            Flavor::Chat => "chatcmpl-",
            Flavor::Text => "cmpl-",
        };
        Self {
            flavor,
            id: format!("{prefix}{}", uuid::Uuid::new_v4().simple()),
            created: unix_now(),
            model: model.to_string(),
        }
    }

    /// The reply's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// One `data: {…}\n\n` event.
    fn event(
        &self,
        role: bool,
        content: Option<String>,
        finish_reason: Option<&'static str>,
    ) -> Bytes {
        let json = match self.flavor {
            Flavor::Chat => serde_json::to_string(&ChatCompletionChunk {
                id: self.id.clone(),
                object: "chat.completion.chunk",
                created: self.created,
                model: self.model.clone(),
                choices: vec![ChunkChoice {
                    index: 0,
                    delta: Delta {
                        role: role.then_some("assistant"),
                        content,
                    },
                    finish_reason,
                }],
            }),
            Flavor::Text => serde_json::to_string(&TextCompletionChunk {
                id: self.id.clone(),
                object: "text_completion",
                created: self.created,
                model: self.model.clone(),
                choices: vec![TextChoice {
                    text: content.unwrap_or_default(),
                    index: 0,
                    logprobs: None,
                    finish_reason,
                }],
            }),
        };
        // Serialising these plain structs cannot fail.
        Bytes::from(format!("data: {}\n\n", json.unwrap_or_default()))
    }

    /// An event adding `text`.
    fn text(&self, text: impl Into<String>) -> Bytes {
        self.event(false, Some(text.into()), None)
    }

    /// The events before any progress: the role (chat only) and the opening of `<think>`.
    fn opening(&self) -> Vec<Bytes> {
        let mut events = Vec::with_capacity(2);
        if self.flavor == Flavor::Chat {
            events.push(self.event(true, Some(String::new()), None));
        }
        events.push(self.text(THINK_OPEN));
        events
    }

    /// The events after the last progress report: the end of `<think>`, the answer, the stop
    /// chunk and `[DONE]`.
    fn closing(&self, outcome: &Result<Answer, JobError>) -> Vec<Bytes> {
        vec![
            self.text(THINK_CLOSE),
            self.text(visible_text(outcome)),
            self.event(false, None, Some("stop")),
            Bytes::from_static(DONE_EVENT.as_bytes()),
        ]
    }

    /// Stream the job's progress and answer as server-sent events.
    pub fn stream(self, job: Job) -> Response {
        let reply = Arc::new(self);
        let opening = stream::iter(reply.opening());
        let rest = stream::unfold((reply, Some(job)), |(reply, job)| async move {
            let mut job = job?;
            match job.next().await? {
                Update::Progress(p) => {
                    let events: Vec<Bytes> = progress_line(&p)
                        .map(|line| reply.text(line))
                        .into_iter()
                        .collect();
                    Some((events, (reply, Some(job))))
                }
                Update::Finished(outcome) => {
                    log_outcome(&outcome);
                    let events = reply.closing(&outcome);
                    Some((events, (reply, None)))
                }
            }
        })
        .flat_map(stream::iter::<Vec<Bytes>>);
        let body = Body::from_stream(opening.chain(rest).map(Ok::<_, Infallible>));
        let mut response = body.into_response();
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
        response
    }

    /// Wait for the whole reply: its text (`<think>` section and answer) and token usage.
    async fn collect(mut job: Job) -> (String, Usage) {
        let mut text = String::from(THINK_OPEN);
        let outcome = loop {
            match job.next().await {
                Some(Update::Progress(p)) => text.extend(progress_line(&p)),
                Some(Update::Finished(outcome)) => break outcome,
                None => break Err(JobError::Lost),
            }
        };
        log_outcome(&outcome);
        text.push_str(THINK_CLOSE);
        text.push_str(&visible_text(&outcome));
        let usage = outcome
            .as_ref()
            .map(|a| Usage::from(a.usage))
            .unwrap_or_default();
        (text, usage)
    }

    /// The whole reply as a `chat.completion`.
    pub async fn chat_completion(self, job: Job) -> ChatCompletion {
        let (content, usage) = Self::collect(job).await;
        ChatCompletion {
            id: self.id,
            object: "chat.completion",
            created: self.created,
            model: self.model,
            choices: vec![ChatChoice {
                index: 0,
                message: AssistantMessage {
                    role: "assistant",
                    content,
                },
                finish_reason: "stop",
            }],
            usage,
        }
    }

    /// The whole reply as a `text_completion`.
    pub async fn text_completion(self, job: Job) -> TextCompletion {
        let (text, usage) = Self::collect(job).await;
        TextCompletion {
            id: self.id,
            object: "text_completion",
            created: self.created,
            model: self.model,
            choices: vec![TextChoice {
                text,
                index: 0,
                logprobs: None,
                finish_reason: Some("stop"),
            }],
            usage,
        }
    }
}

/// The part after `</think>`: the answer, or why there is none.
fn visible_text(outcome: &Result<Answer, JobError>) -> String {
    match outcome {
        Ok(answer) => answer_markdown(answer),
        Err(e) => error_markdown(e),
    }
}

fn log_outcome(outcome: &Result<Answer, JobError>) {
    match outcome {
        Ok(a) => tracing::info!(session = %a.session_id, status = a.status.as_str(), "answered"),
        Err(e) => tracing::warn!("question failed: {e}"),
    }
}
