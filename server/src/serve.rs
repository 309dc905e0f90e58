//! Accepting HTTP connections so that nobody can lock anyone else out: a connection must
//! send a whole request head within the header timeout (a connection that sends nothing,
//! slowloris partial headers and idle keep-alive connections are all closed when it runs
//! out), one source address may hold at most so many connections at once, and running
//! out of file descriptors pauses accepting instead of spinning. Upgraded WebSocket
//! connections leave this layer; the signaling socket has its own idle timeout.
//!
//! HTTP/1.1 only: browsers speak HTTP/2 only over TLS, which a reverse proxy in front
//! terminates, and HTTP/1.1 lets the header timeout start at the first byte (hyper's
//! version sniffing for cleartext HTTP/2 has no timeout of its own).

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::ServiceExt;

/// Connections the kernel may queue before `accept` (capped by `net.core.somaxconn`):
/// a crowd arriving at 9:00 sharp must not find the queue full, as a dropped SYN costs
/// the client a one-second retransmit.
pub const BACKLOG: u32 = 4096;

/// Binds `addr` for `serve`, with room for `BACKLOG` connections waiting.
pub fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

/// How connections are limited; see the configuration reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// A request head (and the first one on a new connection) must arrive within this.
    pub header_timeout: Duration,
    /// Most connections one source address holds at once; 0: no limit.
    pub per_ip: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(10),
            per_ip: 1000,
        }
    }
}

/// Connections open per source address. A std Mutex held for a map update only, never
/// across an await.
#[derive(Default)]
struct PerIp(Mutex<HashMap<IpAddr, usize>>);

/// Counts one connection until dropped.
struct Slot(Arc<PerIp>, IpAddr);

impl PerIp {
    fn take(self: &Arc<Self>, ip: IpAddr, max: usize) -> Option<Slot> {
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let n = m.entry(ip).or_insert(0);
        if max > 0 && *n >= max {
            return None;
        }
        *n += 1;
        Some(Slot(self.clone(), ip))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut m = self.0 .0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = m.get_mut(&self.1) {
            *n -= 1;
            if *n == 0 {
                m.remove(&self.1);
            }
        }
    }
}

/// Serves `app` on `listener` until `shutdown` resolves, then stops accepting and lets
/// each connection finish its request (graceful), waiting for them at most `drain`.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send,
    drain: Duration,
) -> std::io::Result<()> {
    let per_ip = Arc::new(PerIp::default());
    // Closed (dropped) when shutdown starts: every connection task watches it.
    let (stop_tx, stop_rx) = watch::channel(());
    let (done_tx, mut done_rx) = watch::channel(());
    let mut refused_logged = tokio::time::Instant::now() - Duration::from_secs(60);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors (or similar): back off instead of spinning;
                    // connections closing free some.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Some(slot) = per_ip.take(peer.ip(), limits.per_ip) else {
            let now = tokio::time::Instant::now();
            if now - refused_logged > Duration::from_secs(10) {
                refused_logged = now;
                tracing::warn!(ip = %peer.ip(), limit = limits.per_ip,
                    "connection refused: too many from one address");
            }
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let mut stop = stop_rx.clone();
        let done = done_tx.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let _done = done;
            let service = app.map_request(move |mut req: axum::http::Request<Incoming>| {
                req.extensions_mut().insert(ConnectInfo::<SocketAddr>(peer));
                req.map(axum::body::Body::new)
            });
            let conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_timeout)
                .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service))
                .with_upgrades();
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => return,
                _ = stop.changed() => {}
            }
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        });
    }
    drop(stop_tx);
    drop(done_tx);
    // Every connection task holds a `done` sender: all dropped means all finished.
    let _ = tokio::time::timeout(drain, async { while done_rx.changed().await.is_ok() {} }).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_ip_slots_are_counted_and_freed() {
        let p = Arc::new(PerIp::default());
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let a = p.take(ip, 2).unwrap();
        let _b = p.take(ip, 2).unwrap();
        assert!(p.take(ip, 2).is_none(), "a third is refused");
        assert!(p.take("10.0.0.2".parse().unwrap(), 2).is_some());
        drop(a);
        assert!(p.take(ip, 2).is_some(), "a freed slot is given again");
        assert!(p.take(ip, 0).is_some(), "0: no limit");
    }
}
