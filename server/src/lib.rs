//! Convene server: admin REST API, live sessions over WebSocket, and media relay.
//!
//! Layers point one way:
//!
//! ```text
//! app ─> http, signal  (the edge: REST handlers, the WebSocket; both use api, state)
//!          └─> rooms   (rules, admission, live sessions: a sans-IO core and its driver)
//!                └─> store (persistence), sfu (the media relay, behind sfu::port)
//!                      └─> model, ids, clock, rate (shared records and helpers)
//! ```
//!
//! Nothing imports upward, and no two modules import each other.

pub mod api;
pub mod app;
pub mod cli;
pub mod clock;
pub mod config;
pub mod http;
pub mod ids;
pub mod model;
pub mod purge;
pub mod rate;
pub mod rooms;
pub mod secret;
pub mod sfu;
pub mod signal;
pub mod state;
pub mod store;
pub mod tokens;
pub mod www;

use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::rooms::LiveRooms;
use crate::state::{AppState, Inner};
use crate::store::{RoomStore, SqliteStore};

/// How long shutdown waits for live sessions to say goodbye.
pub const SHUTDOWN_DRAIN: std::time::Duration = std::time::Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("cannot use data dir {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot open the database: {0}")]
    Store(#[from] store::StoreError),
    #[error("cannot start the media relay: {0}")]
    Media(std::io::Error),
    #[error("server failed: {0}")]
    Serve(std::io::Error),
}

fn data_dir_error(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> RunError + '_ {
    move |source| RunError::DataDir {
        path: path.display().to_string(),
        source,
    }
}

/// Serves on `listener` until `shutdown` resolves, then drains: live members are told
/// `serverShutdown` and open requests finish.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), RunError> {
    let dir = &config.data_dir;
    std::fs::create_dir_all(dir).map_err(data_dir_error(dir))?;
    let store: Arc<dyn RoomStore> = Arc::new(SqliteStore::open(&dir.join("convene.db"))?);
    let admin_key = match &config.admin_key {
        Some(k) => k.clone(),
        None => {
            let path = config.admin_key_path();
            let (key, created) =
                secret::load_or_create(&path, "ck_admin_").map_err(data_dir_error(dir))?;
            if created {
                eprintln!(
                    "convene: generated an admin key and saved it in {}\n\
                     convene: send it as 'Authorization: Bearer <key>'; the CLI reads it from there \
                     (run it from this directory, or pass --key-dir {})",
                    path.display(),
                    dir.display()
                );
            }
            key
        }
    };
    let (token_key, _) =
        secret::load_or_create(&dir.join("token.key"), "").map_err(data_dir_error(dir))?;
    let addr = listener.local_addr().map_err(RunError::Serve)?;
    let public_url = config
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{addr}"));
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let relay = sfu::SfuFactory::start(config.media.clone()).map_err(RunError::Media)?;
    let media: Arc<dyn sfu::port::MediaFactory> = Arc::new(relay);
    let live = LiveRooms::new(clock.clone(), config.resume_grace, Some(media));
    let state = AppState::new(Inner {
        store: store.clone(),
        clock: clock.clone(),
        admin_key,
        token_key,
        public_url,
        live: live.clone(),
        www_dir: config.www_dir.clone(),
    });
    let purger = tokio::spawn(purge::run(
        store,
        clock,
        config.purge_grace,
        config.purge_interval,
    ));
    tracing::info!(%addr, "convene listening");
    let app = app::router(state);
    // Upgraded sockets are not tracked by axum's graceful shutdown: end the sessions
    // first so every member is told `serverShutdown` and its socket closes.
    let draining = live.clone();
    let shutdown = async move {
        shutdown.await;
        draining.shutdown(SHUTDOWN_DRAIN).await;
    };
    let result = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await;
    purger.abort();
    result.map_err(RunError::Serve)
}
