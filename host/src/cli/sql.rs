//! `quarry sql check`: validate SQL with a dialect plugin and print the verdict as JSON.
//!
//! With `--jsonl FILE` (or `-` for stdin) every line is one JSON-encoded statement, and one JSON
//! verdict is printed per line, in order: a whole query log checked at once. The exit code is 0
//! when everything was accepted, 1 when anything was refused or failed.

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use futures::StreamExt;
use serde::Serialize;

use crate::config::PluginSettings;
use crate::plugins::DialectPlugin;
use crate::plugins::bindings::dialect::exports::quarry::plugin::dialect::{Policy, StatementKind};
use crate::plugins::dialect::default_policy;

/// Statements validated at once in `--jsonl` mode.
const JSONL_CONCURRENCY: usize = 8;

/// `quarry sql` subcommands.
#[derive(Debug, Subcommand)]
pub enum SqlCommand {
    /// Print the dialect plugin's verdict on SQL as JSON; exit non-zero on refusal.
    Check {
        /// Dialect plugin: postgres, mysql, sqlite, or a dropped-in one.
        #[arg(long, short)]
        dialect: String,
        /// The SQL, or `-` to read it from stdin.
        sql: Option<String>,
        /// Check one JSON-encoded statement per line of FILE (`-` for stdin) instead.
        #[arg(long, conflicts_with = "sql")]
        jsonl: Option<PathBuf>,
        /// Row limit to apply to accepted queries.
        #[arg(long)]
        row_limit: Option<u64>,
        /// Only these tables may be read (repeatable).
        #[arg(long = "allow-table")]
        allowed_tables: Vec<String>,
        /// Refuse these functions too (repeatable).
        #[arg(long = "deny-function")]
        denied_functions: Vec<String>,
    },
}

/// One verdict as printed.
#[derive(Debug, Serialize)]
#[serde(untagged)]
enum Verdict {
    Accepted { ok: bool, sql: String, kind: &'static str, tables: Vec<String>, warnings: Vec<String> },
    Refused { ok: bool, violations: Vec<ViolationOut> },
}

#[derive(Debug, Serialize)]
struct ViolationOut {
    code: String,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    offset: Option<u32>,
}

impl Verdict {
    fn accepted(&self) -> bool {
        matches!(self, Verdict::Accepted { .. })
    }

    fn refused(code: &str, message: String) -> Self {
        Verdict::Refused { ok: false, violations: vec![ViolationOut { code: code.into(), message, offset: None }] }
    }
}

/// The name a statement kind has in JSON output.
pub fn kind_name(kind: StatementKind) -> &'static str {
    match kind {
        StatementKind::Select => "select",
        StatementKind::WithSelect => "with-select",
        StatementKind::SetOperation => "set-operation",
        StatementKind::Values => "values",
        StatementKind::Explain => "explain",
    }
}

pub async fn run(cmd: SqlCommand, settings: &PluginSettings) -> anyhow::Result<ExitCode> {
    let SqlCommand::Check { dialect, sql, jsonl, row_limit, allowed_tables, denied_functions } = cmd;
    let registry = super::load_registry(settings).await?;
    let set = registry.current();
    let plugin = set.dialect(&dialect).with_context(|| {
        format!("no dialect plugin named `{dialect}` (loaded: {})", set.names(crate::plugins::PluginKind::SqlDialect).join(", "))
    })?;
    let mut policy = default_policy(row_limit);
    if !allowed_tables.is_empty() {
        policy.allowed_tables = Some(allowed_tables.iter().map(|t| t.to_lowercase()).collect());
    }
    policy.denied_functions = denied_functions.iter().map(|f| f.to_lowercase()).collect();

    let all_ok = match (sql, jsonl) {
        (_, Some(path)) => check_jsonl(&plugin, &policy, &path).await?,
        (Some(sql), None) => {
            let sql = if sql == "-" { read_stdin()? } else { sql };
            let verdict = check_one(&plugin, &policy, &sql).await;
            println!("{}", serde_json::to_string_pretty(&verdict)?);
            verdict.accepted()
        }
        (None, None) => anyhow::bail!("give the SQL as an argument, `-` to read it from stdin, or --jsonl FILE"),
    };
    Ok(if all_ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

fn read_stdin() -> anyhow::Result<String> {
    let mut s = String::new();
    std::io::Read::read_to_string(&mut std::io::stdin(), &mut s).context("reading SQL from stdin")?;
    Ok(s)
}

async fn check_one(plugin: &DialectPlugin, policy: &Policy, sql: &str) -> Verdict {
    match plugin.validate(sql, policy).await {
        Ok(Ok(v)) => Verdict::Accepted { ok: true, sql: v.sql, kind: kind_name(v.kind), tables: v.tables, warnings: v.warnings },
        Ok(Err(violations)) => Verdict::Refused {
            ok: false,
            violations: violations
                .into_iter()
                .map(|v| ViolationOut { code: v.code, message: v.message, offset: v.offset })
                .collect(),
        },
        Err(e) => Verdict::refused(e.code(), e.to_string()),
    }
}

/// Check every line of `path`; print verdicts in input order while up to
/// [`JSONL_CONCURRENCY`] run at once.
async fn check_jsonl(plugin: &DialectPlugin, policy: &Policy, path: &PathBuf) -> anyhow::Result<bool> {
    let reader: Box<dyn BufRead + Send> = if path.as_os_str() == "-" {
        Box::new(std::io::BufReader::new(std::io::stdin()))
    } else {
        Box::new(std::io::BufReader::new(
            std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?,
        ))
    };
    let lines = reader.lines().enumerate().filter_map(|(i, line)| match line {
        Ok(l) if l.trim().is_empty() => None,
        other => Some((i + 1, other)),
    });
    let mut verdicts = futures::stream::iter(lines)
        .map(|(n, line)| async move {
            let line = match line {
                Ok(l) => l,
                Err(e) => return Verdict::refused("bad-input", format!("line {n} could not be read: {e}")),
            };
            match serde_json::from_str::<String>(&line) {
                Ok(sql) => check_one(plugin, policy, &sql).await,
                Err(e) => Verdict::refused("bad-input", format!("line {n} is not a JSON string: {e}")),
            }
        })
        .buffered(JSONL_CONCURRENCY);
    let mut all_ok = true;
    let stdout = std::io::stdout();
    while let Some(v) = verdicts.next().await {
        all_ok &= v.accepted();
        let mut out = stdout.lock();
        serde_json::to_writer(&mut out, &v)?;
        out.write_all(b"\n")?;
    }
    Ok(all_ok)
}
