//! The NL→SQL pipeline: one question in, a validated, executed and explained answer out.
//!
//! [`Engine`] is the entry point; `run` drives one question through the stages, each a module
//! with a typed input and output: `resolve` (LLM, database, plugins), `schema` (introspect,
//! link, render), [`prompt`] (what the LLM reads), [`generate`] (one provider call, SQL
//! [`extract`]ed from the answer), [`validate`] (the dialect plugin), [`execute`] (read-only),
//! [`explain`] (the explainer plugin) and [`record`] (the session's turns). [`progress`] carries
//! stage transitions to clients; [`answer`] is what comes out.

pub mod answer;
pub mod engine;
pub mod execute;
pub mod explain;
pub mod extract;
pub mod generate;
pub mod progress;
pub mod prompt;
pub mod record;
pub(crate) mod resolve;
pub(crate) mod run;
pub(crate) mod schema;
pub mod validate;

pub use answer::{Answer, AnswerStatus, Attempt, QueryResults, TokenUsage};
pub use engine::{
    BusinessContext, CacheFuture, CachedSql, Context, Engine, EngineConfig, EngineError, Overrides, Question, SqlCache,
};
pub use progress::{Progress, ProgressSink, Stage};
