//! A webrtc-rs client that plays the browser: it joins over the real signaling socket,
//! publishes synthetic RTP on its publish connection and answers the server's offers
//! on its subscribe connection.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use convene_load::client::{accept_answer, answer_offer, candidate_frame, local_offer, peer, Pc};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::sync::mpsc::{self, UnboundedReceiver, UnboundedSender};
use tokio_tungstenite::tungstenite::Message;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_remote::TrackRemote;
use webrtc::peer_connection::RTCIceCandidateInit;

use super::TestServer;

/// A client peer that also surfaces the keyframe requests the relay sends it.
async fn client_peer(
    tracks: UnboundedSender<Arc<dyn TrackRemote>>,
) -> (Pc, UnboundedReceiver<RTCIceCandidateInit>) {
    peer(tracks, |r| {
        r.with(
            convene::sfu::KEYFRAME_SLOT,
            convene::sfu::KeyframeRequests::new(),
        )
    })
    .await
    .expect("client peer")
}

pub struct MediaClient {
    pub joined: Value,
    /// Server frames other than media negotiation.
    pub frames: UnboundedReceiver<Value>,
    /// Tracks arriving on the subscribe connection.
    pub tracks: UnboundedReceiver<Arc<dyn TrackRemote>>,
    pub publish: Option<Pc>,
    out: UnboundedSender<Value>,
    subscribe_pc: Pc,
    /// A URL to drop the signaling socket for and connect to instead (the peer
    /// connections stay).
    reconnect: UnboundedSender<String>,
}

impl MediaClient {
    pub fn send(&self, v: Value) {
        let _ = self.out.send(v);
    }

    /// Waits for a frame of `kind`, dropping others.
    pub async fn next_of(&mut self, kind: &str) -> Value {
        tokio::time::timeout(super::WAIT, async {
            loop {
                let v = self.frames.recv().await.expect("socket ended");
                if v["type"] == kind {
                    return v;
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("no {kind}"))
    }

    /// Drops the signaling socket, as a network blip would, and resumes through
    /// `server` (any node) with the resume token of its `joined`; the media
    /// connections are kept, as the SDK keeps them. The new `joined`.
    pub async fn resume_via(&mut self, server: &TestServer, room: &str, user: &str) -> Value {
        let token = server.token(room, user).await;
        let resume = self.joined["resume"]["token"]
            .as_str()
            .expect("a resume token");
        let url = format!("ws://{}/v1/rtc?token={token}&resume={resume}", server.addr);
        let _ = self.reconnect.send(url);
        let joined = self.next_of("joined").await;
        self.joined = joined.clone();
        joined
    }

    pub async fn close(self) {
        if let Some(p) = &self.publish {
            let _ = p.close().await;
        }
        let _ = self.subscribe_pc.close().await;
        let _ = self.out.send(json!({"type": "leave"}));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

impl TestServer {
    /// Joins `user`, subscribes, and publishes `tracks` (if any) with an offer.
    pub async fn media_client(
        &self,
        room: &str,
        user: &str,
        tracks: &[Arc<TrackLocalStaticRTP>],
    ) -> MediaClient {
        let token = self.token(room, user).await;
        let url = format!("ws://{}/v1/rtc?token={token}", self.addr);
        let (ws, _) = tokio_tungstenite::connect_async(url).await.expect("ws");
        let (mut sink, mut stream) = ws.split();
        let joined = loop {
            if let Some(Ok(Message::Text(t))) = stream.next().await {
                let v: Value = serde_json::from_str(&t).unwrap();
                if v["type"] == "joined" {
                    break v;
                }
            }
        };
        let (out, mut out_rx) = mpsc::unbounded_channel::<Value>();
        let (frames_tx, frames) = mpsc::unbounded_channel();
        let (tracks_tx, tracks_rx) = mpsc::unbounded_channel();
        let (sub_pc, mut sub_cands) = client_peer(tracks_tx).await;
        let publish = if tracks.is_empty() {
            None
        } else {
            let (dead_tx, _) = mpsc::unbounded_channel();
            let (pc, mut pub_cands) = client_peer(dead_tx).await;
            for t in tracks {
                pc.add_track(t.clone() as Arc<dyn TrackLocal>)
                    .await
                    .unwrap();
            }
            let sdp = local_offer(&pc).await.unwrap();
            let _ = out.send(json!({"type": "offer", "pc": "publish", "sdp": sdp}));
            let o = out.clone();
            tokio::spawn(async move {
                while let Some(c) = pub_cands.recv().await {
                    let _ = o.send(candidate_frame("publish", &c));
                }
            });
            Some(pc)
        };
        let o = out.clone();
        tokio::spawn(async move {
            while let Some(c) = sub_cands.recv().await {
                let _ = o.send(candidate_frame("subscribe", &c));
            }
        });
        let _ = out.send(json!({"type": "subscribe"}));
        let (pub_pc, sub) = (publish.clone(), sub_pc.clone());
        let o = out.clone();
        let (reconnect, mut reconnect_rx) = mpsc::unbounded_channel::<String>();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    Some(url) = reconnect_rx.recv() => {
                        // The old socket goes without a word, as a dropped one does.
                        let (ws, _) = tokio_tungstenite::connect_async(url).await.expect("ws again");
                        (sink, stream) = ws.split();
                    }
                    Some(v) = out_rx.recv() => {
                        if sink.send(Message::Text(v.to_string().into())).await.is_err() { break; }
                    }
                    f = stream.next() => {
                        let Some(Ok(Message::Text(t))) = f else {
                            if matches!(f, Some(Ok(_))) { continue; }
                            break;
                        };
                        let v: Value = serde_json::from_str(&t).unwrap();
                        let pc_name = v["pc"].as_str().unwrap_or("publish");
                        match v["type"].as_str().unwrap_or("") {
                            "offer" => {
                                let sdp = answer_offer(&sub, v["sdp"].as_str().unwrap().to_string()).await.unwrap();
                                let _ = o.send(json!({"type": "answer", "pc": "subscribe", "sdp": sdp}));
                            }
                            "answer" => {
                                if let Some(p) = &pub_pc { accept_answer(p, v["sdp"].as_str().unwrap().to_string()).await.unwrap(); }
                            }
                            "candidate" => {
                                let c: RTCIceCandidateInit = serde_json::from_value(v.clone()).unwrap();
                                let target = if pc_name == "subscribe" { Some(&sub) } else { pub_pc.as_ref() };
                                if let Some(p) = target { let _ = p.add_ice_candidate(c).await; }
                            }
                            _ => { let _ = frames_tx.send(v); }
                        }
                    }
                }
            }
        });
        MediaClient {
            joined,
            frames,
            tracks: tracks_rx,
            publish,
            out,
            subscribe_pc: sub_pc,
            reconnect,
        }
    }
}
