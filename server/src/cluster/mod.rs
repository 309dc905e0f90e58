//! The nodes of one deployment. Alone (the default) this is a thin pass-through to
//! this node's live sessions. With `CONVENE_REDIS_URL`, every node on that Redis (and
//! on one shared PostgreSQL database) works as one server:
//!
//! - each node registers itself with its load under a lease (`GET /v1/nodes`);
//! - an admin write on any node is committed to the database, applied to that node's
//!   sessions and told to the others as a notice, which they apply to theirs (a removal,
//!   role change, new window or deletion reaches a member on another node within
//!   milliseconds);
//! - what only live sessions know (who is joined, seats) is asked of every node and
//!   merged: `GET /v1/sessions` and `/members` answer for the whole cluster (a node
//!   that does not answer within 2 s is left out; a removal then fails instead);
//! - one node at a time delivers webhooks (a lease, which ends a margin before it could
//!   lapse), so two nodes never deliver at once;
//! - join tokens verify on every node: the signing key is kept in the database;
//! - a live room has one session, on its home node (a lease): members that reached
//!   another node join it through that node (`membership`, `edge`, `home`), publish
//!   their media to the home's relay and receive it from their own node's relay, which
//!   gets each track it needs from the home once (`rooms::relays`, `sfu::pipe`).
//!
//! What goes over Redis is in `wire`, how in `bus`. The leases that say a node is alive
//! (its registration, the webhook lease, its rooms' home leases) are kept by `keeper`,
//! on a thread and a Redis connection of its own, so a busy node is not taken for dead.

mod bus;
mod edge;
mod home;
mod keeper;
mod membership;
pub mod wire;

pub use membership::Membership;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use chrono::{DateTime, Utc};
use convene_protocol::signal::{Participant, SeatInfo};

use crate::ids::{NodeId, RoomId, UserId};
use crate::model::{Room, RosterChange};
use crate::rooms::{LiveRooms, SessionSummary};
use crate::secret::Secret;
use crate::store::RoomStore;
use crate::webhooks::Webhooks;
use wire::{Answer, NodeInfo, Notice, Query};

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// Redis could not be reached or did not answer.
    #[error("{0}")]
    Unavailable(String),
    /// Another running node has this id.
    #[error("{0}")]
    NodeIdTaken(String),
}

/// Checks a Redis URL at configuration time; the reason when it is unusable.
pub fn check_redis_url(url: &str) -> Result<(), String> {
    if url.starts_with("rediss://") {
        return Err(
            "TLS to Redis (rediss://) is not supported yet: use redis:// on a \
                    private network"
                .into(),
        );
    }
    if !url.starts_with("redis://") {
        return Err(
            "the Redis URL must look like redis://[:password@]host:port[/db], e.g. \
             redis://127.0.0.1:6379"
                .into(),
        );
    }
    // The parser's own message never contains the URL (which may hold a password).
    redis::Client::open(url)
        .map(|_| ())
        .map_err(|e| format!("the Redis URL is not valid: {e}"))
}

#[derive(Clone)]
pub struct Cluster(Arc<Inner>);

struct Inner {
    node: NodeId,
    url: String,
    started_at: DateTime<Utc>,
    /// This run of the node (see `NodeInfo::instance`).
    instance: String,
    live: LiveRooms,
    store: Arc<dyn RoomStore>,
    webhooks: Webhooks,
    /// Admin writes other nodes told this one of (see `remote_writes`).
    remote_writes: AtomicU64,
    /// The last cluster-wide session list and when it was read, for the public live
    /// list: a flood of anonymous requests asks the other nodes at most once a second.
    /// A std Mutex: read or replaced, never held across an await.
    recent: std::sync::Mutex<Option<(std::time::Instant, Vec<SessionSummary>)>>,
    /// The sockets here of rooms homed on other nodes.
    edges: edge::Edges,
    /// Unset: this node is alone.
    bus: OnceLock<bus::Bus>,
}

/// What a node needs to take part.
pub struct Parts {
    pub node: NodeId,
    /// This node's base URL, for the others' listing.
    pub url: String,
    pub live: LiveRooms,
    pub store: Arc<dyn RoomStore>,
    pub webhooks: Webhooks,
}

impl Cluster {
    /// A node on its own: every question is answered by its own sessions.
    pub fn alone(parts: Parts) -> Self {
        Self::new(parts)
    }

    /// Registers on the Redis at `redis_url`, subscribes to the others and starts the
    /// lease. Fails when Redis cannot be reached or another node has this id.
    pub async fn join(parts: Parts, redis_url: &Secret) -> Result<Self, ClusterError> {
        let me = Self::new(parts);
        let (frames, frames_rx) = tokio::sync::mpsc::unbounded_channel();
        me.0.live.send_edge_frames_to(frames);
        // The bus's tasks hold the node weakly, so dropping the last `Cluster` ends them.
        let bus = bus::Bus::start(
            redis_url.expose(),
            Arc::downgrade(&me.0),
            me.info(),
            frames_rx,
        )
        .await?;
        let _ = me.0.bus.set(bus);
        tracing::info!(node = %me.0.node, "joined the cluster");
        Ok(me)
    }

    fn new(parts: Parts) -> Self {
        Self(Arc::new(Inner {
            node: parts.node,
            url: parts.url,
            started_at: Utc::now(),
            instance: crate::ids::random_token(12),
            live: parts.live,
            store: parts.store,
            webhooks: parts.webhooks,
            remote_writes: AtomicU64::new(0),
            recent: Default::default(),
            edges: Default::default(),
            bus: OnceLock::new(),
        }))
    }

    fn bus(&self) -> Option<&bus::Bus> {
        self.0.bus.get()
    }

    pub fn clustered(&self) -> bool {
        self.0.bus.get().is_some()
    }

    /// Changes whenever another node tells this one of an admin write: with the store's
    /// own `generation`, a join admitted on a stale read can tell it must look again.
    pub fn remote_writes(&self) -> u64 {
        self.0.remote_writes.load(Ordering::SeqCst)
    }

    /// Messages to other nodes dropped because this node's subscription was lost (they
    /// would have arrived after the repair; see `bus::Cut`). 0 on a node alone.
    pub fn dropped_messages(&self) -> u64 {
        self.bus().map_or(0, |b| b.dropped())
    }

    /// This node as the others see it, load included.
    fn info(&self) -> NodeInfo {
        let sessions = self.0.live.sessions();
        NodeInfo {
            id: self.0.node.clone(),
            url: self.0.url.clone(),
            started_at: self.0.started_at,
            renewed_at: Utc::now(),
            instance: self.0.instance.clone(),
            sessions: sessions.len() as u64,
            members: sessions.iter().map(|s| s.member_count as u64).sum(),
        }
    }

    // --- admin writes: applied here, then told to the others ---------------------------

    fn tell(&self, notice: Notice) {
        if let Some(bus) = self.bus() {
            bus.tell(notice);
        }
    }

    pub fn room_updated(&self, room: &Room) {
        self.0.live.room_updated(room);
        self.tell(Notice::RoomUpdated {
            room: room.id.clone(),
        });
    }

    pub fn room_deleted(&self, room: &RoomId) {
        self.0.live.room_deleted(room);
        self.tell(Notice::RoomDeleted { room: room.clone() });
    }

    pub fn roster_changed(&self, room: &RoomId, changes: &[RosterChange]) {
        if changes.is_empty() {
            return;
        }
        self.0.live.roster_changed(room, changes);
        let users = changes.iter().map(|c| c.user().clone()).collect();
        self.tell(Notice::Roster {
            room: room.clone(),
            users,
        });
    }

    pub fn token_revoked(&self, room: &RoomId, jti: &str) {
        self.0.live.token_revoked(room, jti);
        self.tell(Notice::TokenRevoked {
            room: room.clone(),
            jti: jti.to_string(),
        });
    }

    /// Webhook endpoints changed in the store: every node reads them again.
    pub async fn webhooks_changed(&self) {
        self.0.webhooks.reload().await;
        self.tell(Notice::WebhooksChanged);
    }

    // --- questions only live sessions can answer: asked of every node ---------------

    /// The other nodes' answers; a node that did not answer in time is left out (and
    /// logged). `ask_all` instead fails then, for what must not be done by half.
    async fn ask(&self, query: Query) -> Result<Vec<(NodeId, Answer)>, ClusterError> {
        match self.bus() {
            Some(bus) => Ok(bus.ask(query).await?.answers),
            None => Ok(vec![]),
        }
    }

    async fn ask_all(&self, query: Query) -> Result<Vec<(NodeId, Answer)>, ClusterError> {
        let Some(bus) = self.bus() else {
            return Ok(vec![]);
        };
        let asked = bus.ask(query).await?;
        if !asked.missing.is_empty() {
            let names: Vec<&str> = asked.missing.iter().map(NodeId::as_str).collect();
            return Err(ClusterError::Unavailable(format!(
                "no answer from node(s) {}",
                names.join(", ")
            )));
        }
        Ok(asked.answers)
    }

    /// Every live session of every node, by room.
    pub async fn sessions(&self) -> Result<Vec<SessionSummary>, ClusterError> {
        let mut all = self.local_sessions();
        for (_, a) in self.ask(Query::Sessions).await? {
            if let Answer::Sessions { value } = a {
                all.extend(value);
            }
        }
        all.sort_by(|a, b| (&a.room_id, &a.node).cmp(&(&b.room_id, &b.node)));
        Ok(all)
    }

    /// `sessions`, at most a second old: for what anyone may ask (the live list).
    pub async fn recent_sessions(&self) -> Result<Vec<SessionSummary>, ClusterError> {
        if !self.clustered() {
            return self.sessions().await;
        }
        let fresh = |(at, _): &(std::time::Instant, Vec<SessionSummary>)| {
            at.elapsed() < std::time::Duration::from_secs(1)
        };
        {
            let recent = self.0.recent.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((_, list)) = recent.as_ref().filter(|r| fresh(r)) {
                return Ok(list.clone());
            }
        }
        let list = self.sessions().await?;
        *self.0.recent.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((std::time::Instant::now(), list.clone()));
        Ok(list)
    }

    fn local_sessions(&self) -> Vec<SessionSummary> {
        let mut list = self.0.live.sessions();
        if self.clustered() {
            for s in &mut list {
                s.node = Some(self.0.node.clone());
            }
        }
        list
    }

    /// Who is joined to `room`, on every node.
    pub async fn members(&self, room: &RoomId) -> Result<Vec<Participant>, ClusterError> {
        let mut all = self.0.live.members(room).await;
        for (_, a) in self.ask(Query::Members { room: room.clone() }).await? {
            if let Answer::Members { value } = a {
                all.extend(value);
            }
        }
        Ok(all)
    }

    /// Members joined to `room` on every node (a node that does not answer in time is
    /// not counted). Advisory, like `LiveRooms::member_count`: two nodes admitting at
    /// the same moment may both let one more in.
    pub async fn member_count(&self, room: &RoomId) -> Result<usize, ClusterError> {
        let mut n = self.0.live.member_count(room);
        for (_, a) in self.ask(Query::Count { room: room.clone() }).await? {
            if let Answer::Count { members } = a {
                n += members;
            }
        }
        Ok(n)
    }

    /// Removes `user` from the call on whichever node it joined; the token it joined
    /// with, or None when it is not joined anywhere. Fails when a node did not answer:
    /// the member may be joined there, and its token must not stay valid unnoticed.
    pub async fn kick(&self, room: &RoomId, user: UserId) -> Result<Option<String>, ClusterError> {
        let mut jti = self.0.live.kick(room, user.clone()).await;
        let asked = self
            .ask_all(Query::Kick {
                room: room.clone(),
                user,
            })
            .await?;
        for (_, a) in asked {
            if let Answer::Kicked { jti: Some(j) } = a {
                jti.get_or_insert(j);
            }
        }
        Ok(jti)
    }

    /// The seats of `room`'s session: this node's, or the first other node's that has one.
    pub async fn seats(&self, room: &RoomId) -> Result<Vec<SeatInfo>, ClusterError> {
        if self.0.live.has_session(room) {
            return Ok(self.0.live.seats(room).await);
        }
        for (_, a) in self.ask(Query::Seats { room: room.clone() }).await? {
            if let Answer::Seats { value } = a {
                if !value.is_empty() {
                    return Ok(value);
                }
            }
        }
        Ok(vec![])
    }

    /// Takes whoever sits on seat `index` off it: in this node's session of the room,
    /// or else on the node whose session lists someone there (the room's home; only
    /// that node is told to act, should a split by a Redis outage have left two).
    pub async fn unseat(&self, room: &RoomId, index: u32) -> Result<Option<UserId>, ClusterError> {
        if self.0.live.has_session(room) {
            return Ok(self.0.live.unseat(room, index).await);
        }
        let seats = self.ask_all(Query::Seats { room: room.clone() }).await?;
        let holder = seats.into_iter().find_map(|(node, a)| match a {
            Answer::Seats { value }
                if value
                    .iter()
                    .any(|s| s.index == index && s.user_id.is_some()) =>
            {
                Some(node)
            }
            _ => None,
        });
        let Some(node) = holder else {
            return Ok(None);
        };
        let asked = self
            .ask_all(Query::Unseat {
                room: room.clone(),
                index,
                node: node.clone(),
            })
            .await?;
        Ok(asked.into_iter().find_map(|(from, a)| match a {
            Answer::Unseated { user } if from == node => user,
            _ => None,
        }))
    }

    /// Every node with a live lease, this one first.
    pub async fn nodes(&self) -> Result<Vec<NodeInfo>, ClusterError> {
        let mut list = vec![self.info()];
        if let Some(bus) = self.bus() {
            list.extend(bus.peers().await?);
        }
        Ok(list)
    }

    /// Gives up the home lease of every room homed here (at shutdown, before the
    /// sessions hand their rooms over), and stops renewing them.
    pub async fn release_homes(&self) {
        if let Some(bus) = self.bus() {
            let rooms: Vec<RoomId> = self
                .0
                .live
                .sessions()
                .into_iter()
                .map(|s| s.room_id)
                .collect();
            bus.release_homes(&rooms).await;
        }
    }

    /// Leaves the cluster at shutdown: the registration and any lease held go at once,
    /// so the others need not wait for them to expire.
    pub async fn leave(&self) {
        if let Some(bus) = self.bus() {
            bus.leave().await;
        }
    }

    // --- the other side: what other nodes said -----------------------------------------

    /// Counted before it is applied, so a join that checks the count after joining
    /// either sees the change counted or joined a session the change then reaches.
    fn count_remote_write(&self) {
        self.0.remote_writes.fetch_add(1, Ordering::SeqCst);
    }

    /// Applies another node's notice to this node's sessions (in the order they came).
    async fn apply(&self, notice: Notice) {
        let live = &self.0.live;
        match notice {
            Notice::RoomUpdated { room } => {
                if !live.has_session(&room) {
                    return;
                }
                match self.0.store.get_room(&room).await {
                    Ok(Some(r)) => live.room_updated(&r),
                    Ok(None) => live.room_deleted(&room),
                    Err(e) => tracing::warn!(%room, "cannot read a room another node changed: {e}"),
                }
            }
            Notice::RoomDeleted { room } => live.room_deleted(&room),
            Notice::Roster { room, users } => {
                if !live.has_session(&room) {
                    return;
                }
                for user in users {
                    self.reread_invitation(&room, user).await;
                }
            }
            Notice::TokenRevoked { room, jti } => live.token_revoked(&room, &jti),
            Notice::WebhooksChanged => self.0.webhooks.reload().await,
        }
    }

    /// This node's answer to another node's question.
    async fn answer(&self, query: Query) -> Answer {
        let live = &self.0.live;
        match query {
            Query::Sessions => Answer::Sessions {
                value: self.local_sessions(),
            },
            Query::Members { room } => Answer::Members {
                value: live.members(&room).await,
            },
            Query::Count { room } => Answer::Count {
                members: live.member_count(&room),
            },
            Query::Kick { room, user } => Answer::Kicked {
                jti: live.kick(&room, user).await,
            },
            Query::Seats { room } => Answer::Seats {
                value: live.seats(&room).await,
            },
            Query::Unseat { room, index, node } => Answer::Unseated {
                user: if node == self.0.node {
                    live.unseat(&room, index).await
                } else {
                    None
                },
            },
        }
    }

    /// After a lost subscription: notices sent meanwhile never arrived, so each live
    /// session here is brought up to date from the store (room, and each member's
    /// invitation and role).
    async fn resync(&self) {
        self.count_remote_write();
        let live = &self.0.live;
        for s in live.sessions() {
            let room = &s.room_id;
            let stored = match self.0.store.get_room(room).await {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(%room, "resync: cannot read the room: {e}");
                    continue;
                }
            };
            let Some(stored) = stored else {
                live.room_deleted(room);
                continue;
            };
            live.room_updated(&stored);
            for p in live.members(room).await {
                // Guests (with a name) have no invitation to read.
                if p.name.is_some() {
                    continue;
                }
                if let Ok(user) = UserId::parse(&p.id) {
                    self.reread_invitation(room, user).await;
                }
            }
        }
    }

    /// Brings `user`'s place in `room`'s session here in line with its stored
    /// invitation: gone (removed), invited again (a member of an older invitation
    /// leaves), or a new role. Idempotent, and always ends at what is stored, whatever
    /// order the notices came in.
    async fn reread_invitation(&self, room: &RoomId, user: UserId) {
        let live = &self.0.live;
        match self.0.store.roster_entry(room, &user).await {
            Ok(None) => live.roster_changed(room, &[RosterChange::Removed(user)]),
            Ok(Some(entry)) => live.roster_changed(
                room,
                &[
                    RosterChange::Added(entry.clone()),
                    RosterChange::RoleChanged {
                        from: entry.role,
                        entry,
                    },
                ],
            ),
            Err(e) => {
                tracing::warn!(%room, %user, "cannot read an invitation another node changed: {e}")
            }
        }
    }
}
