//! The HTTP edge: admin REST API, the signaling upgrade, the OpenAPI document and the
//! demo pages. Handlers translate between HTTP and the room domain and nothing more.

pub mod error;
pub mod extract;
pub mod members_api;
pub mod openapi;
pub mod paging;
pub mod request_context;
pub mod rooms_api;
pub mod roster_api;
pub mod tokens_api;

use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, get, post};
use axum::Router;

use crate::clock::Clock;
use crate::rooms::live::LiveRooms;
use crate::secret::Secret;
use crate::store::RoomStore;

/// Largest accepted request body.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// What every handler may reach. Cheap to clone.
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

pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route(
            "/v1/rooms",
            post(rooms_api::create_room).get(rooms_api::list_rooms),
        )
        .route(
            "/v1/rooms/{id}",
            get(rooms_api::get_room)
                .patch(rooms_api::update_room)
                .delete(rooms_api::delete_room),
        )
        .route(
            "/v1/rooms/{id}/participants",
            get(roster_api::list_participants).patch(roster_api::update_participants),
        )
        .route("/v1/rooms/{id}/tokens", post(tokens_api::mint_token))
        .route(
            "/v1/rooms/{id}/tokens/{token_id}",
            delete(tokens_api::revoke_token),
        )
        .route("/v1/rooms/{id}/members", get(members_api::list_members))
        .route(
            "/v1/rooms/{id}/members/{user_id}",
            delete(members_api::remove_member),
        )
        .route("/v1/sessions", get(members_api::list_sessions))
        .route("/v1/rtc", get(crate::signal::rtc))
        .route("/v1/openapi.json", get(openapi::openapi_json))
        .route("/healthz", get(|| async { "ok" }));
    let mut app = api;
    if let Some(dir) = state.www_dir.clone() {
        app = app.fallback_service(crate::www::service(&dir));
    }
    // A panic in a handler is a bug, but it still answers with the envelope (500,
    // Internal) instead of dropping the connection.
    app.layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(tower_http::catch_panic::CatchPanicLayer::new())
        .layer(axum::middleware::from_fn(request_context::request_context))
        .with_state(state)
}
