//! Everything a chat question needs besides its text, gathered from the product's parts: the
//! saved connection (its URL with credentials opened, privacy, row filter, execution mode), the
//! provider config, the live settings, the semantic model, the closest verified examples and the
//! answer cache — turned into the pipeline's [`Context`]. Also the turn's recording and the
//! feedback side effects.
//!
//! When the provider offers embeddings, one [`QuestionVectors`] per request serves the examples,
//! the cache lookup and the answer the cache remembers: the question is embedded at most once.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crate::answer_cache::{AnswerCache, CachePolicy, StoreOptions};
use crate::app_settings::Settings;
use crate::connections::Resolved;
use crate::embedding::{LlmEmbedder, QuestionVectors};
use crate::llm::{LlmClient, ProviderSpec};
use crate::pipeline::answer::Answer;
use crate::pipeline::engine::{CacheFuture, CachedSql, Context, EngineError, Question, SqlCache};
use crate::pipeline::prompt::Example;
use crate::pipeline::record::new_turn;
use crate::pipeline::validate::Verdict;
use crate::plugins::capabilities::http::HttpClients;
use crate::store::chat::{ChatExtras, ChatTurn};

use super::request::ChatRequest;
use crate::api::v1::error::ApiError;
use crate::api::v1::extract::CurrentUser;
use crate::api::v1::state::Product;

pub use crate::connections::ExecutionMode;

/// Verified examples shown to the model at most.
const EXAMPLES_IN_PROMPT: usize = 3;

/// A saved connection, opened for asking.
pub struct ConnectionContext {
    /// The connection, credentials opened (memory only).
    pub resolved: Resolved,
    /// Run, review or only generate.
    pub mode: ExecutionMode,
    /// The dialect plugin's name (`postgres`, `mysql`, `sqlite`).
    pub dialect: &'static str,
    /// The dialect as people name it (`PostgreSQL`, `MySQL`, `SQLite`).
    pub dialect_label: &'static str,
    /// The live settings.
    pub settings: Settings,
    /// Changes when the connection's schema is refreshed, so every replica reads it again.
    pub schema_key: Option<String>,
    /// The provider the turn's session asked for (feedback on a turn; `None`: the preferred
    /// one), so its question is embedded by the same model as the answers it compares with.
    pub provider: Option<String>,
}

/// A question ready to run.
pub struct Prepared {
    /// The question with its context.
    pub question: Question,
    /// The connection it asks.
    pub connection_id: String,
    /// The provider the client asked for (recorded on the session).
    pub provider: Option<String>,
    /// How the dialect is shown.
    pub dialect_label: &'static str,
    /// Whether the SQL is shown.
    pub show_query: bool,
    /// Generate and validate only (`generate_only` connections).
    pub generate_only: bool,
}

/// The connection `id` opened for asking; 404 when unknown or deleted.
pub async fn for_connection(product: &Product, id: &str) -> Result<ConnectionContext, ApiError> {
    let record = product.store.connection(id).await?.ok_or_else(|| ApiError::not_found("Connection not found"))?;
    let resolved = crate::connections::resolve(&record, &product.cipher).map_err(|e| {
        tracing::error!(connection = %record.id, "cannot open the connection's settings: {e}");
        ApiError::bad_request(format!("The connection's settings cannot be used: {e}"))
    })?;
    let settings = product.settings.current().await?;
    let source = resolved.source_type;
    // The dialect plugin is named after the engine (`postgres`), people know the language (`PostgreSQL`).
    let dialect = crate::examples::dialect_for_source(source.as_str())
        .ok_or_else(|| ApiError::bad_request(format!("No SQL dialect plugin for {source}")))?;
    Ok(ConnectionContext {
        mode: resolved.execution_mode,
        dialect,
        dialect_label: source.dialect_name(),
        settings,
        schema_key: record.schema_refreshed_at.map(|t| t.to_rfc3339()),
        resolved,
        provider: None,
    })
}

/// The connection of a recorded turn, with the provider its session asked for.
pub async fn for_turn(product: &Product, turn: &ChatTurn) -> Result<ConnectionContext, ApiError> {
    let id = turn.connection_id.as_deref().ok_or_else(|| ApiError::not_found("Connection not found"))?;
    let mut connection = for_connection(product, id).await?;
    connection.provider = product.store.chat_session(&turn.turn.session_id).await?.and_then(|s| s.provider);
    Ok(connection)
}

/// The question vectors of one request asking through `spec` (`None`: the server's own LLM
/// settings): from the provider's embeddings when it offers them, none otherwise (questions are
/// then compared by their words).
pub fn question_vectors(product: &Product, spec: Option<&ProviderSpec>) -> QuestionVectors {
    // One HTTP pool for every request's embedder, as the engine keeps one for completions.
    static HTTP: OnceLock<HttpClients> = OnceLock::new();
    let spec = spec.unwrap_or(&product.engine.config().llm);
    let Ok(settings) = spec.clone().resolve() else { return QuestionVectors::none() };
    let client =
        LlmClient::new(product.engine.registry().clone(), settings, HTTP.get_or_init(HttpClients::new).clone());
    match LlmEmbedder::over(client) {
        Some(embedder) => QuestionVectors::new(Arc::new(embedder)),
        None => QuestionVectors::none(),
    }
}

/// The question vectors for a request outside a chat (examples routes, feedback): the provider
/// named `provider` (a name, preset or id), else the preferred one, else the server's own.
pub async fn question_vectors_for(product: &Product, provider: Option<&str>) -> QuestionVectors {
    match crate::providers::resolve(&product.store, &product.cipher, provider).await {
        Ok(spec) => question_vectors(product, Some(&spec)),
        Err(crate::providers::ResolveError::NotFound(_)) => question_vectors(product, None),
        Err(e) => {
            tracing::warn!("no provider for question embeddings, comparing questions by their words: {e}");
            QuestionVectors::none()
        }
    }
}

/// The pipeline context shared by every path on `connection`: database, privacy, row filter,
/// limits. `max_rows` (the client's wish) is capped by the settings.
fn base_context(connection: &ConnectionContext, max_rows: Option<u64>) -> Context {
    let s = &connection.settings;
    let cap = s.max_row_limit.max(1);
    let rows = max_rows.unwrap_or(s.default_row_limit).clamp(1, cap);
    Context {
        database: Some(connection.resolved.url.clone()),
        privacy: Some(connection.resolved.privacy.clone()),
        row_filter: connection.resolved.row_filter_sql.clone(),
        row_limit: Some(rows),
        statement_timeout: Some(Duration::from_secs(s.default_query_timeout.max(1))),
        schema_token_budget: usize::try_from(s.schema_token_budget).ok(),
        skip_record: true,
        ..Context::default()
    }
}

/// Gather what `request` needs. 404 for an unknown connection, 400 when no provider is usable.
pub async fn prepare(product: &Product, current: &CurrentUser, request: &ChatRequest) -> Result<Prepared, ApiError> {
    let connection = for_connection(product, request.connection_id.trim()).await?;
    let provider = match crate::providers::resolve(&product.store, &product.cipher, request.provider.as_deref()).await {
        Ok(spec) => Some(spec),
        // No saved config: the server's own LLM settings (environment), when it has them.
        Err(crate::providers::ResolveError::NotFound(what)) => {
            let asked_for_one = request.provider.as_deref().is_some_and(|p| !p.trim().is_empty());
            let env_llm_missing =
                product.engine.missing_configuration(&Default::default()).iter().any(|m| m.starts_with("LLM"));
            if asked_for_one || env_llm_missing {
                return Err(ApiError::bad_request(format!(
                    "No LLM provider is configured ({what}); add one under /api/v1/providers"
                )));
            }
            None
        }
        Err(e) => return Err(ApiError::bad_request(format!("The provider cannot be used: {e}"))),
    };
    let session_id = session_for(product, current, request).await?;
    let vectors = Arc::new(question_vectors(product, provider.as_ref()));
    let mut context = base_context(&connection, request.options.max_rows);
    context.provider = provider;
    context.review_first = connection.mode == ExecutionMode::ReviewFirst;
    context.skip_explanation = request.options.explain_results == Some(false);
    context.bypass_cache = request.options.bypass_cache || request.options.force_refresh;
    context.examples = examples_for(product, &connection, &request.message, &vectors).await;
    context.business_context = business_context(product, &connection.resolved.id).await;
    if connection.settings.cache_enabled {
        context.cache = Some(Arc::new(ConnectionCache {
            cache: product.cache.clone(),
            connection_id: connection.resolved.id.clone(),
            policy: CachePolicy {
                ttl: (connection.settings.cache_ttl_secs > 0)
                    .then(|| Duration::from_secs(connection.settings.cache_ttl_secs)),
                threshold: connection.settings.semantic_similarity_threshold,
            },
            overwrite: request.options.force_refresh,
            capacity: usize::try_from(connection.settings.cache_max_entries_per_connection)
                .unwrap_or(usize::MAX)
                .max(1),
            vectors,
        }));
    }
    let mut question = Question::new(session_id, request.message.trim());
    question.schema_key = connection.schema_key.clone();
    question.context = context;
    Ok(Prepared {
        generate_only: connection.mode == ExecutionMode::GenerateOnly,
        question,
        connection_id: connection.resolved.id.clone(),
        provider: request.provider.clone().filter(|p| !p.trim().is_empty()),
        dialect_label: connection.dialect_label,
        show_query: request.options.show_query != Some(false),
    })
}

/// The session to continue: the client's, when it is theirs and on this connection; a new one
/// otherwise.
async fn session_for(product: &Product, current: &CurrentUser, request: &ChatRequest) -> Result<String, ApiError> {
    if let Some(id) = request.session_id.as_deref().map(str::trim).filter(|s| !s.is_empty())
        && let Ok(Some(session)) = product.store.chat_session(id).await
        && session.user_id.as_deref() == Some(current.user.id.as_str())
        && session.connection_id.as_deref() == Some(request.connection_id.trim())
    {
        return Ok(session.id);
    }
    Ok(uuid::Uuid::new_v4().to_string())
}

/// The closest verified examples (none when the store fails: they only help).
async fn examples_for(
    product: &Product,
    connection: &ConnectionContext,
    question: &str,
    vectors: &QuestionVectors,
) -> Vec<Example> {
    match crate::examples::similar_with(
        &product.store,
        vectors,
        &connection.resolved.id,
        connection.dialect,
        question,
        EXAMPLES_IN_PROMPT,
    )
    .await
    {
        Ok(found) => found.into_iter().map(|e| Example { question: e.question, sql: e.sql }).collect(),
        Err(e) => {
            tracing::warn!(connection = %connection.resolved.id, "could not read the verified examples: {e}");
            Vec::new()
        }
    }
}

/// The semantic model's renderer for the prompt, when the connection has one.
async fn business_context(product: &Product, connection_id: &str) -> Option<crate::pipeline::engine::BusinessContext> {
    match crate::semantic::load(&product.store, connection_id).await {
        Ok(Some(model)) => {
            let model = Arc::new(model);
            Some(Arc::new(move |question: &str, tables: &[String]| crate::semantic::render(&model, question, tables)))
        }
        Ok(None) => None,
        Err(e) => {
            tracing::warn!(connection = connection_id, "could not read the semantic model: {e}");
            None
        }
    }
}

/// A question re-running recorded SQL on `connection` (approval, edit): no repair, not recorded
/// (the caller updates the turn).
pub fn followup_question(connection: &ConnectionContext, session_id: &str, text: &str) -> Question {
    let mut question = Question::new(session_id, text);
    question.retry_count = 0;
    question.schema_key = connection.schema_key.clone();
    question.context = base_context(connection, None);
    question
}

/// Check `sql` with the connection's dialect plugin without running it: the SQL as it would run,
/// or the violations.
pub async fn validate_only(
    product: &Product,
    connection: &ConnectionContext,
    sql: &str,
) -> Result<Result<String, String>, ApiError> {
    let rows = connection.settings.default_row_limit;
    let verdict = product
        .engine
        .check_sql(connection.dialect, sql, rows)
        .await
        .map_err(|e| ApiError::unavailable(format!("The SQL cannot be checked: {e}")))?;
    Ok(match verdict {
        Verdict::Accepted(v) => Ok(v.sql),
        Verdict::Refused(violations) => Err(format!("The query was refused: {}", violations.join("; "))),
    })
}

/// Record an answer as the session's next turn; its message id (a fresh id when the store failed,
/// which is logged: the answer is not lost to the client).
pub async fn record(product: &Product, current: &CurrentUser, prepared: &Prepared, answer: &Answer) -> String {
    let extras = ChatExtras {
        user_id: current.user.id.clone(),
        connection_id: prepared.connection_id.clone(),
        provider: prepared.provider.clone(),
        explanation: answer.explanation.clone(),
        results: answer.results.as_ref().and_then(|r| serde_json::to_value(r).ok()),
        cache_hit: answer.status == crate::pipeline::answer::AnswerStatus::Cached,
    };
    match product.store.append_chat_turn(new_turn(answer), extras).await {
        Ok(turn) => turn.turn.id,
        Err(e) => {
            tracing::error!(session = %answer.session_id, "could not record the chat turn: {e}");
            uuid::Uuid::new_v4().to_string()
        }
    }
}

/// 👍: the question and its SQL become a verified example of the connection (with the
/// question's vector, when the session's provider offers embeddings).
pub async fn remember_example(
    product: &Product,
    connection: &ConnectionContext,
    question: &str,
    sql: &str,
) -> Result<(), ApiError> {
    let vectors = question_vectors_for(product, connection.provider.as_deref()).await;
    let id = &connection.resolved.id;
    crate::examples::add_from_feedback(&product.store, &vectors, id, connection.dialect, question, sql).await?;
    Ok(())
}

/// Undo a 👍: the example made from it goes.
pub async fn drop_example(
    product: &Product,
    connection: &ConnectionContext,
    question: &str,
    sql: &str,
) -> Result<(), ApiError> {
    crate::examples::remove_from_feedback(&product.store, &connection.resolved.id, question, sql).await?;
    Ok(())
}

/// 👎: the cache entries that would give this answer again go (compared by vectors where the
/// session's provider offers embeddings).
pub async fn forget_answer(product: &Product, connection: &ConnectionContext, question: &str) -> Result<(), ApiError> {
    let threshold = connection.settings.semantic_similarity_threshold;
    let vectors = question_vectors_for(product, connection.provider.as_deref()).await;
    product.cache.evict_similar_with(&connection.resolved.id, question, threshold, &vectors).await?;
    Ok(())
}

/// An engine failure as the API answers it (nothing secret: engine errors are scrubbed).
pub fn engine_error(e: EngineError) -> ApiError {
    match e {
        EngineError::InvalidInput(detail) => ApiError::unprocessable(detail),
        EngineError::Database(_) | EngineError::Schema(_) => ApiError::bad_gateway(e.to_string()),
        EngineError::Llm(_) | EngineError::MissingConfiguration(_) => ApiError::bad_gateway(e.to_string()),
        other => ApiError::internal(other),
    }
}

/// The answer cache of one connection, as the pipeline sees it.
struct ConnectionCache {
    cache: AnswerCache,
    connection_id: String,
    policy: CachePolicy,
    overwrite: bool,
    capacity: usize,
    /// The request's question vectors, shared with the examples: the lookup's vector is the one
    /// the remembered answer is stored with.
    vectors: Arc<QuestionVectors>,
}

impl SqlCache for ConnectionCache {
    fn lookup<'a>(&'a self, question: &'a str, fingerprint: &'a str) -> CacheFuture<'a, Option<CachedSql>> {
        Box::pin(async move {
            match self.cache.lookup_with(&self.connection_id, question, fingerprint, &self.policy, &self.vectors).await
            {
                Ok(hit) => hit.map(|h| CachedSql { sql: h.sql, question: h.question_raw, similarity: h.similarity }),
                Err(e) => {
                    tracing::warn!(connection = %self.connection_id, "answer cache unavailable: {e}");
                    None
                }
            }
        })
    }

    fn remember<'a>(
        &'a self,
        question: &'a str,
        fingerprint: &'a str,
        sql: &'a str,
        dialect: &'a str,
    ) -> CacheFuture<'a, ()> {
        Box::pin(async move {
            let options =
                StoreOptions { overwrite: self.overwrite, capacity: Some(self.capacity), vectors: Some(&self.vectors) };
            if let Err(e) =
                self.cache.store_entry_with(&self.connection_id, question, fingerprint, sql, dialect, options).await
            {
                tracing::warn!(connection = %self.connection_id, "could not remember the answer: {e}");
            }
        })
    }
}
