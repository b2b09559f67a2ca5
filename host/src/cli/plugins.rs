//! `quarry plugins …`: list the loaded plugins, or check a plugin directory before dropping it in.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;

use crate::config::PluginSettings;
use crate::plugins::registry;
use crate::plugins::{Runtime, RuntimeConfig};

/// `quarry plugins` subcommands.
#[derive(Debug, Subcommand)]
pub enum PluginsCommand {
    /// List the built-in and dropped-in plugins (name, kind, version, source), and any that failed to load.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Load one plugin directory (plugin.toml + component) and report whether it would load.
    Check {
        /// The plugin's directory.
        dir: PathBuf,
    },
}

pub async fn run(cmd: PluginsCommand, settings: &PluginSettings) -> anyhow::Result<ExitCode> {
    match cmd {
        PluginsCommand::List { json } => list(settings, json).await,
        PluginsCommand::Check { dir } => check(dir).await,
    }
}

async fn list(settings: &PluginSettings, json: bool) -> anyhow::Result<ExitCode> {
    let registry = super::load_registry(settings).await?;
    let set = registry.current();
    let rows = set.list();
    let problems: Vec<String> = set.problems.iter().map(|p| p.to_string()).collect();
    if json {
        let out = serde_json::json!({ "plugins": rows, "problems": problems });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!("{:<16} {:<17} {:<9} {:<7} SOURCE", "NAME", "KIND", "VERSION", "WIT");
        for r in &rows {
            println!("{:<16} {:<17} {:<9} {:<7} {}", r.name, r.kind.to_string(), r.version, r.wit, r.source);
        }
        for p in &problems {
            eprintln!("skipped: {p}");
        }
    }
    Ok(if problems.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(2) })
}

async fn check(dir: PathBuf) -> anyhow::Result<ExitCode> {
    let runtime = Runtime::new(RuntimeConfig::default())?;
    match registry::check_dir(&runtime, &dir).await {
        Ok(p) => {
            println!("ok: {} ({}, version {}, quarry:plugin@{})", p.manifest.name, p.manifest.kind, p.manifest.version, p.wit_version);
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("refused: {e}");
            Ok(ExitCode::FAILURE)
        }
    }
}
