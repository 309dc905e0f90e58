//! Members whose media runs on the load tool's light client peers (many per thread, one
//! socket per thread, an address of their own on loopback each), for tests that need
//! hundreds of media connections or control over a client's network behaviour.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use convene_load::pool::{read_fields, Peer, Pool, SendTrack, Sink};
use futures_util::{SinkExt, StreamExt};
use rtc::rtp;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

use super::{TestServer, WAIT};

/// What arrived, per receiving peer and SSRC: packets, gaps in the index, last index.
#[derive(Default)]
pub struct Counts {
    streams: Mutex<HashMap<(u64, u32), Stream>>,
}

#[derive(Debug, Default, Clone, Copy)]
pub struct Stream {
    pub packets: u64,
    pub gaps: u64,
    pub last: Option<u64>,
}

impl Sink for Counts {
    fn rtp(&self, peer: u64, _: RtpCodecKind, pkt: &rtp::Packet, _: Instant) {
        let Some((idx, _)) = read_fields(&pkt.payload) else {
            return;
        };
        let mut m = self.streams.lock().unwrap();
        let s = m.entry((peer, pkt.header.ssrc)).or_default();
        s.packets += 1;
        if let Some(l) = s.last {
            if idx > l + 1 {
                s.gaps += idx - l - 1;
            }
        }
        s.last = Some(s.last.map_or(idx, |l| l.max(idx)));
    }
}

impl Counts {
    /// Streams that `peer` received.
    pub fn of(&self, peer: u64) -> Vec<(u32, Stream)> {
        let m = self.streams.lock().unwrap();
        let mut v: Vec<(u32, Stream)> = m
            .iter()
            .filter(|((p, _), _)| *p == peer)
            .map(|((_, ssrc), s)| (*ssrc, *s))
            .collect();
        v.sort_by_key(|(ssrc, _)| *ssrc);
        v
    }

    pub fn packets(&self, peer: u64) -> u64 {
        self.of(peer).iter().map(|(_, s)| s.packets).sum()
    }
}

pub struct LightMember {
    pub user: String,
    pub publish: Option<Arc<Peer>>,
    pub subscribe: Option<Arc<Peer>>,
    /// Frames other than media negotiation.
    pub frames: mpsc::UnboundedReceiver<Value>,
    /// SDPs the server sent (answers and offers), newest last.
    pub sdps: Arc<Mutex<Vec<String>>>,
    out: mpsc::UnboundedSender<Value>,
    task: JoinHandle<()>,
}

impl LightMember {
    pub fn send(&self, v: Value) {
        let _ = self.out.send(v);
    }

    /// The relay's media port, from the first SDP it sent.
    pub fn media_port(&self) -> u16 {
        let sdps = self.sdps.lock().unwrap();
        let sdp = sdps.first().expect("an SDP from the relay");
        let line = sdp
            .lines()
            .find(|l| l.starts_with("a=candidate"))
            .expect("a candidate");
        line.split_whitespace().nth(5).unwrap().parse().unwrap()
    }

    pub fn leave(self) {
        let _ = self.out.send(json!({"type": "leave"}));
        drop(self.publish);
        drop(self.subscribe);
        let task = self.task;
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            task.abort();
        });
    }
}

impl TestServer {
    /// Joins `user` with light peers: it publishes `send` (if any) and, when
    /// `subscribe`, receives everything into `sink`. Returns once the publish answer
    /// (if publishing) has been applied.
    pub async fn light_member(
        &self,
        pool: &Arc<Pool>,
        room: &str,
        user: &str,
        send: Vec<SendTrack>,
        subscribe: bool,
        sink: Option<Arc<dyn Sink>>,
    ) -> LightMember {
        let token = self.token(room, user).await;
        let url = format!("ws://{}/v1/rtc?token={token}", self.addr);
        let (ws, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(url))
            .await
            .expect("connect timed out")
            .expect("ws");
        let (mut sink_ws, mut stream) = ws.split();
        loop {
            if let Some(Ok(Message::Text(t))) = stream.next().await {
                if t.contains("\"type\":\"joined\"") {
                    break;
                }
            }
        }
        let (out, mut out_rx) = mpsc::unbounded_channel::<Value>();
        let (frames_tx, frames) = mpsc::unbounded_channel();
        let publish = (!send.is_empty()).then(|| Arc::new(pool.peer(send, false, None)));
        let subscribe = subscribe.then(|| Arc::new(pool.peer(vec![], true, sink)));
        let sdps = Arc::new(Mutex::new(Vec::new()));
        let (answered_tx, answered) = tokio::sync::oneshot::channel::<()>();
        let mut answered_tx = Some(answered_tx);
        if let Some(p) = &publish {
            let sdp = p.offer().await.expect("offer");
            let _ = out.send(json!({"type": "offer", "pc": "publish", "sdp": sdp}));
            p.set_sending(true);
        } else {
            let _ = answered_tx.take().map(|t| t.send(()));
        }
        if subscribe.is_some() {
            let _ = out.send(json!({"type": "subscribe"}));
        }
        let (pub_peer, sub_peer, sdps2) = (publish.clone(), subscribe.clone(), sdps.clone());
        let o = out.clone();
        let task = tokio::spawn(async move {
            loop {
                tokio::select! {
                    Some(v) = out_rx.recv() => {
                        if sink_ws.send(Message::Text(v.to_string().into())).await.is_err() { break; }
                    }
                    f = stream.next() => {
                        let Some(Ok(m)) = f else { break };
                        let Message::Text(t) = m else { continue };
                        let v: Value = serde_json::from_str(&t).unwrap();
                        match v["type"].as_str().unwrap_or("") {
                            "offer" => {
                                let sdp = v["sdp"].as_str().unwrap().to_string();
                                sdps2.lock().unwrap().push(sdp.clone());
                                if let Some(p) = &sub_peer {
                                    let answer = p.answer(sdp).await.expect("answer");
                                    let _ = o.send(json!({"type": "answer", "pc": "subscribe", "sdp": answer}));
                                }
                            }
                            "answer" => {
                                let sdp = v["sdp"].as_str().unwrap().to_string();
                                sdps2.lock().unwrap().push(sdp.clone());
                                if let Some(p) = &pub_peer {
                                    p.accept_answer(sdp).await.expect("accept answer");
                                }
                                if let Some(t) = answered_tx.take() { let _ = t.send(()); }
                            }
                            "candidate" => {}
                            _ => { let _ = frames_tx.send(v); }
                        }
                    }
                }
            }
        });
        tokio::time::timeout(WAIT, answered)
            .await
            .expect("no answer to the publish offer")
            .ok();
        LightMember {
            user: user.to_string(),
            publish,
            subscribe,
            frames,
            sdps,
            out,
            task,
        }
    }
}
