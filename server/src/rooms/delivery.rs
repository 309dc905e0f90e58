//! The driver's side of sending: the session's connections and their queues. A frame is
//! serialized once and its bytes shared by every recipient; a full queue never waits but
//! marks its connection as lagging (skipped by broadcasts until a snapshot catches it
//! up), and the session is told so it can schedule that snapshot.
//!
//! Members whose socket is on another node (`remote::Sink::Edge`) get one copy of each
//! frame per node, through the session's `EdgeTx`. On that node a `Delivery` of the
//! room's local sockets takes the frame (`send_bytes`, `broadcast_bytes`, ...), keeps
//! its own lagging marks and reports full queues back to the home.

use std::collections::HashMap;

use bytes::Bytes;
use tokio::sync::mpsc::error::TrySendError;

use super::outbound::{frame, Outbound, OutboundTx};
use super::remote::{EdgeFrame, EdgeTx, FrameKind, Sink};
use super::session::Output;
use crate::ids::{ConnId, NodeId, RoomId, UserId};
use crate::sfu::port::RelayCmd;

enum To {
    Local(OutboundTx),
    Edge(NodeId),
}

struct Link {
    user: UserId,
    to: To,
    lagging: bool,
}

/// A connection whose queue was full: the session must hear about it.
pub type Full = (UserId, ConnId);

pub struct Delivery {
    room: RoomId,
    links: HashMap<ConnId, Link>,
    /// Where frames for other nodes' members go (unset: this node is alone).
    edges: Option<EdgeTx>,
    /// Members per edge node: a broadcast goes once to each node listed.
    per_edge: HashMap<NodeId, usize>,
    /// Where each member on an edge node is (its connection, its node), for media.
    edge_users: HashMap<UserId, (ConnId, NodeId)>,
}

impl Delivery {
    pub fn new(room: RoomId, edges: Option<EdgeTx>) -> Self {
        Self {
            room,
            links: HashMap::new(),
            edges,
            per_edge: HashMap::new(),
            edge_users: HashMap::new(),
        }
    }

    pub fn add(&mut self, conn: ConnId, user: UserId, sink: Sink) {
        if let Some(old) = self.links.remove(&conn) {
            self.forget(conn, old);
        }
        let to = match sink {
            Sink::Local(tx) => To::Local(tx),
            Sink::Edge { node, edge_conn } => {
                let kind = FrameKind::Joined {
                    edge_conn,
                    conn,
                    user: user.clone(),
                };
                self.to_edge(&node, kind, Bytes::new());
                *self.per_edge.entry(node.clone()).or_default() += 1;
                self.edge_users.insert(user.clone(), (conn, node.clone()));
                To::Edge(node)
            }
        };
        self.links.insert(
            conn,
            Link {
                user,
                to,
                lagging: false,
            },
        );
    }

    /// A socket on this node (the edge side of a room homed elsewhere).
    pub fn add_local(&mut self, conn: ConnId, user: UserId, tx: OutboundTx) {
        self.add(conn, user, Sink::Local(tx));
    }

    /// Forgets a connection without closing it (its socket has gone).
    pub fn remove(&mut self, conn: ConnId) {
        if let Some(old) = self.links.remove(&conn) {
            self.forget(conn, old);
        }
    }

    /// Whether `user` has a connection in the session (a scan: for rare events only).
    pub fn has_user(&self, user: &UserId) -> bool {
        self.links.values().any(|l| &l.user == user)
    }

    /// The node a member's socket is on, when it is another node.
    pub fn edge_of(&self, user: &UserId) -> Option<&NodeId> {
        self.edge_users.get(user).map(|(_, n)| n)
    }

    /// The other nodes with members.
    pub fn edge_nodes(&self) -> impl Iterator<Item = &NodeId> {
        self.per_edge.keys()
    }

    /// A command for the session's relay on `node` (see `relays`).
    pub fn relay_cmd(&self, node: &NodeId, cmd: RelayCmd) {
        self.to_edge(node, FrameKind::Media { cmd }, Bytes::new());
    }

    pub fn is_empty(&self) -> bool {
        self.links.is_empty()
    }

    pub fn len(&self) -> usize {
        self.links.len()
    }

    fn forget(&mut self, conn: ConnId, link: Link) {
        if let To::Edge(node) = link.to {
            if self
                .edge_users
                .get(&link.user)
                .is_some_and(|(c, _)| *c == conn)
            {
                self.edge_users.remove(&link.user);
            }
            if let Some(n) = self.per_edge.get_mut(&node) {
                *n -= 1;
                if *n == 0 {
                    self.per_edge.remove(&node);
                }
            }
        }
    }

    fn to_edge(&self, node: &NodeId, kind: FrameKind, bytes: Bytes) {
        if let Some(tx) = &self.edges {
            let _ = tx.send(EdgeFrame {
                to: node.clone(),
                room: self.room.clone(),
                kind,
                bytes,
            });
        }
    }

    /// Carries out a frame output (`Send`, `Broadcast`, `Resync`, `Close`); others are
    /// not for this part and are ignored. Connections found full are pushed to `full`.
    pub fn deliver(&mut self, out: Output, full: &mut Vec<Full>) {
        match out {
            Output::Send { to, msg } => self.send_bytes(to, frame(&msg), full),
            Output::Broadcast(msg) => self.broadcast_bytes(frame(&msg), full),
            Output::Resync { to, msg } => self.resync_bytes(&to, frame(&msg), full),
            Output::Close { conn, last } => self.close_bytes(conn, last.map(|m| frame(&m))),
            Output::Media(_) | Output::Event(_) | Output::SaveRoomAttributes(_) | Output::Ended => {
            }
        }
    }

    pub fn send_bytes(&mut self, to: ConnId, bytes: Bytes, full: &mut Vec<Full>) {
        let Some(link) = self.links.get_mut(&to) else {
            return;
        };
        match &link.to {
            To::Edge(node) => {
                let node = node.clone();
                self.to_edge(&node, FrameKind::Send { conn: to }, bytes);
            }
            To::Local(_) => offer(to, link, Outbound::Text(bytes), full),
        }
    }

    pub fn broadcast_bytes(&mut self, bytes: Bytes, full: &mut Vec<Full>) {
        for (conn, link) in self.links.iter_mut().filter(|(_, l)| !l.lagging) {
            if matches!(link.to, To::Local(_)) {
                offer(*conn, link, Outbound::Text(bytes.clone()), full);
            }
        }
        for node in self.per_edge.keys() {
            self.to_edge(node, FrameKind::Broadcast, bytes.clone());
        }
    }

    pub fn resync_bytes(&mut self, to: &[ConnId], bytes: Bytes, full: &mut Vec<Full>) {
        let mut remote: HashMap<NodeId, Vec<ConnId>> = HashMap::new();
        for conn in to {
            let Some(link) = self.links.get_mut(conn) else {
                continue;
            };
            match &link.to {
                To::Edge(node) => remote.entry(node.clone()).or_default().push(*conn),
                To::Local(_) => {
                    link.lagging = false;
                    offer(*conn, link, Outbound::Text(bytes.clone()), full);
                }
            }
        }
        for (node, conns) in remote {
            self.to_edge(&node, FrameKind::Resync { conns }, bytes.clone());
        }
    }

    /// Sends `last` (if any), then closes the connection.
    pub fn close_bytes(&mut self, conn: ConnId, last: Option<Bytes>) {
        let Some(link) = self.links.remove(&conn) else {
            return;
        };
        match &link.to {
            To::Edge(node) => {
                let kind = FrameKind::Close { conn };
                self.to_edge(node, kind, last.unwrap_or_default());
            }
            To::Local(tx) => {
                // Best effort: a final frame then close. A full queue just closes
                // (dropping the sender ends the writer after what is queued).
                if let Some(bytes) = last {
                    let _ = tx.try_send(Outbound::Text(bytes));
                }
                let _ = tx.try_send(Outbound::Close);
            }
        }
        self.forget(conn, link);
    }

    /// The members whose socket is on `node`, forgotten: that node is gone, or was
    /// taken for gone. Their sockets there (if any) are told to close, so a node that
    /// was only out of reach does not keep members the session no longer has.
    pub fn drop_edge(&mut self, node: &NodeId) -> Vec<Full> {
        let gone: Vec<ConnId> = self
            .links
            .iter()
            .filter(|(_, l)| matches!(&l.to, To::Edge(n) if n == node))
            .map(|(c, _)| *c)
            .collect();
        let mut out = vec![];
        for conn in gone {
            if let Some(link) = self.links.remove(&conn) {
                out.push((link.user.clone(), conn));
                self.to_edge(node, FrameKind::Close { conn }, Bytes::new());
                self.forget(conn, link);
            }
        }
        out
    }

    /// Closes every connection (the session has ended).
    pub fn close_all(&mut self) {
        for node in self.per_edge.keys() {
            self.to_edge(node, FrameKind::Ended, Bytes::new());
        }
        self.per_edge.clear();
        self.edge_users.clear();
        for (_, link) in self.links.drain() {
            if let To::Local(tx) = link.to {
                let _ = tx.try_send(Outbound::Close);
            }
        }
    }
}

fn offer(conn: ConnId, link: &mut Link, item: Outbound, full: &mut Vec<Full>) {
    let To::Local(tx) = &link.to else {
        return;
    };
    match tx.try_send(item) {
        Ok(()) => {}
        Err(TrySendError::Full(_)) => {
            if !link.lagging {
                link.lagging = true;
                full.push((link.user.clone(), conn));
            }
        }
        // The socket has gone; its reader reports the drop to the session.
        Err(TrySendError::Closed(_)) => {}
    }
}

#[cfg(test)]
mod tests {
    use convene_protocol::signal::ServerMessage;
    use tokio::sync::mpsc;

    use super::*;

    fn node(n: &str) -> NodeId {
        NodeId::parse(n).unwrap()
    }

    fn user(u: &str) -> UserId {
        UserId::parse(u).unwrap()
    }

    #[test]
    fn a_broadcast_goes_once_to_each_edge_node_and_to_each_local_socket() {
        let (edges, mut out) = mpsc::unbounded_channel();
        let mut d = Delivery::new(RoomId::parse("r").unwrap(), Some(edges));
        let (tx, mut local) = mpsc::channel(8);
        d.add(ConnId(1), user("here"), Sink::Local(tx));
        for (i, n) in [("e1", "n1"), ("e2", "n1"), ("e3", "n1"), ("e4", "n2")]
            .iter()
            .enumerate()
        {
            let sink = Sink::Edge {
                node: node(n.1),
                edge_conn: ConnId(100 + i as u64),
            };
            d.add(ConnId(10 + i as u64), user(n.0), sink);
        }
        let mut joined = 0;
        while let Ok(f) = out.try_recv() {
            assert!(matches!(f.kind, FrameKind::Joined { .. }), "{f:?}");
            joined += 1;
        }
        assert_eq!(joined, 4);

        let mut full = vec![];
        d.deliver(
            Output::Broadcast(ServerMessage::Pong { ts: Some(1.0) }),
            &mut full,
        );
        let mut to = vec![];
        while let Ok(f) = out.try_recv() {
            assert_eq!(f.kind, FrameKind::Broadcast);
            assert!(!f.bytes.is_empty());
            to.push(f.to.to_string());
        }
        to.sort();
        assert_eq!(to, ["n1", "n2"], "one copy per edge node, not per member");
        assert!(local.try_recv().is_ok(), "the local socket has its copy");

        // A resync for members on one node goes there once, with all of them.
        let msg = ServerMessage::Pong { ts: Some(2.0) };
        d.deliver(
            Output::Resync {
                to: vec![ConnId(10), ConnId(12), ConnId(13)],
                msg,
            },
            &mut full,
        );
        let mut kinds = vec![];
        while let Ok(f) = out.try_recv() {
            kinds.push((f.to.to_string(), f.kind));
        }
        kinds.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            kinds,
            [
                (
                    "n1".to_string(),
                    FrameKind::Resync {
                        conns: vec![ConnId(10), ConnId(12)]
                    }
                ),
                (
                    "n2".to_string(),
                    FrameKind::Resync {
                        conns: vec![ConnId(13)]
                    }
                ),
            ]
        );

        // Once n2's only member is gone, broadcasts skip n2; a lost node's members
        // are handed back as dropped.
        d.deliver(
            Output::Close {
                conn: ConnId(13),
                last: None,
            },
            &mut full,
        );
        assert!(matches!(
            out.try_recv().unwrap().kind,
            FrameKind::Close { .. }
        ));
        d.deliver(
            Output::Broadcast(ServerMessage::Pong { ts: Some(3.0) }),
            &mut full,
        );
        assert_eq!(out.try_recv().unwrap().to.to_string(), "n1");
        assert!(out.try_recv().is_err());
        let mut dropped: Vec<u64> = d.drop_edge(&node("n1")).iter().map(|(_, c)| c.0).collect();
        dropped.sort();
        assert_eq!(dropped, [10, 11, 12]);
        assert_eq!(d.len(), 1);
        assert!(full.is_empty());
    }
}
