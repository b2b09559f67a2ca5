//! A question running in a task of its own, its progress forwarded to the route that started it.
//!
//! When the route goes away (the client disconnected, the response stream was dropped), the
//! progress channel is closed, so the engine sees [`ProgressSink::is_closed`] at its next stage
//! boundary and stops; the task lets it wind down rather than cutting it off mid-statement. A
//! panic in the engine ends the task without an answer, which the route reports as
//! [`JobError::Lost`]: one failed request, not a dead server.

use tokio::sync::mpsc;

use super::state::AnswerFuture;
use crate::pipeline::answer::Answer;
use crate::pipeline::engine::EngineError;
use crate::pipeline::progress::{Progress, ProgressSink};

/// Progress reports buffered between the engine and a slow client.
const BUFFER: usize = 64;

/// What a running question reports.
#[derive(Debug)]
pub enum Update {
    /// A stage transition, an attempt, …
    Progress(Progress),
    /// The end (last update).
    Finished(Result<Answer, JobError>),
}

/// Why a job ended without an answer.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// The engine could not answer (see [`EngineError`]).
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The engine's task ended without an answer (it panicked; the server log has the details).
    #[error("the engine stopped without an answer (see the server log)")]
    Lost,
}

/// A question running in its own task.
#[derive(Debug)]
pub struct Job {
    updates: mpsc::Receiver<Update>,
    finished: bool,
}

impl Job {
    /// Start `work` with a progress sink whose reports this job forwards.
    pub fn spawn(work: impl FnOnce(ProgressSink) -> AnswerFuture) -> Self {
        let (out, updates) = mpsc::channel(BUFFER);
        let (sink, progress) = ProgressSink::channel(BUFFER);
        tokio::spawn(forward(work(sink), progress, out));
        Self {
            updates,
            finished: false,
        }
    }

    /// The next update; after [`Update::Finished`] (always sent, [`JobError::Lost`] when the
    /// task died), `None`.
    pub async fn next(&mut self) -> Option<Update> {
        if self.finished {
            return None;
        }
        let update = self
            .updates
            .recv()
            .await
            .unwrap_or(Update::Finished(Err(JobError::Lost)));
        self.finished = matches!(update, Update::Finished(_));
        Some(update)
    }

    /// Wait for the answer, ignoring progress.
    pub async fn answer(mut self) -> Result<Answer, JobError> {
        loop {
            match self.next().await {
                Some(Update::Finished(result)) => return result,
                Some(Update::Progress(_)) => continue,
                None => return Err(JobError::Lost),
            }
        }
    }
}

/// Drive `work`, forwarding its progress to `out`, then send its result. If `out`'s reader goes
/// away first, close the progress channel and let the engine notice and stop.
async fn forward(
    mut work: AnswerFuture,
    mut progress: mpsc::Receiver<Progress>,
    out: mpsc::Sender<Update>,
) {
    let result = loop {
        tokio::select! {
            biased;
            Some(event) = progress.recv() => {
                if out.send(Update::Progress(event)).await.is_err() {
                    break None;
                }
            }
            result = &mut work => break Some(result),
            () = out.closed() => break None,
        }
    };
    match result {
        Some(result) => {
            while let Ok(event) = progress.try_recv() {
                if out.send(Update::Progress(event)).await.is_err() {
                    return;
                }
            }
            let _ = out
                .send(Update::Finished(result.map_err(JobError::from)))
                .await;
        }
        None => {
            drop(progress);
            tracing::debug!("client went away; letting the engine stop at its next stage");
            let _ = work.await;
        }
    }
}
