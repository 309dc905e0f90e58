//! What every media member does whichever SFU it talks to: publish synthetic Opus and
//! VP8 RTP (payload: packet index and send time) and count what its subscribe connection
//! receives: packets, gaps, one-way latency on loopback and the time to the first packet.
//! The SFU-specific signaling lives in `convene_media.rs` and `janus.rs`; both feed the
//! same `Tally`, so the figures of the two SFUs are computed by the same code.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use convene_load::client::{local_track, Pc};
use rtc::rtp::{Header, Packet};
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use tokio::sync::mpsc::UnboundedReceiver;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};

/// A video packet's payload: the size of a typical VP8 fragment.
pub const VIDEO_PAYLOAD_BYTES: usize = 1000;
/// An audio packet's payload: Opus at 48 kbit/s in 20 ms frames.
pub const AUDIO_PAYLOAD_BYTES: usize = 120;
/// Opus in WebRTC sends one packet per 20 ms frame.
pub const AUDIO_PPS: u32 = 50;
/// Bytes 2..10 hold the packet index and 10..18 the send time; bytes 0..2 are left for
/// the codec's own header (the VP8 descriptor), so nothing in the path mistakes them.
const MIN_PAYLOAD: usize = 18;

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

/// One joined member: its peer connections, the packets it sent, and how to leave.
pub struct MediaMember {
    pub pcs: Vec<Pc>,
    pub sent: Arc<AtomicU64>,
    pub bye: Option<Bye>,
}

impl MediaMember {
    pub async fn close(self) {
        for pc in &self.pcs {
            let _ = pc.close().await;
        }
        if let Some(bye) = self.bye {
            let _ = tokio::time::timeout(Duration::from_secs(5), bye).await;
        }
    }
}

/// Outgoing tracks added to a publishing connection, to be started once negotiated.
pub struct Outgoing(Vec<(Arc<TrackLocalStaticRTP>, RtpCodecKind, u32)>);

/// Adds one track per kind to `pc`; call before creating the offer.
pub async fn add_tracks(pc: &Pc, kind: Kind) -> Result<Outgoing, String> {
    let mut out = Vec::new();
    for &k in kind.tracks() {
        let ssrc: u32 = rand::random();
        let id = if k == RtpCodecKind::Audio {
            "mic"
        } else {
            "cam"
        };
        let track = local_track(k, id, ssrc);
        pc.add_track(track.clone() as Arc<dyn TrackLocal>)
            .await
            .map_err(|e| e.to_string())?;
        out.push((track, k, ssrc));
    }
    Ok(Outgoing(out))
}

/// Sends on every track until `stop`: video at `video_pps`, audio at 50 packets/s.
pub fn start_sending(
    out: Outgoing,
    video_pps: u32,
    epoch: Instant,
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
) {
    for (track, k, ssrc) in out.0 {
        let audio = k == RtpCodecKind::Audio;
        let (pps, bytes, pt, ts_step) = if audio {
            (AUDIO_PPS, AUDIO_PAYLOAD_BYTES, 111, 960u32)
        } else {
            (video_pps.max(1), VIDEO_PAYLOAD_BYTES, 96, 3000u32)
        };
        let (sent, stop) = (sent.clone(), stop.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / pps as f64));
            let mut i: u64 = 0;
            while !stop.load(Ordering::Relaxed) {
                tick.tick().await;
                let mut payload = vec![0u8; bytes];
                // VP8: a descriptor saying "start of partition"; Opus: a TOC byte for a
                // 20 ms CELT frame. Only the bytes after them carry our fields.
                payload[0] = if audio { 0xfc } else { 0x10 };
                payload[2..10].copy_from_slice(&i.to_be_bytes());
                payload[10..18]
                    .copy_from_slice(&(epoch.elapsed().as_micros() as u64).to_be_bytes());
                let pkt = Packet {
                    header: Header {
                        version: 2,
                        payload_type: pt,
                        sequence_number: i as u16,
                        timestamp: (i as u32).wrapping_mul(ts_step),
                        ssrc,
                        marker: !audio,
                        ..Default::default()
                    },
                    payload: Bytes::from(payload),
                };
                if track.write_rtp(pkt).await.is_err() {
                    break;
                }
                sent.fetch_add(1, Ordering::Relaxed);
                i += 1;
            }
        });
    }
}

/// Counts every packet on the tracks arriving on `tracks` into `tally`. `joined_at` is
/// when the member started joining; `first_media` says whether its time to the first
/// packet is recorded (only receive-only members: publishers wait for one another).
pub fn count_tracks(
    mut tracks: UnboundedReceiver<Arc<dyn TrackRemote>>,
    tally: Arc<Tally>,
    epoch: Instant,
    joined_at: Instant,
    first_media: bool,
) {
    let got_first = Arc::new(AtomicBool::new(false));
    tokio::spawn(async move {
        while let Some(t) = tracks.recv().await {
            let (tally, got_first) = (tally.clone(), got_first.clone());
            tokio::spawn(async move {
                let mut last: Option<u64> = None;
                while let Some(ev) = t.poll().await {
                    let TrackRemoteEvent::OnRtpPacket(p) = ev else {
                        continue;
                    };
                    if p.payload.len() < MIN_PAYLOAD {
                        continue;
                    }
                    if !got_first.swap(true, Ordering::Relaxed) {
                        tally.members_with_media.fetch_add(1, Ordering::Relaxed);
                        if first_media {
                            if let Ok(mut v) = tally.first_media_us.lock() {
                                v.push(joined_at.elapsed().as_micros() as u64);
                            }
                        }
                    }
                    let idx = u64::from_be_bytes(p.payload[2..10].try_into().unwrap_or_default());
                    let sent_us =
                        u64::from_be_bytes(p.payload[10..18].try_into().unwrap_or_default());
                    if sent_us < tally.window_start_us.load(Ordering::Relaxed) {
                        last = Some(idx);
                        continue;
                    }
                    let now_us = epoch.elapsed().as_micros() as u64;
                    tally.received.fetch_add(1, Ordering::Relaxed);
                    if let Some(l) = last {
                        if idx > l + 1 {
                            tally.gaps.fetch_add(idx - l - 1, Ordering::Relaxed);
                        }
                    }
                    last = Some(idx.max(last.unwrap_or(0)));
                    // A std Mutex, never held across an await: one push per packet.
                    if let Ok(mut v) = tally.latencies_us.lock() {
                        v.push(now_us.saturating_sub(sent_us));
                    }
                }
            });
        }
    });
}
