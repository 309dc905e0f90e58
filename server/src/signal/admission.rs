use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use convene_protocol::signal::MAX_FRAME_BYTES;
use convene_protocol::ErrorCode;
use serde::Deserialize;

use super::socket;
use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::ApiQuery;
use crate::http::AppState;
use crate::ids::{RoomId, UserId};
use crate::rooms::session::MemberInit;
use crate::rooms::{JoinPolicy, Room};
use crate::tokens;

/// Socket buffers are kept small on purpose: axum's default 128 KiB read buffer would
/// cost about 13 GB at 100,000 members, and our frames are small JSON.
const READ_BUFFER_BYTES: usize = 4 * 1024;
const WRITE_BUFFER_BYTES: usize = 4 * 1024;
/// A cap, not an allocation: a single frame larger than this cannot be sent at all, and
/// a `joined` in a room with thousands of announced members is megabytes.
const MAX_WRITE_BUFFER_BYTES: usize = 64 * 1024 * 1024;

#[derive(Debug, Deserialize)]
pub struct RtcQuery {
    token: Option<String>,
    resume: Option<String>,
}

/// A member cleared to join.
pub struct Admitted {
    pub room: Room,
    pub init: MemberInit,
}

fn unauthenticated(msg: &str) -> ApiError {
    ApiError::new(ErrorCode::Unauthenticated, msg).with_target("token")
}

pub async fn admit(state: &AppState, token: Option<&str>, resuming: bool) -> ApiResult<Admitted> {
    let token = token
        .filter(|t| !t.is_empty())
        .ok_or_else(|| unauthenticated("a join token is required: /v1/rtc?token=..."))?;
    let now = state.clock.now();
    let claims = tokens::verify_signature(&state.token_key, token)
        .map_err(|_| unauthenticated("the join token is not valid"))?;
    if state.store.is_token_revoked(&claims.jti).await? {
        return Err(unauthenticated("the join token was revoked"));
    }
    let room_id =
        RoomId::parse(&claims.room).map_err(|_| unauthenticated("the join token is not valid"))?;
    let user =
        UserId::parse(&claims.sub).map_err(|_| unauthenticated("the join token is not valid"))?;
    let room = state
        .store
        .get_room(&room_id)
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::RoomNotFound, "this room no longer exists"))?;
    if now >= room.valid_until {
        return Err(ApiError::new(
            ErrorCode::RoomExpired,
            format!("this room ended at {}", room.valid_until.to_rfc3339()),
        )
        .with_at(room.valid_until));
    }
    if now.timestamp() >= claims.exp {
        return Err(unauthenticated(
            "the join token has expired; ask for a new link",
        ));
    }
    let entry = state
        .store
        .roster_entry(&room.id, &user)
        .await?
        .filter(|e| e.invite_id == claims.inv)
        .ok_or_else(|| ApiError::new(ErrorCode::NotInvited, "you are not invited to this room"))?;
    if room.join_policy == JoinPolicy::Closed {
        return Err(ApiError::new(
            ErrorCode::RoomClosed,
            "this room is closed to joining",
        ));
    }
    if now < room.valid_from {
        return Err(ApiError::new(
            ErrorCode::RoomNotOpenYet,
            format!("this room opens at {}", room.valid_from.to_rfc3339()),
        )
        .with_at(room.valid_from));
    }
    if now >= room.valid_until {
        return Err(ApiError::new(
            ErrorCode::RoomExpired,
            format!("this room ended at {}", room.valid_until.to_rfc3339()),
        )
        .with_at(room.valid_until));
    }
    if let Some(max) = room.max_participants {
        // Someone coming back (resume or a reload) already holds a place.
        if !resuming && state.live.member_count(&room.id) >= max as usize {
            let here = state.live.members(&room.id).await;
            if !here.iter().any(|p| p.id == user.as_str()) {
                return Err(ApiError::new(ErrorCode::RoomFull, "this room is full"));
            }
        }
    }
    Ok(Admitted {
        init: MemberInit {
            user,
            role: entry.role,
            jti: claims.jti,
            invite_id: entry.invite_id,
        },
        room,
    })
}

/// Re-reads what admission checked, once the member is in the session: an admin change
/// made between admission and the join reached no session, so it is applied here.
pub async fn recheck(state: &AppState, admitted: &Admitted) {
    let room_id = &admitted.room.id;
    let user = &admitted.init.user;
    let room = match state.store.get_room(room_id).await {
        Ok(Some(room)) => room,
        Ok(None) => return state.live.room_deleted(room_id).await,
        Err(_) => return, // the store hiccuped; the next admin change still applies
    };
    if room != admitted.room {
        state.live.room_updated(&room).await;
    }
    let revoked = state
        .store
        .is_token_revoked(&admitted.init.jti)
        .await
        .unwrap_or(false);
    let entry = state.store.roster_entry(room_id, user).await.ok().flatten();
    match entry {
        Some(e) if !revoked && e.invite_id == admitted.init.invite_id => {
            if e.role != admitted.init.role {
                let change = crate::store::RosterChange::RoleChanged {
                    from: admitted.init.role,
                    entry: e,
                };
                state.live.roster_changed(room_id, &[change]).await;
            }
        }
        _ => {
            state.live.kick(room_id, user.clone()).await;
        }
    }
}

pub async fn rtc(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<RtcQuery>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let admitted = match admit(&state, q.token.as_deref(), q.resume.is_some()).await {
        Ok(a) => a,
        Err(e) => return e.into_response(),
    };
    let ws = match ws {
        Ok(ws) => ws,
        Err(_) => {
            return ApiError::invalid("upgrade", "this endpoint needs a WebSocket upgrade")
                .into_response()
        }
    };
    let resume = q.resume;
    let state = state.clone();
    ws.read_buffer_size(READ_BUFFER_BYTES)
        .write_buffer_size(WRITE_BUFFER_BYTES)
        .max_write_buffer_size(MAX_WRITE_BUFFER_BYTES)
        .max_message_size(MAX_FRAME_BYTES)
        .max_frame_size(MAX_FRAME_BYTES)
        .on_upgrade(move |socket| socket::serve(socket, state, admitted, resume))
}
