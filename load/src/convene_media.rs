//! A media member against Convene: joins over the real signaling WebSocket, publishes on
//! a `publish` connection and receives on a `subscribe` connection (trickle ICE both ways).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::Arc;
use std::time::{Duration, Instant};

use convene_load::client::{accept_answer, answer_offer, candidate_frame, local_offer, peer, Pc};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use webrtc::peer_connection::RTCIceCandidateInit;

use crate::media::{self, Kind, MediaMember, Tally};

/// What every member of one run shares.
pub struct Run {
    pub kind: Kind,
    pub video_pps: u32,
    pub epoch: Instant,
    pub tally: Arc<Tally>,
    pub stop: Arc<AtomicBool>,
}

/// Joins, subscribes, and (if `publish`) sends until `run.stop`.
pub async fn join(
    server: SocketAddr,
    token: &str,
    publish: bool,
    run: &Run,
) -> Result<MediaMember, String> {
    let joined_at = Instant::now();
    let url = format!("ws://{server}/v1/rtc?token={token}");
    let (ws, _) = tokio::time::timeout(
        Duration::from_secs(20),
        tokio_tungstenite::connect_async(url),
    )
    .await
    .map_err(|_| "connect timed out".to_string())?
    .map_err(|e| e.to_string())?;
    let (mut sink, mut stream) = ws.split();
    loop {
        match tokio::time::timeout(Duration::from_secs(20), stream.next()).await {
            Ok(Some(Ok(Message::Text(t)))) if t.contains("\"type\":\"joined\"") => break,
            Ok(Some(Ok(_))) => continue,
            other => return Err(format!("no joined: {other:?}")),
        }
    }
    let (out, mut out_rx) = mpsc::unbounded_channel::<Value>();
    let (tracks_tx, tracks_rx) = mpsc::unbounded_channel();
    let (sub, mut sub_cands) = peer(tracks_tx, |r| r).await?;
    let mut pcs = vec![sub.clone()];
    let sent = Arc::new(AtomicU64::new(0));
    let mut publisher: Option<Pc> = None;
    if publish {
        let (dead, _) = mpsc::unbounded_channel();
        let (pc, mut cands) = peer(dead, |r| r).await?;
        let outgoing = media::add_tracks(&pc, run.kind).await?;
        let sdp = local_offer(&pc).await?;
        let _ = out.send(json!({"type": "offer", "pc": "publish", "sdp": sdp}));
        let o = out.clone();
        tokio::spawn(async move {
            while let Some(c) = cands.recv().await {
                let _ = o.send(candidate_frame("publish", &c));
            }
        });
        media::start_sending(
            outgoing,
            run.video_pps,
            run.epoch,
            run.stop.clone(),
            sent.clone(),
        );
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
    media::count_tracks(tracks_rx, run.tally.clone(), run.epoch, joined_at, !publish);
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
                            if let Ok(sdp) = answer_offer(&sub, sdp).await {
                                let _ = o.send(json!({"type": "answer", "pc": "subscribe", "sdp": sdp}));
                            }
                        }
                        "answer" => {
                            if let Some(p) = &publisher {
                                let _ = accept_answer(p, sdp).await;
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
    let leave = out.clone();
    Ok(MediaMember {
        pcs,
        sent,
        bye: Some(Box::pin(async move {
            let _ = leave.send(json!({"type": "leave"}));
            // Give the writer a moment to flush the frame before the runtime ends.
            tokio::time::sleep(Duration::from_millis(20)).await;
        })),
    })
}
