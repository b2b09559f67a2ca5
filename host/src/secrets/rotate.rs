//! Key rotation: make a new key, re-seal every sealed value of the metadata store under it in one
//! transaction, and put the new key where the old one was.
//!
//! Order, so that no crash loses the key that the stored values need:
//! 1. every sealed value is opened with the current key and sealed with the new one, inside one
//!    transaction (a value that does not open aborts everything);
//! 2. still inside it, the new key is made durable: for a key file, written next to it as
//!    `secret.key.next` (0600, synced); for `QUARRY_SECRET_KEY`, handed to `announce` (the command
//!    prints it for the operator);
//! 3. the transaction commits;
//! 4. a key file is replaced by renaming `secret.key.next` over it (atomic).
//!
//! A crash between 3 and 4 leaves the right key in `secret.key.next` (the server warns about it).
//! Servers still running with the old key cannot open the re-sealed values: stop them first.

use super::key::{commit_pending, pending_path, write_pending};
use super::{Cipher, KeySource, SecretsError};
use crate::store::Store;
use crate::store::connections::ResealCounts;

/// A finished rotation.
#[derive(Debug)]
pub struct Rotation {
    /// The cipher over the new key.
    pub new: Cipher,
    /// What was re-sealed.
    pub counts: ResealCounts,
}

/// Why a rotation failed. Unless [`RotateError::KeyFileNotReplaced`], nothing changed.
#[derive(Debug, thiserror::Error)]
pub enum RotateError {
    /// A stored value did not open with the current key, or the new key could not be saved.
    #[error("key rotation failed, nothing changed: {0}")]
    Secrets(#[from] SecretsError),
    /// The metadata store failed.
    #[error("key rotation failed, nothing changed: {0}")]
    Store(#[from] crate::store::StoreError),
    /// The store was re-sealed but the key file could not be replaced: the new key is in `pending`.
    #[error(
        "the store was re-sealed with the new key, but {file} could not be replaced ({reason}); \
         move {pending} over it before starting Quarry"
    )]
    KeyFileNotReplaced {
        /// The key file.
        file: String,
        /// Where the new key is.
        pending: String,
        /// The I/O error.
        reason: String,
    },
}

/// Rotate from `current` to a fresh key, as described above. `announce` is called with the new
/// cipher before the commit when the key does not live in a file (it must hand the key to the
/// operator; if it fails, nothing changes).
pub async fn rotate_key(
    store: &Store,
    current: &Cipher,
    announce: impl FnOnce(&Cipher) -> std::io::Result<()>,
) -> Result<Rotation, RotateError> {
    let new = Cipher::generate();
    let file = match current.source() {
        KeySource::File(path) => Some(path.clone()),
        KeySource::Env | KeySource::Memory => None,
    };
    let before_commit = |_: &ResealCounts| -> Result<(), SecretsError> {
        match &file {
            Some(path) => write_pending(path, &new.key)
                .map(|_| ())
                .map_err(|e| SecretsError::Key(format!("cannot write the new key next to {}: {e}", path.display()))),
            None => announce(&new).map_err(|e| SecretsError::Key(format!("cannot hand out the new key: {e}"))),
        }
    };
    let outcome =
        store.reseal_secrets(|sealed| current.open(sealed).map(|plain| new.seal(&plain)), before_commit).await;
    let counts = match outcome {
        Ok(Ok(counts)) => counts,
        Ok(Err(e)) => return Err(discard_pending(file.as_deref(), e.into())),
        Err(e) => return Err(discard_pending(file.as_deref(), e.into())),
    };
    if let Some(path) = &file {
        commit_pending(path).map_err(|e| RotateError::KeyFileNotReplaced {
            file: path.display().to_string(),
            pending: pending_path(path).display().to_string(),
            reason: e.to_string(),
        })?;
    }
    let new = match file {
        Some(path) => Cipher::with_source(new.key, KeySource::File(path)),
        None => new,
    };
    Ok(Rotation { new, counts })
}

/// After a failed rotation: remove a pending key file this rotation may have written.
fn discard_pending(file: Option<&std::path::Path>, error: RotateError) -> RotateError {
    if let Some(path) = file {
        let _ = std::fs::remove_file(pending_path(path));
    }
    error
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::connections::NewConnection;
    use serde_json::json;

    #[tokio::test]
    async fn rotation_reseals_and_replaces_the_key_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open("sqlite::memory:").await.unwrap();
        let old = Cipher::from_env_file_only(dir.path()).unwrap();
        let record = store
            .create_connection(NewConnection {
                name: "a".into(),
                source_type: "sqlite".into(),
                config_sealed: old.seal(b"{\"path\":\"/x.db\"}"),
                privacy: json!({}),
                execution_mode: "auto_execute".into(),
            })
            .await
            .unwrap()
            .unwrap();

        let rotation = rotate_key(&store, &old, |_| panic!("a key file needs no announcement")).await.unwrap();
        assert_eq!(rotation.counts.connections, 1);
        let sealed = store.connection(&record.id).await.unwrap().unwrap().config_sealed;
        assert!(matches!(old.open(&sealed), Err(SecretsError::WrongKey { .. })));
        assert_eq!(rotation.new.open(&sealed).unwrap(), b"{\"path\":\"/x.db\"}");
        let reloaded = Cipher::from_env_file_only(dir.path()).unwrap();
        assert_eq!(reloaded.key_id(), rotation.new.key_id());
        assert!(!pending_path(&dir.path().join(super::super::KEY_FILE)).exists());

        // A value the current key cannot open aborts the rotation; the key file stays.
        let stranger = Cipher::generate();
        store
            .create_connection(NewConnection {
                name: "b".into(),
                source_type: "sqlite".into(),
                config_sealed: stranger.seal(b"{}"),
                privacy: json!({}),
                execution_mode: "auto_execute".into(),
            })
            .await
            .unwrap()
            .unwrap();
        let err = rotate_key(&store, &reloaded, |_| Ok(())).await.unwrap_err();
        assert!(matches!(err, RotateError::Secrets(SecretsError::WrongKey { .. })), "{err}");
        assert_eq!(Cipher::from_env_file_only(dir.path()).unwrap().key_id(), reloaded.key_id());
        assert_eq!(store.connection(&record.id).await.unwrap().unwrap().config_sealed, sealed);
    }

    #[tokio::test]
    async fn announce_failure_changes_nothing() {
        let store = Store::open("sqlite::memory:").await.unwrap();
        let old = Cipher::generate();
        let record = store
            .create_connection(NewConnection {
                name: "a".into(),
                source_type: "sqlite".into(),
                config_sealed: old.seal(b"v"),
                privacy: json!({}),
                execution_mode: "auto_execute".into(),
            })
            .await
            .unwrap()
            .unwrap();
        let err = rotate_key(&store, &old, |_| Err(std::io::Error::other("closed"))).await.unwrap_err();
        assert!(matches!(err, RotateError::Secrets(_)));
        let sealed = store.connection(&record.id).await.unwrap().unwrap().config_sealed;
        assert_eq!(old.open(&sealed).unwrap(), b"v");

        let mut announced = None;
        let rotation = rotate_key(&store, &old, |c| {
            announced = Some(c.key_base64());
            Ok(())
        })
        .await
        .unwrap();
        assert_eq!(announced, Some(rotation.new.key_base64()));
        let sealed = store.connection(&record.id).await.unwrap().unwrap().config_sealed;
        assert_eq!(Cipher::from_base64(&rotation.new.key_base64()).unwrap().open(&sealed).unwrap(), b"v");
    }
}
