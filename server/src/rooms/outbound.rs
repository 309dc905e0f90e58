//! What a session's driver hands one member's socket: pre-serialized frames shared by
//! all recipients, through a bounded queue that never blocks the session.

use bytes::Bytes;
use convene_protocol::signal::ServerMessage;
use tokio::sync::mpsc;

/// Frames a member's queue holds before it counts as lagging.
pub const OUTBOUND_QUEUE: usize = 64;

#[derive(Debug, Clone)]
pub enum Outbound {
    /// A JSON text frame. The bytes are shared, not copied, between recipients.
    Text(Bytes),
    /// Close the socket once the frames before it are written.
    Close,
    /// The socket's own reader closes it with this code and reason (a frame too large,
    /// text not UTF-8), once the frames before it are written.
    CloseWith(u16, &'static str),
}

pub type OutboundTx = mpsc::Sender<Outbound>;

/// Serializes once; clone the result for each recipient.
pub fn frame(msg: &ServerMessage) -> Bytes {
    Bytes::from(serde_json::to_vec(msg).expect("server messages serialize"))
}
