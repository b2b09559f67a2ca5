//! Turning what an LLM API answered (an HTTP status, headers and an error body) and what the host
//! reported (an `http-error`) into the typed [`ProviderError`] the host understands.
//!
//! The mapping is the same for every API, with the error body read in whichever of the common
//! shapes it comes: OpenAI `{"error":{"message","type","code"}}`, Anthropic
//! `{"type":"error","error":{"type","message"}}`, Ollama `{"error":"…"}`, or `{"message"|"detail":…}`.

use serde_json::Value;

use crate::ProviderError;
use crate::bindings::quarry::plugin::http::HttpError;

/// Longest API message passed on; error bodies can be whole HTML pages.
pub const MAX_MESSAGE_CHARS: usize = 500;

/// What an API said in an error body.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApiError {
    /// The human-readable message, if the body had one.
    pub message: Option<String>,
    /// The error's type (`invalid_request_error`, `rate_limit_error`, …).
    pub kind: Option<String>,
    /// The error's code (`context_length_exceeded`, `model_not_found`, …).
    pub code: Option<String>,
}

impl ApiError {
    /// Read an error body in any of the common shapes; a body that is not JSON becomes its text.
    pub fn parse(body: &[u8]) -> Self {
        let Ok(value) = serde_json::from_slice::<Value>(body) else {
            let text = String::from_utf8_lossy(body).trim().to_string();
            return Self { message: (!text.is_empty()).then_some(text), ..Self::default() };
        };
        Self::from_value(&value)
    }

    /// Read an error out of a parsed JSON value (also used for errors inside a stream).
    pub fn from_value(value: &Value) -> Self {
        let text = |v: Option<&Value>| -> Option<String> {
            match v? {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            }
        };
        match value.get("error") {
            Some(Value::Object(_)) => {
                let e = &value["error"];
                Self {
                    message: text(e.get("message")),
                    kind: text(e.get("type")),
                    code: text(e.get("code")),
                }
            }
            Some(Value::String(s)) => Self { message: Some(s.clone()), kind: text(value.get("type")), code: None },
            _ => Self {
                message: text(value.get("message")).or_else(|| text(value.get("detail"))),
                kind: text(value.get("type")),
                code: text(value.get("code")),
            },
        }
    }

    /// The message for people, cut to [`MAX_MESSAGE_CHARS`], or a fallback naming the status.
    pub fn describe(&self, status: u16) -> String {
        let mut msg = match (&self.message, &self.kind) {
            (Some(m), _) => m.clone(),
            (None, Some(k)) => k.clone(),
            (None, None) => format!("HTTP {status}"),
        };
        truncate(&mut msg, MAX_MESSAGE_CHARS);
        msg
    }

    fn mentions(&self, needles: &[&str]) -> bool {
        [&self.message, &self.kind, &self.code]
            .into_iter()
            .flatten()
            .map(|s| s.to_ascii_lowercase())
            .any(|s| needles.iter().any(|n| s.contains(n)))
    }

    /// Whether the API says the prompt does not fit the model's context window.
    pub fn is_context_overflow(&self) -> bool {
        self.mentions(&[
            "context_length",
            "context length",
            "context window",
            "maximum context",
            "prompt is too long",
            "too many tokens",
            "request_too_large",
            "reduce the length",
        ])
    }

    /// Whether the API says the model does not exist (or this key cannot use it).
    pub fn is_model_missing(&self) -> bool {
        self.mentions(&["model_not_found", "model not found", "does not exist", "no such model", "not found, try pulling", "unknown model", "not_found_error"])
            || (self.mentions(&["model"]) && self.mentions(&["not found", "not exist", "not available"]))
    }
}

/// Map a non-2xx answer to a [`ProviderError`].
pub fn from_status(status: u16, headers: &[(String, String)], body: &[u8]) -> ProviderError {
    let api = ApiError::parse(body);
    let msg = api.describe(status);
    match status {
        401 | 403 => ProviderError::BadCredentials(msg),
        404 if api.is_model_missing() => ProviderError::ModelNotFound(msg),
        // A 404 that does not talk about a model is usually a base URL with a wrong path.
        404 => ProviderError::Upstream((status, format!("{msg} (not found: is the base URL right?)"))),
        408 => ProviderError::Timeout,
        413 => ProviderError::ContextTooLong(msg),
        // OpenAI answers 429 also when the account has no credit left; waiting will not help.
        429 if api.mentions(&["insufficient_quota"]) => ProviderError::Upstream((status, msg)),
        429 => ProviderError::RateLimited(retry_after_ms(headers)),
        400 | 422 if api.is_context_overflow() => ProviderError::ContextTooLong(msg),
        400 | 422 if api.is_model_missing() => ProviderError::ModelNotFound(msg),
        _ => ProviderError::Upstream((status, msg)),
    }
}

/// Map an error the API reported inside a `200` stream (OpenAI `data: {"error":…}`, Anthropic
/// `event: error`, Ollama `{"error":…}` lines).
pub fn from_stream_error(value: &Value) -> ProviderError {
    let api = ApiError::from_value(value);
    let msg = api.describe(200);
    if api.is_context_overflow() {
        ProviderError::ContextTooLong(msg)
    } else if api.mentions(&["rate_limit", "rate limit"]) {
        ProviderError::RateLimited(None)
    } else if api.mentions(&["overloaded"]) {
        ProviderError::Upstream((529, msg))
    } else if api.is_model_missing() {
        ProviderError::ModelNotFound(msg)
    } else if api.mentions(&["authentication", "invalid_api_key", "permission"]) {
        ProviderError::BadCredentials(msg)
    } else {
        ProviderError::Upstream((200, msg))
    }
}

/// The server's retry delay in milliseconds: `retry-after-ms`, else `retry-after` in seconds.
/// (The host turns an HTTP-date `retry-after` into `retry-after-ms` before the plugin sees it.)
pub fn retry_after_ms(headers: &[(String, String)]) -> Option<u32> {
    let get = |name: &str| headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.trim());
    if let Some(ms) = get("retry-after-ms").and_then(|v| v.parse::<f64>().ok()) {
        return Some(clamp_ms(ms));
    }
    get("retry-after").and_then(|v| v.parse::<f64>().ok()).map(|s| clamp_ms(s * 1000.0))
}

fn clamp_ms(ms: f64) -> u32 {
    if ms.is_finite() && ms > 0.0 { ms.min(u32::MAX as f64) as u32 } else { 0 }
}

/// Map a transport failure the host reported.
pub fn from_http(err: HttpError) -> ProviderError {
    match err {
        HttpError::Denied(m) => ProviderError::Denied(m),
        HttpError::Timeout => ProviderError::Timeout,
        HttpError::TooLarge(cap) => {
            ProviderError::MalformedResponse(format!("the response was larger than the host's cap of {cap} bytes and was cut"))
        }
        HttpError::Connect(m) => ProviderError::Upstream((0, format!("cannot reach the API: {m}"))),
        HttpError::Invalid(m) => ProviderError::Internal(format!("the host refused the request as malformed: {m}")),
        HttpError::Cancelled => ProviderError::Cancelled,
    }
}

/// A body that did not parse as the API's documented shape.
pub fn malformed(what: &str, err: impl std::fmt::Display) -> ProviderError {
    let mut msg = format!("{what}: {err}");
    truncate(&mut msg, MAX_MESSAGE_CHARS);
    ProviderError::MalformedResponse(msg)
}

/// Cut `s` to at most `max` characters, marking the cut.
pub fn truncate(s: &mut String, max: usize) {
    if let Some((idx, _)) = s.char_indices().nth(max) {
        s.truncate(idx);
        s.push('…');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn maps_each_status_and_body_to_its_error() {
        let openai_ctx = br#"{"error":{"message":"This model's maximum context length is 8192 tokens.","type":"invalid_request_error","code":"context_length_exceeded"}}"#;
        assert!(matches!(from_status(400, &[], openai_ctx), ProviderError::ContextTooLong(m) if m.contains("8192")));
        let anthropic_ctx = br#"{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: 210000 tokens > 200000 maximum"}}"#;
        assert!(matches!(from_status(400, &[], anthropic_ctx), ProviderError::ContextTooLong(_)));
        let ollama_missing = br#"{"error":"model \"llama9\" not found, try pulling it first"}"#;
        assert!(matches!(from_status(404, &[], ollama_missing), ProviderError::ModelNotFound(m) if m.contains("llama9")));
        assert!(matches!(from_status(404, &[], b"<html>nope</html>"), ProviderError::Upstream((404, m)) if m.contains("base URL")));
        assert!(matches!(from_status(401, &[], br#"{"error":{"message":"Incorrect API key"}}"#), ProviderError::BadCredentials(m) if m == "Incorrect API key"));
        assert!(matches!(from_status(429, &h(&[("Retry-After", "3")]), b"{}"), ProviderError::RateLimited(Some(3000))));
        assert!(matches!(from_status(429, &h(&[("retry-after-ms", "250.5"), ("retry-after", "9")]), b"{}"), ProviderError::RateLimited(Some(250))));
        assert!(matches!(from_status(429, &[], br#"{"error":{"code":"insufficient_quota","message":"You exceeded your quota"}}"#), ProviderError::Upstream((429, _))));
        assert!(matches!(from_status(529, &[], br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#), ProviderError::Upstream((529, m)) if m == "Overloaded"));
    }

    #[test]
    fn long_bodies_are_cut() {
        let body = "x".repeat(5000);
        let ProviderError::Upstream((500, m)) = from_status(500, &[], body.as_bytes()) else { panic!() };
        assert!(m.chars().count() <= MAX_MESSAGE_CHARS + 1);
    }
}
