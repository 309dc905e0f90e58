use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::Role;
use crate::ids::{RoomId, UserId};

/// Who may join a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum JoinPolicy {
    /// Only users on the invite roster, with a valid join token.
    #[default]
    Invite,
    /// Nobody may join (the room is kept, e.g. between events).
    Closed,
}

/// The admin's durable record of a room. Exists whether or not anyone is connected.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Room {
    #[schema(value_type = String, example = "weekly-standup")]
    pub id: RoomId,
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
}

impl Room {
    pub fn is_open_at(&self, now: DateTime<Utc>) -> bool {
        self.valid_from <= now && now < self.valid_until
    }
}

/// One invited user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RosterEntry {
    #[schema(value_type = String, example = "alice")]
    pub user_id: UserId,
    pub role: Role,
    pub invited_at: DateTime<Utc>,
    /// Changes when a user is removed and invited again, so join tokens minted for the
    /// earlier invitation stop working. Not shown in the API.
    #[serde(skip)]
    pub invite_id: String,
}
