//! How the relay builds each peer connection on webrtc-rs's sans-IO core (`rtc`): ICE-lite
//! with credentials we choose (the ufrag names the connection on the shared port), no
//! mDNS, the DTLS server role, AEAD_AES_128_GCM preferred, Opus, VP8 and H.264
//! constrained baseline (each video codec with RTX) only,
//! the audio-level header extension (RFC 6464) on audio,
//! the default NACK / RTCP-report / TWCC interceptors on publish connections (a subscribe
//! connection's keyframe requests, NACKs and receiver reports go to the worker), and one
//! certificate shared by all
//! connections (generating a key per connection would cost a millisecond each).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::read_step::{OnRead, ReadStep};
use mediaio::keytap::KeyTap;
use rtc::crypto::{RTCCryptoProvider, SignatureScheme};
use rtc::dtls::extension::extension_use_srtp::SrtpProtectionProfile;
use rtc::ice::mdns::MulticastDnsMode;
use rtc::interceptor::{Attribute, AttributedPacket, Packet as IPacket, Slot, TaggedPacket};
use rtc::peer_connection::certificate::{CertificateParams, RTCCertificate};
use rtc::peer_connection::configuration::interceptor_registry::{
    register_default_interceptors, Registry,
};
use rtc::peer_connection::configuration::media_engine::{
    MediaEngine, MIME_TYPE_H264, MIME_TYPE_OPUS, MIME_TYPE_RTX, MIME_TYPE_VP8,
};
use rtc::peer_connection::configuration::setting_engine::SettingEngineBuilder;
use rtc::peer_connection::configuration::RTCConfigurationBuilder;
use rtc::peer_connection::transport::RTCDtlsRole;
use rtc::peer_connection::{RTCPeerConnection, RTCPeerConnectionBuilder};
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtcp::receiver_report::ReceiverReport;
use rtc::rtcp::transport_feedbacks::transport_layer_cc::TransportLayerCc;
use rtc::rtcp::transport_feedbacks::transport_layer_nack::TransportLayerNack;
use rtc::rtp_transceiver::rtp_sender::{
    RTCPFeedback, RTCRtpCodec, RTCRtpCodecParameters, RTCRtpHeaderExtensionCapability, RtpCodecKind,
};

use super::port::MediaKind;

pub const OPUS_PT: u8 = 111;
pub const VP8_PT: u8 = 96;
pub const VP8_RTX_PT: u8 = 97;
pub const H264_PT: u8 = 102;
pub const H264_RTX_PT: u8 = 103;
/// After the default interceptors, so they all see the RTCP first.
pub const KEYFRAME_SLOT: Slot = Slot::Custom(14_000);
/// The one H.264 the relay takes: constrained baseline (what every WebRTC browser
/// decodes, RFC 7742), non-interleaved packets, level 3.1 or, as the receiver allows,
/// another. rtc matches a profile by its first two bytes, so `42e0..` only.
pub const H264_FMTP: &str =
    "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f";

/// The codec a track is relayed with: the one its publisher sends, since the relay
/// forwards RTP without decoding it. Video is VP8 unless the publisher's browser put
/// H.264 first in its offer (Safari does; the SDK does with `videoCodec: "h264"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Codec {
    Opus,
    Vp8,
    H264,
}

impl Codec {
    /// The codec of a publisher's track from its negotiated MIME type (video that is
    /// not H.264 is VP8, the only other video codec the relay negotiates).
    pub fn of(kind: MediaKind, mime: Option<&str>) -> Self {
        match kind {
            MediaKind::Audio => Codec::Opus,
            _ if mime.is_some_and(|m| m.eq_ignore_ascii_case(MIME_TYPE_H264)) => Codec::H264,
            _ => Codec::Vp8,
        }
    }

    /// Its name, as the browser's `mimeType` says it.
    pub fn mime(self) -> &'static str {
        match self {
            Codec::Opus => MIME_TYPE_OPUS,
            Codec::Vp8 => MIME_TYPE_VP8,
            Codec::H264 => MIME_TYPE_H264,
        }
    }
}

pub fn opus() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: MIME_TYPE_OPUS.to_owned(),
        clock_rate: 48000,
        channels: 2,
        sdp_fmtp_line: "minptime=10;useinbandfec=1".to_owned(),
        rtcp_feedback: vec![],
    }
}

fn video(mime: &str, fmtp: &str) -> RTCRtpCodec {
    let fb = |t: &str, p: &str| RTCPFeedback {
        typ: t.into(),
        parameter: p.into(),
    };
    RTCRtpCodec {
        mime_type: mime.to_owned(),
        clock_rate: 90000,
        channels: 0,
        sdp_fmtp_line: fmtp.to_owned(),
        rtcp_feedback: vec![
            fb("nack", ""),
            fb("nack", "pli"),
            fb("ccm", "fir"),
            fb("transport-cc", ""),
        ],
    }
}

pub fn vp8() -> RTCRtpCodec {
    video(MIME_TYPE_VP8, "")
}

pub fn h264() -> RTCRtpCodec {
    video(MIME_TYPE_H264, H264_FMTP)
}

/// A video section's codecs for a track in `codec`: its own first, then the others,
/// each followed by its repair stream. Every section offers them all, because rtc
/// fixes a connection's video codecs from the answer to its first video section: a
/// section offering H.264 alone would leave VP8 unsendable there afterwards.
pub fn video_preferences(codec: Codec) -> Vec<RTCRtpCodecParameters> {
    let mut order = vec![(vp8(), VP8_PT, VP8_RTX_PT), (h264(), H264_PT, H264_RTX_PT)];
    if codec == Codec::H264 {
        order.reverse();
    }
    let mut list = Vec::with_capacity(4);
    for (rtp_codec, pt, rtx_pt) in order {
        list.push(RTCRtpCodecParameters {
            rtp_codec,
            payload_type: pt,
        });
        list.push(RTCRtpCodecParameters {
            rtp_codec: rtx(pt),
            payload_type: rtx_pt,
        });
    }
    list
}

fn rtx(pt: u8) -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: MIME_TYPE_RTX.to_owned(),
        clock_rate: 90000,
        channels: 0,
        sdp_fmtp_line: format!("apt={pt}"),
        rtcp_feedback: vec![],
    }
}

/// The codec and payload type a relayed track is sent with.
pub fn codec_params(codec: Codec) -> (RTCRtpCodec, u8, RtpCodecKind) {
    match codec {
        Codec::Opus => (opus(), OPUS_PT, RtpCodecKind::Audio),
        Codec::Vp8 => (vp8(), VP8_PT, RtpCodecKind::Video),
        Codec::H264 => (h264(), H264_PT, RtpCodecKind::Video),
    }
}

fn media_engine() -> Result<MediaEngine, String> {
    let mut me = MediaEngine::default();
    let reg = |me: &mut MediaEngine, codec: RTCRtpCodec, pt: u8, kind| {
        me.register_codec(
            RTCRtpCodecParameters {
                rtp_codec: codec,
                payload_type: pt,
            },
            kind,
        )
        .map_err(|e| e.to_string())
    };
    reg(&mut me, opus(), OPUS_PT, RtpCodecKind::Audio)?;
    // In this order: an offer that names no preference gets VP8.
    for c in video_preferences(Codec::Vp8) {
        reg(&mut me, c.rtp_codec, c.payload_type, RtpCodecKind::Video)?;
    }
    // Publishers' audio carries its level (RFC 6464): who is talking, without decoding.
    me.register_header_extension(
        RTCRtpHeaderExtensionCapability {
            uri: super::levels::URI.to_owned(),
        },
        RtpCodecKind::Audio,
        None,
    )
    .map_err(|e| e.to_string())?;
    Ok(me)
}

/// What every connection of one server shares.
pub struct Shared {
    pub provider: Arc<dyn RTCCryptoProvider>,
    certificate: RTCCertificate,
    /// Seconds without a consent check before a connection counts as failed.
    consent: (Duration, Duration),
    srtp: Vec<SrtpProtectionProfile>,
}

impl Shared {
    /// `srtp_fallback`: also accept AES_CM_128_HMAC_SHA1_80 from clients that lack GCM.
    pub fn new(consent_failed_after: Duration, srtp_fallback: bool) -> Result<Self, String> {
        let provider = rtc::crypto::default_provider().map_err(|e| e.to_string())?;
        let params =
            CertificateParams::new(vec!["convene".to_owned()]).map_err(|e| e.to_string())?;
        let certificate =
            RTCCertificate::generate(provider.crypto(), SignatureScheme::EcdsaP256Sha256, params)
                .map_err(|e| e.to_string())?;
        // The agent calls a silent client disconnected first, then failed after the
        // rest (a zero "failed" timeout would mean never).
        let disconnected = Duration::from_secs(5).min(consent_failed_after / 3);
        // As DTLS server we take the first profile of the client's list that we also
        // list, and Chromium lists AES-CM before AES-GCM: only by listing GCM alone do we
        // get AEAD_AES_128_GCM, about five times cheaper per packet than AES-CM with
        // HMAC-SHA1. Current Chromium, Firefox and Safari all support it.
        let mut srtp = vec![SrtpProtectionProfile::Srtp_Aead_Aes_128_Gcm];
        if srtp_fallback {
            srtp.push(SrtpProtectionProfile::Srtp_Aes128_Cm_Hmac_Sha1_80);
        }
        Ok(Self {
            provider,
            certificate,
            srtp,
            consent: (
                disconnected,
                consent_failed_after.saturating_sub(disconnected),
            ),
        })
    }

    /// A new ICE-lite connection answering to `ufrag` / `pwd`. `sends`: it carries
    /// media to the client (a subscribe connection): keyframe requests from the client
    /// are surfaced to us, and the relay encrypts that media itself (see `KeyTap`), so
    /// no interceptor there would see it.
    pub fn build(
        &self,
        ufrag: &str,
        pwd: &str,
        sends: bool,
        now: Instant,
    ) -> Result<(RTCPeerConnection, Arc<KeyTap>), String> {
        let tap = Arc::new(KeyTap::new(self.provider.clone()));
        let settings = SettingEngineBuilder::new()
            .with_lite(true)
            .with_ice_credentials(ufrag.to_owned(), pwd.to_owned())
            .with_multicast_dns_mode(MulticastDnsMode::Disabled)
            .with_answering_dtls_role(RTCDtlsRole::Server)
            .with_srtp_protection_profiles(self.srtp.clone())
            .with_ice_timeouts(Some(self.consent.0), Some(self.consent.1), None)
            .with_crypto_provider(tap.clone())
            .build();
        let mut me = media_engine()?;
        if sends {
            // What a subscribe connection sends carries transport-wide sequence numbers,
            // which the client reports on (see `bwe`). The relay stamps its packets
            // itself: no interceptor of rtc's is asked to.
            for kind in [RtpCodecKind::Audio, RtpCodecKind::Video] {
                me.register_feedback(
                    RTCPFeedback {
                        typ: "transport-cc".into(),
                        parameter: String::new(),
                    },
                    kind,
                );
                let uri = super::bwe::TWCC_URI.to_owned();
                me.register_header_extension(RTCRtpHeaderExtensionCapability { uri }, kind, None)
                    .map_err(|e| e.to_string())?;
            }
        }
        // A publish connection gets the default interceptors (NACKs to the publisher,
        // receiver reports, transport-wide congestion feedback for its estimate, and
        // the MID and RID extensions simulcast layers are named by). A
        // subscribe connection's media never passes rtc's pipeline, so it needs only
        // the keyframe requests; its sender reports are the relay's own.
        let registry = if sends {
            Registry::new().with(KEYFRAME_SLOT, KeyframeRequests::new())
        } else {
            // Simulcast layers' resends first (see `layer_repair`).
            let repair = super::layer_repair::LayerRepair::new();
            let registry = Registry::new().with(super::layer_repair::REPAIR_SLOT, repair);
            register_default_interceptors(registry, &mut me).map_err(|e| e.to_string())?
        };
        let config = RTCConfigurationBuilder::new()
            .with_certificates(vec![self.certificate.clone()])
            .build();
        let pc = RTCPeerConnectionBuilder::new()
            .with_configuration(config)
            .with_media_engine(me)
            .with_setting_engine(settings)
            .with_interceptor_registry(registry)
            .build(now)
            .map_err(|e| e.to_string())?;
        Ok((pc, tap))
    }
}

/// Marks PLI, FIR, NACK and receiver reports for the application (and keeps only them:
/// by this slot every other interceptor has seen the packet). Public so test clients can see the keyframe
/// requests the relay sends them.
pub type KeyframeRequests = OnRead<KeyframeStep>;

#[derive(Default)]
pub struct KeyframeStep;

impl ReadStep for KeyframeStep {
    fn read(&mut self, msg: TaggedPacket, out: &mut VecDeque<TaggedPacket>) {
        let IPacket::Rtcp(pkts) = &msg.message.packet else {
            out.push_back(msg);
            return;
        };
        let nacks = pkts
            .iter()
            .filter(|p| p.as_any().is::<TransportLayerNack>())
            .count();
        super::stats::NACKS_RECEIVED.add(nacks);
        // rtc hands a compound packet to the application tagged with the track its first
        // packet names, and drops it when that names none of ours (a receiver report
        // whose first block is about a repair stream, say: most of Chromium's, once it
        // received a retransmission). So each packet kept goes up on its own, and a
        // receiver report one block at a time.
        let mut keep: Vec<Box<dyn rtc::rtcp::Packet>> = vec![];
        for p in pkts {
            let any = p.as_any();
            if let Some(rr) = any.downcast_ref::<ReceiverReport>() {
                for block in &rr.reports {
                    keep.push(Box::new(ReceiverReport {
                        ssrc: rr.ssrc,
                        reports: vec![block.clone()],
                        ..Default::default()
                    }));
                }
            } else if any.is::<PictureLossIndication>()
                || any.is::<FullIntraRequest>()
                || any.is::<TransportLayerNack>()
                || any.is::<TransportLayerCc>()
            {
                keep.push(p.clone());
            }
        }
        for p in keep {
            out.push_back(TaggedPacket {
                now: msg.now,
                transport: msg.transport,
                message: AttributedPacket::new(IPacket::Rtcp(vec![p]))
                    .with(Attribute::DeliverToApplication),
            });
        }
    }
}
