//! `quarry bench providers`: what the provider plugin layer adds to one completion.
//!
//! An in-process OpenAI-compatible server answers at once (a JSON answer, or an SSE stream of
//! [`STREAM_CHUNKS`] deltas plus usage and `[DONE]`). The same completion is timed two ways:
//! directly with a pooled `reqwest` client that builds the body and parses the answer in native
//! code, and through [`LlmClient`] (a fresh sandbox per call, the `openai` plugin, the host's
//! `http` import, the events channel). The difference is the plugin layer's overhead.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::Router;
use axum::body::Body;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use futures::StreamExt;

use crate::config::PluginSettings;
use crate::llm::{CompletionEvent, LlmClient, ProviderSpec, user_prompt};
use crate::plugins::capabilities::http::HttpClients;

/// Deltas in each streamed answer.
pub const STREAM_CHUNKS: usize = 20;

/// Run the benchmark and print median and p99 of each measurement.
pub async fn run(rounds: usize, settings: &PluginSettings) -> anyhow::Result<ExitCode> {
    let rounds = rounds.max(20);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.context("binding the local server")?;
    let addr = listener.local_addr()?;
    let app = Router::new().route("/v1/chat/completions", post(chat));
    tokio::spawn(async move { axum::serve(listener, app).await });
    let base = format!("http://{addr}/v1");

    let registry = super::load_registry(settings).await?;
    let spec = ProviderSpec { provider: Some("openai-compatible".into()), base_url: Some(base.clone()), model: Some("bench".into()), ..ProviderSpec::default() };
    let client = LlmClient::new(registry, spec.resolve()?, HttpClients::new());
    let direct = reqwest::Client::new();
    let url = format!("{base}/chat/completions");

    println!("provider plugin overhead, {rounds} rounds each, local instant OpenAI-compatible server");
    let direct_whole = measure(rounds, || direct_complete(&direct, &url, false)).await?;
    let plugin_whole = measure(rounds, || plugin_complete(&client)).await?;
    let direct_stream = measure(rounds, || direct_complete(&direct, &url, true)).await?;
    let plugin_stream = measure(rounds, || plugin_stream(&client)).await?;
    report("non-streaming", direct_whole, plugin_whole);
    report(&format!("streaming ({STREAM_CHUNKS} deltas)"), direct_stream, plugin_stream);
    Ok(ExitCode::SUCCESS)
}

async fn chat(body: axum::body::Bytes) -> Response {
    let stream = serde_json::from_slice::<serde_json::Value>(&body).ok().and_then(|v| v["stream"].as_bool()).unwrap_or(false);
    if !stream {
        let answer = serde_json::json!({
            "id": "chatcmpl-bench", "object": "chat.completion", "model": "bench",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "SELECT 1;"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}
        });
        return ([(header::CONTENT_TYPE, "application/json")], answer.to_string()).into_response();
    }
    let mut sse = String::new();
    for i in 0..STREAM_CHUNKS {
        let chunk = serde_json::json!({"id": "c", "object": "chat.completion.chunk", "model": "bench", "choices": [{"index": 0, "delta": {"content": format!("tok{i} ")}, "finish_reason": null}]});
        sse.push_str(&format!("data: {chunk}\n\n"));
    }
    sse.push_str("data: {\"id\":\"c\",\"model\":\"bench\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n");
    sse.push_str("data: {\"id\":\"c\",\"model\":\"bench\",\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":20}}\n\ndata: [DONE]\n\n");
    // One frame per event, as a real server flushes them.
    let frames: Vec<Result<String, std::io::Error>> = sse.split_inclusive("\n\n").map(|s| Ok(s.to_string())).collect();
    ([(header::CONTENT_TYPE, "text/event-stream")], Body::from_stream(futures::stream::iter(frames))).into_response()
}

/// The baseline: build the same body, send it, parse the answer (or every SSE event) natively.
async fn direct_complete(client: &reqwest::Client, url: &str, stream: bool) -> anyhow::Result<()> {
    let body = serde_json::json!({"model": "bench", "messages": [{"role": "user", "content": "How many orders?"}], "stream": stream});
    let resp = client.post(url).header("content-type", "application/json").body(body.to_string()).send().await?;
    if !stream {
        let v: serde_json::Value = serde_json::from_slice(&resp.bytes().await?)?;
        anyhow::ensure!(v["choices"][0]["message"]["content"].is_string(), "no content");
        return Ok(());
    }
    let mut text = String::new();
    let mut pending = Vec::new();
    let mut bytes = resp.bytes_stream();
    while let Some(chunk) = bytes.next().await {
        pending.extend_from_slice(&chunk?);
        while let Some(end) = pending.windows(2).position(|w| w == b"\n\n") {
            let event: Vec<u8> = pending.drain(..end + 2).collect();
            let data = String::from_utf8_lossy(&event);
            let data = data.trim().trim_start_matches("data:").trim();
            if data == "[DONE]" {
                return Ok(());
            }
            let v: serde_json::Value = serde_json::from_str(data)?;
            if let Some(t) = v["choices"][0]["delta"]["content"].as_str() {
                text.push_str(t);
            }
        }
    }
    anyhow::bail!("stream ended without [DONE]")
}

async fn plugin_complete(client: &LlmClient) -> anyhow::Result<()> {
    let c = client.complete(user_prompt("How many orders?")).await?;
    anyhow::ensure!(c.text == "SELECT 1;", "unexpected answer {:?}", c.text);
    Ok(())
}

async fn plugin_stream(client: &LlmClient) -> anyhow::Result<()> {
    let mut stream = client.stream(user_prompt("How many orders?"));
    let mut deltas = 0;
    while let Some(ev) = stream.next().await {
        if matches!(ev, CompletionEvent::TextDelta(_)) {
            deltas += 1;
        }
    }
    stream.finish().await?;
    anyhow::ensure!(deltas == STREAM_CHUNKS, "got {deltas} deltas");
    Ok(())
}

/// Warm up, then time `rounds` runs of `f`.
async fn measure<F, Fut>(rounds: usize, f: F) -> anyhow::Result<Vec<Duration>>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    for _ in 0..(rounds / 10).max(10) {
        f().await?;
    }
    let mut samples = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let t = Instant::now();
        f().await?;
        samples.push(t.elapsed());
    }
    samples.sort();
    Ok(samples)
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn report(what: &str, direct: Vec<Duration>, plugin: Vec<Duration>) {
    let (dm, d99, pm, p99) = (pct(&direct, 0.5), pct(&direct, 0.99), pct(&plugin, 0.5), pct(&plugin, 0.99));
    println!("{what}");
    println!("  direct reqwest        median {:>9.1} µs   p99 {:>9.1} µs", us(dm), us(d99));
    println!("  through the plugin    median {:>9.1} µs   p99 {:>9.1} µs", us(pm), us(p99));
    println!("  plugin overhead       median {:>9.1} µs   p99 {:>9.1} µs", us(pm) - us(dm), us(p99) - us(d99));
}
