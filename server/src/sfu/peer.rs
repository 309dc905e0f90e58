//! Building one server-side peer connection: Opus and VP8 only (no RTX to unwrap), the
//! default NACK and RTCP-report interceptors, and one that hands keyframe requests
//! from subscribers to us so they can be passed on to the publisher.

use std::collections::VecDeque;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use rtc::ice::mdns::MulticastDnsMode;
use rtc::interceptor::{Attribute, Interceptor, Packet as IPacket, Slot, StreamInfo, TaggedPacket};
use rtc::peer_connection::configuration::media_engine::{MIME_TYPE_OPUS, MIME_TYPE_VP8};
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp_transceiver::rtp_sender::{RTCRtpCodec, RTCRtpCodecParameters, RtpCodecKind};
use rtc::sansio::Protocol;
use tokio::sync::mpsc::UnboundedSender;
use webrtc::media_stream::track_remote::TrackRemote;
use webrtc::peer_connection::{
    register_default_interceptors, MediaEngine, PeerConnection, PeerConnectionBuilder,
    PeerConnectionEventHandler, RTCConfigurationBuilder, RTCIceCandidateInit,
    RTCPeerConnectionIceEvent, RTCPeerConnectionState, Registry, SettingEngineBuilder,
};

use super::config::{Ports, SfuConfig};
use super::stats;

pub const OPUS_PT: u8 = 111;
/// After the default interceptors, so they all see the RTCP first.
pub const KEYFRAME_SLOT: Slot = Slot::Custom(14_000);
pub const VP8_PT: u8 = 96;

pub fn opus() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: MIME_TYPE_OPUS.to_owned(),
        clock_rate: 48000,
        channels: 2,
        sdp_fmtp_line: "minptime=10;useinbandfec=1".to_owned(),
        rtcp_feedback: vec![],
    }
}

pub fn vp8() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: MIME_TYPE_VP8.to_owned(),
        clock_rate: 90000,
        channels: 0,
        sdp_fmtp_line: String::new(),
        rtcp_feedback: vec![],
    }
}

/// Marks PLI and FIR for the application; everything else stays in the library.
/// Public so test clients can see the keyframe requests the relay sends them.
pub struct KeyframeRequests {
    read: VecDeque<TaggedPacket>,
    write: VecDeque<TaggedPacket>,
}

impl KeyframeRequests {
    pub fn new() -> Self {
        Self {
            read: VecDeque::new(),
            write: VecDeque::new(),
        }
    }
}

impl Default for KeyframeRequests {
    fn default() -> Self {
        Self::new()
    }
}

impl Protocol<TaggedPacket, TaggedPacket, ()> for KeyframeRequests {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = webrtc::error::Error;
    type Time = Instant;

    fn handle_read(&mut self, mut msg: TaggedPacket) -> Result<(), Self::Error> {
        if let IPacket::Rtcp(pkts) = &msg.message.packet {
            let keep: Vec<Box<dyn rtc::rtcp::Packet>> = pkts
                .iter()
                .filter(|p| {
                    p.as_any().is::<PictureLossIndication>() || p.as_any().is::<FullIntraRequest>()
                })
                .cloned()
                .collect();
            if keep.is_empty() {
                return Ok(());
            }
            msg.message.packet = IPacket::Rtcp(keep);
            msg.message.add(Attribute::DeliverToApplication);
        }
        self.read.push_back(msg);
        Ok(())
    }
    fn poll_read(&mut self) -> Option<TaggedPacket> {
        self.read.pop_front()
    }
    fn handle_write(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        self.write.push_back(msg);
        Ok(())
    }
    fn poll_write(&mut self) -> Option<TaggedPacket> {
        self.write.pop_front()
    }
}

impl Interceptor for KeyframeRequests {
    fn bind_local_stream(&mut self, _: &StreamInfo) {}
    fn unbind_local_stream(&mut self, _: &StreamInfo) {}
    fn bind_remote_stream(&mut self, _: &StreamInfo) {}
    fn unbind_remote_stream(&mut self, _: &StreamInfo) {}
}

/// What a connection reports, tagged and sent to its member's task.
pub enum PeerEvent {
    Candidate(RTCIceCandidateInit),
    Track(Arc<dyn TrackRemote>),
    State(RTCPeerConnectionState),
}

/// Forwards every event to a channel: handlers run on the connection's driver, which
/// must never wait on us.
struct Events {
    tx: UnboundedSender<PeerEvent>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Events {
    async fn on_ice_candidate(&self, ev: RTCPeerConnectionIceEvent) {
        if let Ok(init) = ev.candidate.to_json() {
            let _ = self.tx.send(PeerEvent::Candidate(init));
        }
    }
    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let _ = self.tx.send(PeerEvent::Track(track));
    }
    async fn on_connection_state_change(&self, s: RTCPeerConnectionState) {
        let _ = self.tx.send(PeerEvent::State(s));
    }
}

/// A connection counted in the stats until dropped (after `close`).
pub struct Peer {
    pub pc: Arc<dyn PeerConnection>,
    closed: OnceLock<()>,
}

impl Peer {
    pub async fn close(&self) {
        if self.closed.set(()).is_ok() {
            let _ = self.pc.close().await;
            stats::PEERS.dec();
        }
    }
}

pub async fn build(
    config: &SfuConfig,
    ports: &Ports,
    tx: UnboundedSender<PeerEvent>,
) -> Result<Peer, String> {
    let mut last_err = String::from("no address to bind");
    for addr in ports.candidates(config) {
        let mut me = MediaEngine::default();
        me.register_codec(
            RTCRtpCodecParameters {
                rtp_codec: opus(),
                payload_type: OPUS_PT,
            },
            RtpCodecKind::Audio,
        )
        .map_err(|e| e.to_string())?;
        me.register_codec(
            RTCRtpCodecParameters {
                rtp_codec: vp8(),
                payload_type: VP8_PT,
            },
            RtpCodecKind::Video,
        )
        .map_err(|e| e.to_string())?;
        // Codecs first: the interceptors add their feedback to registered codecs only.
        let registry: Registry = register_default_interceptors(Registry::new(), &mut me)
            .map_err(|e| e.to_string())?
            .with(KEYFRAME_SLOT, KeyframeRequests::new());
        let settings = SettingEngineBuilder::new()
            .with_multicast_dns_mode(MulticastDnsMode::Disabled)
            .with_ice_timeouts(
                Some(Duration::from_secs(5)),
                Some(Duration::from_secs(10)),
                Some(Duration::from_secs(2)),
            )
            .build();
        let built = PeerConnectionBuilder::new()
            .with_configuration(RTCConfigurationBuilder::new().build())
            .with_media_engine(me)
            .with_interceptor_registry(registry)
            .with_setting_engine(settings)
            .with_handler(Arc::new(Events { tx: tx.clone() }))
            .with_udp_addrs(vec![addr.clone()])
            .build()
            .await;
        match built {
            Ok(pc) => {
                stats::PEERS.inc();
                return Ok(Peer {
                    pc: Arc::new(pc),
                    closed: OnceLock::new(),
                });
            }
            Err(e) => last_err = format!("{addr}: {e}"),
        }
    }
    Err(format!("no UDP port available for media ({last_err})"))
}

impl Drop for Peer {
    /// A connection dropped without `close` would keep its driver task and UDP port.
    fn drop(&mut self) {
        if self.closed.set(()).is_ok() {
            stats::PEERS.dec();
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                let pc = self.pc.clone();
                rt.spawn(async move {
                    let _ = pc.close().await;
                });
            }
        }
    }
}
