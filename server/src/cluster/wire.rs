//! What nodes say to each other on Redis, and where: one JSON message per publish.
//!
//! - `convene:<db>:bus` (every node): notices of admin writes, and queries.
//! - `convene:<db>:inbox:<node>` (one node): the answers to that node's queries, and a
//!   room's traffic between its home node and its edge nodes (`Frame`, `Up`, `Refused`).
//!   A `Frame`'s payload is its JSON header, a newline, then the member frame's own bytes
//!   (JSON already), so a frame is never escaped into a string.
//!
//!   Channels, unlike keys, are shared by all of a Redis's databases: the database
//!   number in their names keeps deployments on different databases of one Redis apart.
//! - `convene:node:<node>` (a key with a lease): that node's `NodeInfo`; the set
//!   `convene:nodes` names every node that registered, and a node whose key expired is
//!   taken out of it by whoever lists the nodes next.
//! - `convene:lease:webhooks`: the node that delivers webhooks, so each event is POSTed
//!   by one node only.
//! - `convene:home:<room>` (a lease): the home node of a room's live session, as
//!   `<node>#<instance>`; every other node forwards its members there.

use chrono::{DateTime, Utc};
use convene_protocol::signal::{Participant, SeatInfo};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::ids::{ConnId, NodeId, RoomId, UserId};
use crate::model::Room;
use crate::rooms::member_event::MemberEvent;
use crate::rooms::remote::FrameKind;
use crate::rooms::session::MemberInit;
use crate::rooms::SessionSummary;
use crate::sfu::port::MediaEvent;

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

pub fn home_key(room: &RoomId) -> String {
    format!("convene:home:{room}")
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
    /// Its load: the live sessions it is home to, and their members (on any node).
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
    Notice {
        notice: Notice,
    },
    Query {
        id: u64,
        query: Query,
    },
    Answer {
        id: u64,
        answer: Answer,
    },
    /// Home to edge: a frame for the room's members there (its bytes follow the header).
    Frame {
        room: RoomId,
        frame: FrameKind,
    },
    /// Home to edge: the join the edge called `edge_conn` was not taken.
    #[serde(rename_all = "camelCase")]
    Refused {
        room: RoomId,
        edge_conn: ConnId,
        why: Refusal,
    },
    /// Edge to home: a member's join, message or departure.
    Up {
        room: RoomId,
        up: Up,
    },
}

/// Why a home did not take a join.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Refusal {
    RoomFull,
    /// Shutting down, or its session kept ending under the join.
    Busy,
    /// It is not (or no longer) the room's home: place the room again.
    Moved,
}

/// What an edge node sends a room's home about one of its members.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "camelCase")]
pub enum Up {
    /// `room` is the edge's read of the room at admission (the session takes newer ones).
    #[serde(rename_all = "camelCase")]
    Join {
        edge_conn: ConnId,
        room: Box<Room>,
        init: MemberInit,
        resume: Option<String>,
    },
    /// What happened on the member's socket there.
    Member {
        user: UserId,
        conn: ConnId,
        event: MemberEvent,
    },
    /// What the session's relay there reports (see `rooms::relays`).
    Media { ev: MediaEvent },
}

/// A payload: the header, then (for a `Frame`) a newline and the frame's bytes.
pub fn encode(msg: &Message, bytes: &[u8]) -> Vec<u8> {
    let mut out = serde_json::to_vec(msg).expect("a node message serializes");
    if !bytes.is_empty() {
        out.push(b'\n');
        out.extend_from_slice(bytes);
    }
    out
}

/// The header and the bytes after it (compact JSON holds no raw newline).
pub fn decode(payload: &[u8]) -> Option<(Message, &[u8])> {
    let (head, rest) = match payload.iter().position(|b| *b == b'\n') {
        Some(i) => (&payload[..i], &payload[i + 1..]),
        None => (payload, &payload[payload.len()..]),
    };
    serde_json::from_slice(head).ok().map(|m| (m, rest))
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
    /// Only `node` acts (the one whose session listed the seat taken).
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
    fn a_frame_crosses_with_its_bytes_unescaped() {
        let msg = Message {
            from: NodeId::parse("n1").unwrap(),
            body: Body::Frame {
                room: RoomId::parse("r").unwrap(),
                frame: FrameKind::Resync {
                    conns: vec![ConnId(3), ConnId(9)],
                },
            },
        };
        let frame = br#"{"type":"chat","text":"a\nb"}"#;
        let payload = encode(&msg, frame);
        let (back, bytes) = decode(&payload).expect("decodes");
        assert_eq!(bytes, frame);
        match back.body {
            Body::Frame { frame, .. } => assert_eq!(
                frame,
                FrameKind::Resync {
                    conns: vec![ConnId(3), ConnId(9)]
                }
            ),
            other => panic!("{other:?}"),
        }
        let bare = encode(&msg, b"");
        let (_, none) = decode(&bare).unwrap();
        assert!(none.is_empty());
    }

    #[test]
    fn a_bad_id_on_the_wire_is_refused() {
        let text = r#"{"from":"n 1","body":{"type":"notice","notice":{"kind":"webhooksChanged"}}}"#;
        assert!(serde_json::from_str::<Message>(text).is_err());
    }
}
