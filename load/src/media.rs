//! What every media member does whichever SFU it talks to: publish synthetic Opus and
//! VP8 RTP (payload: packet index and send time) from light client peers (the pool:
//! many peers per thread, one socket per thread) and count what its subscribe
//! connection receives: packets, gaps, one-way latency on loopback and the time to the
//! first packet. The SFU-specific signaling lives in `convene_media.rs` and `janus.rs`;
//! both use the same peers and feed the same `Tally`, so the figures of the two SFUs
//! are computed by the same code.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use convene_load::pool::{read_fields, Peer, PeerStats, SendTrack, Sink};
use rtc::rtp::Packet;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;

/// What each publisher sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// One VP8 track at `--pps`.
    Video,
    /// One Opus track at 50 packets/s.
    Audio,
    /// Both, as a camera-and-microphone participant sends.
    Av,
}

impl Kind {
    pub fn tracks(self) -> &'static [RtpCodecKind] {
        match self {
            Kind::Video => &[RtpCodecKind::Video],
            Kind::Audio => &[RtpCodecKind::Audio],
            Kind::Av => &[RtpCodecKind::Audio, RtpCodecKind::Video],
        }
    }
}

/// What all receivers of a run received.
#[derive(Default)]
pub struct Tally {
    pub received: AtomicU64,
    /// Packets missing between the first and last index seen, per track.
    pub gaps: AtomicU64,
    pub latencies_us: Mutex<Vec<u64>>,
    /// Only packets sent after this (µs since the epoch) count, so the ramp-up of
    /// connections is not measured as loss.
    pub window_start_us: AtomicU64,
    /// Members whose subscribe connection delivered at least one packet.
    pub members_with_media: AtomicU64,
    /// Per receive-only member: from the start of its join to its first packet.
    pub first_media_us: Mutex<Vec<u64>>,
}

impl Tally {
    pub fn new() -> Arc<Self> {
        let t = Tally::default();
        t.window_start_us.store(u64::MAX, Ordering::Relaxed);
        Arc::new(t)
    }
}

type Bye = Pin<Box<dyn Future<Output = ()> + Send>>;

/// One joined member: its light peers, the counters of those that publish, and how to
/// leave.
pub struct MediaMember {
    pub peers: Vec<Arc<Peer>>,
    pub publishers: Vec<Arc<PeerStats>>,
    pub bye: Option<Bye>,
}

impl MediaMember {
    /// Packets its publishing peers have sent.
    pub fn sent(&self) -> u64 {
        self.publishers
            .iter()
            .map(|s| s.sent.load(Ordering::Relaxed))
            .sum()
    }

    pub fn stop_sending(&self) {
        for p in &self.peers {
            p.set_sending(false);
        }
    }

    pub async fn close(self) {
        drop(self.peers);
        if let Some(bye) = self.bye {
            let _ = tokio::time::timeout(Duration::from_secs(5), bye).await;
        }
    }
}

/// The tracks a publisher sends: video at `video_pps`, audio at 50 packets/s.
pub fn send_tracks(kind: Kind, video_pps: u32) -> Vec<SendTrack> {
    kind.tracks()
        .iter()
        .map(|k| match k {
            RtpCodecKind::Audio => SendTrack::audio(),
            _ => SendTrack::video(video_pps.max(1)),
        })
        .collect()
}

/// Counts what every receiving peer of a run gets into its `Tally`. Called on the pool
/// threads; the per-stream state is sharded so they rarely meet on a lock.
pub struct TallySink {
    tally: Arc<Tally>,
    epoch: Instant,
    shards: Vec<Mutex<HashMap<u64, PeerState>>>,
}

#[derive(Default)]
struct PeerState {
    joined_at: Option<Instant>,
    record_first: bool,
    got_first: bool,
    last: HashMap<u32, u64>,
}

const SHARDS: usize = 16;

impl TallySink {
    pub fn new(tally: Arc<Tally>, epoch: Instant) -> Arc<Self> {
        Arc::new(Self {
            tally,
            epoch,
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
        })
    }

    /// `peer` started joining at `joined_at`; `record_first`: its time to the first
    /// packet counts (receive-only members; publishers wait for one another).
    pub fn register(&self, peer: u64, joined_at: Instant, record_first: bool) {
        if let Ok(mut m) = self.shards[peer as usize % SHARDS].lock() {
            let st = m.entry(peer).or_default();
            st.joined_at = Some(joined_at);
            st.record_first = record_first;
        }
    }
}

impl Sink for TallySink {
    fn rtp(&self, peer: u64, _kind: RtpCodecKind, pkt: &Packet, _now: Instant) {
        let Some((idx, sent_us)) = read_fields(&pkt.payload) else {
            return;
        };
        // A std Mutex held for a few map operations, never across an await.
        let Ok(mut m) = self.shards[peer as usize % SHARDS].lock() else {
            return;
        };
        let st = m.entry(peer).or_default();
        if !st.got_first {
            st.got_first = true;
            self.tally
                .members_with_media
                .fetch_add(1, Ordering::Relaxed);
            if let (true, Some(at)) = (st.record_first, st.joined_at) {
                if let Ok(mut v) = self.tally.first_media_us.lock() {
                    v.push(at.elapsed().as_micros() as u64);
                }
            }
        }
        let last = st.last.get(&pkt.header.ssrc).copied();
        st.last.insert(pkt.header.ssrc, idx.max(last.unwrap_or(0)));
        if sent_us < self.tally.window_start_us.load(Ordering::Relaxed) {
            return;
        }
        let now_us = self.epoch.elapsed().as_micros() as u64;
        self.tally.received.fetch_add(1, Ordering::Relaxed);
        if let Some(l) = last {
            if idx > l + 1 {
                self.tally.gaps.fetch_add(idx - l - 1, Ordering::Relaxed);
            }
        }
        if let Ok(mut v) = self.tally.latencies_us.lock() {
            v.push(now_us.saturating_sub(sent_us));
        }
    }
}
