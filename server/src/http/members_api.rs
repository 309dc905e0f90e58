//! Admin REST: who is in a room's live session now, removing one, every session, and
//! the nodes: each answered for every node of a cluster (`crate::cluster`).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use convene_protocol::signal::Participant;
use convene_protocol::{ErrorCode, ErrorEnvelope};
use serde::Serialize;
use utoipa::ToSchema;

use super::rooms_api::load_room;
use crate::api::error::{ApiError, ApiResult};
use crate::api::extract::{user_id, Admin};
use crate::cluster::wire::NodeInfo;
use crate::rooms::SessionSummary;
use crate::state::AppState;

#[derive(Debug, Serialize, ToSchema)]
pub struct MemberList {
    /// Joined members with their audio, video and screen status.
    pub value: Vec<Participant>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SessionList {
    pub value: Vec<SessionSummary>,
}

#[utoipa::path(get, path = "/v1/rooms/{roomId}/members", tag = "members",
    params(("roomId" = String, Path)),
    responses(
        (status = 200, description = "Members joined now (empty without a live session)", body = MemberList),
        (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope),
        (status = 503, description = "ClusterUnavailable: the other nodes could not be asked", body = ErrorEnvelope),
    ),
    security(("adminKey" = [])))]
pub async fn list_members(
    State(state): State<AppState>,
    _: Admin,
    Path(raw): Path<String>,
) -> ApiResult<Json<MemberList>> {
    let room = load_room(&state, &raw).await?;
    let value = state.cluster.members(&room.id).await?;
    Ok(Json(MemberList { value }))
}

#[utoipa::path(delete, path = "/v1/rooms/{roomId}/members/{userId}", tag = "members",
    params(("roomId" = String, Path), ("userId" = String, Path)),
    responses(
        (status = 204, description = "Removed from the call (reason `removed`); the token they joined with is revoked, the invitation stays"),
        (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope),
        (status = 404, description = "RoomNotFound or NotInRoom", body = ErrorEnvelope),
        (status = 503, description = "ClusterUnavailable: the other nodes could not be asked", body = ErrorEnvelope),
    ),
    security(("adminKey" = [])))]
pub async fn remove_member(
    State(state): State<AppState>,
    _: Admin,
    Path((raw, user)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let room = load_room(&state, &raw).await?;
    let user = user_id(&user, "userId")?;
    let Some(jti) = state.cluster.kick(&room.id, user.clone()).await? else {
        return Err(ApiError::new(
            ErrorCode::NotInRoom,
            format!("'{user}' is not in the call of room '{}'", room.id),
        )
        .with_target("userId"));
    };
    // The token they joined with stops working, so a client cannot simply rejoin;
    // the invitation stays, and a new link lets them back.
    state
        .store
        .revoke_token(&jti, &room.id, room.valid_until)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/v1/sessions", tag = "members",
    responses(
        (status = 200, description = "Every live session with its member count, on every node (a room has one session, on its home node, named in `node`)", body = SessionList),
        (status = 401, body = ErrorEnvelope),
        (status = 503, description = "ClusterUnavailable: the other nodes could not be asked", body = ErrorEnvelope),
    ),
    security(("adminKey" = [])))]
pub async fn list_sessions(
    State(state): State<AppState>,
    _: Admin,
) -> ApiResult<Json<SessionList>> {
    Ok(Json(SessionList {
        value: state.cluster.sessions().await?,
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct NodeList {
    /// This node first, then the others with a live registration, by id.
    pub value: Vec<NodeInfo>,
}

#[utoipa::path(get, path = "/v1/nodes", tag = "operations",
    responses(
        (status = 200, description = "The nodes sharing this one's Redis, with their load (this node alone without Redis)", body = NodeList),
        (status = 401, body = ErrorEnvelope),
        (status = 503, description = "ClusterUnavailable: Redis did not answer", body = ErrorEnvelope),
    ),
    security(("adminKey" = [])))]
pub async fn list_nodes(State(state): State<AppState>, _: Admin) -> ApiResult<Json<NodeList>> {
    Ok(Json(NodeList {
        value: state.cluster.nodes().await?,
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SeatList {
    /// The seats of the room's live session, by index (empty without a session, or in
    /// a conference room).
    pub value: Vec<convene_protocol::signal::SeatInfo>,
}

#[utoipa::path(get, path = "/v1/rooms/{roomId}/seats", tag = "members",
    params(("roomId" = String, Path)),
    responses(
        (status = 200, body = SeatList),
        (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope),
        (status = 503, description = "ClusterUnavailable: the other nodes could not be asked", body = ErrorEnvelope),
    ),
    security(("adminKey" = [])))]
pub async fn list_seats(
    State(state): State<AppState>,
    _: Admin,
    Path(raw): Path<String>,
) -> ApiResult<Json<SeatList>> {
    let room = load_room(&state, &raw).await?;
    Ok(Json(SeatList {
        value: state.cluster.seats(&room.id).await?,
    }))
}

#[utoipa::path(delete, path = "/v1/rooms/{roomId}/seats/{index}", tag = "members",
    params(("roomId" = String, Path), ("index" = u32, Path, description = "The seat, from 0")),
    responses(
        (status = 204, description = "Whoever sat there stood up; its microphone and camera stop"),
        (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope),
        (status = 404, description = "RoomNotFound, or NotInRoom: nobody sits there", body = ErrorEnvelope),
        (status = 503, description = "ClusterUnavailable: the other nodes could not be asked", body = ErrorEnvelope),
    ),
    security(("adminKey" = [])))]
pub async fn unseat(
    State(state): State<AppState>,
    _: Admin,
    Path((raw, index)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let room = load_room(&state, &raw).await?;
    let index: u32 = index
        .parse()
        .map_err(|_| ApiError::invalid("index", "the seat index is a number from 0"))?;
    match state.cluster.unseat(&room.id, index).await? {
        Some(_) => Ok(StatusCode::NO_CONTENT),
        None => Err(ApiError::new(
            ErrorCode::NotInRoom,
            format!("nobody sits on seat {index} of room '{}'", room.id),
        )
        .with_target("index")),
    }
}
