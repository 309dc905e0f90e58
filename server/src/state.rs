//! What every request handler may reach, HTTP and WebSocket alike. Cheap to clone.

use std::path::PathBuf;
use std::sync::Arc;

use std::net::IpAddr;
use std::time::Duration;

use crate::clock::Clock;
use crate::cluster::Cluster;
use crate::config::Origins;
use crate::metrics::Metrics;
use crate::rate::{KeyedLimiter, Rate};
use crate::rooms::LiveRooms;
use crate::secret::Secret;
use crate::sfu::SfuFactory;
use crate::store::RoomStore;
use crate::webhooks::Webhooks;

#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub store: Arc<dyn RoomStore>,
    pub clock: Arc<dyn Clock>,
    pub admin_key: Secret,
    pub token_key: Secret,
    /// Base of join links, without a trailing slash.
    pub public_url: String,
    pub live: LiveRooms,
    /// This node among the others (alone when no Redis is configured): admin writes
    /// and questions about who is joined go through it.
    pub cluster: Cluster,
    /// The demo and admin pages; `None` serves no pages.
    pub www_dir: Option<PathBuf>,
    /// Wrong admin keys, per source address.
    pub admin_failures: KeyedLimiter<IpAddr>,
    /// Origins whose pages may use the SDK (CORS, the WebSocket's `Origin`).
    pub allowed_origins: Origins,
    /// How long one request may take.
    pub http_request_timeout: Duration,
    pub metrics: Arc<Metrics>,
    /// The media relay, for readiness (None: signaling only).
    pub media: Option<Arc<SfuFactory>>,
    pub webhooks: Webhooks,
    /// Guest tokens handed out, per source address.
    pub guest_tokens: KeyedLimiter<IpAddr>,
}

/// Wrong admin keys a source address may send: `n` at once, refilling at `n` per 100 s
/// (the default 10: one more every 10 s).
pub fn admin_failures(n: u32) -> Rate {
    Rate::new(n.into(), f64::from(n) / 100.0)
}
/// Source addresses remembered for that at once.
pub const ADMIN_FAILURE_SOURCES: usize = 100_000;
/// Guest tokens one address may get: 10 at once, then one every 5 s.
pub const GUEST_TOKENS: Rate = Rate::new(10.0, 0.2);

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    pub fn new(inner: Inner) -> Self {
        Self(Arc::new(inner))
    }

    /// Changes whenever an admin write is committed, through this node or another:
    /// admission reads it before and after a join to tell whether it must look again.
    pub fn writes_seen(&self) -> u64 {
        self.store
            .generation()
            .wrapping_add(self.cluster.remote_writes())
    }
}
