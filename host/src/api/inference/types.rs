//! SQL Query Engine's request and response bodies, field for field, with its defaults.

use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::Route;
use crate::api::validation::{Fields, FromJson, Invalid};
use crate::config::ServerSettings;
use crate::pipeline::answer::{Answer, AnswerStatus};
use crate::pipeline::engine::{Overrides, Question};

/// Body of `POST /inference/sqlQueryEngine/{chatID}`: the full pipeline.
#[derive(Debug, Clone, ToSchema)]
#[schema(rename_all = "camelCase")]
pub struct QueryEngineRequest {
    /// Natural language question or instruction to translate into SQL.
    #[schema(example = "How many orders were placed in the last 30 days?")]
    pub base_prompt: String,
    /// Maximum number of repair attempts (default `DEFAULT_RETRY_COUNT`, 5).
    #[schema(default = 5)]
    pub retry_count: Option<u32>,
    /// Sample values per column shown to the model (default `DEFAULT_SCHEMA_EXAMPLES`, 5).
    #[schema(default = 5)]
    pub schema_examples: Option<u32>,
    /// Result rows fed back to the model when repairing (default `DEFAULT_FEEDBACK_EXAMPLES`, 3).
    #[schema(default = 3)]
    pub feedback_examples: Option<u32>,
    /// Key the schema is cached under; a new key forces a fresh introspection.
    #[schema(default = "dbSchemaDescription")]
    pub schema_description_key: Option<String>,
    /// Any JSON, returned unchanged in the response.
    #[schema(value_type = Option<Object>)]
    pub extra_payload: Value,
}

impl FromJson for QueryEngineRequest {
    fn from_json(body: &Value) -> Result<Self, Invalid> {
        let mut f = Fields::body(body);
        let request = Self {
            base_prompt: f.required_string("basePrompt"),
            retry_count: f.optional_count("retryCount"),
            schema_examples: f.optional_count("schemaExamples"),
            feedback_examples: f.optional_count("feedbackExamples"),
            schema_description_key: f.optional_string("schemaDescriptionKey"),
            extra_payload: f.any("extraPayload"),
        };
        f.finish().map(|()| request)
    }
}

impl QueryEngineRequest {
    /// The question for the engine, the server's defaults filling what the body left out.
    pub fn question(&self, chat_id: &str, settings: &ServerSettings, overrides: Overrides) -> Question {
        let given = Counts {
            retry: self.retry_count,
            schema_examples: self.schema_examples,
            feedback_examples: self.feedback_examples,
        };
        question(chat_id, &self.base_prompt, &self.schema_description_key, given, settings, overrides)
    }
}

/// Body of `POST /inference/sqlQueryGeneration/{chatID}`: generation only.
#[derive(Debug, Clone, ToSchema)]
#[schema(rename_all = "camelCase")]
pub struct QueryGenerationRequest {
    /// Natural language question or instruction to translate into SQL.
    #[schema(example = "List all active users who signed up this year.")]
    pub base_prompt: String,
    /// Sample values per column shown to the model (default `DEFAULT_SCHEMA_EXAMPLES`, 5).
    #[schema(default = 5)]
    pub schema_examples: Option<u32>,
    /// Key the schema is cached under; a new key forces a fresh introspection.
    #[schema(default = "dbSchemaDescription")]
    pub schema_description_key: Option<String>,
    /// Any JSON, returned unchanged in the response.
    #[schema(value_type = Option<Object>)]
    pub extra_payload: Value,
}

impl FromJson for QueryGenerationRequest {
    fn from_json(body: &Value) -> Result<Self, Invalid> {
        let mut f = Fields::body(body);
        let request = Self {
            base_prompt: f.required_string("basePrompt"),
            schema_examples: f.optional_count("schemaExamples"),
            schema_description_key: f.optional_string("schemaDescriptionKey"),
            extra_payload: f.any("extraPayload"),
        };
        f.finish().map(|()| request)
    }
}

impl QueryGenerationRequest {
    /// The question for the engine, the server's defaults filling what the body left out.
    pub fn question(&self, chat_id: &str, settings: &ServerSettings, overrides: Overrides) -> Question {
        let given = Counts { schema_examples: self.schema_examples, ..Counts::default() };
        question(chat_id, &self.base_prompt, &self.schema_description_key, given, settings, overrides)
    }
}

/// Body of `POST /inference/sqlQueryEvaluation/{chatID}`: run given SQL, repairing it if needed.
#[derive(Debug, Clone, ToSchema)]
#[schema(rename_all = "camelCase")]
pub struct QueryEvaluationRequest {
    /// The original question (context for repairs).
    #[schema(example = "How many orders were placed in the last 30 days?")]
    pub base_prompt: String,
    /// The SQL to execute (validated like generated SQL: never trusted).
    #[schema(
        example = "SELECT COUNT(*) FROM orders WHERE created_at >= NOW() - INTERVAL '30 days'"
    )]
    pub base_query: String,
    /// What the query is meant to do, in plain language.
    #[schema(example = "Count orders placed in the last 30 days.")]
    pub base_description: String,
    /// Maximum number of repair attempts (default `DEFAULT_RETRY_COUNT`, 5).
    #[schema(default = 5)]
    pub retry_count: Option<u32>,
    /// Sample values per column shown to the model (default `DEFAULT_SCHEMA_EXAMPLES`, 5).
    #[schema(default = 5)]
    pub schema_examples: Option<u32>,
    /// Result rows fed back to the model when repairing (default `DEFAULT_FEEDBACK_EXAMPLES`, 3).
    #[schema(default = 3)]
    pub feedback_examples: Option<u32>,
    /// Key the schema is cached under.
    #[schema(default = "dbSchemaDescription")]
    pub schema_description_key: Option<String>,
    /// Any JSON, returned unchanged in the response.
    #[schema(value_type = Option<Object>)]
    pub extra_payload: Value,
}

impl FromJson for QueryEvaluationRequest {
    fn from_json(body: &Value) -> Result<Self, Invalid> {
        let mut f = Fields::body(body);
        let request = Self {
            base_prompt: f.required_string("basePrompt"),
            base_query: f.required_string("baseQuery"),
            base_description: f.required_string("baseDescription"),
            retry_count: f.optional_count("retryCount"),
            schema_examples: f.optional_count("schemaExamples"),
            feedback_examples: f.optional_count("feedbackExamples"),
            schema_description_key: f.optional_string("schemaDescriptionKey"),
            extra_payload: f.any("extraPayload"),
        };
        f.finish().map(|()| request)
    }
}

impl QueryEvaluationRequest {
    /// The question for the engine, the server's defaults filling what the body left out.
    pub fn question(&self, chat_id: &str, settings: &ServerSettings, overrides: Overrides) -> Question {
        let given = Counts {
            retry: self.retry_count,
            schema_examples: self.schema_examples,
            feedback_examples: self.feedback_examples,
        };
        question(chat_id, &self.base_prompt, &self.schema_description_key, given, settings, overrides)
    }
}

/// The counts a request body may set; `None` takes the server's default.
#[derive(Default)]
struct Counts {
    retry: Option<u32>,
    schema_examples: Option<u32>,
    feedback_examples: Option<u32>,
}

/// The engine's question for one request: the body's counts where given, the server's
/// `DEFAULT_*` settings for the rest.
fn question(
    chat_id: &str,
    prompt: &str,
    schema_key: &Option<String>,
    given: Counts,
    settings: &ServerSettings,
    overrides: Overrides,
) -> Question {
    Question {
        session_id: chat_id.to_string(),
        question: prompt.to_string(),
        retry_count: given.retry.unwrap_or(settings.default_retry_count),
        schema_examples: given.schema_examples.unwrap_or(settings.default_schema_examples),
        feedback_examples: given.feedback_examples.unwrap_or(settings.default_feedback_examples),
        schema_key: schema_key.clone(),
        overrides,
        context: Default::default(),
    }
}

/// Stage 1's output: the plan and the SQL.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Generation {
    /// The model's plain-language plan for the query.
    pub query_description: Option<String>,
    /// The SQL generated.
    pub sql_query: Option<String>,
}

impl Generation {
    /// The first SQL the model produced (before any repair) and its plan.
    pub fn first_attempt(answer: &Answer) -> Self {
        let sql = answer
            .attempts
            .iter()
            .find_map(|a| a.sql.clone())
            .or_else(|| answer.sql.clone());
        Self {
            query_description: answer.description.clone(),
            sql_query: sql,
        }
    }

    /// The final SQL (for generation only: the validated query) and its plan.
    pub fn final_query(answer: &Answer) -> Self {
        Self {
            query_description: answer.description.clone(),
            sql_query: final_sql(answer),
        }
    }
}

/// Stage 2's output: the query that ran last, what came of it, and its rows.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Evaluation {
    /// The last SQL tried.
    pub current_query: Option<String>,
    /// "Query executed successfully and returned N rows.", or why it failed.
    pub current_observation: String,
    /// The rows, each an object keyed by column name (empty when it failed).
    #[schema(value_type = Vec<Object>)]
    pub results: Vec<Map<String, Value>>,
}

impl From<&Answer> for Evaluation {
    fn from(answer: &Answer) -> Self {
        let failed = answer.status == AnswerStatus::Error;
        let observation = match (&answer.error, failed) {
            (Some(error), true) => error.clone(),
            _ => answer.observation(),
        };
        let results = match &answer.results {
            Some(r) if !failed => r.as_objects(),
            _ => Vec::new(),
        };
        Self {
            current_query: final_sql(answer),
            current_observation: observation,
            results,
        }
    }
}

/// The answer's SQL, else the last SQL any attempt tried.
fn final_sql(answer: &Answer) -> Option<String> {
    answer
        .sql
        .clone()
        .or_else(|| answer.attempts.iter().rev().find_map(|a| a.sql.clone()))
}

/// `agentResponse` of the full pipeline.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct EngineAgentResponse {
    /// What was generated first.
    pub generation: Generation,
    /// What ran last and its rows.
    pub evaluation: Evaluation,
}

/// `agentResponse` of generation only.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct GenerationAgentResponse {
    /// What was generated.
    pub generation: Generation,
}

/// `agentResponse` of evaluation only.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct EvaluationAgentResponse {
    /// What ran last and its rows.
    pub evaluation: Evaluation,
}

/// A successful SQL Query Engine response.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InferenceResponse<A> {
    /// Always 200.
    pub code: u16,
    /// "[ {chatID} | SQL Query Engine ]: Inference executed successfully." (and the like).
    pub status: String,
    /// The session, as given in the path.
    #[serde(rename = "chatID")]
    pub chat_id: String,
    /// What the pipeline produced.
    pub agent_response: A,
    /// The request's `extraPayload`, unchanged.
    #[schema(value_type = Option<Object>)]
    pub extra_payload: Value,
}

impl<A> InferenceResponse<A> {
    /// A 200 response of `route` for `chat_id`.
    pub fn new(route: Route, chat_id: String, agent_response: A, extra_payload: Value) -> Self {
        Self {
            code: 200,
            status: route.success_status(&chat_id),
            chat_id,
            agent_response,
            extra_payload,
        }
    }
}
