//! The lease keeper: a thread of its own, with its own runtime and its own Redis
//! connection, that says this node is alive.
//!
//! - `renew`: every 2 s takes or keeps the webhook lease, renews this node's
//!   registration (10 s lease) and lists the others. Webhooks are delivered only until
//!   2 s before the lease could lapse, counted from before the renewal was sent. A node
//!   that left the list is gone: its members in the sessions here count as dropped.
//! - `homes`: every second keeps the home lease of each session here, and checks the
//!   home of each room this node is an edge of or has joins waiting for (see
//!   `membership`).
//!
//! Why a thread: a lease must not wait behind the work it vouches for. As tasks on the
//! node's runtime, sharing its Redis connection, the renewals queued behind socket tasks
//! and behind pipelines of frames. A home with one worker thread, while 60,000 members
//! joined through six nodes, went more than 5 s without renewing: it lost its room, and
//! the edges closed 7,821 sockets. The OS schedules this thread however busy the runtime
//! is, and its commands queue behind nothing.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::{oneshot, watch};

use super::bus::{
    instance_marker, list_peers, lock, run, COMMAND_WAIT, HOLD_HOMES, HOLD_LEASE, HOME_CHECK,
    HOME_LEASE, LEASE, RENEW, RENEW_REGISTRATION,
};
use super::wire::{self, NodeInfo};
use super::{Cluster, ClusterError, Inner};
use crate::ids::{NodeId, RoomId};

/// What the keeper needs: how to reach Redis, and the node it keeps alive.
pub(super) struct Leases {
    pub client: redis::Client,
    pub config: ConnectionManagerConfig,
    pub node: Weak<Inner>,
    /// The other nodes at the last renewal, shared with the bus.
    pub peers: Arc<Mutex<Vec<NodeInfo>>>,
    pub me: NodeId,
    /// This run's lease value, `<node>#<instance>`.
    pub holder: String,
    /// Set when the node gives its rooms up (a clean stop): no home lease is kept.
    pub leaving: Arc<AtomicBool>,
}

/// The running keeper. Dropping it stops the thread (at its next await).
pub(super) struct Keeper {
    stop: watch::Sender<bool>,
    /// Closed when the thread has stopped. A std Mutex: taken once, never across an await.
    done: Mutex<Option<oneshot::Receiver<()>>>,
}

impl Keeper {
    pub fn start(leases: Leases) -> Result<Keeper, ClusterError> {
        let (stop, mut stopped) = watch::channel(false);
        let (done_tx, done) = oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("convene-leases".into())
            .spawn(move || {
                // Built here: a runtime must not be dropped on the caller's runtime.
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(r) => r,
                    Err(e) => {
                        tracing::error!(
                            "cannot start the lease keeper: {e}; this node's leases lapse"
                        );
                        return;
                    }
                };
                runtime.block_on(async move {
                    tokio::select! {
                        // Also ends when the Keeper is dropped.
                        _ = stopped.wait_for(|s| *s) => {}
                        _ = leases.run() => {}
                    }
                });
                drop(done_tx);
            })
            .map_err(|e| {
                ClusterError::Unavailable(format!("cannot start the lease keeper: {e}"))
            })?;
        Ok(Keeper {
            stop,
            done: Mutex::new(Some(done)),
        })
    }

    /// Stops the thread and waits (a bounded while) until it has: nothing it sends
    /// after this returns.
    pub async fn stop(&self) {
        let _ = self.stop.send(true);
        let done = lock(&self.done).take();
        if let Some(done) = done {
            let _ = tokio::time::timeout(COMMAND_WAIT, done).await;
        }
    }
}

impl Leases {
    async fn run(self) {
        let conn = loop {
            let connect =
                ConnectionManager::new_with_config(self.client.clone(), self.config.clone());
            match tokio::time::timeout(COMMAND_WAIT * 2, connect).await {
                Ok(Ok(c)) => break c,
                Ok(Err(e)) => tracing::debug!("the lease keeper cannot reach Redis yet: {e}"),
                Err(_) => tracing::debug!("the lease keeper cannot reach Redis yet"),
            }
            if self.node.strong_count() == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        };
        tokio::join!(
            renew(
                conn.clone(),
                self.node.clone(),
                self.peers,
                self.me,
                self.holder.clone(),
            ),
            homes(conn, self.node, self.holder, self.leaving),
        );
    }
}

async fn renew(
    conn: ConnectionManager,
    node: Weak<Inner>,
    peers: Arc<Mutex<Vec<NodeInfo>>>,
    me: NodeId,
    holder: String,
) {
    let mut tick = tokio::time::interval(RENEW);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut healthy = true;
    loop {
        tick.tick().await;
        let Some(inner) = node.upgrade() else { return };
        let cluster = Cluster(inner);
        let json = serde_json::to_string(&cluster.info()).expect("node info serializes");
        // The webhook lease first, timed from before it is sent: this node delivers
        // until 2 s before the lease could lapse, however slow the rest of the round.
        let sent = tokio::time::Instant::now();
        let held = run::<i64>(
            &conn,
            redis::cmd("EVAL")
                .arg(HOLD_LEASE)
                .arg(1)
                .arg(wire::WEBHOOK_LEASE)
                .arg(&holder)
                .arg(LEASE.as_millis() as u64),
        )
        .await;
        match &held {
            Ok(1) => cluster.0.webhooks.deliver_until(Some(sent + LEASE - RENEW)),
            Ok(_) => cluster.0.webhooks.deliver_until(None),
            Err(_) => {} // the current turn runs out by itself
        }
        let round = async {
            held?;
            let mine = instance_marker(&cluster.0.instance);
            let renewed = run::<i64>(
                &conn,
                redis::cmd("EVAL")
                    .arg(RENEW_REGISTRATION)
                    .arg(1)
                    .arg(wire::node_key(&me))
                    .arg(&json)
                    .arg(&mine)
                    .arg(LEASE.as_millis() as u64),
            )
            .await?;
            if renewed == 0 {
                return Err(ClusterError::NodeIdTaken(format!(
                    "another process registered as node '{me}' while this one could not \
                     renew (Redis was out of reach for longer than the {} s lease): this \
                     node no longer renews its registration; stop one of the two",
                    LEASE.as_secs()
                )));
            }
            run::<i64>(&conn, redis::cmd("SADD").arg(wire::NODES).arg(me.as_str())).await?;
            let now = list_peers(&conn, &me).await?;
            let before = std::mem::replace(&mut *lock(&peers), now.clone());
            // A node gone from the list (or started again) holds none of its sockets:
            // its members in the sessions here count as dropped.
            for old in before {
                if !now
                    .iter()
                    .any(|p| p.id == old.id && p.instance == old.instance)
                {
                    cluster.0.live.edge_lost(&old.id);
                }
            }
            Ok::<(), ClusterError>(())
        };
        match round.await {
            Ok(()) if !healthy => {
                tracing::info!("Redis answers again; this node is registered");
                healthy = true;
            }
            Ok(()) => {}
            Err(e) => {
                if healthy {
                    match e {
                        ClusterError::NodeIdTaken(_) => tracing::error!("{e}"),
                        _ => tracing::warn!("cannot renew this node's registration: {e}"),
                    }
                    healthy = false;
                }
            }
        }
    }
}

/// Every second: keeps the home lease of each session here, and closes this node's
/// sockets in rooms whose home is gone (lease lapsed or passed on), so they reconnect;
/// joins waiting for that home are sent to place the room again.
async fn homes(
    conn: ConnectionManager,
    node: Weak<Inner>,
    holder: String,
    leaving: Arc<AtomicBool>,
) {
    let mut tick = tokio::time::interval(HOME_CHECK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut lost_told: HashSet<RoomId> = HashSet::new();
    loop {
        tick.tick().await;
        let Some(inner) = node.upgrade() else { return };
        let cluster = Cluster(inner);
        let here: Vec<RoomId> = match leaving.load(Ordering::SeqCst) {
            true => vec![], // given up: the rooms are handed over
            false => (cluster.0.live.sessions().into_iter())
                .map(|s| s.room_id)
                .collect(),
        };
        if !here.is_empty() {
            let mut cmd = redis::cmd("EVAL");
            cmd.arg(HOLD_HOMES).arg(here.len());
            for room in &here {
                cmd.arg(wire::home_key(room));
            }
            cmd.arg(&holder).arg(HOME_LEASE.as_millis() as u64);
            match run::<Vec<i64>>(&conn, &cmd).await {
                Ok(held) => {
                    for (room, h) in here.iter().zip(held) {
                        if h == 0 && lost_told.insert(room.clone()) {
                            // Taken while this node could not renew it (Redis was out
                            // of reach, or restarted empty): the room moves there.
                            tracing::warn!(%room, "another node holds this room's home lease now; its members here reconnect to it");
                            cluster.0.live.hand_over(room);
                        }
                    }
                }
                Err(e) => tracing::debug!("cannot renew the home leases: {e}"),
            }
        }
        lost_told.retain(|r| here.contains(r));
        let remote = cluster.0.edges.rooms();
        if remote.is_empty() {
            continue;
        }
        let keys: Vec<String> = remote.iter().map(|(r, _)| wire::home_key(r)).collect();
        let Ok(now) = run::<Vec<Option<String>>>(&conn, redis::cmd("MGET").arg(&keys)).await else {
            continue; // Redis is out of reach: nothing is known to have changed
        };
        for ((room, was), now) in remote.iter().zip(now) {
            if now.as_deref() != Some(was.as_str()) {
                let closed = cluster.0.edges.home_lost(room, was);
                if closed > 0 {
                    tracing::warn!(%room, home = %was, sockets = closed, "the room's home node is gone; its members here reconnect");
                }
            }
        }
    }
}
