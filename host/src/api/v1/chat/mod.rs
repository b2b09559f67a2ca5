//! `/api/v1/chat`: a question answered over SSE, and what follows an answer.
//!
//! - `POST /chat`: the pipeline on a saved connection, streamed (see [`events`]); the connection's
//!   execution mode decides whether the SQL runs (`auto_execute`), waits for approval
//!   (`review_first` → `pending_approval`) or is only shown (`generate_only` → `query_only`).
//!   A client that disconnects stops the pipeline at its next step (the LLM stream is dropped,
//!   the query never starts);
//! - `POST /chat/execute/{message_id}`: run a held query once, validated again, by an admin;
//! - `POST /chat/edit/{message_id}`: run edited SQL after full validation;
//! - `POST /chat/sort/{message_id}`: an answer's rows again, sorted by the database;
//! - `POST|DELETE /chat/feedback/{message_id}`: 👍 makes the pair a verified example, 👎 evicts
//!   matching cache entries; DELETE takes the rating back.
//!
//! Masking and the connection's row filter apply on every path: they are part of the pipeline's
//! execute stage, which all of these go through.
//!
//! Every frame `POST /chat` streams is also published to the session's watchers (see
//! [`crate::progress_bus`] and `GET /chat/sessions/{id}/events`), after a `message_started`
//! frame; publishing never waits.

pub(super) mod context;
pub mod events;
pub(super) mod followup;
pub mod request;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use futures::Stream;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::api::job::{Job, Update};
use crate::api::state::AppState;
use crate::pipeline::answer::Answer;
use crate::pipeline::progress::Progress;
use crate::progress_bus::ProgressBus;

use self::context::Prepared;
use self::events::{ChatResponse, Frame};
use self::request::ChatRequest;
use super::error::ApiResult;
use super::extract::{Body, CurrentUser};
use super::state::Product;

/// The chat routes.
pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/chat", post(chat))
        .route("/chat/execute/{message_id}", post(followup::execute))
        .route("/chat/edit/{message_id}", post(followup::edit))
        .route("/chat/sort/{message_id}", post(followup::sort))
        .route("/chat/feedback/{message_id}", post(followup::feedback).delete(followup::retract))
}

/// Events buffered between the pipeline and a slow client.
const EVENT_BUFFER: usize = 64;

/// `POST /api/v1/chat`. Bad bodies (422), unknown connections (404) and a missing provider (400)
/// are answered before the stream starts; once it has started, failures arrive as `error` + `done`.
async fn chat(
    State(state): State<Arc<AppState>>,
    current: CurrentUser,
    Body(request): Body<ChatRequest>,
) -> ApiResult<Response> {
    if let Err(invalid) = request.check() {
        return Ok(invalid.into_response());
    }
    let product = state.product()?.clone();
    let prepared = context::prepare(&product, &current, &request).await?;
    let (tx, rx) = mpsc::channel::<Event>(EVENT_BUFFER);
    tokio::spawn(stream_answer(product, current, prepared, tx));
    let stream: std::pin::Pin<Box<dyn Stream<Item = Result<Event, Infallible>> + Send>> =
        Box::pin(futures::StreamExt::map(ReceiverStream::new(rx), Ok));
    let sse = Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)));
    Ok(([("cache-control", "no-cache"), ("x-accel-buffering", "no")], sse).into_response())
}

/// Where a turn's frames go: the client that asked, and the session's watchers.
struct Outlet {
    client: mpsc::Sender<Event>,
    watchers: ProgressBus,
    session_id: String,
}

impl Outlet {
    /// Publish `frame` to the watchers (never waits), then send it to the client; false once the
    /// client is gone.
    async fn send(&self, frame: Frame) -> bool {
        self.watchers.publish(&self.session_id, frame.json());
        self.client.send(frame.into_event()).await.is_ok()
    }

    /// The client left before `done`: the turn stops, and the watchers are told so it does not
    /// look unfinished to them.
    fn abandoned(&self) {
        let why = "The client that asked went away; the question was stopped";
        self.watchers.publish(&self.session_id, events::error(why).json());
        self.watchers
            .publish(&self.session_id, events::done(&ChatResponse::failed(&self.session_id, why.into())).json());
    }
}

/// Run the question and turn its progress into frames for `client` and the session's watchers
/// until `done`. When the client goes away the job is dropped at once, which stops the pipeline.
async fn stream_answer(product: Arc<Product>, current: CurrentUser, prepared: Prepared, client: mpsc::Sender<Event>) {
    let outlet =
        Outlet { client, watchers: product.progress.clone(), session_id: prepared.question.session_id.clone() };
    outlet.watchers.publish(
        &outlet.session_id,
        events::message_started(&outlet.session_id, &prepared.connection_id, &prepared.question.question).json(),
    );
    let engine = product.engine.clone();
    let question = prepared.question.clone();
    let generate_only = prepared.generate_only;
    let mut job = Job::spawn(move |sink| {
        Box::pin(async move {
            if generate_only { engine.generate(question, sink).await } else { engine.ask(question, sink).await }
        })
    });
    let show_query = prepared.show_query;
    let dialect = prepared.dialect_label;
    // The explanation is held back so that it follows the rows, as the protocol orders them.
    let mut explanation: Option<String> = None;
    loop {
        let update = tokio::select! {
            biased;
            update = job.next() => update,
            // Noticed here, not only at the next frame, so a long stage (a slow query) stops as
            // soon as the client leaves: returning drops the job, which closes its progress channel.
            () = outlet.client.closed() => {
                outlet.abandoned();
                return;
            }
        };
        let Some(update) = update else {
            return;
        };
        let frame = match update {
            Update::Progress(Progress::Stage { stage, message }) => Some(events::status(stage.as_str(), &message)),
            Update::Progress(Progress::Token(text)) => Some(events::token(&text)),
            Update::Progress(Progress::Sql { sql, .. }) if show_query => Some(events::sql(&sql, dialect)),
            Update::Progress(Progress::Explanation(text)) => {
                explanation = Some(text);
                None
            }
            Update::Progress(_) => None,
            Update::Finished(Ok(answer)) => {
                finish(&product, &current, &prepared, answer, explanation.take(), &outlet).await;
                return;
            }
            Update::Finished(Err(e)) => {
                let message = e.to_string();
                tracing::warn!(user = %current.user.id, "chat failed: {message}");
                let _ = outlet.send(events::error(&message)).await;
                let _ = outlet.send(events::done(&ChatResponse::failed(&prepared.question.session_id, message))).await;
                return;
            }
        };
        if let Some(frame) = frame
            && !outlet.send(frame).await
        {
            outlet.abandoned();
            return;
        }
    }
}

/// Record the answer, then send its rows, explanation, error and `done`.
async fn finish(
    product: &Product,
    current: &CurrentUser,
    prepared: &Prepared,
    mut answer: Answer,
    explanation: Option<String>,
    outlet: &Outlet,
) {
    answer.explanation = answer.explanation.or(explanation);
    let message_id = context::record(product, current, prepared, &answer).await;
    let response = ChatResponse::of(&answer, &message_id, prepared.dialect_label, prepared.show_query);
    let mut frames = Vec::new();
    if let Some(results) = &answer.results {
        frames.extend(events::row_batches(results));
    }
    if let Some(text) = &answer.explanation {
        frames.push(events::explanation(text));
    }
    if let Some(error) = &answer.error {
        frames.push(events::error(error));
    }
    frames.push(events::done(&response));
    // The answer is recorded: its watchers get all of it even if the client has just left.
    for frame in frames {
        let _ = outlet.send(frame).await;
    }
}
