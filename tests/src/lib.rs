//! Support for Quarry's end-to-end tests, written once and shared by every test file and the
//! benchmark.
//!
//! - [`server`] starts the real `quarry serve` binary on a free port with a clean environment,
//!   waits for its "listening" line, captures its stderr to a file and kills it on drop.
//! - [`fake_llm`] is an in-process OpenAI-compatible server that answers from a per-test script
//!   (JSON or SSE streaming, as asked) and records every request the engine sent.
//! - [`fixtures`] creates a small shop database (customers and orders) on SQLite, PostgreSQL or
//!   MariaDB/MySQL, isolated per test, and drops it afterwards.
//! - [`harness`] puts the three together for one scenario.
//! - [`sse`] parses `text/event-stream` bodies the way a real client does.
//! - [`product`] signs in to the product API (`/api/v1`) and reads its chat answer streams.
//!
//! [`on_every_backend!`] turns one scenario function into one test per database backend.

pub mod fake_llm;
pub mod fixtures;
pub mod harness;
pub mod product;
pub mod server;
pub mod sse;

pub use fake_llm::{FakeLlm, LlmCall, fenced_answer, json_answer};
pub use fixtures::{Backend, Fixture, PARIS_PLAN, PARIS_QUESTION, PARIS_SQL, int_of, paris_rows};
pub use harness::{Harness, chat_id};
pub use server::{HttpReply, JsonBody, Server, ServerBuilder};

/// Declare one `#[tokio::test]` per backend (`sqlite`, `postgres`, `mysql`) for each scenario: a
/// module named after the scenario whose tests call `scenario(Backend::…)`. A scenario skips
/// (and passes) when [`Fixture::create`] finds its backend not configured.
///
/// ```text
/// async fn answers_on_the_first_try(backend: Backend) { /* … */ }
/// quarry_e2e::on_every_backend!(answers_on_the_first_try);
/// ```
#[macro_export]
macro_rules! on_every_backend {
    ($($scenario:ident),* $(,)?) => {
        $(
            mod $scenario {
                #[tokio::test]
                async fn sqlite() {
                    super::$scenario($crate::Backend::Sqlite).await
                }

                #[tokio::test]
                async fn postgres() {
                    super::$scenario($crate::Backend::Postgres).await
                }

                #[tokio::test]
                async fn mysql() {
                    super::$scenario($crate::Backend::MySql).await
                }
            }
        )*
    };
}
