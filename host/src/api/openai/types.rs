//! The OpenAI request and response bodies Quarry speaks on `/v1`: what chat clients (OpenWebUI,
//! the OpenAI SDKs, LangChain) send and expect, and SQL Query Engine's extras (`chat_id`).

use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::api::validation::{FieldError, Fields, FromJson, Invalid};
use crate::pipeline::answer::TokenUsage;

/// A message's content: a string, or OpenAI's list of content parts.
#[derive(Debug, Clone, PartialEq, ToSchema)]
#[serde(untagged)]
pub enum MessageContent {
    /// Plain text.
    Text(String),
    /// Content parts; only the `text` ones are read.
    Parts(Vec<ContentPart>),
}

impl MessageContent {
    /// The text: the string, or the text parts joined by newlines.
    pub fn text(&self) -> String {
        match self {
            MessageContent::Text(s) => s.clone(),
            MessageContent::Parts(parts) => parts
                .iter()
                .filter(|p| p.kind == "text")
                .filter_map(|p| p.text.as_deref())
                .collect::<Vec<_>>()
                .join("\n"),
        }
    }
}

/// One content part (`{"type": "text", "text": "…"}`; images and the like are skipped).
#[derive(Debug, Clone, PartialEq, ToSchema)]
pub struct ContentPart {
    /// `text`, `image_url`, …
    #[schema(rename = "type")]
    pub kind: String,
    /// The text of a `text` part.
    pub text: Option<String>,
}

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, ToSchema)]
pub struct ChatMessage {
    /// `system`, `user`, `assistant`, …
    pub role: String,
    /// What was said (`null` reads as empty).
    pub content: MessageContent,
}

/// Body of `POST /v1/chat/completions`.
#[derive(Debug, Clone, PartialEq, ToSchema)]
pub struct ChatCompletionRequest {
    /// Model identifier; ignored (the configured pipeline answers).
    #[schema(example = "SQLBot")]
    pub model: String,
    /// The conversation; the last `user` message is the question.
    pub messages: Vec<ChatMessage>,
    /// Stream the reply as server-sent events (default true).
    #[schema(default = true)]
    pub stream: Option<bool>,
    /// Session id (OpenWebUI sends one); default: derived from the first user message.
    pub chat_id: Option<String>,
    /// Ignored: the temperature is the server's `LLM_TEMPERATURE`.
    pub temperature: Option<f64>,
    /// Ignored.
    pub max_tokens: Option<u64>,
}

impl FromJson for ChatCompletionRequest {
    fn from_json(body: &Value) -> Result<Self, Invalid> {
        let mut f = Fields::body(body);
        let model = f.required_string("model");
        let items = f.required_list("messages");
        let mut messages = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let mut m = Fields::at(item, f.loc_of_item("messages", i));
            let role = m.required_string("role");
            let content = message_content(&mut m);
            f.absorb(m);
            messages.push(ChatMessage { role, content });
        }
        let request = Self {
            model,
            messages,
            stream: f.optional_bool("stream"),
            chat_id: f.optional_string("chat_id"),
            temperature: None,
            max_tokens: None,
        };
        f.finish().map(|()| request)
    }
}

/// A message's `content`: string, list of parts, or `null`/absent (empty).
fn message_content(m: &mut Fields<'_>) -> MessageContent {
    match m.get("content") {
        None | Some(Value::Null) => MessageContent::Text(String::new()),
        Some(Value::String(s)) => MessageContent::Text(s.clone()),
        Some(Value::Array(parts)) => MessageContent::Parts(
            parts
                .iter()
                .filter_map(|p| {
                    let kind = p.get("type")?.as_str()?.to_string();
                    Some(ContentPart {
                        kind,
                        text: p.get("text").and_then(Value::as_str).map(str::to_string),
                    })
                })
                .collect(),
        ),
        Some(other) => {
            m.error(
                "string_type",
                "content",
                "Input should be a valid string",
                other.clone(),
            );
            MessageContent::Text(String::new())
        }
    }
}

impl ChatCompletionRequest {
    /// The texts of the user messages, in order.
    pub fn user_texts(&self) -> impl Iterator<Item = String> + '_ {
        self.messages
            .iter()
            .filter(|m| m.role == "user")
            .map(|m| m.content.text())
    }

    /// The question: the last user message.
    pub fn question(&self) -> Option<String> {
        self.messages
            .iter()
            .rev()
            .find(|m| m.role == "user")
            .map(|m| m.content.text())
    }
}

/// Body of `POST /v1/completions` (legacy text completions).
#[derive(Debug, Clone, PartialEq, ToSchema)]
pub struct CompletionRequest {
    /// Model identifier; ignored.
    #[schema(example = "SQLBot")]
    pub model: String,
    /// The question (for a list of strings, the first).
    #[schema(value_type = String, example = "How many users signed up in the last 7 days?")]
    pub prompt: String,
    /// Stream the reply as server-sent events (default false).
    #[schema(default = false)]
    pub stream: Option<bool>,
    /// Ignored.
    pub temperature: Option<f64>,
    /// Ignored.
    pub max_tokens: Option<u64>,
}

impl FromJson for CompletionRequest {
    fn from_json(body: &Value) -> Result<Self, Invalid> {
        let mut f = Fields::body(body);
        let model = f.required_string("model");
        let prompt = match f.get("prompt") {
            Some(Value::Array(items)) => match items.first() {
                Some(Value::String(s)) => s.clone(),
                Some(other) => {
                    let loc = f.loc_of_item("prompt", 0);
                    f.push(FieldError::new(
                        "string_type",
                        loc,
                        "Input should be a valid string",
                        other.clone(),
                    ));
                    String::new()
                }
                None => {
                    f.error(
                        "too_short",
                        "prompt",
                        "List should have at least 1 item after validation, not 0",
                        Value::Array(vec![]),
                    );
                    String::new()
                }
            },
            _ => f.required_string("prompt"),
        };
        let request = Self {
            model,
            prompt,
            stream: f.optional_bool("stream"),
            temperature: None,
            max_tokens: None,
        };
        f.finish().map(|()| request)
    }
}

/// `GET /v1/models`.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ModelList {
    /// Always `list`.
    pub object: &'static str,
    /// The one model: the SQL engine.
    pub data: Vec<Model>,
}

/// A model.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Model {
    /// `COMPLETIONS_MODEL_NAME` (default `BOT_NAME`, default `SQLBot`).
    pub id: String,
    /// Always `model`.
    pub object: &'static str,
    /// When the server started (Unix seconds).
    pub created: u64,
    /// Always `sql-query-engine`.
    pub owned_by: &'static str,
}

/// Token counts of one reply.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct Usage {
    /// Prompt tokens across every LLM call.
    pub prompt_tokens: u64,
    /// Generated tokens across every LLM call.
    pub completion_tokens: u64,
    /// Both.
    pub total_tokens: u64,
}

impl From<TokenUsage> for Usage {
    fn from(u: TokenUsage) -> Self {
        Self {
            prompt_tokens: u.input_tokens,
            completion_tokens: u.output_tokens,
            total_tokens: u.total(),
        }
    }
}

/// A non-streamed chat reply.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ChatCompletion {
    /// `chatcmpl-…`.
    pub id: String,
    /// Always `chat.completion`.
    pub object: &'static str,
    /// Unix seconds.
    pub created: u64,
    /// The model name.
    pub model: String,
    /// One choice.
    pub choices: Vec<ChatChoice>,
    /// Tokens used.
    pub usage: Usage,
}

/// The one choice of a chat reply.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ChatChoice {
    /// Always 0.
    pub index: u32,
    /// The reply.
    pub message: AssistantMessage,
    /// Always `stop`.
    pub finish_reason: &'static str,
}

/// The reply message: progress in `<think>…</think>`, then the answer in markdown.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct AssistantMessage {
    /// Always `assistant`.
    pub role: &'static str,
    /// The text.
    pub content: String,
}

/// A non-streamed text completion.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct TextCompletion {
    /// `cmpl-…`.
    pub id: String,
    /// Always `text_completion`.
    pub object: &'static str,
    /// Unix seconds.
    pub created: u64,
    /// The model name.
    pub model: String,
    /// One choice.
    pub choices: Vec<TextChoice>,
    /// Tokens used.
    pub usage: Usage,
}

/// One choice of a text completion (also the shape of a streamed text chunk's choice).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct TextChoice {
    /// The text (of this piece, when streamed).
    pub text: String,
    /// Always 0.
    pub index: u32,
    /// Always `null`.
    #[schema(value_type = Option<Object>)]
    pub logprobs: Option<Value>,
    /// `stop` on the last piece, else `null`.
    pub finish_reason: Option<&'static str>,
}

/// One streamed chat event (`data: {…}`).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ChatCompletionChunk {
    /// `chatcmpl-…`, the same for every chunk of a reply.
    pub id: String,
    /// Always `chat.completion.chunk`.
    pub object: &'static str,
    /// Unix seconds.
    pub created: u64,
    /// The model name.
    pub model: String,
    /// One choice.
    pub choices: Vec<ChunkChoice>,
}

/// The one choice of a chat chunk.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ChunkChoice {
    /// Always 0.
    pub index: u32,
    /// What this chunk adds (empty on the last one).
    pub delta: Delta,
    /// `stop` on the last chunk, else `null`.
    pub finish_reason: Option<&'static str>,
}

/// A piece of the reply.
#[derive(Debug, Clone, Default, PartialEq, Serialize, ToSchema)]
pub struct Delta {
    /// `assistant` on the first chunk only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<&'static str>,
    /// The text this chunk adds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
}

/// One streamed text-completion event (`data: {…}`).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct TextCompletionChunk {
    /// `cmpl-…`, the same for every chunk of a reply.
    pub id: String,
    /// Always `text_completion`.
    pub object: &'static str,
    /// Unix seconds.
    pub created: u64,
    /// The model name.
    pub model: String,
    /// One choice.
    pub choices: Vec<TextChoice>,
}
