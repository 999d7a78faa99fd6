//! The accept loop and the handle that controls a running server.
//!
//! Hand-written instead of axum's `serve` so that each connection has a kill switch: the
//! `reset` fault drops the socket with `SO_LINGER` 0, which sends a TCP RST before headers.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify};
use tokio::task::{JoinHandle, JoinSet};

use crate::fault::Fault;
use crate::state::{MockConfig, Recorded, State, Stats};

/// Per-connection context shared with the request handlers.
pub(crate) struct Conn {
    pub state: Arc<State>,
    kill: Notify,
    reset: AtomicBool,
}

impl Conn {
    /// Ends the connection with a TCP reset (the response in progress is never sent).
    pub fn reset(&self) {
        self.reset.store(true, Ordering::Relaxed);
        self.kill.notify_one();
    }
}

/// The socket as hyper sees it; on drop after `Conn::reset` it sets `SO_LINGER` 0 so the
/// close becomes an RST instead of a FIN.
struct ResetOnDrop {
    io: TokioIo<TcpStream>,
    conn: Arc<Conn>,
}

impl Drop for ResetOnDrop {
    fn drop(&mut self) {
        if self.conn.reset.load(Ordering::Relaxed) {
            let _ = self.io.inner().set_zero_linger();
        }
    }
}

impl hyper::rt::Read for ResetOnDrop {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl hyper::rt::Write for ResetOnDrop {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }
}

/// Keeps `Stats::open_connections` right however the connection task ends (even aborted).
struct OpenGuard(Arc<State>);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.connection_closed();
    }
}

/// Binds `listen` (port 0 picks a free port), spawns the server and returns at once.
/// Must be called inside a tokio runtime. A `token_public_key` that is not an RSA public key is
/// refused (`InvalidInput`).
pub async fn start(listen: SocketAddr, config: MockConfig) -> io::Result<MockHandle> {
    if let Some(pem) = &config.token_public_key {
        crate::token::public_key_der(pem)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("token_public_key: {e}")))?;
    }
    let listener = TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    let state = Arc::new(State::new(config));
    let (shutdown, rx) = watch::channel(false);
    let task = tokio::spawn(accept_loop(listener, state.clone(), rx));
    Ok(MockHandle { addr, control: MockControl { state }, shutdown, task })
}

async fn accept_loop(listener: TcpListener, state: Arc<State>, mut shutdown: watch::Receiver<bool>) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    conns.spawn(serve(stream, state.clone()));
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "mock: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            // A send or a dropped handle both end the server.
            _ = shutdown.changed() => break,
        }
    }
    drop(listener);
    conns.shutdown().await;
}

async fn serve(stream: TcpStream, state: Arc<State>) {
    // Without TCP_NODELAY small SSE frames wait for ACKs (milliseconds of added latency).
    let _ = stream.set_nodelay(true);
    state.connection_opened();
    let _open = OpenGuard(state.clone());
    let conn = Arc::new(Conn { state, kill: Notify::new(), reset: AtomicBool::new(false) });
    let io = ResetOnDrop { io: TokioIo::new(stream), conn: conn.clone() };
    let handler = conn.clone();
    let service = service_fn(move |req| {
        let conn = handler.clone();
        async move { Ok::<_, Infallible>(crate::route::handle(req, conn).await) }
    });
    let http = http1::Builder::new().header_read_timeout(None::<Duration>).serve_connection(io, service);
    tokio::select! {
        result = http => {
            if let Err(e) = result {
                tracing::debug!(error = %e, "mock: connection ended with an error");
            }
        }
        _ = conn.kill.notified() => {}
    }
}

/// A cloneable controller for a running server (faults, stats, recordings), without owning it.
#[derive(Clone)]
pub struct MockControl {
    state: Arc<State>,
}

impl MockControl {
    /// Same as `PUT /_mock/faults/{model}`; `*` applies to every model. A `+suffix` is ignored.
    pub fn set_fault(&self, model: &str, fault: Fault) {
        self.state.set_fault(model, fault);
    }

    pub fn clear_fault(&self, model: &str) {
        self.state.clear_fault(model);
    }

    pub fn clear_faults(&self) {
        self.state.clear_faults();
    }

    /// The run-time fault rules, by base model.
    pub fn faults(&self) -> std::collections::BTreeMap<String, Fault> {
        self.state.faults()
    }

    pub fn stats(&self) -> Stats {
        self.state.stats()
    }

    /// Recorded requests, oldest first, optionally only those for one base model.
    pub fn requests(&self, model: Option<&str>) -> Vec<Recorded> {
        self.state.requests(model, usize::MAX)
    }

    /// Clears faults, stats and recordings.
    pub fn reset(&self) {
        self.state.reset();
    }
}

/// A running mock server. Dropping it stops the server too.
pub struct MockHandle {
    addr: SocketAddr,
    control: MockControl,
    shutdown: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl MockHandle {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:port` (an unspecified listen address is reported as loopback).
    pub fn url(&self) -> String {
        let ip = match self.addr.ip() {
            std::net::IpAddr::V4(v4) if v4.is_unspecified() => std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
            std::net::IpAddr::V6(v6) if v6.is_unspecified() => std::net::IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
            ip => ip,
        };
        format!("http://{}", SocketAddr::new(ip, self.addr.port()))
    }

    pub fn control(&self) -> MockControl {
        self.control.clone()
    }

    pub fn set_fault(&self, model: &str, fault: Fault) {
        self.control.set_fault(model, fault);
    }

    pub fn clear_fault(&self, model: &str) {
        self.control.clear_fault(model);
    }

    pub fn clear_faults(&self) {
        self.control.clear_faults();
    }

    pub fn stats(&self) -> Stats {
        self.control.stats()
    }

    pub fn requests(&self, model: Option<&str>) -> Vec<Recorded> {
        self.control.requests(model)
    }

    pub fn reset(&self) {
        self.control.reset();
    }

    /// Stops accepting, closes every connection (hung and streaming ones too) and waits.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let _ = self.task.await;
    }
}
