//! Conditional GETs for documents clients poll (a connection's schema, its semantic model): the
//! ETag is the first 32 hex digits of the SHA-256 of the JSON body; `If-None-Match` naming it
//! answers 304. Both carry `Cache-Control: private, max-age=300, must-revalidate` and
//! `Vary: Authorization`, since what a user may see depends on who they are.

use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, ETAG, IF_NONE_MATCH, VARY};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

/// How long a client may reuse its copy before revalidating.
const CACHE_PRIVATE: &str = "private, max-age=300, must-revalidate";

/// The quoted ETag of `body`.
pub fn etag_of(body: &[u8]) -> String {
    let digest = hex::encode(Sha256::digest(body));
    format!("\"{}\"", &digest[..32])
}

/// Whether an `If-None-Match` header names `etag` (quoted or not, weak or strong, in a list,
/// or `*`).
pub fn matches_etag(headers: &HeaderMap, etag: &str) -> bool {
    let bare = etag.trim_matches('"');
    headers.get_all(IF_NONE_MATCH).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')).any(|tag| {
        let tag = tag.trim();
        tag == "*" || tag.trim_start_matches("W/").trim_matches('"') == bare
    })
}

/// 200 with the JSON `body`, or 304 when the request's `If-None-Match` names its ETag; with the
/// caching headers either way.
pub fn json_with_etag(body: Vec<u8>, request: &HeaderMap) -> Response {
    let etag = etag_of(&body);
    let mut response = if matches_etag(request, &etag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mut r = (StatusCode::OK, body).into_response();
        r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        r
    };
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&etag) {
        headers.insert(ETAG, value);
    }
    headers.insert(CACHE_CONTROL, HeaderValue::from_static(CACHE_PRIVATE));
    headers.insert(VARY, HeaderValue::from_static("Authorization"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags_are_32_hex_digits_and_if_none_match_is_read_loosely() {
        let tag = etag_of(b"{}");
        assert_eq!(tag.len(), 34);
        assert!(tag.trim_matches('"').chars().all(|c| c.is_ascii_hexdigit()));
        let mut h = HeaderMap::new();
        assert!(!matches_etag(&h, &tag));
        h.insert(IF_NONE_MATCH, HeaderValue::from_str(&format!("\"x\", W/{tag}")).unwrap());
        assert!(matches_etag(&h, &tag));
        h.insert(IF_NONE_MATCH, HeaderValue::from_str(tag.trim_matches('"')).unwrap());
        assert!(matches_etag(&h, &tag));
        h.insert(IF_NONE_MATCH, HeaderValue::from_static("\"0000\""));
        assert!(!matches_etag(&h, &tag));
    }

    #[test]
    fn a_matching_tag_answers_304_with_the_caching_headers() {
        let fresh = json_with_etag(b"{\"a\":1}".to_vec(), &HeaderMap::new());
        assert_eq!(fresh.status(), StatusCode::OK);
        let tag = fresh.headers()[ETAG].clone();
        let mut request = HeaderMap::new();
        request.insert(IF_NONE_MATCH, tag);
        let again = json_with_etag(b"{\"a\":1}".to_vec(), &request);
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(again.headers()[VARY], "Authorization");
    }
}
