//! Gemini `POST /v1beta/models/{model}:batchEmbedContents`: `{"requests": [EmbedContentRequest]}`
//! (each naming the same `models/{model}`), `{"embeddings": [{"values": [...]}]}` back.

use http::StatusCode;
use serde_json::{json, Map, Value};

use super::super::{EmbedParsed, Invalid};
use super::JSON_UTF8;
use crate::body::MockBody;
use crate::http::{response, to_bytes, Resp};
use crate::parse::count_words;
use crate::vectors::{vector, Seed, DEFAULT_DIMENSIONS, MAX_DIMENSIONS};

/// The real API refuses larger batches.
const MAX_BATCH: usize = 100;
const REQUEST_KEYS: [&str; 8] = [
    "model",
    "content",
    "tasktype",
    "task_type",
    "title",
    "outputdimensionality",
    "output_dimensionality",
    "embed_content_config",
];

/// Parses the batch; `path_model` is the model named in the URL (with any fault suffix).
pub(crate) fn parse(body: &[u8], path_model: &str, lenient: bool) -> Result<EmbedParsed, Invalid> {
    let req: Value =
        serde_json::from_slice(body).map_err(|e| Invalid::new(format!("Invalid JSON payload received. {e}")))?;
    let Value::Object(req) = req else {
        return Err(Invalid::new("Invalid JSON payload received. Expected an object."));
    };
    let mut parsed = EmbedParsed { model: Some(path_model.to_string()), ..EmbedParsed::default() };
    parsed.invalid = validate(&req, path_model, lenient, &mut parsed);
    Ok(parsed)
}

fn validate(req: &Map<String, Value>, path_model: &str, lenient: bool, p: &mut EmbedParsed) -> Option<Invalid> {
    if let Some(key) = req.keys().find(|k| !lenient && k.as_str() != "requests") {
        return Some(Invalid::new(format!(
            "Invalid JSON payload received. Unknown name \"{key}\": Cannot find field."
        )));
    }
    let requests = match req.get("requests") {
        Some(Value::Array(r)) if !r.is_empty() => r,
        _ => return Some(Invalid::new("* BatchEmbedContentsRequest.requests: requests is not specified\n")),
    };
    if requests.len() > MAX_BATCH {
        return Some(Invalid::new(format!(
            "* BatchEmbedContentsRequest.requests: at most {MAX_BATCH} requests can be in one batch\n"
        )));
    }
    let batch_model = format!("models/{path_model}");
    for (i, r) in requests.iter().enumerate() {
        let Some(r) = r.as_object() else {
            return Some(Invalid::new(format!("* BatchEmbedContentsRequest.requests[{i}]: not an object\n")));
        };
        if let Some(key) = r.keys().find(|k| !lenient && !REQUEST_KEYS.contains(&k.to_lowercase().as_str())) {
            return Some(Invalid::new(format!(
                "Invalid JSON payload received. Unknown name \"{key}\" at 'requests[{i}]': Cannot find field."
            )));
        }
        if r.get("model").and_then(Value::as_str) != Some(batch_model.as_str()) {
            return Some(Invalid::new(format!(
                "* BatchEmbedContentsRequest.requests[{i}].model: the model of each request must be the batch's \
                 model ({batch_model})\n"
            )));
        }
        let text: Option<String> = r
            .get("content")
            .and_then(|c| c.get("parts"))
            .and_then(Value::as_array)
            .filter(|parts| !parts.is_empty())
            .map(|parts| parts.iter().filter_map(|part| part.get("text").and_then(Value::as_str)).collect());
        let Some(text) = text.filter(|t| !t.is_empty()) else {
            return Some(Invalid::new(format!(
                "* BatchEmbedContentsRequest.requests[{i}].content.parts: contents.parts must not be empty.\n"
            )));
        };
        p.seeds.push(Seed::text(&text));
        p.prompt_words = p.prompt_words.saturating_add(count_words(&text));
        let dims = r.get("outputDimensionality").or_else(|| r.get("output_dimensionality"));
        if let Some(d) = dims {
            match d.as_u64().and_then(|d| usize::try_from(d).ok()) {
                Some(d) if (1..=MAX_DIMENSIONS).contains(&d) => p.dimensions = Some(d),
                _ => {
                    return Some(Invalid::new(format!(
                        "* BatchEmbedContentsRequest.requests[{i}].output_dimensionality: must be between 1 and \
                         {MAX_DIMENSIONS}\n"
                    )))
                }
            }
        }
    }
    None
}

pub(crate) fn answer(p: &EmbedParsed, empty: bool) -> Resp {
    let dims = p.dimensions.unwrap_or(DEFAULT_DIMENSIONS);
    let embeddings: Vec<Value> =
        if empty { Vec::new() } else { p.seeds.iter().map(|s| json!({"values": vector(*s, dims)})).collect() };
    response(StatusCode::OK, JSON_UTF8, MockBody::full(to_bytes(&json!({ "embeddings": embeddings }))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invalid_of(body: &str) -> String {
        parse(body.as_bytes(), "m", false).unwrap().invalid.map(|i| i.message).unwrap_or_default()
    }

    #[test]
    fn parses_the_batch() {
        let p = parse(
            br#"{"requests":[{"model":"models/m","content":{"parts":[{"text":"hello there"}]},"outputDimensionality":4,
                "taskType":"RETRIEVAL_QUERY"},{"model":"models/m","content":{"parts":[{"text":"x"}]}}]}"#,
            "m",
            false,
        )
        .unwrap();
        assert_eq!((p.seeds.len(), p.dimensions, p.prompt_words), (2, Some(4), 3));
        assert!(p.invalid.is_none());
    }

    #[test]
    fn validation_messages() {
        let ok = r#"{"model":"models/m","content":{"parts":[{"text":"x"}]}}"#;
        let cases = [
            ("{}".to_string(), "requests is not specified"),
            (r#"{"requests":[]}"#.to_string(), "requests is not specified"),
            (format!(r#"{{"requests":[{ok}],"input":"x"}}"#), "Unknown name \"input\""),
            (
                r#"{"requests":[{"model":"models/other","content":{"parts":[{"text":"x"}]}}]}"#.into(),
                "must be the batch",
            ),
            (r#"{"requests":[{"model":"models/m","content":{"parts":[]}}]}"#.into(), "must not be empty"),
            (
                r#"{"requests":[{"model":"models/m","content":{"parts":[{"text":"x"}]},"dims":3}]}"#.into(),
                "Unknown name",
            ),
            (format!(r#"{{"requests":[{}]}}"#, vec![ok; MAX_BATCH + 1].join(",")), "at most 100 requests"),
        ];
        for (body, want) in cases {
            let got = invalid_of(&body);
            assert!(got.contains(want), "{body}: {got}");
        }
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..256)) {
            let _ = parse(&bytes, "m", false);
        }
    }
}
