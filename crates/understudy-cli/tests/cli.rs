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
    let path = dir.join(format!("{:x}.yaml", yaml.len() * 7919 + yaml.bytes().map(usize::from).sum::<usize>()));
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
