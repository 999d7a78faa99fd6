//! The fallback loop: every candidate in plan order, retries as [`decide`] says, rate-limited
//! deployments revisited at the end if their Retry-After fits, all under one deadline.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::{sleep, sleep_until, Instant};

use super::attempt::{self, Success};
use super::decide::{decide, Decision};
use super::plan;
use super::table::{Deployment, Route};
use crate::canonical::ChatRequest;
use crate::failure::{Failure, FailureClass};
use crate::report::{AttemptRecord, Trace};

/// Why no candidate answered.
#[derive(Debug, Clone)]
pub enum Failed {
    /// The failure belongs to the caller (invalid request, content policy): returned as is.
    Stopped(Failure),
    /// Every candidate failed or the deadline passed. `last` is the last failure seen.
    Exhausted { last: Failure },
}

pub struct Execution {
    pub result: Result<(Arc<Deployment>, Success), Failed>,
    pub trace: Trace,
}

enum Step {
    Answered(Success),
    Stop(Failure),
    Next(Failure),
}

pub async fn execute(route: &Route, req: &ChatRequest, deadline: Instant) -> Execution {
    let mut trace = Trace::new(&route.name);
    let candidates = plan::candidates(route, &mut rand::rng());
    let mut deferred: Vec<(Instant, Arc<Deployment>)> = Vec::new();
    let mut last = None;

    for dep in candidates {
        match try_deployment(&dep, req, deadline, &mut trace, Some(&mut deferred)).await {
            Step::Answered(s) => return answered(dep, s, trace),
            Step::Stop(f) => {
                return Execution {
                    result: Err(Failed::Stopped(f)),
                    trace,
                }
            }
            Step::Next(f) => last = Some(f),
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
        match try_deployment(&dep, req, deadline, &mut trace, None).await {
            Step::Answered(s) => return answered(dep, s, trace),
            Step::Stop(f) => {
                return Execution {
                    result: Err(Failed::Stopped(f)),
                    trace,
                }
            }
            Step::Next(f) => last = Some(f),
        }
    }
    let last = match last {
        Some(f) if Instant::now() < deadline => f,
        _ => Failure::new(
            FailureClass::Timeout,
            "the request deadline passed before any candidate answered",
        )
        .detail("deadline"),
    };
    Execution {
        result: Err(Failed::Exhausted { last }),
        trace,
    }
}

fn answered(dep: Arc<Deployment>, s: Success, mut trace: Trace) -> Execution {
    trace.served_by = Some(dep.id.clone());
    trace.served_model = Some(dep.model.clone());
    Execution {
        result: Ok((dep, s)),
        trace,
    }
}

/// Attempts one deployment, with retries. `deferred` collects a rate-limited deployment to
/// revisit; `None` means this is already the revisit.
async fn try_deployment(
    dep: &Arc<Deployment>,
    req: &ChatRequest,
    deadline: Instant,
    trace: &mut Trace,
    mut deferred: Option<&mut Vec<(Instant, Arc<Deployment>)>>,
) -> Step {
    let mut retries = 0;
    loop {
        let t0 = Instant::now();
        if t0 >= deadline {
            return Step::Next(Failure::new(FailureClass::Timeout, "the request deadline passed").detail("deadline"));
        }
        let result = attempt::run(dep, req, deadline).await;
        let elapsed = t0.elapsed();
        trace.upstream += elapsed;
        let f = match result {
            Ok(s) => {
                trace.attempts.push(AttemptRecord::ok(&dep.id, elapsed));
                return Step::Answered(s);
            }
            Err(f) => f,
        };
        trace.attempts.push(AttemptRecord::failed(&dep.id, &f, elapsed));
        let now = Instant::now();
        match decide(&f, retries, &dep.limits, now, deadline, rand::random::<f64>()) {
            Decision::Retry(pause) => {
                sleep(pause).await;
                trace.waited += pause;
                retries += 1;
            }
            Decision::Defer(at) => {
                if let Some(d) = deferred.as_deref_mut() {
                    d.push((at, dep.clone()));
                }
                return Step::Next(f);
            }
            Decision::FailOver => return Step::Next(f),
            Decision::Stop => return Step::Stop(f),
        }
    }
}

/// When to tell a caller to come back after every candidate failed: the earliest Retry-After
/// any deployment gave, else one second.
pub fn retry_after_hint(trace: &Trace) -> Duration {
    trace
        .attempts
        .iter()
        .filter_map(|a| a.retry_after)
        .min()
        .map(|d| d.max(Duration::from_secs(1)))
        .unwrap_or(Duration::from_secs(1))
}
