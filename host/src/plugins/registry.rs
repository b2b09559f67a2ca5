//! Discovery: the built-in plugins plus every plugin in the plugins folder, loaded into an
//! immutable [`PluginSet`] that can be swapped for a fresh one at run time ([`PluginRegistry::reload`]).
//!
//! A plugin that fails to load is reported in the set's `problems` and skipped, never fatal.
//! In-flight calls keep the set they started with.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;

use super::builtin::BUILTINS;
use super::dialect::DialectPlugin;
use super::error::LoadError;
use super::explainer::ExplainerPlugin;
use super::loader::{self, LoadedPlugin, Source};
use super::manifest::{Manifest, PluginKind};
use super::provider::ProviderPlugin;
use super::runtime::Runtime;

/// The manifest file name in each plugin directory.
pub const MANIFEST_FILE: &str = "plugin.toml";

/// The plugins loaded at one moment, and what failed to load.
pub struct PluginSet {
    runtime: Arc<Runtime>,
    plugins: BTreeMap<(PluginKind, String), Arc<LoadedPlugin>>,
    /// Plugins that were skipped, with the reason.
    pub problems: Vec<LoadError>,
    /// How long building this set took.
    pub load_time: Duration,
}

/// One row of `quarry plugins list`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PluginSummary {
    /// Plugin name.
    pub name: String,
    /// Its world.
    pub kind: PluginKind,
    /// Its own version.
    pub version: String,
    /// The quarry:plugin version it exports.
    pub wit: String,
    /// `built-in` or its directory.
    pub source: String,
    /// One line for people.
    pub description: String,
    /// Memory cap in bytes.
    pub memory_bytes: u64,
    /// Per-call timeout in milliseconds.
    pub timeout_ms: u64,
    /// A provider that also exports the optional `embeddings` interface.
    pub embeddings: bool,
}

impl PluginSet {
    /// Every loaded plugin, by kind then name.
    pub fn list(&self) -> Vec<PluginSummary> {
        self.plugins
            .values()
            .map(|p| PluginSummary {
                name: p.manifest.name.clone(),
                kind: p.manifest.kind,
                version: p.manifest.version.clone(),
                wit: p.wit_version.clone(),
                source: p.source.to_string(),
                description: p.manifest.description.clone(),
                memory_bytes: p.manifest.limits.memory_bytes,
                timeout_ms: p.manifest.limits.timeout.as_millis() as u64,
                embeddings: p.exports_embeddings(),
            })
            .collect()
    }

    fn get(&self, kind: PluginKind, name: &str) -> Option<Arc<LoadedPlugin>> {
        self.plugins.get(&(kind, name.to_string())).cloned()
    }

    /// The dialect plugin called `name`.
    pub fn dialect(&self, name: &str) -> Option<DialectPlugin> {
        DialectPlugin::new(self.runtime.clone(), self.get(PluginKind::SqlDialect, name)?)
    }

    /// The provider plugin called `name`.
    pub fn provider(&self, name: &str) -> Option<ProviderPlugin> {
        ProviderPlugin::new(self.runtime.clone(), self.get(PluginKind::LlmProvider, name)?)
    }

    /// The explainer plugin called `name`.
    pub fn explainer(&self, name: &str) -> Option<ExplainerPlugin> {
        ExplainerPlugin::new(self.runtime.clone(), self.get(PluginKind::ResultExplainer, name)?)
    }

    /// Names of the loaded plugins of one kind.
    pub fn names(&self, kind: PluginKind) -> Vec<String> {
        self.plugins.keys().filter(|(k, _)| *k == kind).map(|(_, n)| n.clone()).collect()
    }
}

/// The current [`PluginSet`], swappable at run time.
pub struct PluginRegistry {
    runtime: Arc<Runtime>,
    dir: Option<PathBuf>,
    current: ArcSwap<PluginSet>,
}

impl PluginRegistry {
    /// Load the built-ins and the plugins in `dir` (if any). Compiling may take a while the first
    /// time; cached artifacts make later starts fast.
    pub async fn load(runtime: Arc<Runtime>, dir: Option<PathBuf>) -> Arc<Self> {
        let set = build_set(runtime.clone(), dir.clone()).await;
        Arc::new(Self { runtime, dir, current: ArcSwap::from_pointee(set) })
    }

    /// The plugins loaded now.
    pub fn current(&self) -> Arc<PluginSet> {
        self.current.load_full()
    }

    /// The runtime the plugins run in.
    pub fn runtime(&self) -> &Arc<Runtime> {
        &self.runtime
    }

    /// Re-read the plugins folder and swap in the new set. Calls already running finish on the
    /// old one. Returns the new set.
    pub async fn reload(&self) -> Arc<PluginSet> {
        let set = Arc::new(build_set(self.runtime.clone(), self.dir.clone()).await);
        self.current.store(set.clone());
        set
    }
}

async fn build_set(runtime: Arc<Runtime>, dir: Option<PathBuf>) -> PluginSet {
    let started = Instant::now();
    let rt = runtime.clone();
    // Compiling is CPU-bound and blocking: keep it off the async workers.
    let candidates = tokio::task::spawn_blocking(move || load_candidates(&rt, dir.as_deref()))
        .await
        .unwrap_or_else(|e| vec![Err(LoadError::Compile { plugin: "?".into(), detail: format!("loader panicked: {e}") })]);
    let mut plugins: BTreeMap<(PluginKind, String), Arc<LoadedPlugin>> = BTreeMap::new();
    let mut problems = Vec::new();
    for candidate in candidates {
        let plugin = match candidate {
            Ok(p) => p,
            Err(e) => {
                problems.push(e);
                continue;
            }
        };
        let key = (plugin.manifest.kind, plugin.manifest.name.clone());
        if let Some(kept) = plugins.get(&key) {
            problems.push(LoadError::Duplicate { plugin: key.1, kind: key.0, kept: kept.source.to_string() });
            continue;
        }
        let plugin = Arc::new(plugin);
        if let Err(e) = smoke_test(&runtime, &plugin).await {
            problems.push(e);
            continue;
        }
        plugins.insert(key, plugin);
    }
    for p in &problems {
        tracing::warn!("plugin skipped: {p}");
    }
    PluginSet { runtime, plugins, problems, load_time: started.elapsed() }
}

fn load_candidates(runtime: &Runtime, dir: Option<&Path>) -> Vec<Result<LoadedPlugin, LoadError>> {
    let mut out: Vec<Result<LoadedPlugin, LoadError>> = BUILTINS
        .iter()
        .map(|b| {
            let manifest = Manifest::parse(b.manifest)
                .map_err(|source| LoadError::Manifest { path: PathBuf::from(b.crate_dir).join(MANIFEST_FILE), source })?;
            loader::load(runtime, manifest, b.component, Source::Builtin)
        })
        .collect();
    if let Some(dir) = dir {
        out.extend(plugin_dirs(dir).into_iter().map(|d| load_dir(runtime, &d)));
    }
    out
}

/// Subdirectories of the plugins folder that hold a manifest, in name order. A missing folder
/// is simply empty.
fn plugin_dirs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join(MANIFEST_FILE).is_file())
        .collect();
    dirs.sort();
    dirs
}

/// Load `dir/plugin.toml` and the component it names (default: the only `.wasm` file there).
pub fn load_dir(runtime: &Runtime, dir: &Path) -> Result<LoadedPlugin, LoadError> {
    let manifest_path = dir.join(MANIFEST_FILE);
    let text = std::fs::read_to_string(&manifest_path).map_err(|source| LoadError::Io { path: manifest_path.clone(), source })?;
    let manifest = Manifest::parse(&text).map_err(|source| LoadError::Manifest { path: manifest_path.clone(), source })?;
    let component_path = match &manifest.component {
        Some(file) => dir.join(file),
        None => single_wasm(dir).ok_or_else(|| LoadError::Io {
            path: dir.to_path_buf(),
            source: std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "no `component` in plugin.toml and not exactly one .wasm file in the directory",
            ),
        })?,
    };
    let bytes = std::fs::read(&component_path).map_err(|source| LoadError::Io { path: component_path.clone(), source })?;
    loader::load(runtime, manifest, &bytes, Source::Dir(dir.to_path_buf()))
}

/// Load one plugin directory and run its start-up check, exactly as the registry would, without
/// adding it anywhere: what `quarry plugins check` runs.
pub async fn check_dir(runtime: &Arc<Runtime>, dir: &Path) -> Result<Arc<LoadedPlugin>, LoadError> {
    let rt = runtime.clone();
    let owned = dir.to_path_buf();
    let plugin = tokio::task::spawn_blocking(move || load_dir(&rt, &owned))
        .await
        .map_err(|e| LoadError::Compile { plugin: "?".into(), detail: format!("loader panicked: {e}") })??;
    let plugin = Arc::new(plugin);
    smoke_test(runtime, &plugin).await?;
    Ok(plugin)
}

fn single_wasm(dir: &Path) -> Option<PathBuf> {
    let mut found = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "wasm"));
    let first = found.next()?;
    found.next().is_none().then_some(first)
}

/// Call `info()` once: the plugin must run, and must call itself what its manifest says.
async fn smoke_test(runtime: &Arc<Runtime>, plugin: &Arc<LoadedPlugin>) -> Result<(), LoadError> {
    let name = plugin.manifest.name.clone();
    let result = if let Some(p) = DialectPlugin::new(runtime.clone(), plugin.clone()) {
        p.info().await
    } else if let Some(p) = ProviderPlugin::new(runtime.clone(), plugin.clone()) {
        p.info().await
    } else if let Some(p) = ExplainerPlugin::new(runtime.clone(), plugin.clone()) {
        p.info().await
    } else {
        return Ok(());
    };
    let info = result.map_err(|source| LoadError::SmokeTest { plugin: name.clone(), source })?;
    if info.name != name {
        return Err(LoadError::Incompatible {
            plugin: name,
            detail: format!("the component calls itself `{}` in info(), but its manifest says `{}`", info.name, plugin.manifest.name),
        });
    }
    Ok(())
}
