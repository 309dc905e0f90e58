//! Light client peers: many WebRTC clients on a few threads, each thread with one UDP
//! socket, so the load tool (and the server's tests) can drive and sink hundreds of
//! thousands of packets per second without being the bottleneck.
//!
//! Every peer is a full-ICE `rtc` state machine (webrtc-rs's sans-IO core, the same the
//! relay runs) with an address of its own on loopback (127.1.0.1, 127.1.0.2, ...):
//! one socket bound to the wildcard receives for all of them (IP_PKTINFO says which)
//! and sends from each one's address, so to the SFU every peer is a distinct client.
//! Peers publish synthetic RTP (payload: packet index and send time) and count what
//! they receive into a `Sink`. They send to loopback addresses only: anything else the
//! ICE agent wants to send is dropped.

mod peer;
mod thread;

use std::io;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use rtc::rtp;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use tokio::sync::{mpsc, oneshot};

pub use peer::read_fields;
pub use thread::PAYLOAD_FIELDS;

/// A VP8 packet's payload: the size of a typical fragment.
pub const VIDEO_PAYLOAD_BYTES: usize = 1000;
/// An Opus packet's payload: 48 kbit/s in 20 ms frames.
pub const AUDIO_PAYLOAD_BYTES: usize = 120;
/// Opus in WebRTC: one packet per 20 ms frame.
pub const AUDIO_PPS: u32 = 50;

/// What a peer receives is counted here (called on the pool thread: keep it cheap).
pub trait Sink: Send + Sync {
    fn rtp(&self, peer: u64, kind: RtpCodecKind, pkt: &rtp::Packet, now: Instant);
}

/// A track a peer publishes.
#[derive(Debug, Clone, Copy)]
pub struct SendTrack {
    pub kind: RtpCodecKind,
    pub pps: u32,
    pub payload: usize,
}

impl SendTrack {
    pub fn video(pps: u32) -> Self {
        Self {
            kind: RtpCodecKind::Video,
            pps,
            payload: VIDEO_PAYLOAD_BYTES,
        }
    }
    pub fn audio() -> Self {
        Self {
            kind: RtpCodecKind::Audio,
            pps: AUDIO_PPS,
            payload: AUDIO_PAYLOAD_BYTES,
        }
    }
}

/// What happens to a peer, for the async side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerEvent {
    Connected,
    Failed,
    /// A track arrived: its kind, SSRC, and the stream and track ids in the SDP.
    Track {
        kind: RtpCodecKind,
        ssrc: u32,
        stream_id: String,
        track_id: String,
    },
}

/// Counters of one peer, readable any time.
#[derive(Debug, Default)]
pub struct PeerStats {
    pub sent: AtomicU64,
    pub received: AtomicU64,
    /// Keyframe requests (PLI/FIR) the SFU sent this peer's tracks.
    pub keyframe_requests: AtomicU64,
}

enum Cmd {
    Create {
        id: u64,
        ip: Ipv4Addr,
        send: Vec<SendTrack>,
        receive: bool,
        sink: Option<Arc<dyn Sink>>,
        stats: Arc<PeerStats>,
        events: mpsc::UnboundedSender<PeerEvent>,
    },
    Offer(u64, oneshot::Sender<Result<String, String>>),
    Answer(u64, String, oneshot::Sender<Result<String, String>>),
    AcceptAnswer(u64, String, oneshot::Sender<Result<(), String>>),
    Sending(u64, bool),
    /// Moves the peer to a new source port, as a NAT rebinding would.
    Rebind(u64),
    /// Drops what arrives for this peer (a client that cannot keep up).
    Stall(u64, bool),
    /// Drops everything the peer sends and receives (a client gone away silently).
    Dark(u64, bool),
    Close(u64),
    Shutdown,
}

struct ThreadHandle {
    tx: std::sync::mpsc::Sender<Cmd>,
    waker: mediaio::Waker,
    join: std::sync::Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl ThreadHandle {
    fn send(&self, cmd: Cmd) -> bool {
        let ok = self.tx.send(cmd).is_ok();
        self.waker.wake();
        ok
    }
}

/// The threads and their peers. Dropping it stops the threads.
pub struct Pool {
    threads: Vec<Arc<ThreadHandle>>,
    next_thread: AtomicUsize,
    next_peer: AtomicU64,
    next_ip: AtomicU32,
    /// Send times in payloads are microseconds since this.
    pub epoch: Instant,
}

impl Pool {
    /// `threads` threads; peers' addresses start at 127.`first_octet`.0.1.
    pub fn start(threads: usize, first_octet: u8) -> io::Result<Arc<Self>> {
        let epoch = Instant::now();
        let shared = Arc::new(thread::Shared::new().map_err(io::Error::other)?);
        let mut handles = vec![];
        for i in 0..threads.max(1) {
            let (tx, rx) = std::sync::mpsc::channel();
            let waker = mediaio::Waker::new()?;
            let socket = mediaio::bind("0.0.0.0:0".parse().expect("an address"))?;
            let wake_fd = waker.fd();
            let shared = shared.clone();
            let join = std::thread::Builder::new()
                .name(format!("load-peers-{i}"))
                .spawn(move || thread::run(socket, wake_fd, rx, shared, epoch))?;
            handles.push(Arc::new(ThreadHandle {
                tx,
                waker,
                join: std::sync::Mutex::new(Some(join)),
            }));
        }
        Ok(Arc::new(Self {
            threads: handles,
            next_thread: AtomicUsize::new(0),
            next_peer: AtomicU64::new(1),
            next_ip: AtomicU32::new(u32::from(Ipv4Addr::new(127, first_octet, 0, 1))),
            epoch,
        }))
    }

    /// A new peer that publishes `send` and, if `receive`, counts what arrives into
    /// `sink`.
    pub fn peer(&self, send: Vec<SendTrack>, receive: bool, sink: Option<Arc<dyn Sink>>) -> Peer {
        let id = self.next_peer.fetch_add(1, Ordering::Relaxed);
        let thread = self.threads
            [self.next_thread.fetch_add(1, Ordering::Relaxed) % self.threads.len()]
        .clone();
        // Skip .0 and .255 so every address looks like a host's.
        let ip = loop {
            let ip = Ipv4Addr::from(self.next_ip.fetch_add(1, Ordering::Relaxed));
            let last = ip.octets()[3];
            if last != 0 && last != 255 {
                break ip;
            }
        };
        let (events_tx, events) = mpsc::unbounded_channel();
        let stats = Arc::new(PeerStats::default());
        thread.send(Cmd::Create {
            id,
            ip,
            send,
            receive,
            sink,
            stats: stats.clone(),
            events: events_tx,
        });
        Peer {
            id,
            ip,
            thread,
            events: tokio::sync::Mutex::new(events),
            stats,
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        for t in &self.threads {
            t.send(Cmd::Shutdown);
        }
        for t in &self.threads {
            if let Some(j) = t.join.lock().ok().and_then(|mut j| j.take()) {
                let _ = j.join();
            }
        }
    }
}

/// One client peer. Dropped, it is closed.
pub struct Peer {
    pub id: u64,
    /// Its address (one of loopback's), as the SFU sees it.
    pub ip: Ipv4Addr,
    thread: Arc<ThreadHandle>,
    events: tokio::sync::Mutex<mpsc::UnboundedReceiver<PeerEvent>>,
    pub stats: Arc<PeerStats>,
}

impl Peer {
    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Cmd) -> Result<T, String> {
        let (tx, rx) = oneshot::channel();
        if !self.thread.send(make(tx)) {
            return Err("the peer's thread has stopped".into());
        }
        rx.await
            .map_err(|_| "the peer's thread has stopped".to_string())
    }

    /// createOffer + setLocalDescription (with our host candidate): the SDP to send.
    pub async fn offer(&self) -> Result<String, String> {
        self.ask(|tx| Cmd::Offer(self.id, tx)).await?
    }

    /// setRemoteDescription(offer) + createAnswer + setLocalDescription: the answer.
    pub async fn answer(&self, offer: String) -> Result<String, String> {
        self.ask(|tx| Cmd::Answer(self.id, offer, tx)).await?
    }

    pub async fn accept_answer(&self, answer: String) -> Result<(), String> {
        self.ask(|tx| Cmd::AcceptAnswer(self.id, answer, tx))
            .await?
    }

    /// Starts (or stops) sending on every published track.
    pub fn set_sending(&self, on: bool) {
        self.thread.send(Cmd::Sending(self.id, on));
    }

    /// From now on the peer sends from (and listens on) a new port: a NAT rebinding.
    pub fn rebind(&self) {
        self.thread.send(Cmd::Rebind(self.id));
    }

    /// Stops (or resumes) reading this peer's packets: a client that cannot keep up.
    pub fn stall(&self, on: bool) {
        self.thread.send(Cmd::Stall(self.id, on));
    }

    /// Stops (or resumes) everything the peer sends and receives: a client gone away
    /// without a word.
    pub fn go_dark(&self, on: bool) {
        self.thread.send(Cmd::Dark(self.id, on));
    }

    /// Waits for an event matching `f`, up to `wait`.
    pub async fn wait_for(
        &self,
        wait: std::time::Duration,
        f: impl Fn(&PeerEvent) -> bool,
    ) -> Result<PeerEvent, String> {
        let mut events = self.events.lock().await;
        tokio::time::timeout(wait, async {
            while let Some(ev) = events.recv().await {
                if f(&ev) {
                    return Ok(ev);
                }
            }
            Err("the peer closed".to_string())
        })
        .await
        .map_err(|_| "timed out".to_string())?
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.thread.send(Cmd::Close(self.id));
    }
}
