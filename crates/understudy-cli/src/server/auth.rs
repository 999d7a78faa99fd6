//! Caller authentication: bearer keys from the configuration, compared in constant time.
//! Accepts `Authorization: Bearer <key>` (OpenAI SDKs) and `x-api-key: <key>` (Anthropic SDKs).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;
use understudy::config::Secret;
use understudy::wire::ErrorBody;

use super::{errors, AppState};

pub struct Keys(Vec<Vec<u8>>);

impl Keys {
    pub fn from_config(keys: &[Secret]) -> Keys {
        Keys(keys.iter().filter(|k| !k.is_empty()).map(|k| k.expose().as_bytes().to_vec()).collect())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Compares against every key without stopping early, so timing reveals nothing.
    pub fn accepts(&self, presented: &[u8]) -> bool {
        let mut ok = subtle::Choice::from(0);
        for k in &self.0 {
            ok |= k.as_slice().ct_eq(presented);
        }
        ok.into()
    }
}

fn presented(headers: &HeaderMap) -> Option<&[u8]> {
    bearer(headers).or_else(|| headers.get("x-api-key").map(|v| v.as_bytes()))
}

/// The token of `Authorization: Bearer <token>`.
pub fn bearer(headers: &HeaderMap) -> Option<&[u8]> {
    let b = headers.get(axum::http::header::AUTHORIZATION)?.as_bytes();
    let prefix = b"Bearer ";
    (b.len() > prefix.len() && b[..prefix.len()].eq_ignore_ascii_case(prefix)).then(|| &b[prefix.len()..])
}

pub async fn require(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    if state.keys.is_empty() {
        return next.run(req).await;
    }
    let front = errors::front_of(req.uri().path());
    match presented(req.headers()) {
        Some(k) if state.keys.accepts(k) => next.run(req).await,
        Some(_) => errors::response(
            front,
            &ErrorBody::new(401, errors::auth_type(front), "invalid API key").code("invalid_api_key"),
        )
        .into_response(),
        None => errors::response(
            front,
            &ErrorBody::new(
                401,
                errors::auth_type(front),
                "missing API key: send Authorization: Bearer <key> or x-api-key",
            )
            .code("missing_api_key"),
        )
        .into_response(),
    }
}
