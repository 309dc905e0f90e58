//! The thin driver of one session: it owns the channels, the member queues (through
//! `Delivery`) and the session's media relay, feeds the session core each command with
//! the time, carries out what the core asks, and sleeps until the core's next deadline.
//! Every rule and timer is in the core (`session/`); this file only does I/O.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use convene_protocol::signal::{ClientMessage, Participant};
use tokio::sync::{mpsc, oneshot};

use super::delivery::Delivery;
use super::outbound::OutboundTx;
use super::session::{
    Answer, Input, JoinOutcome, JoinRefusal, MediaCommand, MemberInit, Output, Session,
};
use crate::clock::{Clock, Now};
use crate::ids::{ConnId, RoomId, SessionId, UserId};
use crate::model::event::EventsTx;
use crate::model::{Room, RosterChange};
use crate::sfu::port::{MediaFactory, RoomMedia};

/// What a driver is asked to do.
pub(super) enum Command {
    Join {
        init: MemberInit,
        conn: ConnId,
        tx: OutboundTx,
        resume: Option<String>,
        reply: oneshot::Sender<JoinReply>,
    },
    Client {
        user: UserId,
        conn: ConnId,
        msg: ClientMessage,
    },
    Dropped {
        user: UserId,
        conn: ConnId,
    },
    Flooded {
        user: UserId,
        conn: ConnId,
    },
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
    Shutdown,
}

/// The driver's answer to a join.
pub(super) enum JoinReply {
    Joined(JoinOutcome),
    Full,
    /// The session ended as the join arrived: here is the queue back, join again.
    Retry(OutboundTx),
}

/// What the registry can read of a running session without asking its driver.
#[derive(Debug, Default)]
pub(super) struct Gauges {
    pub members: AtomicUsize,
    pub room_version: AtomicU64,
}

pub(super) struct Driver {
    pub clock: Arc<dyn Clock>,
    pub media: Option<Arc<dyn MediaFactory>>,
    /// Read by the registry: members joined now, the room version applied.
    pub gauges: Arc<Gauges>,
    /// Where the session's events go (for webhooks).
    pub events: Option<EventsTx>,
}

/// A session that has ended, with what was still queued for it.
pub(super) struct Ended {
    pub room: RoomId,
    session: SessionId,
    rx: mpsc::Receiver<Command>,
    admin_rx: mpsc::UnboundedReceiver<Command>,
    delivery: Delivery,
    media: Option<Box<dyn RoomMedia>>,
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
        let mut media: Option<Box<dyn RoomMedia>> = self
            .media
            .as_ref()
            .map(|f| f.create(&session.room().id, media_tx));
        let mut delivery = Delivery::default();
        loop {
            let deadline = session.poll_timeout().map(tokio::time::Instant::from_std);
            // Biased: commands before timers, so a join queued just as the destroy
            // delay runs out is served rather than refused.
            tokio::select! {
                biased;
                Some(cmd) = admin_rx.recv() => {
                    command(&mut session, &mut delivery, cmd, Now::read(clock.as_ref()));
                }
                cmd = rx.recv() => match cmd {
                    Some(cmd) => command(&mut session, &mut delivery, cmd, Now::read(clock.as_ref())),
                    None => break,
                },
                Some(ev) = media_rx.recv() => {
                    session.handle(Input::Media(ev), Now::read(clock.as_ref()));
                }
                _ = sleep_until(deadline) => session.handle_timeout(Now::read(clock.as_ref())),
            }
            carry_out(
                &mut session,
                &mut delivery,
                media.as_deref_mut(),
                self.events.as_ref(),
                clock.as_ref(),
            );
            self.gauges.members.store(session.len(), Ordering::Relaxed);
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
            media,
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
                Command::Join { reply, tx, .. } => {
                    let _ = reply.send(JoinReply::Retry(tx));
                }
                Command::Kick { reply, .. } => {
                    let _ = reply.send(None);
                }
                Command::Members(reply) => {
                    let _ = reply.send(vec![]);
                }
                _ => {}
            }
        }
        self.delivery.close_all();
        if let Some(mut m) = self.media.take() {
            m.close();
        }
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

fn command(session: &mut Session, delivery: &mut Delivery, cmd: Command, now: Now) {
    let input = match cmd {
        Command::Join {
            init,
            conn,
            tx,
            resume,
            reply,
        } => {
            let user = init.user.clone();
            let answer = session.handle(Input::Join { init, conn, resume }, now);
            let result = match answer {
                Answer::Join(Ok(outcome)) => {
                    delivery.add(conn, user, tx);
                    JoinReply::Joined(outcome)
                }
                Answer::Join(Err(JoinRefusal::RoomFull)) => JoinReply::Full,
                _ => JoinReply::Retry(tx),
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
        Command::Client { user, conn, msg } => Input::Client { user, conn, msg },
        Command::Dropped { user, conn } => Input::Dropped { user, conn },
        Command::Flooded { user, conn } => Input::Flooded { user, conn },
        Command::RoomUpdated(room) => Input::RoomUpdated(room),
        Command::RoomDeleted => Input::RoomDeleted,
        Command::Roster(changes) => Input::Roster(changes),
        Command::TokenRevoked(jti) => Input::TokenRevoked(jti),
        Command::Shutdown => Input::Shutdown,
    };
    session.handle(input, now);
}

/// Drains the session's outputs: frames to the member queues, commands to the relay.
/// Queues found full are reported back, which may produce more outputs.
fn carry_out(
    session: &mut Session,
    delivery: &mut Delivery,
    mut media: Option<&mut (dyn RoomMedia + 'static)>,
    events: Option<&EventsTx>,
    clock: &dyn Clock,
) {
    loop {
        let mut full = vec![];
        while let Some(out) = session.poll_output() {
            match out {
                Output::Media(cmd) => {
                    if let Some(m) = media.as_deref_mut() {
                        relay(m, cmd);
                    }
                }
                Output::Event(ev) => {
                    if let Some(tx) = events {
                        let _ = tx.send(ev);
                    }
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

fn relay(media: &mut dyn RoomMedia, cmd: MediaCommand) {
    match cmd {
        MediaCommand::Signal {
            user,
            may_publish,
            signal,
        } => media.signal(&user, may_publish, signal),
        MediaCommand::Subscribe(user) => media.subscribe(&user),
        MediaCommand::SetGates(user, gates) => media.set_gates(&user, gates),
        MediaCommand::RemoveMember(user) => media.remove_member(&user),
    }
}
