//! Email addresses: a practical syntax check (one `@`, a sensible local part, a dotted domain of
//! letters, digits and hyphens) and the normal form the store keeps — trimmed and lower-cased, so
//! that addresses differing only in case are one account.

use serde::{Deserialize, Deserializer};

/// Longest address accepted, in characters (RFC 5321's path limit).
pub const MAX_EMAIL_CHARS: usize = 254;

/// A syntactically valid email address in normal form (trimmed, lower-cased).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

/// Why an address was refused (the message does not repeat it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("value is not a valid email address: {0}")]
pub struct InvalidEmail(&'static str);

impl Email {
    /// Check and normalise `raw`.
    pub fn parse(raw: &str) -> Result<Email, InvalidEmail> {
        let email = raw.trim().to_lowercase();
        if email.chars().count() > MAX_EMAIL_CHARS {
            return Err(InvalidEmail("it is too long"));
        }
        let Some((local, domain)) = email.rsplit_once('@') else {
            return Err(InvalidEmail("it must have an @-sign"));
        };
        if local.is_empty() || local.chars().count() > 64 {
            return Err(InvalidEmail("the part before the @-sign must have 1 to 64 characters"));
        }
        let local_ok = local.chars().all(|c| c.is_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.".contains(c))
            && !local.starts_with('.')
            && !local.ends_with('.')
            && !local.contains("..");
        if !local_ok {
            return Err(InvalidEmail("the part before the @-sign has characters that are not allowed"));
        }
        let labels: Vec<&str> = domain.split('.').collect();
        if labels.len() < 2 {
            return Err(InvalidEmail("the domain name must contain a period"));
        }
        let label_ok = |l: &&str| {
            !l.is_empty()
                && l.chars().count() <= 63
                && l.chars().all(|c| c.is_alphanumeric() || c == '-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        };
        if !labels.iter().all(label_ok) {
            return Err(InvalidEmail("the domain name is not valid"));
        }
        let tld = labels.last().copied().unwrap_or_default();
        if tld.chars().count() < 2 || tld.chars().all(|c| c.is_ascii_digit()) {
            return Err(InvalidEmail("the domain name is not valid"));
        }
        Ok(Email(email))
    }

    /// The normal form.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The normal form, owned.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl<'de> Deserialize<'de> for Email {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Email::parse(&raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_and_normalises() {
        assert_eq!(Email::parse("  Admin@Example.COM ").unwrap().as_str(), "admin@example.com");
        assert!(Email::parse("first.last+tag@sub.example.co.uk").is_ok());
        assert!(Email::parse("o'neil@xn--bcher-kva.example").is_ok());
    }

    #[test]
    fn refuses_what_is_not_an_address() {
        for bad in [
            "",
            "plain",
            "@example.com",
            "user@",
            "user@localhost",
            "user@@example.com",
            "user name@example.com",
            ".user@example.com",
            "us..er@example.com",
            "user@-example.com",
            "user@example..com",
            "user@example.c",
            "user@1.2.3.4",
            "user\0@example.com",
            "user@exa mple.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} was accepted");
        }
        let long = format!("{}@example.com", "a".repeat(250));
        assert!(Email::parse(&long).is_err());
    }

    #[test]
    fn deserializes_with_a_message_that_names_the_problem() {
        let err = serde_json::from_str::<Email>("\"nope\"").unwrap_err().to_string();
        assert!(err.contains("not a valid email address"), "{err}");
        assert_eq!(serde_json::from_str::<Email>("\"A@B.io\"").unwrap().as_str(), "a@b.io");
    }
}
