//! What nodes say to each other on Redis, and where: one JSON message per publish.
//!
//! - `convene:<db>:bus` (every node): notices of admin writes, and queries.
//! - `convene:<db>:inbox:<node>` (one node): the answers to that node's queries.
//!
//!   Channels, unlike keys, are shared by all of a Redis's databases: the database
//!   number in their names keeps deployments on different databases of one Redis apart.
//! - `convene:node:<node>` (a key with a lease): that node's `NodeInfo`; the set
//!   `convene:nodes` names every node that registered, and a node whose key expired is
//!   taken out of it by whoever lists the nodes next.
//! - `convene:lease:webhooks`: the node that delivers webhooks, so each event is POSTed
//!   by one node only.

use chrono::{DateTime, Utc};
use convene_protocol::signal::{Participant, SeatInfo};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::ids::{NodeId, RoomId, UserId};
use crate::rooms::SessionSummary;

pub fn bus(db: i64) -> String {
    format!("convene:{db}:bus")
}

pub const NODES: &str = "convene:nodes";
pub const WEBHOOK_LEASE: &str = "convene:lease:webhooks";

pub fn inbox(db: i64, node: &NodeId) -> String {
    format!("convene:{db}:inbox:{node}")
}

pub fn node_key(node: &NodeId) -> String {
    format!("convene:node:{node}")
}

/// One node as the others see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NodeInfo {
    #[schema(value_type = String, example = "n_4k2m9x0q1z")]
    pub id: NodeId,
    /// Its base URL (join links it mints point there).
    pub url: String,
    pub started_at: DateTime<Utc>,
    /// When it last renewed its lease; it is gone if it does not for 10 s.
    pub renewed_at: DateTime<Utc>,
    /// Its load: live sessions and the members joined through it.
    pub sessions: u64,
    pub members: u64,
    /// Random, new at each start: tells a restart, and keeps a second process that
    /// took this id (after this one lost Redis for longer than the lease) from being
    /// overwritten by it.
    pub instance: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Message {
    pub from: NodeId,
    pub body: Body,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum Body {
    Notice { notice: Notice },
    Query { id: u64, query: Query },
    Answer { id: u64, answer: Answer },
}

/// An admin write committed on the sending node, for the sessions on the others.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Notice {
    /// Read the room again from the store (sessions take it only if newer).
    RoomUpdated {
        room: RoomId,
    },
    RoomDeleted {
        room: RoomId,
    },
    /// These users' invitations changed (added, removed, new role): read them again,
    /// so notices applied out of commit order still end at what is stored.
    Roster {
        room: RoomId,
        users: Vec<UserId>,
    },
    TokenRevoked {
        room: RoomId,
        jti: String,
    },
    /// Endpoints were added, changed or removed: read them again.
    WebhooksChanged,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Query {
    Sessions,
    Members {
        room: RoomId,
    },
    /// How many are joined to the room (for its `maxParticipants`).
    Count {
        room: RoomId,
    },
    Kick {
        room: RoomId,
        user: UserId,
    },
    Seats {
        room: RoomId,
    },
    /// Only `node` acts (each node has its own session of the room, with its own seats).
    Unseat {
        room: RoomId,
        index: u32,
        node: NodeId,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Answer {
    Sessions {
        value: Vec<SessionSummary>,
    },
    Members {
        value: Vec<Participant>,
    },
    Count {
        members: usize,
    },
    /// The token the member had joined with (none: not joined here).
    Kicked {
        jti: Option<String>,
    },
    Seats {
        value: Vec<SeatInfo>,
    },
    Unseated {
        user: Option<UserId>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_cross_intact() {
        let msg = Message {
            from: NodeId::parse("n1").unwrap(),
            body: Body::Notice {
                notice: Notice::Roster {
                    room: RoomId::parse("r").unwrap(),
                    users: vec![UserId::parse("alice@example.com").unwrap()],
                },
            },
        };
        let text = serde_json::to_vec(&msg).unwrap();
        let back: Message = serde_json::from_slice(&text).unwrap();
        assert_eq!(serde_json::to_vec(&back).unwrap(), text);
    }

    #[test]
    fn a_bad_id_on_the_wire_is_refused() {
        let text = r#"{"from":"n 1","body":{"type":"notice","notice":{"kind":"webhooksChanged"}}}"#;
        assert!(serde_json::from_str::<Message>(text).is_err());
    }
}
