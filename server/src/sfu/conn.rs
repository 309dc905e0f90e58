//! One peer connection of a member, as its worker holds it: the `rtc` state machine, the
//! addresses it answers on, and what it publishes or receives. Negotiation happens
//! here; moving packets is the worker's.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use convene_protocol::signal::PcKind;
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::media_engine::MIME_TYPE_RTX;
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::transport::RTCIceCandidateInit;
use rtc::peer_connection::RTCPeerConnection;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodingParameters, RTCRtpEncodingParameters, RTCRtpRtxParameters,
};
use rtc::rtp_transceiver::{RTCRtpSenderId, RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
use tokio::sync::mpsc::UnboundedSender;

use rtc::crypto::RTCCrypto;
use rtc::srtp::context::Context;
use rtc::srtp::protection_profile::ProtectionProfile;
use rtc::statistics::StatsSelector;

use mediaio::keytap::KeyTap;

use super::pc_setup::codec_for;
use super::port::MediaKind;
use super::wire::{ConnEvent, ConnKey, TrackKey};
use crate::ids::UserId;

/// Stream and track ids that name the owner and kind, in characters SDP allows
/// (user ids may hold '@' and ':'): `u-<hex of user id>` and `<kind>-<hex>`.
pub fn stream_id(owner: &UserId) -> String {
    format!("u-{}", hex(owner.as_str()))
}

pub fn track_id(owner: &UserId, kind: MediaKind) -> String {
    format!("{}-{}", kind.as_str(), hex(owner.as_str()))
}

fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

/// A track this connection sends to its client.
#[derive(Debug, Clone, Copy)]
pub struct Leg {
    pub sender: RTCRtpSenderId,
    pub ssrc: u32,
    pub pt: u8,
    pub clock_rate: u32,
    /// Our own encryption of its first packet matched rtc's: the rest may skip rtc.
    pub verified: bool,
    pub packets: u32,
    pub octets: u32,
    /// The last packet's RTP timestamp and when it was sent (for sender reports).
    pub last_ts: u32,
    pub last_at: Option<Instant>,
    pub reported: u32,
    /// Video: the repair stream (RFC 4588) offered with it: its SSRC, and the payload
    /// type once the client's answer accepted it (`None`: NACKs go unanswered).
    pub rtx_ssrc: Option<u32>,
    pub rtx_pt: Option<u8>,
    /// The repair stream's own sequence numbers.
    pub rtx_seq: u16,
    /// How many resends it may still have (see `history::RESEND_PER_SECOND`).
    pub resends: super::history::ResendBudget,
    /// The gaps in what it was sent, for its viewer's loss (see `quality`).
    pub sent: super::quality::SentGaps,
}

/// A track arriving on a publish connection.
pub struct Inbound {
    pub track: TrackKey,
    /// Its loss over the current window.
    pub loss: super::quality::SeqLoss,
}

/// The relay's own SRTP for what a subscribe connection sends: one buffer per packet
/// per subscriber, encrypted once, with none of rtc's per-packet pipeline.
pub struct FastSrtp {
    pub ctx: Context,
}

pub struct Conn {
    pub key: ConnKey,
    pub user: UserId,
    pub role: PcKind,
    pub pc: RTCPeerConnection,
    pub ufrag: String,
    pub pwd: String,
    pub events: UnboundedSender<ConnEvent>,
    /// Client addresses bound to this connection by an authentic binding request.
    pub addrs: Vec<SocketAddr>,
    /// After a NAT rebinding: (the address the ICE agent knows, where the client is now).
    pub rebound: Option<(SocketAddr, SocketAddr)>,
    /// Where the ICE agent last sent to: the selected pair, once connected.
    pub last_dst: Option<SocketAddr>,
    /// Our address it sends from (what the client talks to).
    pub src_ip: Option<IpAddr>,
    pub tap: Arc<KeyTap>,
    pub fast: Option<FastSrtp>,
    pub connected: bool,
    /// Publish: browser track ids of screen shares (from the offer's signaling).
    pub screen_ids: HashSet<String>,
    /// Publish: the audio levels its audio carries.
    pub levels: super::levels::Levels,
    /// Publish: tracks arriving, by their SSRC.
    pub inbound: HashMap<u32, Inbound>,
    /// Subscribe: the client's receiver reports over the current window.
    pub reports: super::quality::Reports,
    /// Subscribe: tracks sent, and the SSRCs we send them with (media and repair).
    pub legs: HashMap<TrackKey, Leg>,
    pub by_out_ssrc: HashMap<u32, TrackKey>,
    /// Subscribe: an offer of ours awaits its answer; changes meanwhile set `dirty`.
    negotiating: bool,
    dirty: bool,
    /// When `handle_timeout` is next due (as last asked).
    pub deadline: Option<Instant>,
    /// Queued for a flush of forwarded packets.
    pub written: bool,
}

impl Conn {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        key: ConnKey,
        user: UserId,
        role: PcKind,
        mut pc: RTCPeerConnection,
        tap: Arc<KeyTap>,
        ufrag: String,
        pwd: String,
        events: UnboundedSender<ConnEvent>,
        candidates: &[SocketAddr],
    ) -> Result<Self, String> {
        for (i, a) in candidates.iter().enumerate() {
            let line = format!(
                "candidate:{} 1 udp {} {} {} typ host",
                i + 1,
                2_130_706_431u32 - i as u32,
                a.ip(),
                a.port()
            );
            pc.add_local_candidate(RTCIceCandidateInit {
                candidate: line,
                ..Default::default()
            })
            .map_err(|e| format!("local candidate {a}: {e}"))?;
        }
        Ok(Self {
            key,
            user,
            role,
            pc,
            ufrag,
            pwd,
            events,
            addrs: vec![],
            rebound: None,
            last_dst: None,
            src_ip: None,
            tap,
            fast: None,
            connected: false,
            screen_ids: HashSet::new(),
            levels: Default::default(),
            inbound: HashMap::new(),
            reports: Default::default(),
            legs: HashMap::new(),
            by_out_ssrc: HashMap::new(),
            negotiating: false,
            dirty: false,
            deadline: None,
            written: false,
        })
    }

    /// The client's offer on its publish connection; returns our answer.
    pub fn answer_offer(&mut self, sdp: String, now: Instant) -> Result<String, String> {
        // The answer keeps the offer's extension ids.
        self.levels.set_id(super::levels::ext_id(&sdp));
        let offer = RTCSessionDescription::offer(sdp).map_err(|e| e.to_string())?;
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
            .ok_or_else(|| "no local description".to_string())
    }

    /// Adds a send-only transceiver for `track`; the offer follows from `renegotiate`.
    pub fn add_leg(
        &mut self,
        track: TrackKey,
        kind: MediaKind,
        owner: &UserId,
    ) -> Result<(), String> {
        if self.legs.contains_key(&track) {
            return Ok(());
        }
        let fresh_ssrc = || loop {
            let s: u32 = rand::random();
            if s != 0 && !self.by_out_ssrc.contains_key(&s) {
                break s;
            }
        };
        let ssrc = fresh_ssrc();
        // Video is offered a repair stream, so lost packets can be resent (RTX).
        let rtx_ssrc = (kind != MediaKind::Audio).then(|| loop {
            let s = fresh_ssrc();
            if s != ssrc {
                break s;
            }
        });
        let (codec, pt, rtp_kind) = codec_for(kind);
        let clock_rate = codec.clock_rate;
        let t = MediaStreamTrack::new(
            stream_id(owner),
            track_id(owner, kind),
            track_id(owner, kind),
            rtp_kind,
            vec![RTCRtpEncodingParameters {
                rtp_coding_parameters: RTCRtpCodingParameters {
                    ssrc: Some(ssrc),
                    rtx: rtx_ssrc.map(|ssrc| RTCRtpRtxParameters { ssrc }),
                    ..Default::default()
                },
                codec,
                ..Default::default()
            }],
        );
        let id = self
            .pc
            .add_transceiver_from_track(
                t,
                Some(RTCRtpTransceiverInit {
                    direction: RTCRtpTransceiverDirection::Sendonly,
                    streams: vec![],
                    send_encodings: vec![],
                }),
            )
            .map_err(|e| e.to_string())?;
        let sender = RTCRtpSenderId::from(id);
        self.legs.insert(
            track,
            Leg {
                sender,
                ssrc,
                pt,
                clock_rate,
                verified: false,
                packets: 0,
                octets: 0,
                last_ts: 0,
                last_at: None,
                reported: 0,
                rtx_ssrc,
                rtx_pt: None,
                rtx_seq: rand::random(),
                resends: Default::default(),
                sent: Default::default(),
            },
        );
        self.by_out_ssrc.insert(ssrc, track);
        if let Some(r) = rtx_ssrc {
            self.by_out_ssrc.insert(r, track);
        }
        self.dirty = true;
        Ok(())
    }

    pub fn remove_leg(&mut self, track: TrackKey) {
        if let Some(leg) = self.legs.remove(&track) {
            self.by_out_ssrc.remove(&leg.ssrc);
            if let Some(r) = leg.rtx_ssrc {
                self.by_out_ssrc.remove(&r);
            }
            let _ = self.pc.remove_track(leg.sender);
            self.dirty = true;
        }
    }

    /// A new offer when the sent tracks changed and no offer is awaiting its answer.
    pub fn renegotiate(&mut self, now: Instant) -> Option<Result<String, String>> {
        if !self.dirty || self.negotiating {
            return None;
        }
        self.dirty = false;
        let made = (|| {
            let offer = self.pc.create_offer(None).map_err(|e| e.to_string())?;
            self.pc
                .set_local_description(now, offer)
                .map_err(|e| e.to_string())?;
            self.pc
                .local_description()
                .map(|d| d.sdp)
                .ok_or_else(|| "no local description".to_string())
        })();
        self.negotiating = made.is_ok();
        Some(made)
    }

    /// The client's answer to our offer.
    pub fn take_answer(&mut self, sdp: String, now: Instant) -> Result<(), String> {
        if !self.negotiating {
            return Err("no offer was made".into());
        }
        let answer = RTCSessionDescription::answer(sdp).map_err(|e| e.to_string())?;
        self.pc
            .set_remote_description(now, answer)
            .map_err(|e| e.to_string())?;
        self.negotiating = false;
        self.learn_rtx();
        Ok(())
    }

    /// After an answer: which video legs the client takes repair packets on. rtc drops
    /// the repair stream from a sender whose answer had no RTX codec.
    fn learn_rtx(&mut self) {
        for leg in self.legs.values_mut() {
            if leg.rtx_ssrc.is_none() {
                continue;
            }
            leg.rtx_pt = self.pc.rtp_sender(leg.sender).and_then(|mut sender| {
                let params = sender.get_parameters();
                let offered = params
                    .encodings
                    .first()
                    .and_then(|e| e.rtp_coding_parameters.rtx.as_ref())
                    .is_some();
                let apt = format!("apt={}", leg.pt);
                let pt = params.rtp_parameters.codecs.iter().find(|c| {
                    c.rtp_codec.mime_type.eq_ignore_ascii_case(MIME_TYPE_RTX)
                        && c.rtp_codec
                            .sdp_fmtp_line
                            .split(';')
                            .any(|p| p.trim() == apt)
                });
                pt.filter(|_| offered).map(|c| c.payload_type)
            });
        }
    }

    /// DTLS is up: the relay's own SRTP context, from the keys rtc derived (see
    /// `KeyTap`). Without it (an unknown profile, a key not seen) rtc's path is kept.
    pub fn arm_fast_path(&mut self, crypto: &dyn RTCCrypto, now: Instant) {
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
        let Some((key, salt)) = self.tap.local_master(profile.salt_len()) else {
            return;
        };
        if key.len() != profile.key_len() {
            return;
        }
        if let Ok(ctx) = Context::new(&key, &salt, profile, None, None, crypto) {
            self.fast = Some(FastSrtp { ctx });
        }
    }

    /// The address to hand the ICE agent for a datagram from `src` (after a NAT
    /// rebinding, the one it knows).
    pub fn agent_addr(&self, src: SocketAddr) -> SocketAddr {
        match self.rebound {
            Some((known, now_at)) if now_at == src => known,
            _ => src,
        }
    }

    /// Where to send what the ICE agent addressed to `dst`.
    pub fn wire_addr(&self, dst: SocketAddr) -> SocketAddr {
        match self.rebound {
            Some((known, now_at)) if known == dst => now_at,
            _ => dst,
        }
    }
}
