//! This node as an edge of rooms homed on other nodes: the sockets of its members in
//! those rooms, by room, and the joins waiting for their home's answer.
//!
//! A home sends one copy of each frame per edge node; here it is handed to the room's
//! local sockets by a `Delivery` of its own, which keeps its own lagging marks (a full
//! queue is reported back to the home, which later sends that member a snapshot).
//! Media commands for those members go to the room's relay on this node, made with the
//! first of them (see `rooms::relays`); it closes when the room has neither a socket
//! nor a member receiving here (a member whose socket dropped keeps receiving until the
//! home removes it), or when the room's home is gone.
//! When a room's home is gone (its lease lapsed or passed to another node), the room's
//! sockets here are closed without `left`: SDKs reconnect, and the room is placed again.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use bytes::Bytes;
use tokio::sync::oneshot;

use super::wire::{Refusal, Up};
use crate::ids::{ConnId, NodeId, RoomId, UserId};
use crate::rooms::delivery::Delivery;
use crate::rooms::member_event::MemberEvent;
use crate::rooms::outbound::OutboundTx;
use crate::rooms::remote::FrameKind;
use crate::sfu::port::{MediaEvent, RelayCmd, RelayEvent, RoomMedia};

/// A home's answer to a join: the session's number for the member, or why not (with
/// the member's queue back, to join elsewhere).
pub(super) type JoinAnswer = Result<ConnId, (Refusal, OutboundTx)>;

/// What must go back to a room's home after a frame was handed out.
pub(super) type Replies = Vec<(NodeId, RoomId, Up)>;

struct RemoteRoom {
    home: NodeId,
    /// The home lease's value when this node placed the room (`<node>#<instance>`).
    holder: String,
    delivery: Delivery,
    /// The session's relay on this node, from the first media command for its members
    /// here (see `rooms::relays`); closed when the room leaves this node.
    media: Option<Box<dyn RoomMedia>>,
    /// Members receiving on that relay, from their subscription to their removal by the
    /// home: a member whose socket dropped keeps its connections while the session
    /// waits for it to resume (its browser keeps them too), wherever it resumes.
    receiving: HashSet<UserId>,
}

impl RemoteRoom {
    /// Nothing here for it any more: no socket, no one receiving.
    fn idle(&self) -> bool {
        self.delivery.is_empty() && self.receiving.is_empty()
    }
}

/// Makes the session's relay on this node (`None`: this node relays no media).
pub(super) type MakeRelay<'a> = &'a dyn Fn() -> Option<Box<dyn RoomMedia>>;

struct Joining {
    room: RoomId,
    home: NodeId,
    holder: String,
    user: UserId,
    tx: OutboundTx,
    reply: oneshot::Sender<JoinAnswer>,
}

#[derive(Default)]
struct State {
    rooms: HashMap<RoomId, RemoteRoom>,
    /// By the number this node gave the join.
    joining: HashMap<ConnId, Joining>,
}

/// A std Mutex: each use is a few map operations and non-blocking queue offers, never
/// an await, and frames for every room pass through one receive task anyway.
#[derive(Default)]
pub(super) struct Edges(Mutex<State>);

pub(super) struct Expect {
    pub edge_conn: ConnId,
    pub room: RoomId,
    pub home: NodeId,
    pub holder: String,
    pub user: UserId,
    pub tx: OutboundTx,
}

impl Edges {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The home this node already forwards `room` to, with its lease value.
    pub fn home_of(&self, room: &RoomId) -> Option<(NodeId, String)> {
        self.lock()
            .rooms
            .get(room)
            .map(|r| (r.home.clone(), r.holder.clone()))
    }

    /// Waits for the home's answer to the join `e.edge_conn`.
    pub fn expect(&self, e: Expect) -> oneshot::Receiver<JoinAnswer> {
        let (reply, answer) = oneshot::channel();
        self.lock().joining.insert(
            e.edge_conn,
            Joining {
                room: e.room,
                home: e.home,
                holder: e.holder,
                user: e.user,
                tx: e.tx,
                reply,
            },
        );
        answer
    }

    /// The join was given up on (no answer in time).
    pub fn forget_join(&self, edge_conn: ConnId) {
        self.lock().joining.remove(&edge_conn);
    }

    pub fn refused(&self, from: &NodeId, edge_conn: ConnId, why: Refusal) {
        let mut s = self.lock();
        if s.joining.get(&edge_conn).is_some_and(|j| &j.home == from) {
            let j = s.joining.remove(&edge_conn).expect("just seen");
            let _ = j.reply.send(Err((why, j.tx)));
        }
    }

    /// A frame from `from` for `room`'s sockets here (or their relay, made by `relay`).
    pub fn frame(
        &self,
        from: &NodeId,
        room: RoomId,
        kind: FrameKind,
        bytes: Bytes,
        relay: MakeRelay,
    ) -> Replies {
        let mut s = self.lock();
        let mut full = vec![];
        let mut replies = vec![];
        if let FrameKind::Joined {
            edge_conn,
            conn,
            user,
        } = kind
        {
            let ours = s
                .joining
                .get(&edge_conn)
                .is_some_and(|j| &j.home == from && j.room == room);
            let Some(j) = ours.then(|| s.joining.remove(&edge_conn)).flatten() else {
                // Given up on: the home must not keep it.
                replies.push((from.clone(), room, dropped(user, conn)));
                return replies;
            };
            let fresh = s.rooms.get(&room).is_none_or(|r| &r.home != from);
            if fresh {
                // A new home: sockets still tied to an old one go (they reconnect).
                if let Some(mut old) = s.rooms.remove(&room) {
                    old.delivery.close_all();
                }
                s.rooms.insert(
                    room.clone(),
                    RemoteRoom {
                        home: j.home.clone(),
                        holder: j.holder.clone(),
                        delivery: Delivery::new(room.clone(), None),
                        media: None,
                        receiving: HashSet::new(),
                    },
                );
            }
            let r = s.rooms.get_mut(&room).expect("inserted");
            r.delivery.add_local(conn, j.user.clone(), j.tx);
            if j.reply.send(Ok(conn)).is_err() {
                r.delivery.remove(conn);
                if r.idle() {
                    s.rooms.remove(&room);
                }
                replies.push((from.clone(), room, dropped(j.user, conn)));
            }
            return replies;
        }
        let Some(r) = s.rooms.get_mut(&room).filter(|r| &r.home == from) else {
            // Stale: from a home this room no longer has here. A subscription is
            // answered, or the home would take the member for receiving here.
            if let FrameKind::Media {
                cmd: RelayCmd::Subscribe { member },
            } = kind
            {
                let relay = RelayEvent::NotReceiving { member };
                let ev = MediaEvent::Relay { relay };
                replies.push((from.clone(), room, Up::Media { ev }));
            }
            return replies;
        };
        match kind {
            FrameKind::Joined { .. } => unreachable!("handled above"),
            FrameKind::Send { conn } => r.delivery.send_bytes(conn, bytes, &mut full),
            FrameKind::Broadcast => r.delivery.broadcast_bytes(bytes, &mut full),
            FrameKind::Resync { conns } => r.delivery.resync_bytes(&conns, bytes, &mut full),
            FrameKind::Close { conn } => r
                .delivery
                .close_bytes(conn, (!bytes.is_empty()).then_some(bytes)),
            FrameKind::Ended => {
                r.delivery.close_all();
                r.receiving.clear();
            }
            FrameKind::Media { cmd } => {
                match &cmd {
                    RelayCmd::Subscribe { member } => {
                        r.receiving.insert(member.clone());
                    }
                    RelayCmd::Remove { member } => {
                        r.receiving.remove(member);
                    }
                    _ => {}
                }
                if r.media.is_none() {
                    r.media = relay();
                }
                if let Some(m) = r.media.as_deref_mut() {
                    apply(m, cmd);
                }
            }
        }
        if r.idle() {
            s.rooms.remove(&room);
        }
        for (user, conn) in full {
            replies.push((
                from.clone(),
                room.clone(),
                Up::Member {
                    user,
                    conn,
                    event: MemberEvent::Lagging,
                },
            ));
        }
        replies
    }

    /// A member's socket here (in `room`, homed on `home`) has gone.
    pub fn socket_gone(&self, room: &RoomId, home: &NodeId, conn: ConnId) {
        let mut s = self.lock();
        if let Some(r) = s.rooms.get_mut(room).filter(|r| &r.home == home) {
            r.delivery.remove(conn);
            if r.idle() {
                s.rooms.remove(room);
            }
        }
    }

    /// Closes every socket here of rooms homed elsewhere (frames to them may have been
    /// lost): their clients reconnect, and resume where the session still holds them.
    pub fn close_all(&self) -> usize {
        let mut s = self.lock();
        let mut n = 0;
        for (_, mut r) in s.rooms.drain() {
            n += r.delivery.len();
            r.delivery.close_all();
        }
        n
    }

    /// Every room homed elsewhere with sockets or joins waiting here, with the home's
    /// lease value each was sent to.
    pub fn rooms(&self) -> Vec<(RoomId, String)> {
        let s = self.lock();
        let mut out: Vec<(RoomId, String)> = (s.rooms.iter())
            .map(|(id, r)| (id.clone(), r.holder.clone()))
            .chain(
                s.joining
                    .values()
                    .map(|j| (j.room.clone(), j.holder.clone())),
            )
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// `room`'s home (lease value `holder`) is gone: its sockets here are closed, so
    /// their clients reconnect and the room is placed again, and the joins waiting for
    /// that home are answered `Moved`, so they place it again at once. The sockets
    /// closed are counted.
    pub fn home_lost(&self, room: &RoomId, holder: &str) -> usize {
        let mut s = self.lock();
        let waiting: Vec<ConnId> = (s.joining.iter())
            .filter(|(_, j)| &j.room == room && j.holder == holder)
            .map(|(c, _)| *c)
            .collect();
        for c in waiting {
            let j = s.joining.remove(&c).expect("just listed");
            let _ = j.reply.send(Err((Refusal::Moved, j.tx)));
        }
        if s.rooms.get(room).is_none_or(|r| r.holder != holder) {
            return 0;
        }
        let mut r = s.rooms.remove(room).expect("just seen");
        let n = r.delivery.len();
        r.delivery.close_all();
        n
    }
}

/// A command of the session's home for its relay here.
fn apply(m: &mut dyn RoomMedia, cmd: RelayCmd) {
    match cmd {
        // Only receiving is done here: publishing is the home's.
        RelayCmd::Signal { member, msg } => m.signal(&member, false, msg),
        RelayCmd::Subscribe { member } => m.subscribe(&member),
        RelayCmd::Viewing {
            viewer,
            owner,
            kind,
            shown,
        } => m.set_viewing(&viewer, &owner, kind, shown),
        RelayCmd::FitVideo {
            viewer,
            owner,
            height,
        } => m.fit_video(&viewer, &owner, height),
        RelayCmd::Remove { member } => m.remove_member(&member),
        RelayCmd::Tracks { tracks } => m.remote_tracks(tracks),
    }
}

/// The member's socket here is gone, for its home.
fn dropped(user: UserId, conn: ConnId) -> Up {
    Up::Member {
        user,
        conn,
        event: MemberEvent::Dropped,
    }
}

impl super::Cluster {
    /// A relay on this node for `room`'s session homed on `home`: what it reports goes
    /// to the home (its track list, for other nodes, is the home's own business).
    pub(super) fn edge_relay(&self, home: &NodeId, room: &RoomId) -> Option<Box<dyn RoomMedia>> {
        let factory = self.0.live.media_factory()?;
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let relay = factory.create(room, tx);
        let node = std::sync::Arc::downgrade(&self.0);
        let (home, room) = (home.clone(), room.clone());
        tokio::spawn(async move {
            while let Some(ev) = rx.recv().await {
                if let MediaEvent::Relay {
                    relay: RelayEvent::Tracks { .. },
                } = ev
                {
                    continue;
                }
                let Some(inner) = node.upgrade() else { return };
                super::Cluster(inner).up(&home, &room, Up::Media { ev });
            }
        });
        Some(relay)
    }
}
