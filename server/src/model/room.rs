//! The admin's durable record of a room.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use convene_protocol::signal::RoomInfo;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::ids::{RoomId, UserId};

/// Who may join a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum JoinPolicy {
    /// Only users on the invite roster, with a valid join token.
    #[default]
    Invite,
    /// Nobody new may join; members already in the live session stay (like locking a
    /// meeting). The room is kept, e.g. between events; to end a call, delete the room
    /// or move its `validUntil` to now.
    Closed,
    /// Invited users join with their roles, and anyone may also join a `live` room that
    /// is listed publicly (`isPublicVisible`) as a receive-only guest, with a guest
    /// token from `POST /v1/live/{roomId}/guest-tokens`.
    Public,
}

/// What kind of call a room holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum RoomType {
    /// Everyone publishes as their role allows.
    #[default]
    Conference,
    /// A host and guests on seats; everyone else watches. Only presenters and seated
    /// members publish.
    Live,
    /// Like `live`, audio only: video and screen are refused for everyone.
    Voice,
}

impl RoomType {
    /// Rooms with seats: publishing needs a seat (or the presenter role).
    pub fn has_seats(self) -> bool {
        matches!(self, RoomType::Live | RoomType::Voice)
    }
}

/// How a member gets a seat in a `live` or `voice` room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum TakeSeatMode {
    /// Any member may sit on a free, unlocked seat.
    #[default]
    FreeToTake,
    /// A member applies; the host or a presenter approves or rejects.
    ApplyToTake,
}

fn default_seats() -> u32 {
    8
}

fn first_version() -> u64 {
    1
}

/// The admin's durable record of a room. Exists whether or not anyone is connected.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Room {
    #[schema(value_type = String, example = "weekly-standup")]
    pub id: RoomId,
    /// Starts at 1 and grows by one with every change of the room (not of its roster).
    /// Sent as the `ETag` of room reads; send it back in `If-Match` to update only the
    /// version you read.
    #[serde(default = "first_version")]
    pub version: u64,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub valid_from: DateTime<Utc>,
    pub valid_until: DateTime<Utc>,
    /// Most members joined at once; `null` for no limit.
    pub max_participants: Option<u32>,
    pub join_policy: JoinPolicy,
    pub is_message_disabled: bool,
    pub is_public_visible: bool,
    pub cover_url: Option<String>,
    /// Seconds a live session outlives its last member.
    pub destroy_delay_seconds: u32,
    /// Members announced one by one in a live session; past it, receive-only members
    /// are reported as a count.
    pub announce_limit: u32,
    pub attributes: BTreeMap<String, String>,
    #[serde(default)]
    pub room_type: RoomType,
    /// The host: an invited user (made a presenter), shown in the live list.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub owner_id: Option<UserId>,
    /// Seats in a `live` or `voice` room, 1 to 50.
    #[serde(default = "default_seats")]
    pub max_seat_count: u32,
    #[serde(default)]
    pub take_seat_mode: TakeSeatMode,
}

/// Where a moment falls in a room's validity window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    NotYetOpen,
    Open,
    Ended,
}

/// A serde unit variant's name (`RoomType::Live` -> `live`), as the API spells it.
fn wire_name<T: Serialize>(value: T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

impl Room {
    /// What members are told about the room (in `joined`, and by the pre-join check).
    pub fn info(&self) -> RoomInfo {
        RoomInfo {
            id: self.id.to_string(),
            name: self.name.clone(),
            valid_from: self.valid_from.to_rfc3339(),
            valid_until: self.valid_until.to_rfc3339(),
            is_message_disabled: self.is_message_disabled,
            room_type: wire_name(self.room_type),
            owner_id: self.owner_id.as_ref().map(|o| o.to_string()),
            take_seat_mode: self
                .room_type
                .has_seats()
                .then(|| wire_name(self.take_seat_mode)),
            attributes: self.attributes.clone(),
        }
    }

    /// The one place that says whether a room may be used at `now`: admission, token
    /// minting and a live session's expiry all ask here.
    pub fn window_at(&self, now: DateTime<Utc>) -> Window {
        if now >= self.valid_until {
            Window::Ended
        } else if now < self.valid_from {
            Window::NotYetOpen
        } else {
            Window::Open
        }
    }

    pub fn has_ended_at(&self, now: DateTime<Utc>) -> bool {
        self.window_at(now) == Window::Ended
    }

    /// A conference room `r` open from `from` to `until`, for unit tests.
    #[cfg(test)]
    pub fn for_tests(from: DateTime<Utc>, until: DateTime<Utc>, announce_limit: u32) -> Self {
        Room {
            id: RoomId::parse("r").unwrap(),
            version: 1,
            name: String::new(),
            created_at: from,
            valid_from: from,
            valid_until: until,
            max_participants: None,
            join_policy: JoinPolicy::Invite,
            is_message_disabled: false,
            is_public_visible: false,
            cover_url: None,
            destroy_delay_seconds: 0,
            announce_limit,
            attributes: BTreeMap::new(),
            room_type: RoomType::Conference,
            owner_id: None,
            max_seat_count: 8,
            take_seat_mode: TakeSeatMode::FreeToTake,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};

    #[test]
    fn window_edges() {
        let t = Utc.with_ymd_and_hms(2026, 3, 1, 10, 0, 0).unwrap();
        let room = Room::for_tests(t, t + Duration::hours(1), 50);
        assert_eq!(room.window_at(t - Duration::seconds(1)), Window::NotYetOpen);
        assert_eq!(room.window_at(t), Window::Open);
        assert_eq!(room.window_at(t + Duration::hours(1)), Window::Ended);
        assert!(room.has_ended_at(t + Duration::hours(2)));
    }

    #[test]
    fn a_stored_room_without_a_version_reads_as_version_one() {
        let doc = r#"{"id":"r","name":"","createdAt":"2026-03-01T10:00:00Z",
            "validFrom":"2026-03-01T10:00:00Z","validUntil":"2026-03-02T10:00:00Z",
            "maxParticipants":null,"joinPolicy":"invite","isMessageDisabled":false,
            "isPublicVisible":false,"coverUrl":null,"destroyDelaySeconds":0,
            "announceLimit":50,"attributes":{}}"#;
        let room: Room = serde_json::from_str(doc).unwrap();
        assert_eq!(room.version, 1);
    }
}
