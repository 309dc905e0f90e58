//! The Redis side of `Cluster`: one command connection (redis-rs's `ConnectionManager`,
//! which reconnects by itself) and one subscription, and three tasks:
//!
//! - `receive`: reads the bus and this node's inbox. Notices are applied in the order
//!   they came, each by reading what it names from the store again, so one applied late
//!   cannot undo a newer write; questions are answered each in a task of its own;
//!   answers go to the question waiting for them. The subscription is pinged every 2 s;
//!   one that ends or does not answer is made again, and then every live session here is
//!   brought up to date from the store (through the same queue as notices), as notices
//!   sent meanwhile are lost (Redis pub/sub keeps nothing for a subscriber that is away).
//! - `publish_notices`: publishes this node's notices in order, retrying each until
//!   Redis takes it, so an admin write committed while Redis is down still reaches the
//!   other nodes once it is back (a node leaving waits up to 2 s for them to go out).
//! - `publish_direct`: what this node sends one other node (a home's frames for an edge,
//!   an edge's members' joins and messages for their home), in order, several at a time
//!   in one pipeline, retried until Redis takes them; dropped and counted instead
//!   while the subscription is lost (`Cut`), as the members concerned reconnect after.
//!
//! The leases that say this node is alive (its registration, the webhook lease, its
//! rooms' home leases) are kept by `keeper`, on a thread and a connection of its own.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use futures_util::StreamExt;
use redis::aio::{ConnectionManager, PubSub};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::keeper::{Keeper, Leases};
use super::wire::{self, Answer, Body, Message, NodeInfo, Notice, Query, Refusal, Up};
use super::{Cluster, ClusterError, Inner};
use crate::ids::{ConnId, NodeId, RoomId};
use crate::rooms::remote::EdgeFrame;

/// How long a registration or lease lives unrenewed: a node that dies is gone after this.
pub const LEASE: Duration = Duration::from_secs(10);
/// How often a node renews them (and lists the others).
pub(super) const RENEW: Duration = Duration::from_secs(2);
/// Longest a question waits for the other nodes' answers.
const QUERY_WAIT: Duration = Duration::from_secs(2);
/// Longest one Redis command may take before the caller hears Redis is unavailable.
pub(super) const COMMAND_WAIT: Duration = Duration::from_secs(3);
/// How long a room's home lease lives unrenewed, and how often it is renewed (and the
/// edges check it): a home that dies is replaced within `HOME_LEASE` plus a check.
pub(super) const HOME_LEASE: Duration = Duration::from_secs(5);
pub(super) const HOME_CHECK: Duration = Duration::from_secs(1);
/// Most messages to other nodes sent in one pipeline.
const BATCH: usize = 256;

/// Keeps a lease held by `ARGV[1]` (or takes a free one) for `ARGV[2]` ms; 1 if held.
pub(super) const HOLD_LEASE: &str = r#"
local cur = redis.call('GET', KEYS[1])
if cur == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end
if not cur then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1 end
return 0"#;
/// Renews a registration (`ARGV[1]`, for `ARGV[3]` ms) unless another run of the node
/// (one whose value lacks `ARGV[2]`) holds it now; 1 if renewed.
pub(super) const RENEW_REGISTRATION: &str = r#"
local cur = redis.call('GET', KEYS[1])
if cur and not string.find(cur, ARGV[2], 1, true) then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
return 1"#;
/// Removes a registration if it is still this run's (its value holds `ARGV[1]`).
const DROP_REGISTRATION: &str = r#"
local cur = redis.call('GET', KEYS[1])
if cur and string.find(cur, ARGV[1], 1, true) then return redis.call('DEL', KEYS[1]) end
return 0"#;
/// Places a room: the home lease's holder, taken for `ARGV[1]` (for `ARGV[2]` ms) when
/// it is free or held by an earlier run of this node (`ARGV[3]` is `<node>#`: a running
/// node's id is never another's, so that run is dead).
const PLACE: &str = r#"
local cur = redis.call('GET', KEYS[1])
if (not cur) or cur == ARGV[1] or string.sub(cur, 1, string.len(ARGV[3])) == ARGV[3] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return ARGV[1]
end
return cur"#;
/// Keeps (or takes back, when free) the home leases `KEYS` for `ARGV[1]`; per key, 1 if
/// held.
pub(super) const HOLD_HOMES: &str = r#"
local out = {}
for i, k in ipairs(KEYS) do
  local cur = redis.call('GET', k)
  if (not cur) or cur == ARGV[1] then
    redis.call('SET', k, ARGV[1], 'PX', ARGV[2])
    out[i] = 1
  else
    out[i] = 0
  end
end
return out"#;
/// Gives a lease up if `ARGV[1]` holds it.
const DROP_LEASE: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0"#;

type Pending = Arc<Mutex<HashMap<u64, mpsc::UnboundedSender<(NodeId, Answer)>>>>;

/// The other nodes' answers to one question, and who did not answer in time.
pub(super) struct Asked {
    pub answers: Vec<(NodeId, Answer)>,
    pub missing: Vec<NodeId>,
}

/// What `publish_direct` is given.
enum Direct {
    Payload(NodeId, Vec<u8>),
    /// Answered once everything queued before it (frames too) went out.
    Flush(tokio::sync::oneshot::Sender<()>),
    /// The subscription is back and repaired: what was queued before this (frames
    /// too) is dropped, what comes after is sent (see `Cut`).
    Resume,
}

/// Whether rooms' traffic to other nodes is being dropped, and how much was. Set while
/// this node's subscription is lost (Redis out of reach): everything queued meanwhile
/// would arrive after the repair that follows a lost subscription (members joined
/// across nodes reconnect), so it is useless, and a long outage would otherwise grow
/// the queue without bound.
#[derive(Clone, Default)]
pub(super) struct Cut {
    on: Arc<std::sync::atomic::AtomicBool>,
    dropped: Arc<AtomicU64>,
}

impl Cut {
    fn is_on(&self) -> bool {
        self.on.load(Ordering::SeqCst)
    }

    fn set(&self, on: bool) {
        self.on.store(on, Ordering::SeqCst);
    }

    fn drop_messages(&self, n: usize) {
        self.dropped.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// Messages to other nodes dropped so far.
    pub(super) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// What the applier does, in order.
enum Work {
    Notice(Notice),
    /// Catch up from the store after a lost subscription.
    Resync,
}

pub(super) struct Bus {
    node: NodeId,
    /// This run of the node, as the webhook lease names it (`<id>#<instance>`): two
    /// processes that ended up with one id never both hold it.
    holder: String,
    /// What this run's registration holds and another's does not (`NodeInfo::instance`).
    mine: String,
    /// The Redis database number (channel names carry it).
    db: i64,
    conn: ConnectionManager,
    /// Payloads for one other node's inbox, in order.
    direct: mpsc::UnboundedSender<Direct>,
    /// Rooms' traffic to other nodes dropped while the subscription was lost.
    cut: Cut,
    /// Set at shutdown: home leases are no longer renewed.
    leaving: Arc<std::sync::atomic::AtomicBool>,
    /// Notices to publish, in order, and how many are not out yet.
    outbox: mpsc::UnboundedSender<Vec<u8>>,
    unsent: Arc<AtomicUsize>,
    /// Questions waiting for answers, by id. A std Mutex: held for a map update only,
    /// never across an await.
    pending: Pending,
    next_query: AtomicU64,
    /// The other nodes at the last renewal (same kind of lock, same reason).
    peers: Arc<Mutex<Vec<NodeInfo>>>,
    tasks: Vec<JoinHandle<()>>,
    /// The thread that keeps this node's leases (see `keeper`).
    keeper: Keeper,
}

fn unavailable(what: &str, e: impl std::fmt::Display) -> ClusterError {
    ClusterError::Unavailable(format!("{what}: {e}"))
}

/// Runs one command, bounded by `COMMAND_WAIT`.
pub(super) async fn run<T: redis::FromRedisValue>(
    conn: &ConnectionManager,
    cmd: &redis::Cmd,
) -> Result<T, ClusterError> {
    let mut conn = conn.clone();
    match tokio::time::timeout(COMMAND_WAIT, cmd.query_async::<T>(&mut conn)).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(unavailable("Redis refused a command", e)),
        Err(_) => Err(ClusterError::Unavailable(format!(
            "Redis did not answer within {} s",
            COMMAND_WAIT.as_secs()
        ))),
    }
}

async fn publish(
    conn: &ConnectionManager,
    channel: &str,
    bytes: &[u8],
) -> Result<(), ClusterError> {
    run::<i64>(conn, redis::cmd("PUBLISH").arg(channel).arg(bytes))
        .await
        .map(|_| ())
}

/// The database number, which scopes the channel names (see `wire`).
fn db_of(client: &redis::Client) -> i64 {
    client.get_connection_info().redis_settings().db()
}

async fn subscribe(client: &redis::Client, node: &NodeId) -> Result<PubSub, ClusterError> {
    let db = db_of(client);
    let go = async {
        let mut ps = client.get_async_pubsub().await?;
        ps.subscribe(wire::bus(db)).await?;
        ps.subscribe(wire::inbox(db, node)).await?;
        Ok::<_, redis::RedisError>(ps)
    };
    match tokio::time::timeout(COMMAND_WAIT, go).await {
        Ok(Ok(ps)) => Ok(ps),
        Ok(Err(e)) => Err(unavailable("cannot subscribe on Redis", e)),
        Err(_) => Err(ClusterError::Unavailable(
            "Redis did not take the subscription in time".into(),
        )),
    }
}

impl Bus {
    /// Connects, registers `me` (refused if a running node has its id), subscribes,
    /// and starts the tasks, which reach the node through `node` while it lives.
    pub(super) async fn start(
        url: &str,
        node: Weak<Inner>,
        me: NodeInfo,
        frames: mpsc::UnboundedReceiver<EdgeFrame>,
    ) -> Result<Bus, ClusterError> {
        let client = redis::Client::open(url).map_err(|e| unavailable("the Redis URL", e))?;
        let at = client.get_connection_info().addr().to_string();
        // Bounded, so a command on a dead connection fails (and the manager reconnects)
        // instead of waiting for TCP to give up.
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_response_timeout(Some(COMMAND_WAIT))
            .set_connection_timeout(Some(COMMAND_WAIT));
        let connect = ConnectionManager::new_with_config(client.clone(), config.clone());
        let conn = match tokio::time::timeout(COMMAND_WAIT * 2, connect).await {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => return Err(unavailable(&format!("cannot reach Redis at {at}"), e)),
            Err(_) => {
                return Err(ClusterError::Unavailable(format!(
                    "Redis at {at} did not answer within {} s",
                    (COMMAND_WAIT * 2).as_secs()
                )))
            }
        };
        let id = me.id.clone();
        let holder = format!("{id}#{}", me.instance);
        let json = serde_json::to_string(&me).expect("node info serializes");
        // A node restarted at once after a crash finds its old registration still there:
        // it waits for it to lapse. A running node with this id keeps renewing it.
        let deadline = tokio::time::Instant::now() + LEASE + RENEW;
        let mut told = false;
        loop {
            let set: Option<String> = run(
                &conn,
                redis::cmd("SET")
                    .arg(wire::node_key(&id))
                    .arg(&json)
                    .arg("NX")
                    .arg("PX")
                    .arg(LEASE.as_millis() as u64),
            )
            .await?;
            if set.is_some() {
                break;
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(ClusterError::NodeIdTaken(format!(
                    "node id '{id}' is in use by a running node (it renewed its \
                     registration for {} s): give this one another CONVENE_NODE_ID, or none \
                     to have one generated",
                    (LEASE + RENEW).as_secs()
                )));
            }
            if !told {
                crate::console::say(&format!(
                    "node id '{id}' is registered already; waiting up to {} s for that \
                     registration to lapse (a node that stopped without leaving)",
                    (LEASE + RENEW).as_secs()
                ));
                told = true;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        run::<i64>(&conn, redis::cmd("SADD").arg(wire::NODES).arg(id.as_str())).await?;
        let ps = subscribe(&client, &id).await?;
        let client_for_db = client.clone();
        let pending: Pending = Default::default();
        let peers: Arc<Mutex<Vec<NodeInfo>>> = Default::default();
        let (outbox, outbox_rx) = mpsc::unbounded_channel();
        let (direct, direct_rx) = mpsc::unbounded_channel();
        let leaving: Arc<std::sync::atomic::AtomicBool> = Default::default();
        let unsent: Arc<AtomicUsize> = Default::default();
        let cut = Cut::default();
        // First: if it cannot start, no task has been spawned to outlive the error.
        let keeper = Keeper::start(Leases {
            client: client_for_db.clone(),
            config: config.clone(),
            node: node.clone(),
            peers: peers.clone(),
            me: id.clone(),
            holder: holder.clone(),
            leaving: leaving.clone(),
        })?;
        let tasks = vec![
            tokio::spawn(receive(
                ps,
                client,
                conn.clone(),
                node,
                pending.clone(),
                peers.clone(),
                id.clone(),
                (cut.clone(), direct.clone()),
            )),
            tokio::spawn(publish_notices(
                outbox_rx,
                conn.clone(),
                db_of(&client_for_db),
                unsent.clone(),
            )),
            tokio::spawn(publish_direct(
                direct_rx,
                frames,
                conn.clone(),
                db_of(&client_for_db),
                id.clone(),
                cut.clone(),
            )),
        ];
        Ok(Bus {
            holder: holder.clone(),
            mine: instance_marker(&me.instance),
            db: db_of(&client_for_db),
            node: id,
            conn,
            direct,
            cut,
            leaving,
            outbox,
            unsent,
            pending,
            // Random, so late answers to a previous run of this node id match nothing.
            next_query: AtomicU64::new(u64::from(rand::random::<u32>())),
            peers,
            tasks,
            keeper,
        })
    }

    /// Messages to other nodes dropped while the subscription was lost (see `Cut`).
    pub(super) fn dropped(&self) -> u64 {
        self.cut.dropped()
    }

    pub(super) fn tell(&self, notice: Notice) {
        let msg = Message {
            from: self.node.clone(),
            body: Body::Notice { notice },
        };
        let bytes = serde_json::to_vec(&msg).expect("a notice serializes");
        self.unsent.fetch_add(1, Ordering::SeqCst);
        if self.outbox.send(bytes).is_err() {
            self.unsent.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// The home of `room`: None when it is (now) this node, else the node and its lease
    /// value.
    pub(super) async fn place(
        &self,
        room: &RoomId,
    ) -> Result<Option<(NodeId, String)>, ClusterError> {
        let holder: String = run(
            &self.conn,
            redis::cmd("EVAL")
                .arg(PLACE)
                .arg(1)
                .arg(wire::home_key(room))
                .arg(&self.holder)
                .arg(HOME_LEASE.as_millis() as u64)
                .arg(format!("{}#", self.node)),
        )
        .await?;
        if holder == self.holder {
            return Ok(None);
        }
        let node = holder
            .split_once('#')
            .and_then(|(n, _)| NodeId::parse(n).ok())
            .ok_or_else(|| {
                ClusterError::Unavailable(format!("room {room}'s home lease is not a node's"))
            })?;
        Ok(Some((node, holder)))
    }

    fn send_direct(&self, to: &NodeId, body: Body) {
        let msg = Message {
            from: self.node.clone(),
            body,
        };
        let _ = self
            .direct
            .send(Direct::Payload(to.clone(), wire::encode(&msg, b"")));
    }

    pub(super) fn send_up(&self, home: &NodeId, room: &RoomId, up: Up) {
        let room = room.clone();
        self.send_direct(home, Body::Up { room, up });
    }

    pub(super) fn refuse(&self, edge: &NodeId, room: &RoomId, edge_conn: ConnId, why: Refusal) {
        let room = room.clone();
        self.send_direct(
            edge,
            Body::Refused {
                room,
                edge_conn,
                why,
            },
        );
    }

    /// Asks every other node and waits for each one's answer, at most `QUERY_WAIT`
    /// (a node that died keeps its lease for up to 10 s and is waited for meanwhile).
    pub(super) async fn ask(&self, query: Query) -> Result<Asked, ClusterError> {
        let mut waiting: HashSet<NodeId> = lock(&self.peers).iter().map(|p| p.id.clone()).collect();
        if waiting.is_empty() {
            return Ok(Asked {
                answers: vec![],
                missing: vec![],
            });
        }
        let id = self.next_query.fetch_add(1, Ordering::Relaxed);
        let (tx, mut rx) = mpsc::unbounded_channel();
        lock(&self.pending).insert(id, tx);
        let _forget = Forget(&self.pending, id);
        let msg = Message {
            from: self.node.clone(),
            body: Body::Query { id, query },
        };
        let bytes = serde_json::to_vec(&msg).expect("a query serializes");
        publish(&self.conn, &wire::bus(self.db), &bytes).await?;
        let deadline = tokio::time::Instant::now() + QUERY_WAIT;
        let mut answers = vec![];
        while !waiting.is_empty() {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some((from, answer))) => {
                    // One answer per node (a node that joined since the last renewal
                    // answers too, unwaited for).
                    if waiting.remove(&from) || !answers.iter().any(|(n, _)| n == &from) {
                        answers.push((from, answer));
                    }
                }
                _ => break,
            }
        }
        if !waiting.is_empty() {
            tracing::warn!(nodes = ?waiting, "no answer from these nodes within {} s", QUERY_WAIT.as_secs());
        }
        Ok(Asked {
            answers,
            missing: waiting.into_iter().collect(),
        })
    }

    /// The other nodes with a live registration, read now.
    pub(super) async fn peers(&self) -> Result<Vec<NodeInfo>, ClusterError> {
        list_peers(&self.conn, &self.node).await
    }

    /// Stops renewing home leases and gives up those of `rooms`.
    pub(super) async fn release_homes(&self, rooms: &[RoomId]) {
        self.leaving.store(true, Ordering::SeqCst);
        if rooms.is_empty() {
            return;
        }
        let mut pipe = redis::pipe();
        for room in rooms {
            pipe.cmd("EVAL")
                .arg(DROP_LEASE)
                .arg(1)
                .arg(wire::home_key(room))
                .arg(&self.holder)
                .ignore();
        }
        let mut c = self.conn.clone();
        let why = match tokio::time::timeout(COMMAND_WAIT, pipe.query_async::<()>(&mut c)).await {
            Ok(Ok(())) => return,
            Ok(Err(e)) => e.to_string(),
            Err(_) => "no answer in time".to_string(),
        };
        tracing::warn!(
            "cannot give up the rooms' home leases ({why}); they lapse in {} s",
            HOME_LEASE.as_secs()
        );
    }

    pub(super) async fn leave(&self) {
        // Notices not out yet are the other nodes' only news of a committed write;
        // frames not out yet end the other nodes' members' sessions.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
        let (flushed, out) = tokio::sync::oneshot::channel();
        let _ = self.direct.send(Direct::Flush(flushed));
        let _ = tokio::time::timeout_at(deadline, out).await;
        while self.unsent.load(Ordering::SeqCst) > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        for t in &self.tasks {
            t.abort();
        }
        // Nothing renews the registration once it is dropped.
        self.keeper.stop().await;
        // Only this run's registration: another process may have taken the id.
        let dropped = run::<i64>(
            &self.conn,
            redis::cmd("EVAL")
                .arg(DROP_REGISTRATION)
                .arg(1)
                .arg(wire::node_key(&self.node))
                .arg(&self.mine),
        )
        .await;
        if matches!(dropped, Ok(1)) {
            let id = self.node.as_str();
            let _ = run::<i64>(&self.conn, redis::cmd("SREM").arg(wire::NODES).arg(id)).await;
        }
        let _ = run::<i64>(
            &self.conn,
            redis::cmd("EVAL")
                .arg(DROP_LEASE)
                .arg(1)
                .arg(wire::WEBHOOK_LEASE)
                .arg(&self.holder),
        )
        .await;
    }
}

impl Drop for Bus {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// The text only this run's registration JSON contains (its `instance` field).
pub(super) fn instance_marker(instance: &str) -> String {
    format!("\"instance\":\"{instance}\"")
}

/// Locks a map that is only updated briefly; a panic mid-update leaves it usable.
pub(super) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Takes a question out of the pending map when its asker is done (or cancelled).
struct Forget<'a>(&'a Pending, u64);

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        lock(self.0).remove(&self.1);
    }
}

pub(super) async fn list_peers(
    conn: &ConnectionManager,
    me: &NodeId,
) -> Result<Vec<NodeInfo>, ClusterError> {
    let ids: Vec<String> = run(conn, redis::cmd("SMEMBERS").arg(wire::NODES)).await?;
    let ids: Vec<NodeId> = ids
        .iter()
        .filter_map(|i| NodeId::parse(i).ok())
        .filter(|i| i != me)
        .collect();
    if ids.is_empty() {
        return Ok(vec![]);
    }
    let keys: Vec<String> = ids.iter().map(wire::node_key).collect();
    let values: Vec<Option<String>> = run(conn, redis::cmd("MGET").arg(&keys)).await?;
    let mut list = vec![];
    for (id, value) in ids.into_iter().zip(values) {
        match value.and_then(|v| serde_json::from_str::<NodeInfo>(&v).ok()) {
            Some(info) => list.push(info),
            // Its lease lapsed: it stopped without leaving.
            None => {
                let _ =
                    run::<i64>(conn, redis::cmd("SREM").arg(wire::NODES).arg(id.as_str())).await;
            }
        }
    }
    list.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(list)
}

#[allow(clippy::too_many_arguments)]
async fn receive(
    first: PubSub,
    client: redis::Client,
    conn: ConnectionManager,
    node: Weak<Inner>,
    pending: Pending,
    peers: Arc<Mutex<Vec<NodeInfo>>>,
    me: NodeId,
    (cut, direct): (Cut, mpsc::UnboundedSender<Direct>),
) {
    // What edges send about their members, applied in the order it came: one queue and
    // task per room, so a session slow to take its members' messages holds up only its
    // own room (and never the receive loop).
    let (ups, mut ups_rx) = mpsc::unbounded_channel::<(NodeId, RoomId, Up)>();
    let homing = node.clone();
    let _ups = AbortOnDrop(tokio::spawn(async move {
        let mut rooms: HashMap<RoomId, mpsc::UnboundedSender<(NodeId, Up)>> = HashMap::new();
        let mut seen = 0u32;
        while let Some((from, room, up)) = ups_rx.recv().await {
            let Some(inner) = homing.upgrade() else {
                return;
            };
            // Now and then, the queues of rooms without a session here go (their
            // tasks end once what they hold is applied).
            seen = seen.wrapping_add(1);
            if seen.is_multiple_of(256) {
                rooms.retain(|r, tx| !tx.is_closed() && inner.live.has_session(r));
            }
            drop(inner);
            let tx = rooms.entry(room.clone()).or_insert_with(|| {
                let (tx, mut rx) = mpsc::unbounded_channel::<(NodeId, Up)>();
                let node = homing.clone();
                tokio::spawn(async move {
                    while let Some((from, up)) = rx.recv().await {
                        let Some(inner) = node.upgrade() else { return };
                        Cluster(inner).on_up(from, room.clone(), up).await;
                    }
                });
                tx
            });
            let _ = tx.send((from, up));
        }
    }));
    // Notices are applied one after another, in the order they were published, and a
    // resync in its place among them.
    let (work, mut work_rx) = mpsc::unbounded_channel::<Work>();
    let applier = node.clone();
    let _apply = AbortOnDrop(tokio::spawn(async move {
        while let Some(w) = work_rx.recv().await {
            let Some(inner) = applier.upgrade() else {
                return;
            };
            match w {
                Work::Notice(n) => Cluster(inner).apply(n).await,
                Work::Resync => Cluster(inner).resync().await,
            }
        }
    }));
    let db = db_of(&client);
    let mut ps = Some(first);
    loop {
        let sub = match ps.take() {
            Some(p) => p,
            None => {
                match subscribe(&client, &me).await {
                    Ok(p) => {
                        tracing::info!(
                            "subscribed to the other nodes again; catching up from the store"
                        );
                        if let Some(inner) = node.upgrade() {
                            // Counted now: a join admitted meanwhile looks again.
                            Cluster(inner.clone()).count_remote_write();
                            // Rooms' traffic sent meanwhile is lost too, and has no catching
                            // up: members joined across nodes reconnect (a home keeps them
                            // for the resume grace, so they resume).
                            let closed = inner.edges.close_all();
                            let others: Vec<NodeId> =
                                lock(&peers).iter().map(|p| p.id.clone()).collect();
                            for other in &others {
                                inner.live.edge_lost(other);
                            }
                            if closed > 0 || !others.is_empty() {
                                tracing::warn!(sockets = closed, "members joined across nodes reconnect after the lost subscription");
                            }
                        }
                        let _ = work.send(Work::Resync);
                        // What was queued for other nodes while cut off is dropped (the
                        // repair above covers it), in order: what is queued from now on
                        // goes out.
                        if direct.send(Direct::Resume).is_err() {
                            cut.set(false);
                        }
                        p
                    }
                    Err(e) => {
                        tracing::warn!("{e}; trying again in 1 s");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        continue;
                    }
                }
            }
        };
        let (mut sink, mut stream) = sub.split();
        let mut ping = tokio::time::interval(RENEW);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let msg = tokio::select! {
                m = stream.next() => match m {
                    Some(m) => m,
                    None => break,
                },
                _ = ping.tick() => {
                    // A connection cut without a FIN (a NAT forgetting it) never ends the
                    // stream: only an unanswered ping tells.
                    match tokio::time::timeout(COMMAND_WAIT, sink.ping::<redis::Value>()).await {
                        Ok(Ok(_)) => continue,
                        _ => break,
                    }
                }
            };
            let Some((m, bytes)) = wire::decode(msg.get_payload_bytes()) else {
                tracing::warn!(
                    channel = msg.get_channel_name(),
                    "ignored a message that is not a node's"
                );
                continue;
            };
            if m.from == me {
                continue;
            }
            match m.body {
                Body::Notice { notice } => {
                    let Some(inner) = node.upgrade() else { return };
                    Cluster(inner).count_remote_write();
                    let _ = work.send(Work::Notice(notice));
                }
                Body::Query { id, query } => {
                    let (node, conn, me, asker) = (node.clone(), conn.clone(), me.clone(), m.from);
                    tokio::spawn(async move {
                        let Some(inner) = node.upgrade() else { return };
                        let answer = Cluster(inner).answer(query).await;
                        let reply = Message {
                            from: me,
                            body: Body::Answer { id, answer },
                        };
                        let bytes = serde_json::to_vec(&reply).expect("an answer serializes");
                        if let Err(e) = publish(&conn, &wire::inbox(db, &asker), &bytes).await {
                            tracing::warn!(node = %asker, "cannot answer a node: {e}");
                        }
                    });
                }
                Body::Answer { id, answer } => {
                    if let Some(tx) = lock(&pending).get(&id) {
                        let _ = tx.send((m.from, answer));
                    }
                }
                Body::Frame { room, frame } => {
                    let Some(inner) = node.upgrade() else { return };
                    let bytes = bytes::Bytes::copy_from_slice(bytes);
                    let cluster = Cluster(inner);
                    let relay = || cluster.edge_relay(&m.from, &room);
                    let replies =
                        cluster
                            .0
                            .edges
                            .frame(&m.from, room.clone(), frame, bytes, &relay);
                    for (home, room, up) in replies {
                        cluster.up(&home, &room, up);
                    }
                }
                Body::Refused { edge_conn, why, .. } => {
                    let Some(inner) = node.upgrade() else { return };
                    inner.edges.refused(&m.from, edge_conn, why);
                }
                Body::Up { room, up } => {
                    let _ = ups.send((m.from, room, up));
                }
            }
        }
        tracing::warn!(
            "lost the subscription to the other nodes on Redis; subscribing again, and \
             dropping rooms' traffic to other nodes until then"
        );
        cut.set(true);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn publish_notices(
    mut rx: mpsc::UnboundedReceiver<Vec<u8>>,
    conn: ConnectionManager,
    db: i64,
    unsent: Arc<AtomicUsize>,
) {
    while let Some(bytes) = rx.recv().await {
        let mut wait = Duration::from_millis(100);
        let mut told = false;
        while let Err(e) = publish(&conn, &wire::bus(db), &bytes).await {
            if !told {
                tracing::warn!("cannot tell the other nodes of an admin change yet: {e}; retrying");
                told = true;
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_secs(5));
        }
        unsent.fetch_sub(1, Ordering::SeqCst);
        if told {
            tracing::info!("told the other nodes of the admin change after all");
        }
    }
}

/// Sends other nodes what is queued for them, in order: several payloads at a time in
/// one pipeline (PUBLISH to a node that is gone is not an error: nobody hears it). A
/// pipeline Redis refused is sent again; one it did not answer in time may have run, so
/// it is not (a join or a chat line must not arrive twice): it is logged as lost, and
/// the members it concerned are repaired by their idle timeouts and reconnects. While
/// the subscription is lost (`Cut`), what is queued is dropped and counted instead.
async fn publish_direct(
    mut direct: mpsc::UnboundedReceiver<Direct>,
    mut frames: mpsc::UnboundedReceiver<EdgeFrame>,
    conn: ConnectionManager,
    db: i64,
    me: NodeId,
    cut: Cut,
) {
    let frame_payload = |f: EdgeFrame| {
        let msg = Message {
            from: me.clone(),
            body: Body::Frame {
                room: f.room,
                frame: f.kind,
            },
        };
        (f.to, wire::encode(&msg, &f.bytes))
    };
    // Flushes wait until everything queued is out (a batch that was not full).
    let mut flushes = vec![];
    loop {
        let mut batch = vec![];
        let first = tokio::select! {
            Some(f) = frames.recv() => Direct::Payload(f.to.clone(), frame_payload(f).1),
            Some(d) = direct.recv() => d,
            else => return,
        };
        let mut next = Some(first);
        while batch.len() < BATCH {
            let d = match next.take() {
                Some(d) => d,
                None => match frames.try_recv() {
                    Ok(f) => {
                        let (to, p) = frame_payload(f);
                        Direct::Payload(to, p)
                    }
                    Err(_) => match direct.try_recv() {
                        Ok(d) => d,
                        Err(_) => break,
                    },
                },
            };
            match d {
                Direct::Payload(to, p) => batch.push((to, p)),
                Direct::Flush(done) => flushes.push(done),
                Direct::Resume => {
                    let mut stale = batch.len();
                    batch.clear();
                    while frames.try_recv().is_ok() {
                        stale += 1;
                    }
                    cut.drop_messages(stale);
                    cut.set(false);
                }
            }
        }
        let drained = batch.len() < BATCH;
        if cut.is_on() {
            cut.drop_messages(batch.len());
        } else if !batch.is_empty() {
            send_batch(&conn, db, &batch, &cut).await;
        }
        if drained {
            for done in flushes.drain(..) {
                let _ = done.send(());
            }
        }
    }
}

async fn send_batch(conn: &ConnectionManager, db: i64, batch: &[(NodeId, Vec<u8>)], cut: &Cut) {
    let mut pipe = redis::pipe();
    for (to, payload) in batch {
        pipe.cmd("PUBLISH")
            .arg(wire::inbox(db, to))
            .arg(payload)
            .ignore();
    }
    let mut wait = Duration::from_millis(100);
    let mut told = false;
    loop {
        let mut c = conn.clone();
        match tokio::time::timeout(COMMAND_WAIT, pipe.query_async::<()>(&mut c)).await {
            Ok(Ok(())) => return,
            Ok(Err(e)) => {
                if cut.is_on() {
                    cut.drop_messages(batch.len());
                    return;
                }
                if !told {
                    tracing::warn!(
                        "cannot send other nodes their rooms' traffic yet: {e}; retrying"
                    );
                    told = true;
                }
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(2));
            }
            Err(_) => {
                tracing::warn!(
                    messages = batch.len(),
                    "Redis did not answer within {} s; rooms' traffic to other nodes may be lost",
                    COMMAND_WAIT.as_secs()
                );
                return;
            }
        }
    }
}
