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
use understudy::{CallOptions, FailureClass, GatewayError, Reply};

use super::{errors, AppState};

/// Per-request header that overrides the route's deadline, e.g. `x-understudy-deadline: 10s`.
pub const DEADLINE_HEADER: &str = "x-understudy-deadline";

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
    let deadline = match headers.get(DEADLINE_HEADER).map(|v| v.to_str().map(|s| humantime::parse_duration(s.trim()))) {
        None => None,
        Some(Ok(Ok(d))) if !d.is_zero() => Some(d),
        Some(_) => {
            let err = ErrorBody::new(
                400,
                errors::invalid_request_type(front),
                format!("{DEADLINE_HEADER} must be a duration such as 10s or 1500ms"),
            )
            .code("invalid_request");
            return errors::response(front, &err);
        }
    };
    let handled = state.gateway.chat(&req, &CallOptions { deadline }).await;
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
            log_request(request_id, &trace, front, &req, 200, "ok", arrived.elapsed(), overhead, None, Some(usage));
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
            let outcome = match &e {
                GatewayError::UnknownRoute(_) => "unknown_route",
                GatewayError::Rejected(f) => f.class.as_str(),
                GatewayError::Exhausted { .. } => "all_candidates_failed",
            };
            let overhead = overhead(arrived, &trace);
            log_request(request_id, &trace, front, &req, status, outcome, arrived.elapsed(), overhead, Some(&e), None);
            m::record_request(&trace.route, front.as_str(), outcome, arrived.elapsed(), overhead);
            with_trace(response, &trace)
        }
    }
}

/// Time spent in the gateway itself: everything but waiting on providers and deliberate pauses.
fn overhead(arrived: Instant, trace: &Trace) -> Duration {
    arrived.elapsed().saturating_sub(trace.upstream + trace.waited)
}

fn error_response(front: Dialect, e: &GatewayError, trace: &Trace) -> (Response, u16) {
    match e {
        GatewayError::UnknownRoute(model) => {
            let err = ErrorBody::new(
                404,
                errors::not_found_type(front),
                format!("the model `{model}` is not a configured route; GET /v1/models lists them"),
            )
            .code("model_not_found");
            (errors::response(front, &err), 404)
        }
        GatewayError::Rejected(f) => {
            let status = f.status.unwrap_or(400);
            // A caller's own mistake reaches a caller of the same dialect exactly as the
            // provider wrote it.
            if let Some((dialect, body)) = &f.upstream {
                if *dialect == front {
                    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
                    return (errors::raw(code, body.clone()), status);
                }
            }
            let (ty, code) = match f.class {
                FailureClass::ContentFiltered => (errors::invalid_request_type(front), "content_filter"),
                _ => (errors::invalid_request_type(front), "invalid_request"),
            };
            let err = ErrorBody::new(status, ty, f.message.clone()).code(code);
            (errors::response(front, &err), status)
        }
        GatewayError::Exhausted { last, retry_after } => {
            let classes: Vec<FailureClass> = trace.failures().filter_map(|a| a.class).collect();
            let all = |c: FailureClass| !classes.is_empty() && classes.iter().all(|x| *x == c);
            let context_only = trace.skipped.iter().all(|s| s.reason == "context_window")
                && classes.iter().all(|c| *c == FailureClass::ContextWindow)
                && !(classes.is_empty() && trace.skipped.is_empty());
            let status = if context_only {
                400
            } else if all(FailureClass::RateLimited) {
                429
            } else {
                503
            };
            let skipped: Vec<String> = trace.skipped.iter().map(|s| format!("{}={}", s.deployment, s.reason)).collect();
            let message = match trace.attempts.len() {
                0 if !skipped.is_empty() => {
                    format!("every candidate of route `{}` is unavailable: {}", trace.route, skipped.join(", "))
                }
                0 => "no candidate could be tried before the deadline".to_string(),
                n => format!(
                    "all {} candidates of route `{}` failed ({} attempts); last: {}",
                    trace.attempts.iter().map(|a| &a.deployment).collect::<std::collections::BTreeSet<_>>().len(),
                    trace.route,
                    n,
                    last
                ),
            };
            let code = if context_only { "context_length_exceeded" } else { "all_candidates_failed" };
            let mut err = ErrorBody::new(status, "all_candidates_failed", message).code(code);
            err.extra.insert("attempts".into(), serde_json::to_value(&trace.attempts).unwrap_or_default());
            if !trace.skipped.is_empty() {
                err.extra.insert("skipped".into(), serde_json::to_value(&trace.skipped).unwrap_or_default());
            }
            let mut resp = errors::response(front, &err);
            let secs = retry_after.as_secs_f64().ceil().max(1.0) as u64;
            resp.headers_mut().insert(axum::http::header::RETRY_AFTER, HeaderValue::from(secs));
            (resp, status)
        }
    }
}

fn json_response(status: StatusCode, body: String) -> Response {
    let mut r = (status, body).into_response();
    r.headers_mut().insert(axum::http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

fn sse_response(body: Body) -> Response {
    let mut r = (StatusCode::OK, body).into_response();
    let h = r.headers_mut();
    h.insert(axum::http::header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    h.insert(axum::http::header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

fn with_trace(mut r: Response, trace: &Trace) -> Response {
    for (name, value) in hdr::for_trace(trace) {
        if let Ok(v) = HeaderValue::from_str(&value) {
            r.headers_mut().insert(name, v);
        }
    }
    r
}

/// The caller's `x-request-id` when it is sane, else a new one.
fn request_id(headers: &HeaderMap) -> String {
    headers
        .get(hdr::REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|s| !s.is_empty() && s.len() <= 128 && s.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string())
}

#[allow(clippy::too_many_arguments)]
fn log_request(
    request_id: &str,
    trace: &Trace,
    front: Dialect,
    req: &ChatRequest,
    status: u16,
    outcome: &str,
    total: Duration,
    overhead: Duration,
    error: Option<&GatewayError>,
    usage: Option<understudy::canonical::Usage>,
) {
    let attempts = serde_json::to_string(&trace.attempts).unwrap_or_default();
    tracing::info!(
        target: "understudy::request",
        request_id,
        route = %trace.route,
        front = front.as_str(),
        model = %req.model,
        stream = req.stream,
        status,
        outcome,
        served_by = trace.served_by.as_deref().unwrap_or(""),
        fell_back = trace.fell_back(),
        attempts = %attempts,
        duration_ms = total.as_secs_f64() * 1e3,
        overhead_ms = overhead.as_secs_f64() * 1e3,
        input_tokens = usage.map(|u| u.input_tokens).unwrap_or(0),
        output_tokens = usage.map(|u| u.output_tokens).unwrap_or(0),
        error = error.map(|e| e.error_type()).unwrap_or(""),
        "request"
    );
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
