//! Scrubbing secrets out of text that leaves a plugin call (errors, log lines).
//!
//! Plugins never receive secrets, but an API may echo a header back in an error body; every string
//! the host passes on from a call goes through a [`Redactor`] that knows the call's secrets.

use std::sync::Arc;

/// What replaces a secret.
pub const MASK: &str = "[REDACTED]";

/// Knows the secret values of one call and masks them in text.
#[derive(Clone, Default)]
pub struct Redactor {
    secrets: Arc<Vec<String>>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Redactor({} secrets)", self.secrets.len())
    }
}

impl Redactor {
    /// A redactor for these secret values; empty and very short values are ignored (they would
    /// mask ordinary text without protecting anything).
    pub fn new<I, S>(secrets: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut secrets: Vec<String> =
            secrets.into_iter().map(Into::into).filter(|s| s.len() >= 4).collect();
        // Longest first, so a secret that contains another is masked whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets.dedup();
        Self { secrets: Arc::new(secrets) }
    }

    /// `text` with every known secret replaced by [`MASK`].
    pub fn scrub(&self, text: &str) -> String {
        let mut out = text.to_string();
        for s in self.secrets.iter() {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), MASK);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_every_occurrence_and_longest_first() {
        let r = Redactor::new(["sk-abc", "sk-abcdef", ""]);
        assert_eq!(r.scrub("key sk-abcdef and sk-abc"), format!("key {MASK} and {MASK}"));
        assert_eq!(r.scrub("nothing here"), "nothing here");
    }
}
