//! What a session sends to one member's connection: pre-serialized frames shared by all
//! recipients, through a bounded queue that never blocks the session.

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
}

/// Serializes once; clone the result for each recipient.
pub fn frame(msg: &ServerMessage) -> Bytes {
    Bytes::from(serde_json::to_vec(msg).expect("server messages serialize"))
}

/// One live connection of a member.
#[derive(Debug)]
pub struct Conn {
    pub id: u64,
    pub tx: mpsc::Sender<Outbound>,
}

/// What happened to a frame offered to a connection.
#[derive(Debug, PartialEq, Eq)]
pub enum Offer {
    Queued,
    /// The queue is full: the member is too slow and must be resynchronised later.
    Full,
    /// The socket has gone.
    Gone,
}

impl Conn {
    pub fn offer(&self, frame: &Bytes) -> Offer {
        match self.tx.try_send(Outbound::Text(frame.clone())) {
            Ok(()) => Offer::Queued,
            Err(mpsc::error::TrySendError::Full(_)) => Offer::Full,
            Err(mpsc::error::TrySendError::Closed(_)) => Offer::Gone,
        }
    }

    /// Best effort: a final frame then close. A full queue just closes (dropping the
    /// sender ends the writer after what is already queued).
    pub fn finish(self, last: Option<&Bytes>) {
        if let Some(f) = last {
            let _ = self.tx.try_send(Outbound::Text(f.clone()));
        }
        let _ = self.tx.try_send(Outbound::Close);
    }
}
