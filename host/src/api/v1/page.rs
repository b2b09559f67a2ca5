//! Paging for list routes: `?limit&offset` in, `{items, total, limit, offset}` out.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use serde::Serialize;
use serde_json::Value;

use crate::api::validation::{FieldError, Invalid};

/// Items per page unless the client asks otherwise.
pub const DEFAULT_LIMIT: i64 = 50;
/// Most items per page.
pub const MAX_LIMIT: i64 = 200;

/// A page request, read from the query string (`limit` 1..=200, default 50; `offset` ≥ 0).
/// Out-of-range or non-numeric values are a 422 naming the parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageParams {
    /// Items to return at most.
    pub limit: i64,
    /// Items to skip.
    pub offset: i64,
}

impl Default for PageParams {
    fn default() -> Self {
        Self { limit: DEFAULT_LIMIT, offset: 0 }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for PageParams {
    type Rejection = Invalid;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let mut page = PageParams::default();
        let mut errors = Vec::new();
        let query = parts.uri.query().unwrap_or("");
        for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
            let (slot, min, max) = match key.as_ref() {
                "limit" => (&mut page.limit, 1, MAX_LIMIT),
                "offset" => (&mut page.offset, 0, i64::MAX),
                _ => continue,
            };
            match value.trim().parse::<i64>() {
                Ok(n) if (min..=max).contains(&n) => *slot = n,
                Ok(_) => errors.push(FieldError::new(
                    "value_error",
                    vec!["query".into(), Value::from(key.as_ref())],
                    format!("Input should be between {min} and {max}"),
                    Value::from(value.as_ref()),
                )),
                Err(_) => errors.push(FieldError::new(
                    "int_parsing",
                    vec!["query".into(), Value::from(key.as_ref())],
                    "Input should be a valid integer, unable to parse string as an integer",
                    Value::from(value.as_ref()),
                )),
            }
        }
        if errors.is_empty() { Ok(page) } else { Err(Invalid(errors)) }
    }
}

/// One page of a list.
#[derive(Debug, Clone, Serialize)]
pub struct Paginated<T> {
    /// The items on this page.
    pub items: Vec<T>,
    /// Items in the whole list.
    pub total: i64,
    /// The page size asked for.
    pub limit: i64,
    /// Items skipped.
    pub offset: i64,
}

impl<T> Paginated<T> {
    /// A page of `items` out of `total`, for `page`.
    pub fn new(items: Vec<T>, total: i64, page: PageParams) -> Self {
        Self { items, total, limit: page.limit, offset: page.offset }
    }
}
