//! The plugins compiled into the `quarry` binary by `host/build.rs` (from `plugins/`).

/// One built-in plugin: its manifest text and its component bytes.
#[derive(Debug, Clone, Copy)]
pub struct BuiltinPlugin {
    /// The crate directory it was built from, for messages.
    pub crate_dir: &'static str,
    /// The text of its `plugin.toml`.
    pub manifest: &'static str,
    /// The `wasm32-wasip2` component.
    pub component: &'static [u8],
}

include!(concat!(env!("OUT_DIR"), "/builtins.rs"));
