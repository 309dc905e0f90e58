//! Admin REST: join tokens and links for invited users.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Duration, TimeZone, Utc};
use convene_protocol::{ErrorCode, ErrorEnvelope};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::rooms_api::{ensure_not_expired, load_room};
use crate::api::error::{ApiError, ApiResult};
use crate::api::extract::{user_id, Admin, JsonBody};
use crate::rooms::Role;
use crate::state::AppState;
use crate::tokens::{self, JoinClaims};

pub const DEFAULT_TOKEN_TTL_SECONDS: i64 = 24 * 3600;
pub const MIN_TOKEN_TTL_SECONDS: i64 = 60;
pub const MAX_TOKEN_TTL_SECONDS: i64 = 180 * 24 * 3600;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MintTokenRequest {
    /// An invited user of the room.
    pub user_id: String,
    /// 60 to 15,552,000 (180 days); default 86,400. Counted from the later of now and
    /// the room's validFrom; the token never outlives the room's validUntil.
    pub ttl_seconds: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MintTokenResponse {
    pub token: String,
    /// Revoke with `DELETE /v1/rooms/{roomId}/tokens/{tokenId}`.
    pub token_id: String,
    pub room_id: String,
    pub user_id: String,
    pub role: Role,
    pub expires_at: DateTime<Utc>,
    /// `<public url>/join#token=...`: open it in a browser to join.
    pub join_url: String,
}

#[utoipa::path(post, path = "/v1/rooms/{roomId}/tokens", tag = "tokens",
    params(("roomId" = String, Path)),
    request_body = MintTokenRequest,
    responses(
        (status = 201, body = MintTokenResponse),
        (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope),
        (status = 403, description = "NotInvited", body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope),
        (status = 410, description = "RoomExpired", body = ErrorEnvelope),
    ),
    security(("adminKey" = [])))]
pub async fn mint_token(
    State(state): State<AppState>,
    _: Admin,
    Path(raw): Path<String>,
    JsonBody(req): JsonBody<MintTokenRequest>,
) -> ApiResult<(StatusCode, Json<MintTokenResponse>)> {
    let room = load_room(&state, &raw).await?;
    let user = user_id(&req.user_id, "userId")?;
    let ttl = req.ttl_seconds.unwrap_or(DEFAULT_TOKEN_TTL_SECONDS);
    if !(MIN_TOKEN_TTL_SECONDS..=MAX_TOKEN_TTL_SECONDS).contains(&ttl) {
        return Err(ApiError::invalid(
            "ttlSeconds",
            format!(
                "ttlSeconds must be between {MIN_TOKEN_TTL_SECONDS} and {MAX_TOKEN_TTL_SECONDS}"
            ),
        ));
    }
    let now = state.clock.now();
    ensure_not_expired(&room, now)?;
    let entry = state
        .store
        .roster_entry(&room.id, &user)
        .await?
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::NotInvited,
                format!("user '{user}' is not invited to room '{}'", room.id),
            )
            .with_target("userId")
        })?;
    // A link minted ahead of the room counts its lifetime from the opening, so a
    // default link sent a week early still works on the day.
    let starts = now.max(room.valid_from);
    let expires = (starts + Duration::seconds(ttl)).min(room.valid_until);
    // JWT times are whole seconds; round down so the token never outlives the room.
    let exp = expires.timestamp();
    let claims = JoinClaims::new(
        &state.token_key,
        user.as_str(),
        room.id.as_str(),
        &entry.invite_id,
        now.timestamp(),
        exp,
    );
    let token = tokens::mint(&state.token_key, &claims);
    let join_url = format!("{}/join#token={token}", state.public_url);
    Ok((
        StatusCode::CREATED,
        Json(MintTokenResponse {
            token,
            token_id: claims.jti,
            room_id: room.id.to_string(),
            user_id: user.to_string(),
            role: entry.role,
            expires_at: Utc.timestamp_opt(exp, 0).single().unwrap_or(expires),
            join_url,
        }),
    ))
}

#[utoipa::path(delete, path = "/v1/rooms/{roomId}/tokens/{tokenId}", tag = "tokens",
    params(("roomId" = String, Path), ("tokenId" = String, Path)),
    responses(
        (status = 204, description = "Revoked: the token no longer joins (revoking twice is fine)"),
        (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope),
        (status = 404, description = "RoomNotFound, or TokenNotFound: no token with this id was minted for this room", body = ErrorEnvelope),
    ),
    security(("adminKey" = [])))]
pub async fn revoke_token(
    State(state): State<AppState>,
    _: Admin,
    Path((raw, token_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let room = load_room(&state, &raw).await?;
    let ok = token_id.starts_with("t_")
        && token_id.len() <= 64
        && token_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !ok {
        return Err(ApiError::invalid("tokenId", "tokenId is not a token id"));
    }
    if !tokens::token_id_is_of_room(&state.token_key, room.id.as_str(), &token_id) {
        return Err(ApiError::new(
            ErrorCode::TokenNotFound,
            format!("no token '{token_id}' was minted for room '{}'", room.id),
        )
        .with_target("tokenId"));
    }
    // Kept until the room ends: no token of it can live longer.
    state
        .store
        .revoke_token(&token_id, &room.id, room.valid_until)
        .await?;
    state.cluster.token_revoked(&room.id, &token_id);
    Ok(StatusCode::NO_CONTENT)
}
