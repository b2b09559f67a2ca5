//! Turning a manifest and component bytes into a ready-to-call plugin: checksum, compile (or load
//! the cached artifact), check the exported WIT interface and version, pre-link against the world's
//! linker (which refuses imports the world does not grant), and smoke-test `info()`.
//!
//! A provider may also export the optional `embeddings` interface (world
//! `llm-provider-embeddings`); it then gets a second pre-instance for that world. A provider
//! without it loads exactly as before.

use std::path::PathBuf;
use std::sync::Arc;

use wasmtime::component::{Component, types::ComponentItem};

use super::artifact_cache::{Provenance, sha256_hex};
use super::bindings::{
    dialect::SqlDialectPre, explainer::ResultExplainerPre, provider::LlmProviderPre,
    provider_embeddings::LlmProviderEmbeddingsPre,
};
use super::error::LoadError;
use super::manifest::{Manifest, PluginKind, SUPPORTED_WIT};
use super::runtime::Runtime;
use super::sandbox::PluginState;

/// The WIT package every plugin exports from.
const PACKAGE: &str = "quarry:plugin";

/// The optional interface a provider exports when it offers embeddings.
const EMBEDDINGS: &str = "embeddings";

/// Where a plugin came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Compiled into the `quarry` binary.
    Builtin,
    /// Loaded from this directory of the plugins folder.
    Dir(PathBuf),
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Builtin => f.write_str("built-in"),
            Source::Dir(p) => write!(f, "{}", p.display()),
        }
    }
}

/// The pre-linked component, typed by world.
pub enum Linked {
    /// A `sql-dialect` component.
    Dialect(SqlDialectPre<PluginState>),
    /// An `llm-provider` component, with its `embeddings` export when it has one.
    Provider(LlmProviderPre<PluginState>, Option<LlmProviderEmbeddingsPre<PluginState>>),
    /// A `result-explainer` component.
    Explainer(ResultExplainerPre<PluginState>),
}

/// A plugin that loaded and passed its checks.
pub struct LoadedPlugin {
    /// Its manifest.
    pub manifest: Manifest,
    /// Where it came from.
    pub source: Source,
    /// sha256 of the component bytes.
    pub sha256: String,
    /// The full WIT interface version it exports (for example `0.1.0`).
    pub wit_version: String,
    /// Whether it was compiled now or loaded from the artifact cache.
    pub provenance: Provenance,
    pub(crate) linked: Linked,
    /// A dialect's `prompt-guidance()`, asked once per loaded component: it is the same text
    /// for every question, and a fresh instance per call would otherwise pay for it each time.
    pub(crate) guidance: tokio::sync::OnceCell<String>,
}

impl LoadedPlugin {
    /// Whether this is a provider that exports the optional `embeddings` interface.
    pub fn exports_embeddings(&self) -> bool {
        matches!(self.linked, Linked::Provider(_, Some(_)))
    }
}

impl std::fmt::Debug for LoadedPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedPlugin")
            .field("name", &self.manifest.name)
            .field("kind", &self.manifest.kind)
            .field("source", &self.source)
            .finish()
    }
}

/// Load one plugin. Blocking (it may compile): call from `spawn_blocking` on a server.
pub fn load(runtime: &Runtime, manifest: Manifest, bytes: &[u8], source: Source) -> Result<LoadedPlugin, LoadError> {
    let plugin = manifest.name.clone();
    let sha256 = sha256_hex(bytes);
    if let Some(expected) = &manifest.sha256 {
        if *expected != sha256 {
            return Err(LoadError::Checksum { plugin, expected: expected.clone(), actual: sha256 });
        }
    }
    let (component, provenance) = runtime
        .cache
        .load(runtime.engine(), bytes, &sha256)
        .map_err(|e| LoadError::Compile { plugin: plugin.clone(), detail: format!("{e:#}") })?;
    let exports = plugin_exports(runtime, &component);
    let wit_version = exported_version(&exports, &manifest)?;
    let link_err = |e: wasmtime::Error| LoadError::Link { plugin: plugin.clone(), kind: manifest.kind, detail: format!("{e:#}") };
    let linked = match manifest.kind {
        PluginKind::SqlDialect => Linked::Dialect(
            SqlDialectPre::new(runtime.dialect_linker.instantiate_pre(&component).map_err(link_err)?).map_err(link_err)?,
        ),
        PluginKind::LlmProvider => {
            let pre = runtime.provider_linker.instantiate_pre(&component).map_err(link_err)?;
            // Absent is fine (an older or completion-only provider); present but not matching the
            // interface is the plugin's bug, reported rather than silently ignored.
            let embeddings = if exports.iter().any(|(iface, _)| iface == EMBEDDINGS) {
                Some(LlmProviderEmbeddingsPre::new(pre.clone()).map_err(|e| LoadError::Incompatible {
                    plugin: plugin.clone(),
                    detail: format!("its {PACKAGE}/{EMBEDDINGS} export does not match this host's: {e:#}"),
                })?)
            } else {
                None
            };
            Linked::Provider(LlmProviderPre::new(pre).map_err(link_err)?, embeddings)
        }
        PluginKind::ResultExplainer => Linked::Explainer(
            ResultExplainerPre::new(runtime.explainer_linker.instantiate_pre(&component).map_err(link_err)?)
                .map_err(link_err)?,
        ),
    };
    Ok(LoadedPlugin { manifest, source, sha256, wit_version, provenance, linked, guidance: Default::default() })
}

/// The `quarry:plugin/<interface>@x.y.z` instances a component exports, as (interface, version).
fn plugin_exports(runtime: &Runtime, component: &Component) -> Vec<(String, String)> {
    component
        .component_type()
        .exports(runtime.engine())
        .filter(|(_, item)| matches!(item.ty, ComponentItem::ComponentInstance(_)))
        .filter_map(|(name, _)| {
            let rest = name.strip_prefix(PACKAGE)?.strip_prefix('/')?;
            let (iface, version) = rest.split_once('@').unwrap_or((rest, ""));
            Some((iface.to_string(), version.to_string()))
        })
        .collect()
}

/// Find the export of the manifest's kind among `exports`, check it is a WIT version this host
/// supports, and return that version.
fn exported_version(exports: &[(String, String)], manifest: &Manifest) -> Result<String, LoadError> {
    let incompatible = |detail: String| LoadError::Incompatible { plugin: manifest.name.clone(), detail };
    let wanted = manifest.kind.export_interface();
    let Some((_, version)) = exports.iter().find(|(iface, _)| iface == wanted) else {
        let found: Vec<String> = exports.iter().map(|(i, v)| format!("{PACKAGE}/{i}@{v}")).collect();
        return Err(incompatible(format!(
            "manifest says kind {}, but the component does not export {PACKAGE}/{wanted} (it exports: {})",
            manifest.kind,
            if found.is_empty() { "nothing from quarry:plugin".to_string() } else { found.join(", ") }
        )));
    };
    let major_minor: String = version.splitn(3, '.').take(2).collect::<Vec<_>>().join(".");
    if !SUPPORTED_WIT.contains(&major_minor.as_str()) {
        return Err(incompatible(format!(
            "targets {PACKAGE}@{version}; this host supports {}",
            SUPPORTED_WIT.iter().map(|v| format!("{v}.x")).collect::<Vec<_>>().join(", ")
        )));
    }
    if major_minor != manifest.wit {
        return Err(incompatible(format!(
            "manifest says wit = \"{}\" but the component exports {PACKAGE}@{version}",
            manifest.wit
        )));
    }
    Ok(version.clone())
}

/// A loaded plugin, shared by the registry and in-flight calls.
pub type SharedPlugin = Arc<LoadedPlugin>;
