//! The accept loop: TCP_NODELAY on every accepted socket (without it added p99 grows by
//! milliseconds), a header-read timeout against slow clients, graceful shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use understudy::resilience::probe::Probes;

pub struct ServerHandle {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    background: Background,
}

/// Tasks that live as long as the server: health probes and the alert sender. Dropping it (or
/// the handle) stops them.
#[derive(Default)]
pub struct Background {
    pub probes: Option<Arc<Probes>>,
    pub tasks: Vec<JoinHandle<()>>,
}

impl Background {
    fn stop(&mut self) {
        if let Some(p) = &self.probes {
            p.stop();
        }
        for t in self.tasks.drain(..) {
            t.abort();
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        self.stop();
    }
}

impl ServerHandle {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting and stops probes and alerts; open connections finish their current
    /// request.
    pub async fn shutdown(mut self) {
        self.background.stop();
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }

    pub(super) fn with_background(mut self, background: Background) -> Self {
        self.background = background;
        self
    }

    /// Runs until the accept loop ends (it never does unless shut down).
    pub async fn wait(self) {
        let _ = self.task.await;
    }
}

pub async fn serve(app: Router, listen: SocketAddr, header_timeout: Duration) -> std::io::Result<ServerHandle> {
    let listener = TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    let (stop, mut stopped) = watch::channel(false);
    let task = tokio::spawn(async move {
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder.http1().timer(TokioTimer::new()).header_read_timeout(header_timeout).keep_alive(true);
        loop {
            let (socket, _) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                _ = stopped.changed() => break,
            };
            let _ = socket.set_nodelay(true);
            let service = TowerToHyperService::new(app.clone());
            let builder = builder.clone();
            let mut stop_conn = stopped.clone();
            tokio::spawn(async move {
                let conn = builder.serve_connection_with_upgrades(TokioIo::new(socket), service);
                tokio::pin!(conn);
                tokio::select! {
                    r = conn.as_mut() => { let _ = r; }
                    _ = stop_conn.changed() => {
                        conn.as_mut().graceful_shutdown();
                        let _ = conn.await;
                    }
                }
            });
        }
    });
    Ok(ServerHandle { addr, stop, task, background: Background::default() })
}
