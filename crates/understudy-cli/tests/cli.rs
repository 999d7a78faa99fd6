//! The `understudy` binary: `check` validates configurations with file, line and key.

use std::process::Command;

const SEED: &str = r#"providers:
  anthropic: { kind: anthropic, api_key: "${ANTHROPIC_API_KEY}" }
  openai:    { kind: openai,    api_key: "${OPENAI_API_KEY}" }
routes:
  smart:
    fallback_chain:
      - { provider: anthropic, model: claude-3-opus,  priority: 1, timeout: 30s }
      - { provider: openai,    model: gpt-4,          priority: 2, timeout: 30s }
      - { provider: anthropic, model: claude-3-haiku, priority: 3, timeout: 10s }
"#;

fn check(yaml: &str) -> (bool, String, String) {
    let dir = std::env::temp_dir().join(format!("understudy-cli-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // Tests run in parallel: every call gets its own file.
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let path = dir.join(format!("{}.yaml", N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)));
    std::fs::write(&path, yaml).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_understudy"))
        .arg("check")
        .arg(&path)
        .env("ANTHROPIC_API_KEY", "sk-ant-test")
        .env("OPENAI_API_KEY", "sk-test")
        .output()
        .unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

#[test]
fn the_seed_config_checks_as_written() {
    let (ok, out, err) = check(SEED);
    assert!(ok, "{out}{err}");
    assert!(out.contains("anthropic/claude-3-opus -> openai/gpt-4 -> anthropic/claude-3-haiku"), "{out}");
    assert!(!out.contains("sk-ant-test") && !out.contains("sk-test"), "keys never printed");
}

#[test]
fn errors_name_file_line_and_key() {
    let (ok, _, err) = check(&SEED.replace("priority: 2,", "priorty: 2,"));
    assert!(!ok);
    assert!(err.contains(".yaml:8: routes.smart.fallback_chain[1]: unknown field `priorty`"), "{err}");
    let (ok, _, err) = check(&SEED.replace("provider: openai,", "provider: opneai,"));
    assert!(!ok);
    assert!(err.contains(":8: routes.smart.fallback_chain[1].provider: unknown provider \"opneai\""), "{err}");
    let (ok, _, err) = check(&SEED.replace("timeout: 10s", "timeout: soon"));
    assert!(!ok);
    assert!(err.contains(":9: routes.smart.fallback_chain[2].timeout") && err.contains("invalid duration"), "{err}");
}

#[test]
fn missing_environment_variables_are_warnings_not_errors() {
    let dir = std::env::temp_dir().join(format!("understudy-cli-env-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("seed.yaml");
    std::fs::write(&path, SEED).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_understudy"))
        .arg("check")
        .arg(&path)
        .env_remove("ANTHROPIC_API_KEY")
        .env_remove("OPENAI_API_KEY")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains("warning: providers.anthropic.api_key: environment variable ANTHROPIC_API_KEY is not set"),
        "{stdout}"
    );
}

#[test]
fn unreadable_files_are_reported() {
    let out = Command::new(env!("CARGO_BIN_EXE_understudy"))
        .args(["check", "/nonexistent/understudy.yaml"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read"));
}

/// `understudy serve` as users run it: `--listen` overrides the file, and each request writes one
/// JSON log line with its attempt trace and no credentials.
#[tokio::test]
async fn serve_logs_one_json_line_per_request_without_secrets() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;

    let mock = understudy_mock::start("127.0.0.1:0".parse().unwrap(), Default::default()).await.unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let yaml = format!(
        "server:\n  listen: 127.0.0.1:1\nproviders:\n  openai: {{ kind: openai, base_url: \"{}/v1\", api_key: \"${{UNDERSTUDY_TEST_SECRET}}\" }}\n  backup: {{ kind: anthropic, base_url: \"{}\", api_key: sk-ant-backup-secret-123 }}\nroutes:\n  r:\n    fallback_chain:\n      - {{ provider: openai, model: \"p+error=invalid_key\" }}\n      - {{ provider: backup, model: b }}\n",
        mock.url(),
        mock.url()
    );
    let dir = std::env::temp_dir().join(format!("understudy-serve-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("serve.yaml");
    std::fs::write(&path, yaml).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_understudy"))
        .args(["serve", "--config"])
        .arg(&path)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .env("UNDERSTUDY_TEST_SECRET", "sk-test-very-secret-key-456")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let client = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/v1/chat/completions");
    let mut status = 0;
    for _ in 0..100 {
        if let Ok(r) = client
            .post(&url)
            .json(&serde_json::json!({"model": "r", "messages": [{"role": "user", "content": "hi"}]}))
            .send()
            .await
        {
            status = r.status().as_u16();
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(status, 200, "the --listen address serves");
    let mut record = None;
    let mut all = String::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while record.is_none() && std::time::Instant::now() < deadline {
        if let Ok(line) = rx.recv_timeout(std::time::Duration::from_millis(100)) {
            all.push_str(&line);
            all.push('\n');
            let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
            if v["target"] == "understudy::request" {
                record = Some(v);
            }
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let record = record.unwrap_or_else(|| panic!("no request log line in:\n{all}"));
    assert_eq!(record["route"], "r");
    assert_eq!(record["served_by"], "backup/b");
    assert_eq!(record["fell_back"], true);
    let attempts: serde_json::Value = serde_json::from_str(record["attempts"].as_str().unwrap()).unwrap();
    assert_eq!(attempts[0]["class"], "auth");
    assert!(!all.contains("sk-test-very-secret-key-456") && !all.contains("sk-ant-backup-secret-123"), "{all}");
}
