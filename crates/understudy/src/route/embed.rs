//! The fallback loop for embeddings: the same candidates, health (breakers, cooldowns, retry
//! budgets, drains, injected faults), decisions, deadline, timeouts and caller keys as chat, for
//! a request that has no stream, no commit point and no context-window fitting.
//!
//! A deployment whose adapter has no embeddings endpoint (Anthropic) is skipped before any call
//! and without touching its health (`no_embeddings` in the trace); a route where every candidate
//! is skipped so is the caller's mistake (400), not an outage.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::{sleep, sleep_until, timeout_at, Instant};

use super::attempt::{self, read_limited, redact, transport_failure, MAX_BODY, MAX_ERROR_BODY};
use super::byok::{self, CallerKeys, KeyRing};
use super::decide::{decide, Decision};
use super::fallback::{admit, credential, Failed};
use super::plan;
use super::table::{Deployment, Route};
use crate::canonical::{EmbeddingInput, EmbeddingsRequest, EmbeddingsResponse};
use crate::config::Secret;
use crate::failure::{Failure, FailureClass};
use crate::provider::{Call, UpstreamRequest};
use crate::report::{AttemptRecord, Skipped, Trace};
use crate::tokens;

pub struct EmbedExecution {
    pub result: Result<(Arc<Deployment>, EmbeddingsResponse), Failed>,
    pub trace: Trace,
}

enum Step {
    Answered(EmbeddingsResponse),
    Stop(Failure),
    Next(Option<Failure>),
}

const NO_EMBEDDINGS: &str = "no_embeddings";

/// Runs `req` through `route` under `deadline`; `caller` holds the caller's own provider keys.
pub async fn execute(route: &Route, req: &EmbeddingsRequest, deadline: Instant, caller: &CallerKeys) -> EmbedExecution {
    let keys = KeyRing::new(caller, route);
    let mut trace = Trace::new(&route.name);
    let mut deferred: Vec<(Instant, Arc<Deployment>)> = Vec::new();
    let mut last = None;
    // Bound first: the thread-local rng must not live across the awaits below.
    let candidates = plan::candidates(route, &mut rand::rng());
    for dep in candidates {
        match try_deployment(&dep, req, (deadline, &keys), &mut trace, Some(&mut deferred)).await {
            Step::Answered(r) => return answered(dep, r, trace),
            Step::Stop(f) => return EmbedExecution { result: Err(Failed::Stopped(f)), trace },
            Step::Next(f) => last = f.or(last),
        }
        if Instant::now() >= deadline {
            break;
        }
    }
    // Rate-limited deployments whose Retry-After fits the deadline, earliest first.
    deferred.sort_by_key(|(at, _)| *at);
    for (at, dep) in deferred {
        if at >= deadline {
            break;
        }
        let now = Instant::now();
        if at > now {
            sleep_until(at).await;
            trace.waited += at - now;
        }
        match try_deployment(&dep, req, (deadline, &keys), &mut trace, None).await {
            Step::Answered(r) => return answered(dep, r, trace),
            Step::Stop(f) => return EmbedExecution { result: Err(Failed::Stopped(f)), trace },
            Step::Next(f) => last = f.or(last),
        }
    }
    let result = Err(exhausted(last, &trace, deadline));
    EmbedExecution { result, trace }
}

fn answered(dep: Arc<Deployment>, r: EmbeddingsResponse, mut trace: Trace) -> EmbedExecution {
    trace.served_by = Some(dep.id.clone());
    trace.served_model = Some(dep.model.clone());
    EmbedExecution { result: Ok((dep, r)), trace }
}

/// Why nothing answered: the last failure, or why every candidate was passed over.
fn exhausted(last: Option<Failure>, trace: &Trace, deadline: Instant) -> Failed {
    let in_time = Instant::now() < deadline;
    let none_embed = trace.attempts.is_empty()
        && !trace.skipped.is_empty()
        && trace.skipped.iter().all(|s| s.reason == NO_EMBEDDINGS);
    if none_embed {
        let msg = format!("route `{}` has no deployment that serves embeddings", trace.route);
        return Failed::Stopped(Failure::new(FailureClass::InvalidRequest, msg).detail(NO_EMBEDDINGS).status(400));
    }
    let last = match last {
        Some(f) if in_time => f,
        None if !trace.skipped.is_empty() && in_time => Failure::new(
            FailureClass::Overloaded,
            "every candidate is unavailable (circuit open, cooling down, drained or without embeddings)",
        )
        .detail("all_unavailable"),
        _ => Failure::new(FailureClass::Timeout, "the request deadline passed before any candidate answered")
            .detail("deadline"),
    };
    Failed::Exhausted { last }
}

/// Attempts one deployment, with retries, as the chat loop does. `deferred` collects a
/// rate-limited deployment to revisit; `None` means this is already the revisit.
async fn try_deployment(
    dep: &Arc<Deployment>,
    req: &EmbeddingsRequest,
    (deadline, keys): (Instant, &KeyRing<'_>),
    trace: &mut Trace,
    mut deferred: Option<&mut Vec<(Instant, Arc<Deployment>)>>,
) -> Step {
    let mut retries = 0;
    let mut first = true;
    loop {
        let t0 = Instant::now();
        if t0 >= deadline {
            return Step::Next(Some(
                Failure::new(FailureClass::Timeout, "the request deadline passed").detail("deadline"),
            ));
        }
        let Some(cred) = credential(dep, keys, trace) else { return Step::Next(None) };
        let key = cred.key(dep);
        // Built before admission: a deployment that cannot take this request says nothing about
        // its health, and costs no call.
        let upstream = match build(dep, req, key) {
            Ok(u) => u,
            Err(f) if f.detail == Some(NO_EMBEDDINGS) => {
                trace.skipped.push(Skipped { deployment: dep.id.clone(), reason: NO_EMBEDDINGS, until: None });
                return Step::Next(None);
            }
            Err(f) => {
                let mut rec = AttemptRecord::failed(&dep.id, &f, Duration::ZERO);
                rec.caller_key = cred.is_caller();
                trace.attempts.push(rec);
                return match f.class {
                    FailureClass::InvalidRequest => Step::Stop(f),
                    _ => Step::Next(Some(f)),
                };
            }
        };
        let Some(probe) = admit(dep, cred, t0, trace) else { return Step::Next(None) };
        if first {
            dep.health.deposit(t0);
            first = false;
        }
        let result = send(dep, upstream, req, deadline, key).await;
        let now = Instant::now();
        let elapsed = now - t0;
        trace.upstream += elapsed;
        let f = match result {
            Ok(r) => {
                dep.health.success(now, None, Some(elapsed));
                let mut rec = AttemptRecord::ok(&dep.id, elapsed);
                rec.probe = probe;
                rec.caller_key = cred.is_caller();
                trace.attempts.push(rec);
                return Step::Answered(r);
            }
            Err(f) => f,
        };
        byok::record_failure(dep, cred, &f, probe, now);
        let mut rec = AttemptRecord::failed(&dep.id, &f, elapsed);
        rec.probe = probe;
        rec.caller_key = cred.is_caller();
        trace.attempts.push(rec);
        if cred.is_caller() && keys.refuses(dep, &f) && keys.fallback_to_gateway_keys() {
            // The caller's key was refused and the route lets the gateway's key stand in.
            continue;
        }
        match decide(&f, retries, &dep.limits, now, deadline, rand::random::<f64>()) {
            Decision::Retry(pause) if dep.health.withdraw(now) => {
                sleep(pause).await;
                trace.waited += pause;
                retries += 1;
            }
            // The retry budget is spent: fail over rather than add load to a struggling provider.
            Decision::Retry(_) | Decision::FailOver => return Step::Next(Some(f)),
            Decision::Defer(at) => {
                if let Some(d) = deferred.as_deref_mut() {
                    d.push((at, dep.clone()));
                }
                return Step::Next(Some(f));
            }
            Decision::Stop => return Step::Stop(f),
        }
    }
}

fn build(dep: &Deployment, req: &EmbeddingsRequest, key: &Secret) -> Result<UpstreamRequest, Failure> {
    attempt::missing_key(key)?;
    let call = Call {
        endpoint: &dep.endpoint,
        model: &dep.model,
        api_key: key,
        extra_params: &dep.overrides.params,
        stream: false,
    };
    dep.adapter.build_embeddings(req, &call)
}

/// One call under the attempt's total limit (the connect limit is the HTTP client's).
async fn send(
    dep: &Deployment,
    up: UpstreamRequest,
    req: &EmbeddingsRequest,
    deadline: Instant,
    key: &Secret,
) -> Result<EmbeddingsResponse, Failure> {
    let started = Instant::now();
    let until = deadline.min(started + dep.limits.timeout);
    let expired = || {
        let detail = if until == deadline { "deadline" } else { "total" };
        Failure::new(FailureClass::Timeout, format!("no answer within {:?} ({detail})", until - started)).detail(detail)
    };
    if let Some(fault) = dep.health.fault() {
        if let Some(f) = attempt::injected(dep, &fault, until, false).await {
            return Err(f);
        }
    }
    let sent = dep.http.post(&up.url).headers(up.headers).body(up.body).send();
    let resp = match timeout_at(until, sent).await {
        Err(_) => return Err(expired()),
        Ok(Err(e)) => return Err(transport_failure(&e)),
        Ok(Ok(r)) => r,
    };
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    if !resp.status().is_success() {
        let body = match timeout_at(until, read_limited(resp, MAX_ERROR_BODY)).await {
            Err(_) => return Err(expired()),
            Ok(b) => b.unwrap_or_default(),
        };
        return Err(redact(dep.adapter.classify_error(status, &headers, &body), key));
    }
    let body = match timeout_at(until, read_limited(resp, MAX_BODY)).await {
        Err(_) => return Err(expired()),
        Ok(b) => b?,
    };
    let mut r = dep.adapter.decode_embeddings(&body).map_err(|f| redact(f, key))?;
    check(&r, req)?;
    if r.model.is_empty() {
        r.model = dep.model.clone();
    }
    if r.input_tokens == 0 {
        r.input_tokens = estimate_tokens(req, &dep.model);
    }
    Ok(r)
}

/// A "successful" answer that is not one: a vector missing, empty, not finite, or not of the
/// size the caller asked for. It fails over like any invalid response.
fn check(r: &EmbeddingsResponse, req: &EmbeddingsRequest) -> Result<(), Failure> {
    let bad = |msg: String, detail| Err(Failure::new(FailureClass::InvalidResponse, msg).detail(detail));
    if r.vectors.len() != req.input.len() {
        return bad(format!("{} vectors for {} inputs", r.vectors.len(), req.input.len()), "vector_count");
    }
    for (i, v) in r.vectors.iter().enumerate() {
        if v.is_empty() {
            return bad(format!("vector {i} is empty"), "empty_vector");
        }
        if !v.iter().all(|x| x.is_finite()) {
            return bad(format!("vector {i} holds a value that is not a finite number"), "not_finite");
        }
        if let Some(d) = req.dimensions.filter(|d| usize::try_from(*d).is_ok_and(|d| d != v.len())) {
            return bad(format!("vector {i} has {} dimensions, not the {d} asked for", v.len()), "dimensions");
        }
    }
    Ok(())
}

/// Input tokens when the provider reports none (Gemini): counted as the chat path counts them.
fn estimate_tokens(req: &EmbeddingsRequest, model: &str) -> u64 {
    let enc = tokens::encoding_for(model);
    let n: usize = req
        .input
        .iter()
        .map(|i| match i {
            EmbeddingInput::Text(t) => tokens::text_tokens(t, enc),
            EmbeddingInput::Tokens(t) => t.len(),
        })
        .sum();
    u64::try_from(n).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(n: usize, dimensions: Option<u32>) -> EmbeddingsRequest {
        EmbeddingsRequest {
            model: "r".into(),
            input: vec![EmbeddingInput::Text("hello world".into()); n],
            dimensions,
            native: None,
        }
    }

    fn resp(vectors: Vec<Vec<f32>>) -> EmbeddingsResponse {
        EmbeddingsResponse { model: String::new(), vectors, input_tokens: 0 }
    }

    #[test]
    fn answers_that_are_not_answers_are_invalid_responses() {
        assert!(check(&resp(vec![vec![1.0], vec![2.0]]), &req(2, None)).is_ok());
        assert!(check(&resp(vec![vec![1.0, 0.0]]), &req(1, Some(2))).is_ok());
        for (r, q, detail) in [
            (resp(vec![vec![1.0]]), req(2, None), "vector_count"),
            (resp(vec![vec![]]), req(1, None), "empty_vector"),
            (resp(vec![vec![f32::NAN]]), req(1, None), "not_finite"),
            (resp(vec![vec![1.0, 2.0, 3.0]]), req(1, Some(2)), "dimensions"),
        ] {
            let f = check(&r, &q).unwrap_err();
            assert_eq!((f.class, f.detail), (FailureClass::InvalidResponse, Some(detail)));
        }
    }

    #[test]
    fn token_estimates_count_text_and_token_ids() {
        assert!(estimate_tokens(&req(2, None), "gemini-embedding-001") >= 4);
        let toks = EmbeddingsRequest { input: vec![EmbeddingInput::Tokens(vec![1, 2, 3])], ..req(0, None) };
        assert_eq!(estimate_tokens(&toks, "m"), 3);
    }
}
