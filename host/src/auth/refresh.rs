//! Refresh tokens: 64 random bytes (URL-safe base64) handed to the client once, stored only as
//! their SHA-256; and the `quarry_rt` cookie that carries them (HttpOnly, SameSite=Strict, scoped
//! to `/api/v1/auth`, Secure unless the operator turned that off for plain-HTTP development).

use axum::http::HeaderMap;
use axum::http::header::COOKIE;
use base64::Engine as _;
use cookie::{Cookie, SameSite};
use rand::RngCore;
use rand::rngs::OsRng;
use sha2::{Digest, Sha256};

/// The cookie's name.
pub const COOKIE_NAME: &str = "quarry_rt";

/// The cookie's path: only the auth routes ever receive it.
pub const COOKIE_PATH: &str = "/api/v1/auth";

/// Longest refresh token accepted from a client; ours are 86 characters.
pub const MAX_TOKEN_CHARS: usize = 512;

/// A new random refresh token.
pub fn generate() -> String {
    let mut bytes = [0u8; 64];
    OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The SHA-256 hex of `token`: what the store keeps.
pub fn digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The `Set-Cookie` value that hands `token` to the browser for `max_age_secs`.
pub fn set_cookie(token: &str, max_age_secs: i64, secure: bool) -> String {
    Cookie::build((COOKIE_NAME, token))
        .http_only(true)
        .same_site(SameSite::Strict)
        .path(COOKIE_PATH)
        .max_age(cookie::time::Duration::seconds(max_age_secs))
        .secure(secure)
        .build()
        .to_string()
}

/// The `Set-Cookie` value that removes the cookie.
pub fn clear_cookie(secure: bool) -> String {
    set_cookie("", 0, secure)
}

/// The refresh token in the request's `quarry_rt` cookie, if any.
pub fn from_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == COOKIE_NAME && !c.value().is_empty())
        .map(|c| c.value().to_string())
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn tokens_are_random_and_url_safe() {
        let a = generate();
        assert_eq!(a.len(), 86);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'), "{a}");
        assert_ne!(a, generate());
    }

    #[test]
    fn digest_is_sha256_hex() {
        assert_eq!(digest("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    #[test]
    fn cookie_has_the_safe_attributes() {
        let c = set_cookie("tok", 2_592_000, true);
        assert!(c.starts_with("quarry_rt=tok"), "{c}");
        for part in ["HttpOnly", "SameSite=Strict", "Path=/api/v1/auth", "Max-Age=2592000", "Secure"] {
            assert!(c.contains(part), "{part} missing from {c}");
        }
        assert!(!set_cookie("tok", 60, false).contains("Secure"));
        let cleared = clear_cookie(true);
        assert!(cleared.starts_with("quarry_rt=;") && cleared.contains("Max-Age=0"), "{cleared}");
    }

    #[test]
    fn reads_the_token_among_other_cookies() {
        let mut headers = HeaderMap::new();
        assert_eq!(from_cookie(&headers), None);
        headers.append(COOKIE, HeaderValue::from_static("theme=dark; quarry_rt=abc-DEF_1; other=1"));
        assert_eq!(from_cookie(&headers).as_deref(), Some("abc-DEF_1"));
        let mut empty = HeaderMap::new();
        empty.append(COOKIE, HeaderValue::from_static("quarry_rt="));
        assert_eq!(from_cookie(&empty), None);
    }
}
