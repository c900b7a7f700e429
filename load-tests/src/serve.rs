//! Runs an axum router on a loopback port until a cancellation token fires.

use std::net::SocketAddr;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A server started by [`spawn`]: its address and the task serving it.
#[derive(Debug)]
pub struct Served {
    pub addr: SocketAddr,
    pub task: JoinHandle<std::io::Result<()>>,
}

impl Served {
    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// Serves `router` on `addr` (use port 0 for any free port) until `shutdown` is cancelled.
pub async fn spawn(
    router: axum::Router,
    addr: SocketAddr,
    shutdown: CancellationToken,
) -> std::io::Result<Served> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    spawn_on(listener, router, shutdown)
}

/// [`spawn`] on a listener bound already (for a router that must know its own address).
pub fn spawn_on(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    shutdown: CancellationToken,
) -> std::io::Result<Served> {
    let addr = listener.local_addr()?;
    let task = tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await
    });
    Ok(Served { addr, task })
}

/// `127.0.0.1:0`: a free loopback port.
pub fn any_loopback_port() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}
