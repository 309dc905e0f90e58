//! Synthetic RTP for media tests: numbered packets with their send time, and a
//! recorder of what a subscriber receives.
#![allow(dead_code)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rtc::rtp::{Header, Packet};
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};

/// Writes numbered packets every 10 ms until `stop`; the payload is the 8-byte index,
/// then the send time in microseconds since `epoch`.
pub fn pump(
    track: Arc<TrackLocalStaticRTP>,
    pt: u8,
    ssrc: u32,
    epoch: Instant,
    stop: Arc<AtomicBool>,
) {
    tokio::spawn(async move {
        let mut i: u64 = 0;
        while !stop.load(Ordering::Relaxed) {
            let mut payload = i.to_be_bytes().to_vec();
            payload.extend((epoch.elapsed().as_micros() as u64).to_be_bytes());
            if pt == 96 {
                // A VP8 payload descriptor then a keyframe-looking byte, so it parses.
                payload.splice(0..0, [0x10u8, 0x00]);
            }
            let pkt = Packet {
                header: Header {
                    version: 2,
                    marker: true,
                    payload_type: pt,
                    sequence_number: i as u16,
                    timestamp: (i as u32).wrapping_mul(960),
                    ssrc,
                    ..Default::default()
                },
                payload: Bytes::from(payload),
            };
            let _ = track.write_rtp(pkt).await;
            i += 1;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
}

/// Reads a subscribed track, recording the index of every packet received.
pub fn record(track: Arc<dyn TrackRemote>, video: bool) -> Arc<Mutex<Vec<u64>>> {
    record_timed(track, video, None).0
}

/// Transit times in microseconds (arrival minus the send time the packet carries).
pub type Delays = Arc<Mutex<Vec<u64>>>;

/// `record`, and with the `epoch` the packets were sent against, their transit times.
pub fn record_timed(
    track: Arc<dyn TrackRemote>,
    video: bool,
    epoch: Option<Instant>,
) -> (Recorded, Delays) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let delays = Arc::new(Mutex::new(Vec::new()));
    let (s, d) = (seen.clone(), delays.clone());
    tokio::spawn(async move {
        while let Some(ev) = track.poll().await {
            if let TrackRemoteEvent::OnRtpPacket(p) = ev {
                let skip = if video { 2 } else { 0 };
                let word = |at: usize| {
                    let mut b = [0u8; 8];
                    b.copy_from_slice(&p.payload[at..at + 8]);
                    u64::from_be_bytes(b)
                };
                if p.payload.len() >= skip + 8 {
                    s.lock().unwrap().push(word(skip));
                }
                if p.payload.len() >= skip + 16 {
                    if let Some(epoch) = epoch {
                        let now = epoch.elapsed().as_micros() as u64;
                        d.lock().unwrap().push(now.saturating_sub(word(skip + 8)));
                    }
                }
            }
        }
    });
    (seen, delays)
}

/// The median and 99th percentile of `d`, in milliseconds.
pub fn median_p99_ms(d: &Delays) -> (f64, f64) {
    let mut v = d.lock().unwrap().clone();
    v.sort_unstable();
    if v.is_empty() {
        return (0.0, 0.0);
    }
    let at = |q: f64| v[((v.len() - 1) as f64 * q) as usize] as f64 / 1000.0;
    (at(0.5), at(0.99))
}

pub async fn wait_until(what: &str, f: impl Fn() -> bool) {
    tokio::time::timeout(Duration::from_secs(15), async {
        while !f() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("timed out waiting for {what}"));
}

pub fn in_order_without_gaps(seen: &[u64]) -> bool {
    seen.windows(2).all(|w| w[1] == w[0] + 1)
}

/// What `record` keeps: the indexes received, in order of arrival.
pub type Recorded = Arc<Mutex<Vec<u64>>>;

/// Takes the next `n` tracks a subscriber gets (10 s each at most) and records each:
/// whether it is video, the track, and what arrives on it.
pub async fn record_tracks(
    tracks: &mut tokio::sync::mpsc::UnboundedReceiver<Arc<dyn TrackRemote>>,
    n: usize,
) -> Vec<(bool, Arc<dyn TrackRemote>, Recorded)> {
    record_tracks_timed(tracks, n, None).await.0
}

/// `record_tracks`, with each track's transit times (see `record_timed`).
pub async fn record_tracks_timed(
    tracks: &mut tokio::sync::mpsc::UnboundedReceiver<Arc<dyn TrackRemote>>,
    n: usize,
    epoch: Option<Instant>,
) -> (Vec<(bool, Arc<dyn TrackRemote>, Recorded)>, Vec<Delays>) {
    let (mut got, mut delays) = (vec![], vec![]);
    for _ in 0..n {
        let t = tokio::time::timeout(Duration::from_secs(10), tracks.recv())
            .await
            .expect("a track arrives")
            .expect("the subscriber is up");
        let is_video = t.kind().await == rtc::rtp_transceiver::rtp_sender::RtpCodecKind::Video;
        let (seen, d) = record_timed(t.clone(), is_video, epoch);
        got.push((is_video, t, seen));
        delays.push(d);
    }
    (got, delays)
}

/// Waits for 100 packets on each recorded track; they came in order, without gaps.
pub async fn expect_100_in_order(got: &[(bool, Arc<dyn TrackRemote>, Recorded)]) {
    for (is_video, _, seen) in got {
        let seen = seen.clone();
        wait_until("100 packets", || seen.lock().unwrap().len() >= 100).await;
        let v = seen.lock().unwrap().clone();
        assert!(
            in_order_without_gaps(&v),
            "video={is_video}: gaps or reordering: {:?}",
            &v[..20.min(v.len())]
        );
    }
}
