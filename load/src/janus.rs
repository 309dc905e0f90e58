//! A media member against Janus's VideoRoom, through Janus's HTTP long-poll API, with the
//! same light peers and the same counting as against Convene: the comparison differs
//! only in the SFU. Each member is a Janus session of its own (as a browser would be),
//! with a publisher handle (`joinandconfigure` with our offer) and a subscriber handle
//! (`join` as subscriber; Janus offers, we answer with `start`). Both sides' candidates
//! travel in the SDPs (Janus gathers its own into its SDP; ours is in each of ours).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use convene_load::pool::{Peer, PeerStats};
use serde_json::{json, Value};
use tokio::sync::mpsc::{self, UnboundedReceiver, UnboundedSender};

use crate::convene_media::Run;
use crate::media::{send_tracks, MediaMember};

const PLUGIN: &str = "janus.plugin.videoroom";
/// Every request and every awaited event gives up after this.
const TIMEOUT: Duration = Duration::from_secs(20);

type Result<T> = std::result::Result<T, String>;

static TRANSACTIONS: AtomicU64 = AtomicU64::new(1);

fn transaction() -> String {
    format!("t{}", TRANSACTIONS.fetch_add(1, Ordering::Relaxed))
}

/// Janus's HTTP API root, e.g. `http://127.0.0.1:8088/janus`.
#[derive(Clone)]
pub struct Janus {
    base: String,
    http: reqwest::Client,
}

impl Janus {
    pub fn new(base: &str) -> Result<Self> {
        let http = reqwest::Client::builder()
            // Long polls hold a connection each; idle ones are not worth keeping.
            .pool_max_idle_per_host(64)
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self {
            base: base.trim_end_matches('/').to_string(),
            http,
        })
    }

    async fn post(&self, path: &str, mut body: Value) -> Result<Value> {
        body["transaction"] = json!(transaction());
        let url = format!("{}{path}", self.base);
        let v: Value = self
            .http
            .post(&url)
            .json(&body)
            .timeout(TIMEOUT)
            .send()
            .await
            .map_err(|e| format!("janus {url}: {e}"))?
            .json()
            .await
            .map_err(|e| format!("janus {url}: {e}"))?;
        if v["janus"] == "error" {
            return Err(format!("janus {url}: {}", v["error"]));
        }
        Ok(v)
    }
}

/// Events of one handle, routed by the session's poller.
type Routes = Arc<Mutex<HashMap<u64, UnboundedSender<Value>>>>;

/// A Janus session with its long-poll reader and keepalive; destroyed by `destroy`.
pub struct Session {
    janus: Janus,
    id: u64,
    routes: Routes,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Session {
    pub async fn create(janus: &Janus) -> Result<Self> {
        let v = janus.post("", json!({"janus": "create"})).await?;
        let id = v["data"]["id"].as_u64().ok_or("no session id")?;
        let routes: Routes = Arc::default();
        let (j, r) = (janus.clone(), routes.clone());
        let poller = tokio::spawn(async move {
            let url = format!("{}/{id}?maxev=10", j.base);
            loop {
                // Janus answers a long poll within 30 s, with a keepalive if nothing else.
                let resp = j
                    .http
                    .get(&url)
                    .timeout(Duration::from_secs(40))
                    .send()
                    .await;
                let Ok(resp) = resp else {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                };
                let Ok(v) = resp.json::<Value>().await else {
                    continue;
                };
                let events = match v {
                    Value::Array(a) => a,
                    other => vec![other],
                };
                for ev in events {
                    if ev["janus"] == "error" {
                        return; // the session is gone
                    }
                    let Some(handle) = ev["sender"].as_u64() else {
                        continue;
                    };
                    if let Some(tx) = r.lock().ok().and_then(|m| m.get(&handle).cloned()) {
                        let _ = tx.send(ev);
                    }
                }
            }
        });
        let j = janus.clone();
        let keepalive = tokio::spawn(async move {
            // Janus ends a session after `session_timeout` without a request.
            let mut tick = tokio::time::interval(Duration::from_secs(10));
            tick.tick().await;
            loop {
                tick.tick().await;
                let _ = j
                    .post(&format!("/{id}"), json!({"janus": "keepalive"}))
                    .await;
            }
        });
        Ok(Self {
            janus: janus.clone(),
            id,
            routes,
            tasks: vec![poller, keepalive],
        })
    }

    pub async fn attach(&self) -> Result<Handle> {
        let v = self
            .janus
            .post(
                &format!("/{}", self.id),
                json!({"janus": "attach", "plugin": PLUGIN}),
            )
            .await?;
        let id = v["data"]["id"].as_u64().ok_or("no handle id")?;
        let (tx, events) = mpsc::unbounded_channel();
        if let Ok(mut m) = self.routes.lock() {
            m.insert(id, tx);
        }
        Ok(Handle {
            janus: self.janus.clone(),
            path: format!("/{}/{id}", self.id),
            events: tokio::sync::Mutex::new(events),
        })
    }

    pub async fn destroy(self) {
        let _ = self
            .janus
            .post(&format!("/{}", self.id), json!({"janus": "destroy"}))
            .await;
        for t in self.tasks {
            t.abort();
        }
    }
}

pub struct Handle {
    janus: Janus,
    path: String,
    events: tokio::sync::Mutex<UnboundedReceiver<Value>>,
}

impl Handle {
    /// A plugin request. Synchronous ones (`create`) answer at once; asynchronous ones
    /// (`join`, `start`) are acknowledged and answered by an event with our transaction.
    /// Returns the whole reply (plugin data under `plugindata.data`, SDP under `jsep`).
    pub async fn request(&self, body: Value, jsep: Option<Value>) -> Result<Value> {
        let mut msg = json!({"janus": "message", "body": body});
        if let Some(j) = jsep {
            msg["jsep"] = j;
        }
        // Take the event queue first, so an event cannot be read by another request.
        let mut events = self.events.lock().await;
        let reply = self.janus.post(&self.path, msg).await?;
        let reply = if reply["janus"] == "ack" {
            let tr = reply["transaction"].clone();
            let deadline = tokio::time::Instant::now() + TIMEOUT;
            loop {
                let ev = tokio::time::timeout_at(deadline, events.recv())
                    .await
                    .map_err(|_| format!("janus: no answer to {body}"))?
                    .ok_or("janus: session ended")?;
                if ev["janus"] == "event" && ev["transaction"] == tr {
                    break ev;
                }
            }
        } else {
            reply
        };
        let data = &reply["plugindata"]["data"];
        if data["videoroom"] == "event" && !data["error"].is_null() {
            return Err(format!("janus: {} -> {}", body["request"], data["error"]));
        }
        Ok(reply)
    }

    /// Waits for a core event of type `kind` on this handle, e.g. `webrtcup`: the
    /// connection is up (ICE and DTLS done).
    async fn wait_for(&self, kind: &str) -> Result<()> {
        let mut events = self.events.lock().await;
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        loop {
            let ev = tokio::time::timeout_at(deadline, events.recv())
                .await
                .map_err(|_| format!("janus: no {kind}"))?
                .ok_or("janus: session ended")?;
            if ev["janus"] == kind {
                return Ok(());
            }
            if ev["janus"] == "hangup" {
                return Err(format!("janus: hangup before {kind}: {}", ev["reason"]));
            }
        }
    }
}

/// Creates room `room` with room for `publishers`, Opus and VP8 only, no bitrate cap (the
/// synthetic streams do not adapt to REMB anyway).
pub async fn create_room(janus: &Janus, room: u64, publishers: usize) -> Result<()> {
    let s = Session::create(janus).await?;
    let h = s.attach().await?;
    let r = h
        .request(
            json!({"request": "create", "room": room, "publishers": publishers.max(1),
                   "audiocodec": "opus", "videocodec": "vp8", "bitrate": 0,
                   "fir_freq": 0, "notify_joining": false, "permanent": false}),
            None,
        )
        .await;
    s.destroy().await;
    match r {
        Ok(v) if v["plugindata"]["data"]["videoroom"] == "created" => Ok(()),
        Ok(v) => Err(format!("janus: room not created: {v}")),
        Err(e) => Err(e),
    }
}

/// A member's session while it joins in two steps: publish first (so every feed exists),
/// then subscribe to the others.
pub struct JanusMember {
    session: Session,
    peers: Vec<Arc<Peer>>,
    publishers: Vec<Arc<PeerStats>>,
    // Handles stay alive with the session; dropping them changes nothing on Janus.
    handles: Vec<Arc<Handle>>,
}

/// Opens a session and, if `feed` is given, publishes as that feed id.
pub async fn publish(
    janus: &Janus,
    room: u64,
    feed: Option<u64>,
    run: &Run,
) -> Result<JanusMember> {
    let session = Session::create(janus).await?;
    let mut m = JanusMember {
        session,
        peers: Vec::new(),
        publishers: Vec::new(),
        handles: Vec::new(),
    };
    let Some(feed) = feed else {
        return Ok(m);
    };
    let h = Arc::new(m.session.attach().await?);
    let pc = Arc::new(
        run.pool
            .peer(send_tracks(run.kind, run.video_pps), false, None),
    );
    m.peers.push(pc.clone());
    m.publishers.push(pc.stats.clone());
    let sdp = pc.offer().await?;
    let reply = h
        .request(
            json!({"request": "joinandconfigure", "room": room, "ptype": "publisher",
                   "id": feed, "display": format!("p{feed}")}),
            Some(json!({"type": "offer", "sdp": sdp})),
        )
        .await?;
    let answer = reply["jsep"]["sdp"]
        .as_str()
        .ok_or_else(|| format!("janus: no answer SDP in {}", reply["plugindata"]))?;
    pc.accept_answer(answer.to_string()).await?;
    pc.set_sending(true);
    // Janus lists a feed for subscribers only once its connection is up.
    h.wait_for("webrtcup").await?;
    m.handles.push(h);
    Ok(m)
}

/// Subscribes `m` to `feeds` (all their streams) on one connection, then makes it a
/// finished member. `receive_only` says whether its time to first media is recorded.
pub async fn subscribe(
    mut m: JanusMember,
    room: u64,
    feeds: Vec<u64>,
    receive_only: bool,
    joined_at: Instant,
    run: &Run,
) -> Result<MediaMember> {
    if !feeds.is_empty() {
        let h = Arc::new(m.session.attach().await?);
        let pc = Arc::new(run.pool.peer(vec![], true, Some(run.sink.clone())));
        run.sink.register(pc.id, joined_at, receive_only);
        m.peers.push(pc.clone());
        let streams: Vec<Value> = feeds.iter().map(|f| json!({"feed": f})).collect();
        let reply = h
            .request(
                json!({"request": "join", "room": room, "ptype": "subscriber",
                       "streams": streams}),
                None,
            )
            .await?;
        let offer = reply["jsep"]["sdp"]
            .as_str()
            .ok_or_else(|| format!("janus: no offer in {}", reply["plugindata"]))?;
        let sdp = pc.answer(offer.to_string()).await?;
        h.request(
            json!({"request": "start", "room": room}),
            Some(json!({"type": "answer", "sdp": sdp})),
        )
        .await?;
        m.handles.push(h);
    }
    let session = m.session;
    drop(m.handles);
    Ok(MediaMember {
        peers: m.peers,
        publishers: m.publishers,
        bye: Some(Box::pin(session.destroy())),
    })
}
