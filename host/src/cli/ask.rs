//! `quarry ask`: one question through the whole pipeline from the command line. Progress goes to
//! stderr as it happens; the SQL, the rows (as an aligned table) and the explanation go to
//! stdout. The exit code is non-zero when there is no answer.
//!
//! Settings come from the environment and `quarry.toml`, like the server's; the flags override
//! the database and the LLM provider for this run.

use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use serde_json::Value;

use super::llm::ProviderArgs;
use crate::config::PluginSettings;
use crate::db::DatabaseUrl;
use crate::pipeline::{AnswerStatus, Engine, EngineConfig, Progress, ProgressSink, Question};
use crate::store::Store;

/// Rows printed; the rest are counted.
const MAX_PRINTED_ROWS: usize = 100;
/// Longest cell printed, in characters.
const MAX_CELL_CHARS: usize = 60;

/// `quarry ask` arguments.
#[derive(Debug, Args)]
pub struct AskArgs {
    /// The database (postgres://, mysql://, mariadb://, sqlite:) [env: QUARRY_DATABASE_URL or POSTGRES_*].
    #[arg(long)]
    db: Option<String>,
    #[command(flatten)]
    provider: ProviderArgs,
    /// The session: earlier questions of it give context to follow-ups.
    #[arg(long, default_value = "cli")]
    session: String,
    /// Repairs allowed after the first attempt.
    #[arg(long, default_value_t = 5)]
    retries: u32,
    /// Generate and check the SQL only; do not run it.
    #[arg(long)]
    generate_only: bool,
    /// Print the model's answer as it streams (to stderr).
    #[arg(long)]
    stream: bool,
    /// The question.
    question: String,
}

/// Run `quarry ask`.
pub async fn run(args: AskArgs, settings: &PluginSettings) -> anyhow::Result<ExitCode> {
    let mut config = EngineConfig::from_env()?;
    if let Some(db) = &args.db {
        config.database = Some(DatabaseUrl::parse(db).context("--db")?);
    }
    config.llm = config.llm.overlay(args.provider.spec()?);
    let store = Store::from_env(&config.settings.data_dir).await?;
    let registry = super::load_registry(settings).await?;
    let engine = Engine::new(registry, config, store).await?;

    let question = Question { retry_count: args.retries, ..Question::new(args.session, args.question) };
    let (sink, mut events) = ProgressSink::channel(64);
    let stream = args.stream;
    let printer = tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            match event {
                Progress::Stage { stage, message } => eprintln!("[{}] {message}", stage.as_str()),
                Progress::Token(text) if stream => eprint!("{text}"),
                Progress::AttemptFailed { attempt, reason } => eprintln!("[attempt {attempt}] failed: {reason}"),
                Progress::Token(_) | Progress::Sql { .. } | Progress::Explanation(_) | Progress::Done(_) => {}
            }
        }
    });
    let result =
        if args.generate_only { engine.generate(question, sink).await } else { engine.ask(question, sink).await };
    // The sink was moved into the call and is gone now, so the printer drains and ends.
    let _ = printer.await;
    let answer = result?;

    if let Some(description) = &answer.description {
        println!("-- {description}");
    }
    if let Some(sql) = &answer.sql {
        println!("{sql};\n");
    }
    if let Some(results) = &answer.results {
        println!("{}", text_table(&results.columns, &results.rows));
        let capped = if results.truncated { " (capped by the row limit)" } else { "" };
        println!(
            "({} row{}{capped}, {} ms)\n",
            results.row_count,
            if results.row_count == 1 { "" } else { "s" },
            results.execution_time_ms
        );
    }
    if let Some(explanation) = &answer.explanation {
        println!("{explanation}");
    }
    eprintln!(
        "[{} · {} attempt(s) · {} in / {} out tokens · {} ms]",
        answer.status.as_str(),
        answer.attempts.len(),
        answer.usage.input_tokens,
        answer.usage.output_tokens,
        answer.timings_ms.get("total").copied().unwrap_or_default()
    );
    if answer.status == AnswerStatus::Error {
        eprintln!("error: {}", answer.error.as_deref().unwrap_or("no answer"));
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// Columns padded to their widest cell, at most [`MAX_PRINTED_ROWS`] rows.
fn text_table(columns: &[String], rows: &[Vec<Value>]) -> String {
    let shown: Vec<Vec<String>> = rows
        .iter()
        .take(MAX_PRINTED_ROWS)
        .map(|r| (0..columns.len()).map(|i| r.get(i).map(cell).unwrap_or_default()).collect())
        .collect();
    let widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| shown.iter().map(|r| r[i].chars().count()).chain([c.chars().count()]).max().unwrap_or(0))
        .collect();
    let line = |cells: &[String]| -> String {
        cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join(" | ")
            .trim_end()
            .to_string()
    };
    let mut out = vec![line(columns), widths.iter().map(|w| "-".repeat(*w)).collect::<Vec<_>>().join("-+-")];
    out.extend(shown.iter().map(|r| line(r)));
    if rows.len() > MAX_PRINTED_ROWS {
        out.push(format!("… {} more rows", rows.len() - MAX_PRINTED_ROWS));
    }
    out.join("\n")
}

/// One cell on one line, cut to [`MAX_CELL_CHARS`].
fn cell(v: &Value) -> String {
    let text = match v {
        Value::Null => "NULL".to_string(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let text = text.replace(['\n', '\r', '\t'], " ");
    if text.chars().count() <= MAX_CELL_CHARS {
        return text;
    }
    let mut cut: String = text.chars().take(MAX_CELL_CHARS - 1).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tables_are_aligned() {
        let t = text_table(&["name".into(), "n".into()], &[vec![json!("Ann"), json!(12)], vec![Value::Null, json!(3)]]);
        assert_eq!(t, "name | n\n-----+---\nAnn  | 12\nNULL | 3");
    }
}
