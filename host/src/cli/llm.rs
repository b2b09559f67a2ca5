//! `quarry llm`: talk to the configured LLM provider from the command line, so an operator can
//! check a provider (URL, key, model) before wiring it into Quarry.
//!
//! Settings come from the `LLM_*` environment variables; the flags override them for one run.

use std::io::Write;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use clap::{Args, Subcommand};

use crate::config::PluginSettings;
use crate::llm::config::PRESETS;
use crate::llm::{ChatMessage, CompletionEvent, FinishReason, LlmClient, ProviderSettings, ProviderSpec, Role, Secret, user_prompt};
use crate::plugins::capabilities::http::HttpClients;

/// `quarry llm` subcommands.
#[derive(Debug, Subcommand)]
pub enum LlmCommand {
    /// Complete a prompt and stream the answer to stdout (usage and timing go to stderr).
    Complete {
        #[command(flatten)]
        provider: ProviderArgs,
        /// A system prompt to send before the user's.
        #[arg(long)]
        system: Option<String>,
        /// Ask for a JSON object (where the API has a JSON mode).
        #[arg(long)]
        json: bool,
        /// Upper bound on generated tokens.
        #[arg(long)]
        max_tokens: Option<u32>,
        /// Sampling temperature (overrides LLM_TEMPERATURE).
        #[arg(long)]
        temperature: Option<f32>,
        /// Wait for the whole answer instead of streaming it.
        #[arg(long)]
        no_stream: bool,
        /// Also print the model's reasoning ("thinking"), to stderr, when the API streams it.
        #[arg(long)]
        reasoning: bool,
        /// The prompt.
        prompt: String,
    },
    /// List the models the provider offers.
    Models {
        #[command(flatten)]
        provider: ProviderArgs,
    },
    /// List the provider presets.
    Presets,
}

/// Which provider to use; every flag falls back to its `LLM_*` environment variable.
#[derive(Debug, Args)]
pub struct ProviderArgs {
    /// A preset (openai, groq, openrouter, openai-compatible, lmstudio, vllm, anthropic, ollama)
    /// or a provider plugin's name [env: LLM_PROVIDER].
    #[arg(long)]
    provider: Option<String>,
    /// The API's base URL [env: LLM_BASE_URL].
    #[arg(long)]
    base_url: Option<String>,
    /// The model [env: LLM_MODEL].
    #[arg(long)]
    model: Option<String>,
    /// The API key. Prefer the LLM_API_KEY environment variable: other users can see command lines.
    #[arg(long)]
    api_key: Option<String>,
    /// A provider option, KEY=VALUE (repeatable) [env: LLM_OPTIONS].
    #[arg(long = "option", value_name = "KEY=VALUE")]
    options: Vec<String>,
}

impl ProviderArgs {
    fn settings(self) -> anyhow::Result<ProviderSettings> {
        Ok(ProviderSpec::from_env()?.overlay(self.spec()?).resolve()?)
    }

    /// The flags as a spec to lay over the environment's (unset flags leave it alone).
    pub(super) fn spec(self) -> anyhow::Result<ProviderSpec> {
        let mut over = ProviderSpec {
            provider: self.provider,
            base_url: self.base_url,
            model: self.model,
            api_key: self.api_key.map(Secret::new),
            ..ProviderSpec::default()
        };
        for pair in self.options {
            let (k, v) = pair.split_once('=').with_context(|| format!("--option {pair:?}: expected KEY=VALUE"))?;
            over.options.insert(k.trim().to_string(), v.trim().to_string());
        }
        Ok(over)
    }
}

/// Run a `quarry llm` command.
pub async fn run(cmd: LlmCommand, settings: &PluginSettings) -> anyhow::Result<ExitCode> {
    match cmd {
        LlmCommand::Presets => {
            println!("{:<18} {:<10} {:<34} DEFAULT MODEL", "PRESET", "PLUGIN", "BASE URL");
            for p in PRESETS {
                println!("{:<18} {:<10} {:<34} {}", p.name, p.plugin, p.base_url.unwrap_or("(LLM_BASE_URL required)"), p.default_model.unwrap_or("-"));
            }
            Ok(ExitCode::SUCCESS)
        }
        LlmCommand::Models { provider } => {
            let client = client(provider, settings).await?;
            let mut models = client.list_models().await?;
            models.sort_by(|a, b| a.id.cmp(&b.id));
            let width = models.iter().map(|m| m.id.len()).max().unwrap_or(5).max(5);
            println!("{:<width$}  {:>9}  {}", "MODEL", "CONTEXT", "OWNED BY");
            for m in &models {
                let ctx = m.context_window.map(|c| c.to_string()).unwrap_or_else(|| "-".into());
                println!("{:<width$}  {:>9}  {}", m.id, ctx, m.owned_by.as_deref().unwrap_or("-"));
            }
            eprintln!("{} models from {} ({})", models.len(), client.settings().provider, client.settings().base_url);
            Ok(ExitCode::SUCCESS)
        }
        LlmCommand::Complete { provider, system, json, max_tokens, temperature, no_stream, reasoning, prompt } => {
            let client = client(provider, settings).await?;
            let mut req = user_prompt(&prompt);
            if let Some(system) = system {
                req.messages.insert(0, ChatMessage { role: Role::System, content: system });
            }
            req.json_mode = json;
            req.max_tokens = max_tokens;
            req.temperature = temperature;
            let started = Instant::now();
            let completion = if no_stream {
                let c = client.complete(req).await?;
                println!("{}", c.text);
                c
            } else {
                let mut stream = client.stream(req);
                let mut out = std::io::stdout().lock();
                let mut first_token = None;
                while let Some(event) = stream.next().await {
                    match event {
                        CompletionEvent::TextDelta(t) => {
                            first_token.get_or_insert_with(|| started.elapsed());
                            out.write_all(t.as_bytes())?;
                            out.flush()?;
                        }
                        CompletionEvent::ReasoningDelta(t) if reasoning => eprint!("{t}"),
                        CompletionEvent::ReasoningDelta(_) | CompletionEvent::Usage(_) => {}
                    }
                }
                writeln!(out)?;
                drop(out);
                if let Some(t) = first_token {
                    eprintln!("first token after {} ms", t.as_millis());
                }
                stream.finish().await?
            };
            let usage = completion
                .usage
                .map(|u| format!("{} in / {} out tokens", u.input_tokens, u.output_tokens))
                .unwrap_or_else(|| "usage not reported".into());
            let finish = match completion.finish {
                FinishReason::Stop => "stop",
                FinishReason::Length => "length (max tokens reached)",
                FinishReason::ContentFilter => "content filter",
                FinishReason::Other => "other",
            };
            eprintln!(
                "[{} · {} · finish: {finish} · {usage} · {:.2} s]",
                client.settings().provider,
                completion.model.as_deref().unwrap_or("?"),
                started.elapsed().as_secs_f64()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn client(args: ProviderArgs, settings: &PluginSettings) -> anyhow::Result<LlmClient> {
    let provider = args.settings()?;
    let registry = super::load_registry(settings).await?;
    Ok(LlmClient::new(registry, provider, HttpClients::new()))
}
