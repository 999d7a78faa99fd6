//! `POST /v1/embeddings` (OpenAI's shape, the only embeddings front): decode, run the route
//! through the engine, encode the vectors as the caller asked (floats or base64), report as the
//! chat handler does.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use tokio::time::Instant;
use understudy::canonical::Dialect;
use understudy::report::{headers as hdr, metrics as m};
use understudy::wire::openai::embeddings;
use understudy::wire::ErrorBody;

use super::respond::{
    call_options, error_response, json_response, log_request, outcome, overhead, request_id, with_trace, LogLine,
};
use super::{errors, AppState};

const FRONT: Dialect = Dialect::OpenAi;
/// The `front` label of the request metrics.
const METRICS_FRONT: &str = "embeddings";

pub async fn handle(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Body) -> Response {
    let arrived = Instant::now();
    let request_id = request_id(&headers);
    let mut resp = serve(&state, &headers, body, arrived, &request_id).await;
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        resp.headers_mut().insert(hdr::REQUEST_ID, v);
    }
    resp
}

async fn serve(state: &AppState, headers: &HeaderMap, body: Body, arrived: Instant, request_id: &str) -> Response {
    let bytes = match axum::body::to_bytes(body, state.max_body).await {
        Ok(b) => b,
        Err(_) => {
            let msg = format!("request body larger than {} bytes", state.max_body);
            return errors::response(FRONT, &ErrorBody::new(413, "request_too_large", msg).code("request_too_large"));
        }
    };
    let front = match embeddings::decode(&bytes) {
        Ok(r) => r,
        Err(bad) => {
            let mut err = ErrorBody::new(400, errors::invalid_request_type(FRONT), bad.message).code("invalid_request");
            err.param = bad.param;
            return errors::response(FRONT, &err);
        }
    };
    let opts = match call_options(headers, FRONT) {
        Ok(o) => o,
        Err(resp) => return *resp,
    };
    let req = &front.request;
    let handled = state.gateway.embed(req, &opts).await;
    let trace = handled.trace;
    m::record_attempts(&trace);
    let line = |status, outcome| LogLine {
        request_id,
        endpoint: "embeddings",
        front: FRONT,
        model: &req.model,
        stream: false,
        status,
        outcome,
        total: arrived.elapsed(),
        overhead: overhead(arrived, &trace),
        error: None,
        input_tokens: 0,
        output_tokens: 0,
    };
    match handled.result {
        Ok(resp) => {
            m::record_usage(trace.served_by.as_deref().unwrap_or_default(), resp.input_tokens, 0);
            let body = embeddings::encode_response(&resp, front.encoding).to_string();
            log_request(&trace, &LogLine { input_tokens: resp.input_tokens, ..line(200, "ok") });
            m::record_request(&trace.route, METRICS_FRONT, "ok", arrived.elapsed(), overhead(arrived, &trace));
            with_trace(json_response(StatusCode::OK, body), &trace)
        }
        Err(e) => {
            let (response, status) = error_response(FRONT, &e, &trace);
            let outcome = outcome(&e);
            log_request(&trace, &LogLine { error: Some(&e), ..line(status, outcome) });
            m::record_request(&trace.route, METRICS_FRONT, outcome, arrived.elapsed(), overhead(arrived, &trace));
            with_trace(response, &trace)
        }
    }
}
