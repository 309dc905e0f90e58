//! Media members: webrtc-rs clients that join over the real signaling socket, publish
//! synthetic VP8 RTP (payload: packet index and send time) and measure what their
//! subscribe connection receives: count, gaps, and one-way latency on loopback.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use convene_load::client::{candidate_frame, local_track, peer, Pc};
use futures_util::{SinkExt, StreamExt};
use rtc::rtp::{Header, Packet};
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use serde_json::{json, Value};
use tokio::sync::mpsc::{self, UnboundedSender};
use tokio_tungstenite::tungstenite::Message;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_remote::TrackRemoteEvent;
use webrtc::peer_connection::{RTCIceCandidateInit, RTCSessionDescription};

pub const PAYLOAD_BYTES: usize = 1000;

/// What all subscribers of a run received.
#[derive(Default)]
pub struct Tally {
    pub received: AtomicU64,
    /// Packets missing between the first and last index seen, per track.
    pub gaps: AtomicU64,
    pub latencies_us: Mutex<Vec<u64>>,
    /// Only packets sent after this (µs since the epoch) count, so the ramp-up of
    /// connections is not measured as loss.
    pub window_start_us: AtomicU64,
}

pub struct MediaMember {
    pub pcs: Vec<Pc>,
    pub out: UnboundedSender<Value>,
    pub sent: Arc<AtomicU64>,
}

impl MediaMember {
    pub async fn close(self) {
        for pc in &self.pcs {
            let _ = pc.close().await;
        }
        let _ = self.out.send(json!({"type": "leave"}));
    }
}

/// Joins, subscribes, and (if `publish`) sends VP8 at `pps` packets per second until
/// `stop`. Every received packet is counted into `tally`.
pub async fn join(
    server: SocketAddr,
    token: &str,
    publish: bool,
    pps: u32,
    epoch: Instant,
    tally: Arc<Tally>,
    stop: Arc<AtomicBool>,
) -> Result<MediaMember, String> {
    let url = format!("ws://{server}/v1/rtc?token={token}");
    let (ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .map_err(|e| e.to_string())?;
    let (mut sink, mut stream) = ws.split();
    loop {
        match stream.next().await {
            Some(Ok(Message::Text(t))) if t.contains("\"type\":\"joined\"") => break,
            Some(Ok(_)) => continue,
            other => return Err(format!("no joined: {other:?}")),
        }
    }
    let (out, mut out_rx) = mpsc::unbounded_channel::<Value>();
    let (tracks_tx, mut tracks_rx) = mpsc::unbounded_channel();
    let (sub, mut sub_cands) = peer(tracks_tx, |r| r).await?;
    let mut pcs = vec![sub.clone()];
    let sent = Arc::new(AtomicU64::new(0));
    let mut publisher: Option<Pc> = None;
    if publish {
        let (dead, _) = mpsc::unbounded_channel();
        let (pc, mut cands) = peer(dead, |r| r).await?;
        let ssrc: u32 = rand::random();
        let track = local_track(RtpCodecKind::Video, "cam", ssrc);
        pc.add_track(track.clone() as Arc<dyn TrackLocal>)
            .await
            .map_err(|e| e.to_string())?;
        let offer = pc.create_offer(None).await.map_err(|e| e.to_string())?;
        pc.set_local_description(offer)
            .await
            .map_err(|e| e.to_string())?;
        let sdp = pc
            .local_description()
            .await
            .map(|d| d.sdp)
            .unwrap_or_default();
        let _ = out.send(json!({"type": "offer", "pc": "publish", "sdp": sdp}));
        let o = out.clone();
        tokio::spawn(async move {
            while let Some(c) = cands.recv().await {
                let _ = o.send(candidate_frame("publish", &c));
            }
        });
        let (s, stop) = (sent.clone(), stop.clone());
        tokio::spawn(async move {
            let every = Duration::from_secs_f64(1.0 / pps.max(1) as f64);
            let mut tick = tokio::time::interval(every);
            let mut i: u64 = 0;
            while !stop.load(Ordering::Relaxed) {
                tick.tick().await;
                let mut payload = vec![0u8; PAYLOAD_BYTES];
                payload[0] = 0x10; // VP8 descriptor: start of partition
                payload[2..10].copy_from_slice(&i.to_be_bytes());
                payload[10..18]
                    .copy_from_slice(&(epoch.elapsed().as_micros() as u64).to_be_bytes());
                let pkt = Packet {
                    header: Header {
                        version: 2,
                        payload_type: 96,
                        sequence_number: i as u16,
                        timestamp: (i as u32).wrapping_mul(3000),
                        ssrc,
                        marker: true,
                        ..Default::default()
                    },
                    payload: Bytes::from(payload),
                };
                if track.write_rtp(pkt).await.is_err() {
                    break;
                }
                s.fetch_add(1, Ordering::Relaxed);
                i += 1;
            }
        });
        pcs.push(pc.clone());
        publisher = Some(pc);
    }
    let o = out.clone();
    tokio::spawn(async move {
        while let Some(c) = sub_cands.recv().await {
            let _ = o.send(candidate_frame("subscribe", &c));
        }
    });
    let _ = out.send(json!({"type": "subscribe"}));
    // Subscribed tracks: count, gaps and latency.
    tokio::spawn(async move {
        while let Some(t) = tracks_rx.recv().await {
            let tally = tally.clone();
            tokio::spawn(async move {
                let mut last: Option<u64> = None;
                while let Some(ev) = t.poll().await {
                    let TrackRemoteEvent::OnRtpPacket(p) = ev else {
                        continue;
                    };
                    if p.payload.len() < 18 {
                        continue;
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
                    if let Ok(mut v) = tally.latencies_us.lock() {
                        v.push(now_us.saturating_sub(sent_us));
                    }
                }
            });
        }
    });
    let o = out.clone();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                Some(v) = out_rx.recv() => {
                    if sink.send(Message::Text(v.to_string().into())).await.is_err() { break; }
                }
                f = stream.next() => {
                    let text = match f {
                        Some(Ok(Message::Text(t))) => t,
                        Some(Ok(_)) => continue,
                        _ => break,
                    };
                    let Ok(v) = serde_json::from_str::<Value>(&text) else { continue };
                    let sdp = v["sdp"].as_str().unwrap_or_default().to_string();
                    match v["type"].as_str().unwrap_or("") {
                        "offer" => {
                            let Ok(d) = RTCSessionDescription::offer(sdp) else { continue };
                            if sub.set_remote_description(d).await.is_err() { continue; }
                            let Ok(a) = sub.create_answer(None).await else { continue };
                            let _ = sub.set_local_description(a).await;
                            if let Some(d) = sub.local_description().await {
                                let _ = o.send(json!({"type": "answer", "pc": "subscribe", "sdp": d.sdp}));
                            }
                        }
                        "answer" => {
                            if let (Some(p), Ok(d)) = (&publisher, RTCSessionDescription::answer(sdp)) {
                                let _ = p.set_remote_description(d).await;
                            }
                        }
                        "candidate" => {
                            let Ok(c) = serde_json::from_value::<RTCIceCandidateInit>(v.clone()) else { continue };
                            let target = if v["pc"] == "subscribe" { Some(&sub) } else { publisher.as_ref() };
                            if let Some(p) = target { let _ = p.add_ice_candidate(c).await; }
                        }
                        _ => {}
                    }
                }
            }
        }
    });
    Ok(MediaMember { pcs, out, sent })
}
