//! The official OpenAI and Anthropic Python SDKs call the gateway, streaming and not, including
//! failovers, errors and embeddings. The test set-up (`scripts/test.sh`) installs them into `.venv`.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::*;

/// A Python with both SDKs, or `None` (loudly) when there is none. Under `CI=true` a missing
/// Python is a failure, not a skip.
fn python() -> Option<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let candidates: Vec<PathBuf> = std::env::var_os("UNDERSTUDY_PYTHON")
        .map(PathBuf::from)
        .into_iter()
        .chain([root.join(".venv/bin/python")])
        .collect();
    for p in candidates {
        let ok =
            Command::new(&p).args(["-c", "import openai, anthropic"]).status().map(|s| s.success()).unwrap_or(false);
        if ok {
            return Some(p);
        }
    }
    let msg = "SKIPPED: no Python with the openai and anthropic SDKs; run scripts/test.sh (it creates .venv)";
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{msg} (CI=true: this is a failure)");
    }
    eprintln!("\n!!!!!!!! {msg} !!!!!!!!\n");
    None
}

#[tokio::test]
async fn official_python_sdks_work_against_the_gateway() {
    let Some(py) = python() else { return };
    let env = env("  smart:
    fallback_chain:
      - { provider: openai, model: gpt-4o }
  broken:
    fallback_chain:
      - { provider: openai, model: \"gpt-4o+error=account_deactivated\" }
      - { provider: anthropic, model: claude-backup }
  dead:
    fallback_chain:
      - { provider: openai, model: \"x+error=unavailable\" }
      - { provider: anthropic, model: \"y+error=overloaded\" }
  tools:
    fallback_chain:
      - { provider: anthropic, model: \"claude-tools+tool_call\" }
  embed:
    fallback_chain:
      - { provider: gemini, model: gemini-embedding-001 }
")
    .await;
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/sdk/clients.py");
    let url = env.gw.url();
    let out =
        tokio::task::spawn_blocking(move || Command::new(py).arg(script).arg(url).output()).await.unwrap().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "SDK checks failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("checks passed"), "{stdout}");
    // `x-should-retry: false` kept the SDKs from stacking retries on the gateway's own: each
    // dead-route call reached each provider once plus the gateway's one retry (2 calls each).
    assert_eq!(env.upstream("x"), 4, "2 SDK calls x (1 + 1 gateway retry), no SDK retries");
}
