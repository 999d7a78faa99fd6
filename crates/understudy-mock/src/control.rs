//! The JSON control plane under `/_mock/`: stats, recorded requests, run-time faults, reset.

use http::request::Parts;
use http::{Method, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use serde_json::json;

use crate::body::MockBody;
use crate::fault::Fault;
use crate::http::{json_response, percent_decode, query_param, response, Resp, JSON};
use crate::state::State;

const MAX_CONTROL_BODY: usize = 1024 * 1024;

pub(crate) async fn handle(parts: &Parts, body: Incoming, state: &State) -> Resp {
    let rest = parts.uri.path().strip_prefix("/_mock").unwrap_or("");
    let query = parts.uri.query();
    match (&parts.method, rest) {
        (&Method::GET, "/stats") => json_response(StatusCode::OK, &state.stats()),
        (&Method::GET, "/requests") => requests(state, query),
        (&Method::GET, "/faults") => json_response(StatusCode::OK, &state.faults()),
        (&Method::DELETE, "/faults") => {
            state.clear_faults();
            no_content()
        }
        (&Method::POST, "/reset") => {
            state.reset();
            no_content()
        }
        (&Method::PUT, r) if r.starts_with("/faults/") => put_fault(state, model_of(r), body).await,
        (&Method::DELETE, r) if r.starts_with("/faults/") => {
            let model = model_of(r);
            if model.is_empty() {
                return bad_request("a model name is required: /_mock/faults/{model}");
            }
            state.clear_fault(&model);
            no_content()
        }
        _ => json_response(
            StatusCode::NOT_FOUND,
            &json!({"error": format!("unknown control route: {} {}", parts.method, parts.uri.path())}),
        ),
    }
}

fn model_of(rest: &str) -> String {
    percent_decode(rest.strip_prefix("/faults/").unwrap_or("")).into_owned()
}

fn no_content() -> Resp {
    response(StatusCode::NO_CONTENT, JSON, MockBody::empty())
}

fn bad_request(message: &str) -> Resp {
    json_response(StatusCode::BAD_REQUEST, &json!({ "error": message }))
}

fn requests(state: &State, query: Option<&str>) -> Resp {
    let model = query_param(query, "model");
    let limit = match query_param(query, "limit").map(|l| l.parse::<usize>()) {
        None => usize::MAX,
        Some(Ok(n)) => n,
        Some(Err(_)) => return bad_request("limit must be a non-negative integer"),
    };
    json_response(StatusCode::OK, &state.requests(model.as_deref(), limit))
}

/// The body is a `Fault` object, or a JSON string in the suffix syntax (`"error=rate_limit"`).
async fn put_fault(state: &State, model: String, body: Incoming) -> Resp {
    if model.is_empty() {
        return bad_request("a model name is required: /_mock/faults/{model} (`*` for every model)");
    }
    let bytes = match Limited::new(body, MAX_CONTROL_BODY).collect().await {
        Ok(c) => c.to_bytes(),
        Err(_) => return bad_request("unreadable body"),
    };
    let fault = match serde_json::from_slice::<serde_json::Value>(&bytes) {
        Ok(serde_json::Value::String(spec)) => Fault::parse(&spec),
        Ok(value) => serde_json::from_value::<Fault>(value).map_err(|e| e.to_string()),
        Err(e) => Err(format!("the body must be a Fault JSON object or a suffix string: {e}")),
    };
    match fault {
        Ok(fault) => {
            let echo = json!({"model": model, "fault": fault});
            state.set_fault(&model, fault);
            json_response(StatusCode::OK, &echo)
        }
        Err(e) => bad_request(&e),
    }
}
