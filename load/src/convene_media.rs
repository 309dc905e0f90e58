//! A media member against Convene: joins over the real signaling WebSocket, publishes on
//! a `publish` connection and receives on a `subscribe` connection, both light peers of
//! the run's pool (our candidate is in each SDP; the relay is ICE-lite and needs no
//! trickle).

use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use convene_load::pool::Pool;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

use crate::media::{send_tracks, Kind, MediaMember, Tally, TallySink};

/// What every member of one run shares.
pub struct Run {
    pub kind: Kind,
    pub video_pps: u32,
    pub epoch: Instant,
    pub tally: Arc<Tally>,
    pub sink: Arc<TallySink>,
    pub pool: Arc<Pool>,
    pub stop: Arc<AtomicBool>,
}

/// Joins, subscribes, and (if `publish`) sends until the run stops it.
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
    let sub = Arc::new(run.pool.peer(vec![], true, Some(run.sink.clone())));
    run.sink.register(sub.id, joined_at, !publish);
    let mut peers = vec![sub.clone()];
    let mut publishers = vec![];
    let mut publisher = None;
    if publish {
        let p = Arc::new(
            run.pool
                .peer(send_tracks(run.kind, run.video_pps), false, None),
        );
        let sdp = p.offer().await?;
        let _ = out.send(json!({"type": "offer", "pc": "publish", "sdp": sdp}));
        p.set_sending(true);
        publishers.push(p.stats.clone());
        peers.push(p.clone());
        publisher = Some(p);
    }
    let _ = out.send(json!({"type": "subscribe"}));
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
                            if let Ok(sdp) = sub.answer(sdp).await {
                                let _ = o.send(json!({"type": "answer", "pc": "subscribe", "sdp": sdp}));
                            }
                        }
                        "answer" => {
                            if let Some(p) = &publisher {
                                let _ = p.accept_answer(sdp).await;
                            }
                        }
                        _ => {}
                    }
                }
            }
        }
    });
    let leave = out.clone();
    Ok(MediaMember {
        peers,
        publishers,
        bye: Some(Box::pin(async move {
            let _ = leave.send(json!({"type": "leave"}));
            // Give the writer a moment to flush the frame before the runtime ends.
            tokio::time::sleep(Duration::from_millis(20)).await;
        })),
    })
}
