//! Joining a room's one live session, wherever it runs. Each live room has one home node
//! (a lease in Redis, `wire::home_key`) that runs its session; a member that reached
//! another node joins through it: that node (an edge) forwards the member's join and
//! messages to the home, and the home sends the room's frames to each edge once.
//!
//! Placement: the first node asked for a room with no home takes the lease and runs the
//! session; it keeps the lease while the session lives (renewed every second, 5 s long,
//! see `keeper::homes`). A home that dies loses it within 5 s; the edges then close the
//! room's sockets, the clients reconnect, and the first join places the room again. A
//! join already sent to a home that died is placed again once the lease lapses.

use std::time::Duration;

use super::edge::Expect;
use super::wire::{Refusal, Up};
use super::{Cluster, ClusterError};
use crate::ids::{ConnId, NodeId, RoomId, UserId};
use crate::model::Room;
use crate::rooms::member_event::MemberEvent;
use crate::rooms::outbound::OutboundTx;
use crate::rooms::remote::Sink;
use crate::rooms::session::MemberInit;
use crate::rooms::{JoinError, LiveRooms};

/// Longest an edge waits for the home to take a join. Generous: a join through this
/// node waits for its session as long as it takes, and a busy home (100,000 members
/// joining on two cores took up to 4 s) is slow, not gone; a dead one's lease lapses in 5 s.
const JOIN_WAIT: Duration = Duration::from_secs(15);

/// Where a room's session runs, as the home lease says.
pub(super) enum Place {
    Here,
    /// On this node, whose lease value is `holder`.
    Home {
        node: NodeId,
        holder: String,
    },
}

/// A member in a room's session, through its socket on this node.
pub enum Membership {
    Local {
        live: LiveRooms,
        room: RoomId,
        conn: ConnId,
    },
    Remote {
        cluster: Cluster,
        home: NodeId,
        room: RoomId,
        conn: ConnId,
    },
}

impl Membership {
    /// What happened on the member's socket, for its session, here or at the home.
    pub async fn event(&self, user: UserId, event: MemberEvent) {
        match self {
            Self::Local { live, room, conn } => live.member_event(room, user, *conn, event).await,
            Self::Remote {
                cluster,
                home,
                room,
                conn,
            } => {
                if event == MemberEvent::Dropped {
                    cluster.0.edges.socket_gone(room, home, *conn);
                }
                let conn = *conn;
                cluster.up(home, room, Up::Member { user, conn, event });
            }
        }
    }
}

impl Cluster {
    /// Joins `init` to `room`'s session: here when this node is (or becomes) its home,
    /// else through its home. Frames for the member go to `tx`. Without Redis, or when
    /// Redis cannot place the room, the session is this node's own.
    pub async fn join_room(
        &self,
        room: &Room,
        init: MemberInit,
        tx: OutboundTx,
        resume: Option<String>,
    ) -> Result<Membership, JoinError> {
        let mut tx = tx;
        // A home that is just handing the room over answers `Moved`: place it again.
        for attempt in 0..3 {
            let (node, holder) = match self.place(&room.id, attempt == 0).await {
                Place::Here => return self.join_here(room, init, tx, resume).await,
                Place::Home { node, holder } => (node, holder),
            };
            let edge_conn = self.0.live.next_conn_id();
            let answer = self.0.edges.expect(Expect {
                edge_conn,
                room: room.id.clone(),
                home: node.clone(),
                holder,
                user: init.user.clone(),
                tx,
            });
            let join = Up::Join {
                edge_conn,
                room: Box::new(room.clone()),
                init: init.clone(),
                resume: resume.clone(),
            };
            self.up(&node, &room.id, join);
            // A home that died answers nothing: once its lease lapses (within 5 s), the
            // keeper's check of this node's homes answers the join `Moved`
            // (`Edges::home_lost`) and it is placed again, well within `JOIN_WAIT`.
            match tokio::time::timeout(JOIN_WAIT, answer).await {
                Ok(Ok(Ok(conn))) => {
                    return Ok(Membership::Remote {
                        cluster: self.clone(),
                        home: node,
                        room: room.id.clone(),
                        conn,
                    })
                }
                Ok(Ok(Err((Refusal::Moved, back)))) => tx = back,
                Ok(Ok(Err((Refusal::RoomFull, _)))) => return Err(JoinError::RoomFull),
                Ok(Ok(Err((Refusal::Busy, _)))) => return Err(JoinError::Busy),
                Ok(Err(_)) | Err(_) => {
                    self.0.edges.forget_join(edge_conn);
                    tracing::warn!(room = %room.id, home = %node, "the room's home node did not take a join in {} s", JOIN_WAIT.as_secs());
                    return Err(JoinError::Unanswered);
                }
            }
        }
        Err(JoinError::Busy)
    }

    async fn join_here(
        &self,
        room: &Room,
        init: MemberInit,
        tx: OutboundTx,
        resume: Option<String>,
    ) -> Result<Membership, JoinError> {
        let live = &self.0.live;
        let conn = live.next_conn_id();
        live.join(room, init, conn, Sink::Local(tx), resume).await?;
        Ok(Membership::Local {
            live: live.clone(),
            room: room.id.clone(),
            conn,
        })
    }

    /// Where `room`'s session runs: a session here, or (when `cached`) a home this node
    /// already forwards to, is taken as it is; else the lease decides (taken when free).
    pub(super) async fn place(&self, room: &RoomId, cached: bool) -> Place {
        let Some(bus) = self.bus() else {
            return Place::Here;
        };
        if self.0.live.has_session(room) {
            return Place::Here;
        }
        if let Some((node, holder)) = self.0.edges.home_of(room).filter(|_| cached) {
            return Place::Home { node, holder };
        }
        match bus.place(room).await {
            Ok(Some((node, holder))) => Place::Home { node, holder },
            Ok(None) => Place::Here,
            Err(e) => {
                // Nothing can reach another node without Redis: serve the room here.
                log_unplaced(room, &e);
                Place::Here
            }
        }
    }

    /// Queues `up` for `room`'s home (in order, with everything else this node sends).
    pub(super) fn up(&self, home: &NodeId, room: &RoomId, up: Up) {
        if let Some(bus) = self.bus() {
            bus.send_up(home, room, up);
        }
    }
}

fn log_unplaced(room: &RoomId, e: &ClusterError) {
    tracing::warn!(%room, "cannot find the room's home node ({e}); its session runs here");
}
