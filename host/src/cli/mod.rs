//! The `quarry` command line: one module per command group.

mod ask;
mod bench;
mod bench_offline;
mod bench_providers;
mod first_run;
mod llm;
mod plugins;
mod secrets;
mod serve;
mod sql;

pub use sql::kind_name;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};

use crate::config::PluginSettings;
use crate::plugins::{PluginRegistry, Runtime, RuntimeConfig};

/// Quarry: ask a database questions in plain language.
#[derive(Debug, Parser)]
#[command(name = "quarry", version, about)]
pub struct Cli {
    /// Log more (repeat for more detail); `RUST_LOG` overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// The drop-in plugins folder [env: QUARRY_PLUGINS_DIR, default ./plugins.d].
    #[arg(long, global = true)]
    pub plugins_dir: Option<PathBuf>,
    /// What to do; without one, `serve`.
    #[command(subcommand)]
    command: Option<Command>,
}

impl Cli {
    /// Whether this runs the server (`serve`, or no command at all).
    pub fn serves(&self) -> bool {
        matches!(self.command, None | Some(Command::Serve(_)))
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the HTTP API (the default when no command is given).
    Serve(serve::ServeArgs),
    /// Ask a question about a database: print the SQL, the rows and an explanation.
    Ask(ask::AskArgs),
    /// Inspect the loaded plugins.
    #[command(subcommand)]
    Plugins(plugins::PluginsCommand),
    /// Check SQL with a dialect plugin.
    #[command(subcommand)]
    Sql(sql::SqlCommand),
    /// Talk to the configured LLM provider: complete a prompt, list models.
    #[command(subcommand)]
    Llm(llm::LlmCommand),
    /// Measure Quarry's own overheads and print the numbers.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// Manage the key that seals stored credentials (rotate it).
    #[command(subcommand)]
    Secrets(secrets::SecretsCommand),
}

/// Run the parsed command; the exit code says whether it succeeded.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let mut settings = PluginSettings::from_env();
    if let Some(dir) = cli.plugins_dir {
        settings.plugins_dir = dir;
    }
    let command = cli.command.unwrap_or_else(|| Command::Serve(serve::ServeArgs::default()));
    match command {
        Command::Serve(args) => serve::run(args, &settings).await,
        Command::Ask(args) => ask::run(args, &settings).await,
        Command::Plugins(cmd) => plugins::run(cmd, &settings).await,
        Command::Sql(cmd) => sql::run(cmd, &settings).await,
        Command::Llm(cmd) => llm::run(cmd, &settings).await,
        Command::Bench(cmd) => bench::run(cmd, &settings).await,
        Command::Secrets(cmd) => secrets::run(cmd).await,
    }
}

/// Log to stderr; `-v` for debug, `-vv` for trace; `RUST_LOG` wins when set. The server
/// (`serving`) logs at info by default, other commands only warnings.
pub fn init_tracing(verbose: u8, serving: bool) {
    let default = match verbose {
        0 if serving => "info",
        0 => "warn",
        1 => "info,quarry=debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    // Colour only on a terminal: log files and collectors get plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    // Reloadable, so the `log_level` setting can change the filter while the server runs.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .with_filter_reloading();
    let handle = builder.reload_handle();
    if builder.try_init().is_ok() {
        crate::app_settings::log_level::install_reloader(Box::new(move |directive: &str| {
            let filter = tracing_subscriber::EnvFilter::try_new(directive).map_err(|e| e.to_string())?;
            handle.reload(filter).map_err(|e| e.to_string())
        }));
    }
}

/// Start the plugin runtime and load the built-ins plus the plugins folder.
async fn load_registry(settings: &PluginSettings) -> anyhow::Result<Arc<PluginRegistry>> {
    let runtime = Runtime::new(RuntimeConfig {
        max_concurrent_calls: settings.max_concurrent_calls,
        cache_dir: Some(settings.cache_dir.clone()),
        pooling: true,
    })?;
    Ok(PluginRegistry::load(runtime, Some(settings.plugins_dir.clone())).await)
}
