//! The "write your own provider plugin" walkthrough, proven: build `examples/provider-template`
//! (a provider for Hugging Face TGI's native API) as a separate component, drop it into a plugins
//! folder, and complete requests through it, whole and streamed, against a local server that
//! speaks TGI's wire format.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use quarry::llm::{CompletionEvent, FinishReason, LlmClient, ProviderSpec, Secret, user_prompt};
use quarry::plugins::capabilities::http::HttpClients;
use quarry::plugins::{PluginRegistry, Runtime, RuntimeConfig};
use serde_json::json;
use support::{FakeServer, Reply};

#[tokio::test]
async fn a_provider_built_outside_the_tree_loads_from_the_plugins_folder_and_completes() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("repo root").to_path_buf();
    let example = root.join("examples/provider-template");
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
    assert!(status.success(), "building the example provider failed");

    let plugins = tempfile::tempdir().expect("tempdir");
    let dest = plugins.path().join("tgi");
    std::fs::create_dir_all(&dest).expect("mkdir");
    std::fs::copy(example.join("plugin.toml"), dest.join("plugin.toml")).expect("manifest");
    std::fs::copy(target_dir.join("wasm32-wasip2/release/tgi_provider.wasm"), dest.join("tgi_provider.wasm")).expect("component");

    let runtime = Runtime::new(RuntimeConfig::default()).expect("runtime");
    let registry = PluginRegistry::load(runtime, Some(plugins.path().to_path_buf())).await;
    let set = registry.current();
    assert!(set.problems.is_empty(), "{:?}", set.problems);
    let plugin = set.provider("tgi").expect("the example provider loaded");
    assert!(plugin.plugin().source.to_string().contains("tgi"));

    let server = FakeServer::start().await;
    server.reply("/generate", Reply::json(200, json!({
        "generated_text": " SELECT count(*) FROM orders",
        "details": {"finish_reason": "eos_token", "generated_tokens": 9, "seed": null, "prefill": [], "tokens": []}
    })));
    let tokens = [" SELECT", " 1", ";"];
    let mut sse = String::new();
    for (i, t) in tokens.iter().enumerate() {
        let last = i + 1 == tokens.len();
        let event = json!({
            "index": i, "token": {"id": i, "text": t, "logprob": -0.1, "special": false},
            "generated_text": if last { json!(tokens.concat()) } else { json!(null) },
            "details": if last { json!({"finish_reason": "length", "generated_tokens": 3, "seed": null}) } else { json!(null) }
        });
        sse.push_str(&format!("data:{event}\n\n"));
    }
    server.reply("/generate_stream", Reply::sse(&sse).split(&[3, 1, 17, 5], Duration::from_millis(1)));

    // The operator's configuration: LLM_PROVIDER=tgi LLM_BASE_URL=… LLM_API_KEY=…
    let settings = ProviderSpec {
        provider: Some("tgi".into()),
        base_url: Some(server.url("")),
        model: Some("bigcode/starcoder2".into()),
        api_key: Some(Secret::new("hf_test_token_123456")),
        embedding_model: Some("BAAI/bge-small-en".into()),
        ..ProviderSpec::default()
    }
    .resolve()
    .expect("settings");
    let client = LlmClient::new(registry.clone(), settings, HttpClients::new());
    // A provider that exports only `provider` (as every provider written before embeddings
    // existed) loads and completes as before; it is simply not asked for vectors.
    assert!(!plugin.has_embeddings());
    assert!(!client.offers_embeddings());
    assert_eq!(client.embed(&["q".to_string()]).await.expect("no error"), None);

    let c = client.complete(user_prompt("How many orders?")).await.expect("completion");
    assert_eq!(c.text, " SELECT count(*) FROM orders");
    assert_eq!(c.usage.map(|u| u.output_tokens), Some(9));
    let r = &server.requests()[0];
    assert_eq!(r.path, "/generate");
    assert_eq!(r.header("authorization"), Some("Bearer hf_test_token_123456"));
    assert_eq!(r.json()["inputs"], "User: How many orders?\nAssistant:");
    assert_eq!(r.json()["parameters"]["details"], true);

    let mut stream = client.stream(user_prompt("q"));
    let mut deltas = Vec::new();
    while let Some(ev) = stream.next().await {
        if let CompletionEvent::TextDelta(t) = ev {
            deltas.push(t);
        }
    }
    let c = stream.finish().await.expect("streamed completion");
    assert_eq!(deltas, tokens);
    assert_eq!(c.text, tokens.concat());
    assert_eq!(c.finish, FinishReason::Length);
}
