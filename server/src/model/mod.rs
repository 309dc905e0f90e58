//! The records every layer shares: a room, its invite roster, roles, a broken rule, the
//! events webhooks report, and the ICE servers (with minted TURN credentials) members get.
//! Plain data with serde and OpenAPI schemas; no I/O and no clock. `rooms` (the rules
//! and live sessions), `store` (persistence) and the edge all build on these, so none
//! of them has to import another to agree on a type.

pub mod event;
pub mod ice;
mod media;
mod role;
mod room;
mod roster;

pub use media::{MediaKind, MediaSet};
pub use role::Role;
pub use room::{JoinPolicy, Room, RoomType, TakeSeatMode, Window};
pub use roster::{RosterChange, RosterEntry};

/// A broken rule, with the request field it concerns (`target` in the API error).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct RuleError {
    pub target: String,
    pub message: String,
}

impl RuleError {
    pub fn new(target: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            target: target.into(),
            message: message.into(),
        }
    }
}
