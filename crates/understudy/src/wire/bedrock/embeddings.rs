//! Embeddings through InvokeModel (`POST /model/{modelId}/invoke`), whose body is the model
//! family's own: Amazon Titan (`{"inputText"}`, one input per request) and Cohere
//! (`{"texts": [...], "input_type"}`). The family is chosen by the model id.

use serde_json::{json, Map, Value};

use crate::canonical::{EmbeddingInput, EmbeddingsRequest, EmbeddingsResponse};
use crate::failure::{Failure, FailureClass};

/// Cohere's documented limit of texts per request.
const COHERE_MAX_TEXTS: usize = 96;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// `amazon.titan-embed-text-*` (and the other `amazon.titan-embed-*` models that take text).
    Titan,
    /// `cohere.embed-*`.
    Cohere,
}

/// The family of an embeddings model id; a cross-region inference profile prefix (`us.`,
/// `eu.`, `apac.`, `global.`...) is looked through.
pub fn family(model: &str) -> Option<Family> {
    let base = model.rsplit('/').next().unwrap_or(model);
    let base = match base.split_once('.') {
        Some((prefix, rest)) if !matches!(prefix, "amazon" | "cohere") => rest,
        _ => base,
    };
    if base.starts_with("amazon.titan-embed") {
        Some(Family::Titan)
    } else if base.starts_with("cohere.embed") {
        Some(Family::Cohere)
    } else {
        None
    }
}

fn refuse(message: impl Into<String>, detail: &'static str) -> Failure {
    Failure::new(FailureClass::DeploymentInvalid, message).detail(detail)
}

/// Encodes the InvokeModel body for `model`. What the model cannot take (several inputs for
/// Titan, pre-tokenised input, a model of neither family) is `deployment_invalid`, so a route
/// moves on to a deployment that can.
pub fn encode(req: &EmbeddingsRequest, model: &str) -> Result<Map<String, Value>, Failure> {
    let texts = texts(req)?;
    let mut body = Map::new();
    match family(model) {
        Some(Family::Titan) => {
            let [text] = texts.as_slice() else {
                return Err(refuse(
                    format!("Titan embeddings take one input per request, not {}", texts.len()),
                    "single_input",
                ));
            };
            body.insert("inputText".into(), Value::from(*text));
            if let Some(d) = dimensions(req, model, "titan-embed-text-v2")? {
                body.insert("dimensions".into(), d.into());
            }
        }
        Some(Family::Cohere) => {
            if texts.is_empty() || texts.len() > COHERE_MAX_TEXTS {
                return Err(refuse(
                    format!("Cohere embeddings take 1 to {COHERE_MAX_TEXTS} inputs, not {}", texts.len()),
                    "too_many_inputs",
                ));
            }
            body.insert("texts".into(), json!(texts));
            body.insert("input_type".into(), "search_document".into());
            if let Some(d) = dimensions(req, model, "embed-v4")? {
                body.insert("output_dimension".into(), d.into());
            }
        }
        None => {
            return Err(refuse(
                format!("{model} is not a Bedrock embeddings model this gateway knows (Titan or Cohere)"),
                "no_embeddings",
            ))
        }
    }
    Ok(body)
}

/// The requested vector size, for the models (named by `supported`) that can change it; a size
/// asked of one that cannot would come back wrong, so it is refused.
fn dimensions(req: &EmbeddingsRequest, model: &str, supported: &str) -> Result<Option<u32>, Failure> {
    match req.dimensions {
        Some(_) if !model.contains(supported) => {
            Err(refuse(format!("{model} does not take a vector size (`dimensions`)"), "dimensions_unsupported"))
        }
        d => Ok(d),
    }
}

fn texts(req: &EmbeddingsRequest) -> Result<Vec<&str>, Failure> {
    req.input
        .iter()
        .map(|i| match i {
            EmbeddingInput::Text(t) => Ok(t.as_str()),
            EmbeddingInput::Tokens(_) => Err(refuse("Bedrock embeddings take text, not token ids", "tokens_input")),
        })
        .collect()
}

/// Decodes either family's answer: Titan `{"embedding": [...], "inputTextTokenCount"}`, Cohere
/// `{"embeddings": [[...]]}` or, with `embedding_types`, `{"embeddings": {"float": [[...]]}}`.
pub fn decode(body: &[u8]) -> Result<EmbeddingsResponse, Failure> {
    let v: Value = serde_json::from_slice(body).map_err(|e| malformed(format!("unparsable body: {e}")))?;
    if let Some(one) = v.get("embedding") {
        let tokens = v.get("inputTextTokenCount").and_then(Value::as_u64).unwrap_or(0);
        return Ok(EmbeddingsResponse { model: String::new(), vectors: vec![vector(one)?], input_tokens: tokens });
    }
    let list = match v.get("embeddings") {
        Some(Value::Object(by_type)) => by_type.get("float"),
        other => other,
    };
    let list = list.and_then(Value::as_array).ok_or_else(|| malformed("no embedding in the body".into()))?;
    let vectors = list.iter().map(vector).collect::<Result<Vec<_>, _>>()?;
    Ok(EmbeddingsResponse { model: String::new(), vectors, input_tokens: 0 })
}

fn vector(v: &Value) -> Result<Vec<f32>, Failure> {
    let items = v.as_array().ok_or_else(|| malformed("an embedding is not a list".into()))?;
    // f32 is what embeddings are stored as; the narrowing is intended.
    items
        .iter()
        .map(|x| x.as_f64().map(|f| f as f32).ok_or_else(|| malformed("an embedding holds a non-number".into())))
        .collect()
}

fn malformed(message: String) -> Failure {
    Failure::new(FailureClass::InvalidResponse, message).detail("malformed_body")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(inputs: &[&str], dimensions: Option<u32>) -> EmbeddingsRequest {
        EmbeddingsRequest {
            model: "emb".into(),
            input: inputs.iter().map(|t| EmbeddingInput::Text(t.to_string())).collect(),
            dimensions,
            native: None,
        }
    }

    #[test]
    fn families() {
        assert_eq!(family("amazon.titan-embed-text-v2:0"), Some(Family::Titan));
        assert_eq!(family("amazon.titan-embed-text-v1"), Some(Family::Titan));
        assert_eq!(family("cohere.embed-english-v3"), Some(Family::Cohere));
        assert_eq!(family("us.cohere.embed-v4:0"), Some(Family::Cohere));
        assert_eq!(
            family("arn:aws:bedrock:us-east-1::foundation-model/amazon.titan-embed-text-v2:0"),
            Some(Family::Titan)
        );
        assert_eq!(family("anthropic.claude-3-haiku-20240307-v1:0"), None);
        assert_eq!(family("amazon.nova-pro-v1:0"), None);
    }

    #[test]
    fn titan_takes_one_input() {
        let body = encode(&req(&["hello"], Some(256)), "amazon.titan-embed-text-v2:0").unwrap();
        assert_eq!(Value::Object(body), json!({"inputText": "hello", "dimensions": 256}));
        let f = encode(&req(&["a", "b"], None), "amazon.titan-embed-text-v2:0").unwrap_err();
        assert_eq!((f.class, f.detail), (FailureClass::DeploymentInvalid, Some("single_input")));
        let f = encode(&req(&[], None), "amazon.titan-embed-text-v2:0").unwrap_err();
        assert_eq!(f.detail, Some("single_input"));
    }

    #[test]
    fn cohere_takes_a_batch() {
        let body = encode(&req(&["a", "b"], None), "cohere.embed-english-v3").unwrap();
        assert_eq!(Value::Object(body), json!({"texts": ["a", "b"], "input_type": "search_document"}));
        let body = encode(&req(&["a"], Some(512)), "cohere.embed-v4:0").unwrap();
        assert_eq!(body["output_dimension"], 512);
        let f = encode(&req(&["a"], Some(512)), "cohere.embed-english-v3").unwrap_err();
        assert_eq!(f.detail, Some("dimensions_unsupported"));
        let f = encode(&req(&["a"], Some(512)), "amazon.titan-embed-text-v1").unwrap_err();
        assert_eq!(f.detail, Some("dimensions_unsupported"));
        let many: Vec<&str> = vec!["x"; 97];
        assert_eq!(encode(&req(&many, None), "cohere.embed-english-v3").unwrap_err().detail, Some("too_many_inputs"));
    }

    #[test]
    fn what_bedrock_cannot_embed() {
        let f = encode(&req(&["a"], None), "anthropic.claude-3-haiku").unwrap_err();
        assert_eq!((f.class, f.detail), (FailureClass::DeploymentInvalid, Some("no_embeddings")));
        let tokens = EmbeddingsRequest { input: vec![EmbeddingInput::Tokens(vec![1, 2])], ..req(&[], None) };
        assert_eq!(encode(&tokens, "cohere.embed-english-v3").unwrap_err().detail, Some("tokens_input"));
    }

    #[test]
    fn decodes_both_shapes() {
        let r = decode(br#"{"embedding":[0.5,-1.25],"inputTextTokenCount":3}"#).unwrap();
        assert_eq!((r.vectors, r.input_tokens), (vec![vec![0.5, -1.25]], 3));
        let r =
            decode(br#"{"id":"x","embeddings":[[1.0],[2.0]],"texts":["a","b"],"response_type":"embeddings_floats"}"#)
                .unwrap();
        assert_eq!(r.vectors, vec![vec![1.0], vec![2.0]]);
        let r = decode(br#"{"embeddings":{"float":[[0.25]]},"response_type":"embeddings_by_type"}"#).unwrap();
        assert_eq!(r.vectors, vec![vec![0.25]]);
        for bad in [&b"{}"[..], b"nope", br#"{"embedding":"x"}"#, br#"{"embeddings":[["a"]]}"#] {
            assert_eq!(decode(bad).unwrap_err().class, FailureClass::InvalidResponse);
        }
    }
}
