//! Live sessions: a registry of rooms with members joined now, and one task per session
//! that owns its `Session` and takes commands on a channel. Only the task touches the
//! session, so no lock guards member state; the registry's map is the one lock.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use convene_protocol::signal::{ClientMessage, IceServer, LeaveReason, Participant};
use convene_protocol::ErrorCode;
use tokio::sync::{mpsc, oneshot};
use tokio::time::{sleep_until, Duration, Instant};

use super::media::{MediaEvent, MediaFactory, MediaSignal, RoomMedia};
use super::outbound::{Conn, Outbound};
use super::session::{JoinOutcome, JoinRefusal, MemberInit, Session};
use super::Room;
use crate::clock::Clock;
use crate::ids::{RoomId, SessionId, UserId};
use crate::store::RosterChange;

/// Membership deltas are gathered this long and sent as one `participantsChanged`.
pub const BATCH_INTERVAL: Duration = Duration::from_millis(30);
/// A change of the audience count alone goes to everyone at most this often: in a
/// large audience, joins would otherwise cost one frame per member per batch.
pub const AUDIENCE_INTERVAL: Duration = Duration::from_secs(1);
const COMMAND_QUEUE: usize = 1024;

pub enum Command {
    Join {
        init: MemberInit,
        conn: Conn,
        resume: Option<String>,
        reply: oneshot::Sender<JoinReply>,
    },
    Client {
        user: UserId,
        conn_id: u64,
        msg: ClientMessage,
    },
    Dropped {
        user: UserId,
        conn_id: u64,
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

#[derive(Debug, PartialEq, Eq)]
pub enum JoinError {
    RoomFull,
    /// The server is shutting down and starts no sessions.
    Closing,
    /// Sessions kept ending under the join (three times in a row).
    Busy,
}

/// The session's answer to a join.
pub enum JoinReply {
    Joined(JoinOutcome),
    Full,
    /// The session ended as the join arrived: here is the connection back, join again.
    Retry(Conn),
}

/// A live session as the admin's list shows it.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionSummary {
    #[schema(value_type = String)]
    pub room_id: RoomId,
    #[schema(value_type = String)]
    pub session_id: SessionId,
    pub started_at: DateTime<Utc>,
    pub member_count: usize,
}

struct Handle {
    tx: mpsc::Sender<Command>,
    generation: u64,
    session_id: SessionId,
    started_at: DateTime<Utc>,
    members: Arc<AtomicUsize>,
}

struct Registry {
    sessions: Mutex<HashMap<RoomId, Handle>>,
    clock: Arc<dyn Clock>,
    resume_grace: Duration,
    ice_servers: Vec<IceServer>,
    media: Option<Arc<dyn MediaFactory>>,
    next_id: AtomicU64,
    tasks: task_count::TaskCount,
    /// Set at shutdown: no new session starts after it.
    closing: std::sync::atomic::AtomicBool,
}

/// Counts running session tasks so shutdown can wait for them.
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
        let ice_servers = media.as_ref().map(|m| m.ice_servers()).unwrap_or_default();
        Self(Arc::new(Registry {
            sessions: Mutex::new(HashMap::new()),
            clock,
            resume_grace,
            ice_servers,
            media,
            next_id: AtomicU64::new(1),
            tasks: Default::default(),
            closing: Default::default(),
        }))
    }

    pub fn next_conn_id(&self) -> u64 {
        self.0.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Members joined now in `room` (0 without a session). Advisory: the session
    /// task makes the binding capacity check.
    pub fn member_count(&self, room: &RoomId) -> usize {
        self.lock()
            .get(room)
            .filter(|h| !h.tx.is_closed())
            .map_or(0, |h| h.members.load(Ordering::Relaxed))
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
                member_count: h.members.load(Ordering::Relaxed),
            })
            .collect();
        out.sort_by(|a, b| a.room_id.cmp(&b.room_id));
        out
    }

    /// Session tasks still running (0 once every session has ended).
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
        let now = self.0.clock.now();
        let session = Session::new(
            room.clone(),
            now,
            self.0.resume_grace,
            self.0.ice_servers.clone(),
        );
        let members = Arc::new(AtomicUsize::new(0));
        let generation = self.next_conn_id();
        map.insert(
            room.id.clone(),
            Handle {
                tx: tx.clone(),
                generation,
                session_id: session.id.clone(),
                started_at: now,
                members: members.clone(),
            },
        );
        tracing::info!(room = %room.id, session = %session.id, "session started");
        let guard = self.0.tasks.enter();
        tokio::spawn(run_session(
            self.clone(),
            session,
            rx,
            generation,
            members,
            guard,
        ));
        Some(tx)
    }

    /// Joins `init` to the live session of `room`, starting one when needed.
    pub async fn join(
        &self,
        room: &Room,
        init: MemberInit,
        conn: Conn,
        resume: Option<String>,
    ) -> Result<JoinOutcome, JoinError> {
        let mut conn = conn;
        // A session that ends just as we join hands the connection back; the next try
        // starts a fresh session.
        for _ in 0..3 {
            let tx = self.sender_or_start(room).ok_or(JoinError::Closing)?;
            let (reply, answer) = oneshot::channel();
            let cmd = Command::Join {
                init: init.clone(),
                conn,
                resume: resume.clone(),
                reply,
            };
            match tx.send(cmd).await {
                Err(mpsc::error::SendError(Command::Join { conn: c, .. })) => {
                    conn = c;
                    continue;
                }
                Err(_) => unreachable!("only a join was sent"),
                Ok(()) => {}
            }
            match answer.await {
                Ok(JoinReply::Joined(outcome)) => return Ok(outcome),
                Ok(JoinReply::Full) => return Err(JoinError::RoomFull),
                Ok(JoinReply::Retry(c)) => conn = c,
                // The task died with the connection; nothing to retry with.
                Err(_) => return Err(JoinError::Busy),
            }
        }
        Err(JoinError::Busy)
    }

    pub async fn client_message(
        &self,
        room: &RoomId,
        user: UserId,
        conn_id: u64,
        msg: ClientMessage,
    ) {
        if let Some(tx) = self.sender(room) {
            let _ = tx.send(Command::Client { user, conn_id, msg }).await;
        }
    }

    pub async fn dropped(&self, room: &RoomId, user: UserId, conn_id: u64) {
        if let Some(tx) = self.sender(room) {
            let _ = tx.send(Command::Dropped { user, conn_id }).await;
        }
    }

    /// Admin changes are queued before the admin request answers, in the order they
    /// were made, so a session never applies an older change over a newer one.
    async fn notify(&self, room: &RoomId, cmd: Command) {
        if let Some(tx) = self.sender(room) {
            let _ = tx.send(cmd).await;
        }
    }

    pub async fn room_updated(&self, room: &Room) {
        self.notify(&room.id, Command::RoomUpdated(Box::new(room.clone())))
            .await;
    }

    pub async fn room_deleted(&self, room: &RoomId) {
        self.notify(room, Command::RoomDeleted).await;
    }

    pub async fn roster_changed(&self, room: &RoomId, changes: &[RosterChange]) {
        if !changes.is_empty() {
            self.notify(room, Command::Roster(changes.to_vec())).await;
        }
    }

    pub async fn token_revoked(&self, room: &RoomId, jti: &str) {
        self.notify(room, Command::TokenRevoked(jti.to_string()))
            .await;
    }

    /// Removes `user` from the call; the token it joined with, or None when not joined.
    pub async fn kick(&self, room: &RoomId, user: UserId) -> Option<String> {
        let tx = self.sender(room)?;
        let (reply, answer) = oneshot::channel();
        tx.send(Command::Kick { user, reply }).await.ok()?;
        answer.await.ok().flatten()
    }

    pub async fn members(&self, room: &RoomId) -> Vec<Participant> {
        let Some(tx) = self.sender(room) else {
            return vec![];
        };
        let (reply, answer) = oneshot::channel();
        if tx.send(Command::Members(reply)).await.is_err() {
            return vec![];
        }
        answer.await.unwrap_or_default()
    }

    /// Ends every session with `serverShutdown` and waits (bounded) for their tasks.
    pub async fn shutdown(&self, wait: Duration) {
        self.0.closing.store(true, Ordering::SeqCst);
        let senders: Vec<_> = self.lock().values().map(|h| h.tx.clone()).collect();
        for tx in senders {
            let _ = tx.send(Command::Shutdown).await;
        }
        let _ = tokio::time::timeout(wait, self.0.tasks.zero()).await;
    }
}

fn instant_at(clock: &dyn Clock, at: DateTime<Utc>) -> Instant {
    let left = (at - clock.now()).to_std().unwrap_or(Duration::ZERO);
    // Timers beyond about two years are not supported by tokio; rooms end sooner.
    Instant::now() + left.min(Duration::from_secs(400 * 24 * 3600))
}

async fn sleep_opt(at: Option<Instant>) {
    match at {
        Some(t) => sleep_until(t).await,
        None => std::future::pending().await,
    }
}

async fn run_session(
    live: LiveRooms,
    mut session: Session,
    mut rx: mpsc::Receiver<Command>,
    generation: u64,
    members: Arc<AtomicUsize>,
    _running: task_count::Guard,
) {
    let clock = live.0.clock.clone();
    let (media_tx, mut media_rx) = mpsc::unbounded_channel();
    let mut media: Option<Box<dyn RoomMedia>> = live
        .0
        .media
        .as_ref()
        .map(|f| f.create(&session.room.id, media_tx));
    let mut flush_at: Option<Instant> = None;
    let mut empty_since: Option<Instant> = Some(Instant::now());
    let mut expires = instant_at(clock.as_ref(), session.room.valid_until);
    loop {
        let destroy_at =
            empty_since.map(|t| t + Duration::from_secs(session.room.destroy_delay_seconds.into()));
        let mut ended = false;
        tokio::select! {
            cmd = rx.recv() => match cmd {
                None => ended = true,
                Some(cmd) => {
                    ended = handle(&mut session, &mut media, cmd, clock.as_ref());
                    expires = instant_at(clock.as_ref(), session.room.valid_until);
                }
            },
            Some(ev) = media_rx.recv() => match ev {
                MediaEvent::Send { to, msg } => session.send_message(&to, &msg),
                MediaEvent::Published { member, kind, on } => {
                    session.relay_published(&member, kind, on)
                }
            },
            _ = sleep_opt(flush_at) => {
                session.flush();
                flush_at = None;
            }
            _ = sleep_until(expires) => {
                if clock.now() >= session.room.valid_until {
                    tracing::info!(room = %session.room.id, "room expired; ending session");
                    session.end(LeaveReason::RoomExpired);
                    ended = true;
                } else {
                    expires = instant_at(clock.as_ref(), session.room.valid_until);
                }
            }
            _ = sleep_opt(session.next_grace_deadline()) => {
                session.expire_dropped(Instant::now());
            }
            _ = sleep_opt(destroy_at) => {
                // A join may already be queued; it is served, not refused.
                if session.is_empty() && rx.is_empty() {
                    ended = true;
                }
            }
        }
        members.store(session.len(), Ordering::Relaxed);
        if let Some(m) = media.as_mut() {
            for user in session.take_departed() {
                m.remove_member(&user);
            }
            for (user, gates) in session.take_gate_changes() {
                m.set_gates(&user, gates);
            }
        }
        if ended {
            break;
        }
        let due = if session.has_pending() && !session.pending_is_audience_only() {
            Some(Instant::now() + BATCH_INTERVAL)
        } else if session.has_pending() || session.has_laggards() {
            Some(Instant::now() + AUDIENCE_INTERVAL)
        } else {
            None
        };
        // A member delta pulls an audience-only flush forward; nothing pushes one back.
        flush_at = match (flush_at, due) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if session.is_empty() {
            empty_since.get_or_insert_with(Instant::now);
        } else {
            empty_since = None;
        }
    }
    // Unregister first, so new joins start a new session, then answer what is queued.
    {
        let mut map = live.lock();
        if map
            .get(&session.room.id)
            .is_some_and(|h| h.generation == generation)
        {
            map.remove(&session.room.id);
        }
    }
    rx.close();
    while let Ok(cmd) = rx.try_recv() {
        match cmd {
            Command::Join { reply, conn, .. } => {
                let _ = reply.send(JoinReply::Retry(conn));
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
    session.end(LeaveReason::ServerShutdown);
    if let Some(mut m) = media.take() {
        m.close();
    }
    members.store(0, Ordering::Relaxed);
    tracing::info!(room = %session.room.id, session = %session.id, "session ended");
}

/// Applies one command; true when the session is over.
fn handle(
    session: &mut Session,
    media: &mut Option<Box<dyn RoomMedia>>,
    cmd: Command,
    clock: &dyn Clock,
) -> bool {
    let now = Instant::now();
    match cmd {
        Command::Join {
            init,
            conn,
            resume,
            reply,
        } => {
            // The session's copy of the room is kept current by RoomUpdated; the edge
            // re-reads the room after the join (signal::admission::recheck) to close the
            // gap between its admission check and this join.
            let result = match session.join(init, conn, resume.as_deref(), now, clock.now()) {
                Ok(outcome) => JoinReply::Joined(outcome),
                Err(JoinRefusal::RoomFull) => JoinReply::Full,
            };
            let _ = reply.send(result);
        }
        Command::Client { user, conn_id, msg } => {
            if session.is_current(&user, conn_id) {
                client_message(session, media, &user, msg, now, clock.now());
            }
        }
        Command::Dropped { user, conn_id } => session.detach(&user, conn_id, now),
        Command::RoomUpdated(room) => session.room = *room,
        Command::RoomDeleted => {
            session.end(LeaveReason::RoomDeleted);
            return true;
        }
        Command::Roster(changes) => {
            for change in changes {
                match change {
                    RosterChange::Removed(user) => {
                        session.remove(&user, LeaveReason::Removed);
                    }
                    RosterChange::RoleChanged { entry, .. } => {
                        session.change_role(&entry.user_id, entry.role)
                    }
                    RosterChange::Added(entry) => {
                        // Removed and invited again: tokens of the old invitation die.
                        let invite = entry.invite_id.clone();
                        session.remove_where(LeaveReason::Removed, |m| {
                            m.user == entry.user_id && m.invite_id != invite
                        });
                    }
                }
            }
        }
        Command::TokenRevoked(jti) => {
            session.remove_where(LeaveReason::Removed, |m| m.jti == jti);
        }
        Command::Kick { user, reply } => {
            let jti = session.token_of(&user);
            session.remove(&user, LeaveReason::Removed);
            let _ = reply.send(jti);
        }
        Command::Members(reply) => {
            let _ = reply.send(session.members());
        }
        Command::Shutdown => {
            session.end(LeaveReason::ServerShutdown);
            return true;
        }
    }
    false
}

fn client_message(
    session: &mut Session,
    media: &mut Option<Box<dyn RoomMedia>>,
    user: &UserId,
    msg: ClientMessage,
    now: Instant,
    wall: DateTime<Utc>,
) {
    let signal = match msg {
        ClientMessage::SetMedia {
            audio,
            video,
            screen,
        } => return session.set_media(user, audio, video, screen),
        ClientMessage::Mute {
            participant_id,
            audio,
            video,
            screen,
        } => return session.mute(user, &participant_id, audio, video, screen),
        ClientMessage::SendMessage { text } => return session.chat(user, text, now, wall),
        ClientMessage::ListAudience { after, limit } => {
            return session.list_audience(user, after.as_deref(), limit)
        }
        ClientMessage::Leave => {
            session.remove(user, LeaveReason::ClientLeft);
            return;
        }
        ClientMessage::Ping { .. } => return,
        ClientMessage::Subscribe => None,
        ClientMessage::Offer {
            pc,
            sdp,
            screen_track_ids,
        } => Some(MediaSignal::Offer {
            pc,
            sdp,
            screen_track_ids,
        }),
        ClientMessage::Answer { pc, sdp } => Some(MediaSignal::Answer { pc, sdp }),
        ClientMessage::Candidate {
            pc,
            candidate,
            sdp_mid,
            sdp_m_line_index,
        } => Some(MediaSignal::Candidate {
            pc,
            candidate,
            sdp_mid,
            sdp_m_line_index,
        }),
    };
    let Some(m) = media.as_mut() else {
        return session.notify_error(
            user,
            ErrorCode::InvalidParameter,
            "media is not enabled on this server",
        );
    };
    match signal {
        None => m.subscribe(user),
        Some(sig) => m.signal(user, session.may_publish(user), sig),
    }
}

/// Used by tests to build a connection with a queue of the given size.
pub fn test_conn(id: u64, capacity: usize) -> (Conn, mpsc::Receiver<Outbound>) {
    let (tx, rx) = mpsc::channel(capacity);
    (Conn { id, tx }, rx)
}
