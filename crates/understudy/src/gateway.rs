//! The engine's front door for embedders and the HTTP server alike: resolve the route, run the
//! fallback chain, and hand back an answer (complete or streaming) with its attempt trace.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::time::Instant;

use crate::canonical::{ChatRequest, ChatResponse, EmbeddingsRequest, EmbeddingsResponse};
use crate::config::Config;
use crate::config::StreamFailure;
use crate::failure::{Failure, FailureClass};
use crate::report::Trace;
use crate::resilience::health::HealthRegistry;
use crate::route::attempt::Success;
use crate::route::byok::CallerKeys;
use crate::route::embed;
use crate::route::fallback::{self, Failed};
use crate::route::{Route, RouteTable};
use crate::stream::continuation::Continuation;
use crate::stream::LiveStream;

/// Per-request options a caller may set (headers in the HTTP server).
#[derive(Debug, Clone, Default)]
pub struct CallOptions {
    /// Overrides the route's deadline (precedence: request > route > defaults).
    pub deadline: Option<Duration>,
    /// Provider keys the caller sent with this request (bring your own key). They live as long
    /// as the request: never logged, stored or shared (see `route::byok`).
    pub caller_keys: CallerKeys,
}

pub enum Reply {
    Complete(ChatResponse),
    /// Committed: the first content has arrived.
    Stream(Box<LiveStream>),
}

#[derive(Debug, Clone)]
pub enum GatewayError {
    /// `model` names no route.
    UnknownRoute(String),
    /// The caller's own mistake or a content-policy refusal, as the provider stated it.
    Rejected(Failure),
    /// Every candidate failed. `retry_after` is when to come back.
    Exhausted { last: Failure, retry_after: Duration },
}

pub struct Handled {
    pub result: Result<Reply, GatewayError>,
    pub trace: Trace,
}

/// An embeddings request's outcome.
pub struct HandledEmbeddings {
    pub result: Result<EmbeddingsResponse, GatewayError>,
    pub trace: Trace,
}

pub struct Gateway {
    table: RwLock<Arc<RouteTable>>,
    health: Arc<HealthRegistry>,
}

impl Gateway {
    pub fn new(config: &Config) -> Gateway {
        let health = Arc::new(HealthRegistry::default());
        Gateway { table: RwLock::new(Arc::new(RouteTable::from_config(config, health.clone()))), health }
    }

    /// Swaps in a new configuration; deployments that keep their id keep their health.
    pub fn reload(&self, config: &Config) {
        let table = Arc::new(RouteTable::from_config(config, self.health.clone()));
        *self.table.write().unwrap_or_else(|p| p.into_inner()) = table;
    }

    pub fn health(&self) -> &Arc<HealthRegistry> {
        &self.health
    }

    /// The current route table (a snapshot: a reload swaps it without disturbing requests).
    pub fn table(&self) -> Arc<RouteTable> {
        self.table.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn route(&self, model: &str) -> Option<Arc<Route>> {
        self.table().resolve(model)
    }

    pub async fn chat(&self, req: &ChatRequest, opts: &CallOptions) -> Handled {
        let Some(route) = self.route(&req.model) else {
            return Handled {
                result: Err(GatewayError::UnknownRoute(req.model.clone())),
                trace: Trace::new(&req.model),
            };
        };
        let deadline = Instant::now() + opts.deadline.unwrap_or(route.limits.deadline);
        let mut exec = fallback::execute(&route, req, deadline, &opts.caller_keys).await;
        if let (Err(Failed::Stopped(f)), Some(chain)) = (&exec.result, &route.content_policy) {
            if f.class == FailureClass::ContentFiltered {
                // The route names its own chain for content-policy refusals: try it.
                let retry = fallback::execute(chain, req, deadline, &opts.caller_keys).await;
                let mut trace = std::mem::replace(&mut exec.trace, Trace::new(&route.name));
                let upstream = trace.upstream + retry.trace.upstream;
                trace.merge(retry.trace.clone());
                trace.upstream = upstream;
                trace.served_by = retry.trace.served_by;
                trace.served_model = retry.trace.served_model;
                exec = fallback::Execution { result: retry.result, trace };
            }
        }
        if exec.result.is_ok() && !route.steps.is_empty() {
            self.health.route_served(&route.name, exec.trace.fell_back());
        }
        let result = match exec.result {
            Ok((_, Success::Complete(resp))) => Ok(Reply::Complete(resp)),
            Ok((dep, Success::Stream(mut live))) => {
                if route.stream_failure == StreamFailure::Continue {
                    // Candidates after the one that answered, in chain order, may resume it.
                    let all: Vec<_> = route.deployments().cloned().collect();
                    let pos = all.iter().position(|d| d.id == dep.id).map(|p| p + 1).unwrap_or(all.len());
                    live.continuation = Some(Continuation {
                        route: route.clone(),
                        req: req.clone(),
                        remaining: all[pos..].to_vec(),
                        deadline,
                        caller_keys: opts.caller_keys.clone(),
                    });
                }
                Ok(Reply::Stream(live))
            }
            Err(Failed::Stopped(f)) => Err(GatewayError::Rejected(f)),
            Err(Failed::Exhausted { last }) => {
                Err(GatewayError::Exhausted { last, retry_after: fallback::retry_after_hint(&exec.trace) })
            }
        };
        Handled { result, trace: exec.trace }
    }

    /// Embeddings through the route `req.model` names, with the same fallbacks, health and
    /// reporting as [`chat`](Self::chat). The answer's `model` is the deployment's.
    pub async fn embed(&self, req: &EmbeddingsRequest, opts: &CallOptions) -> HandledEmbeddings {
        let Some(route) = self.route(&req.model) else {
            return HandledEmbeddings {
                result: Err(GatewayError::UnknownRoute(req.model.clone())),
                trace: Trace::new(&req.model),
            };
        };
        let deadline = Instant::now() + opts.deadline.unwrap_or(route.limits.deadline);
        let exec = embed::execute(&route, req, deadline, &opts.caller_keys).await;
        if exec.result.is_ok() && !route.steps.is_empty() {
            self.health.route_served(&route.name, exec.trace.fell_back());
        }
        let result = match exec.result {
            Ok((_, resp)) => Ok(resp),
            Err(Failed::Stopped(f)) => Err(GatewayError::Rejected(f)),
            Err(Failed::Exhausted { last }) => {
                Err(GatewayError::Exhausted { last, retry_after: fallback::retry_after_hint(&exec.trace) })
            }
        };
        HandledEmbeddings { result, trace: exec.trace }
    }
}

impl GatewayError {
    /// The stable error type callers see.
    pub fn error_type(&self) -> &'static str {
        match self {
            GatewayError::UnknownRoute(_) => "model_not_found",
            GatewayError::Rejected(f) if f.class == FailureClass::ContentFiltered => "content_filtered",
            GatewayError::Rejected(_) => "invalid_request_error",
            GatewayError::Exhausted { .. } => "all_candidates_failed",
        }
    }
}
