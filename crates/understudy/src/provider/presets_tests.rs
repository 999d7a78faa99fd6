use http::HeaderName;

use super::*;
use crate::provider::{adapter, default_base_url, CloudSettings};

fn endpoint(kind: ProviderKind) -> Endpoint {
    Endpoint {
        name: "p".into(),
        kind,
        base_url: default_base_url(kind).into(),
        api_key: Secret::default(),
        headers: vec![],
        anthropic_version: String::new(),
        cloud: CloudSettings::default(),
        token_source: None,
        aws: None,
    }
}

/// Builds an OpenAI caller's `body` for `kind` and returns what the provider would receive.
fn sent(kind: ProviderKind, model: &str, body: Value) -> Result<Value, Failure> {
    let req = crate::wire::openai::request::decode(body.to_string().as_bytes()).unwrap();
    let ep = endpoint(kind);
    let key = Secret::new("k");
    let extra = Map::new();
    let call = Call { endpoint: &ep, model, api_key: &key, extra_params: &extra, stream: req.stream };
    let up = Preset::new(kind).build(&req, &call)?;
    Ok(serde_json::from_slice(&up.body).unwrap())
}

fn base() -> Value {
    json!({"model": "r", "messages": [{"role": "user", "content": "hi", "name": "alice"}]})
}

fn with(extra: Value) -> Value {
    let mut b = base();
    for (k, v) in extra.as_object().unwrap() {
        b[k] = v.clone();
    }
    b
}

#[test]
fn every_preset_is_an_openai_adapter_at_its_base_url() {
    for kind in [
        ProviderKind::Groq,
        ProviderKind::Together,
        ProviderKind::Mistral,
        ProviderKind::Deepseek,
        ProviderKind::Fireworks,
        ProviderKind::Openrouter,
        ProviderKind::Ollama,
        ProviderKind::Vllm,
    ] {
        assert_eq!(adapter(kind).dialect(), Dialect::OpenAi);
        let ep = endpoint(kind);
        let key = Secret::new("");
        let extra = Map::new();
        let call = Call { endpoint: &ep, model: "m/x", api_key: &key, extra_params: &extra, stream: false };
        let req = ChatRequest {
            messages: vec![crate::canonical::Message::text(crate::canonical::Role::User, "x")],
            ..Default::default()
        };
        let up = Preset::new(kind).build(&req, &call).unwrap();
        assert_eq!(up.url, format!("{}/chat/completions", default_base_url(kind)));
        // No key configured (Ollama, vLLM): no Authorization header at all.
        assert!(up.headers.get(AUTHORIZATION).is_none());
        let listing = Preset::new(kind).models_request(&ep, &Secret::new("k")).unwrap().unwrap();
        assert_eq!(listing.url, format!("{}/models", default_base_url(kind)));
        assert_eq!(listing.headers[AUTHORIZATION], "Bearer k");
    }
    assert_eq!(default_base_url(ProviderKind::Groq), "https://api.groq.com/openai/v1");
}

#[test]
fn groq_drops_no_op_fields_and_refuses_real_ones() {
    let b =
        sent(ProviderKind::Groq, "llama-3.3-70b-versatile", with(json!({"logprobs": false, "n": 1, "logit_bias": {}})))
            .unwrap();
    assert_eq!(b["messages"][0], json!({"role": "user", "content": "hi"}));
    for gone in ["logprobs", "n", "logit_bias"] {
        assert!(b.get(gone).is_none(), "{gone}: {b}");
    }
    for (extra, field) in [
        (json!({"logprobs": true}), "logprobs"),
        (json!({"top_logprobs": 3}), "top_logprobs"),
        (json!({"logit_bias": {"50256": -100}}), "logit_bias"),
        (json!({"n": 3}), "n"),
    ] {
        let f = sent(ProviderKind::Groq, "m", with(extra)).unwrap_err();
        assert_eq!((f.class, f.detail), (FailureClass::DeploymentInvalid, Some("unsupported_parameter")));
        assert!(f.message.contains(field), "{}", f.message);
    }
}

#[test]
fn mistral_gets_its_own_names_and_no_stream_options() {
    let b = sent(
        ProviderKind::Mistral,
        "mistral-large-latest",
        with(json!({"stream": true, "stream_options": {"include_usage": true}, "max_completion_tokens": 100,
                    "seed": 7, "tools": [{"type": "function", "function": {"name": "f"}}], "tool_choice": "required"})),
    )
    .unwrap();
    assert!(b.get("stream_options").is_none(), "{b}");
    assert!(b.get("max_completion_tokens").is_none());
    assert_eq!(b["max_tokens"], 100);
    assert_eq!(b["random_seed"], 7);
    assert!(b.get("seed").is_none());
    assert_eq!(b["tool_choice"], "any");
    assert!(b["messages"][0].get("name").is_none());
    // Even a caller that did not ask for usage: the gateway's own stream_options is removed.
    let b = sent(ProviderKind::Mistral, "m", with(json!({"stream": true}))).unwrap();
    assert!(b.get("stream_options").is_none());
    assert_eq!(b["stream"], true);
}

#[test]
fn mistral_extra_forbidden_is_a_deployment_problem() {
    let body = br#"{"object":"error","message":{"detail":[{"type":"extra_forbidden","loc":["body","logprobs"],"msg":"Extra inputs are not permitted","input":true}]},"type":"invalid_request_error","param":null,"code":null}"#;
    let f = Preset::new(ProviderKind::Mistral).classify_error(422, &HeaderMap::new(), body);
    assert_eq!((f.class, f.detail), (FailureClass::DeploymentInvalid, Some("unsupported_parameter")));
    // Elsewhere a 422 stays the caller's.
    let f = Preset::new(ProviderKind::Groq).classify_error(422, &HeaderMap::new(), body);
    assert_eq!(f.class, FailureClass::InvalidRequest);
    let f = Preset::new(ProviderKind::Mistral).classify_error(
        429,
        &HeaderMap::new(),
        br#"{"message":"Requests rate limit exceeded"}"#,
    );
    assert_eq!(f.class, FailureClass::RateLimited);
}

#[test]
fn deepseek_strips_replayed_reasoning_and_guards_the_reasoner() {
    let b = sent(
        ProviderKind::Deepseek,
        "deepseek-chat",
        json!({"model": "r", "max_completion_tokens": 50, "logprobs": true, "messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "4", "reasoning_content": "2+2"},
            {"role": "user", "content": "and?"}]}),
    )
    .unwrap();
    assert!(b["messages"][1].get("reasoning_content").is_none(), "{b}");
    assert_eq!(b["max_tokens"], 50);
    assert_eq!(b["logprobs"], true);
    let f = sent(ProviderKind::Deepseek, "deepseek-reasoner", with(json!({"logprobs": true}))).unwrap_err();
    assert_eq!(f.class, FailureClass::DeploymentInvalid);
    let b = sent(ProviderKind::Deepseek, "deepseek-reasoner", with(json!({"logprobs": false}))).unwrap();
    assert!(b.get("logprobs").is_none());
}

#[test]
fn together_names_the_single_tool_instead_of_required() {
    let one = json!({"tools": [{"type": "function", "function": {"name": "get_weather"}}], "tool_choice": "required",
                     "max_completion_tokens": 9});
    let b = sent(ProviderKind::Together, "meta-llama/Llama-3.3-70B-Instruct-Turbo", with(one)).unwrap();
    assert_eq!(b["tool_choice"], json!({"type": "function", "function": {"name": "get_weather"}}));
    assert_eq!(b["max_tokens"], 9);
    let two = json!({"tools": [{"type": "function", "function": {"name": "a"}}, {"type": "function", "function": {"name": "b"}}],
                     "tool_choice": "required"});
    let f = sent(ProviderKind::Together, "m", with(two)).unwrap_err();
    assert_eq!(f.detail, Some("unsupported_parameter"));
    let auto = json!({"tools": [{"type": "function", "function": {"name": "a"}}], "tool_choice": "auto"});
    assert_eq!(sent(ProviderKind::Together, "m", with(auto)).unwrap()["tool_choice"], "auto");
}

#[test]
fn fireworks_models_get_their_resource_name() {
    let b = sent(ProviderKind::Fireworks, "llama-v3p1-8b-instruct", base()).unwrap();
    assert_eq!(b["model"], "accounts/fireworks/models/llama-v3p1-8b-instruct");
    let b = sent(ProviderKind::Fireworks, "accounts/me/models/tuned", base()).unwrap();
    assert_eq!(b["model"], "accounts/me/models/tuned");
}

#[test]
fn ollama_gets_max_tokens_and_the_rest_pass_unchanged() {
    let b = sent(ProviderKind::Ollama, "llama3.2", with(json!({"max_completion_tokens": 64}))).unwrap();
    assert_eq!(b["max_tokens"], 64);
    assert!(b.get("max_completion_tokens").is_none());
    let body = with(json!({"max_completion_tokens": 64, "logprobs": true, "n": 2, "stream": true,
                           "parallel_tool_calls": false}));
    for kind in [ProviderKind::Openrouter, ProviderKind::Vllm] {
        let b = sent(kind, "m", body.clone()).unwrap();
        assert_eq!(b["max_completion_tokens"], 64);
        assert_eq!(b["n"], 2);
        assert_eq!(b["logprobs"], true);
        assert_eq!(b["stream_options"], json!({"include_usage": true}));
        assert_eq!(b["messages"][0]["name"], "alice");
    }
}

#[test]
fn entry_params_are_merged_after_the_rewrites_and_headers_come_last() {
    let req = crate::wire::openai::request::decode(base().to_string().as_bytes()).unwrap();
    let mut ep = endpoint(ProviderKind::Openrouter);
    ep.headers = vec![
        (HeaderName::from_static("http-referer"), HeaderValue::from_static("https://example.org")),
        (HeaderName::from_static("x-title"), HeaderValue::from_static("My App")),
    ];
    let key = Secret::new("sk-or-1");
    let mut extra = Map::new();
    extra.insert("seed".into(), json!(3));
    let call = Call { endpoint: &ep, model: "openai/gpt-4o", api_key: &key, extra_params: &extra, stream: false };
    let up = Preset::new(ProviderKind::Openrouter).build(&req, &call).unwrap();
    assert_eq!(up.headers["http-referer"], "https://example.org");
    assert_eq!(up.headers["x-title"], "My App");
    assert_eq!(up.headers[AUTHORIZATION], "Bearer sk-or-1");
    let mistral = Preset::new(ProviderKind::Mistral);
    let ep = endpoint(ProviderKind::Mistral);
    let call = Call { endpoint: &ep, ..call };
    let b: Value = serde_json::from_slice(&mistral.build(&req, &call).unwrap().body).unwrap();
    // The operator's explicit `seed` param is not renamed: params are provider-native.
    assert_eq!(b["seed"], 3);
}

fn json_value() -> impl proptest::strategy::Strategy<Value = Value> {
    use proptest::prelude::*;
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        "[a-z_]{0,8}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            proptest::collection::btree_map(fields(), inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k.to_string(), v)).collect())),
        ]
    })
}

/// Fields the rewrites look at, so that generated bodies exercise them.
fn fields() -> proptest::sample::Select<&'static str> {
    proptest::sample::select(
        &[
            "n",
            "logprobs",
            "top_logprobs",
            "logit_bias",
            "messages",
            "name",
            "reasoning_content",
            "tools",
            "tool_choice",
            "function",
            "stream_options",
            "max_completion_tokens",
            "max_tokens",
            "seed",
            "model",
        ][..],
    )
}

proptest::proptest! {
    #[test]
    fn rewrites_never_panic(body in proptest::collection::btree_map(fields(), json_value(), 0..8)) {
        for kind in [ProviderKind::Groq, ProviderKind::Mistral, ProviderKind::Deepseek, ProviderKind::Together,
            ProviderKind::Fireworks, ProviderKind::Ollama, ProviderKind::Vllm] {
            let mut b: Body = body.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
            let _ = Preset::new(kind).rewrite(&mut b, "deepseek-reasoner");
        }
    }
}
