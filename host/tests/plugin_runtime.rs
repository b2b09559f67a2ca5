//! The plugin runtime end to end, through real components: containment of misbehaving plugins,
//! the sandbox's closed doors, discovery of the plugins folder, refusal of incompatible or
//! broken plugins, hot reload, and the compiled-artifact cache.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use quarry::plugins::artifact_cache::Provenance;
use quarry::plugins::dialect::default_policy;
use quarry::plugins::{CallError, LoadError, PluginRegistry, Runtime, RuntimeConfig};

/// Where `host/build.rs` left the test plugins' components.
const ARTIFACTS: &str = env!("QUARRY_TEST_PLUGINS_DIR");

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("host/ has a parent").to_path_buf()
}

/// Copy a test plugin (its plugin.toml and component) into `plugins_dir/<name>/`.
fn stage(plugins_dir: &Path, crate_dir: &str, name: &str) -> PathBuf {
    let src = repo_root().join("plugins/test-plugins").join(crate_dir);
    let dest = plugins_dir.join(name);
    std::fs::create_dir_all(&dest).expect("create plugin dir");
    std::fs::copy(src.join("plugin.toml"), dest.join("plugin.toml")).expect("copy manifest");
    let wasm = format!("quarry_test_{}.wasm", crate_dir.replace('-', "_"));
    std::fs::copy(Path::new(ARTIFACTS).join(&wasm), dest.join(&wasm)).expect("copy component");
    dest
}

async fn registry_with(plugins_dir: &Path) -> Arc<PluginRegistry> {
    let runtime = Runtime::new(RuntimeConfig {
        cache_dir: Some(std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("plugin-artifact-cache")),
        ..RuntimeConfig::default()
    })
    .expect("runtime");
    PluginRegistry::load(runtime, Some(plugins_dir.to_path_buf())).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn misbehaving_calls_fail_alone_while_good_calls_succeed() {
    let dir = tempfile::tempdir().expect("tempdir");
    stage(dir.path(), "misbehaving-dialect", "misbehaving");
    let registry = registry_with(dir.path()).await;
    let set = registry.current();
    assert!(set.problems.is_empty(), "unexpected load problems: {:?}", set.problems);
    let bad = set.dialect("misbehaving").expect("misbehaving plugin loaded");
    let good = set.dialect("postgres").expect("postgres built-in loaded");
    let policy = default_policy(Some(100));

    let bad_calls = ["loop", "alloc", "trap", "stack", "garbage"].map(|input| {
        let bad = bad.clone();
        let policy = policy.clone();
        tokio::spawn(async move { (input, bad.validate(input, &policy).await) })
    });
    // Good calls run on the same runtime while the bad ones misbehave.
    let good_calls: Vec<_> = (0..40)
        .map(|i| {
            let (good, bad, policy) = (good.clone(), bad.clone(), policy.clone());
            tokio::spawn(async move {
                let sql = format!("SELECT {i} AS n");
                let a = good.validate(&sql, &policy).await;
                let b = bad.validate(&sql, &policy).await;
                (a, b)
            })
        })
        .collect();

    for call in good_calls {
        let (a, b) = call.await.expect("task");
        assert!(matches!(a, Ok(Ok(_))), "good call on postgres failed: {a:?}");
        assert!(matches!(b, Ok(Ok(_))), "good call on the misbehaving plugin failed: {b:?}");
    }
    for call in bad_calls {
        let (input, outcome) = call.await.expect("task");
        let err = match outcome {
            Err(e) => e,
            Ok(v) => panic!("`{input}` should have failed, got {v:?}"),
        };
        assert!(err.to_string().contains("misbehaving"), "error does not name the plugin: {err}");
        match (input, &err) {
            ("loop", CallError::Deadline { limit, .. }) => assert_eq!(limit.as_millis(), 500),
            ("alloc", CallError::MemoryCap { cap, requested, .. }) => {
                assert_eq!(*cap, 16 << 20);
                assert!(requested > cap);
            }
            ("trap", CallError::Trapped { .. }) => {}
            // A Rust guest keeps its frames on a shadow stack in linear memory, so deep recursion
            // usually ends as an out-of-bounds trap before the wasm stack itself overflows.
            ("stack", CallError::StackOverflow { .. }) => {}
            ("stack", CallError::Trapped { detail, .. }) => assert!(detail.contains("out of bounds"), "{detail}"),
            ("garbage", CallError::Malformed { .. }) => {}
            _ => panic!("`{input}` failed the wrong way: {err:?}"),
        }
    }
    // The runtime is still healthy afterwards.
    let after = bad.validate("SELECT 1", &policy).await;
    assert!(matches!(after, Ok(Ok(_))), "{after:?}");
}

#[tokio::test]
async fn plugins_see_no_environment_filesystem_or_network() {
    // SAFETY: set before any other thread of this test reads the environment.
    unsafe { std::env::set_var("QUARRY_TEST_SECRET_VAR", "visible?") };
    let dir = tempfile::tempdir().expect("tempdir");
    stage(dir.path(), "misbehaving-dialect", "misbehaving");
    let registry = registry_with(dir.path()).await;
    let plugin = registry.current().dialect("misbehaving").expect("loaded");
    let policy = default_policy(None);
    for (probe, expected) in [("env", "env-vars:0"), ("fs", "fs-denied"), ("net", "net-denied")] {
        let verdict = plugin.validate(probe, &policy).await.expect("call").expect("accepted");
        assert_eq!(verdict.sql, expected, "probe {probe}");
    }
}

#[tokio::test]
async fn broken_and_incompatible_plugins_are_reported_and_skipped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let plugins = dir.path();
    // A component built against quarry:plugin@0.2.0.
    stage(plugins, "future-dialect", "future");
    // Not a component at all.
    let junk = stage(plugins, "misbehaving-dialect", "junk");
    for entry in std::fs::read_dir(&junk).expect("read") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "wasm") {
            std::fs::write(&path, b"this is not wasm").expect("write");
        }
    }
    rewrite_manifest(&junk, |m| m.replace("name = \"misbehaving\"", "name = \"junk\""));
    // A manifest that asks for a WIT version this host does not have.
    let newer = stage(plugins, "misbehaving-dialect", "newer");
    rewrite_manifest(&newer, |m| {
        m.replace("name = \"misbehaving\"", "name = \"newer\"").replace("wit = \"0.1\"", "wit = \"0.7\"")
    });
    // A dialect component whose manifest claims to be a provider.
    let liar = stage(plugins, "misbehaving-dialect", "liar");
    rewrite_manifest(&liar, |m| {
        m.replace("name = \"misbehaving\"", "name = \"liar\"").replace("sql-dialect", "llm-provider")
    });
    // A second plugin called like a built-in.
    let twin = stage(plugins, "misbehaving-dialect", "twin");
    rewrite_manifest(&twin, |m| m.replace("name = \"misbehaving\"", "name = \"postgres\""));
    // A manifest whose component is pinned to other bytes.
    let pinned = stage(plugins, "misbehaving-dialect", "pinned");
    rewrite_manifest(&pinned, |m| {
        m.replace("name = \"misbehaving\"", "name = \"pinned\"")
            .replace("version = \"0.1.0\"", &format!("version = \"0.1.0\"\nsha256 = \"{}\"", "ab".repeat(32)))
    });
    // And one good plugin, which must still load.
    stage(plugins, "misbehaving-dialect", "misbehaving");

    let registry = registry_with(plugins).await;
    let set = registry.current();
    let problems: Vec<String> = set.problems.iter().map(|p| p.to_string()).collect();
    let find = |needle: &str| problems.iter().any(|p| p.contains(needle));
    assert!(find("targets quarry:plugin@0.2.0; this host supports 0.1.x"), "{problems:#?}");
    assert!(find("`junk`: not a loadable component"), "{problems:#?}");
    assert!(find("targets quarry:plugin@0.7; this host supports 0.1"), "{problems:#?}");
    assert!(find("`liar`: manifest says kind llm-provider"), "{problems:#?}");
    assert!(find("`postgres` (sql-dialect) is defined twice"), "{problems:#?}");
    assert!(find("`pinned`: sha256 mismatch"), "{problems:#?}");
    assert_eq!(problems.len(), 6, "{problems:#?}");
    assert!(matches!(
        set.problems.iter().find(|p| p.to_string().contains("liar")),
        Some(LoadError::Incompatible { .. })
    ));
    assert!(set.dialect("misbehaving").is_some());
    assert!(set.dialect("postgres").is_some_and(|p| p.plugin().source.to_string() == "built-in"));
    for name in ["future", "junk", "newer", "liar", "pinned"] {
        assert!(set.dialect(name).is_none() && set.provider(name).is_none(), "{name} should not load");
    }
}

fn rewrite_manifest(dir: &Path, edit: impl Fn(&str) -> String) {
    let path = dir.join("plugin.toml");
    let text = std::fs::read_to_string(&path).expect("read manifest");
    std::fs::write(&path, edit(&text)).expect("write manifest");
}

#[tokio::test]
async fn reload_adds_and_removes_plugins_without_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let registry = registry_with(dir.path()).await;
    let before = registry.current();
    assert!(before.dialect("misbehaving").is_none());

    let staged = stage(dir.path(), "misbehaving-dialect", "misbehaving");
    let added = registry.reload().await;
    let plugin = added.dialect("misbehaving").expect("picked up on reload");
    // A call started on the old set still works: sets are immutable snapshots.
    assert!(before.dialect("postgres").is_some());

    std::fs::remove_dir_all(staged).expect("remove");
    let removed = registry.reload().await;
    assert!(removed.dialect("misbehaving").is_none());
    assert!(removed.dialect("postgres").is_some(), "built-ins survive a reload");
    // A handle taken before the reload keeps working until dropped.
    let verdict = plugin.validate("SELECT 1", &default_policy(None)).await;
    assert!(matches!(verdict, Ok(Ok(_))), "{verdict:?}");
}

#[tokio::test]
async fn compiled_components_are_cached_on_disk() {
    let cache = tempfile::tempdir().expect("tempdir");
    let config = RuntimeConfig { cache_dir: Some(cache.path().join("artifacts")), ..RuntimeConfig::default() };
    let first = PluginRegistry::load(Runtime::new(config.clone()).expect("runtime"), None).await;
    let p = first.current().dialect("postgres").expect("postgres");
    assert_eq!(p.plugin().provenance, Provenance::Compiled);
    let cached_files = std::fs::read_dir(cache.path().join("artifacts")).expect("cache dir").count();
    assert!(cached_files >= 3, "expected an artifact per built-in, found {cached_files}");

    let second = PluginRegistry::load(Runtime::new(config).expect("runtime"), None).await;
    let p = second.current().dialect("postgres").expect("postgres");
    assert_eq!(p.plugin().provenance, Provenance::Cached);
    let verdict = p.validate("SELECT 1", &default_policy(None)).await;
    assert!(matches!(verdict, Ok(Ok(_))), "{verdict:?}");

    // A corrupted artifact is recompiled, not trusted. (Replace the files rather than overwrite
    // them in place: the loaded components are memory-mapped from them.)
    drop((p, first, second));
    for entry in std::fs::read_dir(cache.path().join("artifacts")).expect("cache dir") {
        let path = entry.expect("entry").path();
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, b"garbage").expect("corrupt");
        std::fs::rename(&tmp, &path).expect("replace");
    }
    let third = PluginRegistry::load(
        Runtime::new(RuntimeConfig { cache_dir: Some(cache.path().join("artifacts")), ..RuntimeConfig::default() })
            .expect("runtime"),
        None,
    )
    .await;
    let p = third.current().dialect("postgres").expect("postgres");
    assert_eq!(p.plugin().provenance, Provenance::Compiled);
    assert!(third.current().problems.is_empty());
}
