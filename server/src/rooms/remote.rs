//! Members whose socket is on another node (an edge) of the room's home node: where a
//! session's driver sends their frames, one copy per edge node and never one per member.
//! These are the types only; `cluster` carries them over Redis, and on the edge node
//! hands each frame to the members' own queues (`Delivery`'s byte-level half).

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::outbound::OutboundTx;
use crate::ids::{ConnId, NodeId, RoomId, UserId};
use crate::sfu::port::RelayCmd;

/// Where a joining member's frames go.
#[derive(Debug)]
pub enum Sink {
    /// A socket on this node.
    Local(OutboundTx),
    /// A socket on edge node `node`, which called it `edge_conn` until the join is
    /// answered (`FrameKind::Joined` tells it the session's number for it).
    Edge { node: NodeId, edge_conn: ConnId },
}

/// What a session sends one edge node: a frame for some or all of the room's members
/// there. `bytes` is the serialized server message, shared with the local recipients.
#[derive(Debug, Clone)]
pub struct EdgeFrame {
    pub to: NodeId,
    pub room: RoomId,
    pub kind: FrameKind,
    pub bytes: Bytes,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "camelCase")]
pub enum FrameKind {
    /// The join the edge called `edge_conn` was taken: the session calls it `conn`.
    /// Sent before any frame for it.
    #[serde(rename_all = "camelCase")]
    Joined {
        edge_conn: ConnId,
        conn: ConnId,
        user: UserId,
    },
    Send {
        conn: ConnId,
    },
    /// To every member there that keeps up.
    Broadcast,
    /// The full state, to members that fell behind.
    Resync {
        conns: Vec<ConnId>,
    },
    /// Send `bytes` (when not empty), then close this member's socket.
    Close {
        conn: ConnId,
    },
    /// The session ended: close every socket of the room there.
    Ended,
    /// For the session's relay there (see `relays`); `bytes` is empty.
    Media {
        cmd: RelayCmd,
    },
}

pub type EdgeTx = mpsc::UnboundedSender<EdgeFrame>;
