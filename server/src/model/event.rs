//! What webhooks report: every change worth telling a backend about, as an event with an
//! id, a type, a time and its room. Events are written to the store's outbox (in the
//! same transaction as the change, where there is one) and delivered from there.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use crate::ids::RoomId;

macro_rules! event_types {
    ($($variant:ident = $name:literal, $doc:literal;)*) => {
        /// The kinds of events, named `noun.verb` on the wire.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum EventType {
            $(#[doc = $doc] $variant,)*
        }

        impl EventType {
            pub const ALL: &'static [EventType] = &[$(EventType::$variant,)*];

            pub fn as_str(self) -> &'static str {
                match self { $(EventType::$variant => $name,)* }
            }

            pub fn parse(s: &str) -> Option<Self> {
                match s { $($name => Some(EventType::$variant),)* _ => None }
            }
        }
    };
}

event_types! {
    RoomCreated = "room.created", "A room was created (data: the room).";
    RoomUpdated = "room.updated", "A room's settings changed (data: the room as stored).";
    RoomDeleted = "room.deleted", "A room was deleted (data: its id).";
    RosterChanged = "roster.changed", "Users were invited, removed or given another role.";
    SessionStarted = "session.started", "A room's live session started (its first member joined).";
    SessionEnded = "session.ended", "A live session ended.";
    ParticipantJoined = "participant.joined", "A member joined the live session.";
    ParticipantLeft = "participant.left", "A member left the live session (data: the reason).";
    TrackPublished = "track.published", "A member started sending audio, video or a screen.";
    TrackUnpublished = "track.unpublished", "A member stopped sending audio, video or a screen.";
}

/// Where live sessions hand the events they report (joins, leaves, tracks, start, end);
/// the webhook writer on the other end adds them to the outbox in order.
pub type EventsTx = tokio::sync::mpsc::UnboundedSender<NewEvent>;

/// An event about to be written.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub kind: EventType,
    pub room: RoomId,
    pub at: DateTime<Utc>,
    pub data: Value,
}

impl NewEvent {
    pub fn new(kind: EventType, room: &RoomId, at: DateTime<Utc>, data: Value) -> Self {
        Self {
            kind,
            room: room.clone(),
            at,
            data,
        }
    }
}

/// An event as stored: `seq` orders all events of this server.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub seq: u64,
    pub id: String,
    pub kind: EventType,
    pub room: RoomId,
    pub at: DateTime<Utc>,
    pub data: Value,
}

impl Event {
    /// The JSON a webhook receives.
    pub fn body(&self) -> Value {
        json!({
            "id": self.id,
            "type": self.kind.as_str(),
            "at": self.at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "roomId": self.room.as_str(),
            "sequence": self.seq,
            "data": self.data,
        })
    }
}

/// Which events an endpoint wants: exact types (`room.created`), prefixes (`room.*`), or
/// everything (an empty list, or `*`).
pub fn wants(patterns: &[String], kind: EventType) -> bool {
    patterns.is_empty()
        || patterns.iter().any(|p| {
            p == "*"
                || p == kind.as_str()
                || p.strip_suffix(".*")
                    .is_some_and(|prefix| kind.as_str().split('.').next() == Some(prefix))
        })
}

/// Whether `pattern` can match any event type (so a typo is refused up front).
pub fn valid_pattern(pattern: &str) -> bool {
    pattern == "*"
        || EventType::parse(pattern).is_some()
        || pattern.strip_suffix(".*").is_some_and(|prefix| {
            EventType::ALL
                .iter()
                .any(|t| t.as_str().split('.').next() == Some(prefix))
        })
}

/// Where an endpoint was configured: the config file (changed only there) or the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookSource {
    Config,
    Api,
}

impl WebhookSource {
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookSource::Config => "config",
            WebhookSource::Api => "api",
        }
    }

    /// The stored text back; anything but "config" is an API endpoint.
    pub fn parse(s: &str) -> Self {
        if s == "config" {
            WebhookSource::Config
        } else {
            WebhookSource::Api
        }
    }
}

/// An endpoint events are delivered to, and how far it has got.
#[derive(Debug, Clone, PartialEq)]
pub struct Webhook {
    pub id: String,
    pub url: String,
    /// The HMAC-SHA256 key of its signatures.
    pub secret: String,
    pub events: Vec<String>,
    pub source: WebhookSource,
    pub created_at: DateTime<Utc>,
    /// The last event delivered (or given up on).
    pub cursor: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_select_types() {
        let p = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(wants(&[], EventType::TrackPublished));
        assert!(wants(&p(&["*"]), EventType::RoomDeleted));
        assert!(wants(&p(&["room.*"]), EventType::RoomDeleted));
        assert!(!wants(&p(&["room.*"]), EventType::RosterChanged));
        assert!(wants(&p(&["roster.changed"]), EventType::RosterChanged));
        assert!(valid_pattern("participant.*") && valid_pattern("track.published"));
        assert!(!valid_pattern("rooms.*") && !valid_pattern("room.exploded"));
        for t in EventType::ALL {
            assert_eq!(EventType::parse(t.as_str()), Some(*t));
        }
    }
}
