//! Where the sealing key comes from: `QUARRY_SECRET_KEY`, else the key file in the data folder,
//! created on first start (owner-only), and replaced atomically by a rotation.

use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use rand::RngCore;

use super::SecretsError;

/// The environment variable holding the key: base64 of 32 bytes.
pub const SECRET_KEY_VAR: &str = "QUARRY_SECRET_KEY";
/// The key file inside the data folder, used when [`SECRET_KEY_VAR`] is unset.
pub const KEY_FILE: &str = "secret.key";

/// Where a [`Cipher`](super::Cipher)'s key came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// `QUARRY_SECRET_KEY`.
    Env,
    /// A key file at this path.
    File(PathBuf),
    /// Made in memory (tests, a freshly generated key).
    Memory,
}

/// The key and where it came from, as [`super::Cipher::from_env`] describes.
pub(super) fn load(data_dir: &Path) -> Result<([u8; 32], KeySource), SecretsError> {
    load_with(data_dir, std::env::var(SECRET_KEY_VAR).ok())
}

/// [`load`] with the variable's value passed in (tests).
pub(super) fn load_with(data_dir: &Path, env_value: Option<String>) -> Result<([u8; 32], KeySource), SecretsError> {
    if let Some(value) = env_value.filter(|v| !v.trim().is_empty()) {
        let key = decode(&value).map_err(|why| SecretsError::Key(format!("{SECRET_KEY_VAR} {why}")))?;
        return Ok((key, KeySource::Env));
    }
    let path = data_dir.join(KEY_FILE);
    let key = match read_key_file(&path)? {
        Some(key) => key,
        None => create_key_file(data_dir, &path)?,
    };
    if pending_path(&path).exists() {
        tracing::warn!(
            "{} exists: a key rotation was interrupted; if connections fail to open, see `quarry secrets rotate-key --help`",
            pending_path(&path).display()
        );
    }
    Ok((key, KeySource::File(path)))
}

/// Decode the base64 (standard or URL-safe, padding optional) of exactly 32 bytes.
pub(super) fn decode(text: &str) -> Result<[u8; 32], String> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    let text = text.trim();
    let bytes = [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
        .iter()
        .find_map(|engine| engine.decode(text).ok())
        .ok_or_else(|| {
            "is not valid base64; it must be the base64 of exactly 32 bytes (make one with `openssl rand -base64 32`)"
                .to_string()
        })?;
    <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| {
        format!(
            "decodes to {} bytes; it must be the base64 of exactly 32 bytes (make one with `openssl rand -base64 32`)",
            bytes.len()
        )
    })
}

/// The key in `path`, `None` if there is no such file. Warns when others may read it.
fn read_key_file(path: &Path) -> Result<Option<[u8; 32]>, SecretsError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(SecretsError::Key(format!("cannot read the key file {}: {e}", path.display()))),
    };
    warn_if_shared(path);
    decode(&text).map(Some).map_err(|why| SecretsError::Key(format!("the key file {} {why}", path.display())))
}

#[cfg(unix)]
fn warn_if_shared(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path) {
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            tracing::warn!(
                "the key file {} has mode {mode:o}: others may read it; run `chmod 600 {}`",
                path.display(),
                path.display()
            );
        }
    }
}

#[cfg(not(unix))]
fn warn_if_shared(_path: &Path) {}

/// Make a new random key and write it to `path`, unless another process got there first (then
/// its key is used): the key is written to a private temporary file and hard-linked into place,
/// which fails rather than overwrite.
fn create_key_file(data_dir: &Path, path: &Path) -> Result<[u8; 32], SecretsError> {
    let fail = |what: &str, e: std::io::Error| SecretsError::Key(format!("cannot {what} {}: {e}", path.display()));
    create_private_dir(data_dir).map_err(|e| fail("create the folder of the key file", e))?;
    let mut key = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut key);
    let temp = write_private_temp(data_dir, &key).map_err(|e| fail("write the key file", e))?;
    let linked = std::fs::hard_link(temp.path(), path);
    drop(temp);
    match linked {
        Ok(()) => {
            tracing::info!("created a new secret key in {}; back it up with the data folder", path.display());
            Ok(key)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => read_key_file(path)?
            .ok_or_else(|| SecretsError::Key(format!("the key file {} vanished while starting", path.display()))),
        Err(e) => Err(fail("create the key file", e)),
    }
}

/// A temporary file in `dir` (mode 0600 on unix) holding `key` in base64, flushed to disk.
fn write_private_temp(dir: &Path, key: &[u8; 32]) -> std::io::Result<tempfile::NamedTempFile> {
    // tempfile creates files with mode 0600 on unix.
    let mut temp = tempfile::Builder::new().prefix(".secret.key.").tempfile_in(dir)?;
    writeln!(temp, "{}", base64::engine::general_purpose::STANDARD.encode(key))?;
    temp.as_file().sync_all()?;
    Ok(temp)
}

/// Where a rotation keeps the new key until the store has been re-sealed.
pub(super) fn pending_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".next");
    path.with_file_name(name)
}

/// Write `key` to the pending file next to `path` (replacing any older one), private, synced.
pub(super) fn write_pending(path: &Path, key: &[u8; 32]) -> std::io::Result<PathBuf> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let temp = write_private_temp(dir, key)?;
    let pending = pending_path(path);
    temp.persist(&pending).map_err(|e| e.error)?;
    Ok(pending)
}

/// Atomically replace `path` with the pending file (rename in the same folder), then sync the folder.
pub(super) fn commit_pending(path: &Path) -> std::io::Result<()> {
    std::fs::rename(pending_path(path), path)?;
    #[cfg(unix)]
    if let Some(dir) = path.parent() {
        let dir = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// Create `dir` (and parents); a folder created here is private (0700) on unix.
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_key_must_be_32_bytes_of_base64() {
        let dir = tempfile::tempdir().unwrap();
        let good = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
        let (key, source) = load_with(dir.path(), Some(good)).unwrap();
        assert_eq!(key, [7u8; 32]);
        assert_eq!(source, KeySource::Env);
        assert!(!dir.path().join(KEY_FILE).exists(), "a key file was made although the variable was set");
        for bad in ["short", "c2hvcnQ=", &base64::engine::general_purpose::STANDARD.encode([1u8; 31])] {
            let err = load_with(dir.path(), Some(bad.to_string())).unwrap_err().to_string();
            assert!(err.contains(SECRET_KEY_VAR) && err.contains("32 bytes"), "{err}");
        }
        // Blank counts as unset: the key file is used.
        let (_, source) = load_with(dir.path(), Some("  ".into())).unwrap();
        assert!(matches!(source, KeySource::File(_)));
    }

    #[test]
    fn key_file_is_created_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let (first, source) = load_with(&data, None).unwrap();
        let path = data.join(KEY_FILE);
        assert_eq!(source, KeySource::File(path.clone()));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        let (second, _) = load_with(&data, None).unwrap();
        assert_eq!(first, second);
        let leftovers: Vec<_> = std::fs::read_dir(&data).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(leftovers.len(), 1, "{leftovers:?}");

        std::fs::write(&path, "garbage\n").unwrap();
        let err = load_with(&data, None).unwrap_err().to_string();
        assert!(err.contains("key file") && !err.contains("garbage"), "{err}");
    }

    #[test]
    fn pending_key_replaces_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let (old, _) = load_with(dir.path(), None).unwrap();
        let path = dir.path().join(KEY_FILE);
        write_pending(&path, &[9u8; 32]).unwrap();
        assert_eq!(load_with(dir.path(), None).unwrap().0, old);
        commit_pending(&path).unwrap();
        assert_eq!(load_with(dir.path(), None).unwrap().0, [9u8; 32]);
        assert!(!pending_path(&path).exists());
    }
}
