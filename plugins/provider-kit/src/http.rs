//! Requests through the host's `http` import.
//!
//! A provider names the endpoint `default` (the operator's base URL) and a path; it never sees a
//! host name it could change or a key it could leak. The API key is written as the placeholder
//! [`API_KEY`], which the host fills in for the endpoint the key is bound to.

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::bindings::quarry::plugin::http::{self as wit, BodyStream, Method, Request};
use crate::{ProviderConfig, ProviderError, errors};

/// The endpoint the operator configured as the provider's base URL.
pub const DEFAULT_ENDPOINT: &str = "default";

/// The placeholder the host replaces with the configured API key.
pub const API_KEY: &str = "{secret:api_key}";

/// How much of a failed streaming response is read to find the API's error message.
const ERROR_BODY_LIMIT: usize = 64 << 10;

/// Request headers, built fluently.
#[derive(Debug, Clone, Default)]
pub struct Headers(Vec<(String, String)>);

impl Headers {
    /// `content-type: application/json` and `accept: application/json`.
    pub fn json() -> Self {
        Self(vec![("content-type".into(), "application/json".into()), ("accept".into(), "application/json".into())])
    }

    /// Add one header.
    pub fn with(mut self, name: &str, value: &str) -> Self {
        self.0.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
        self.0.push((name.to_string(), value.to_string()));
        self
    }

    /// `authorization: Bearer <key>` when the operator configured a key.
    pub fn bearer(self, cfg: &ProviderConfig) -> Self {
        if cfg.has_api_key { self.with("authorization", &format!("Bearer {API_KEY}")) } else { self }
    }

    /// `<name>: <key>` (for example `x-api-key`) when the operator configured a key.
    pub fn api_key_in(self, name: &str, cfg: &ProviderConfig) -> Self {
        if cfg.has_api_key { self.with(name, API_KEY) } else { self }
    }

    /// Ask for a streamed body.
    pub fn event_stream(self) -> Self {
        self.with("accept", "text/event-stream")
    }
}

/// A whole response.
#[derive(Debug, Clone)]
pub struct Response {
    /// HTTP status.
    pub status: u16,
    /// Headers, names lower-case.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// Parse the body as `T`, or say it is malformed.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, ProviderError> {
        serde_json::from_slice(&self.body).map_err(|e| errors::malformed("the API's answer is not the documented JSON", e))
    }
}

fn request(method: Method, path: &str, headers: Headers, body: Vec<u8>) -> Request {
    Request { endpoint: DEFAULT_ENDPOINT.into(), method, path: path.into(), headers: headers.0, body }
}

fn send(req: &Request) -> Result<Response, ProviderError> {
    let (head, body) = wit::send(req).map_err(errors::from_http)?;
    if !(200..300).contains(&head.status) {
        return Err(errors::from_status(head.status, &head.headers, &body));
    }
    Ok(Response { status: head.status, headers: head.headers, body })
}

/// `GET path` on the default endpoint; a non-2xx answer becomes its [`ProviderError`].
pub fn get(path: &str, headers: Headers) -> Result<Response, ProviderError> {
    send(&request(Method::Get, path, headers, Vec::new()))
}

/// `POST path` with a JSON body; a non-2xx answer becomes its [`ProviderError`].
pub fn post_json(path: &str, headers: Headers, body: &Value) -> Result<Response, ProviderError> {
    let bytes = serde_json::to_vec(body).map_err(|e| ProviderError::Internal(format!("cannot encode the request: {e}")))?;
    send(&request(Method::Post, path, headers, bytes))
}

/// `POST path` with a JSON body and read the answer as a stream. A non-2xx answer is read (up to
/// 64 KiB) and becomes its [`ProviderError`].
pub fn post_json_streaming(path: &str, headers: Headers, body: &Value) -> Result<Streaming, ProviderError> {
    let bytes = serde_json::to_vec(body).map_err(|e| ProviderError::Internal(format!("cannot encode the request: {e}")))?;
    let (head, body) = wit::send_streaming(&request(Method::Post, path, headers, bytes)).map_err(errors::from_http)?;
    let mut stream = Streaming { body };
    if !(200..300).contains(&head.status) {
        let mut text = Vec::new();
        while text.len() < ERROR_BODY_LIMIT {
            match stream.next_chunk() {
                Ok(Some(chunk)) => text.extend_from_slice(&chunk),
                // The status says what happened even if the body cannot be read in full.
                Ok(None) | Err(_) => break,
            }
        }
        return Err(errors::from_status(head.status, &head.headers, &text));
    }
    Ok(stream)
}

/// A response body arriving chunk by chunk.
pub struct Streaming {
    body: BodyStream,
}

impl Streaming {
    /// The next chunk as the network delivered it; `None` at the end.
    pub fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, ProviderError> {
        self.body.next().map_err(errors::from_http)
    }
}
