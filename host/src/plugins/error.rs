//! Typed errors of the plugin runtime: what went wrong loading a plugin, and what went wrong in
//! one call. Every message names the plugin; none carries a secret.

use std::path::PathBuf;
use std::time::Duration;

use super::manifest::ManifestError;

/// Why a plugin could not be loaded. A failed plugin is reported and skipped; others still load.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The manifest is missing or invalid.
    #[error("plugin at {path}: {source}")]
    Manifest {
        /// Where the manifest was read from.
        path: PathBuf,
        /// What is wrong with it.
        #[source]
        source: ManifestError,
    },
    /// A file could not be read.
    #[error("plugin at {path}: cannot read: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The component's bytes do not match the manifest's `sha256`.
    #[error("plugin `{plugin}`: sha256 mismatch: manifest pins {expected}, the component is {actual}")]
    Checksum {
        /// Plugin name.
        plugin: String,
        /// Pinned digest.
        expected: String,
        /// Actual digest.
        actual: String,
    },
    /// Not a valid component, or wasmtime could not compile it.
    #[error("plugin `{plugin}`: not a loadable component: {detail}")]
    Compile {
        /// Plugin name.
        plugin: String,
        /// The compiler's message.
        detail: String,
    },
    /// The component does not export the world its manifest names, or targets another WIT version.
    #[error("plugin `{plugin}`: {detail}")]
    Incompatible {
        /// Plugin name.
        plugin: String,
        /// What does not match.
        detail: String,
    },
    /// The component imports something this host does not give its world.
    #[error("plugin `{plugin}`: cannot be linked (it imports something a {kind} plugin is not given): {detail}")]
    Link {
        /// Plugin name.
        plugin: String,
        /// The world it claims.
        kind: super::manifest::PluginKind,
        /// wasmtime's message.
        detail: String,
    },
    /// Its `info()` smoke call failed.
    #[error("plugin `{plugin}`: failed its start-up check: {source}")]
    SmokeTest {
        /// Plugin name.
        plugin: String,
        /// The call error.
        #[source]
        source: CallError,
    },
    /// Another plugin of the same kind already has this name.
    #[error("plugin `{plugin}` ({kind}) is defined twice; keeping the first, from {kept}")]
    Duplicate {
        /// Plugin name.
        plugin: String,
        /// Its kind.
        kind: super::manifest::PluginKind,
        /// Where the kept one came from.
        kept: String,
    },
}

/// Why one call into a plugin failed. The store is discarded in every case.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CallError {
    /// The guest ran past its time limit (epoch deadline or outer wall clock).
    #[error("plugin `{plugin}` exceeded its time limit of {limit:?} and was stopped")]
    Deadline {
        /// Plugin name.
        plugin: String,
        /// The limit that was hit.
        limit: Duration,
    },
    /// The guest asked for more linear memory than its cap.
    #[error("plugin `{plugin}` tried to grow its memory to {requested} bytes, over its cap of {cap} bytes, and was stopped")]
    MemoryCap {
        /// Plugin name.
        plugin: String,
        /// Bytes requested.
        requested: u64,
        /// The cap.
        cap: u64,
    },
    /// The guest overflowed its wasm stack.
    #[error("plugin `{plugin}` overflowed its stack and was stopped")]
    StackOverflow {
        /// Plugin name.
        plugin: String,
    },
    /// The guest trapped: a panic, an `unreachable`, an out-of-bounds access...
    #[error("plugin `{plugin}` crashed: {detail}")]
    Trapped {
        /// Plugin name.
        plugin: String,
        /// The trap, without a backtrace.
        detail: String,
    },
    /// The guest returned something the host refuses to use.
    #[error("plugin `{plugin}` returned malformed output: {detail}")]
    Malformed {
        /// Plugin name.
        plugin: String,
        /// What was wrong with it.
        detail: String,
    },
    /// Too many plugin calls were in flight for too long.
    #[error("plugin `{plugin}` could not start: all {capacity} plugin slots stayed busy for {waited:?}")]
    Busy {
        /// Plugin name.
        plugin: String,
        /// How many calls may run at once.
        capacity: usize,
        /// How long the call waited.
        waited: Duration,
    },
    /// The plugin does not export the optional interface a call needs.
    #[error("plugin `{plugin}` does not offer {what}")]
    Unsupported {
        /// Plugin name.
        plugin: String,
        /// What it lacks (for example `embeddings`).
        what: String,
    },
    /// Instantiation or a host-side step failed.
    #[error("plugin `{plugin}` failed: {detail}")]
    Host {
        /// Plugin name.
        plugin: String,
        /// What failed.
        detail: String,
    },
}

impl CallError {
    /// A stable, machine-readable code for the API layer.
    pub fn code(&self) -> &'static str {
        match self {
            CallError::Deadline { .. } => "plugin-deadline",
            CallError::MemoryCap { .. } => "plugin-memory-cap",
            CallError::StackOverflow { .. } => "plugin-stack-overflow",
            CallError::Trapped { .. } => "plugin-trapped",
            CallError::Malformed { .. } => "plugin-malformed-output",
            CallError::Busy { .. } => "plugin-busy",
            CallError::Unsupported { .. } => "plugin-unsupported",
            CallError::Host { .. } => "plugin-host-error",
        }
    }
}
