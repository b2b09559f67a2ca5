//! The "write your own dialect plugin" walkthrough, proven: build `examples/dialect-template`
//! as a separate component, drop it into a plugins folder, and validate SQL through it.

use std::path::Path;
use std::process::Command;

use quarry::plugins::dialect::default_policy;
use quarry::plugins::{PluginRegistry, Runtime, RuntimeConfig};

#[tokio::test]
async fn a_dialect_built_outside_the_tree_loads_from_the_plugins_folder() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("repo root").to_path_buf();
    let example = root.join("examples/dialect-template");
    let target_dir = root.join("target/wasm-examples");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "--release", "--target", "wasm32-wasip2", "--manifest-path"])
        .arg(example.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir)
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .status()
        .expect("run cargo");
    assert!(status.success(), "building the example dialect failed");

    let plugins = tempfile::tempdir().expect("tempdir");
    let dest = plugins.path().join("duckdb");
    std::fs::create_dir_all(&dest).expect("mkdir");
    std::fs::copy(example.join("plugin.toml"), dest.join("plugin.toml")).expect("manifest");
    std::fs::copy(target_dir.join("wasm32-wasip2/release/duckdb_dialect.wasm"), dest.join("duckdb_dialect.wasm")).expect("component");

    let registry = PluginRegistry::load(Runtime::new(RuntimeConfig::default()).expect("runtime"), Some(plugins.path().to_path_buf())).await;
    let set = registry.current();
    assert!(set.problems.is_empty(), "{:?}", set.problems);
    let duckdb = set.dialect("duckdb").expect("the example dialect loaded");
    assert!(duckdb.plugin().source.to_string().contains("duckdb"));

    let ok = duckdb.validate("select name from people", &default_policy(Some(10))).await.expect("call").expect("accepted");
    assert_eq!(ok.sql, "SELECT name FROM people LIMIT 10");
    assert_eq!(ok.tables, vec!["people".to_string()]);
    let refused = duckdb.validate("delete from people", &default_policy(Some(10))).await.expect("call").expect_err("refused");
    assert_eq!(refused[0].code, "not-read-only");
    assert!(duckdb.prompt_guidance().await.expect("guidance").contains("DuckDB"));
}
