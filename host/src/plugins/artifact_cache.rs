//! Compiling components once: compiled artifacts are kept on disk, keyed by the component's
//! content hash and the engine's compatibility hash, so a restart loads them in well under a
//! millisecond instead of compiling for a second or more.
//!
//! Only files this host wrote into its own directory (created owner-only) are ever deserialized;
//! a file that fails to load is recompiled and overwritten.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

/// Where compiled artifacts live; `None` compiles in memory every time.
#[derive(Debug, Clone)]
pub struct ArtifactCache {
    dir: Option<PathBuf>,
}

/// How a component was obtained, for the start-up report and the benchmark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provenance {
    /// Compiled now (cache miss or no cache).
    Compiled,
    /// Loaded from the on-disk cache.
    Cached,
}

/// The sha256 of a component's bytes, lower-case hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

impl ArtifactCache {
    /// A cache in `dir` (created on first write, owner-only), or none.
    pub fn new(dir: Option<PathBuf>) -> Self {
        Self { dir }
    }

    /// The cache directory, if any.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// Load `bytes` as a component, from the cache when possible.
    pub fn load(&self, engine: &Engine, bytes: &[u8], sha256: &str) -> wasmtime::Result<(Component, Provenance)> {
        let Some(dir) = &self.dir else {
            return Ok((Component::new(engine, bytes)?, Provenance::Compiled));
        };
        let path = dir.join(format!("{sha256}-{}.cwasm", compat_key(engine)));
        if path.is_file() {
            // SAFETY: the file is in the host's own cache directory and was written by
            // `Component::serialize` of an engine with the same compatibility hash (it is part
            // of the file name); anything else fails to deserialize and is recompiled below.
            match unsafe { Component::deserialize_file(engine, &path) } {
                Ok(c) => return Ok((c, Provenance::Cached)),
                Err(e) => tracing::warn!(path = %path.display(), "discarding unreadable compiled plugin: {e}"),
            }
        }
        let component = Component::new(engine, bytes)?;
        if let Err(e) = store_artifact(dir, &path, &component) {
            tracing::warn!(dir = %dir.display(), "cannot cache the compiled plugin (it still works): {e}");
        }
        Ok((component, Provenance::Compiled))
    }
}

/// wasmtime's version plus the engine's configuration hash: artifacts are only valid for both.
fn compat_key(engine: &Engine) -> String {
    let mut h = std::hash::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut h);
    format!("wasmtime{}-{:016x}", super::runtime::WASMTIME_VERSION, h.finish())
}

fn store_artifact(dir: &Path, path: &Path, component: &Component) -> anyhow::Result<()> {
    create_private_dir(dir)?;
    let bytes = component.serialize().map_err(super::runtime::anyhow_from_wasmtime)?;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}
