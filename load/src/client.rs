//! A webrtc-rs peer configured as the relay expects of a browser: Opus/111 and VP8/96
//! only, the default interceptors, loopback UDP and no mDNS. Events arrive on channels
//! so the connection's driver never waits on the caller.

use std::sync::Arc;

use rtc::ice::mdns::MulticastDnsMode;
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::media_engine::{
    MIME_TYPE_OPUS, MIME_TYPE_RTX, MIME_TYPE_VP8,
};
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodecParameters, RTCRtpCodingParameters, RTCRtpEncodingParameters,
    RtpCodecKind,
};
use serde_json::{json, Value};
use tokio::sync::mpsc::{self, UnboundedReceiver, UnboundedSender};
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_remote::TrackRemote;
use webrtc::peer_connection::{
    register_default_interceptors, MediaEngine, PeerConnection, PeerConnectionBuilder,
    PeerConnectionEventHandler, RTCConfigurationBuilder, RTCIceCandidateInit,
    RTCPeerConnectionIceEvent, RTCSessionDescription, Registry, SettingEngineBuilder,
};

pub type Pc = Arc<dyn PeerConnection>;

pub fn codec(kind: RtpCodecKind) -> RTCRtpCodec {
    match kind {
        RtpCodecKind::Audio => RTCRtpCodec {
            mime_type: MIME_TYPE_OPUS.into(),
            clock_rate: 48000,
            channels: 2,
            sdp_fmtp_line: "minptime=10;useinbandfec=1".into(),
            rtcp_feedback: vec![],
        },
        _ => RTCRtpCodec {
            mime_type: MIME_TYPE_VP8.into(),
            clock_rate: 90000,
            ..Default::default()
        },
    }
}

struct Events {
    cands: UnboundedSender<RTCIceCandidateInit>,
    tracks: UnboundedSender<Arc<dyn TrackRemote>>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Events {
    async fn on_ice_candidate(&self, ev: RTCPeerConnectionIceEvent) {
        if let Ok(c) = ev.candidate.to_json() {
            let _ = self.cands.send(c);
        }
    }
    async fn on_track(&self, t: Arc<dyn TrackRemote>) {
        let _ = self.tracks.send(t);
    }
}

/// A peer whose received tracks go to `tracks` and whose candidates come back on the
/// returned channel. `extend` may add interceptors (tests add the relay's keyframe one).
pub async fn peer(
    tracks: UnboundedSender<Arc<dyn TrackRemote>>,
    extend: impl FnOnce(Registry) -> Registry,
) -> Result<(Pc, UnboundedReceiver<RTCIceCandidateInit>), String> {
    let mut me = MediaEngine::default();
    for (kind, pt) in [(RtpCodecKind::Audio, 111), (RtpCodecKind::Video, 96)] {
        me.register_codec(
            RTCRtpCodecParameters {
                rtp_codec: codec(kind),
                payload_type: pt,
            },
            kind,
        )
        .map_err(|e| e.to_string())?;
    }
    // VP8's repair stream (RTX, RFC 4588), as browsers offer it: the relay resends lost
    // packets on it, and the client's own pipeline unwraps them.
    me.register_codec(
        RTCRtpCodecParameters {
            rtp_codec: RTCRtpCodec {
                mime_type: MIME_TYPE_RTX.into(),
                clock_rate: 90000,
                sdp_fmtp_line: "apt=96".into(),
                ..Default::default()
            },
            payload_type: 97,
        },
        RtpCodecKind::Video,
    )
    .map_err(|e| e.to_string())?;
    let registry =
        extend(register_default_interceptors(Registry::new(), &mut me).map_err(|e| e.to_string())?);
    let (cands_tx, cands) = mpsc::unbounded_channel();
    let pc = PeerConnectionBuilder::new()
        .with_configuration(RTCConfigurationBuilder::new().build())
        .with_media_engine(me)
        .with_interceptor_registry(registry)
        .with_setting_engine(
            SettingEngineBuilder::new()
                .with_multicast_dns_mode(MulticastDnsMode::Disabled)
                .build(),
        )
        .with_handler(Arc::new(Events {
            cands: cands_tx,
            tracks,
        }))
        .with_udp_addrs(vec!["127.0.0.1:0"])
        .build()
        .await
        .map_err(|e| e.to_string())?;
    Ok((Arc::new(pc), cands))
}

/// An outgoing track of `kind` with a fixed SSRC.
pub fn local_track(kind: RtpCodecKind, id: &str, ssrc: u32) -> Arc<TrackLocalStaticRTP> {
    Arc::new(TrackLocalStaticRTP::new(MediaStreamTrack::new(
        format!("stream-{id}"),
        id.to_string(),
        id.to_string(),
        kind,
        vec![RTCRtpEncodingParameters {
            rtp_coding_parameters: RTCRtpCodingParameters {
                ssrc: Some(ssrc),
                ..Default::default()
            },
            codec: codec(kind),
            ..Default::default()
        }],
    )))
}

/// Our candidate as a signaling frame for connection `pc` (`publish` or `subscribe`).
pub fn candidate_frame(pc: &str, c: &RTCIceCandidateInit) -> Value {
    json!({"type": "candidate", "pc": pc, "candidate": c.candidate,
           "sdpMid": c.sdp_mid, "sdpMLineIndex": c.sdp_mline_index})
}

// The three SDP steps every client here takes, against any SFU.

/// createOffer + setLocalDescription: the offer's SDP, to send.
pub async fn local_offer(pc: &Pc) -> Result<String, String> {
    let offer = pc.create_offer(None).await.map_err(|e| e.to_string())?;
    pc.set_local_description(offer)
        .await
        .map_err(|e| e.to_string())?;
    Ok(pc
        .local_description()
        .await
        .map(|d| d.sdp)
        .unwrap_or_default())
}

/// setRemoteDescription(offer) + createAnswer + setLocalDescription: the answer's SDP.
pub async fn answer_offer(pc: &Pc, offer: String) -> Result<String, String> {
    let d = RTCSessionDescription::offer(offer).map_err(|e| e.to_string())?;
    pc.set_remote_description(d)
        .await
        .map_err(|e| e.to_string())?;
    let answer = pc.create_answer(None).await.map_err(|e| e.to_string())?;
    pc.set_local_description(answer)
        .await
        .map_err(|e| e.to_string())?;
    Ok(pc
        .local_description()
        .await
        .map(|d| d.sdp)
        .unwrap_or_default())
}

/// setRemoteDescription(answer).
pub async fn accept_answer(pc: &Pc, answer: String) -> Result<(), String> {
    let d = RTCSessionDescription::answer(answer).map_err(|e| e.to_string())?;
    pc.set_remote_description(d)
        .await
        .map_err(|e| e.to_string())
}
