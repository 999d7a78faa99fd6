//! The floor for any proxy on this machine: an axum server that forwards the body to one
//! upstream with reqwest and returns its answer, with no parsing, routing, logging or metrics.
//! `scripts/bench.py --floor` runs it beside the gateway so the gateway's own cost can be told
//! apart from the cost of being a proxy at all (two extra loopback hops and two HTTP codecs).
//!
//! Usage: bare_proxy LISTEN UPSTREAM_URL

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;

#[derive(Clone)]
struct Upstream {
    client: reqwest::Client,
    url: String,
}

async fn forward(State(up): State<Upstream>, headers: HeaderMap, body: Bytes) -> (StatusCode, Bytes) {
    let mut req = up.client.post(&up.url).body(body).header("content-type", "application/json");
    if let Some(auth) = headers.get("authorization") {
        req = req.header("authorization", auth);
    }
    match req.send().await {
        Ok(r) => {
            let status = StatusCode::from_u16(r.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
            (status, r.bytes().await.unwrap_or_default())
        }
        Err(_) => (StatusCode::BAD_GATEWAY, Bytes::new()),
    }
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(listen), Some(url)) = (args.next(), args.next()) else {
        eprintln!("usage: bare_proxy LISTEN UPSTREAM_URL");
        std::process::exit(2);
    };
    let client = reqwest::Client::builder().tcp_nodelay(true).build().expect("client");
    let app = Router::new().route("/v1/chat/completions", post(forward)).with_state(Upstream { client, url });
    use axum::serve::ListenerExt;
    let listener = tokio::net::TcpListener::bind(&listen).await.expect("bind").tap_io(|s| {
        let _ = s.set_nodelay(true);
    });
    axum::serve(listener, app.into_make_service()).await.expect("serve");
}
