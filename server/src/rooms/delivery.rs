//! The driver's side of sending: the session's connections and their queues. A frame is
//! serialized once and its bytes shared by every recipient; a full queue never waits but
//! marks its connection as lagging (skipped by broadcasts until a snapshot catches it
//! up), and the session is told so it can schedule that snapshot.

use std::collections::HashMap;

use tokio::sync::mpsc::error::TrySendError;

use super::outbound::{frame, Outbound, OutboundTx};
use super::session::Output;
use crate::ids::{ConnId, UserId};

struct Link {
    user: UserId,
    tx: OutboundTx,
    lagging: bool,
}

/// A connection whose queue was full: the session must hear about it.
pub type Full = (UserId, ConnId);

#[derive(Default)]
pub struct Delivery {
    links: HashMap<ConnId, Link>,
}

impl Delivery {
    pub fn add(&mut self, conn: ConnId, user: UserId, tx: OutboundTx) {
        self.links.insert(
            conn,
            Link {
                user,
                tx,
                lagging: false,
            },
        );
    }

    /// Carries out a frame output (`Send`, `Broadcast`, `Resync`, `Close`); others are
    /// not for this part and are ignored. Connections found full are pushed to `full`.
    pub fn deliver(&mut self, out: Output, full: &mut Vec<Full>) {
        match out {
            Output::Send { to, msg } => {
                if let Some(link) = self.links.get_mut(&to) {
                    offer(to, link, Outbound::Text(frame(&msg)), full);
                }
            }
            Output::Broadcast(msg) => {
                let bytes = frame(&msg);
                for (conn, link) in self.links.iter_mut().filter(|(_, l)| !l.lagging) {
                    offer(*conn, link, Outbound::Text(bytes.clone()), full);
                }
            }
            Output::Resync { to, msg } => {
                let bytes = frame(&msg);
                for conn in to {
                    if let Some(link) = self.links.get_mut(&conn) {
                        link.lagging = false;
                        offer(conn, link, Outbound::Text(bytes.clone()), full);
                    }
                }
            }
            Output::Close { conn, last } => {
                if let Some(link) = self.links.remove(&conn) {
                    // Best effort: a final frame then close. A full queue just closes
                    // (dropping the sender ends the writer after what is queued).
                    if let Some(msg) = last {
                        let _ = link.tx.try_send(Outbound::Text(frame(&msg)));
                    }
                    let _ = link.tx.try_send(Outbound::Close);
                }
            }
            Output::Media(_) | Output::Event(_) | Output::SaveRoomAttributes(_) | Output::Ended => {
            }
        }
    }

    /// Closes every connection (the session has ended).
    pub fn close_all(&mut self) {
        for (_, link) in self.links.drain() {
            let _ = link.tx.try_send(Outbound::Close);
        }
    }
}

fn offer(conn: ConnId, link: &mut Link, item: Outbound, full: &mut Vec<Full>) {
    match link.tx.try_send(item) {
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
