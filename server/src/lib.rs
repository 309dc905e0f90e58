//! Convene server: admin REST API, live sessions over WebSocket, and media relay.
//!
//! Layers point one way:
//!
//! ```text
//! serve ─> app ─> http, signal  (the edge: accepting connections, REST handlers, the
//!                   │            WebSocket; http and signal use api, state)
//!                   └─> rooms   (rules, admission, live sessions: a sans-IO core and
//!                         │      its driver)
//!                         └─> store (persistence), sfu (the media relay, behind sfu::port)
//!                               └─> model, ids, clock, rate (shared records and helpers)
//! ```
//!
//! `cluster` (this node among the others on one Redis) sits between the edge and
//! `rooms`: admin writes and questions about live sessions go through it to this node's
//! sessions and to the other nodes'.
//!
//! Nothing imports upward, and no two modules import each other.

pub mod api;
pub mod app;
pub mod cli;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod console;
pub mod http;
pub mod ids;
pub mod metrics;
pub mod model;
pub mod purge;
pub mod rate;
pub mod rooms;
pub mod secret;
pub mod serve;
pub mod sfu;
pub mod signal;
pub mod state;
pub mod store;
pub mod tokens;
pub mod webhooks;
pub mod www;

use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::rate::KeyedLimiter;
use crate::rooms::LiveRooms;
use crate::state::{AppState, Inner};
use crate::store::{PgStore, RoomStore, SqliteStore};

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
    #[error("cannot join the other nodes: {0}")]
    Cluster(#[from] cluster::ClusterError),
}

fn data_dir_error(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> RunError + '_ {
    move |source| RunError::DataDir {
        path: path.display().to_string(),
        source,
    }
}

/// The data dir holds the room database and the keys: only this user may read it
/// (dir 0700, database 0600; SQLite gives its `-wal`/`-shm` the database's mode, so
/// creating the file first with 0600 covers them, and existing ones are tightened).
#[cfg(unix)]
fn private_files(dir: &std::path::Path, sqlite: bool) -> std::io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let tighten = |path: &std::path::Path, mode: u32| -> std::io::Result<()> {
        let meta = std::fs::metadata(path)?;
        if meta.permissions().mode() & 0o777 != mode {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
        }
        Ok(())
    };
    tighten(dir, 0o700)?;
    if !sqlite {
        return Ok(()); // the keys only; they are created 0600
    }
    let db = dir.join("convene.db");
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(&db)?;
    for name in ["convene.db", "convene.db-wal", "convene.db-shm"] {
        let path = dir.join(name);
        if path.exists() {
            tighten(&path, 0o600)?;
        }
    }
    Ok(())
}

#[cfg(not(unix))]
fn private_files(_dir: &std::path::Path, _sqlite: bool) -> std::io::Result<()> {
    Ok(())
}

/// Makes the stored config-file endpoints match the file: each keeps its place in the
/// outbox across restarts (its id comes from its url), and ones gone from the file go.
async fn sync_config_webhooks(
    store: &dyn RoomStore,
    wanted: &[config::WebhookConfig],
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), RunError> {
    use model::event::{Webhook, WebhookSource};
    use sha2::Digest;
    let id_of = |url: &str| {
        let digest = sha2::Sha256::digest(url.as_bytes());
        let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        format!("wh_cfg_{hex}")
    };
    let wanted_ids: Vec<String> = wanted.iter().map(|w| id_of(&w.url)).collect();
    for old in store.webhooks().await? {
        if old.source == WebhookSource::Config && !wanted_ids.contains(&old.id) {
            store.delete_webhook(&old.id).await?;
        }
    }
    for (w, id) in wanted.iter().zip(wanted_ids) {
        store
            .put_webhook(Webhook {
                id,
                url: w.url.clone(),
                secret: w.secret.clone(),
                events: w.events.clone(),
                source: WebhookSource::Config,
                created_at: now,
                cursor: 0,
            })
            .await?;
    }
    Ok(())
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
    private_files(dir, config.database_url.is_none()).map_err(data_dir_error(dir))?;
    let store: Arc<dyn RoomStore> = match &config.database_url {
        Some(url) => Arc::new(PgStore::connect(url.expose()).await?),
        None => Arc::new(SqliteStore::open(&dir.join("convene.db"))?),
    };
    let admin_key = match &config.admin_key {
        Some(k) => k.clone(),
        None => {
            let path = config.admin_key_path();
            let (key, created) =
                secret::load_or_create(&path, "ck_admin_").map_err(data_dir_error(dir))?;
            if created {
                console::say(&format!(
                    "generated an admin key and saved it in {}",
                    path.display()
                ));
                console::say(&format!(
                    "send it as 'Authorization: Bearer <key>'; the CLI reads it from there \
                     (run it from this directory, or pass --key-dir {})",
                    dir.display()
                ));
            }
            key
        }
    };
    let (file_key, _) =
        secret::load_or_create(&dir.join("token.key"), "").map_err(data_dir_error(dir))?;
    // On PostgreSQL the key is shared through the database, so a token minted on any
    // node verifies on every node.
    let token_key = secret::Secret::new(store.shared_token_key(file_key.expose()).await?);
    let addr = listener.local_addr().map_err(RunError::Serve)?;
    let public_url = config
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{addr}"));
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let relay = Arc::new(sfu::SfuFactory::start(config.media.clone()).map_err(RunError::Media)?);
    let media: Arc<dyn sfu::port::MediaFactory> = relay.clone();
    let live = LiveRooms::new(clock.clone(), config.resume_grace, Some(media));
    let hooks = webhooks::Webhooks::new(store.clone(), config.webhook_retry);
    // Among several nodes, delivery waits for the webhook lease.
    if config.redis_url.is_some() {
        hooks.deliver_until(None);
    }
    sync_config_webhooks(store.as_ref(), &config.webhooks, clock.now()).await?;
    hooks.reload().await;
    live.report_events_to(hooks.writer());
    live.use_store(store.clone());
    let parts = cluster::Parts {
        node: config
            .node_id
            .clone()
            .unwrap_or_else(crate::ids::NodeId::generate),
        url: public_url.clone(),
        live: live.clone(),
        store: store.clone(),
        webhooks: hooks.clone(),
    };
    let nodes = match &config.redis_url {
        Some(url) => cluster::Cluster::join(parts, url).await?,
        None => cluster::Cluster::alone(parts),
    };
    let state = AppState::new(Inner {
        store: store.clone(),
        clock: clock.clone(),
        admin_key,
        token_key,
        public_url,
        live: live.clone(),
        cluster: nodes.clone(),
        www_dir: config.www_dir.clone(),
        admin_failures: KeyedLimiter::new(
            state::admin_failures(config.admin_key_failures),
            state::ADMIN_FAILURE_SOURCES,
        ),
        allowed_origins: config.allowed_origins.clone(),
        http_request_timeout: config.http_request_timeout,
        metrics: Arc::new(metrics::Metrics::new()),
        media: Some(relay),
        webhooks: hooks.clone(),
        guest_tokens: KeyedLimiter::new(state::GUEST_TOKENS, state::ADMIN_FAILURE_SOURCES),
    });
    let purger = tokio::spawn(purge::run(
        store,
        clock,
        config.purge_grace,
        config.purge_interval,
    ));
    tracing::info!(%addr, "convene listening");
    // Every listener stops when `shutdown` resolves.
    let (stopping, stop) = tokio::sync::watch::channel(false);
    let metrics_server = match config.metrics_listen {
        Some(at) => {
            let listener = serve::bind(at).map_err(RunError::Serve)?;
            tracing::info!(addr = %at, "metrics listening");
            let app = app::metrics_router(state.clone());
            let mut stop = stop.clone();
            let limits = serve::Limits {
                header_timeout: config.http_header_timeout,
                per_ip: config.max_connections_per_ip,
            };
            Some(tokio::spawn(serve::serve(
                listener,
                app,
                limits,
                async move {
                    let _ = stop.wait_for(|s| *s).await;
                },
                SHUTDOWN_DRAIN,
            )))
        }
        None => None,
    };
    let app = app::router(state);
    // Upgraded sockets are not tracked by axum's graceful shutdown: end the sessions
    // first so every member is told `serverShutdown` and its socket closes. A node of
    // several hands its rooms over instead: members reconnect and go on elsewhere.
    let draining = live.clone();
    let clustered = nodes.clustered();
    let releasing = nodes.clone();
    let shutdown = async move {
        shutdown.await;
        let _ = stopping.send(true);
        // The rooms' home leases go first, so the members reconnecting find them free.
        releasing.release_homes().await;
        draining.shutdown(SHUTDOWN_DRAIN, clustered).await;
    };
    let limits = serve::Limits {
        header_timeout: config.http_header_timeout,
        per_ip: config.max_connections_per_ip,
    };
    let result = serve::serve(listener, app, limits, shutdown, SHUTDOWN_DRAIN).await;
    if let Some(m) = metrics_server {
        let _ = m.await;
    }
    // Deliveries stop before the lease is given up, so the next holder starts after.
    hooks.stop();
    nodes.leave().await;
    purger.abort();
    result.map_err(RunError::Serve)
}
