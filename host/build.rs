//! Builds the plugins under `plugins/` into `wasm32-wasip2` components and embeds the built-ins.
//!
//! The plugins are a cargo workspace of their own; this script runs one nested `cargo build` for
//! it with a separate target directory (so the outer build's lock is not contended), then writes
//! `$OUT_DIR/builtins.rs` listing each built-in plugin's manifest and component. Plugins under
//! `plugins/test-plugins/` are built too but not embedded: tests find them through the
//! `QUARRY_TEST_PLUGINS_DIR` compile-time variable.

use std::path::{Path, PathBuf};
use std::process::Command;

const TARGET: &str = "wasm32-wasip2";

fn main() {
    let manifest_dir = PathBuf::from(env("CARGO_MANIFEST_DIR"));
    let root = manifest_dir.parent().expect("host/ has a parent").to_path_buf();
    let plugins = root.join("plugins");
    let wit = root.join("wit");
    println!("cargo:rerun-if-changed={}", plugins.display());
    println!("cargo:rerun-if-changed={}", wit.display());
    // `sqlx::migrate!` embeds these files but cannot make cargo watch for new ones.
    println!("cargo:rerun-if-changed={}", manifest_dir.join("migrations").display());

    require_target();
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
        .join("wasm");
    build_plugins(&plugins, &target_dir);
    let artifacts = target_dir.join(TARGET).join("release");

    let mut builtins = String::from("/// Every built-in plugin.\npub static BUILTINS: &[BuiltinPlugin] = &[\n");
    for dir in plugin_crates(&plugins) {
        let name = crate_name(&dir).replace('-', "_");
        let wasm = artifacts.join(format!("{name}.wasm"));
        if !wasm.is_file() {
            fail(&format!("plugin {} did not produce {}", dir.display(), wasm.display()));
        }
        builtins.push_str(&format!(
            "    BuiltinPlugin {{ crate_dir: {:?}, manifest: include_str!({:?}), component: include_bytes!({:?}) }},\n",
            dir.strip_prefix(&root).unwrap_or(&dir).display().to_string(),
            dir.join("plugin.toml").display().to_string(),
            wasm.display().to_string(),
        ));
    }
    builtins.push_str("];\n");
    let out = PathBuf::from(env("OUT_DIR"));
    std::fs::write(out.join("builtins.rs"), builtins).unwrap_or_else(|e| fail(&format!("cannot write builtins.rs: {e}")));
    println!("cargo:rustc-env=QUARRY_TEST_PLUGINS_DIR={}", artifacts.display());
}

fn env(key: &str) -> String {
    std::env::var(key).unwrap_or_else(|_| fail(&format!("{key} is not set")))
}

/// Stop the build with one line that says what is wrong.
fn fail(msg: &str) -> ! {
    eprintln!("error: {msg}");
    println!("cargo:warning={msg}");
    std::process::exit(1);
}

/// The target must be installed; say how to install it if not.
fn require_target() {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let sysroot = Command::new(&rustc).args(["--print", "sysroot"]).output();
    let installed = match sysroot {
        Ok(out) if out.status.success() => {
            let root = String::from_utf8_lossy(&out.stdout).trim().to_string();
            Path::new(&root).join("lib/rustlib").join(TARGET).join("lib").is_dir()
        }
        _ => false,
    };
    if !installed {
        fail(&format!("the {TARGET} target is missing; run: rustup target add {TARGET}"));
    }
}

fn build_plugins(plugins: &Path, target_dir: &Path) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--release", "--workspace", "--target", TARGET])
        .arg("--manifest-path")
        .arg(plugins.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(target_dir);
    // The outer build's settings are for the host, not for wasm guests.
    for var in ["CARGO_ENCODED_RUSTFLAGS", "RUSTFLAGS", "CARGO_BUILD_TARGET", "CARGO_TARGET_DIR", "RUSTC_WORKSPACE_WRAPPER", "CARGO_PRIMARY_PACKAGE"] {
        cmd.env_remove(var);
    }
    for (key, _) in std::env::vars() {
        if key.starts_with("CARGO_PROFILE_") || key.starts_with("CARGO_FEATURE_") {
            cmd.env_remove(key);
        }
    }
    match cmd.status() {
        Ok(s) if s.success() => {}
        Ok(s) => fail(&format!("building the plugins for {TARGET} failed ({s}); see the cargo output above")),
        Err(e) => fail(&format!("cannot run cargo to build the plugins: {e}")),
    }
}

/// Directories directly under `plugins/` with a `plugin.toml`: the built-ins.
fn plugin_crates(plugins: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(plugins)
        .unwrap_or_else(|e| fail(&format!("cannot read {}: {e}", plugins.display())))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("plugin.toml").is_file())
        .collect();
    dirs.sort();
    dirs
}

/// The `[package] name` of the crate in `dir`.
fn crate_name(dir: &Path) -> String {
    let text = std::fs::read_to_string(dir.join("Cargo.toml"))
        .unwrap_or_else(|e| fail(&format!("cannot read {}/Cargo.toml: {e}", dir.display())));
    let value: toml::Table = toml::from_str(&text).unwrap_or_else(|e| fail(&format!("{}/Cargo.toml: {e}", dir.display())));
    value
        .get("package")
        .and_then(|p| p.get("name"))
        .and_then(|n| n.as_str())
        .map(str::to_string)
        .unwrap_or_else(|| fail(&format!("{}/Cargo.toml has no package name", dir.display())))
}
