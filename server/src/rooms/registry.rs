//! Live sessions: a registry of rooms with members joined now, each served by one driver
//! task (`driver.rs`) that owns its `Session`. Only the driver touches the session, so
//! no lock guards member state; the registry's map is the one lock.
//!
//! Two queues reach a driver: members' commands (bounded, so a flood waits) and admin
//! notifications (unbounded and sent without waiting, so an admin request that is
//! cancelled midway cannot lose the notification of a change it already committed).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use convene_protocol::signal::{Participant, SeatInfo};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Duration;

use super::driver::{Command, Driver, Gauges, JoinReply};
use super::member_event::MemberEvent;
use super::remote::{EdgeTx, Sink};
use super::session::{JoinOutcome, MemberInit, Session, SessionConfig};
use crate::clock::{Clock, Now};
use crate::ids::{ConnId, NodeId, RoomId, SessionId, UserId};
use crate::model::event::EventsTx;
use crate::model::{Room, RosterChange};
use crate::sfu::port::{MediaEvent, MediaFactory};
use crate::store::RoomStore;

const COMMAND_QUEUE: usize = 1024;

#[derive(Debug, PartialEq, Eq)]
pub enum JoinError {
    RoomFull,
    /// The server is shutting down and starts no sessions.
    Closing,
    /// Sessions kept ending under the join (three times in a row).
    Busy,
    /// The node running the room's session did not answer in time.
    Unanswered,
}

/// A live session as the admin's list shows it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionSummary {
    #[schema(value_type = String)]
    pub room_id: RoomId,
    #[schema(value_type = String)]
    pub session_id: SessionId,
    pub started_at: DateTime<Utc>,
    pub member_count: usize,
    /// Of those, receive-only members not announced individually.
    pub audience_count: usize,
    /// Seats taken (rooms with seats).
    pub seats_taken: usize,
    /// The room version the session runs on (the latest stored one, once any change
    /// has reached it).
    pub room_version: u64,
    /// The node holding it, when several share a Redis (`GET /v1/nodes`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub node: Option<crate::ids::NodeId>,
}

struct Handle {
    tx: mpsc::Sender<Command>,
    admin: mpsc::UnboundedSender<Command>,
    generation: u64,
    session_id: SessionId,
    started_at: DateTime<Utc>,
    gauges: Arc<Gauges>,
}

struct Registry {
    sessions: Mutex<HashMap<RoomId, Handle>>,
    clock: Arc<dyn Clock>,
    config: SessionConfig,
    media: Option<Arc<dyn MediaFactory>>,
    next_id: AtomicU64,
    tasks: task_count::TaskCount,
    /// Set at shutdown: no new session starts after it.
    closing: AtomicBool,
    /// Where sessions report events for webhooks (unset: nowhere).
    events: std::sync::OnceLock<EventsTx>,
    /// Where sessions store room attributes presenters set (unset: refused).
    store: std::sync::OnceLock<Arc<dyn RoomStore>>,
    /// Where sessions send frames for members on other nodes (unset: alone).
    edges: std::sync::OnceLock<EdgeTx>,
}

/// Counts running driver tasks so shutdown can wait for them.
mod task_count {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    #[derive(Default, Clone)]
    pub struct TaskCount(Arc<AtomicUsize>, Arc<tokio::sync::Notify>);

    pub struct Guard(TaskCount);

    impl TaskCount {
        pub fn enter(&self) -> Guard {
            self.0.fetch_add(1, Ordering::SeqCst);
            Guard(self.clone())
        }
        pub fn get(&self) -> usize {
            self.0.load(Ordering::SeqCst)
        }
        pub async fn zero(&self) {
            loop {
                let notified = self.1.notified();
                if self.get() == 0 {
                    return;
                }
                notified.await;
            }
        }
    }

    impl Drop for Guard {
        fn drop(&mut self) {
            self.0 .0.fetch_sub(1, Ordering::SeqCst);
            self.0 .1.notify_waiters();
        }
    }
}

#[derive(Clone)]
pub struct LiveRooms(Arc<Registry>);

impl LiveRooms {
    /// `media`: the relay for each session's audio and video; `None` runs signaling only.
    pub fn new(
        clock: Arc<dyn Clock>,
        resume_grace: Duration,
        media: Option<Arc<dyn MediaFactory>>,
    ) -> Self {
        let config = SessionConfig {
            resume_grace,
            ice: media.as_ref().map(|m| m.ice()).unwrap_or_default(),
            media: media.is_some(),
        };
        Self(Arc::new(Registry {
            sessions: Mutex::new(HashMap::new()),
            clock,
            config,
            media,
            next_id: AtomicU64::new(1),
            tasks: Default::default(),
            closing: Default::default(),
            events: Default::default(),
            store: Default::default(),
            edges: Default::default(),
        }))
    }

    /// Sessions store what presenters change in the room (its attributes) here.
    pub fn use_store(&self, store: Arc<dyn RoomStore>) {
        let _ = self.0.store.set(store);
    }

    /// Sessions report their events (for webhooks) to `tx` from now on.
    pub fn report_events_to(&self, tx: EventsTx) {
        let _ = self.0.events.set(tx);
    }

    /// Sessions send frames for members on other nodes to `tx` from now on.
    pub fn send_edge_frames_to(&self, tx: EdgeTx) {
        let _ = self.0.edges.set(tx);
    }

    pub fn next_conn_id(&self) -> ConnId {
        ConnId(self.0.next_id.fetch_add(1, Ordering::Relaxed))
    }

    /// Members joined now in `room` (0 without a session). Advisory: the session makes
    /// the binding capacity check.
    pub fn member_count(&self, room: &RoomId) -> usize {
        self.lock()
            .get(room)
            .filter(|h| !h.tx.is_closed())
            .map_or(0, |h| h.gauges.members.load(Ordering::Relaxed))
    }

    pub fn sessions(&self) -> Vec<SessionSummary> {
        let mut out: Vec<SessionSummary> = self
            .lock()
            .iter()
            .filter(|(_, h)| !h.tx.is_closed())
            .map(|(room, h)| SessionSummary {
                room_id: room.clone(),
                session_id: h.session_id.clone(),
                started_at: h.started_at,
                member_count: h.gauges.members.load(Ordering::Relaxed),
                audience_count: h.gauges.audience.load(Ordering::Relaxed),
                seats_taken: h.gauges.seats_taken.load(Ordering::Relaxed),
                room_version: h.gauges.room_version.load(Ordering::Relaxed),
                node: None,
            })
            .collect();
        out.sort_by(|a, b| a.room_id.cmp(&b.room_id));
        out
    }

    /// Whether `room` has a live session here.
    pub fn has_session(&self, room: &RoomId) -> bool {
        self.lock().get(room).is_some_and(|h| !h.tx.is_closed())
    }

    /// Driver tasks still running (0 once every session has ended).
    pub fn running_sessions(&self) -> usize {
        self.0.tasks.get()
    }

    // The map is only read or changed briefly and never across an `.await`, so a std
    // Mutex is right; a poisoned lock means a panic mid-insert, and the map is still
    // consistent, so it is taken over.
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<RoomId, Handle>> {
        self.0.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn sender(&self, room: &RoomId) -> Option<mpsc::Sender<Command>> {
        self.lock().get(room).map(|h| h.tx.clone())
    }

    /// Removes `room`'s entry if it still belongs to the driver of `generation`.
    fn unregister(&self, room: &RoomId, generation: u64) {
        let mut map = self.lock();
        if map.get(room).is_some_and(|h| h.generation == generation) {
            map.remove(room);
        }
    }

    /// The session of `room`, started when there is none (and the server is not
    /// shutting down).
    fn sender_or_start(&self, room: &Room) -> Option<mpsc::Sender<Command>> {
        let mut map = self.lock();
        if let Some(h) = map.get(&room.id) {
            if !h.tx.is_closed() {
                return Some(h.tx.clone());
            }
        }
        if self.0.closing.load(Ordering::SeqCst) {
            return None;
        }
        let (tx, rx) = mpsc::channel(COMMAND_QUEUE);
        let (admin, admin_rx) = mpsc::unbounded_channel();
        let admin_back = admin.clone();
        let session = Session::new(
            room.clone(),
            self.0.config.clone(),
            Now::read(self.0.clock.as_ref()),
        );
        let gauges = Arc::new(Gauges::default());
        gauges.room_version.store(room.version, Ordering::Relaxed);
        let generation = self.next_conn_id().0;
        map.insert(
            room.id.clone(),
            Handle {
                tx: tx.clone(),
                admin,
                generation,
                session_id: session.id().clone(),
                started_at: session.started_at(),
                gauges: gauges.clone(),
            },
        );
        tracing::info!(room = %room.id, session = %session.id(), "session started");
        let driver = Driver {
            clock: self.0.clock.clone(),
            media: self.0.media.clone(),
            gauges,
            events: self.0.events.get().cloned(),
            store: self.0.store.get().cloned(),
            admin: admin_back,
            edges: self.0.edges.get().cloned(),
        };
        let live = self.clone();
        let running = self.0.tasks.enter();
        tokio::spawn(async move {
            let _running = running;
            let ended = driver.run(session, rx, admin_rx).await;
            // Unregister first, so new joins start a new session, then answer what
            // is still queued.
            live.unregister(&ended.room, generation);
            ended.finish();
        });
        Some(tx)
    }

    /// Joins `init` to the live session of `room`, starting one when needed. Frames for
    /// the member go to `sink`.
    pub async fn join(
        &self,
        room: &Room,
        init: MemberInit,
        conn: ConnId,
        sink: Sink,
        resume: Option<String>,
    ) -> Result<JoinOutcome, JoinError> {
        let mut sink = sink;
        // A session that ends just as we join hands the queue back; the next try
        // starts a fresh session.
        for _ in 0..3 {
            let cmds = self.sender_or_start(room).ok_or(JoinError::Closing)?;
            let (reply, answer) = oneshot::channel();
            let cmd = Command::Join {
                init: init.clone(),
                conn,
                sink,
                resume: resume.clone(),
                reply,
            };
            match cmds.send(cmd).await {
                Err(mpsc::error::SendError(Command::Join { sink: s, .. })) => {
                    sink = s;
                    continue;
                }
                Err(_) => unreachable!("only a join was sent"),
                Ok(()) => {}
            }
            match answer.await {
                Ok(JoinReply::Joined(outcome)) => return Ok(outcome),
                Ok(JoinReply::Full) => return Err(JoinError::RoomFull),
                Ok(JoinReply::Retry(s)) => sink = s,
                // The task died with the queue; nothing to retry with.
                Err(_) => return Err(JoinError::Busy),
            }
        }
        Err(JoinError::Busy)
    }

    /// What happened on member `user`'s socket `conn` (see `MemberEvent`).
    pub async fn member_event(
        &self,
        room: &RoomId,
        user: UserId,
        conn: ConnId,
        event: MemberEvent,
    ) {
        if let Some(tx) = self.sender(room) {
            let _ = tx.send(Command::Member { user, conn, event }).await;
        }
    }

    /// What the relay of `room`'s session on node `node` reports (see `relays`).
    pub fn edge_media(&self, room: &RoomId, node: NodeId, ev: MediaEvent) {
        self.notify(room, Command::EdgeMedia { node, ev });
    }

    /// The relay factory of this node (for the relays of sessions homed elsewhere).
    pub fn media_factory(&self) -> Option<Arc<dyn MediaFactory>> {
        self.0.media.clone()
    }

    /// Node `node` is gone: every session here counts its members' sockets as dropped
    /// (kept for the resume grace, as for any dropped socket).
    pub fn edge_lost(&self, node: &NodeId) {
        for h in self.lock().values() {
            let _ = h.admin.send(Command::EdgeLost(node.clone()));
        }
    }

    /// Another node holds `room`'s home lease: the session here ends, its members
    /// disconnected silently so that they reconnect and join it there.
    pub fn hand_over(&self, room: &RoomId) {
        self.notify(room, Command::HandOver);
    }

    /// Queues an admin change without waiting, so it is never lost to a cancelled
    /// request. Sessions apply room changes by version, so their order does not matter.
    fn notify(&self, room: &RoomId, cmd: Command) {
        if let Some(h) = self.lock().get(room) {
            let _ = h.admin.send(cmd);
        }
    }

    pub fn room_updated(&self, room: &Room) {
        self.notify(&room.id, Command::RoomUpdated(Box::new(room.clone())));
    }

    pub fn room_deleted(&self, room: &RoomId) {
        self.notify(room, Command::RoomDeleted);
    }

    pub fn roster_changed(&self, room: &RoomId, changes: &[RosterChange]) {
        if !changes.is_empty() {
            self.notify(room, Command::Roster(changes.to_vec()));
        }
    }

    pub fn token_revoked(&self, room: &RoomId, jti: &str) {
        self.notify(room, Command::TokenRevoked(jti.to_string()));
    }

    /// Removes `user` from the call; the token it joined with, or None when not joined.
    pub async fn kick(&self, room: &RoomId, user: UserId) -> Option<String> {
        let (reply, answer) = oneshot::channel();
        self.notify(room, Command::Kick { user, reply });
        answer.await.ok().flatten()
    }

    /// The seat list of `room`'s session (empty without one, or without seats).
    pub async fn seats(&self, room: &RoomId) -> Vec<SeatInfo> {
        let (reply, answer) = oneshot::channel();
        self.notify(room, Command::Seats(reply));
        answer.await.unwrap_or_default()
    }

    /// Takes whoever sits on seat `index` off it; who that was.
    pub async fn unseat(&self, room: &RoomId, index: u32) -> Option<UserId> {
        let (reply, answer) = oneshot::channel();
        self.notify(room, Command::Unseat { index, reply });
        answer.await.ok().flatten()
    }

    pub async fn members(&self, room: &RoomId) -> Vec<Participant> {
        let (reply, answer) = oneshot::channel();
        self.notify(room, Command::Members(reply));
        answer.await.unwrap_or_default()
    }

    /// Ends every session and waits (bounded) for their tasks: with `serverShutdown`,
    /// or, when other nodes can take the rooms (`hand_over`), silently, so that the
    /// members' clients reconnect and continue on one of them.
    pub async fn shutdown(&self, wait: Duration, hand_over: bool) {
        self.0.closing.store(true, Ordering::SeqCst);
        for h in self.lock().values() {
            let _ = h.admin.send(match hand_over {
                true => Command::HandOver,
                false => Command::Shutdown,
            });
        }
        let _ = tokio::time::timeout(wait, self.0.tasks.zero()).await;
    }
}
