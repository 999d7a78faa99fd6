use std::collections::HashMap;
use std::sync::Mutex;

use regex::Regex;
use serde_json::Value;

use super::invalid;
use crate::canonical::{ChatRequest, ResponseFormat};
use crate::config::ValidateConfig;
use crate::failure::Failure;

/// A route's rules, compiled once.
#[derive(Debug)]
pub struct Rules {
    pub non_empty: bool,
    pub truncation: bool,
    pub json: bool,
    pub json_schema: bool,
    pub tool_arguments: bool,
    /// An answer finished by the provider's content filter counts as `content_filtered` (set
    /// when the route has a chain for it).
    pub content_filter_fails: bool,
    must_match: Vec<Regex>,
    must_not_match: Vec<Regex>,
    /// Compiled schemas by their text: callers send the same schema on every request.
    schemas: Mutex<HashMap<String, std::sync::Arc<jsonschema::Validator>>>,
}

impl Default for Rules {
    fn default() -> Self {
        Rules::from_config(&ValidateConfig::default())
    }
}

impl Rules {
    /// Regular expressions were checked when the configuration loaded; one that fails here
    /// anyway is skipped rather than crashing the route.
    pub fn from_config(c: &ValidateConfig) -> Rules {
        let compile = |v: &[String]| v.iter().filter_map(|r| Regex::new(r).ok()).collect();
        Rules {
            non_empty: c.non_empty.unwrap_or(true),
            truncation: c.truncation.unwrap_or(true),
            json: c.json.unwrap_or(true),
            json_schema: c.json_schema.unwrap_or(true),
            tool_arguments: c.tool_arguments.unwrap_or(true),
            content_filter_fails: false,
            must_match: compile(&c.must_match),
            must_not_match: compile(&c.must_not_match),
            schemas: Mutex::default(),
        }
    }

    /// Whether a stream must be held back until the whole answer is validated.
    pub fn needs_whole_answer(&self, req: &ChatRequest) -> bool {
        let json = (self.json || self.json_schema)
            && matches!(req.response_format, Some(ResponseFormat::JsonObject | ResponseFormat::JsonSchema { .. }));
        json || !self.must_match.is_empty() || !self.must_not_match.is_empty()
    }

    pub(super) fn check_text(&self, text: &str) -> Result<(), Failure> {
        for re in &self.must_match {
            if !re.is_match(text) {
                return Err(invalid("rule_must_match", format!("the answer does not match /{}/", re.as_str())));
            }
        }
        for re in &self.must_not_match {
            if re.is_match(text) {
                return Err(invalid("rule_must_not_match", format!("the answer matches /{}/", re.as_str())));
            }
        }
        Ok(())
    }

    pub(super) fn check_schema(&self, name: &str, schema: &Value, value: &Value) -> Result<(), Failure> {
        let key = schema.to_string();
        let cached = self.schemas.lock().unwrap_or_else(|p| p.into_inner()).get(&key).cloned();
        let validator = match cached {
            Some(v) => v,
            None => match jsonschema::validator_for(schema) {
                Ok(v) => {
                    let v = std::sync::Arc::new(v);
                    let mut map = self.schemas.lock().unwrap_or_else(|p| p.into_inner());
                    if map.len() > 256 {
                        map.clear();
                    }
                    map.insert(key, v.clone());
                    v
                }
                // The caller's schema is unusable: the provider judged it, not us.
                Err(_) => return Ok(()),
            },
        };
        let first = validator.iter_errors(value).next().map(|e| format!("{e} at {}", e.instance_path()));
        match first {
            None => Ok(()),
            Some(e) => {
                Err(invalid("schema_mismatch", format!("the answer does not conform to the JSON schema `{name}`: {e}")))
            }
        }
    }
}
