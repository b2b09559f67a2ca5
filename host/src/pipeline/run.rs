//! One question, end to end: [`run`] drives the stages in order — resolve, schema, link, prompt,
//! then the attempt loop (generate, validate, execute, repair), explain, record — and reports a
//! progress [`Stage`] at each boundary. It reads top to bottom; each stage's work lives in its
//! own module.
//!
//! The attempt loop's rules:
//! - the first attempt plus up to `retry_count` repairs; a refusal, a repairable database error
//!   or an answer without SQL is fed back to the model;
//! - a query that ran and returned rows is final: it is never replaced by another one;
//! - an empty result is checked once: if the check's query returns rows it is used, otherwise
//!   (empty again, or failed) the first result stands;
//! - evaluating caller-supplied SQL, a refusal on safety grounds ends the answer at once — the
//!   model never rewrites someone's `DELETE` into something else.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::db::{DbError, ExecOptions, Flavor};
use crate::llm::LlmError;
use crate::plugins::bindings::dialect::exports::quarry::plugin::dialect::Policy;
use crate::plugins::bindings::types::ChatMessage;
use crate::plugins::dialect::default_policy;

use super::answer::{Answer, AnswerStatus, Attempt, QueryResults, TokenUsage};
use super::engine::{EngineError, Inner, MAX_FEEDBACK_EXAMPLES, MAX_RETRY_COUNT, MAX_SCHEMA_EXAMPLES, Question};
use super::execute::execute;
use super::explain::{explain, grants};
use super::extract::ExtractError;
use super::generate::generate;
use super::progress::{Progress, ProgressSink, Stage};
use super::prompt::{Failure, PromptInput, generation_messages, repair_messages_with_result};
use super::record::{history, record};
use super::resolve::{Resolved, resolve};
use super::schema::{link_and_render, load};
use super::validate::{Verdict, only_parse_errors, validate};
use crate::connections::apply_row_filter;

/// What a question asks of the pipeline.
pub(crate) enum Mode {
    /// Generate, run, repair, explain.
    Ask,
    /// Generate and validate only.
    GenerateOnly,
    /// Generate and validate, then hold the SQL for approval (`pending_approval`).
    Review,
    /// Run SQL the cache had for the question (`cached`); repaired by the model if it fails.
    Cached {
        /// The cached SQL.
        sql: String,
    },
    /// Validate SQL the cache had, then hold it for approval.
    CachedReview {
        /// The cached SQL.
        sql: String,
    },
    /// Run the caller's SQL (repairing it when the database rejects it).
    Evaluate {
        /// The caller's SQL.
        sql: String,
        /// The caller's description of it.
        description: Option<String>,
    },
}

/// Run one question through the pipeline.
pub(crate) async fn run(inner: &Inner, q: Question, mode: Mode, progress: ProgressSink) -> Result<Answer, EngineError> {
    let started = Instant::now();
    let q = checked(q, &mode)?;
    let settings = &inner.config.settings;
    let privacy = q.context.privacy.as_ref().unwrap_or(&inner.config.privacy);
    let row_limit = q.context.row_limit.unwrap_or(settings.row_limit);
    let budget = q.context.schema_token_budget.unwrap_or(settings.schema_token_budget);
    let mode = if q.context.review_first && matches!(mode, Mode::Ask) { Mode::Review } else { mode };
    let mut timings = Timings::default();

    // 1. Resolve: the LLM (evaluation may go without), the database, the plugins.
    progress.stage(Stage::Resolve, "Connecting to the database and choosing the plugins").await;
    let t = Instant::now();
    let resolved = resolve(inner, &q.overrides, &q.context, !matches!(mode, Mode::Evaluate { .. })).await?;
    timings.add(Stage::Resolve, t);
    still_wanted(&progress)?;

    // 2. Schema: cached per database and key.
    progress.stage(Stage::Schema, "Reading the database schema").await;
    let t = Instant::now();
    let schema =
        load(&inner.schemas, &resolved.db, &resolved.db_key, q.schema_key.as_deref(), q.schema_examples, privacy)
            .await?;
    timings.add(Stage::Schema, t);
    still_wanted(&progress)?;

    // 3. Link: only the tables the question needs, when the schema is too large for the prompt.
    let t = Instant::now();
    let linked = link_and_render(&schema, &q.question, budget, q.schema_examples);
    progress
        .stage(
            Stage::Link,
            format!("Using {} of {} tables (~{} tokens)", linked.linked_tables, linked.total_tables, linked.tokens),
        )
        .await;
    timings.add(Stage::Link, t);

    // 4. Prompt: dialect guidance, schema, the session's last turns, the question.
    let guidance = resolved.dialect.prompt_guidance().await?;
    let prior = history(&inner.store, &q.session_id, settings.history_turns).await;
    let business = q.context.business_context.as_ref().map(|render| render(&q.question, &linked.table_names));
    let messages = generation_messages(&PromptInput {
        engine: engine_name(resolved.db.flavor()),
        dialect_guidance: &guidance,
        schema: &linked.text,
        business_context: business.as_deref().filter(|b| !b.trim().is_empty()),
        examples: &q.context.examples,
        history: &prior,
        question: &q.question,
        row_limit,
    });

    // The cache: SQL generated before for this question on this schema skips the model (it is
    // validated and run like any other). Only questions that go to the model consult it.
    let cache = q.context.cache.as_ref().filter(|_| matches!(mode, Mode::Ask | Mode::Review | Mode::GenerateOnly));
    let cached = match cache {
        Some(cache) if !q.context.bypass_cache => cache.lookup(&q.question, &schema.fingerprint).await,
        _ => None,
    };
    let mode = match (&cached, mode) {
        (Some(hit), Mode::Ask) => {
            progress.stage(Stage::Generate, format!("Reusing the query of a cached question: {}", hit.question)).await;
            Mode::Cached { sql: hit.sql.clone() }
        }
        (Some(hit), Mode::Review) => Mode::CachedReview { sql: hit.sql.clone() },
        (_, mode) => mode,
    };

    // 5–9. Generate, validate, execute, repair.
    let attempts = AttemptLoop {
        resolved: &resolved,
        policy: default_policy(Some(row_limit)),
        exec: ExecOptions {
            statement_timeout: q.context.statement_timeout.unwrap_or(settings.statement_timeout),
            max_rows: usize::try_from(row_limit).unwrap_or(usize::MAX),
        },
        privacy,
        row_filter: q.context.row_filter.as_deref(),
        retries: q.retry_count,
        feedback_rows: q.feedback_examples as usize,
        progress: &progress,
    };
    let was_cached = matches!(mode, Mode::Cached { .. } | Mode::CachedReview { .. });
    let outcome = attempts.run(messages, mode, &mut timings).await?;
    // Remember SQL the model wrote that ran (a cache hit that ran is remembered already).
    if let (Some(cache), AnswerStatus::Executed, Some(sql), false) = (cache, outcome.status, &outcome.sql, was_cached) {
        cache.remember(&q.question, &schema.fingerprint, sql, resolved.dialect.name()).await;
    }
    let mut answer = Answer {
        session_id: q.session_id.clone(),
        message_id: String::new(),
        question: q.question.clone(),
        description: outcome.description,
        sql: outcome.sql,
        dialect: resolved.dialect.name().to_string(),
        status: outcome.status,
        results: outcome.results,
        explanation: None,
        chart: None,
        error: outcome.error,
        attempts: outcome.attempts,
        usage: outcome.usage,
        timings_ms: BTreeMap::new(),
    };

    // 10. Explain: an explainer failure costs the explanation, never the answer.
    let explainer = resolved.explainer.as_ref().filter(|_| !q.context.skip_explanation);
    if let (Some(explainer), Some(results), Some(sql)) = (explainer, &answer.results, &answer.sql) {
        still_wanted(&progress)?;
        progress.stage(Stage::Explain, "Summarising the result").await;
        let t = Instant::now();
        let usage = Arc::new(Mutex::new(TokenUsage::default()));
        match explain(explainer, &q.question, sql, results, grants(resolved.llm.as_ref(), usage.clone())).await {
            Ok(explained) => {
                progress.send(Progress::Explanation(explained.text.clone())).await;
                answer.explanation = Some(explained.text);
                answer.chart = explained.chart;
            }
            Err(e) => tracing::warn!(explainer = explainer.name(), "no explanation: {e}"),
        }
        let used = *usage.lock().unwrap_or_else(|e| e.into_inner());
        answer.usage.input_tokens += used.input_tokens;
        answer.usage.output_tokens += used.output_tokens;
        timings.add(Stage::Explain, t);
    }

    // 11. Record: the turn, with its timings so far (recording itself is timed afterwards).
    progress.stage(Stage::Record, "Saving the turn").await;
    let t = Instant::now();
    answer.timings_ms = timings.with_total(started);
    answer.message_id = if q.context.skip_record {
        uuid::Uuid::new_v4().to_string()
    } else {
        record(&inner.store, &answer).await.unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
    };
    timings.add(Stage::Record, t);
    answer.timings_ms = timings.with_total(started);

    progress.send(Progress::Done(Box::new(answer.clone()))).await;
    Ok(answer)
}

/// The question with its text trimmed and the caller's knobs capped.
fn checked(mut q: Question, mode: &Mode) -> Result<Question, EngineError> {
    q.question = q.question.trim().to_string();
    q.session_id = q.session_id.trim().to_string();
    if q.question.is_empty() {
        return Err(EngineError::InvalidInput("the question is empty".into()));
    }
    if q.session_id.is_empty() {
        return Err(EngineError::InvalidInput("the session id is empty".into()));
    }
    if let Mode::Evaluate { sql, .. } = mode
        && sql.trim().is_empty()
    {
        return Err(EngineError::InvalidInput("the query to evaluate is empty".into()));
    }
    q.retry_count = q.retry_count.min(MAX_RETRY_COUNT);
    q.schema_examples = q.schema_examples.min(MAX_SCHEMA_EXAMPLES);
    q.feedback_examples = q.feedback_examples.min(MAX_FEEDBACK_EXAMPLES);
    Ok(q)
}

/// Stop when the client has gone: nobody will read the answer. (A running LLM stream notices
/// by itself and is dropped, which cancels the provider call.)
fn still_wanted(progress: &ProgressSink) -> Result<(), EngineError> {
    if progress.is_closed() { Err(EngineError::Llm(LlmError::Cancelled)) } else { Ok(()) }
}

/// The engine's name as the prompt spells it.
fn engine_name(flavor: Flavor) -> &'static str {
    match flavor {
        Flavor::PostgreSQL => "PostgreSQL",
        Flavor::MySQL => "MySQL",
        Flavor::MariaDB => "MariaDB",
        Flavor::SQLite => "SQLite",
    }
}

/// Milliseconds per stage, summed over attempts.
#[derive(Default)]
struct Timings(BTreeMap<String, u64>);

impl Timings {
    fn add(&mut self, stage: Stage, since: Instant) {
        let ms = u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX);
        *self.0.entry(stage.as_str().to_string()).or_default() += ms;
    }

    fn with_total(&self, started: Instant) -> BTreeMap<String, u64> {
        let mut all = self.0.clone();
        all.insert("total".into(), u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX));
        all
    }
}

/// How the attempts ended.
struct Outcome {
    status: AnswerStatus,
    sql: Option<String>,
    description: Option<String>,
    results: Option<QueryResults>,
    error: Option<String>,
    attempts: Vec<Attempt>,
    usage: TokenUsage,
}

/// What became of one attempt.
enum Tried {
    /// Validated (and, unless generating only, executed with rows or empty).
    Accepted { sql: String, results: Option<QueryResults> },
    /// It failed; `failure` is what the model is told, `last` is true when trying again is
    /// pointless or not allowed (a timeout, a safety refusal of the caller's SQL, no LLM).
    Failed { sql: Option<String>, outcome: &'static str, failure: Failure, detail: String, last: bool },
}

/// The attempt loop's fixed inputs.
struct AttemptLoop<'a> {
    resolved: &'a Resolved,
    policy: Policy,
    exec: ExecOptions,
    privacy: &'a crate::schema::PrivacyPolicy,
    row_filter: Option<&'a str>,
    retries: u32,
    feedback_rows: usize,
    progress: &'a ProgressSink,
}

/// Where the next attempt's SQL comes from.
enum Source {
    /// The caller gave it (evaluation, first attempt).
    Given(String, Option<String>),
    /// Ask the model with the conversation so far.
    Model,
}

impl AttemptLoop<'_> {
    /// Attempts until one is final or the retries are used up.
    async fn run(
        &self,
        mut conversation: Vec<ChatMessage>,
        mode: Mode,
        timings: &mut Timings,
    ) -> Result<Outcome, EngineError> {
        let generate_only = matches!(mode, Mode::GenerateOnly | Mode::Review | Mode::CachedReview { .. });
        let held_status = match mode {
            Mode::Review | Mode::CachedReview { .. } => AnswerStatus::PendingApproval,
            _ => AnswerStatus::QueryOnly,
        };
        let ran_status =
            if matches!(mode, Mode::Cached { .. }) { AnswerStatus::Cached } else { AnswerStatus::Executed };
        let evaluating = matches!(mode, Mode::Evaluate { .. });
        let mut out = Outcome {
            status: AnswerStatus::Error,
            sql: None,
            description: None,
            results: None,
            error: None,
            attempts: Vec::new(),
            usage: TokenUsage::default(),
        };
        let mut source = match mode {
            Mode::Evaluate { sql, description } => Source::Given(sql, description),
            Mode::Cached { sql } | Mode::CachedReview { sql } => Source::Given(sql, None),
            Mode::Ask | Mode::GenerateOnly | Mode::Review => Source::Model,
        };
        // The first empty result (SQL, rows, description), kept while its one check runs.
        let mut empty: Option<(String, QueryResults, Option<String>)> = None;
        let total = 1 + self.retries;

        for number in 1..=total {
            still_wanted(self.progress)?;
            let tried = match self
                .attempt(number, total, source, &conversation, generate_only, evaluating, &mut out, timings)
                .await
            {
                Ok(tried) => tried,
                // The model failed while checking an empty result: that result still stands.
                Err(EngineError::Llm(e)) if empty.is_some() && !matches!(e, LlmError::Cancelled) => {
                    tracing::warn!("the check of an empty result failed: {e}");
                    return Ok(keep_first(out, empty));
                }
                Err(e) => return Err(e),
            };
            let (failed_sql, failure) = match tried {
                Tried::Accepted { sql, results } => {
                    let rows = results.as_ref().map(|r| r.row_count);
                    out.attempts.push(attempt(number, Some(&sql), if rows == Some(0) { "empty" } else { "ok" }, None));
                    match results {
                        // Generating only: validated is done.
                        None => return Ok(finish(out, held_status, sql, None)),
                        // Rows are final, whatever came before (a cached query counts as cached
                        // only when it ran first time).
                        Some(r) if r.row_count > 0 => {
                            let status = if number == 1 { ran_status } else { AnswerStatus::Executed };
                            return Ok(finish(out, status, sql, Some(r)));
                        }
                        // This was the check of an empty result, and it is empty too: keep the first.
                        Some(_) if empty.is_some() => return Ok(keep_first(out, empty)),
                        // No retry left to check with: no rows is the answer.
                        Some(r) if number == total => return Ok(finish(out, AnswerStatus::Executed, sql, Some(r))),
                        Some(r) => {
                            empty = Some((sql.clone(), r, out.description.clone()));
                            (Some(sql), Failure::EmptyResult)
                        }
                    }
                }
                Tried::Failed { sql, outcome, failure, detail, last } => {
                    out.attempts.push(attempt(number, sql.as_deref(), outcome, Some(&detail)));
                    self.progress.send(Progress::AttemptFailed { attempt: number, reason: detail.clone() }).await;
                    out.sql = sql.clone().or(out.sql.take());
                    if empty.is_some() {
                        // The check of an empty result failed: the empty result stands.
                        return Ok(keep_first(out, empty));
                    }
                    if last || number == total {
                        out.error = Some(if number > 1 {
                            format!("No working query after {number} attempts. Last error: {detail}")
                        } else {
                            detail
                        });
                        return Ok(out);
                    }
                    if self.resolved.llm.is_none() {
                        let missing = EngineError::MissingConfiguration(self.resolved.llm_missing.clone());
                        out.error = Some(format!("{detail} (repairing the query needs an LLM. {missing})"));
                        return Ok(out);
                    }
                    (sql, failure)
                }
            };
            let note = empty.as_ref().map(|(_, r, _)| result_note(r, self.feedback_rows));
            conversation = repair_messages_with_result(&conversation, failed_sql.as_deref(), &failure, note.as_deref());
            source = Source::Model;
        }
        // The loop returns from its last iteration; this is for a `total` of zero, which `1 +`
        // rules out.
        out.error.get_or_insert_with(|| "no attempt was made".to_string());
        Ok(out)
    }

    /// One attempt: get SQL (from the caller or the model), validate it, run it unless
    /// generating only.
    #[allow(clippy::too_many_arguments)]
    async fn attempt(
        &self,
        number: u32,
        total: u32,
        source: Source,
        conversation: &[ChatMessage],
        generate_only: bool,
        evaluating: bool,
        out: &mut Outcome,
        timings: &mut Timings,
    ) -> Result<Tried, EngineError> {
        // Generate (or repair).
        let (sql, given) = match source {
            Source::Given(sql, description) => {
                out.description = description;
                (sql, true)
            }
            Source::Model => {
                let Some(llm) = &self.resolved.llm else {
                    // `run` stops before asking when there is no LLM; this is a safety net.
                    return Err(EngineError::MissingConfiguration(self.resolved.llm_missing.clone()));
                };
                let stage = if number == 1 { Stage::Generate } else { Stage::Repair };
                let message = if number == 1 {
                    "Writing the SQL query".to_string()
                } else {
                    format!("Asking the model to fix the query (attempt {number} of {total})")
                };
                self.progress.stage(stage, message).await;
                let t = Instant::now();
                let generated = generate(llm, conversation.to_vec(), self.progress).await?;
                timings.add(stage, t);
                out.usage.input_tokens += generated.usage.input_tokens;
                out.usage.output_tokens += generated.usage.output_tokens;
                match generated.extracted {
                    Ok(found) => {
                        out.description = found.description.or(out.description.take());
                        (found.sql, false)
                    }
                    Err(e) => {
                        // A model that says the question cannot be answered is not asked again.
                        let (outcome, last) = match e {
                            ExtractError::Declined(_) => ("declined", true),
                            _ => ("no-sql", false),
                        };
                        let detail = e.to_string();
                        return Ok(Tried::Failed {
                            sql: None,
                            outcome,
                            failure: Failure::NoSql(detail.clone()),
                            detail,
                            last,
                        });
                    }
                }
            }
        };

        // Validate.
        self.progress.stage(Stage::Validate, "Checking the query").await;
        let t = Instant::now();
        let verdict = validate(&self.resolved.dialect, &sql, &self.policy).await?;
        timings.add(Stage::Validate, t);
        let validated = match verdict {
            Verdict::Accepted(v) => v.sql,
            Verdict::Refused(violations) => {
                // Someone else's SQL refused for safety is not the model's to rewrite.
                let last = given && evaluating && !only_parse_errors(&violations);
                let detail = format!("The query was refused: {}", violations.join("; "));
                return Ok(Tried::Failed {
                    sql: Some(sql),
                    outcome: "refused",
                    failure: Failure::Refused(violations),
                    detail,
                    last,
                });
            }
        };
        self.progress.send(Progress::Sql { attempt: number, sql: validated.clone() }).await;
        if generate_only {
            return Ok(Tried::Accepted { sql: validated, results: None });
        }

        // The connection's mandatory row filter wraps what runs (and is validated with it).
        let runnable = match self.row_filter {
            None => validated.clone(),
            Some(filter) => match self.filtered(&validated, filter).await? {
                Ok(sql) => sql,
                Err(detail) => {
                    return Ok(Tried::Failed {
                        sql: Some(validated),
                        outcome: "refused",
                        failure: Failure::Refused(vec![detail.clone()]),
                        detail,
                        last: true,
                    });
                }
            },
        };

        // Execute.
        self.progress.stage(Stage::Execute, "Running the query (read-only)").await;
        let t = Instant::now();
        let executed = execute(&self.resolved.db, &runnable, &self.exec, self.privacy, self.progress).await;
        timings.add(Stage::Execute, t);
        match executed {
            Ok(results) => Ok(Tried::Accepted { sql: validated, results: Some(results) }),
            Err(e @ DbError::Connect(_)) => Err(EngineError::Database(e)),
            // The client went away mid-statement: the statement was stopped; nobody reads on.
            Err(DbError::Cancelled) => Err(EngineError::Llm(LlmError::Cancelled)),
            Err(e) => {
                let detail = e.to_string();
                let last = !e.is_repairable();
                Ok(Tried::Failed {
                    sql: Some(validated),
                    outcome: "database-error",
                    failure: Failure::DatabaseError(detail.clone()),
                    detail,
                    last,
                })
            }
        }
    }
}

impl AttemptLoop<'_> {
    /// `sql` wrapped in the row filter and validated again; `Err` says why it cannot run.
    async fn filtered(&self, sql: &str, filter: &str) -> Result<Result<String, String>, EngineError> {
        let wrapped = apply_row_filter(sql, filter, self.resolved.db.flavor());
        Ok(match validate(&self.resolved.dialect, &wrapped, &self.policy).await? {
            Verdict::Accepted(v) => Ok(v.sql),
            Verdict::Refused(violations) => {
                Err(format!("The connection's row filter cannot be applied: {}", violations.join("; ")))
            }
        })
    }
}

/// One attempt as the answer records it.
fn attempt(number: u32, sql: Option<&str>, outcome: &str, detail: Option<&str>) -> Attempt {
    Attempt { number, sql: sql.map(str::to_string), outcome: outcome.to_string(), detail: detail.map(str::to_string) }
}

/// The outcome with `sql` final.
fn finish(mut out: Outcome, status: AnswerStatus, sql: String, results: Option<QueryResults>) -> Outcome {
    out.status = status;
    out.sql = Some(sql);
    out.results = results;
    out.error = None;
    out
}

/// The outcome with the first (empty) result final, after its check did not find rows.
fn keep_first(mut out: Outcome, empty: Option<(String, QueryResults, Option<String>)>) -> Outcome {
    match empty {
        Some((sql, results, description)) => {
            out.description = description;
            finish(out, AnswerStatus::Executed, sql, Some(results))
        }
        None => out,
    }
}

/// What the last query that ran returned, for the model: its columns and up to `rows` rows.
fn result_note(results: &QueryResults, rows: usize) -> String {
    let columns = results.columns.join(", ");
    if results.rows.is_empty() || rows == 0 {
        return format!("It returned the columns ({columns}) and {} rows.", results.row_count);
    }
    let shown: Vec<String> = results
        .rows
        .iter()
        .take(rows)
        .map(|row| row.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(" | "))
        .collect();
    format!(
        "It returned {} rows with the columns ({columns}); the first ones:\n{}",
        results.row_count,
        shown.join("\n")
    )
}
