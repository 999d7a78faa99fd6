//! The fallback loop: every candidate in plan order, skipping those whose health says so, retries
//! as [`decide`] says and the retry budget allows, an optional hedge when a candidate is slow to
//! commit, rate-limited deployments revisited at the end if their Retry-After fits, all under one
//! deadline.

use std::sync::Arc;
use std::time::Duration;

use futures::future::{select, Either};
use tokio::time::{sleep, sleep_until, Instant};

use std::borrow::Cow;

use super::attempt::{self, Success};
use super::byok::{self, CallerKeys, Credential, KeyRing};
use super::context::{self, Fit, Sizer};
use super::decide::{decide, Decision};
use super::plan;
use super::table::{Deployment, Route};
use crate::canonical::ChatRequest;
use crate::config::HedgeConfig;
use crate::failure::{Failure, FailureClass};
use crate::report::{AttemptRecord, Skipped, Trace};
use crate::validate::Rules;

/// Why no candidate answered.
#[derive(Debug, Clone)]
pub enum Failed {
    /// The failure belongs to the caller (invalid request, content policy): returned as is.
    Stopped(Failure),
    /// Every candidate failed, was unavailable, or the deadline passed.
    Exhausted { last: Failure },
}

pub struct Execution {
    pub result: Result<(Arc<Deployment>, Success), Failed>,
    pub trace: Trace,
}

enum Step {
    Answered(Success),
    Stop(Failure),
    Next(Option<Failure>),
}

/// Rate-limited deployments to come back to: (when, which).
type Deferred = Vec<(Instant, Arc<Deployment>)>;

/// Runs `req` through `route`; `caller` holds the provider keys the caller sent (BYOK).
pub async fn execute(route: &Route, req: &ChatRequest, deadline: Instant, caller: &CallerKeys) -> Execution {
    let keys = KeyRing::new(caller, route);
    let mut trace = Trace::new(&route.name);
    let candidates = plan::candidates(route, &mut rand::rng());
    let mut deferred: Deferred = Vec::new();
    let mut last = None;
    let mut hedges_left = route.hedge.map(|h| h.max.unwrap_or(1)).unwrap_or(0);

    let mut sizer = Sizer::new(req);
    let mut min_window: Option<u32> = None;
    let mut i = 0;
    while i < candidates.len() {
        let dep = &candidates[i];
        let Some(prepared) = fit(dep, req, &mut sizer, route, min_window, &mut trace) else {
            i += 1;
            continue;
        };
        // A hedge goes to the next candidate that can hold the prompt.
        let next = candidates
            .get(i + 1)
            .filter(|_| hedges_left > 0 && route.hedge.is_some())
            .and_then(|n| fit(n, req, &mut sizer, route, min_window, &mut trace).map(|r| (n, r)));
        let (step, consumed) = match (route.hedge, next) {
            (Some(h), Some((next, next_req))) => {
                let (s, hedged) = hedged(
                    route,
                    &h,
                    (dep, &prepared),
                    (next, &next_req),
                    (deadline, &keys),
                    &mut trace,
                    &mut deferred,
                )
                .await;
                if hedged {
                    hedges_left -= 1;
                }
                (s, if hedged { 2 } else { 1 })
            }
            _ => (
                (
                    try_deployment(dep, &prepared, &route.rules, (deadline, &keys), &mut trace, Some(&mut deferred))
                        .await,
                    dep.clone(),
                ),
                1,
            ),
        };
        match step {
            (Step::Answered(s), who) => return answered(who, s, trace),
            (Step::Stop(f), _) => return Execution { result: Err(Failed::Stopped(f)), trace },
            (Step::Next(f), _) => {
                if let (Some(f), Some(w)) = (&f, dep.window) {
                    // Only a larger window can help a prompt this model refused as too long.
                    if f.class == FailureClass::ContextWindow {
                        min_window = Some(min_window.unwrap_or(0).max(w.context_window));
                    }
                }
                last = f.or(last);
            }
        }
        i += consumed;
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
        let Some(prepared) = fit(&dep, req, &mut sizer, route, min_window, &mut trace) else { continue };
        match try_deployment(&dep, &prepared, &route.rules, (deadline, &keys), &mut trace, None).await {
            Step::Answered(s) => return answered(dep, s, trace),
            Step::Stop(f) => return Execution { result: Err(Failed::Stopped(f)), trace },
            Step::Next(f) => last = f.or(last),
        }
    }
    let last = match last {
        Some(f) if Instant::now() < deadline => f,
        None if !trace.skipped.is_empty() && Instant::now() < deadline => Failure::new(
            FailureClass::Overloaded,
            "every candidate is unavailable (circuit open, cooling down or drained)",
        )
        .detail("all_unavailable"),
        _ => Failure::new(FailureClass::Timeout, "the request deadline passed before any candidate answered")
            .detail("deadline"),
    };
    Execution { result: Err(Failed::Exhausted { last }), trace }
}

fn answered(dep: Arc<Deployment>, s: Success, mut trace: Trace) -> Execution {
    // Only the trimming of the request that was answered matters to the caller.
    let prefix = format!("{}=", dep.id);
    trace.truncated.retain(|n| n.starts_with(&prefix));
    trace.served_by = Some(dep.id.clone());
    trace.served_model = Some(dep.model.clone());
    Execution { result: Ok((dep, s)), trace }
}

/// Runs `dep`, and if it has not committed after the hedge delay, `next` as well; the first to
/// commit wins and the other is dropped (cancelled). Returns whether `next` was started.
async fn hedged(
    route: &Route,
    h: &HedgeConfig,
    (dep, req): (&Arc<Deployment>, &ChatRequest),
    (next, next_req): (&Arc<Deployment>, &ChatRequest),
    (deadline, keys): (Instant, &KeyRing<'_>),
    trace: &mut Trace,
    deferred: &mut Deferred,
) -> ((Step, Arc<Deployment>), bool) {
    let now = Instant::now();
    let delay = hedge_delay(h, dep, now);
    let mut t1 = Trace::new(&route.name);
    let mut d1 = Vec::new();
    let mut hedged_out = None;
    let first = Box::pin(try_deployment(dep, req, &route.rules, (deadline, keys), &mut t1, Some(&mut d1)));
    let timer = Box::pin(sleep_until((now + delay).min(deadline)));
    let (step, hedged) = match select(first, timer).await {
        Either::Left((step, _)) => (Some((step, dep.clone())), None),
        Either::Right((_, first)) => {
            if next.health.unavailable(Instant::now()).is_some() || !next.health.withdraw(Instant::now()) {
                // The hedge target is unavailable or its budget is spent: keep waiting.
                (Some((first.await, dep.clone())), None)
            } else {
                metrics::counter!(crate::report::metrics::HEDGES, "route" => route.name.clone(), "deployment" => next.id.clone())
                    .increment(1);
                trace.hedges += 1;
                let mut t2 = Trace::new(&route.name);
                let mut d2 = Vec::new();
                let second =
                    Box::pin(try_deployment(next, next_req, &route.rules, (deadline, keys), &mut t2, Some(&mut d2)));
                let started = Instant::now();
                let out = race(first, second, dep, next).await;
                deferred.append(&mut d2);
                // Report the loser of a won race too: it was tried, and the answer came from a
                // fallback because it was slow.
                if let Some((Step::Answered(_), winner)) = &out {
                    let first_lost = Arc::ptr_eq(winner, next);
                    let loser = if first_lost { dep } else { next };
                    let rec = AttemptRecord::hedged_out(&loser.id, started.elapsed() + delay);
                    if first_lost {
                        hedged_out = Some(rec);
                    } else {
                        t2.attempts.push(rec);
                    }
                }
                (out, Some(t2))
            }
        }
    };
    if let Some(rec) = hedged_out {
        t1.attempts.push(rec);
    }
    let hedged = match hedged {
        Some(t2) => {
            trace.merge(t1);
            trace.merge(t2);
            true
        }
        None => {
            trace.merge(t1);
            false
        }
    };
    deferred.append(&mut d1);
    (step.unwrap_or((Step::Next(None), dep.clone())), hedged)
}

/// The first of two attempts to answer wins; if the first to finish failed, waits for the other.
async fn race<A, B>(a: A, b: B, da: &Arc<Deployment>, db: &Arc<Deployment>) -> Option<(Step, Arc<Deployment>)>
where
    A: std::future::Future<Output = Step> + Unpin,
    B: std::future::Future<Output = Step> + Unpin,
{
    match select(a, b).await {
        Either::Left((Step::Answered(s), loser)) => {
            drop(loser);
            db.health.abandoned();
            Some((Step::Answered(s), da.clone()))
        }
        Either::Right((Step::Answered(s), loser)) => {
            drop(loser);
            da.health.abandoned();
            Some((Step::Answered(s), db.clone()))
        }
        Either::Left((Step::Stop(f), _)) | Either::Right((Step::Stop(f), _)) => Some((Step::Stop(f), da.clone())),
        Either::Left((Step::Next(fa), other)) => match other.await {
            Step::Answered(s) => Some((Step::Answered(s), db.clone())),
            Step::Stop(f) => Some((Step::Stop(f), db.clone())),
            Step::Next(fb) => Some((Step::Next(fb.or(fa)), db.clone())),
        },
        Either::Right((Step::Next(fb), other)) => match other.await {
            Step::Answered(s) => Some((Step::Answered(s), da.clone())),
            Step::Stop(f) => Some((Step::Stop(f), da.clone())),
            Step::Next(fa) => Some((Step::Next(fa.or(fb)), da.clone())),
        },
    }
}

/// The request to send `dep`, or `None` (recorded as a skip) when the prompt cannot fit it.
fn fit<'a>(
    dep: &Deployment,
    req: &'a ChatRequest,
    sizer: &mut Sizer<'a>,
    route: &Route,
    min_window: Option<u32>,
    trace: &mut Trace,
) -> Option<Cow<'a, ChatRequest>> {
    match context::prepare(dep, req, sizer, route.truncate, min_window) {
        Fit::Send(r, note) => {
            if let Some(n) = note {
                trace.truncated.push(n);
            }
            Some(r)
        }
        Fit::Skip => {
            trace.skipped.push(Skipped { deployment: dep.id.clone(), reason: "context_window", until: None });
            None
        }
    }
}

fn hedge_delay(h: &HedgeConfig, dep: &Deployment, now: Instant) -> Duration {
    let fixed = h.delay.map(|d| d.0).unwrap_or(Duration::from_secs(2));
    match h.percentile {
        Some(p) => dep.health.ttft_quantile(now, (p / 100.0).clamp(0.0, 1.0), 10).unwrap_or(fixed),
        None => fixed,
    }
}

/// Attempts one deployment, with retries. `deferred` collects a rate-limited deployment to
/// revisit; `None` means this is already the revisit.
async fn try_deployment(
    dep: &Arc<Deployment>,
    req: &ChatRequest,
    rules: &Rules,
    (deadline, keys): (Instant, &KeyRing<'_>),
    trace: &mut Trace,
    mut deferred: Option<&mut Deferred>,
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
        // Health is checked at the moment of sending: it may have changed since planning.
        let probe = match admit(dep, cred, t0, trace) {
            Some(p) => p,
            None => return Step::Next(None),
        };
        if first {
            dep.health.deposit(t0);
            first = false;
        }
        let result = attempt::run(dep, req, rules, deadline, cred.key(dep)).await;
        let now = Instant::now();
        let elapsed = now - t0;
        trace.upstream += elapsed;
        let f = match result {
            Ok(s) => {
                match &s {
                    Success::Complete(_) => dep.health.success(now, None, Some(elapsed)),
                    Success::Stream(live) => dep.health.committed(now, live.ttft),
                }
                let mut rec = AttemptRecord::ok(&dep.id, elapsed);
                rec.probe = probe;
                rec.caller_key = cred.is_caller();
                trace.attempts.push(rec);
                return Step::Answered(s);
            }
            Err(f) => f,
        };
        byok::record_failure(dep, cred, &f, probe, now);
        let mut rec = AttemptRecord::failed(&dep.id, &f, elapsed);
        rec.probe = probe;
        rec.caller_key = cred.is_caller();
        trace.attempts.push(rec);
        if cred.is_caller() && keys.refuses(dep, &f) && keys.fallback_to_gateway_keys() {
            // The caller's key was refused and the route lets the gateway's key stand in: at once,
            // on the same deployment (not a retry of a failing provider).
            continue;
        }
        match decide(&f, retries, &dep.limits, now, deadline, rand::random::<f64>()) {
            Decision::Retry(pause) if dep.health.withdraw(now) => {
                sleep(pause).await;
                trace.waited += pause;
                retries += 1;
            }
            // The retry budget is spent: fail over rather than add load to a struggling provider.
            Decision::Retry(_) => return Step::Next(Some(f)),
            Decision::Defer(at) => {
                if let Some(d) = deferred.as_deref_mut() {
                    d.push((at, dep.clone()));
                }
                return Step::Next(Some(f));
            }
            Decision::FailOver => return Step::Next(Some(f)),
            Decision::Stop => return Step::Stop(f),
        }
    }
}

/// The credential for `dep`'s next attempt; `None` (recorded as a skip) when the caller's key
/// was refused and the gateway's keys may not stand in.
pub(crate) fn credential<'k>(dep: &Deployment, keys: &KeyRing<'k>, trace: &mut Trace) -> Option<Credential<'k>> {
    let cred = keys.choose(dep);
    if cred.is_none() {
        trace.skipped.push(Skipped { deployment: dep.id.clone(), reason: "caller_key_rejected", until: None });
    }
    cred
}

/// Reserves an attempt on `dep` (whether it was a half-open probe); `None`, recorded as a skip,
/// when its health keeps it out.
pub(crate) fn admit(dep: &Deployment, cred: Credential<'_>, now: Instant, trace: &mut Trace) -> Option<bool> {
    match byok::admit(dep, cred, now) {
        Ok(p) => Some(p),
        Err(u) => {
            metrics::counter!(crate::report::metrics::SKIPPED, "deployment" => dep.id.clone(), "reason" => u.as_str())
                .increment(1);
            trace.skipped.push(Skipped { deployment: dep.id.clone(), reason: u.as_str(), until: u.until() });
            None
        }
    }
}

/// When to tell a caller to come back after every candidate failed: the earliest time any
/// deployment said it would recover (Retry-After, or a breaker's open period), else one second.
pub fn retry_after_hint(trace: &Trace) -> Duration {
    let now = Instant::now();
    let from_attempts = trace.attempts.iter().filter_map(|a| a.retry_after);
    let from_skips = trace.skipped.iter().filter_map(|s| s.until.map(|u| u.saturating_duration_since(now)));
    from_attempts.chain(from_skips).min().map(|d| d.max(Duration::from_secs(1))).unwrap_or(Duration::from_secs(1))
}
