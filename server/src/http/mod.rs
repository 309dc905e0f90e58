//! The admin REST API and its OpenAPI document. Handlers translate between HTTP and the
//! room domain and nothing more.

pub mod live_api;
pub mod members_api;
pub mod openapi;
mod openapi_rules;
pub mod ops_api;
pub mod paging;
pub mod rooms_api;
pub mod roster_api;
pub mod tokens_api;
pub mod webhooks_api;

use axum::routing::{delete, get, post};
use axum::Router;

use crate::state::AppState;

/// The admin API's routes (the app adds signaling, pages and the common layers).
pub fn routes() -> Router<AppState> {
    Router::new()
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
        .route("/v1/rooms/{id}/seats", get(members_api::list_seats))
        .route("/v1/rooms/{id}/seats/{index}", delete(members_api::unseat))
        .route("/v1/sessions", get(members_api::list_sessions))
        .route("/v1/nodes", get(members_api::list_nodes))
        .route(
            "/v1/webhooks",
            post(webhooks_api::create_webhook).get(webhooks_api::list_webhooks),
        )
        .route(
            "/v1/webhooks/{webhook_id}",
            delete(webhooks_api::delete_webhook),
        )
        .route("/v1/openapi.json", get(openapi::openapi_json))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ops_api::readyz))
        .route("/metrics", get(ops_api::metrics))
}
