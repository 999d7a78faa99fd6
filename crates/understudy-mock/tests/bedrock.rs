//! The Bedrock dialect over HTTP: Converse JSON, ConverseStream frames (with their CRCs), error
//! shapes, authentication and the embeddings endpoints.

mod common;

use common::*;
use serde_json::{json, Value};
use understudy_mock::{ErrorKind, Fault, MockConfig, MockHandle};

fn body() -> Value {
    json!({"system": [{"text": "Be brief."}],
           "messages": [{"role": "user", "content": [{"text": "What is the capital of Norway?"}]}],
           "inferenceConfig": {"maxTokens": 64}})
}

fn with_tool(mut b: Value) -> Value {
    b["toolConfig"] =
        json!({"tools": [{"toolSpec": {"name": "get_weather", "inputSchema": {"json": {"type": "object"}}}}]});
    b
}

async fn post(m: &MockHandle, path: &str, auth: Option<&str>, body: &Value) -> reqwest::Response {
    let mut rb = client().post(format!("{}{path}", m.url())).json(body);
    if let Some(a) = auth {
        rb = rb.header("authorization", a);
    }
    rb.send().await.unwrap()
}

async fn converse(m: &MockHandle, model: &str, stream: bool, body: &Value) -> reqwest::Response {
    let op = if stream { "converse-stream" } else { "converse" };
    post(m, &format!("/model/{model}/{op}"), Some("Bearer ABSK-test-key"), body).await
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xedb8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

/// A decoded frame: string headers, JSON payload, whether the message CRC matched.
type Frame = (Vec<(String, String)>, Value, bool);

/// Each frame of a body; string headers only.
fn frames(mut b: &[u8]) -> Vec<Frame> {
    let mut out = Vec::new();
    while b.len() >= 16 {
        let total = u32::from_be_bytes(b[0..4].try_into().unwrap()) as usize;
        let hlen = u32::from_be_bytes(b[4..8].try_into().unwrap()) as usize;
        assert_eq!(crc32(&b[..8]), u32::from_be_bytes(b[8..12].try_into().unwrap()), "prelude CRC");
        let frame = &b[..total];
        let crc_ok = crc32(&frame[..total - 4]) == u32::from_be_bytes(frame[total - 4..].try_into().unwrap());
        let mut h = &frame[12..12 + hlen];
        let mut headers = Vec::new();
        while !h.is_empty() {
            let n = h[0] as usize;
            let name = String::from_utf8(h[1..1 + n].to_vec()).unwrap();
            assert_eq!(h[1 + n], 7, "string header");
            let len = u16::from_be_bytes([h[2 + n], h[3 + n]]) as usize;
            headers.push((name, String::from_utf8(h[4 + n..4 + n + len].to_vec()).unwrap()));
            h = &h[4 + n + len..];
        }
        let payload = serde_json::from_slice(&frame[12 + hlen..total - 4]).unwrap_or(Value::Null);
        out.push((headers, payload, crc_ok));
        b = &b[total..];
    }
    assert!(b.is_empty(), "trailing bytes");
    out
}

fn header<'a>(h: &'a [(String, String)], name: &str) -> &'a str {
    h.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str()).unwrap_or("")
}

/// `:event-type` (or `:exception-type`) of each frame.
fn kinds(f: &[Frame]) -> Vec<String> {
    f.iter()
        .map(|(h, _, _)| match header(h, ":message-type") {
            "event" => header(h, ":event-type").to_string(),
            other => format!("{other}:{}", header(h, ":exception-type")),
        })
        .collect()
}

#[tokio::test]
async fn converse_answers() {
    let m = mock().await;
    let r = converse(&m, "anthropic.claude-3-haiku-20240307-v1%3A0", false, &body()).await;
    assert_eq!(r.status(), 200);
    assert!(r.headers().contains_key("x-amzn-requestid"));
    let v = json_of(r).await;
    assert_eq!(
        v["output"]["message"]["content"][0]["text"],
        "Simulated answer from anthropic.claude-3-haiku-20240307-v1:0."
    );
    assert_eq!(v["stopReason"], "end_turn");
    assert_eq!(v["usage"]["inputTokens"], 8);
    assert_eq!(
        v["usage"]["totalTokens"],
        v["usage"]["inputTokens"].as_u64().unwrap() + v["usage"]["outputTokens"].as_u64().unwrap()
    );
    let v = json_of(converse(&m, "m%2Btool_call", false, &with_tool(body())).await).await;
    assert_eq!(v["stopReason"], "tool_use");
    assert_eq!(v["output"]["message"]["content"][0]["toolUse"]["name"], "get_weather");
    let v = json_of(converse(&m, "m%2Berror%3Dcontent_policy", false, &body()).await).await;
    assert_eq!(v["stopReason"], "guardrail_intervened");
    let recorded = m.requests(Some("m"));
    assert_eq!(recorded.last().unwrap().headers["authorization"], "[redacted]");
    assert_eq!(recorded.last().unwrap().raw_model, "m+error=content_policy");
}

#[tokio::test]
async fn converse_stream_frames() {
    let m = mock().await;
    let r = converse(&m, "m", true, &body()).await;
    assert_eq!(r.headers()["content-type"], "application/vnd.amazon.eventstream");
    let f = frames(&r.bytes().await.unwrap());
    let k = kinds(&f);
    assert_eq!(k.first().unwrap(), "messageStart");
    assert_eq!(&k[k.len() - 3..], ["contentBlockStop", "messageStop", "metadata"]);
    assert!(f.iter().all(|(_, _, ok)| *ok));
    let text: String = f.iter().filter_map(|(_, p, _)| p.pointer("/delta/text").and_then(Value::as_str)).collect();
    assert_eq!(text, "Simulated answer from m.");
    assert!(f.iter().all(|(_, p, _)| p.get("p").is_some()), "every payload is padded");
    assert_eq!(f.last().unwrap().1["usage"]["outputTokens"], 4);

    let f = frames(&converse(&m, "m%2Btool_call", true, &with_tool(body())).await.bytes().await.unwrap());
    assert_eq!(f[1].1["start"]["toolUse"]["name"], "get_weather");
    assert_eq!(f[2].1["delta"]["toolUse"]["input"], "{}");
}

#[tokio::test]
async fn stream_faults() {
    let m = mock().await;
    let run = |spec: &'static str| {
        let m = &m;
        async move { frames(&converse(m, &format!("m%2B{spec}"), true, &body()).await.bytes().await.unwrap()) }
    };
    let f = run("no_done").await;
    let k = kinds(&f);
    assert!(!k.contains(&"messageStop".to_string()) && !k.contains(&"metadata".to_string()), "{k:?}");
    let f = run("error_after%3D2").await;
    assert_eq!(kinds(&f).last().unwrap(), "exception:modelStreamErrorException");
    let f = run("malformed_at%3D1").await;
    assert_eq!(f.iter().filter(|(_, _, ok)| !ok).count(), 1);
    assert_eq!(kinds(&f).last().unwrap(), "metadata");
    let f = run("empty").await;
    assert!(!kinds(&f).contains(&"contentBlockDelta".to_string()));
}

#[tokio::test]
async fn error_shapes() {
    let m = mock().await;
    let cases = [
        (ErrorKind::RateLimit, 429, "ThrottlingException"),
        (ErrorKind::ContextLength, 400, "ValidationException"),
        (ErrorKind::InvalidKey, 403, "UnrecognizedClientException"),
        (ErrorKind::ModelNotFound, 404, "ResourceNotFoundException"),
        (ErrorKind::Overloaded, 503, "ServiceUnavailableException"),
        (ErrorKind::Unavailable, 503, "ServiceUnavailableException"),
        (ErrorKind::Server, 500, "InternalServerException"),
        (ErrorKind::QuotaExhausted, 400, "ServiceQuotaExceededException"),
        (ErrorKind::Timeout, 408, "ModelTimeoutException"),
        (ErrorKind::Forbidden, 403, "AccessDeniedException"),
    ];
    for (kind, status, name) in cases {
        m.set_fault("m", Fault { error: Some(kind), ..Fault::default() });
        let r = converse(&m, "m", false, &body()).await;
        assert_eq!(r.status(), status, "{kind}");
        let t = r.headers()["x-amzn-errortype"].to_str().unwrap().to_string();
        assert!(t.starts_with(&format!("{name}:")), "{kind}: {t}");
        assert!(json_of(r).await["message"].is_string());
    }
    m.set_fault("m", Fault { error: Some(ErrorKind::ContextLength), ..Fault::default() });
    assert_eq!(
        json_of(converse(&m, "m", false, &body()).await).await["message"],
        "Input is too long for requested model."
    );
    // The mock's own validation speaks ValidationException too.
    m.clear_fault("m");
    let r = converse(&m, "m", false, &json!({"messages": []})).await;
    assert_eq!(r.status(), 400);
    assert!(r.headers()["x-amzn-errortype"].to_str().unwrap().starts_with("ValidationException:"));
}

#[tokio::test]
async fn authentication() {
    let m = mock_with(MockConfig { api_keys: vec!["ABSK-good".into()], ..MockConfig::default() }).await;
    let r = post(&m, "/model/m/converse", None, &body()).await;
    assert_eq!(r.status(), 403);
    assert!(r.headers()["x-amzn-errortype"].to_str().unwrap().starts_with("MissingAuthenticationTokenException"));
    let r = post(&m, "/model/m/converse", Some("Bearer ABSK-bad"), &body()).await;
    assert_eq!(r.status(), 403);
    assert_eq!(post(&m, "/model/m/converse", Some("Bearer ABSK-good"), &body()).await.status(), 200);
    // A signature that does not match.
    let bad = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/bedrock/aws4_request, \
               SignedHeaders=host;x-amz-date, Signature=0000";
    let r = client()
        .post(format!("{}/model/m/converse", m.url()))
        .header("authorization", bad)
        .header("x-amz-date", "20150830T123600Z")
        .json(&body())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.headers()["x-amzn-errortype"].to_str().unwrap().starts_with("InvalidSignatureException"));
    let r = post(&m, "/model/m/converse", Some("AWS4-HMAC-SHA256 Signature=1"), &body()).await;
    assert_eq!(r.status(), 400);
    assert!(r.headers()["x-amzn-errortype"].to_str().unwrap().starts_with("IncompleteSignatureException"));
}

#[tokio::test]
async fn embeddings() {
    let m = mock().await;
    let auth = Some("Bearer ABSK-test");
    let r = post(
        &m,
        "/model/amazon.titan-embed-text-v2%3A0/invoke",
        auth,
        &json!({"inputText": "hello world", "dimensions": 4}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let v = json_of(r).await;
    assert_eq!(v["embedding"].as_array().unwrap().len(), 4);
    assert_eq!(v["inputTextTokenCount"], 2);
    let v = json_of(
        post(
            &m,
            "/model/cohere.embed-english-v3/invoke",
            auth,
            &json!({"texts": ["a", "b"], "input_type": "search_document"}),
        )
        .await,
    )
    .await;
    assert_eq!(v["embeddings"].as_array().unwrap().len(), 2);
    let r = post(&m, "/model/anthropic.claude-3-haiku/invoke", auth, &json!({"inputText": "x"})).await;
    assert_eq!(r.status(), 400);
    let r =
        post(&m, "/model/amazon.titan-embed-text-v2%3A0%2Berror%3Drate_limit/invoke", auth, &json!({"inputText": "x"}))
            .await;
    assert_eq!(r.status(), 429);
}
