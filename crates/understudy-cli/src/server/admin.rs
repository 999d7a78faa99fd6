//! The admin API (`/admin/*`): health state, drain and restore, injected faults (game days).
//!
//! Authenticated separately from callers: `Authorization: Bearer <admin key>`, compared in
//! constant time against `server.admin_keys`. Caller keys never open it. Without admin keys it
//! answers only on a loopback listener, and is a plain 404 elsewhere, so that its existence is
//! not advertised.
//!
//! Deployment ids contain `/` (`openai/gpt-4o`, and `#2` for a repeated entry), so they are the
//! tail of the path: `POST /admin/deployments/openai/gpt-4o/drain`, `PUT /admin/faults/openai/gpt-4o`
//! (percent-encode `#` as `%23`).

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Request, State};
use axum::http::HeaderValue;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put, MethodRouter};
use axum::{Json, Router};
use serde_json::{json, Value};
use tokio::time::Instant;
use understudy::canonical::Dialect;
use understudy::config::{ProbeConfig, ProbeKind, Secret};
use understudy::resilience::health::{DeploymentHealth, InjectedFault, Snapshot};
use understudy::wire::ErrorBody;

use super::auth::{bearer, Keys};
use super::{errors, AppState};

/// Who may use the admin API.
pub struct Access {
    keys: Keys,
    /// No keys configured: open, but only because the listener is loopback.
    open_on_loopback: bool,
}

impl Access {
    pub fn new(admin_keys: &[Secret], listen: SocketAddr) -> Access {
        let keys = Keys::from_config(admin_keys);
        let open_on_loopback = keys.is_empty() && listen.ip().is_loopback();
        Access { keys, open_on_loopback }
    }
}

pub fn router(state: Arc<AppState>) -> Router<Arc<AppState>> {
    Router::new()
        .route("/admin/state", only(get(show_state)))
        .route("/admin/deployments/{*rest}", only(post(deployment_action)))
        .route("/admin/faults/{*id}", only(put(set_fault).delete(clear_fault)))
        .route("/admin/faults", only(delete(clear_faults)))
        // `layer`, not `route_layer`: a wrong method must not reveal more than a wrong key.
        .layer(middleware::from_fn_with_state(state, require))
}

fn only(r: MethodRouter<Arc<AppState>>) -> MethodRouter<Arc<AppState>> {
    r.fallback(|| async { error(405, "invalid_request_error", "method_not_allowed", "method not allowed here") })
}

async fn require(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let access = &state.admin;
    if access.keys.is_empty() {
        if access.open_on_loopback {
            return next.run(req).await;
        }
        return super::not_found(req.uri().clone()).await;
    }
    let (code, message) = match bearer(req.headers()) {
        Some(k) if access.keys.accepts(k) => return next.run(req).await,
        Some(_) => ("invalid_admin_key", "invalid admin key"),
        None => ("missing_admin_key", "missing admin key: send Authorization: Bearer <admin key>"),
    };
    let mut r = error(401, errors::auth_type(Dialect::OpenAi), code, message);
    r.headers_mut().insert("www-authenticate", HeaderValue::from_static("Bearer"));
    r
}

fn error(status: u16, error_type: &str, code: &str, message: impl Into<String>) -> Response {
    errors::response(Dialect::OpenAi, &ErrorBody::new(status, error_type, message).code(code))
}

/// An admin request that cannot be served, as OpenAI-shaped JSON.
struct Refused {
    status: u16,
    code: &'static str,
    message: String,
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        let error_type =
            if self.status == 404 { errors::not_found_type(Dialect::OpenAi) } else { "invalid_request_error" };
        error(self.status, error_type, self.code, self.message)
    }
}

fn bad_request(message: impl Into<String>) -> Refused {
    Refused { status: 400, code: "invalid_admin_request", message: message.into() }
}

fn not_found(code: &'static str, message: impl Into<String>) -> Refused {
    Refused { status: 404, code, message: message.into() }
}

type Answer = Result<Json<Value>, Refused>;

/// The id in the path; a rejection (bad percent-encoding) is answered as JSON too.
type PathArg = Result<Path<String>, PathRejection>;

fn path(p: PathArg) -> Result<String, Refused> {
    p.map(|Path(s)| s).map_err(|e| bad_request(format!("invalid path: {e}")))
}

/// `GET /admin/state`.
async fn show_state(State(state): State<Arc<AppState>>) -> Json<Value> {
    let (now, wall) = (Instant::now(), SystemTime::now());
    let table = state.gateway.table();
    let health = state.gateway.health();
    let configured: BTreeMap<String, Option<ProbeConfig>> =
        table.deployments().iter().map(|d| (d.id.clone(), d.probe)).collect();
    let probing: BTreeSet<String> = state.probes.running().into_iter().collect();
    // Configured deployments, plus `provider/model` ones callers addressed directly.
    let deployments: Vec<Value> = health
        .all()
        .iter()
        .map(|h| {
            let mut v = deployment_json(&h.snapshot(now), wall);
            v["configured"] = json!(configured.contains_key(&h.id));
            v["probe_config"] = match configured.get(&h.id).copied().flatten() {
                Some(p) => probe_json(&p, probing.contains(&h.id)),
                None => Value::Null,
            };
            v
        })
        .collect();
    let on_fallback = health.fallback_routes();
    let routes: Vec<Value> = table
        .routes()
        .map(|r| {
            let steps: Vec<Vec<&str>> = r.steps.iter().map(|s| s.iter().map(|d| d.id.as_str()).collect()).collect();
            json!({
                "name": r.name,
                "description": r.description,
                "steps": steps,
                "serving_from_fallback": on_fallback.contains(&r.name),
            })
        })
        .collect();
    Json(json!({
        "time": rfc3339(wall),
        "deployments": deployments,
        "routes": routes,
        "fallback_routes": on_fallback,
    }))
}

/// A snapshot, with wall-clock times next to the relative ones.
fn deployment_json(s: &Snapshot, wall: SystemTime) -> Value {
    let mut v = serde_json::to_value(s).unwrap_or(Value::Null);
    let at = |secs: f64| rfc3339(wall + Duration::try_from_secs_f64(secs).unwrap_or_default());
    if let Some(secs) = s.breaker.open_for_secs {
        v["breaker"]["open_until"] = json!(at(secs));
    }
    if let Some(c) = &s.cooldown {
        v["cooldown"]["until"] = json!(at(c.for_secs));
    }
    v
}

fn probe_json(p: &ProbeConfig, running: bool) -> Value {
    json!({
        "kind": match p.kind { ProbeKind::Models => "models", ProbeKind::Completion => "completion" },
        "interval_secs": p.interval.0.as_secs_f64(),
        "timeout_secs": p.timeout.map(|t| t.0).unwrap_or(understudy::resilience::probe::DEFAULT_TIMEOUT).as_secs_f64(),
        "running": running,
    })
}

fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

fn find(state: &AppState, id: &str) -> Result<Arc<DeploymentHealth>, Refused> {
    state.gateway.health().find(id).ok_or_else(|| not_found("deployment_not_found", format!("no deployment {id:?}")))
}

fn show(h: &DeploymentHealth) -> Json<Value> {
    Json(deployment_json(&h.snapshot(Instant::now()), SystemTime::now()))
}

/// `POST /admin/deployments/{id}/drain` and `.../restore`, with an optional `{"reason": "..."}`.
async fn deployment_action(State(state): State<Arc<AppState>>, rest: PathArg, body: Bytes) -> Answer {
    let rest = path(rest)?;
    let Some((id, action)) = rest.rsplit_once('/') else {
        return Err(not_found("not_found", "use /admin/deployments/{id}/drain or .../restore"));
    };
    if action != "drain" && action != "restore" {
        return Err(not_found("not_found", format!("unknown action {action:?}: drain or restore")));
    }
    let reason = reason(&body)?;
    let h = find(&state, id)?;
    let reason = reason.unwrap_or_else(|| format!("{action} through the admin API"));
    if action == "drain" {
        h.drain(&reason);
    } else {
        h.restore(&reason);
    }
    tracing::warn!(target: "understudy::admin", deployment = %id, action, reason = %reason, "admin action");
    Ok(show(&h))
}

/// The optional `reason` of a drain or restore body, clipped to a sensible length.
fn reason(body: &[u8]) -> Result<Option<String>, Refused> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Body {
        #[serde(default)]
        reason: Option<String>,
    }
    let b: Body = serde_json::from_slice(body).map_err(|e| bad_request(format!("invalid JSON body: {e}")))?;
    Ok(b.reason.map(|r| r.trim().chars().take(500).collect::<String>()).filter(|r| !r.is_empty()))
}

/// `PUT /admin/faults/{id}` with an injected fault.
async fn set_fault(State(state): State<Arc<AppState>>, id: PathArg, body: Bytes) -> Answer {
    let id = path(id)?;
    let fault: InjectedFault = serde_json::from_slice(&body)
        .map_err(|e| bad_request(format!("invalid fault: {e}; expected {{latency_ms, status, error_rate, hang}}")))?;
    check_fault(&fault).map_err(bad_request)?;
    let h = find(&state, &id)?;
    h.set_fault(Some(fault));
    tracing::warn!(target: "understudy::admin", deployment = %id, fault = ?fault, "fault injected");
    Ok(show(&h))
}

fn check_fault(f: &InjectedFault) -> Result<(), String> {
    if f.latency_ms.is_none() && f.status.is_none() && !f.hang {
        return Err("a fault needs at least one of latency_ms, status or hang".into());
    }
    if let Some(s) = f.status {
        if !(400..=599).contains(&s) {
            return Err(format!("status {s} is not an error status (400-599)"));
        }
    }
    if let Some(r) = f.error_rate {
        if !(0.0..=1.0).contains(&r) {
            return Err(format!("error_rate {r} is not between 0 and 1"));
        }
    }
    Ok(())
}

/// `DELETE /admin/faults/{id}`.
async fn clear_fault(State(state): State<Arc<AppState>>, id: PathArg) -> Answer {
    let id = path(id)?;
    let h = find(&state, &id)?;
    h.set_fault(None);
    tracing::warn!(target: "understudy::admin", deployment = %id, "fault cleared");
    Ok(show(&h))
}

/// `DELETE /admin/faults`: clears every injected fault.
async fn clear_faults(State(state): State<Arc<AppState>>) -> Json<Value> {
    let mut cleared = Vec::new();
    for h in state.gateway.health().all() {
        if h.fault().is_some() {
            h.set_fault(None);
            cleared.push(h.id.clone());
        }
    }
    tracing::warn!(target: "understudy::admin", cleared = ?cleared, "every fault cleared");
    Json(json!({ "cleared": cleared }))
}
