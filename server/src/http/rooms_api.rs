//! Admin REST: create, read, list, update and delete rooms.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use convene_protocol::{ErrorCode, ErrorEnvelope};
use serde::{Deserialize, Deserializer};
use utoipa::ToSchema;

use super::paging::{Page, PageQuery};
use crate::api::error::{ApiError, ApiResult};
use crate::api::extract::{room_id, user_id, Admin, ApiQuery, JsonBody};
use crate::ids::RoomId;
use crate::model::{RoomType, RuleError, TakeSeatMode};
use crate::rooms::{admission, settings, validity, JoinPolicy, Role, Room, RosterEntry};
use crate::state::AppState;
use crate::store::{StoreError, StoredResponse};

pub const REPEATABILITY_HEADER: &str = "repeatability-request-id";

/// A roster entry in a request: the role, `attendee` when absent.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ParticipantSpec {
    pub role: Option<Role>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateRoomRequest {
    /// Client-chosen id: 1 to 64 of `A-Z a-z 0-9 - _`. Generated (`r_...`) when absent.
    pub id: Option<String>,
    /// Display name, at most 200 characters.
    pub name: Option<String>,
    /// RFC 3339; default now. At most 180 days ahead.
    pub valid_from: Option<DateTime<Utc>>,
    /// RFC 3339; default validFrom + 180 days. Later than validFrom and now; the window is
    /// at most 180 days long.
    pub valid_until: Option<DateTime<Utc>>,
    /// The invite roster: user id -> role. At most 1000 users per request.
    pub participants: Option<BTreeMap<String, ParticipantSpec>>,
    /// 1 to 1,000,000; no limit when absent.
    pub max_participants: Option<u32>,
    pub join_policy: Option<JoinPolicy>,
    pub is_message_disabled: Option<bool>,
    pub is_public_visible: Option<bool>,
    /// An http(s) URL, at most 2048 bytes.
    pub cover_url: Option<String>,
    /// 0 to 86400 (default 0).
    pub destroy_delay_seconds: Option<u32>,
    /// Members announced individually in a live session, 0 to 1000 (default 50).
    pub announce_limit: Option<u32>,
    /// At most 32 string pairs; keys 1-64 of `A-Z a-z 0-9 - _ .`, values up to 1024
    /// characters.
    pub attributes: Option<BTreeMap<String, String>>,
    /// `conference` (default), `live` (a host and guests on seats, an audience) or
    /// `voice` (like live, audio only).
    pub room_type: Option<RoomType>,
    /// The host, a user id; invited as a presenter.
    pub owner_id: Option<String>,
    /// Seats in a live or voice room, 1 to 50 (default 8).
    pub max_seat_count: Option<u32>,
    /// `freeToTake` (default) or `applyToTake`.
    pub take_seat_mode: Option<TakeSeatMode>,
}

/// `Some(None)` for an explicit `null`, `None` when the field is absent (merge-patch).
fn nullable<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// A JSON merge-patch of a room: absent fields are kept, `null` resets a field to its
/// default, and in `attributes` a `null` value removes that key.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateRoomRequest {
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, nullable)]
    pub name: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<DateTime<Utc>>)]
    pub valid_from: Option<Option<DateTime<Utc>>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<DateTime<Utc>>)]
    pub valid_until: Option<Option<DateTime<Utc>>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<u32>, nullable)]
    pub max_participants: Option<Option<u32>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<JoinPolicy>, nullable)]
    pub join_policy: Option<Option<JoinPolicy>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<bool>, nullable)]
    pub is_message_disabled: Option<Option<bool>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<bool>, nullable)]
    pub is_public_visible: Option<Option<bool>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, nullable)]
    pub cover_url: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<u32>, nullable)]
    pub destroy_delay_seconds: Option<Option<u32>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<u32>, nullable)]
    pub announce_limit: Option<Option<u32>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<BTreeMap<String, String>>, nullable)]
    pub attributes: Option<Option<BTreeMap<String, Option<String>>>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<RoomType>, nullable)]
    pub room_type: Option<Option<RoomType>>,
    /// The host; invited as a presenter. `null`: no host.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, nullable)]
    pub owner_id: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<u32>, nullable)]
    pub max_seat_count: Option<Option<u32>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<TakeSeatMode>, nullable)]
    pub take_seat_mode: Option<Option<TakeSeatMode>>,
}

/// Parses a roster map from a request into (user, role-or-removal) pairs.
pub fn parse_roster(
    map: BTreeMap<String, Option<ParticipantSpec>>,
) -> Result<Vec<(crate::ids::UserId, Option<Role>)>, ApiError> {
    if map.len() > settings::MAX_ROSTER_CHANGES {
        return Err(ApiError::invalid(
            "participants",
            format!(
                "at most {} participants per request",
                settings::MAX_ROSTER_CHANGES
            ),
        ));
    }
    map.into_iter()
        .map(|(user, spec)| {
            let id = user_id(&user, &format!("participants.{user}"))?;
            Ok((id, spec.map(|s| s.role.unwrap_or_default())))
        })
        .collect()
}

fn repeatability_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(v) = headers.get(REPEATABILITY_HEADER) else {
        return Ok(None);
    };
    let v = v.to_str().unwrap_or("");
    let ok = !v.is_empty() && v.len() <= 128 && v.chars().all(|c| c.is_ascii_graphic());
    if !ok {
        return Err(ApiError::invalid(
            "Repeatability-Request-ID",
            "Repeatability-Request-ID must be 1 to 128 visible ASCII characters",
        ));
    }
    Ok(Some(format!("createRoom:{v}")))
}

fn replay(stored: StoredResponse) -> Response {
    let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::CREATED);
    let mut resp = (status, stored.body).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert("repeatability-result", HeaderValue::from_static("accepted"));
    resp
}

#[utoipa::path(post, path = "/v1/rooms", tag = "rooms",
    request_body = CreateRoomRequest,
    params(("Repeatability-Request-ID" = Option<String>, Header,
        description = "Makes a retried create return the first result instead of a second room")),
    responses(
        (status = 201, description = "Created", body = Room),
        (status = 400, description = "InvalidParameter; `target` names the field", body = ErrorEnvelope),
        (status = 401, description = "Unauthenticated", body = ErrorEnvelope),
        (status = 409, description = "RoomAlreadyExists", body = ErrorEnvelope),
        (status = 413, description = "PayloadTooLarge", body = ErrorEnvelope),
    ),
    security(("adminKey" = [])))]
pub async fn create_room(
    State(state): State<AppState>,
    _: Admin,
    headers: HeaderMap,
    JsonBody(req): JsonBody<CreateRoomRequest>,
) -> ApiResult<Response> {
    let key = repeatability_key(&headers)?;
    let now = state.clock.now();
    let id = match &req.id {
        Some(raw) => RoomId::parse(raw).map_err(|e| ApiError::invalid("id", e.0))?,
        None => RoomId::generate(),
    };
    let (valid_from, valid_until) = validity::resolve_window(now, req.valid_from, req.valid_until)?;
    let owner_id = req
        .owner_id
        .as_deref()
        .map(|o| user_id(o, "ownerId"))
        .transpose()?;
    let room = Room {
        id,
        version: 1,
        name: req.name.unwrap_or_default(),
        created_at: now,
        valid_from,
        valid_until,
        max_participants: req.max_participants,
        join_policy: req.join_policy.unwrap_or_default(),
        is_message_disabled: req.is_message_disabled.unwrap_or(false),
        is_public_visible: req.is_public_visible.unwrap_or(false),
        cover_url: req.cover_url,
        destroy_delay_seconds: req.destroy_delay_seconds.unwrap_or(0),
        announce_limit: req
            .announce_limit
            .unwrap_or(settings::DEFAULT_ANNOUNCE_LIMIT),
        attributes: req.attributes.unwrap_or_default(),
        room_type: req.room_type.unwrap_or_default(),
        owner_id: owner_id.clone(),
        max_seat_count: req.max_seat_count.unwrap_or(settings::DEFAULT_SEAT_COUNT),
        take_seat_mode: req.take_seat_mode.unwrap_or_default(),
    };
    settings::check_room(&room)?;
    let mut invited = parse_roster(
        req.participants
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, Some(v)))
            .collect(),
    )?;
    // The host is a presenter, whatever the roster said.
    if let Some(owner) = owner_id {
        invited.retain(|(u, _)| *u != owner);
        invited.push((owner, Some(Role::Presenter)));
    }
    let roster = invited
        .into_iter()
        .map(|(user_id, role)| RosterEntry {
            user_id,
            role: role.unwrap_or_default(),
            invited_at: now,
            invite_id: crate::ids::random_token(16),
        })
        .collect::<Vec<_>>();
    // A retry replays the first answer; a request that is not valid is refused first,
    // whatever its key.
    if let Some(k) = &key {
        if let Some(stored) = state.store.idempotent_response(k).await? {
            return Ok(replay(stored));
        }
    }

    let body = serde_json::to_string(&room).map_err(ApiError::internal)?;
    let stored = StoredResponse {
        status: 201,
        body: body.clone(),
    };
    let idem = key.as_deref().map(|k| (k, &stored));
    match state.store.create_room(&room, &roster, idem, now).await {
        Ok(()) => {}
        Err(StoreError::DuplicateRequest) => {
            let k = key.as_deref().unwrap_or_default();
            if let Some(first) = state.store.idempotent_response(k).await? {
                return Ok(replay(first));
            }
            return Err(ApiError::internal("idempotency record vanished"));
        }
        // A concurrent retry with the same key and a chosen id got there first.
        Err(StoreError::AlreadyExists) if key.is_some() => {
            let k = key.as_deref().unwrap_or_default();
            if let Some(first) = state.store.idempotent_response(k).await? {
                return Ok(replay(first));
            }
            return Err(StoreError::AlreadyExists.into());
        }
        Err(e) => return Err(e.into()),
    }
    tracing::info!(room = %room.id, invited = roster.len(), "room created");
    let mut resp = (StatusCode::CREATED, body).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Ok(loc) = HeaderValue::from_str(&format!("/v1/rooms/{}", room.id)) {
        h.insert(header::LOCATION, loc);
    }
    Ok(resp)
}

pub async fn load_room(state: &AppState, raw_id: &str) -> ApiResult<Room> {
    let id = room_id(raw_id)?;
    state
        .store
        .get_room(&id)
        .await?
        .ok_or_else(|| ApiError::room_not_found(raw_id))
}

#[utoipa::path(get, path = "/v1/rooms/{roomId}", tag = "rooms",
    params(("roomId" = String, Path)),
    responses(
        (status = 200, body = Room, headers(("ETag" = String, description = "The room's version, e.g. `\"3\"`: send it in `If-Match` to update only this version"))),
        (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope),
        (status = 404, description = "RoomNotFound", body = ErrorEnvelope),
    ),
    security(("adminKey" = [])))]
pub async fn get_room(
    State(state): State<AppState>,
    _: Admin,
    Path(raw): Path<String>,
) -> ApiResult<Response> {
    Ok(with_etag(load_room(&state, &raw).await?))
}

/// The room as JSON with its version as the `ETag`.
fn with_etag(room: Room) -> Response {
    let etag = etag(room.version);
    let mut resp = Json(room).into_response();
    if let Ok(v) = HeaderValue::from_str(&etag) {
        resp.headers_mut().insert(header::ETAG, v);
    }
    resp
}

fn etag(version: u64) -> String {
    format!("\"{version}\"")
}

/// `If-Match`: `None` when absent or `*` (any stored version), else the one version the
/// caller read. A list or a weak tag is refused with a clear message.
fn if_match(headers: &HeaderMap) -> Result<Option<u64>, ApiError> {
    let Some(v) = headers.get(header::IF_MATCH) else {
        return Ok(None);
    };
    let Ok(text) = v.to_str().map(str::trim) else {
        return Err(ApiError::invalid(
            "If-Match",
            "If-Match must be one ETag as sent by GET, such as \"3\", or *",
        ));
    };
    // An empty header asks for nothing, like no header.
    if text == "*" || text.is_empty() {
        return Ok(None);
    }
    text.strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .and_then(|t| t.parse::<u64>().ok())
        .map(Some)
        .ok_or_else(|| {
            ApiError::invalid(
                "If-Match",
                "If-Match must be one ETag as sent by GET, such as \"3\", or *",
            )
        })
}

fn precondition_failed(current: u64) -> ApiError {
    ApiError::new(
        ErrorCode::PreconditionFailed,
        format!("the room has changed: it is at version {current}; read it again and retry"),
    )
    .with_target("If-Match")
}

#[utoipa::path(get, path = "/v1/rooms", tag = "rooms",
    params(PageQuery),
    responses(
        (status = 200, body = inline(Page<Room>)),
        (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope),
    ),
    security(("adminKey" = [])))]
pub async fn list_rooms(
    State(state): State<AppState>,
    _: Admin,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Json<Page<Room>>> {
    let size = q.size()?;
    let after = q.after()?;
    let rooms = state.store.list_rooms(after.as_deref(), size + 1).await?;
    Ok(Json(Page::build(rooms, size, "/v1/rooms", |r| {
        r.id.to_string()
    })))
}

#[utoipa::path(patch, path = "/v1/rooms/{roomId}", tag = "rooms",
    params(("roomId" = String, Path),
        ("If-Match" = Option<String>, Header, description = "Apply only if the room is still at this version (the `ETag` of a read)")),
    request_body(content = UpdateRoomRequest, content_type = "application/merge-patch+json"),
    responses(
        (status = 200, body = Room, headers(("ETag" = String, description = "The new version"))),
        (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope),
        (status = 412, description = "PreconditionFailed: the room is no longer at the `If-Match` version", body = ErrorEnvelope),
        (status = 413, body = ErrorEnvelope),
    ),
    security(("adminKey" = [])))]
pub async fn update_room(
    State(state): State<AppState>,
    _: Admin,
    Path(raw): Path<String>,
    headers: HeaderMap,
    JsonBody(patch): JsonBody<UpdateRoomRequest>,
) -> ApiResult<Response> {
    let id = room_id(&raw)?;
    let expected = if_match(&headers)?;
    let now = state.clock.now();
    // Applied by the store to the latest version inside its transaction, so concurrent
    // PATCHes serialize instead of overwriting each other.
    let new_owner = match &patch.owner_id {
        Some(Some(o)) => Some(user_id(o, "ownerId")?),
        _ => None,
    };
    let edit = Box::new(move |room: &mut Room| apply_patch(room, patch, now));
    let room = match state.store.update_room(&id, expected, edit).await {
        Ok(room) => room,
        Err(StoreError::RoomNotFound) => return Err(ApiError::room_not_found(&raw)),
        Err(StoreError::VersionMismatch { current }) => return Err(precondition_failed(current)),
        Err(e) => return Err(e.into()),
    };
    if let Some(owner) = new_owner {
        // A new host is invited as a presenter (or made one).
        let changes = state
            .store
            .apply_roster(
                &room.id,
                &[(owner, Some(Role::Presenter))],
                now,
                settings::MAX_ROSTER_SIZE,
            )
            .await?;
        state.cluster.roster_changed(&room.id, &changes);
    }
    state.cluster.room_updated(&room);
    tracing::info!(room = %room.id, version = room.version, "room updated");
    Ok(with_etag(room))
}

/// A merge-patch applied to the stored room, then every rule checked.
fn apply_patch(
    room: &mut Room,
    patch: UpdateRoomRequest,
    now: DateTime<Utc>,
) -> Result<(), RuleError> {
    if let Some(v) = patch.name {
        room.name = v.unwrap_or_default();
    }
    let window_changed = patch.valid_from.is_some() || patch.valid_until.is_some();
    if let Some(v) = patch.valid_from {
        room.valid_from =
            v.ok_or_else(|| RuleError::new("validFrom", "validFrom may not be null"))?;
    }
    if let Some(v) = patch.valid_until {
        room.valid_until =
            v.ok_or_else(|| RuleError::new("validUntil", "validUntil may not be null"))?;
    }
    if window_changed {
        validity::check_window(now, room.valid_from, room.valid_until)?;
    }
    if let Some(v) = patch.max_participants {
        room.max_participants = v;
    }
    if let Some(v) = patch.join_policy {
        room.join_policy = v.unwrap_or_default();
    }
    if let Some(v) = patch.is_message_disabled {
        room.is_message_disabled = v.unwrap_or(false);
    }
    if let Some(v) = patch.is_public_visible {
        room.is_public_visible = v.unwrap_or(false);
    }
    if let Some(v) = patch.cover_url {
        room.cover_url = v;
    }
    if let Some(v) = patch.destroy_delay_seconds {
        room.destroy_delay_seconds = v.unwrap_or(0);
    }
    if let Some(v) = patch.announce_limit {
        room.announce_limit = v.unwrap_or(settings::DEFAULT_ANNOUNCE_LIMIT);
    }
    if let Some(v) = patch.room_type {
        room.room_type = v.unwrap_or_default();
    }
    if let Some(v) = patch.owner_id {
        room.owner_id = v
            .map(|o| crate::ids::UserId::parse(&o).map_err(|e| RuleError::new("ownerId", e.0)))
            .transpose()?;
    }
    if let Some(v) = patch.max_seat_count {
        room.max_seat_count = v.unwrap_or(settings::DEFAULT_SEAT_COUNT);
    }
    if let Some(v) = patch.take_seat_mode {
        room.take_seat_mode = v.unwrap_or_default();
    }
    match patch.attributes {
        None => {}
        Some(None) => room.attributes.clear(),
        Some(Some(changes)) => {
            for (k, v) in changes {
                match v {
                    Some(v) => room.attributes.insert(k, v),
                    None => room.attributes.remove(&k),
                };
            }
        }
    }
    settings::check_room(room)
}

#[utoipa::path(delete, path = "/v1/rooms/{roomId}", tag = "rooms",
    params(("roomId" = String, Path),
        ("If-Match" = Option<String>, Header, description = "Delete only if the room is still at this version")),
    responses(
        (status = 204, description = "Deleted; a live session ends with reason roomDeleted"),
        (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope),
        (status = 412, description = "PreconditionFailed", body = ErrorEnvelope),
    ),
    security(("adminKey" = [])))]
pub async fn delete_room(
    State(state): State<AppState>,
    _: Admin,
    Path(raw): Path<String>,
    headers: HeaderMap,
) -> ApiResult<StatusCode> {
    let id = room_id(&raw)?;
    let expected = if_match(&headers)?;
    match state.store.delete_room(&id, expected).await {
        Ok(true) => {}
        Ok(false) => return Err(ApiError::room_not_found(&raw)),
        Err(StoreError::VersionMismatch { current }) => return Err(precondition_failed(current)),
        Err(e) => return Err(e.into()),
    }
    state.cluster.room_deleted(&id);
    tracing::info!(room = %id, "room deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// Used by handlers that must refuse work on a room that has ended.
pub fn ensure_not_expired(room: &Room, now: DateTime<Utc>) -> ApiResult<()> {
    if room.has_ended_at(now) {
        return Err(admission::ended(room).into());
    }
    Ok(())
}
