//! Webhooks: events from the store's outbox POSTed to every endpoint that wants them,
//! signed (`sign`), in order, each retried with a growing wait until it is delivered or
//! older than the retry window. Each endpoint has a task of its own and a cursor in the
//! store (the last event it has), so a restart, even after `kill -9`, resumes where it
//! stopped: nothing is lost, and nothing is sent twice unless the server died between a
//! delivery and recording it (receivers dedupe by event id).
//!
//! Live sessions hand their events to `writer`, which appends them to the outbox in
//! order; room and roster changes are written there by the store itself, in the same
//! transaction as the change.

pub mod sign;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use tokio::sync::{mpsc, Notify};
use tokio::task::JoinHandle;

use crate::model::event::{wants, Event, EventsTx, NewEvent, Webhook};
use crate::store::RoomStore;

/// Waits between attempts: 1 s, doubling, at most this.
const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// How long one POST may take.
const POST_TIMEOUT: Duration = Duration::from_secs(10);
/// Events read from the outbox at a time.
const BATCH: usize = 100;
/// "Until" for a node that delivers alone.
const ALWAYS: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// This node's turn to deliver: until when, and which turn it is (a new turn after a
/// gap, when another node may have delivered meanwhile, so cursors are read again).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Turn {
    until: Option<tokio::time::Instant>,
    epoch: u64,
}

impl Turn {
    /// The turn's epoch, if it is still on.
    fn now(&self) -> Option<u64> {
        self.until
            .filter(|u| tokio::time::Instant::now() < *u)
            .map(|_| self.epoch)
    }
}

struct Inner {
    store: Arc<dyn RoomStore>,
    http: reqwest::Client,
    retry_window: chrono::Duration,
    /// Woken when events are written.
    wake: Notify,
    /// Whether any endpoint exists (live-session events are dropped when none does).
    any: AtomicBool,
    /// Until when this node may deliver: always when alone; among several nodes, while
    /// it holds the webhook lease (`cluster`), ending a margin before the lease could
    /// lapse, so two nodes never deliver at once.
    delivering: tokio::sync::watch::Sender<Turn>,
    /// One delivery task per endpoint id, with the endpoint it was started for. A std
    /// Mutex: held to swap tasks, never across an await.
    tasks: Mutex<HashMap<String, (Webhook, JoinHandle<()>)>>,
}

/// The webhook deliverer of one server.
#[derive(Clone)]
pub struct Webhooks(Arc<Inner>);

impl Webhooks {
    pub fn new(store: Arc<dyn RoomStore>, retry_window: Duration) -> Self {
        let http = reqwest::Client::builder()
            .timeout(POST_TIMEOUT)
            .user_agent(concat!("convene-webhooks/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("an HTTP client with a timeout builds");
        Self(Arc::new(Inner {
            store,
            http,
            retry_window: chrono::Duration::from_std(retry_window)
                .unwrap_or(chrono::Duration::hours(24)),
            wake: Notify::new(),
            any: AtomicBool::new(false),
            delivering: tokio::sync::watch::Sender::new(Turn {
                until: Some(tokio::time::Instant::now() + ALWAYS),
                epoch: 0,
            }),
            tasks: Mutex::new(HashMap::new()),
        }))
    }

    /// New events are in the outbox: deliver them now rather than at the next poll.
    pub fn wake(&self) {
        self.0.wake.notify_waiters();
    }

    /// Lets this node deliver until `until` (None: not at all). Delivery tasks check
    /// before each event and each attempt, so none is POSTed after it.
    pub fn deliver_until(&self, until: Option<tokio::time::Instant>) {
        self.0.delivering.send_modify(|t| {
            if t.now().is_none() && until.is_some() {
                t.epoch += 1; // a new turn
            }
            t.until = until;
        });
    }

    /// Starts (or stops) delivery tasks to match the endpoints stored now.
    pub async fn reload(&self) {
        let hooks = match self.0.store.webhooks().await {
            Ok(h) => h,
            Err(e) => {
                tracing::error!("cannot read webhook endpoints: {e}");
                return;
            }
        };
        self.0.any.store(!hooks.is_empty(), Ordering::Relaxed);
        let mut tasks = self.0.tasks.lock().unwrap_or_else(|p| p.into_inner());
        tasks.retain(|id, (_, task)| {
            let keep = hooks.iter().any(|h| &h.id == id);
            if !keep {
                task.abort();
            }
            keep
        });
        let same = |a: &Webhook, b: &Webhook| {
            (&a.url, &a.secret, &a.events) == (&b.url, &b.secret, &b.events)
        };
        for hook in hooks {
            match tasks.get(&hook.id) {
                // Running for the same endpoint: left alone, so nothing in flight is cut.
                Some((was, task)) if same(was, &hook) && !task.is_finished() => continue,
                // Changed: restarted from its stored cursor.
                Some((_, task)) => task.abort(),
                None => {}
            }
            let me = self.clone();
            let h = hook.clone();
            tasks.insert(
                hook.id.clone(),
                (hook, tokio::spawn(async move { me.run(h).await })),
            );
        }
    }

    /// Stops every delivery task (at shutdown).
    pub fn stop(&self) {
        let mut tasks = self.0.tasks.lock().unwrap_or_else(|p| p.into_inner());
        for (_, (_, t)) in tasks.drain() {
            t.abort();
        }
    }

    /// The sender live sessions report events to, and the task that writes them to the
    /// outbox in order (batched: one transaction for whatever is waiting).
    pub fn writer(&self) -> EventsTx {
        let (tx, mut rx) = mpsc::unbounded_channel::<NewEvent>();
        let me = self.clone();
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut batch = vec![first];
                while let Ok(ev) = rx.try_recv() {
                    batch.push(ev);
                }
                if !me.0.any.load(Ordering::Relaxed) {
                    continue; // nobody listens: nothing to keep
                }
                if let Err(e) = me.0.store.append_events(batch).await {
                    tracing::error!("cannot write webhook events: {e}");
                }
                me.wake();
            }
        });
        tx
    }

    async fn run(self, hook: Webhook) {
        let mut cursor = hook.cursor;
        let mut turns = self.0.delivering.subscribe();
        let mut epoch = turns.borrow().now();
        loop {
            let turn = turns.borrow().now();
            let Some(now) = turn else {
                // Not this node's turn: woken by a new one (or a poll, as a turn ends
                // by time alone).
                let _ = tokio::time::timeout(Duration::from_secs(1), turns.changed()).await;
                continue;
            };
            if epoch != Some(now) {
                // Another node may have delivered since this task last did: go on
                // from the stored cursor.
                match self.0.store.webhooks().await {
                    Ok(hooks) => match hooks.into_iter().find(|h| h.id == hook.id) {
                        Some(h) => cursor = cursor.max(h.cursor),
                        None => return, // removed; `reload` ends this task
                    },
                    Err(e) => {
                        tracing::warn!(webhook = %hook.id, "cannot read the cursor: {e}");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        continue;
                    }
                }
                epoch = Some(now);
            }
            let batch = match self.0.store.events_after(cursor, BATCH).await {
                Ok(b) => b,
                Err(e) => {
                    tracing::warn!(webhook = %hook.id, "cannot read events: {e}");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            if batch.is_empty() {
                // Woken by new events, or a poll in case a wake was missed.
                let _ = tokio::time::timeout(Duration::from_secs(1), self.0.wake.notified()).await;
                continue;
            }
            for ev in batch {
                if wants(&hook.events, ev.kind) && !self.deliver(&hook, &ev, now).await {
                    break; // the turn ended midway: the event stays for the next holder
                }
                cursor = ev.seq;
                if let Err(e) = self.0.store.set_webhook_cursor(&hook.id, cursor).await {
                    tracing::warn!(webhook = %hook.id, "cannot record delivery: {e}");
                }
            }
        }
    }

    /// POSTs `ev` until a 2xx answer, or until it is older than the retry window (true
    /// either way), or until turn `epoch` ends (false: not done).
    async fn deliver(&self, hook: &Webhook, ev: &Event, epoch: u64) -> bool {
        let body = ev.body().to_string();
        let mut wait = Duration::from_secs(1);
        for attempt in 1.. {
            if self.0.delivering.borrow().now() != Some(epoch) {
                return false;
            }
            let t = Utc::now().timestamp();
            let result = self
                .0
                .http
                .post(&hook.url)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .header(sign::HEADER, sign::sign(&hook.secret, t, body.as_bytes()))
                .header("convene-event-id", &ev.id)
                .header("convene-event-type", ev.kind.as_str())
                .body(body.clone())
                .send()
                .await;
            let why = match result {
                Ok(r) if r.status().is_success() => return true,
                Ok(r) => format!("answered {}", r.status()),
                Err(e) => format!("failed: {e}"),
            };
            if Utc::now() - ev.at > self.0.retry_window {
                tracing::error!(webhook = %hook.id, event = %ev.id, attempt,
                    "gave up delivering an event after the retry window: {why}");
                return true;
            }
            tracing::warn!(webhook = %hook.id, event = %ev.id, attempt,
                "webhook delivery {why}; retrying in {wait:?}");
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(MAX_BACKOFF);
        }
        true
    }
}
