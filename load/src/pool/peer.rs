//! One client peer as its pool thread holds it: a full-ICE `rtc` connection configured as
//! a browser's would be for Convene (Opus 111, VP8 96, the default interceptors, no
//! mDNS), its tracks, and what it sends.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use mediaio::keytap::KeyTap;
use rtc::crypto::{RTCCrypto, RTCCryptoProvider, SignatureScheme};
use rtc::ice::mdns::MulticastDnsMode;
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::certificate::{CertificateParams, RTCCertificate};
use rtc::peer_connection::configuration::interceptor_registry::{
    register_default_interceptors, Registry,
};
use rtc::peer_connection::configuration::media_engine::MediaEngine;
use rtc::peer_connection::configuration::setting_engine::SettingEngineBuilder;
use rtc::peer_connection::configuration::RTCConfigurationBuilder;
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::transport::RTCIceCandidateInit;
use rtc::peer_connection::{RTCPeerConnection, RTCPeerConnectionBuilder};
use rtc::rtp::{header::Header, Packet};
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodecParameters, RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};
use rtc::rtp_transceiver::{RTCRtpSenderId, RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
use rtc::srtp::context::Context;
use rtc::srtp::protection_profile::ProtectionProfile;
use rtc::statistics::StatsSelector;
use tokio::sync::mpsc::UnboundedSender;

use super::{PeerEvent, PeerStats, SendTrack, Sink};
use crate::client::codec;

/// What every peer of a pool shares: one certificate (a key per peer would cost a
/// millisecond each).
pub struct Shared {
    pub provider: Arc<dyn RTCCryptoProvider>,
    certificate: RTCCertificate,
}

impl Shared {
    pub fn new() -> Result<Self, String> {
        let provider = rtc::crypto::default_provider().map_err(|e| e.to_string())?;
        let params = CertificateParams::new(vec!["load".to_owned()]).map_err(|e| e.to_string())?;
        let certificate =
            RTCCertificate::generate(provider.crypto(), SignatureScheme::EcdsaP256Sha256, params)
                .map_err(|e| e.to_string())?;
        Ok(Self {
            provider,
            certificate,
        })
    }

    /// A peer; `receive_only` peers get no interceptors (nothing they receive needs
    /// one) and, once connected, decrypt media themselves (see `ClientPeer::rx`).
    fn build(
        &self,
        receive_only: bool,
        now: Instant,
    ) -> Result<(RTCPeerConnection, Arc<KeyTap>), String> {
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
        let registry = if receive_only {
            Registry::new()
        } else {
            register_default_interceptors(Registry::new(), &mut me).map_err(|e| e.to_string())?
        };
        let tap = Arc::new(KeyTap::new(self.provider.clone()));
        let settings = SettingEngineBuilder::new()
            .with_multicast_dns_mode(MulticastDnsMode::Disabled)
            .with_crypto_provider(tap.clone())
            .build();
        let pc = RTCPeerConnectionBuilder::new()
            .with_configuration(
                RTCConfigurationBuilder::new()
                    .with_certificates(vec![self.certificate.clone()])
                    .build(),
            )
            .with_media_engine(me)
            .with_interceptor_registry(registry)
            .with_setting_engine(settings)
            .build(now)
            .map_err(|e| e.to_string())?;
        Ok((pc, tap))
    }
}

/// Bytes 2..10 of every payload hold the packet index and 10..18 the send time in µs
/// since the pool's epoch; bytes 0..2 are left for the codec's own header.
pub const PAYLOAD_FIELDS: usize = 18;

pub struct Outgoing {
    pub sender: RTCRtpSenderId,
    pub ssrc: u32,
    pub spec: SendTrack,
    pub index: u64,
    pub interval: Duration,
}

pub struct ClientPeer {
    pub id: u64,
    pub ip: Ipv4Addr,
    pub pc: RTCPeerConnection,
    /// Our host candidate (the address the ICE agent knows us by).
    pub local: SocketAddr,
    /// Which of the thread's sockets it uses now.
    pub socket: usize,
    pub tracks: Vec<Outgoing>,
    pub sending: bool,
    pub connected: bool,
    pub receive: bool,
    pub stalled: bool,
    pub dark: bool,
    pub sink: Option<Arc<dyn Sink>>,
    pub stats: Arc<PeerStats>,
    pub events: UnboundedSender<PeerEvent>,
    /// Incoming streams by SSRC.
    pub kinds: HashMap<u32, RtpCodecKind>,
    pub deadline: Option<Instant>,
    tap: Arc<KeyTap>,
    /// Our own SRTP context for what arrives, once DTLS is up; used for every media
    /// packet once `rx_verified` (its result matched rtc's on a first packet).
    pub rx: Option<Context>,
    pub rx_verified: bool,
    /// A packet we decrypted ourselves and also gave rtc, awaiting rtc's result.
    pub rx_check: Option<(u16, Bytes)>,
}

impl ClientPeer {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        shared: &Shared,
        id: u64,
        ip: Ipv4Addr,
        port: u16,
        send: Vec<SendTrack>,
        receive: bool,
        sink: Option<Arc<dyn Sink>>,
        stats: Arc<PeerStats>,
        events: UnboundedSender<PeerEvent>,
        now: Instant,
    ) -> Result<Self, String> {
        let (mut pc, tap) = shared.build(send.is_empty(), now)?;
        let local = SocketAddr::from((ip, port));
        pc.add_local_candidate(RTCIceCandidateInit {
            candidate: format!("candidate:1 1 udp 2130706431 {ip} {port} typ host"),
            ..Default::default()
        })
        .map_err(|e| e.to_string())?;
        let mut tracks = vec![];
        for spec in send {
            let ssrc = rand::random::<u32>() | 1;
            let (name, pt_codec) = match spec.kind {
                RtpCodecKind::Audio => ("mic", codec(RtpCodecKind::Audio)),
                _ => ("cam", codec(RtpCodecKind::Video)),
            };
            let track = MediaStreamTrack::new(
                format!("stream-{id}"),
                format!("{name}-{id}"),
                name.to_string(),
                spec.kind,
                vec![RTCRtpEncodingParameters {
                    rtp_coding_parameters: RTCRtpCodingParameters {
                        ssrc: Some(ssrc),
                        ..Default::default()
                    },
                    codec: pt_codec,
                    ..Default::default()
                }],
            );
            let t = pc
                .add_transceiver_from_track(
                    track,
                    Some(RTCRtpTransceiverInit {
                        direction: RTCRtpTransceiverDirection::Sendonly,
                        streams: vec![],
                        send_encodings: vec![],
                    }),
                )
                .map_err(|e| e.to_string())?;
            tracks.push(Outgoing {
                sender: RTCRtpSenderId::from(t),
                ssrc,
                spec,
                index: 0,
                interval: Duration::from_secs_f64(1.0 / f64::from(spec.pps.max(1))),
            });
        }
        Ok(Self {
            id,
            ip,
            pc,
            local,
            socket: 0,
            tracks,
            sending: false,
            connected: false,
            receive,
            stalled: false,
            dark: false,
            sink,
            stats,
            events,
            kinds: HashMap::new(),
            deadline: None,
            tap,
            rx: None,
            rx_verified: false,
            rx_check: None,
        })
    }

    /// DTLS is up: our own context for decrypting media, from the keys rtc derived.
    pub fn arm_rx(&mut self, crypto: &dyn RTCCrypto, now: Instant) {
        let cipher = self
            .pc
            .get_stats(now, StatsSelector::None)
            .transport()
            .map(|t| t.srtp_cipher.clone())
            .unwrap_or_default();
        let profile = match cipher.as_str() {
            "SRTP_AEAD_AES_128_GCM" => ProtectionProfile::AeadAes128Gcm,
            "SRTP_AES128_CM_HMAC_SHA1_80" => ProtectionProfile::Aes128CmHmacSha1_80,
            _ => return,
        };
        if let Some((key, salt)) = self.tap.remote_master(profile.salt_len()) {
            self.rx = Context::new(&key, &salt, profile, None, None, crypto).ok();
        }
    }

    pub fn offer(&mut self, now: Instant) -> Result<String, String> {
        let offer = self.pc.create_offer(None).map_err(|e| e.to_string())?;
        self.pc
            .set_local_description(now, offer)
            .map_err(|e| e.to_string())?;
        self.pc
            .local_description()
            .map(|d| d.sdp)
            .ok_or_else(|| "no local description".into())
    }

    pub fn answer(&mut self, offer: String, now: Instant) -> Result<String, String> {
        let offer = RTCSessionDescription::offer(offer).map_err(|e| e.to_string())?;
        self.pc
            .set_remote_description(now, offer)
            .map_err(|e| e.to_string())?;
        let answer = self.pc.create_answer(None).map_err(|e| e.to_string())?;
        self.pc
            .set_local_description(now, answer)
            .map_err(|e| e.to_string())?;
        self.pc
            .local_description()
            .map(|d| d.sdp)
            .ok_or_else(|| "no local description".into())
    }

    pub fn accept_answer(&mut self, answer: String, now: Instant) -> Result<(), String> {
        let answer = RTCSessionDescription::answer(answer).map_err(|e| e.to_string())?;
        self.pc
            .set_remote_description(now, answer)
            .map_err(|e| e.to_string())
    }

    /// The next packet of track `i`, stamped with the time since `epoch`.
    pub fn next_packet(&mut self, i: usize, epoch: Instant) -> Packet {
        let t = &mut self.tracks[i];
        let audio = t.spec.kind == RtpCodecKind::Audio;
        let mut payload = vec![0u8; t.spec.payload.max(PAYLOAD_FIELDS)];
        // VP8: a descriptor saying "start of partition"; Opus: a TOC byte for a 20 ms
        // CELT frame. Only the bytes after them carry our fields.
        payload[0] = if audio { 0xfc } else { 0x10 };
        payload[2..10].copy_from_slice(&t.index.to_be_bytes());
        payload[10..18].copy_from_slice(&(epoch.elapsed().as_micros() as u64).to_be_bytes());
        let (pt, step) = if audio { (111, 960u32) } else { (96, 3000u32) };
        let pkt = Packet {
            header: Header {
                version: 2,
                payload_type: pt,
                sequence_number: t.index as u16,
                timestamp: (t.index as u32).wrapping_mul(step),
                ssrc: t.ssrc,
                marker: !audio,
                ..Default::default()
            },
            payload: Bytes::from(payload),
        };
        t.index += 1;
        pkt
    }
}

/// The index and send time (µs since the epoch) in a payload this pool sent.
pub fn read_fields(payload: &[u8]) -> Option<(u64, u64)> {
    if payload.len() < PAYLOAD_FIELDS {
        return None;
    }
    let idx = u64::from_be_bytes(payload[2..10].try_into().ok()?);
    let sent = u64::from_be_bytes(payload[10..18].try_into().ok()?);
    Some((idx, sent))
}
