//! Invite rosters: who may join a room, with which role.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::Role;
use crate::ids::UserId;

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

/// What one roster change did, so live sessions can act on removals and role changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RosterChange {
    Added(RosterEntry),
    RoleChanged { entry: RosterEntry, from: Role },
    Removed(UserId),
}

impl RosterChange {
    /// Whose invitation changed.
    pub fn user(&self) -> &UserId {
        match self {
            RosterChange::Added(e) | RosterChange::RoleChanged { entry: e, .. } => &e.user_id,
            RosterChange::Removed(u) => u,
        }
    }
}
