//! The official OpenAI Python SDK and LangChain against the real server: runs
//! `tests/python/test_openai_client.py` and expects every check in it to pass. Skips (and
//! passes) when `python3` or its `openai` package is missing.

use std::process::Command;

use quarry_e2e::{Backend, FakeLlm, Fixture, PARIS_PLAN, PARIS_SQL, ServerBuilder, json_answer};

/// The exit code the script uses for "the openai package is not installed".
const SKIPPED: i32 = 77;

#[tokio::test]
async fn the_openai_sdk_and_langchain_work_against_quarry() {
    let Some(db) = Fixture::create(Backend::Sqlite).await else { return };
    // The script asks several questions; every one gets the same answer.
    let llm = FakeLlm::instant(json_answer(PARIS_PLAN, PARIS_SQL)).await;
    let key = format!("py-key-{}", uuid::Uuid::new_v4().simple());
    let server = ServerBuilder::new().llm(&llm).database(&db).env("OPENAI_API_KEY", &key).start().await;

    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("python").join("test_openai_client.py");
    let base_url = server.url("/v1");
    let run = tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .arg(script)
            .env("QUARRY_E2E_BASE_URL", base_url)
            .env("QUARRY_E2E_API_KEY", key)
            .env("QUARRY_E2E_MODEL", "SQLBot")
            .env("QUARRY_E2E_EXPECT", "Chloé")
            .env("PYTHONIOENCODING", "utf-8")
            .output()
    })
    .await
    .expect("running python");
    let output = match run {
        Ok(output) => output,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            println!("skipped: python3 not found");
            return;
        }
        Err(e) => panic!("cannot run python3: {e}"),
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}{stderr}");
    if output.status.code() == Some(SKIPPED) {
        println!("skipped: python openai package not installed");
        return;
    }
    assert!(output.status.success(), "the Python client checks failed ({}):\n{stdout}\n{stderr}", output.status);
    assert!(!llm.calls().is_empty(), "the questions reached the model");
}
