//! Passwords: the policy a new password must meet, and argon2id hashing and verification, run on
//! a blocking thread so a hash (tens of milliseconds of CPU and ~19 MiB) never stalls the async
//! workers. Passwords are taken by value, used, and dropped; they are never logged.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use rand::rngs::OsRng;

/// Fewest characters a password may have.
pub const MIN_PASSWORD_CHARS: usize = 12;

/// Most bytes a password may have: bounds the hashing work one request can ask for.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// Why a password does not meet the policy; the message says what is missing, never the password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct WeakPassword(String);

/// Why hashing or verifying failed (not a wrong password: that is `Ok(false)`).
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// argon2 refused its input (for example a stored hash that is not a PHC string).
    #[error("password hashing failed: {0}")]
    Argon2(String),
    /// The blocking task did not finish.
    #[error("password hashing task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// Check `password` against the policy: at least [`MIN_PASSWORD_CHARS`] characters (at most
/// [`MAX_PASSWORD_BYTES`] bytes) with an uppercase letter, a digit and a symbol.
pub fn check_policy(password: &str) -> Result<(), WeakPassword> {
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(WeakPassword(format!("Password must be at most {MAX_PASSWORD_BYTES} bytes long")));
    }
    let mut missing = Vec::new();
    if password.chars().count() < MIN_PASSWORD_CHARS {
        missing.push(format!("at least {MIN_PASSWORD_CHARS} characters"));
    }
    if !password.chars().any(char::is_uppercase) {
        missing.push("an uppercase letter".to_string());
    }
    if !password.chars().any(|c| c.is_ascii_digit()) {
        missing.push("a digit".to_string());
    }
    if !password.chars().any(is_symbol) {
        missing.push("a symbol (such as ! - _ # @)".to_string());
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(WeakPassword(format!("Password is too weak: it needs {}", join_words(&missing))))
    }
}

/// Punctuation and other symbols: not a letter, digit, space or control character.
fn is_symbol(c: char) -> bool {
    !c.is_alphanumeric() && !c.is_whitespace() && !c.is_control()
}

/// `a`, `a and b`, `a, b and c`.
fn join_words(words: &[String]) -> String {
    match words {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// The argon2id PHC string of `password` (default parameters, random salt).
pub async fn hash(password: String) -> Result<String, HashError> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| HashError::Argon2(e.to_string()))
    })
    .await?
}

/// Whether `password` matches the PHC string `hash`. A malformed `hash` is an error.
pub async fn verify(password: String, hash: String) -> Result<bool, HashError> {
    tokio::task::spawn_blocking(move || {
        let parsed = PasswordHash::new(&hash).map_err(|e| HashError::Argon2(e.to_string()))?;
        match Argon2::default().verify_password(password.as_bytes(), &parsed) {
            Ok(()) => Ok(true),
            Err(argon2::password_hash::Error::Password) => Ok(false),
            Err(e) => Err(HashError::Argon2(e.to_string())),
        }
    })
    .await?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_accepts_a_strong_password() {
        assert_eq!(check_policy("Correct-Horse-Battery-9"), Ok(()));
        assert_eq!(check_policy("Ünïcödé-pass-1"), Ok(()));
    }

    #[test]
    fn policy_names_what_is_missing() {
        let short = check_policy("Ab1!").unwrap_err().to_string();
        assert!(short.contains("at least 12 characters"), "{short}");
        assert!(!short.contains("uppercase"), "{short}");
        let lower = check_policy("correct-horse-battery-9").unwrap_err().to_string();
        assert!(lower.contains("an uppercase letter") && !lower.contains("digit"), "{lower}");
        let no_digit = check_policy("Correct-Horse-Battery").unwrap_err().to_string();
        assert!(no_digit.contains("a digit"), "{no_digit}");
        let no_symbol = check_policy("CorrectHorseBattery9").unwrap_err().to_string();
        assert!(no_symbol.contains("a symbol"), "{no_symbol}");
        // Spaces are not symbols.
        assert!(check_policy("Correct Horse Battery 9").is_err());
        let all = check_policy("abc").unwrap_err().to_string();
        assert!(all.contains("characters, an uppercase letter, a digit and a symbol"), "{all}");
    }

    #[test]
    fn policy_never_echoes_the_password() {
        let message = check_policy("hunter2hunter2").unwrap_err().to_string();
        assert!(!message.contains("hunter2"), "{message}");
    }

    #[test]
    fn policy_bounds_the_length() {
        let long = format!("Aa1!{}", "x".repeat(MAX_PASSWORD_BYTES));
        assert!(check_policy(&long).unwrap_err().to_string().contains("at most"));
    }

    #[tokio::test]
    async fn hash_is_argon2id_and_verifies() {
        let phc = hash("Correct-Horse-Battery-9".into()).await.unwrap();
        assert!(phc.starts_with("$argon2id$"), "{phc}");
        assert!(!phc.contains("Correct-Horse"));
        assert!(verify("Correct-Horse-Battery-9".into(), phc.clone()).await.unwrap());
        assert!(!verify("Correct-Horse-Battery-8".into(), phc.clone()).await.unwrap());
        // A fresh salt every time.
        assert_ne!(phc, hash("Correct-Horse-Battery-9".into()).await.unwrap());
        assert!(verify("x".into(), "not a hash".into()).await.is_err());
    }
}
