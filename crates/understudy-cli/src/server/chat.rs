//! The chat handler shared by both fronts: decode the caller's dialect, run the route, encode
//! the answer (or the error) back in the caller's dialect, report.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use tokio::time::Instant;
use understudy::canonical::{ChatRequest, Dialect};
use understudy::report::{headers as hdr, metrics as m, Trace};
use understudy::stream::relay::{self, RelayOutcome};
use understudy::wire::{front, ErrorBody};
use understudy::Reply;

use super::respond::{
    call_options, error_response, json_response, log_request, outcome, overhead, request_id, with_trace, LogLine,
};
use super::{errors, AppState};

pub async fn handle(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Body, front: Dialect) -> Response {
    let arrived = Instant::now();
    let request_id = request_id(&headers);
    let mut resp = serve(&state, &headers, body, front, arrived, &request_id).await;
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        resp.headers_mut().insert(hdr::REQUEST_ID, v);
    }
    resp
}

async fn serve(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
    front: Dialect,
    arrived: Instant,
    request_id: &str,
) -> Response {
    let bytes = match axum::body::to_bytes(body, state.max_body).await {
        Ok(b) => b,
        Err(_) => {
            let msg = format!("request body larger than {} bytes", state.max_body);
            let err = ErrorBody::new(413, "request_too_large", msg).code("request_too_large");
            return errors::response(front, &err);
        }
    };
    let req = match front::decode_request(front, &bytes) {
        Ok(r) => r,
        Err(bad) => {
            let mut err = ErrorBody::new(400, errors::invalid_request_type(front), bad.message).code("invalid_request");
            err.param = bad.param;
            return errors::response(front, &err);
        }
    };
    let opts = match call_options(headers, front) {
        Ok(o) => o,
        Err(resp) => return *resp,
    };
    let handled = state.gateway.chat(&req, &opts).await;
    let trace = handled.trace;
    m::record_attempts(&trace);
    match handled.result {
        Ok(Reply::Complete(resp)) => {
            let usage = resp.usage;
            let served_by = trace.served_by.clone().unwrap_or_default();
            m::record_usage(&served_by, usage.input_tokens, usage.output_tokens);
            let overhead = overhead(arrived, &trace);
            let response = if req.stream {
                // The provider answered in one piece although a stream was asked for: replay it.
                let bytes = relay::replay_body(&resp, front, req.include_usage);
                sse_response(Body::from(bytes))
            } else {
                let body = front::encode_response(front, &resp).to_string();
                json_response(StatusCode::OK, body)
            };
            if let (Some(j), true) = (&state.journal, trace.fell_back()) {
                let answer = resp.choices.first().map(|c| c.text()).unwrap_or_default();
                j.record(request_id, &trace, front.as_str(), "fallback", req.transcript(), answer);
            }
            let line = LogLine {
                input_tokens: usage.input_tokens,
                output_tokens: usage.output_tokens,
                ..log_line(request_id, front, &req, 200, "ok", arrived, overhead)
            };
            log_request(&trace, &line);
            m::record_request(&trace.route, front.as_str(), "ok", arrived.elapsed(), overhead);
            with_trace(response, &trace)
        }
        Ok(Reply::Stream(live)) => {
            m::record_ttft(&live.deployment.id, live.ttft);
            let overhead = overhead(arrived, &trace);
            let route = trace.route.clone();
            let log_trace = trace.clone();
            let rid = request_id.to_string();
            let stream = req.stream;
            let model = req.model.clone();
            // The transcript is only built when a journal will want it.
            let journal = state.journal.clone().map(|j| (j, req.transcript()));
            let on_end: relay::OnEnd = Box::new(move |o: RelayOutcome| {
                if let Some((j, prompt)) = journal {
                    let reason = match (&o.continued_by, log_trace.fell_back()) {
                        (Some(_), _) => Some("continued"),
                        (None, true) => Some("fallback"),
                        _ => None,
                    };
                    if let Some(reason) = reason {
                        j.record(&rid, &log_trace, front.as_str(), reason, prompt, o.answer.clone());
                    }
                }
                let outcome = match (&o.broken, o.client_closed) {
                    (Some(f), _) => f.class.as_str(),
                    (None, true) => "client_closed",
                    (None, false) => "ok",
                };
                if let Some(u) = o.usage {
                    m::record_usage(&o.deployment, u.input_tokens, u.output_tokens);
                }
                if o.broken.is_some() {
                    metrics::counter!(m::STREAMS_BROKEN, "deployment" => o.deployment.clone()).increment(1);
                }
                m::record_request(&route, front.as_str(), outcome, arrived.elapsed(), overhead);
                log_stream_end(&rid, &log_trace, front, &model, stream, outcome, arrived.elapsed(), overhead, &o);
            });
            let body = relay::sse_body(*live, front, req.include_usage, on_end);
            let body = Body::from_stream(futures::StreamExt::map(body, Ok::<_, std::convert::Infallible>));
            with_trace(sse_response(body), &trace)
        }
        Err(e) => {
            let (response, status) = error_response(front, &e, &trace);
            let outcome = outcome(&e);
            let overhead = overhead(arrived, &trace);
            let line =
                LogLine { error: Some(&e), ..log_line(request_id, front, &req, status, outcome, arrived, overhead) };
            log_request(&trace, &line);
            m::record_request(&trace.route, front.as_str(), outcome, arrived.elapsed(), overhead);
            with_trace(response, &trace)
        }
    }
}

/// The log line's fields for a request that did not stream.
fn log_line<'a>(
    request_id: &'a str,
    front: Dialect,
    req: &'a ChatRequest,
    status: u16,
    outcome: &'a str,
    arrived: Instant,
    overhead: Duration,
) -> LogLine<'a> {
    LogLine {
        request_id,
        endpoint: "chat",
        front,
        model: &req.model,
        stream: req.stream,
        status,
        outcome,
        total: arrived.elapsed(),
        overhead,
        error: None,
        input_tokens: 0,
        output_tokens: 0,
    }
}

fn sse_response(body: Body) -> Response {
    let mut r = (StatusCode::OK, body).into_response();
    let h = r.headers_mut();
    h.insert(axum::http::header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    h.insert(axum::http::header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

#[allow(clippy::too_many_arguments)]
fn log_stream_end(
    request_id: &str,
    trace: &Trace,
    front: Dialect,
    model: &str,
    stream: bool,
    outcome: &str,
    total: Duration,
    overhead: Duration,
    o: &RelayOutcome,
) {
    let attempts = serde_json::to_string(&trace.attempts).unwrap_or_default();
    tracing::info!(
        target: "understudy::request",
        request_id,
        endpoint = "chat",
        route = %trace.route,
        front = front.as_str(),
        model,
        stream,
        status = 200u16,
        outcome,
        served_by = trace.served_by.as_deref().unwrap_or(""),
        fell_back = trace.fell_back(),
        attempts = %attempts,
        duration_ms = total.as_secs_f64() * 1e3,
        overhead_ms = overhead.as_secs_f64() * 1e3,
        ttft_ms = o.ttft.as_secs_f64() * 1e3,
        input_tokens = o.usage.map(|u| u.input_tokens).unwrap_or(0),
        output_tokens = o.usage.map(|u| u.output_tokens).unwrap_or(0),
        malformed_chunks = o.malformed,
        stream_error = o.broken.as_ref().map(|f| f.to_string()).unwrap_or_default(),
        "request"
    );
}
