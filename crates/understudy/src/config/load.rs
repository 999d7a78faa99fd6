//! Reading and validating a configuration file. Errors name the file, line and key.

use std::fmt;
use std::path::{Path, PathBuf};

use super::schema::{Config, ProviderConfig, ProviderKind, TargetConfig};

/// A configuration that parsed and validated, with warnings worth printing.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: Config,
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: String,
    pub line: Option<usize>,
    /// Dotted key path, e.g. `routes.smart.fallback_chain[1].provider`.
    pub key: Option<String>,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(l) = self.line {
            write!(f, ":{l}")?;
        }
        if let Some(k) = &self.key {
            write!(f, ": {k}")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

pub fn load_file(path: &Path) -> Result<Loaded, ConfigError> {
    let src = std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: path.display().to_string(),
        line: None,
        key: None,
        message: format!("cannot read: {e}"),
    })?;
    load_str(&src, &PathBuf::from(path).display().to_string())
}

/// Parses and validates `src`; `file` names it in errors.
pub fn load_str(src: &str, file: &str) -> Result<Loaded, ConfigError> {
    let config: Config = serde_yaml_ng::from_str(src).map_err(|e| parse_error(&e, src, file))?;
    let mut v = Validator { src, file, warnings: Vec::new() };
    v.validate(&config)?;
    Ok(Loaded { config, warnings: v.warnings })
}

fn parse_error(e: &serde_yaml_ng::Error, src: &str, file: &str) -> ConfigError {
    // serde_yaml_ng renders "path.to.key: message at line L column C".
    let text = e.to_string();
    let line = e.location().map(|l| l.line());
    let mut message = text.clone();
    if let Some(i) = message.rfind(" at line ") {
        message.truncate(i);
    }
    let (mut key, message) = match message.split_once(": ") {
        Some((k, m)) if !k.contains(' ') && !k.is_empty() => (Some(k.to_string()), m.to_string()),
        _ => (None, message),
    };
    // Errors raised by a value's own parser (durations, sizes) stop the path at the enclosing
    // mapping; find the key whose value the message quotes, from the mapping's line on.
    if let (Some(k), Some(l)) = (&mut key, line) {
        let quoted = message.split('"').nth(1).filter(|q| !q.is_empty());
        let last = k.rsplit(['.', ']']).next().unwrap_or("").to_string();
        if let Some(field) = quoted.and_then(|q| key_with_value(src, l, q)).filter(|f| *f != last) {
            k.push('.');
            k.push_str(&field);
        }
    }
    let _ = src;
    ConfigError { file: file.to_string(), line, key, message }
}

/// The key written with `value` in the mapping that starts on line `line` (1-based): in
/// `{ model: m, timeout: soon }`, `soon` belongs to `timeout`.
fn key_with_value(src: &str, line: usize, value: &str) -> Option<String> {
    let mut first_indent = None;
    for text in src.lines().skip(line.checked_sub(1)?) {
        let indent = text.len() - text.trim_start().len();
        match first_indent {
            None => first_indent = Some(indent),
            Some(i) if indent <= i && !text.trim().is_empty() => break,
            _ => {}
        }
        for (pos, _) in text.match_indices(':') {
            let rest = text[pos + 1..].trim_start().trim_start_matches(['"', '\'']);
            if rest.starts_with(value) {
                let before = &text[..pos];
                let start =
                    before.rfind(|c: char| !(c.is_alphanumeric() || c == '_' || c == '-')).map(|i| i + 1).unwrap_or(0);
                if start < pos {
                    return Some(before[start..].to_string());
                }
            }
        }
    }
    None
}

struct Validator<'a> {
    src: &'a str,
    file: &'a str,
    warnings: Vec<String>,
}

impl Validator<'_> {
    fn err(&self, path: &[&str], message: impl Into<String>) -> ConfigError {
        ConfigError {
            file: self.file.to_string(),
            line: locate(self.src, path),
            key: Some(join_path(path)),
            message: message.into(),
        }
    }

    fn validate(&mut self, c: &Config) -> Result<(), ConfigError> {
        for (name, p) in &c.providers {
            if let Some(k) = &p.api_key {
                for var in k.missing_vars() {
                    self.warnings.push(format!(
                        "providers.{name}.api_key: environment variable {var} is not set; calls to this provider will fail as `auth`"
                    ));
                }
            }
            let aws_keys =
                [("aws_access_key_id", &p.aws_access_key_id), ("aws_secret_access_key", &p.aws_secret_access_key)];
            for (field, k) in aws_keys {
                for var in k.iter().flat_map(|k| k.missing_vars()) {
                    self.warnings.push(format!(
                        "providers.{name}.{field}: environment variable {var} is not set; calls to this provider will fail as `auth`"
                    ));
                }
            }
            if let Some(u) = &p.base_url {
                if !(u.value.starts_with("http://") || u.value.starts_with("https://")) {
                    return Err(
                        self.err(&["providers", name, "base_url"], format!("{:?} is not an http(s) URL", u.value))
                    );
                }
            }
            for h in p.headers.keys() {
                if http::HeaderName::from_bytes(h.as_bytes()).is_err() {
                    return Err(self.err(&["providers", name, "headers", h], "not a valid header name"));
                }
            }
            self.check_cloud_provider(name, p)?;
        }
        for (i, k) in c.server.api_keys.iter().enumerate() {
            for var in k.missing_vars() {
                let _ = i;
                self.warnings.push(format!("server.api_keys: environment variable {var} is not set"));
            }
        }
        for k in &c.server.admin_keys {
            for var in k.missing_vars() {
                self.warnings.push(format!("server.admin_keys: environment variable {var} is not set"));
            }
        }
        if let Some(a) = &c.alerts {
            let url = a.webhook.expose().trim();
            if !a.webhook.missing_vars().is_empty() {
                let vars = a.webhook.missing_vars().join(", ");
                self.warnings.push(format!("alerts.webhook: environment variable {vars} is not set; alerts are off"));
            } else if !(url.starts_with("http://") || url.starts_with("https://")) {
                // The URL is a secret: say what is wrong without repeating it.
                return Err(self.err(&["alerts", "webhook"], "not an http(s) URL"));
            }
        }
        if let Some(j) = &c.journal {
            if j.sample.is_some_and(|s| !(0.0..=1.0).contains(&s)) {
                return Err(self.err(&["journal", "sample"], "sample must be between 0 and 1"));
            }
            if j.path.value.trim().is_empty() {
                return Err(self.err(&["journal", "path"], "path must not be empty"));
            }
        }
        if c.server.listen.parse::<std::net::SocketAddr>().is_err() {
            return Err(
                self.err(&["server", "listen"], format!("{:?} is not an address like 127.0.0.1:4000", c.server.listen))
            );
        }
        self.check_policy(&["defaults"], &c.defaults)?;
        for (rname, r) in &c.routes {
            if rname.is_empty() {
                return Err(self.err(&["routes"], "route names must not be empty"));
            }
            if r.fallback_chain.is_empty() {
                return Err(self.err(&["routes", rname, "fallback_chain"], "a route needs at least one target"));
            }
            self.check_policy(&["routes", rname], &r.policy())?;
            for (key, list) in [("must_match", &r.validate.must_match), ("must_not_match", &r.validate.must_not_match)]
            {
                for re in list {
                    if let Err(e) = regex::Regex::new(re) {
                        return Err(
                            self.err(&["routes", rname, "validate", key], format!("invalid regular expression: {e}"))
                        );
                    }
                }
            }
            for name in r.byok.providers.iter().flatten() {
                if !c.providers.contains_key(name) {
                    let msg = format!("unknown provider {name:?}");
                    return Err(self.err(&["routes", rname, "byok", "providers"], msg));
                }
            }
            for (i, t) in r.fallback_chain.iter().enumerate() {
                let idx = format!("[{i}]");
                self.check_target(&["routes", rname, "fallback_chain", &idx], t, c)?;
            }
            for (i, t) in r.on_content_filtered.iter().enumerate() {
                let idx = format!("[{i}]");
                self.check_target(&["routes", rname, "on_content_filtered", &idx], t, c)?;
            }
        }
        Ok(())
    }

    /// Azure needs its resource URL; Vertex needs a project, a location and a credential.
    fn check_cloud_provider(&mut self, name: &str, p: &ProviderConfig) -> Result<(), ConfigError> {
        let at = |key: &'static str| ["providers", name, key];
        match p.kind {
            ProviderKind::Azure if p.base_url.is_none() => {
                Err(self.err(&at("kind"), "an azure provider needs base_url: https://<resource>.openai.azure.com"))
            }
            ProviderKind::Vertex => {
                for (key, value) in [("project", &p.project), ("location", &p.location)] {
                    if value.as_deref().is_none_or(|v| v.trim().is_empty()) {
                        return Err(self.err(&at("kind"), format!("a vertex provider needs `{key}`")));
                    }
                }
                match (&p.api_key, &p.credentials_file) {
                    (None, None) => Err(self.err(
                        &at("kind"),
                        "a vertex provider needs credentials_file (a service-account key) or api_key (an access token)",
                    )),
                    (None, Some(f)) if !Path::new(&f.value).exists() => {
                        self.warnings.push(format!(
                            "providers.{name}.credentials_file: {} does not exist; calls to this provider will fail as `auth`",
                            f.value
                        ));
                        Ok(())
                    }
                    _ => Ok(()),
                }
            }
            _ if p.credentials_file.is_some() => {
                Err(self.err(&at("credentials_file"), "credentials_file is only used by kind: vertex"))
            }
            _ => Ok(()),
        }
    }

    fn check_target(&mut self, path: &[&str], t: &TargetConfig, c: &Config) -> Result<(), ConfigError> {
        let key = |k: &'static str| -> Vec<&str> {
            let mut p = path.to_vec();
            p.push(k);
            p
        };
        if !c.providers.contains_key(&t.provider) {
            let known: Vec<&str> = c.providers.keys().map(String::as_str).collect();
            return Err(self.err(
                &key("provider"),
                format!(
                    "unknown provider {:?}; known providers: {}",
                    t.provider,
                    if known.is_empty() { "(none)".into() } else { known.join(", ") }
                ),
            ));
        }
        if t.model.trim().is_empty() {
            return Err(self.err(&key("model"), "model must not be empty"));
        }
        if let Some(tpl) = t.prompt.as_ref().and_then(|p| p.user_template.as_ref()) {
            if !tpl.contains("{{content}}") {
                return Err(self.err(&key("prompt"), "user_template must contain {{content}}"));
            }
        }
        if t.weight == Some(0) {
            return Err(self.err(&key("weight"), "weight must be at least 1"));
        }
        if let Some(temp) = t.temperature {
            if !(0.0..=2.0).contains(&temp) {
                return Err(self.err(&key("temperature"), "temperature must be between 0 and 2"));
            }
        }
        if let Some(p) = &t.probe {
            if p.interval.0.is_zero() {
                return Err(self.err(&key("probe"), "probe.interval must be greater than zero"));
            }
            if p.timeout.is_some_and(|d| d.0.is_zero()) {
                return Err(self.err(&key("probe"), "probe.timeout must be greater than zero"));
            }
        }
        if let Some(k) = &t.api_key {
            for var in k.missing_vars() {
                self.warnings.push(format!("{}.api_key: environment variable {var} is not set", join_path(path)));
            }
        }
        self.check_policy(path, &t.policy())
    }

    fn check_policy(&self, path: &[&str], p: &super::Policy) -> Result<(), ConfigError> {
        let zero = |d: Option<super::HumanDuration>| d.is_some_and(|d| d.0.is_zero());
        for (k, d) in [
            ("deadline", p.deadline),
            ("timeout", p.timeout),
            ("connect_timeout", p.connect_timeout),
            (
                "ttft_timeout",
                match p.ttft_timeout {
                    Some(super::TtftTimeout::Fixed(d)) => Some(d),
                    _ => None,
                },
            ),
            ("idle_timeout", p.idle_timeout),
        ] {
            if zero(d) {
                let mut kp = path.to_vec();
                kp.push(k);
                return Err(self.err(&kp, "must be greater than zero"));
            }
        }
        if let (Some(b), Some(m)) = (p.backoff_base, p.backoff_max) {
            if b > m {
                let mut kp = path.to_vec();
                kp.push("backoff_base");
                return Err(self.err(&kp, "backoff_base is larger than backoff_max"));
            }
        }
        Ok(())
    }
}

fn join_path(path: &[&str]) -> String {
    let mut s = String::new();
    for p in path {
        if p.starts_with('[') {
            s.push_str(p);
        } else {
            if !s.is_empty() {
                s.push('.');
            }
            s.push_str(p);
        }
    }
    s
}

/// Finds the 1-based line of a key path in YAML source, following indentation. Handles block
/// mappings, `- ` sequence items and inline `{ key: value }` entries; returns the deepest line it
/// could find.
fn locate(src: &str, path: &[&str]) -> Option<usize> {
    let lines: Vec<&str> = src.lines().collect();
    let mut from = 0usize;
    let mut min_indent = 0usize;
    let mut found = None;
    for seg in path {
        if let Some(idx) = seg.strip_prefix('[').and_then(|s| s.strip_suffix(']')).and_then(|s| s.parse::<usize>().ok())
        {
            // The idx-th `- ` item below the current key.
            let mut count = 0;
            let mut hit = None;
            for (i, l) in lines.iter().enumerate().skip(from) {
                let t = l.trim_start();
                let ind = l.len() - t.len();
                if t.is_empty() || t.starts_with('#') {
                    continue;
                }
                if ind < min_indent && found.is_some() && i > from {
                    break;
                }
                if t.starts_with("- ") || t == "-" {
                    if count == idx {
                        hit = Some((i, ind));
                        break;
                    }
                    count += 1;
                }
            }
            let (i, ind) = hit?;
            found = Some(i + 1);
            from = i;
            min_indent = ind;
            continue;
        }
        let mut hit = None;
        for (i, l) in lines.iter().enumerate().skip(from) {
            let t = l.trim_start();
            let ind = l.len() - t.len();
            if t.is_empty() || t.starts_with('#') {
                continue;
            }
            if found.is_some() && i > from && ind < min_indent {
                break;
            }
            let needle = format!("{seg}:");
            let quoted = format!("\"{seg}\":");
            let body = t.strip_prefix("- ").unwrap_or(t);
            if body.starts_with(&needle) || body.starts_with(&quoted) {
                hit = Some((i, ind));
                break;
            }
            if (body.contains(&format!("{{ {needle}"))
                || body.contains(&format!(", {needle}"))
                || body.contains(&format!("{{{needle}")))
                && (found.is_none() || i >= from)
            {
                hit = Some((i, ind));
                break;
            }
        }
        let (i, ind) = hit?;
        found = Some(i + 1);
        from = i;
        min_indent = ind;
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    pub const SEED: &str = r#"providers:
  anthropic: { kind: anthropic, api_key: "${ANTHROPIC_API_KEY}" }
  openai:    { kind: openai,    api_key: "${OPENAI_API_KEY}" }
routes:
  smart:
    fallback_chain:
      - { provider: anthropic, model: claude-3-opus,  priority: 1, timeout: 30s }
      - { provider: openai,    model: gpt-4,          priority: 2, timeout: 30s }
      - { provider: anthropic, model: claude-3-haiku, priority: 3, timeout: 10s }
"#;

    #[test]
    fn seed_config_loads_as_written() {
        let l = load_str(SEED, "seed.yaml").unwrap();
        let r = &l.config.routes["smart"];
        assert_eq!(r.fallback_chain.len(), 3);
        assert_eq!(r.fallback_chain[2].model, "claude-3-haiku");
        assert_eq!(r.fallback_chain[2].timeout.unwrap().0, std::time::Duration::from_secs(10));
        assert_eq!(r.fallback_chain[1].priority, Some(2));
    }

    #[test]
    fn unknown_key_names_file_line_and_key() {
        let src = SEED.replace("priority: 2,", "priorty: 2,");
        let e = load_str(&src, "seed.yaml").unwrap_err();
        assert_eq!(e.line, Some(8), "{e}");
        assert_eq!(e.key.as_deref(), Some("routes.smart.fallback_chain[1]"), "{e}");
        assert!(e.message.contains("unknown field `priorty`"), "{e}");
        assert!(e.to_string().starts_with("seed.yaml:8: routes.smart.fallback_chain[1]: unknown field"), "{e}");
    }

    #[test]
    fn unknown_provider_is_located() {
        let src = SEED.replace("{ provider: openai,", "{ provider: opnai,");
        let e = load_str(&src, "c.yaml").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("routes.smart.fallback_chain[1].provider"));
        assert_eq!(e.line, Some(8), "{e}");
        assert!(e.message.contains("unknown provider \"opnai\""), "{e}");
    }

    #[test]
    fn bad_duration_and_types_are_reported() {
        let e = load_str(&SEED.replace("timeout: 10s", "timeout: 10 parsecs"), "c.yaml").unwrap_err();
        assert_eq!(e.line, Some(9), "{e}");
        assert_eq!(e.key.as_deref(), Some("routes.smart.fallback_chain[2].timeout"), "{e}");
        assert!(e.message.contains("invalid duration"), "{e}");
        let e = load_str(&SEED.replace("priority: 3", "priority: high"), "c.yaml").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("routes.smart.fallback_chain[2].priority"), "{e}");
    }

    #[test]
    fn block_style_locations() {
        let src = "providers:\n  p:\n    kind: openai\nroutes:\n  r:\n    fallback_chain:\n      - provider: p\n        model: m\n      - provider: q\n        model: m\n";
        let e = load_str(src, "c.yaml").unwrap_err();
        assert_eq!(e.line, Some(9), "{e}");
    }

    #[test]
    fn probes_and_alerts_are_checked() {
        let src = SEED.replace("priority: 2,", "priority: 2, probe: { interval: 0s },");
        let e = load_str(&src, "c.yaml").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("routes.smart.fallback_chain[1].probe"), "{e}");
        let ok = SEED.replace("priority: 2,", "priority: 2, probe: { interval: 30s, kind: completion, timeout: 5s },");
        let l = load_str(&ok, "c.yaml").unwrap();
        let p = l.config.routes["smart"].fallback_chain[1].probe.unwrap();
        assert_eq!(p.kind, crate::config::ProbeKind::Completion);

        let alerts = format!("{SEED}alerts:\n  webhook: \"hooks.example/secret-path\"\n");
        let e = load_str(&alerts, "c.yaml").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("alerts.webhook"), "{e}");
        assert!(!e.to_string().contains("secret-path"), "the URL is a secret: {e}");
        let unset = format!("{SEED}alerts:\n  webhook: \"${{UNDERSTUDY_TEST_UNSET_HOOK}}\"\n  format: slack\n");
        let l = load_str(&unset, "c.yaml").unwrap();
        assert!(l.warnings.iter().any(|w| w.contains("alerts are off")), "{:?}", l.warnings);
    }

    #[test]
    fn cloud_providers_are_checked() {
        let with = |providers: &str| {
            format!(
                "providers:\n{providers}\nroutes:\n  r:\n    fallback_chain:\n      - {{ provider: p, model: m }}\n"
            )
        };
        let presets = "  p: { kind: groq, api_key: \"${GROQ_API_KEY:-k}\" }\n  o: { kind: ollama }";
        assert!(load_str(&with(presets), "c.yaml").is_ok());
        let e = load_str(&with("  p: { kind: azure, api_key: k }"), "c.yaml").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("providers.p.kind"), "{e}");
        assert!(e.message.contains("base_url"), "{e}");
        let ok = "  p: { kind: azure, base_url: \"https://r.openai.azure.com\", api_key: k, api_version: 2024-10-21 }";
        assert!(load_str(&with(ok), "c.yaml").is_ok());
        let e = load_str(&with("  p: { kind: vertex, location: us-east5, api_key: t }"), "c.yaml").unwrap_err();
        assert!(e.message.contains("`project`"), "{e}");
        let e = load_str(&with("  p: { kind: vertex, project: x, location: us-east5 }"), "c.yaml").unwrap_err();
        assert!(e.message.contains("credentials_file"), "{e}");
        let missing = "  p: { kind: vertex, project: x, location: global, credentials_file: /nonexistent/key.json }";
        let l = load_str(&with(missing), "c.yaml").unwrap();
        assert!(l.warnings.iter().any(|w| w.contains("/nonexistent/key.json")), "{:?}", l.warnings);
        let e = load_str(&with("  p: { kind: openai, credentials_file: /k.json }"), "c.yaml").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("providers.p.credentials_file"), "{e}");
    }
}
