//! The thin driver of one session: it owns the channels, the member queues (through
//! `Delivery`) and the session's media relay, feeds the session core each command with
//! the time, carries out what the core asks, and sleeps until the core's next deadline.
//! Every rule and timer is in the core (`session/`); this file only does I/O.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use convene_protocol::signal::{Participant, SeatInfo};
use tokio::sync::{mpsc, oneshot};

use super::delivery::Delivery;
use super::member_event::MemberEvent;
use super::relays::Relays;
use super::remote::{EdgeTx, Sink};
use super::session::{Answer, Input, JoinOutcome, JoinRefusal, MemberInit, Output, Session};
use crate::clock::{Clock, Now};
use crate::ids::{ConnId, NodeId, RoomId, SessionId, UserId};
use crate::model::event::EventsTx;
use crate::model::{Room, RosterChange};
use crate::sfu::port::{MediaEvent, MediaFactory};
use crate::store::RoomStore;

/// What a driver is asked to do.
pub(super) enum Command {
    Join {
        init: MemberInit,
        conn: ConnId,
        sink: Sink,
        resume: Option<String>,
        reply: oneshot::Sender<JoinReply>,
    },
    Member {
        user: UserId,
        conn: ConnId,
        event: MemberEvent,
    },
    /// Edge node gone: its members' sockets count as dropped.
    EdgeLost(NodeId),
    /// From the session's relay on node `node` (see `relays`).
    EdgeMedia {
        node: NodeId,
        ev: MediaEvent,
    },
    /// The room's home lease is another node's now (see `Input::HandOver`).
    HandOver,
    RoomUpdated(Box<Room>),
    RoomDeleted,
    Roster(Vec<RosterChange>),
    TokenRevoked(String),
    /// Answers with the removed member's token id, so the caller can revoke it.
    Kick {
        user: UserId,
        reply: oneshot::Sender<Option<String>>,
    },
    Members(oneshot::Sender<Vec<Participant>>),
    Seats(oneshot::Sender<Vec<SeatInfo>>),
    /// Answers with who was taken off the seat.
    Unseat {
        index: u32,
        reply: oneshot::Sender<Option<UserId>>,
    },
    Shutdown,
}

/// The driver's answer to a join.
pub(super) enum JoinReply {
    Joined(JoinOutcome),
    Full,
    /// The session ended as the join arrived: here is the sink back, join again.
    Retry(Sink),
}

/// What the registry can read of a running session without asking its driver.
#[derive(Debug, Default)]
pub(super) struct Gauges {
    pub members: AtomicUsize,
    pub audience: AtomicUsize,
    pub seats_taken: AtomicUsize,
    pub room_version: AtomicU64,
}

pub(super) struct Driver {
    pub clock: Arc<dyn Clock>,
    pub media: Option<Arc<dyn MediaFactory>>,
    /// Read by the registry: members joined now, the room version applied.
    pub gauges: Arc<Gauges>,
    /// Where the session's events go (for webhooks).
    pub events: Option<EventsTx>,
    /// Where room attributes set in the call are stored.
    pub store: Option<Arc<dyn RoomStore>>,
    /// This session's own admin queue: the stored room comes back on it.
    pub admin: mpsc::UnboundedSender<Command>,
    /// Where frames for members on other nodes go (unset: this node is alone).
    pub edges: Option<EdgeTx>,
}

/// A session that has ended, with what was still queued for it.
pub(super) struct Ended {
    pub room: RoomId,
    session: SessionId,
    rx: mpsc::Receiver<Command>,
    admin_rx: mpsc::UnboundedReceiver<Command>,
    delivery: Delivery,
    relays: Relays,
    gauges: Arc<Gauges>,
}

impl Driver {
    /// Runs the session until it ends; the caller unregisters it, then `finish`es.
    pub async fn run(
        self,
        mut session: Session,
        mut rx: mpsc::Receiver<Command>,
        mut admin_rx: mpsc::UnboundedReceiver<Command>,
    ) -> Ended {
        let clock = self.clock.clone();
        let (media_tx, mut media_rx) = mpsc::unbounded_channel();
        let mut relays = Relays::new(
            self.media
                .as_ref()
                .map(|f| f.create(&session.room().id, media_tx)),
        );
        let mut delivery = Delivery::new(session.room().id.clone(), self.edges.clone());
        loop {
            let deadline = session.poll_timeout().map(tokio::time::Instant::from_std);
            // Biased: commands before timers, so a join queued just as the destroy
            // delay runs out is served rather than refused.
            tokio::select! {
                biased;
                Some(cmd) = admin_rx.recv() => {
                    let now = Now::read(clock.as_ref());
                    command(&mut session, &mut delivery, &mut relays, cmd, now);
                }
                cmd = rx.recv() => match cmd {
                    Some(cmd) => {
                        let now = Now::read(clock.as_ref());
                        command(&mut session, &mut delivery, &mut relays, cmd, now)
                    }
                    None => break,
                },
                Some(ev) = media_rx.recv() => {
                    if let Some(ev) = relays.home_event(&delivery, ev) {
                        session.handle(Input::Media(ev), Now::read(clock.as_ref()));
                    }
                }
                _ = sleep_until(deadline) => session.handle_timeout(Now::read(clock.as_ref())),
            }
            carry_out(
                &mut session,
                &mut delivery,
                &mut relays,
                &self,
                clock.as_ref(),
            );
            self.gauges.members.store(session.len(), Ordering::Relaxed);
            self.gauges
                .audience
                .store(session.audience_count() as usize, Ordering::Relaxed);
            self.gauges
                .seats_taken
                .store(session.seats_taken(), Ordering::Relaxed);
            self.gauges
                .room_version
                .store(session.room().version, Ordering::Relaxed);
            if session.is_ended() {
                break;
            }
        }
        tracing::info!(room = %session.room().id, session = %session.id(), "session ended");
        Ended {
            room: session.room().id.clone(),
            session: session.id().clone(),
            rx,
            admin_rx,
            delivery,
            relays,
            gauges: self.gauges,
        }
    }
}

impl Ended {
    /// Answers what was queued (joins are told to retry, and start a new session),
    /// closes the members' queues and the media relay.
    pub fn finish(mut self) {
        self.rx.close();
        self.admin_rx.close();
        while let Ok(cmd) = self.rx.try_recv().or_else(|_| self.admin_rx.try_recv()) {
            match cmd {
                Command::Join { reply, sink, .. } => {
                    let _ = reply.send(JoinReply::Retry(sink));
                }
                Command::Kick { reply, .. } => {
                    let _ = reply.send(None);
                }
                Command::Members(reply) => {
                    let _ = reply.send(vec![]);
                }
                Command::Seats(reply) => {
                    let _ = reply.send(vec![]);
                }
                Command::Unseat { reply, .. } => {
                    let _ = reply.send(None);
                }
                _ => {}
            }
        }
        self.delivery.close_all();
        self.relays.close();
        self.gauges.members.store(0, Ordering::Relaxed);
        tracing::debug!(room = %self.room, session = %self.session, "session released");
    }
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

fn command(
    session: &mut Session,
    delivery: &mut Delivery,
    relays: &mut Relays,
    cmd: Command,
    now: Now,
) {
    let input = match cmd {
        Command::Join {
            init,
            conn,
            sink,
            resume,
            reply,
        } => {
            let user = init.user.clone();
            let answer = session.handle(Input::Join { init, conn, resume }, now);
            let result = match answer {
                Answer::Join(Ok(outcome)) => {
                    delivery.add(conn, user, sink);
                    JoinReply::Joined(outcome)
                }
                Answer::Join(Err(JoinRefusal::RoomFull)) => JoinReply::Full,
                _ => JoinReply::Retry(sink),
            };
            let _ = reply.send(result);
            return;
        }
        Command::Kick { user, reply } => {
            let jti = match session.handle(Input::Kick(user), now) {
                Answer::Kicked(jti) => jti,
                _ => None,
            };
            let _ = reply.send(jti);
            return;
        }
        Command::Members(reply) => {
            let _ = reply.send(session.members());
            return;
        }
        Command::Seats(reply) => {
            let _ = reply.send(session.seats());
            return;
        }
        Command::Unseat { index, reply } => {
            let who = match session.handle(Input::Unseat(index), now) {
                Answer::Unseated(who) => who,
                _ => None,
            };
            let _ = reply.send(who);
            return;
        }
        Command::Member { user, conn, event } => match event {
            MemberEvent::Client { msg } => Input::Client {
                user,
                conn,
                msg: *msg,
            },
            MemberEvent::Dropped => Input::Dropped { user, conn },
            MemberEvent::Flooded => Input::Flooded { user, conn },
            MemberEvent::Lagging => Input::QueueFull { user, conn },
        },
        Command::EdgeLost(node) => {
            relays.node_gone(delivery, &node);
            for (user, conn) in delivery.drop_edge(&node) {
                session.handle(Input::Dropped { user, conn }, now);
            }
            return;
        }
        Command::EdgeMedia { node, ev } => match relays.edge_event(delivery, node, ev) {
            Some(ev) => Input::Media(ev),
            None => return,
        },
        Command::RoomUpdated(room) => Input::RoomUpdated(room),
        Command::RoomDeleted => Input::RoomDeleted,
        Command::Roster(changes) => Input::Roster(changes),
        Command::TokenRevoked(jti) => Input::TokenRevoked(jti),
        Command::Shutdown => Input::Shutdown,
        Command::HandOver => Input::HandOver,
    };
    session.handle(input, now);
}

/// Drains the session's outputs: frames to the member queues, commands to the relay.
/// Queues found full are reported back, which may produce more outputs.
fn carry_out(
    session: &mut Session,
    delivery: &mut Delivery,
    relays: &mut Relays,
    driver: &Driver,
    clock: &dyn Clock,
) {
    loop {
        let mut full = vec![];
        while let Some(out) = session.poll_output() {
            match out {
                Output::Media(cmd) => relays.command(delivery, cmd),
                Output::Event(ev) => {
                    if let Some(tx) = &driver.events {
                        let _ = tx.send(ev);
                    }
                }
                Output::SaveRoomAttributes(changes) => {
                    save_attributes(driver, session.room().id.clone(), changes)
                }
                Output::Ended => {}
                frame => delivery.deliver(frame, &mut full),
            }
        }
        if full.is_empty() {
            return;
        }
        let now = Now::read(clock);
        for (user, conn) in full {
            session.handle(Input::QueueFull { user, conn }, now);
        }
    }
}

/// Stores attributes a presenter set, off the session's task; the stored room comes
/// back on the session's admin queue (and goes to webhooks as `room.updated`).
fn save_attributes(driver: &Driver, room: RoomId, changes: BTreeMap<String, Option<String>>) {
    let Some(store) = driver.store.clone() else {
        return;
    };
    let back = driver.admin.clone();
    tokio::spawn(async move {
        let edit = Box::new(move |r: &mut crate::model::Room| {
            for (k, v) in changes {
                match v {
                    Some(v) => r.attributes.insert(k, v),
                    None => r.attributes.remove(&k),
                };
            }
            crate::rooms::settings::check_attributes(&r.attributes)
        });
        match store.update_room(&room, None, edit).await {
            Ok(stored) => {
                let _ = back.send(Command::RoomUpdated(Box::new(stored)));
            }
            Err(e) => tracing::warn!(%room, "cannot store room attributes: {e}"),
        }
    });
}
