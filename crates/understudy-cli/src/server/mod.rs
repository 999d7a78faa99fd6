//! The HTTP front: OpenAI- and Anthropic-compatible endpoints over the engine.
//!
//! Middleware order, outermost first: connection (TCP_NODELAY, header-read timeout) ->
//! authentication -> body limit -> handler (decode, route, encode) -> report. `/admin/*` has its
//! own authentication (admin keys), see [`admin`].

mod admin;
mod auth;
mod chat;
mod embeddings;
mod errors;
mod listen;
mod respond;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{middleware, Json, Router};
use understudy::canonical::Dialect;
use understudy::config::Config;
use understudy::report::journal::Journal;
use understudy::Gateway;

use listen::Background;
pub use listen::ServerHandle;
use understudy::resilience::probe::Probes;

/// What every handler shares.
pub struct AppState {
    pub gateway: Arc<Gateway>,
    pub keys: auth::Keys,
    pub max_body: usize,
    pub admin: admin::Access,
    /// Background health probes; a configuration reload would call `probes.sync` with the new table.
    pub probes: Arc<Probes>,
    /// The fallback journal, when configured.
    pub journal: Option<Journal>,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(
        "refusing to listen on {0} without caller keys: set server.api_keys, or server.allow_unauthenticated: true"
    )]
    Unauthenticated(SocketAddr),
    #[error("cannot listen on {0}: {1}")]
    Bind(SocketAddr, std::io::Error),
}

/// Starts the gateway on `listen` and returns at once, with its health probes and (when
/// `alerts` is configured) the alert sender.
pub async fn start(config: &Config, listen: SocketAddr) -> Result<ServerHandle, StartError> {
    crate::telemetry::install_metrics();
    let keys = auth::Keys::from_config(&config.server.api_keys);
    if keys.is_empty() && !listen.ip().is_loopback() && !config.server.allow_unauthenticated {
        return Err(StartError::Unauthenticated(listen));
    }
    let gateway = Arc::new(Gateway::new(config));
    let mut background = Background::default();
    // Subscribed before anything runs, so that no early event is missed.
    if let Some(alerts) = &config.alerts {
        background.tasks.extend(crate::alerts::spawn(alerts, gateway.health().subscribe()));
    }
    let table = gateway.table();
    let now = tokio::time::Instant::now();
    for d in table.deployments() {
        d.health.publish_state(now);
    }
    let probes = Arc::new(Probes::new());
    probes.sync(&table);
    background.probes = Some(probes.clone());
    let state = Arc::new(AppState {
        gateway,
        keys,
        max_body: usize::try_from(config.server.max_body.0).unwrap_or(usize::MAX),
        admin: admin::Access::new(&config.server.admin_keys, listen),
        probes,
        journal: config.journal.as_ref().map(Journal::start),
    });
    let app = router(state);
    let handle = listen::serve(app, listen, config.server.header_read_timeout.0)
        .await
        .map_err(|e| StartError::Bind(listen, e))?;
    Ok(handle.with_background(background))
}

fn router(state: Arc<AppState>) -> Router {
    let api = Router::new()
        .route("/v1/chat/completions", post(|s, h, b| chat::handle(s, h, b, Dialect::OpenAi)))
        .route("/v1/messages", post(|s, h, b| chat::handle(s, h, b, Dialect::Anthropic)))
        .route("/v1/embeddings", post(embeddings::handle))
        .route("/v1/models", get(models))
        .route_layer(middleware::from_fn_with_state(state.clone(), auth::require));
    Router::new()
        .merge(api)
        .merge(admin::router(state.clone()))
        .route("/healthz", get(|| async { Json(serde_json::json!({"status": "ok"})) }))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .with_state(state)
}

/// `GET /v1/models`: the routes, in OpenAI's list shape.
async fn models(State(state): State<Arc<AppState>>) -> Json<serde_json::Value> {
    let table = state.gateway.table();
    let data: Vec<_> = table
        .routes()
        .map(|r| {
            serde_json::json!({
                "id": r.name,
                "object": "model",
                "created": 0,
                "owned_by": "understudy",
                "description": r.description,
                "fallback_chain": r.deployments().map(|d| d.id.clone()).collect::<Vec<_>>(),
            })
        })
        .collect();
    Json(serde_json::json!({"object": "list", "data": data}))
}

async fn metrics() -> Response {
    let body = crate::telemetry::render_metrics();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}

pub(crate) async fn not_found(uri: axum::http::Uri) -> Response {
    let body = errors::body(
        Dialect::OpenAi,
        &understudy::wire::ErrorBody::new(404, "not_found_error", format!("no such endpoint: {}", uri.path())),
    );
    (StatusCode::NOT_FOUND, body).into_response()
}
