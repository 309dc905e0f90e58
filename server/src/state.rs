//! What every request handler may reach, HTTP and WebSocket alike. Cheap to clone.

use std::path::PathBuf;
use std::sync::Arc;

use crate::clock::Clock;
use crate::rooms::LiveRooms;
use crate::secret::Secret;
use crate::store::RoomStore;

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
    /// The demo and admin pages; `None` serves no pages.
    pub www_dir: Option<PathBuf>,
}

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
}
