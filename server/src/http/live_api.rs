//! The public side of live rooms, with no admin key: the list of live sessions of
//! `live` rooms marked `isPublicVisible`, and guest tokens for those whose `joinPolicy`
//! is `public` (rate-limited per source address). Invite-only rooms never appear here
//! and never hand out guest tokens: to this API they do not exist.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Path, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Duration, TimeZone, Utc};
use convene_protocol::{ErrorCode, ErrorEnvelope};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::paging::{Page, PageQuery};
use crate::api::error::{ApiError, ApiResult};
use crate::api::extract::{room_id, ApiQuery, JsonBody};
use crate::model::{JoinPolicy, Room, RoomType, Window};
use crate::rooms::SessionSummary;
use crate::state::AppState;
use crate::tokens::{self, JoinClaims};

/// A guest token lives this long at most (never past the room's end).
pub const GUEST_TOKEN_HOURS: i64 = 6;
/// Longest guest display name, in characters.
pub const MAX_DISPLAY_NAME: usize = 64;

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LiveRoom {
    pub room_id: String,
    pub name: String,
    pub cover_url: Option<String>,
    /// The host.
    pub owner_id: Option<String>,
    /// Everyone in the call.
    pub member_count: usize,
    /// Of those, receive-only viewers not listed one by one.
    pub audience_count: usize,
    pub seat_count: u32,
    pub seats_taken: usize,
    /// `public`: anyone may join as a viewer (`guest-tokens`); `invite`: invited users.
    pub join_policy: JoinPolicy,
    pub started_at: DateTime<Utc>,
}

fn listed(room: &Room) -> bool {
    room.is_public_visible && room.room_type == RoomType::Live
}

#[utoipa::path(get, path = "/v1/live", tag = "live",
    params(PageQuery),
    responses(
        (status = 200, description = "Live sessions of public live rooms, by room id", body = Page<LiveRoom>),
        (status = 400, body = ErrorEnvelope),
        (status = 503, description = "ClusterUnavailable: the other nodes could not be asked", body = ErrorEnvelope),
    ))]
pub async fn list_live(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Json<Page<LiveRoom>>> {
    let size = q.size()?;
    let after = q.after()?.unwrap_or_default();
    let mut out = vec![];
    for s in merge_by_room(state.cluster.recent_sessions().await?) {
        if s.room_id.as_str() <= after.as_str() {
            continue;
        }
        let Some(room) = state.store.get_room(&s.room_id).await? else {
            continue;
        };
        if !listed(&room) || room.has_ended_at(state.clock.now()) {
            continue;
        }
        out.push(LiveRoom {
            room_id: room.id.to_string(),
            name: room.name.clone(),
            cover_url: room.cover_url.clone(),
            owner_id: room.owner_id.as_ref().map(|o| o.to_string()),
            member_count: s.member_count,
            audience_count: s.audience_count,
            seat_count: room.max_seat_count,
            seats_taken: s.seats_taken,
            join_policy: room.join_policy,
            started_at: s.started_at,
        });
        if out.len() > size {
            break;
        }
    }
    Ok(Json(Page::build(out, size, "/v1/live", |r| {
        r.room_id.clone()
    })))
}

/// One entry per room: members who reached different nodes are in one session each
/// there, counted together here (sorted by room, as `Cluster::sessions` returns them).
fn merge_by_room(sessions: Vec<SessionSummary>) -> Vec<SessionSummary> {
    let mut out: Vec<SessionSummary> = Vec::with_capacity(sessions.len());
    for s in sessions {
        match out.last_mut() {
            Some(last) if last.room_id == s.room_id => {
                last.member_count += s.member_count;
                last.audience_count += s.audience_count;
                last.seats_taken = last.seats_taken.max(s.seats_taken);
                last.started_at = last.started_at.min(s.started_at);
            }
            _ => out.push(s),
        }
    }
    out
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GuestTokenRequest {
    /// Shown to the others: 1 to 64 characters, no control characters.
    pub display_name: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GuestTokenResponse {
    pub token: String,
    /// The guest's participant id (`guest_...`).
    pub user_id: String,
    pub expires_at: DateTime<Utc>,
    /// `<public url>/join#token=...`.
    pub join_url: String,
}

#[utoipa::path(post, path = "/v1/live/{roomId}/guest-tokens", tag = "live",
    params(("roomId" = String, Path)),
    request_body = GuestTokenRequest,
    responses(
        (status = 201, description = "A token to join as a receive-only guest", body = GuestTokenResponse),
        (status = 400, body = ErrorEnvelope),
        (status = 404, description = "RoomNotFound: no public live room with this id", body = ErrorEnvelope),
        (status = 410, description = "RoomExpired", body = ErrorEnvelope),
        (status = 429, description = "RateLimited: too many guest tokens from this address; see Retry-After", body = ErrorEnvelope),
    ))]
pub async fn guest_token(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(raw): Path<String>,
    JsonBody(req): JsonBody<GuestTokenRequest>,
) -> ApiResult<(StatusCode, Json<GuestTokenResponse>)> {
    let now = state.clock.now();
    state
        .guest_tokens
        .charge(&peer.ip(), std::time::Instant::now())
        .map_err(|wait| {
            let secs = wait.as_secs().max(1);
            ApiError::new(
                ErrorCode::RateLimited,
                format!("too many guest tokens from this address; retry in {secs} s"),
            )
            .with_retry_after(secs)
        })?;
    let name = req.display_name.trim();
    if name.is_empty()
        || name.chars().count() > MAX_DISPLAY_NAME
        || name.chars().any(char::is_control)
    {
        return Err(ApiError::invalid(
            "displayName",
            format!("displayName must be 1 to {MAX_DISPLAY_NAME} characters, without control characters"),
        ));
    }
    let id = room_id(&raw)?;
    let not_found = || {
        ApiError::new(ErrorCode::RoomNotFound, "no public live room with this id")
            .with_target("roomId")
    };
    let room = state.store.get_room(&id).await?.ok_or_else(not_found)?;
    if !listed(&room) || room.join_policy != JoinPolicy::Public {
        return Err(not_found());
    }
    if room.window_at(now) == Window::Ended {
        return Err(crate::rooms::admission::ended(&room).into());
    }
    let user = format!("guest_{}", crate::ids::random_token(12));
    let expires =
        (now.max(room.valid_from) + Duration::hours(GUEST_TOKEN_HOURS)).min(room.valid_until);
    let claims = JoinClaims::guest(
        &state.token_key,
        &user,
        room.id.as_str(),
        name,
        now.timestamp(),
        expires.timestamp(),
    );
    let token = tokens::mint(&state.token_key, &claims);
    Ok((
        StatusCode::CREATED,
        Json(GuestTokenResponse {
            join_url: format!("{}/join#token={token}", state.public_url),
            token,
            user_id: user,
            expires_at: Utc
                .timestamp_opt(expires.timestamp(), 0)
                .single()
                .unwrap_or(expires),
        }),
    ))
}
