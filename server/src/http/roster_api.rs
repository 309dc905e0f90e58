//! Admin REST: the invite roster of a room.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::Json;
use convene_protocol::ErrorEnvelope;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::paging::{Page, PageQuery};
use super::rooms_api::{load_room, parse_roster, ParticipantSpec};
use crate::api::error::{ApiError, ApiResult};
use crate::api::extract::{room_id, Admin, ApiQuery, JsonBody};
use crate::model::{RosterChange, RosterEntry};
use crate::rooms::settings::MAX_ROSTER_SIZE;
use crate::state::AppState;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateRosterRequest {
    /// user id -> `{role}` to invite or change a role, or `null` to remove. Removing a
    /// user who is not invited is not an error. At most 1000 entries.
    #[schema(value_type = BTreeMap<String, ParticipantSpec>)]
    pub participants: BTreeMap<String, Option<ParticipantSpec>>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpdateRosterResponse {
    pub added: Vec<RosterEntry>,
    pub updated: Vec<RosterEntry>,
    #[schema(value_type = Vec<String>)]
    pub removed: Vec<crate::ids::UserId>,
}

#[utoipa::path(get, path = "/v1/rooms/{roomId}/participants", tag = "participants",
    params(("roomId" = String, Path), PageQuery),
    responses(
        (status = 200, description = "The invite roster, by user id", body = inline(Page<RosterEntry>)),
        (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope),
    ),
    security(("adminKey" = [])))]
pub async fn list_participants(
    State(state): State<AppState>,
    _: Admin,
    Path(raw): Path<String>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Json<Page<RosterEntry>>> {
    let room = load_room(&state, &raw).await?;
    let size = q.size()?;
    let after = q.after()?;
    let entries = state
        .store
        .roster_page(&room.id, after.as_deref(), size + 1)
        .await?;
    let path = format!("/v1/rooms/{}/participants", room.id);
    Ok(Json(Page::build(entries, size, &path, |e| {
        e.user_id.to_string()
    })))
}

#[utoipa::path(patch, path = "/v1/rooms/{roomId}/participants", tag = "participants",
    params(("roomId" = String, Path)),
    request_body = UpdateRosterRequest,
    responses(
        (status = 200, description = "What changed", body = UpdateRosterResponse),
        (status = 400, description = "InvalidParameter, e.g. an unknown role or a malformed user id", body = ErrorEnvelope),
        (status = 401, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope),
    ),
    security(("adminKey" = [])))]
pub async fn update_participants(
    State(state): State<AppState>,
    _: Admin,
    Path(raw): Path<String>,
    JsonBody(req): JsonBody<UpdateRosterRequest>,
) -> ApiResult<Json<UpdateRosterResponse>> {
    let id = room_id(&raw)?;
    let changes = parse_roster(req.participants)?;
    let now = state.clock.now();
    let done = state
        .store
        .apply_roster(&id, &changes, now, MAX_ROSTER_SIZE)
        .await
        .map_err(|e| match e {
            crate::store::StoreError::RoomNotFound => ApiError::room_not_found(&raw),
            e => e.into(),
        })?;
    state.cluster.roster_changed(&id, &done);
    let mut out = UpdateRosterResponse {
        added: vec![],
        updated: vec![],
        removed: vec![],
    };
    for change in done {
        match change {
            RosterChange::Added(e) => out.added.push(e),
            RosterChange::RoleChanged { entry, .. } => out.updated.push(entry),
            RosterChange::Removed(u) => out.removed.push(u),
        }
    }
    Ok(Json(out))
}
