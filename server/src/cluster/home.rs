//! This node as the home of a room: what edge nodes send about their members, handed
//! to the room's session here. A remote member's frames leave through the session's
//! `Delivery` (one copy per edge node); see `edge` for the other side.

use super::membership::Place;
use super::wire::{Refusal, Up};
use super::Cluster;
use crate::ids::{NodeId, RoomId};
use crate::rooms::remote::Sink;
use crate::rooms::JoinError;

impl Cluster {
    /// Applies what edge `from` sent for `room`, in the order it came. A join runs in a
    /// task of its own (it waits for the session), and nothing about that member can
    /// come before the edge has heard it was taken.
    pub(super) async fn on_up(&self, from: NodeId, room: RoomId, up: Up) {
        let live = &self.0.live;
        match up {
            Up::Join {
                edge_conn,
                room: record,
                init,
                resume,
            } => {
                let me = self.clone();
                tokio::spawn(async move {
                    // A node that is not the room's home (it lost the lease, or the edge
                    // placed it on an old read) sends the edge to place it again.
                    let here = me.0.live.has_session(&room)
                        || matches!(me.place(&room, false).await, Place::Here);
                    if !here {
                        return me.refuse(&from, &room, edge_conn, Refusal::Moved);
                    }
                    let conn = me.0.live.next_conn_id();
                    let sink = Sink::Edge {
                        node: from.clone(),
                        edge_conn,
                    };
                    match me.0.live.join(&record, init, conn, sink, resume).await {
                        Ok(_) => {} // the edge hears it from the session (`Joined`)
                        Err(JoinError::RoomFull) => {
                            me.refuse(&from, &room, edge_conn, Refusal::RoomFull)
                        }
                        Err(_) => me.refuse(&from, &room, edge_conn, Refusal::Busy),
                    }
                });
            }
            Up::Member { user, conn, event } => live.member_event(&room, user, conn, event).await,
            Up::Media { ev } => live.edge_media(&room, from, ev),
        }
    }

    fn refuse(&self, edge: &NodeId, room: &RoomId, edge_conn: crate::ids::ConnId, why: Refusal) {
        if let Some(bus) = self.bus() {
            bus.refuse(edge, room, edge_conn, why);
        }
    }
}
