//! Request bodies checked the way FastAPI (pydantic) checks them, so a bad request gets the 422
//! body SQL Query Engine sends — `{"detail": [{"type", "loc", "msg", "input"}, …]}`, every
//! problem at once — and never a 500.
//!
//! Each request type implements [`FromJson`] with a [`Fields`] reader; handlers take it through
//! the [`Checked`] extractor.

use axum::Json;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Serialize;
use serde_json::{Map, Value, json};

/// One problem with a request, in pydantic's terms.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct FieldError {
    /// pydantic's error type: `missing`, `string_type`, `int_parsing`, `json_invalid`, …
    #[serde(rename = "type")]
    pub kind: String,
    /// Where: `["body", "basePrompt"]`, `["query", "postgrePort"]`, `["body", "messages", 0, "role"]`.
    pub loc: Vec<Value>,
    /// For people: "Field required", "Input should be a valid string", …
    pub msg: String,
    /// The offending input (for a missing field: the object it is missing from).
    pub input: Value,
    /// Extra context (the decoder's message for malformed JSON).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ctx: Option<Value>,
}

impl FieldError {
    /// An error of `kind` at `loc`.
    pub fn new(kind: &str, loc: Vec<Value>, msg: impl Into<String>, input: Value) -> Self {
        Self {
            kind: kind.to_string(),
            loc,
            msg: msg.into(),
            input,
            ctx: None,
        }
    }
}

/// The 422 body: every problem found with one request.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ValidationErrorBody {
    /// The problems.
    pub detail: Vec<FieldError>,
}

/// A request that failed validation; answers 422 with a [`ValidationErrorBody`].
#[derive(Debug, thiserror::Error)]
#[error("invalid request: {}", summary(.0))]
pub struct Invalid(pub Vec<FieldError>);

fn summary(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(|e| format!("{} at {}", e.msg, Value::from(e.loc.clone())))
        .collect::<Vec<_>>()
        .join("; ")
}

impl IntoResponse for Invalid {
    fn into_response(self) -> Response {
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(ValidationErrorBody { detail: self.0 }),
        )
            .into_response()
    }
}

/// A request type read from a JSON body.
pub trait FromJson: Sized {
    /// Check `body` and build the request, or say everything that is wrong with it.
    fn from_json(body: &Value) -> Result<Self, Invalid>;
}

/// Extractor: the body parsed as JSON and checked by `T`'s [`FromJson`]. Whatever the
/// `Content-Type`, the body is read as JSON (clients that forget the header still work).
#[derive(Debug)]
pub struct Checked<T>(pub T);

/// Why a [`Checked`] body was refused.
#[derive(Debug, thiserror::Error)]
pub enum BodyRejection {
    /// The body could not be read (too large: 413).
    #[error(transparent)]
    Read(#[from] BytesRejection),
    /// Malformed JSON or invalid fields (422).
    #[error(transparent)]
    Invalid(#[from] Invalid),
}

impl IntoResponse for BodyRejection {
    fn into_response(self) -> Response {
        match self {
            BodyRejection::Read(e) => e.into_response(),
            BodyRejection::Invalid(e) => e.into_response(),
        }
    }
}

impl<S: Send + Sync, T: FromJson> FromRequest<S> for Checked<T> {
    type Rejection = BodyRejection;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state).await?;
        let value = parse_json(&bytes)?;
        Ok(Checked(T::from_json(&value)?))
    }
}

/// Parse a body as JSON: an empty body is a missing body, malformed JSON is `json_invalid` with
/// the position of the problem, as FastAPI reports them.
pub fn parse_json(bytes: &[u8]) -> Result<Value, Invalid> {
    if bytes.is_empty() {
        return Err(Invalid(vec![FieldError::new(
            "missing",
            vec!["body".into()],
            "Field required",
            Value::Null,
        )]));
    }
    serde_json::from_slice(bytes).map_err(|e| {
        let message = e.to_string();
        let reason = message
            .rsplit_once(" at line ")
            .map_or(message.as_str(), |(m, _)| m)
            .to_string();
        let mut error = FieldError::new(
            "json_invalid",
            vec!["body".into(), offset(bytes, e.line(), e.column()).into()],
            "JSON decode error",
            json!({}),
        );
        error.ctx = Some(json!({ "error": reason }));
        Invalid(vec![error])
    })
}

/// Byte offset of a 1-based line and column (serde_json's position) in `bytes`.
fn offset(bytes: &[u8], line: usize, column: usize) -> usize {
    let line_start: usize = bytes
        .split(|b| *b == b'\n')
        .take(line.saturating_sub(1))
        .map(|l| l.len() + 1)
        .sum();
    (line_start + column.saturating_sub(1)).min(bytes.len())
}

/// Reads the fields of one JSON object, recording every problem instead of stopping at the
/// first. Call [`Fields::finish`] before using what was read: a field with a problem reads as
/// its type's empty value.
#[derive(Debug)]
pub struct Fields<'a> {
    value: &'a Value,
    object: Option<&'a Map<String, Value>>,
    loc: Vec<Value>,
    errors: Vec<FieldError>,
}

impl<'a> Fields<'a> {
    /// The top-level body (errors located under `"body"`).
    pub fn body(value: &'a Value) -> Self {
        Self::at(value, vec!["body".into()])
    }

    /// An object nested at `loc` (for example `["body", "messages", 0]`).
    pub fn at(value: &'a Value, loc: Vec<Value>) -> Self {
        let mut fields = Self {
            value,
            object: value.as_object(),
            loc,
            errors: Vec::new(),
        };
        if fields.object.is_none() {
            fields.errors.push(FieldError::new(
                "model_attributes_type",
                fields.loc.clone(),
                "Input should be a valid dictionary or object to extract fields from",
                value.clone(),
            ));
        }
        fields
    }

    /// Where a field of this object is.
    pub fn loc_of(&self, name: &str) -> Vec<Value> {
        let mut loc = self.loc.clone();
        loc.push(name.into());
        loc
    }

    /// Where item `index` of the list field `name` is.
    pub fn loc_of_item(&self, name: &str, index: usize) -> Vec<Value> {
        let mut loc = self.loc_of(name);
        loc.push(index.into());
        loc
    }

    /// The field's value; `None` when absent (or when this is not an object).
    pub fn get(&self, name: &str) -> Option<&'a Value> {
        self.object.and_then(|o| o.get(name))
    }

    /// Record a problem with field `name`.
    pub fn error(&mut self, kind: &str, name: &str, msg: impl Into<String>, input: Value) {
        let loc = self.loc_of(name);
        self.errors.push(FieldError::new(kind, loc, msg, input));
    }

    /// Record a problem located anywhere.
    pub fn push(&mut self, error: FieldError) {
        self.errors.push(error);
    }

    /// Take over the problems of a nested reader.
    pub fn absorb(&mut self, nested: Fields<'_>) {
        self.errors.extend(nested.errors);
    }

    /// Record that a required field is missing (only when this is an object at all).
    fn missing(&mut self, name: &str) {
        if self.object.is_some() {
            self.error("missing", name, "Field required", self.value.clone());
        }
    }

    /// A required string; `null` or another type is an error.
    pub fn required_string(&mut self, name: &str) -> String {
        match self.get(name) {
            None => {
                self.missing(name);
                String::new()
            }
            Some(v) => self.string(name, v).unwrap_or_default(),
        }
    }

    /// An optional string (`null` reads as absent).
    pub fn optional_string(&mut self, name: &str) -> Option<String> {
        match self.get(name) {
            None | Some(Value::Null) => None,
            Some(v) => self.string(name, v),
        }
    }

    fn string(&mut self, name: &str, v: &Value) -> Option<String> {
        match v {
            Value::String(s) => Some(s.clone()),
            other => {
                self.error(
                    "string_type",
                    name,
                    "Input should be a valid string",
                    other.clone(),
                );
                None
            }
        }
    }

    /// An optional non-negative count. Like pydantic's lax mode it takes integers, integral
    /// floats and numeric strings; negative values read as 0, huge ones as `u32::MAX`.
    pub fn optional_count(&mut self, name: &str) -> Option<u32> {
        let v = self.get(name)?;
        let n: Option<i128> = match v {
            Value::Null => return None,
            Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
                (Some(i), _, _) => Some(i.into()),
                (None, Some(u), _) => Some(u.into()),
                (None, None, Some(f)) if f.fract() == 0.0 && f.is_finite() => Some(f as i128),
                _ => {
                    self.error(
                        "int_from_float",
                        name,
                        "Input should be a valid integer, got a number with a fractional part",
                        v.clone(),
                    );
                    return None;
                }
            },
            Value::String(s) => match s.trim().parse::<i128>() {
                Ok(i) => Some(i),
                Err(_) => {
                    self.error(
                        "int_parsing",
                        name,
                        "Input should be a valid integer, unable to parse string as an integer",
                        v.clone(),
                    );
                    return None;
                }
            },
            other => {
                self.error(
                    "int_type",
                    name,
                    "Input should be a valid integer",
                    other.clone(),
                );
                return None;
            }
        };
        n.map(|i| i.clamp(0, u32::MAX.into()) as u32)
    }

    /// An optional boolean; like pydantic's lax mode it also takes `0`/`1` and the usual words.
    pub fn optional_bool(&mut self, name: &str) -> Option<bool> {
        let v = self.get(name)?;
        match v {
            Value::Null => None,
            Value::Bool(b) => Some(*b),
            Value::Number(n) if n.as_i64() == Some(0) => Some(false),
            Value::Number(n) if n.as_i64() == Some(1) => Some(true),
            Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" | "y" | "on" | "t" => Some(true),
                "false" | "0" | "no" | "n" | "off" | "f" => Some(false),
                _ => {
                    self.error(
                        "bool_parsing",
                        name,
                        "Input should be a valid boolean, unable to interpret input",
                        v.clone(),
                    );
                    None
                }
            },
            other => {
                self.error(
                    "bool_type",
                    name,
                    "Input should be a valid boolean",
                    other.clone(),
                );
                None
            }
        }
    }

    /// A required list.
    pub fn required_list(&mut self, name: &str) -> &'a [Value] {
        match self.get(name) {
            None => {
                self.missing(name);
                &[]
            }
            Some(Value::Array(items)) => items,
            Some(other) => {
                self.error(
                    "list_type",
                    name,
                    "Input should be a valid list",
                    other.clone(),
                );
                &[]
            }
        }
    }

    /// Any JSON, untouched (`null` when absent).
    pub fn any(&self, name: &str) -> Value {
        self.get(name).cloned().unwrap_or(Value::Null)
    }

    /// `Ok` when nothing was wrong, else every problem recorded.
    pub fn finish(self) -> Result<(), Invalid> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(Invalid(self.errors))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_every_problem_with_its_location() {
        let body = json!({"retryCount": "x", "schemaExamples": 2.5, "stream": "maybe"});
        let mut f = Fields::body(&body);
        assert_eq!(f.required_string("basePrompt"), "");
        assert_eq!(f.optional_count("retryCount"), None);
        assert_eq!(f.optional_count("schemaExamples"), None);
        assert_eq!(f.optional_bool("stream"), None);
        let Err(Invalid(errors)) = f.finish() else {
            panic!("expected errors")
        };
        let kinds: Vec<&str> = errors.iter().map(|e| e.kind.as_str()).collect();
        assert_eq!(
            kinds,
            ["missing", "int_parsing", "int_from_float", "bool_parsing"]
        );
        assert_eq!(errors[0].loc, vec![json!("body"), json!("basePrompt")]);
        assert_eq!(
            errors[0].input, body,
            "a missing field reports the object it is missing from"
        );
    }

    #[test]
    fn lax_numbers_and_nulls() {
        let body = json!({"a": "7", "b": 3.0, "c": -2, "d": null, "e": 1});
        let mut f = Fields::body(&body);
        assert_eq!(f.optional_count("a"), Some(7));
        assert_eq!(f.optional_count("b"), Some(3));
        assert_eq!(f.optional_count("c"), Some(0));
        assert_eq!(f.optional_count("d"), None);
        assert_eq!(f.optional_bool("e"), Some(true));
        assert!(f.finish().is_ok());
    }

    #[test]
    fn malformed_and_missing_bodies() {
        let Err(Invalid(e)) = parse_json(b"{\"a\": }") else {
            panic!()
        };
        assert_eq!(e[0].kind, "json_invalid");
        assert_eq!(e[0].loc, vec![json!("body"), json!(6)]);
        assert!(e[0].ctx.is_some());
        let Err(Invalid(e)) = parse_json(b"") else {
            panic!()
        };
        assert_eq!(
            (e[0].kind.as_str(), e[0].loc.clone()),
            ("missing", vec![json!("body")])
        );
        let list = json!([1]);
        let Err(Invalid(e)) = Fields::body(&list).finish() else {
            panic!()
        };
        assert_eq!(e[0].kind, "model_attributes_type");
    }
}
