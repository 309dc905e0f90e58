use convene_protocol::signal::Capabilities;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{MediaKind, RoomType};

/// What a member may do in a room. The server enforces it; the SDK is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum Role {
    /// Publishes audio, video and screen; may mute or remove others.
    Presenter,
    /// Publishes audio, video and screen.
    Collaborator,
    /// Publishes audio and video.
    #[default]
    Attendee,
    /// Receives only.
    Consumer,
}

impl Role {
    pub const ALL: [Role; 4] = [
        Role::Presenter,
        Role::Collaborator,
        Role::Attendee,
        Role::Consumer,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Presenter => "presenter",
            Role::Collaborator => "collaborator",
            Role::Attendee => "attendee",
            Role::Consumer => "consumer",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// The one permission check for publishing: every gate, refusal and role change
    /// asks here.
    pub fn may_publish(self, kind: MediaKind) -> bool {
        let caps = self.capabilities();
        match kind {
            MediaKind::Audio => caps.publish_audio,
            MediaKind::Video => caps.publish_video,
            MediaKind::Screen => caps.publish_screen,
        }
    }

    /// Whether this role may publish `kind` in a room of `room_type`: the role allows it,
    /// a voice room allows audio only, and in a room with seats only presenters and
    /// seated members publish. The session asks with the member's seat; the pre-join
    /// check asks before any seat is taken.
    pub fn may_publish_in(self, room_type: RoomType, kind: MediaKind, seated: bool) -> bool {
        if !self.may_publish(kind) {
            return false;
        }
        match room_type {
            RoomType::Conference => true,
            RoomType::Voice if kind != MediaKind::Audio => false,
            _ => self == Role::Presenter || seated,
        }
    }

    /// What this role may do in a room of `room_type` (see `may_publish_in`).
    pub fn capabilities_in(self, room_type: RoomType, seated: bool) -> Capabilities {
        Capabilities {
            publish_audio: self.may_publish_in(room_type, MediaKind::Audio, seated),
            publish_video: self.may_publish_in(room_type, MediaKind::Video, seated),
            publish_screen: self.may_publish_in(room_type, MediaKind::Screen, seated),
            moderate: self.capabilities().moderate,
        }
    }

    /// Whether this role may publish anything at all.
    pub fn publishes(self) -> bool {
        MediaKind::ALL.into_iter().any(|k| self.may_publish(k))
    }

    pub fn capabilities(self) -> Capabilities {
        let publishes = self != Role::Consumer;
        let screen = matches!(self, Role::Presenter | Role::Collaborator);
        Capabilities {
            publish_audio: publishes,
            publish_video: publishes,
            publish_screen: screen,
            moderate: self == Role::Presenter,
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_round_trip_and_grant_rights() {
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
        assert_eq!(Role::parse("admin"), None);
        assert!(Role::Presenter.capabilities().moderate);
        assert!(!Role::Collaborator.capabilities().moderate);
        assert!(Role::Collaborator.capabilities().publish_screen);
        assert!(!Role::Attendee.capabilities().publish_screen);
        assert!(Role::Attendee.capabilities().publish_video);
        assert!(!Role::Consumer.capabilities().publish_audio);
    }
}
