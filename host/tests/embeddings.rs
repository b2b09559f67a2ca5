//! Embeddings through the provider plugins, end to end: the built-in `openai` and `ollama`
//! components against local servers speaking each API's documented wire format, and the host's
//! checks around them (which providers offer embeddings, batching, vectors that do not fit the
//! texts, typed errors, the API key in no message).

mod support;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use quarry::llm::client::EMBED_BATCH;
use quarry::llm::{LlmClient, LlmError, ProviderSpec, Secret};
use quarry::plugins::capabilities::http::HttpClients;
use quarry::plugins::{PluginRegistry, Runtime, RuntimeConfig};
use serde_json::{Value, json};
use support::{FakeServer, Reply};
use tokio::sync::OnceCell;

/// The API key every test configures; it must never show up in an error.
const KEY: &str = "sk-quarry-embed-9a8b7c6d5e4f3210";

/// Where `host/build.rs` left the test plugins' components.
const ARTIFACTS: &str = env!("QUARRY_TEST_PLUGINS_DIR");

/// The built-ins plus the `rogue` test provider (which exports only `provider`, as every plugin
/// built before embeddings existed does), loaded once for the whole binary.
async fn registry() -> Arc<PluginRegistry> {
    static REGISTRY: OnceCell<(Arc<PluginRegistry>, PathBuf)> = OnceCell::const_new();
    let (registry, _) = REGISTRY
        .get_or_init(|| async {
            let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("embedding-plugins-{}", std::process::id()));
            let dest = dir.join("rogue");
            std::fs::create_dir_all(&dest).expect("plugin dir");
            let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/test-plugins/rogue-provider");
            std::fs::copy(src.join("plugin.toml"), dest.join("plugin.toml")).expect("manifest");
            std::fs::copy(Path::new(ARTIFACTS).join("quarry_test_rogue_provider.wasm"), dest.join("rogue.wasm"))
                .expect("component");
            let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("plugin-artifact-cache");
            let runtime =
                Runtime::new(RuntimeConfig { cache_dir: Some(cache), ..RuntimeConfig::default() }).expect("runtime");
            let registry = PluginRegistry::load(runtime, Some(dir.clone())).await;
            let set = registry.current();
            assert!(set.problems.is_empty(), "load problems: {:?}", set.problems);
            (registry, dir)
        })
        .await;
    registry.clone()
}

/// A client for `provider` at `base_url` with the test key, no retries, and `embedding_model`.
async fn client(provider: &str, base_url: String, embedding_model: Option<&str>) -> LlmClient {
    let settings = ProviderSpec {
        provider: Some(provider.into()),
        base_url: Some(base_url),
        model: Some("chat-model".into()),
        embedding_model: embedding_model.map(str::to_string),
        api_key: Some(Secret::new(KEY)),
        max_retries: Some(0),
        timeout: Some(Duration::from_secs(10)),
        ..ProviderSpec::default()
    }
    .resolve()
    .expect("settings");
    LlmClient::new(registry().await, settings, HttpClients::new())
}

fn texts(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// An OpenAI embeddings answer with `(index, vector)` items in the order given.
fn openai_embeddings(items: &[(usize, Vec<f32>)]) -> Value {
    let data: Vec<Value> =
        items.iter().map(|(i, v)| json!({"object": "embedding", "index": i, "embedding": v})).collect();
    json!({"object": "list", "data": data, "model": "emb-model-v3", "usage": {"prompt_tokens": 12, "total_tokens": 12}})
}

fn assert_no_key(text: &str) {
    assert!(!text.contains(KEY), "the API key leaked: {text}");
}

// ---------------------------------------------------------------------------------------------
// OpenAI

#[tokio::test]
async fn openai_embeds_in_the_order_of_the_texts_whatever_the_order_of_the_answer() {
    let server = FakeServer::start().await;
    server.reply(
        "/v1/embeddings",
        Reply::json(200, openai_embeddings(&[(2, vec![2.0, 2.5]), (0, vec![0.0, 0.5]), (1, vec![1.0, 1.5])])),
    );
    let client = client("openai-compatible", server.url("/v1"), Some("emb-model")).await;
    assert!(client.offers_embeddings());

    let got =
        client.embed(&texts(&["orders per month", "top customers", "revenue"])).await.expect("embed").expect("offered");
    assert_eq!(got.model, "emb-model", "the configured model names the vectors, not the API's echo");
    assert_eq!(got.vectors, vec![vec![0.0, 0.5], vec![1.0, 1.5], vec![2.0, 2.5]]);

    let reqs = server.requests();
    assert_eq!(reqs.len(), 1);
    let r = &reqs[0];
    assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", "/v1/embeddings"));
    assert_eq!(r.header("authorization"), Some(format!("Bearer {KEY}").as_str()));
    assert_eq!(
        r.json(),
        json!({"model": "emb-model", "input": ["orders per month", "top customers", "revenue"], "encoding_format": "float"})
    );
}

#[tokio::test]
async fn the_openai_preset_embeds_with_its_default_model() {
    let server = FakeServer::start().await;
    server.reply("/v1/embeddings", Reply::json(200, openai_embeddings(&[(0, vec![0.25; 4])])));
    let client = client("openai", server.url("/v1"), None).await;
    let got = client.embed(&texts(&["q"])).await.expect("embed").expect("offered");
    assert_eq!(got.model, "text-embedding-3-small");
    assert_eq!(server.requests()[0].json()["model"], "text-embedding-3-small");
}

#[tokio::test]
async fn many_texts_go_in_batches_and_come_back_in_order() {
    let server = FakeServer::start().await;
    let count = EMBED_BATCH * 2 + 3;
    for batch in 0..3 {
        let size = if batch < 2 { EMBED_BATCH } else { 3 };
        // Reversed within each batch, to prove each batch is put in order on its own.
        let items: Vec<(usize, Vec<f32>)> =
            (0..size).rev().map(|i| (i, vec![(batch * EMBED_BATCH + i) as f32, 1.0])).collect();
        server.reply("/v1/embeddings", Reply::json(200, openai_embeddings(&items)));
    }
    let client = client("openai-compatible", server.url("/v1"), Some("emb-model")).await;
    let input: Vec<String> = (0..count).map(|i| format!("question {i}")).collect();
    let got = client.embed(&input).await.expect("embed").expect("offered");
    assert_eq!(got.vectors.len(), count);
    assert!(got.vectors.iter().enumerate().all(|(i, v)| v[0] == i as f32), "vectors out of order");
    let sizes: Vec<usize> =
        server.requests().iter().map(|r| r.json()["input"].as_array().map_or(0, Vec::len)).collect();
    assert_eq!(sizes, [EMBED_BATCH, EMBED_BATCH, 3]);
    assert_eq!(server.requests()[2].json()["input"][0], format!("question {}", EMBED_BATCH * 2));
}

#[tokio::test]
async fn no_texts_make_no_call() {
    let server = FakeServer::start().await;
    let client = client("openai-compatible", server.url("/v1"), Some("emb-model")).await;
    let got = client.embed(&[]).await.expect("embed").expect("offered");
    assert_eq!((got.model.as_str(), got.vectors.len()), ("emb-model", 0));
    assert!(server.requests().is_empty());
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    BadCredentials,
    ModelNotFound,
    RateLimited(Option<u64>),
    Upstream(u16),
    Malformed,
}

fn classify(e: &LlmError) -> Expect {
    match e {
        LlmError::BadCredentials(_) => Expect::BadCredentials,
        LlmError::ModelNotFound(_) => Expect::ModelNotFound,
        LlmError::RateLimited { retry_after } => Expect::RateLimited(retry_after.map(|d| d.as_millis() as u64)),
        LlmError::Upstream { status, .. } => Expect::Upstream(*status),
        LlmError::MalformedResponse(_) => Expect::Malformed,
        other => panic!("unexpected error {other:?}"),
    }
}

#[tokio::test]
async fn api_errors_and_answers_that_do_not_fit_are_typed_errors() {
    let server = FakeServer::start().await;
    let openai = |msg: &str, kind: &str, code: &str| json!({"error": {"message": msg, "type": kind, "param": null, "code": code}});
    let ollama = |msg: &str| json!({"error": msg});
    let cases: Vec<(&str, &str, Reply, Expect)> = vec![
        (
            "openai-compatible",
            "/v1/embeddings",
            Reply::json(
                401,
                openai(&format!("Incorrect API key provided: {KEY}"), "invalid_request_error", "invalid_api_key"),
            ),
            Expect::BadCredentials,
        ),
        (
            "openai-compatible",
            "/v1/embeddings",
            Reply::json(403, openai("You are not allowed to use this model", "invalid_request_error", "")),
            Expect::BadCredentials,
        ),
        (
            "openai-compatible",
            "/v1/embeddings",
            Reply::json(
                404,
                openai("The model `emb-model` does not exist", "invalid_request_error", "model_not_found"),
            ),
            Expect::ModelNotFound,
        ),
        (
            "openai-compatible",
            "/v1/embeddings",
            Reply::json(429, openai("Rate limit reached", "requests", "rate_limit_exceeded"))
                .with_header("retry-after", "7"),
            Expect::RateLimited(Some(7000)),
        ),
        (
            "openai-compatible",
            "/v1/embeddings",
            Reply::json(500, openai("The server had an error", "server_error", "")),
            Expect::Upstream(500),
        ),
        (
            "openai-compatible",
            "/v1/embeddings",
            Reply::body(200, "application/json", "{\"data\": [ oops"),
            Expect::Malformed,
        ),
        (
            "openai-compatible",
            "/v1/embeddings",
            Reply::body(200, "text/html", "<html>captive portal</html>"),
            Expect::Malformed,
        ),
        // Two vectors for three texts; a repeated index; a vector of another dimension; an
        // empty vector; a number past f32's range.
        (
            "openai-compatible",
            "/v1/embeddings",
            Reply::json(200, openai_embeddings(&[(0, vec![1.0]), (1, vec![2.0])])),
            Expect::Malformed,
        ),
        (
            "openai-compatible",
            "/v1/embeddings",
            Reply::json(200, openai_embeddings(&[(0, vec![1.0]), (0, vec![2.0]), (1, vec![3.0])])),
            Expect::Malformed,
        ),
        (
            "openai-compatible",
            "/v1/embeddings",
            Reply::json(200, openai_embeddings(&[(0, vec![1.0, 2.0]), (1, vec![2.0]), (2, vec![3.0, 4.0])])),
            Expect::Malformed,
        ),
        (
            "openai-compatible",
            "/v1/embeddings",
            Reply::json(200, openai_embeddings(&[(0, vec![]), (1, vec![]), (2, vec![])])),
            Expect::Malformed,
        ),
        (
            "openai-compatible",
            "/v1/embeddings",
            Reply::body(
                200,
                "application/json",
                r#"{"data": [{"index": 0, "embedding": [1e39]}, {"index": 1, "embedding": [1]}, {"index": 2, "embedding": [2]}]}"#,
            ),
            Expect::Malformed,
        ),
        (
            "ollama",
            "/api/embed",
            Reply::json(404, ollama("model \"emb-model\" not found, try pulling it first")),
            Expect::ModelNotFound,
        ),
        (
            "ollama",
            "/api/embed",
            Reply::json(500, ollama("llama runner process has terminated")),
            Expect::Upstream(500),
        ),
        (
            "ollama",
            "/api/embed",
            Reply::json(200, json!({"model": "emb-model", "embeddings": [[1.0], [2.0]]})),
            Expect::Malformed,
        ),
        (
            "ollama",
            "/api/embed",
            Reply::json(200, json!({"model": "emb-model", "embeddings": "nope"})),
            Expect::Malformed,
        ),
    ];
    for (provider, path, reply, expected) in cases {
        server.reset();
        server.always(path, reply.clone());
        let base = if provider == "ollama" { server.url("") } else { server.url("/v1") };
        let client = client(provider, base, Some("emb-model")).await;
        let err = client.embed(&texts(&["a", "b", "c"])).await.expect_err("must fail");
        let body = String::from_utf8_lossy(&reply.chunks[0].1).to_string();
        assert_eq!(classify(&err), expected, "{provider} answering {} {body}: got {err}", reply.status);
        assert_no_key(&format!("{err} {err:?}"));
    }
}

#[tokio::test]
async fn rate_limits_are_retried_like_completions() {
    let server = FakeServer::start().await;
    server
        .reply(
            "/v1/embeddings",
            Reply::json(429, json!({"error": {"message": "slow down"}})).with_header("retry-after-ms", "50"),
        )
        .reply("/v1/embeddings", Reply::json(200, openai_embeddings(&[(0, vec![0.5, 0.5])])));
    let settings = ProviderSpec {
        provider: Some("openai-compatible".into()),
        base_url: Some(server.url("/v1")),
        embedding_model: Some("emb-model".into()),
        max_retries: Some(1),
        ..ProviderSpec::default()
    }
    .resolve()
    .expect("settings");
    let client = LlmClient::new(registry().await, settings, HttpClients::new());
    let got = client.embed(&texts(&["q"])).await.expect("embed after a retry").expect("offered");
    assert_eq!(got.vectors, vec![vec![0.5, 0.5]]);
    assert_eq!(server.requests().len(), 2);
    assert_eq!(server.requests()[0].header("authorization"), None, "no key configured, none sent");
}

// ---------------------------------------------------------------------------------------------
// Ollama

#[tokio::test]
async fn ollama_embeds_through_api_embed() {
    let server = FakeServer::start().await;
    server.reply(
        "/api/embed",
        Reply::json(
            200,
            json!({"model": "nomic-embed-text", "embeddings": [[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]],
            "total_duration": 14143917, "load_duration": 1019500, "prompt_eval_count": 8}),
        ),
    );
    let client = client("ollama", server.url(""), Some("nomic-embed-text")).await;
    assert!(client.offers_embeddings());
    let got = client
        .embed(&texts(&["why is the sky blue?", "why is the grass green?"]))
        .await
        .expect("embed")
        .expect("offered");
    assert_eq!(got.model, "nomic-embed-text");
    assert_eq!(got.vectors, vec![vec![0.1, 0.2, 0.3], vec![0.4, 0.5, 0.6]]);
    let r = &server.requests()[0];
    assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", "/api/embed"));
    assert_eq!(
        r.json(),
        json!({"model": "nomic-embed-text", "input": ["why is the sky blue?", "why is the grass green?"]})
    );
}

// ---------------------------------------------------------------------------------------------
// Who offers embeddings

#[tokio::test]
async fn providers_without_an_embedding_model_or_the_export_offer_none_and_make_no_call() {
    let server = FakeServer::start().await;
    let cases = [
        // The openai plugin exports embeddings, but an OpenAI-compatible server has no default model.
        ("openai-compatible", server.url("/v1"), None),
        // A preset's default turned off.
        ("openai", server.url("/v1"), Some("off")),
        // Anthropic has no embeddings API: its plugin does not export the interface.
        ("anthropic", server.url(""), Some("emb-model")),
        // A provider plugin that exports only `provider` (built against the 0.1.0 contract
        // without embeddings) still loads and completes, and is simply not asked for vectors.
        ("rogue", server.url(""), Some("emb-model")),
    ];
    for (provider, base, model) in cases {
        let client = client(provider, base, model).await;
        assert!(!client.offers_embeddings(), "{provider} with {model:?}");
        assert_eq!(client.embed(&texts(&["q"])).await.expect("no error"), None, "{provider} with {model:?}");
    }
    assert!(server.requests().is_empty(), "no call was made: {:?}", server.requests());

    let set = registry().await.current();
    let exports: Vec<(String, bool)> = ["anthropic", "offline", "ollama", "openai", "rogue"]
        .iter()
        .map(|n| (n.to_string(), set.provider(n).expect("loaded").has_embeddings()))
        .collect();
    let expected = [("anthropic", false), ("offline", false), ("ollama", true), ("openai", true), ("rogue", false)];
    assert_eq!(exports, expected.map(|(n, b)| (n.to_string(), b)));
    let listed: Vec<(String, bool)> = set
        .list()
        .into_iter()
        .filter(|p| expected.iter().any(|(n, _)| *n == p.name))
        .map(|p| (p.name, p.embeddings))
        .collect();
    assert_eq!(listed, expected.map(|(n, b)| (n.to_string(), b)), "`quarry plugins list` says which providers embed");

    // The provider-only plugin still completes.
    let rogue = client("rogue", server.url(""), Some("emb-model")).await;
    assert_eq!(rogue.complete(quarry::llm::user_prompt("hello")).await.expect("completion").text, "ok");
}
