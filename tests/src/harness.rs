//! The usual set-up of one scenario: a fixture database, a scripted fake LLM and a server
//! pointed at both.

use crate::fake_llm::FakeLlm;
use crate::fixtures::{Backend, Fixture};
use crate::server::{Server, ServerBuilder};

/// A server, its fake LLM and its database. Fields drop in order: the server stops before its
/// database is dropped, so no server connection holds the database open.
pub struct Harness {
    /// The running `quarry serve`.
    pub server: Server,
    /// The scripted model it calls.
    pub llm: FakeLlm,
    /// The database it queries.
    pub db: Fixture,
}

impl Harness {
    /// Everything with default settings, or `None` when `backend` is not configured (the test
    /// then passes after printing why).
    pub async fn start(backend: Backend) -> Option<Self> {
        Self::start_with(backend, |server| server).await
    }

    /// Like [`Harness::start`], with `configure` adjusting the server's settings.
    pub async fn start_with(backend: Backend, configure: impl FnOnce(ServerBuilder) -> ServerBuilder) -> Option<Self> {
        let db = Fixture::create(backend).await?;
        let llm = FakeLlm::start().await;
        let server = configure(ServerBuilder::new().llm(&llm).database(&db)).start().await;
        Some(Self { server, llm, db })
    }
}

/// A chat id no other test uses: `prefix` plus a random suffix.
pub fn chat_id(prefix: &str) -> String {
    format!("{prefix}-{}", &uuid::Uuid::new_v4().simple().to_string()[..8])
}
