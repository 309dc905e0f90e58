//! The OpenAPI document, generated from the handlers' annotations and the request and
//! response types, so it cannot drift from the code.

use axum::Json;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{live_api, members_api, ops_api, rooms_api, roster_api, tokens_api, webhooks_api};

struct AdminKeyScheme;

impl Modify for AdminKeyScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "adminKey",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("The admin key (see the README)"))
                    .build(),
            ),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Convene admin API", description = "Invite-only video rooms: rooms, invite rosters, join tokens, live members. Every error is `{\"error\": {code, number, message, target?, requestId}}`."),
    paths(
        rooms_api::create_room, rooms_api::list_rooms, rooms_api::get_room,
        rooms_api::update_room, rooms_api::delete_room,
        roster_api::list_participants, roster_api::update_participants,
        tokens_api::mint_token, tokens_api::revoke_token,
        members_api::list_members, members_api::remove_member, members_api::list_sessions,
        ops_api::metrics, ops_api::readyz,
        webhooks_api::create_webhook, webhooks_api::list_webhooks, webhooks_api::delete_webhook,
        live_api::list_live, live_api::guest_token,
        members_api::list_seats, members_api::unseat, members_api::list_nodes,
    ),
    components(schemas(convene_protocol::ErrorCode, convene_protocol::ErrorBody)),
    modifiers(&AdminKeyScheme)
)]
pub struct ApiDoc;

#[utoipa::path(get, path = "/v1/openapi.json", tag = "meta",
    responses((status = 200, description = "This document")))]
pub async fn openapi_json() -> Json<serde_json::Value> {
    Json(document())
}

/// The document as served: generated from the code, with the rules of
/// `openapi_rules` written in.
pub fn document() -> serde_json::Value {
    let mut doc = ApiDoc::openapi();
    doc.merge(OpenApiSelf::openapi());
    let mut doc = serde_json::to_value(doc).expect("the document serializes");
    super::openapi_rules::apply(&mut doc);
    doc
}

#[derive(OpenApi)]
#[openapi(paths(openapi_json))]
struct OpenApiSelf;
