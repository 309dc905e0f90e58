//! The signaling WebSocket, `GET /v1/rtc?token=...[&resume=...]`. Every check (token,
//! invitation, policy, window, capacity) runs before the upgrade, so a refused join is
//! a plain HTTP error with the envelope; after it, this module only moves frames
//! between the socket and the room's session. The same GET without an upgrade is the
//! pre-join check: `200` with a `JoinCheck` (room, role, capabilities), joining nothing.
//!
//! `admission` reads what the rules need and asks `rooms::admission`; `socket` serves
//! one upgraded connection. Neither imports the other: this file joins them.

mod admission;
mod socket;

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Json, Response};
use convene_protocol::signal::{JoinCheck, MAX_FRAME_BYTES};
use convene_protocol::ErrorCode;
use serde::Deserialize;

use crate::api::extract::ApiQuery;
use crate::api::ApiError;
use crate::state::AppState;

/// Socket buffers are kept small on purpose: axum's default 128 KiB read buffer would
/// cost about 13 GB at 100,000 members, and clients send small JSON. The read buffer is
/// the chunk read at a time and is held by every member (a heap profile of 4,000 members
/// showed 4 KiB each at 4 KiB); a larger frame (an SDP offer) still arrives whole, in
/// several reads.
const READ_BUFFER_BYTES: usize = 1024;
const WRITE_BUFFER_BYTES: usize = 4 * 1024;
/// A cap, not an allocation: a single frame larger than this cannot be sent at all, and
/// a `joined` in a room with thousands of announced members is megabytes.
const MAX_WRITE_BUFFER_BYTES: usize = 64 * 1024 * 1024;

#[derive(Debug, Deserialize)]
pub struct RtcQuery {
    token: Option<String>,
    resume: Option<String>,
}

/// Whether `origin` (`scheme://host[:port]`) names the host the request was sent to.
fn same_host(origin: &str, host: &str) -> bool {
    origin
        .split_once("://")
        .is_some_and(|(_, h)| h.eq_ignore_ascii_case(host))
}

/// What a plain GET answers: the room, the role and what it may do before any seat.
fn join_check(state: &AppState, admitted: &admission::Admitted) -> JoinCheck {
    let role = admitted.init.role;
    JoinCheck {
        room: admitted.room.info(),
        participant_id: admitted.init.user.to_string(),
        name: admitted.init.name.clone(),
        role: role.to_string(),
        capabilities: role.capabilities_in(admitted.room.room_type, false),
        participant_count: u32::try_from(state.live.member_count(&admitted.room.id))
            .unwrap_or(u32::MAX),
    }
}

pub async fn rtc(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<RtcQuery>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    // Browsers send `Origin` with every WebSocket; pages on origins not allowed are
    // refused here (CORS covers the plain GET that reads a refusal). This server's own
    // pages (same host) are always allowed.
    if let Some(origin) = headers.get(header::ORIGIN) {
        let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
        let ok = origin.to_str().is_ok_and(|o| {
            state.allowed_origins.allows(o) || host.is_some_and(|h| same_host(o, h))
        });
        if !ok {
            return ApiError::new(
                ErrorCode::PermissionDenied,
                "pages on this origin may not join calls on this server",
            )
            .with_target("Origin")
            .into_response();
        }
    }
    let admitted = match admission::admit(&state, q.token.as_deref(), q.resume.is_some()).await {
        Ok(a) => a,
        Err(e) => {
            state
                .metrics
                .joins
                .with_label_values(&[e.code.as_str()])
                .inc();
            return e.into_response();
        }
    };
    let Ok(ws) = ws else {
        // A plain GET: the pre-join check. It answers what joining would give, and
        // tells the SDK, when an upgrade failed, that the token was not the reason.
        return Json(join_check(&state, &admitted)).into_response();
    };
    let resume = q.resume;
    ws.read_buffer_size(READ_BUFFER_BYTES)
        .write_buffer_size(WRITE_BUFFER_BYTES)
        .max_write_buffer_size(MAX_WRITE_BUFFER_BYTES)
        .max_message_size(MAX_FRAME_BYTES)
        .max_frame_size(MAX_FRAME_BYTES)
        .on_upgrade(move |ws| async move {
            // Boxed, so that what joining holds (the room record, the admission) is
            // freed once the member is in: this task lives as long as the connection,
            // one per member.
            let joining = Box::pin(async move {
                let joined = socket::Joining {
                    cluster: state.cluster.clone(),
                    room: admitted.room.clone(),
                    init: admitted.init.clone(),
                    resume,
                    metrics: state.metrics.clone(),
                };
                let conn = socket::join(ws, joined).await?;
                // An admin change made between the checks and the join reached no
                // session; read again now that the member is in one.
                admission::recheck(&state, &admitted).await;
                Some(conn)
            });
            if let Some(conn) = joining.await {
                conn.serve().await;
            }
        })
}
