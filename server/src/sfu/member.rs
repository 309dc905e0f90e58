//! One member's media: its publish connection (the client offers) and its subscribe
//! connection (we offer, and offer again whenever the forwarded tracks change). A task
//! owns both, so negotiation steps happen one at a time and in order.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use convene_protocol::signal::{PcKind, ServerMessage};
use convene_protocol::{ErrorBody, ErrorCode};
use rtc::media_stream::MediaStreamTrack;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};
use tokio::sync::mpsc::{self, UnboundedReceiver, UnboundedSender};
use tokio::task::JoinHandle;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::{TrackLocal, TrackLocalEvent};
use webrtc::peer_connection::{RTCIceCandidateInit, RTCPeerConnectionState, RTCSessionDescription};
use webrtc::rtp_transceiver::RtpSender;

use super::config::{advertise, Ports, SfuConfig};
use super::forward::{Published, SINK_QUEUE};
use super::peer::{self, Peer, PeerEvent};
use super::port::{MediaEvent, MediaKind, MediaSignal};
use super::room::RoomCmd;
use super::stats;
use crate::ids::UserId;

pub enum MemberCmd {
    Signal {
        may_publish: bool,
        msg: MediaSignal,
    },
    AddTrack(Arc<Published>),
    RemoveTrack(UserId, MediaKind),
    /// The publish connection failed: close it so its tracks end.
    ClosePublish,
    Close,
}

pub struct Ctx {
    pub user: UserId,
    pub config: Arc<SfuConfig>,
    pub ports: Arc<Ports>,
    pub events: UnboundedSender<MediaEvent>,
    pub room: UnboundedSender<RoomCmd>,
}

/// One of the two connections, with the browser candidates that came early.
struct Leg {
    peer: Peer,
    remote_set: bool,
    early: Vec<RTCIceCandidateInit>,
}

struct Outgoing {
    published: Arc<Published>,
    sender: Arc<dyn RtpSender>,
    tasks: [JoinHandle<()>; 2],
}

/// Stream and track ids that name the owner and kind, in characters SDP allows
/// (user ids may hold '@' and ':'): `u-<hex of user id>` and `<kind>-<hex>`.
pub fn stream_id(owner: &UserId) -> String {
    format!("u-{}", hex(owner.as_str()))
}

pub fn track_id(owner: &UserId, kind: MediaKind) -> String {
    let k = match kind {
        MediaKind::Audio => "audio",
        MediaKind::Video => "video",
        MediaKind::Screen => "screen",
    };
    format!("{k}-{}", hex(owner.as_str()))
}

fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

struct Member {
    ctx: Ctx,
    publish: Option<Leg>,
    subscribe: Option<Leg>,
    pub_tx: UnboundedSender<PeerEvent>,
    sub_tx: UnboundedSender<PeerEvent>,
    outgoing: HashMap<(UserId, MediaKind), Outgoing>,
    screen_ids: HashSet<String>,
    /// An offer of ours awaits its answer; changes meanwhile set `dirty`.
    negotiating: bool,
    dirty: bool,
}

pub async fn run(ctx: Ctx, mut rx: UnboundedReceiver<MemberCmd>) {
    let _held = stats::Held::new(&stats::MEMBERS);
    let (pub_tx, mut pub_rx) = mpsc::unbounded_channel();
    let (sub_tx, mut sub_rx) = mpsc::unbounded_channel();
    let mut m = Member {
        ctx,
        publish: None,
        subscribe: None,
        pub_tx,
        sub_tx,
        outgoing: HashMap::new(),
        screen_ids: HashSet::new(),
        negotiating: false,
        dirty: false,
    };
    loop {
        tokio::select! {
            cmd = rx.recv() => match cmd {
                None | Some(MemberCmd::Close) => break,
                Some(cmd) => m.command(cmd).await,
            },
            Some(ev) = pub_rx.recv() => m.peer_event(PcKind::Publish, ev).await,
            Some(ev) = sub_rx.recv() => m.peer_event(PcKind::Subscribe, ev).await,
        }
    }
    m.close().await;
}

impl Member {
    fn send(&self, msg: ServerMessage) {
        let _ = self.ctx.events.send(MediaEvent::Send {
            to: self.ctx.user.clone(),
            msg: Box::new(msg),
        });
    }

    fn fail(&self, code: ErrorCode, message: impl Into<String>) {
        self.send(ServerMessage::Error {
            error: ErrorBody::new(code, message),
        });
    }

    async fn leg(&mut self, pc: PcKind) -> Option<&mut Leg> {
        let slot = match pc {
            PcKind::Publish => &mut self.publish,
            PcKind::Subscribe => &mut self.subscribe,
        };
        if slot.is_none() {
            let tx = match pc {
                PcKind::Publish => self.pub_tx.clone(),
                PcKind::Subscribe => self.sub_tx.clone(),
            };
            match peer::build(&self.ctx.config, &self.ctx.ports, tx).await {
                Ok(peer) => {
                    *slot = Some(Leg {
                        peer,
                        remote_set: false,
                        early: vec![],
                    })
                }
                Err(e) => {
                    tracing::warn!(user = %self.ctx.user, "cannot create a peer connection: {e}");
                    let _ = self.ctx.events.send(MediaEvent::Send {
                        to: self.ctx.user.clone(),
                        msg: Box::new(ServerMessage::Error {
                            error: ErrorBody::new(
                                ErrorCode::Internal,
                                "the server has no media capacity left",
                            ),
                        }),
                    });
                    return None;
                }
            }
        }
        slot.as_mut()
    }

    async fn command(&mut self, cmd: MemberCmd) {
        match cmd {
            MemberCmd::Signal { may_publish, msg } => self.signal(may_publish, msg).await,
            MemberCmd::AddTrack(p) => self.add_track(p).await,
            MemberCmd::RemoveTrack(owner, kind) => self.remove_track(owner, kind).await,
            MemberCmd::ClosePublish => {
                if let Some(leg) = self.publish.take() {
                    leg.peer.close().await;
                }
            }
            MemberCmd::Close => {}
        }
    }

    async fn signal(&mut self, may_publish: bool, msg: MediaSignal) {
        match msg {
            MediaSignal::Offer {
                pc: PcKind::Publish,
                sdp,
                screen_track_ids,
            } => {
                if !may_publish {
                    return self.fail(ErrorCode::PermissionDenied, "your role may not publish");
                }
                self.screen_ids = screen_track_ids.into_iter().collect();
                if let Err(e) = self.answer_publish(sdp).await {
                    self.fail(ErrorCode::InvalidParameter, format!("offer refused: {e}"));
                }
            }
            MediaSignal::Offer { .. } => self.fail(
                ErrorCode::InvalidParameter,
                "the server makes the offers on the subscribe connection",
            ),
            MediaSignal::Answer {
                pc: PcKind::Subscribe,
                sdp,
            } => {
                if let Err(e) = self.take_answer(sdp).await {
                    self.fail(ErrorCode::InvalidParameter, format!("answer refused: {e}"));
                }
            }
            MediaSignal::Answer { .. } => self.fail(
                ErrorCode::InvalidParameter,
                "the client makes the offers on the publish connection",
            ),
            MediaSignal::Candidate {
                pc,
                candidate,
                sdp_mid,
                sdp_m_line_index,
            } => {
                let init = RTCIceCandidateInit {
                    candidate,
                    sdp_mid,
                    sdp_mline_index: sdp_m_line_index,
                    ..Default::default()
                };
                let leg = match pc {
                    PcKind::Publish => self.publish.as_mut(),
                    PcKind::Subscribe => self.subscribe.as_mut(),
                };
                match leg {
                    Some(leg) if leg.remote_set => {
                        let _ = leg.peer.pc.add_ice_candidate(init).await;
                    }
                    Some(leg) => leg.early.push(init),
                    None => {}
                }
            }
        }
    }

    async fn answer_publish(&mut self, sdp: String) -> Result<(), String> {
        let offer = RTCSessionDescription::offer(sdp).map_err(|e| e.to_string())?;
        let leg = self.leg(PcKind::Publish).await.ok_or("no media capacity")?;
        let pc = leg.peer.pc.clone();
        pc.set_remote_description(offer)
            .await
            .map_err(|e| e.to_string())?;
        let answer = pc.create_answer(None).await.map_err(|e| e.to_string())?;
        pc.set_local_description(answer)
            .await
            .map_err(|e| e.to_string())?;
        leg.remote_set = true;
        for c in std::mem::take(&mut leg.early) {
            let _ = pc.add_ice_candidate(c).await;
        }
        let sdp = pc
            .local_description()
            .await
            .map(|d| d.sdp)
            .ok_or("no local description")?;
        self.send(ServerMessage::Answer {
            pc: PcKind::Publish,
            sdp,
        });
        Ok(())
    }

    async fn take_answer(&mut self, sdp: String) -> Result<(), String> {
        let answer = RTCSessionDescription::answer(sdp).map_err(|e| e.to_string())?;
        let leg = self.subscribe.as_mut().ok_or("no offer was made")?;
        leg.peer
            .pc
            .set_remote_description(answer)
            .await
            .map_err(|e| e.to_string())?;
        leg.remote_set = true;
        for c in std::mem::take(&mut leg.early) {
            let _ = leg.peer.pc.add_ice_candidate(c).await;
        }
        self.negotiating = false;
        if self.dirty {
            self.offer_subscribe().await;
        }
        Ok(())
    }

    async fn offer_subscribe(&mut self) {
        if self.negotiating {
            self.dirty = true;
            return;
        }
        let Some(leg) = self.subscribe.as_ref() else {
            return;
        };
        let pc = leg.peer.pc.clone();
        let offer = match pc.create_offer(None).await {
            Ok(o) => o,
            Err(e) => return tracing::warn!("subscribe offer failed: {e}"),
        };
        if let Err(e) = pc.set_local_description(offer).await {
            return tracing::warn!("subscribe offer failed: {e}");
        }
        if let Some(d) = pc.local_description().await {
            self.negotiating = true;
            self.dirty = false;
            self.send(ServerMessage::Offer {
                pc: PcKind::Subscribe,
                sdp: d.sdp,
            });
        }
    }

    async fn add_track(&mut self, p: Arc<Published>) {
        let key = (p.owner.clone(), p.kind);
        if self.outgoing.contains_key(&key) {
            self.remove_track(key.0.clone(), key.1).await;
        }
        let Some(leg) = self.leg(PcKind::Subscribe).await else {
            return;
        };
        let pc = leg.peer.pc.clone();
        let ssrc: u32 = rand::random();
        let (kind, codec, pt) = match p.kind {
            MediaKind::Audio => (RtpCodecKind::Audio, peer::opus(), peer::OPUS_PT),
            _ => (RtpCodecKind::Video, peer::vp8(), peer::VP8_PT),
        };
        let local = Arc::new(TrackLocalStaticRTP::new(MediaStreamTrack::new(
            stream_id(&p.owner),
            track_id(&p.owner, p.kind),
            track_id(&p.owner, p.kind),
            kind,
            vec![RTCRtpEncodingParameters {
                rtp_coding_parameters: RTCRtpCodingParameters {
                    ssrc: Some(ssrc),
                    ..Default::default()
                },
                codec,
                ..Default::default()
            }],
        )));
        let sender = match pc.add_track(local.clone() as Arc<dyn TrackLocal>).await {
            Ok(s) => s,
            Err(e) => return tracing::warn!("add_track failed: {e}"),
        };
        let (tx, mut rx) = mpsc::channel(SINK_QUEUE);
        p.add_subscriber(self.ctx.user.clone(), tx);
        let out = local.clone();
        let sink = tokio::spawn(async move {
            let _held = stats::Held::new(&stats::SINKS);
            while let Some(mut pkt) = rx.recv().await {
                // This connection negotiated its own SSRC, payload type and header
                // extension ids; a packet that disagrees is silently dropped by webrtc-rs.
                pkt.header.ssrc = ssrc;
                pkt.header.payload_type = pt;
                pkt.header.extensions.clear();
                pkt.header.extension = false;
                if out.write_rtp(pkt).await.is_err() {
                    break;
                }
            }
        });
        let upstream = p.clone();
        let rtcp = tokio::spawn(async move {
            while let Some(ev) = local.poll().await {
                if let TrackLocalEvent::OnRtcpPacket(_) = ev {
                    upstream.request_keyframe();
                }
            }
        });
        // A new viewer needs a keyframe to start decoding.
        p.request_keyframe();
        self.outgoing.insert(
            key,
            Outgoing {
                published: p,
                sender,
                tasks: [sink, rtcp],
            },
        );
        self.offer_subscribe().await;
    }

    async fn remove_track(&mut self, owner: UserId, kind: MediaKind) {
        let Some(out) = self.outgoing.remove(&(owner, kind)) else {
            return;
        };
        out.published.remove_subscriber(&self.ctx.user);
        for t in &out.tasks {
            t.abort();
        }
        if let Some(leg) = &self.subscribe {
            let _ = leg.peer.pc.remove_track(&out.sender).await;
        }
        self.offer_subscribe().await;
    }

    async fn peer_event(&mut self, pc: PcKind, ev: PeerEvent) {
        match ev {
            PeerEvent::Candidate(init) => self.send(ServerMessage::Candidate {
                pc,
                candidate: advertise(&init.candidate, &self.ctx.config),
                sdp_mid: init.sdp_mid,
                sdp_m_line_index: init.sdp_mline_index,
            }),
            PeerEvent::Track(remote) if pc == PcKind::Publish => {
                let kind = match remote.kind().await {
                    RtpCodecKind::Audio => MediaKind::Audio,
                    _ if self.screen_ids.contains(&remote.track_id().await) => MediaKind::Screen,
                    _ => MediaKind::Video,
                };
                let _ = self.ctx.room.send(RoomCmd::TrackArrived {
                    member: self.ctx.user.clone(),
                    kind,
                    remote,
                });
            }
            PeerEvent::Track(_) => {}
            PeerEvent::State(RTCPeerConnectionState::Failed) if pc == PcKind::Publish => {
                let _ = self
                    .ctx
                    .room
                    .send(RoomCmd::PublisherGone(self.ctx.user.clone()));
            }
            PeerEvent::State(_) => {}
        }
    }

    async fn close(&mut self) {
        for (_, out) in self.outgoing.drain() {
            out.published.remove_subscriber(&self.ctx.user);
            for t in &out.tasks {
                t.abort();
            }
        }
        if let Some(leg) = self.publish.take() {
            leg.peer.close().await;
        }
        if let Some(leg) = self.subscribe.take() {
            leg.peer.close().await;
        }
    }
}
