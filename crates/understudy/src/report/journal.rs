//! The fallback journal: what users got when the first choice did not answer, as JSON Lines,
//! sampled and redacted. Writing happens on a background task; a full queue drops entries (and
//! counts them) rather than slow a request.

use std::path::PathBuf;

use serde::Serialize;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

use super::{AttemptRecord, Trace};
use crate::config::JournalConfig;

pub const DROPPED: &str = "understudy_journal_dropped_total";

#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    /// RFC 3339 / Unix seconds.
    pub at: u64,
    pub request_id: String,
    pub route: String,
    pub front: &'static str,
    /// Why this request is in the journal: `fallback`, `continued`, ...
    pub reason: String,
    pub served_by: Option<String>,
    pub prompt: String,
    pub answer: String,
    pub attempts: Vec<AttemptRecord>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<String>,
}

#[derive(Clone)]
pub struct Journal {
    tx: mpsc::Sender<Entry>,
    sample: f64,
    redact: bool,
}

impl Journal {
    /// Starts the writer. The file is opened (created, appended to) on the first entry.
    pub fn start(cfg: &JournalConfig) -> Journal {
        let (tx, mut rx) = mpsc::channel::<Entry>(1024);
        let path = PathBuf::from(&cfg.path.value);
        tokio::spawn(async move {
            let mut file = None;
            while let Some(first) = rx.recv().await {
                let mut batch = vec![first];
                while let Ok(e) = rx.try_recv() {
                    batch.push(e);
                }
                if file.is_none() {
                    match tokio::fs::OpenOptions::new().create(true).append(true).open(&path).await {
                        Ok(f) => file = Some(f),
                        Err(e) => {
                            tracing::warn!(target: "understudy::journal", error = %e, path = %path.display(), "cannot open the journal");
                            continue;
                        }
                    }
                }
                let mut buf = Vec::new();
                for e in batch {
                    if serde_json::to_writer(&mut buf, &e).is_ok() {
                        buf.push(b'\n');
                    }
                }
                if let Some(f) = file.as_mut() {
                    if let Err(e) = f.write_all(&buf).await {
                        tracing::warn!(target: "understudy::journal", error = %e, "journal write failed");
                        file = None;
                    } else {
                        let _ = f.flush().await;
                    }
                }
            }
        });
        Journal { tx, sample: cfg.sample.unwrap_or(1.0), redact: cfg.redact.unwrap_or(true) }
    }

    /// Records a request if it left the happy path and the sample says so.
    #[allow(clippy::too_many_arguments)]
    pub fn record(
        &self,
        request_id: &str,
        trace: &Trace,
        front: &'static str,
        reason: &str,
        prompt: String,
        answer: String,
    ) {
        if self.sample < 1.0 && rand::random::<f64>() >= self.sample {
            return;
        }
        let (prompt, answer) = if self.redact { (redact(&prompt), redact(&answer)) } else { (prompt, answer) };
        let entry = Entry {
            at: std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
            request_id: request_id.to_string(),
            route: trace.route.clone(),
            front,
            reason: reason.to_string(),
            served_by: trace.served_by.clone(),
            prompt,
            answer,
            attempts: trace.attempts.clone(),
            skipped: trace.skipped.iter().map(|s| format!("{}={}", s.deployment, s.reason)).collect(),
        };
        if self.tx.try_send(entry).is_err() {
            metrics::counter!(DROPPED).increment(1);
        }
    }
}

/// Masks e-mail addresses, key-shaped tokens, and number runs of 7+ digits even when spaced or
/// punctuated (phone, card, account numbers).
pub fn redact(text: &str) -> String {
    let mut words = String::with_capacity(text.len());
    for word in text.split_inclusive(char::is_whitespace) {
        let core = word.trim_end();
        let tail = &word[core.len()..];
        let email = core.contains('@') && core.rsplit('@').next().is_some_and(|d| d.contains('.'));
        let key = ["sk-", "AIza", "xox", "ghp_"].iter().any(|p| core.starts_with(p)) && core.len() > 12;
        words.push_str(if email {
            "[email]"
        } else if key {
            "[secret]"
        } else {
            core
        });
        words.push_str(tail);
    }
    // Number runs: digits joined by spaces, dashes, dots, parentheses or a leading plus.
    let chars: Vec<char> = words.chars().collect();
    let mut out = String::with_capacity(words.len());
    let mut i = 0;
    while i < chars.len() {
        if chars[i].is_ascii_digit() || chars[i] == '+' {
            let mut j = i;
            let mut digits = 0;
            let mut last_digit = i;
            while j < chars.len() && (chars[j].is_ascii_digit() || " -.()+".contains(chars[j])) {
                if chars[j].is_ascii_digit() {
                    digits += 1;
                    last_digit = j;
                }
                j += 1;
            }
            if digits >= 7 {
                out.push_str("[number]");
                i = last_digit + 1;
                continue;
            }
        }
        out.push(chars[i]);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction() {
        assert_eq!(
            redact("Mail ann@example.com or call +1 415 555 0100, card 4111 1111 1111 1111, key sk-abcdefghijklmnop. In 2024 we had 12 items."),
            "Mail [email] or call [number], card [number], key [secret] In 2024 we had 12 items."
        );
    }
}
