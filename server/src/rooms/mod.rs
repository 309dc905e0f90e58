//! The room domain: what a room is, its rules and roles. No sockets, no HTTP types and
//! no clock here; callers pass `now`.

pub mod live;
pub mod media;
pub mod model;
pub mod outbound;
pub mod roles;
pub mod session;
pub mod settings;
pub mod validity;

pub use model::{JoinPolicy, Room, RosterEntry};
pub use roles::Role;

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
