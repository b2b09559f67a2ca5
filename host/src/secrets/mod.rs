//! Credentials at rest: database connection configs and LLM API keys are sealed with AES-256-GCM
//! before they reach the metadata store, and opened only in memory when needed.
//!
//! - [`Cipher`]: seals and opens bytes under one 256-bit key;
//! - [`Cipher::from_env`]: the key from `QUARRY_SECRET_KEY` (base64 of 32 bytes), else the key
//!   file `<data_dir>/secret.key`, created on first start with mode 0600 (see `key.rs`);
//! - [`rotate`]: `quarry secrets rotate-key`: a new key, every sealed value re-sealed in one
//!   transaction, then the key file replaced atomically.
//!
//! Sealed bytes: `version (1) | key id (8) | nonce (12) | ciphertext + tag (16)`. The key id is the
//! first 8 bytes of SHA-256 of the key, so a value sealed under another key is reported as such
//! instead of as tampering; the version byte and key id are authenticated too (associated data).

mod key;
pub mod rotate;

use std::fmt;
use std::path::Path;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use rand::RngCore;
use sha2::{Digest, Sha256};

pub use key::{KEY_FILE, KeySource, SECRET_KEY_VAR};

/// The format version written in the first byte of every sealed value.
const VERSION: u8 = 1;
/// Bytes of the key id that follows the version.
const KEY_ID_LEN: usize = 8;
/// Bytes of the AES-GCM nonce (96 bits, fresh and random per seal).
const NONCE_LEN: usize = 12;
/// Bytes of the AES-GCM authentication tag at the end.
const TAG_LEN: usize = 16;
/// Bytes before the ciphertext.
const HEADER_LEN: usize = 1 + KEY_ID_LEN + NONCE_LEN;

/// Why a secret could not be sealed or opened, or the key not loaded. No message contains a key
/// or a secret.
#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    /// The key is missing or unusable (bad `QUARRY_SECRET_KEY`, unreadable or malformed key file).
    #[error("secret key: {0}")]
    Key(String),
    /// The value was sealed under another key (for example before a rotation).
    #[error("the sealed value was made with another key (key id {found}, this key is {expected})")]
    WrongKey {
        /// The key id recorded in the value (hex).
        found: String,
        /// This cipher's key id (hex).
        expected: String,
    },
    /// The value is not a sealed value of a version this build knows.
    #[error("the sealed value has unknown format version {0}")]
    UnknownVersion(u8),
    /// The value is truncated or was altered: authentication failed.
    #[error("the sealed value is damaged or was tampered with")]
    Tampered,
}

/// Seals and opens secrets under one AES-256-GCM key. `Debug` shows only the key id.
#[derive(Clone)]
pub struct Cipher {
    aead: Aes256Gcm,
    key: [u8; 32],
    key_id: [u8; KEY_ID_LEN],
    source: KeySource,
}

impl fmt::Debug for Cipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cipher").field("key_id", &self.key_id()).field("source", &self.source).finish()
    }
}

impl Cipher {
    /// A cipher over `key` (kept in memory only).
    pub fn new(key: [u8; 32]) -> Cipher {
        Self::with_source(key, KeySource::Memory)
    }

    fn with_source(key: [u8; 32], source: KeySource) -> Cipher {
        let aead = Aes256Gcm::new(&key.into());
        Cipher { aead, key, key_id: key_id(&key), source }
    }

    /// A cipher over a fresh random key (kept in memory only).
    pub fn generate() -> Cipher {
        let mut key = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut key);
        Self::new(key)
    }

    /// The key the operator configured: `QUARRY_SECRET_KEY` when set (and not blank), which must be
    /// the base64 of exactly 32 bytes; otherwise `<data_dir>/secret.key`, created (with the folder)
    /// on first start with owner-only permissions. A key file that others can read is used, with a
    /// warning. Fails with [`SecretsError::Key`] and a message saying what to fix.
    pub fn from_env(data_dir: &Path) -> Result<Cipher, SecretsError> {
        let (key, source) = key::load(data_dir)?;
        Ok(Self::with_source(key, source))
    }

    /// [`from_env`](Self::from_env) ignoring `QUARRY_SECRET_KEY` (tests).
    #[cfg(test)]
    pub(crate) fn from_env_file_only(data_dir: &Path) -> Result<Cipher, SecretsError> {
        let (key, source) = key::load_with(data_dir, None)?;
        Ok(Self::with_source(key, source))
    }

    /// A cipher over the base64 of a 32-byte key (the form `QUARRY_SECRET_KEY` and the key file use).
    pub fn from_base64(text: &str) -> Result<Cipher, SecretsError> {
        Ok(Self::new(key::decode(text).map_err(SecretsError::Key)?))
    }

    /// Where the key came from.
    pub fn source(&self) -> &KeySource {
        &self.source
    }

    /// The key id: hex of the first 8 bytes of SHA-256 of the key (not secret; names the key).
    pub fn key_id(&self) -> String {
        hex::encode(self.key_id)
    }

    /// The key as base64, to hand to the operator once (rotation with `QUARRY_SECRET_KEY`) or to
    /// write to the key file. Never log it.
    pub fn key_base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.key)
    }

    /// Seal `plaintext` under a fresh random nonce.
    pub fn seal(&self, plaintext: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let mut out = Vec::with_capacity(HEADER_LEN + plaintext.len() + TAG_LEN);
        out.push(VERSION);
        out.extend_from_slice(&self.key_id);
        out.extend_from_slice(&nonce);
        let aad = &out[..1 + KEY_ID_LEN];
        // AES-GCM refuses only plaintexts over 64 GiB; request bodies are capped far below that.
        let sealed = self
            .aead
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: plaintext, aad })
            .expect("AES-256-GCM seals any plaintext under 64 GiB");
        out.extend_from_slice(&sealed);
        out
    }

    /// Open a value [`seal`](Self::seal) made: [`SecretsError::WrongKey`] when another key sealed
    /// it, [`SecretsError::Tampered`] when it is truncated or altered.
    pub fn open(&self, sealed: &[u8]) -> Result<Vec<u8>, SecretsError> {
        let Some(&version) = sealed.first() else {
            return Err(SecretsError::Tampered);
        };
        if version != VERSION {
            return Err(SecretsError::UnknownVersion(version));
        }
        if sealed.len() < HEADER_LEN + TAG_LEN {
            return Err(SecretsError::Tampered);
        }
        let found = &sealed[1..1 + KEY_ID_LEN];
        if found != self.key_id {
            return Err(SecretsError::WrongKey { found: hex::encode(found), expected: self.key_id() });
        }
        let nonce = &sealed[1 + KEY_ID_LEN..HEADER_LEN];
        let aad = &sealed[..1 + KEY_ID_LEN];
        self.aead
            .decrypt(Nonce::from_slice(nonce), Payload { msg: &sealed[HEADER_LEN..], aad })
            .map_err(|_| SecretsError::Tampered)
    }

    /// Seal a UTF-8 string.
    pub fn seal_str(&self, plaintext: &str) -> Vec<u8> {
        self.seal(plaintext.as_bytes())
    }

    /// Open a value sealed with [`seal_str`](Self::seal_str); non-UTF-8 contents count as tampering.
    pub fn open_str(&self, sealed: &[u8]) -> Result<String, SecretsError> {
        String::from_utf8(self.open(sealed)?).map_err(|_| SecretsError::Tampered)
    }
}

fn key_id(key: &[u8; 32]) -> [u8; KEY_ID_LEN] {
    let digest = Sha256::digest(key);
    let mut id = [0u8; KEY_ID_LEN];
    id.copy_from_slice(&digest[..KEY_ID_LEN]);
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_and_open_round_trip() {
        let cipher = Cipher::generate();
        let sealed = cipher.seal(b"hunter2-password");
        assert_eq!(sealed[0], VERSION);
        assert_eq!(&sealed[1..9], &key_id(&cipher.key));
        assert_eq!(sealed.len(), HEADER_LEN + 16 + TAG_LEN);
        assert!(!sealed.windows(7).any(|w| w == b"hunter2"), "plaintext visible in sealed bytes");
        assert_eq!(cipher.open(&sealed).unwrap(), b"hunter2-password");
        assert_eq!(cipher.open_str(&cipher.seal_str("é ok")).unwrap(), "é ok");
        assert_eq!(cipher.open(&cipher.seal(b"")).unwrap(), b"");
    }

    #[test]
    fn nonces_are_fresh() {
        let cipher = Cipher::generate();
        let a = cipher.seal(b"same");
        let b = cipher.seal(b"same");
        assert_ne!(a, b);
        assert_ne!(&a[9..21], &b[9..21]);
    }

    #[test]
    fn wrong_key_and_tampering_are_typed_errors() {
        let cipher = Cipher::generate();
        let other = Cipher::generate();
        let sealed = cipher.seal(b"s3cret-value");
        let err = other.open(&sealed).unwrap_err();
        assert!(matches!(err, SecretsError::WrongKey { .. }), "{err}");
        assert!(!err.to_string().contains("s3cret"));

        // Same key id (forged header) but another key: authentication fails.
        let mut forged = other.seal(b"x");
        forged[1..9].copy_from_slice(&cipher.key_id);
        assert!(matches!(cipher.open(&forged), Err(SecretsError::Tampered)));

        for i in [0usize, 5, 15, sealed.len() - 1] {
            let mut bad = sealed.clone();
            bad[i] ^= 0x01;
            assert!(cipher.open(&bad).is_err(), "flipping byte {i} went unnoticed");
        }
        assert!(matches!(cipher.open(&sealed[..sealed.len() - 1]), Err(SecretsError::Tampered)));
        assert!(matches!(cipher.open(&sealed[..10]), Err(SecretsError::Tampered)));
        assert!(matches!(cipher.open(&[]), Err(SecretsError::Tampered)));
        assert!(matches!(cipher.open(&[9, 1, 2]), Err(SecretsError::UnknownVersion(9))));
    }

    #[test]
    fn base64_keys() {
        let cipher = Cipher::generate();
        let again = Cipher::from_base64(&cipher.key_base64()).unwrap();
        assert_eq!(again.key_id(), cipher.key_id());
        assert_eq!(again.open(&cipher.seal(b"v")).unwrap(), b"v");
        assert!(Cipher::from_base64("c2hvcnQ=").is_err());
        assert!(Cipher::from_base64("not base64 at all!").is_err());
        let debug = format!("{cipher:?}");
        assert!(!debug.contains(&cipher.key_base64()), "{debug}");
    }
}
