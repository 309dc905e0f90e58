//! What happens on one member's socket, wherever the socket is: a message its client
//! sent, or the socket dropped, flooded or fell behind. Signaling reports it for a socket
//! on this node; `cluster` carries it from an edge node to the room's home. Either way it
//! reaches the session the same way (`LiveRooms::member_event`).

use convene_protocol::signal::ClientMessage;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "camelCase")]
pub enum MemberEvent {
    /// A message from the client.
    Client { msg: Box<ClientMessage> },
    /// The socket has gone: the member is kept for the resume grace.
    Dropped,
    /// Kept flooding after being rate-limited: the member is told `left {reason:
    /// "rateLimited"}` and disconnected for good.
    Flooded,
    /// Its queue on its edge node was full: it gets a snapshot when it can. (A full
    /// queue on the home's own node is found by `Delivery`.)
    Lagging,
}
