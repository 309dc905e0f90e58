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
use rtc::rtp_transceiver::{
    RTCRtpSenderId, RTCRtpTransceiverDirection, RTCRtpTransceiverId, RTCRtpTransceiverInit,
};
use tokio::sync::mpsc::UnboundedSender;

use rtc::crypto::RTCCrypto;
use rtc::srtp::context::Context;
use rtc::srtp::protection_profile::ProtectionProfile;
use rtc::statistics::StatsSelector;

use mediaio::keytap::KeyTap;

use super::pc_setup::{codec_params, video_preferences, Codec};
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
    pub transceiver: RTCRtpTransceiverId,
    pub sender: RTCRtpSenderId,
    pub ssrc: u32,
    pub codec: Codec,
    pub pt: u8,
    /// False once the client's answer left its codec out: nothing is sent on it.
    pub playable: bool,
    /// Its viewer does not show it now: nothing is sent on it.
    pub paused: bool,
    /// Its sequence numbers, gapless across pauses.
    pub shift: super::seq_shift::SeqShift,
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
    /// Video: which of the track's layers it is sent, and the numbers that keep a
    /// switch between them invisible (see `simulcast`).
    pub follow: super::simulcast::Follow,
}

/// Why a track could not be added to a subscribe connection.
#[derive(Debug)]
pub enum LegError {
    /// The client's answers left its codec out: it cannot play it.
    Unplayable(Codec),
    Other(String),
}

impl std::fmt::Display for LegError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LegError::Unplayable(c) => write!(f, "the client cannot play {}", c.mime()),
            LegError::Other(e) => f.write_str(e),
        }
    }
}

/// The id an SDP gives the header extension `uri` (`a=extmap:<id>[/<direction>] <uri>`).
fn extmap_id(sdp: &str, uri: &str) -> Option<u8> {
    sdp.lines().find_map(|l| {
        let (id, rest) = l.trim_end().strip_prefix("a=extmap:")?.split_once(' ')?;
        let id = id.split('/').next()?.parse().ok()?;
        (rest.split_whitespace().next() == Some(uri)).then_some(id)
    })
}

/// Whether the answer's section `mid` takes payload type `pt`: it is not rejected
/// (port 0) and maps `pt` (an answer lists only the offered codecs it can receive).
/// `None`: the answer has no such section (the track was added after the offer).
fn section_takes(answer: &str, mid: &str, pt: u8) -> Option<bool> {
    let want_mid = format!("a=mid:{mid}");
    let want_pt = format!("a=rtpmap:{pt} ");
    answer.split("\nm=").skip(1).find_map(|section| {
        let mut lines = section.lines().map(str::trim_end);
        let port = lines
            .next()
            .and_then(|m| m.split_whitespace().nth(1))
            .unwrap_or("0");
        let lines: Vec<&str> = lines.collect();
        lines
            .contains(&want_mid.as_str())
            .then(|| port != "0" && lines.iter().any(|l| l.starts_with(&want_pt)))
    })
}

/// A track arriving on a publish connection.
pub struct Inbound {
    pub track: TrackKey,
    /// Its simulcast layer (0 for a track sent as one encoding).
    pub layer: u8,
    /// The sequence numbers it brought lately: a copy goes nowhere.
    pub seen: super::seen::Seen,
    /// Its loss over the current window.
    pub loss: super::quality::SeqLoss,
    /// The payload type of its first packet: the codec its viewers were offered.
    pub pt: Option<u8>,
    /// A change of payload type was seen (reported once).
    pub told_codec_change: bool,
}

/// Whether a packet is in the codec its stream began with.
#[derive(Debug, PartialEq, Eq)]
pub enum SameCodec {
    Yes,
    /// Not: `first` the first time.
    No {
        first: bool,
    },
}

impl Inbound {
    pub fn new(track: TrackKey, layer: u8) -> Self {
        Self {
            track,
            layer,
            seen: Default::default(),
            loss: Default::default(),
            pt: None,
            told_codec_change: false,
        }
    }

    /// The first packet's payload type fixes the stream's codec.
    pub fn same_codec(&mut self, pt: u8) -> SameCodec {
        if *self.pt.get_or_insert(pt) == pt {
            return SameCodec::Yes;
        }
        let first = !self.told_codec_change;
        self.told_codec_change = true;
        SameCodec::No { first }
    }
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
    /// Publish: the track of each receiver sent in simulcast (its layers arrive as
    /// several SSRCs, one track).
    pub simulcast: HashMap<rtc::rtp_transceiver::RTCRtpReceiverId, TrackKey>,
    /// Subscribe: the client's receiver reports over the current window.
    pub reports: super::quality::Reports,
    /// Subscribe: what its link carries (see `bwe`).
    pub bwe: super::bwe::Bwe,
    /// Subscribe: tracks sent, and the SSRCs we send them with (media and repair).
    pub legs: HashMap<TrackKey, Leg>,
    pub by_out_ssrc: HashMap<u32, TrackKey>,
    /// Subscribe: codecs the client was told it cannot play (told once).
    unplayable: Vec<Codec>,
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
            simulcast: HashMap::new(),
            reports: Default::default(),
            bwe: Default::default(),
            legs: HashMap::new(),
            by_out_ssrc: HashMap::new(),
            unplayable: Vec::new(),
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
        codec: Codec,
        owner: &UserId,
    ) -> Result<(), LegError> {
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
        let (params, pt, rtp_kind) = codec_params(codec);
        let clock_rate = params.clock_rate;
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
                codec: params,
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
            .map_err(|e| match e {
                // The client's first answer left this codec out.
                rtc::shared::error::Error::ErrRTPTransceiverCodecUnsupported => {
                    LegError::Unplayable(codec)
                }
                e => LegError::Other(e.to_string()),
            })?;
        if kind != MediaKind::Audio {
            // Refused once the first answer has fixed the codecs (see
            // `video_preferences`); the track's own codec is then offered, as before.
            if let Some(mut t) = self.pc.rtp_transceiver(id) {
                let _ = t.set_codec_preferences(video_preferences(codec));
            }
        }
        let sender = RTCRtpSenderId::from(id);
        self.legs.insert(
            track,
            Leg {
                transceiver: id,
                sender,
                ssrc,
                codec,
                pt,
                playable: true,
                paused: false,
                shift: Default::default(),
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
                follow: Default::default(),
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

    /// The client's answer to our offer. Returns the codecs of tracks it cannot play
    /// (its answer left their codec out: a browser without H.264, say), each once per
    /// connection.
    pub fn take_answer(&mut self, sdp: String, now: Instant) -> Result<Vec<Codec>, String> {
        if !self.negotiating {
            return Err("no offer was made".into());
        }
        let answer = RTCSessionDescription::answer(sdp.clone()).map_err(|e| e.to_string())?;
        self.pc
            .set_remote_description(now, answer)
            .map_err(|e| e.to_string())?;
        self.negotiating = false;
        self.bwe.negotiated(extmap_id(&sdp, super::bwe::TWCC_URI));
        Ok(self.learn_answer(&sdp))
    }

    /// A codec the client cannot play: whether to tell it (once per connection).
    pub fn tell_unplayable(&mut self, codec: Codec) -> bool {
        let first = !self.unplayable.contains(&codec);
        if first {
            self.unplayable.push(codec);
        }
        first
    }

    /// After an answer: which legs the client can play, and which video legs it takes
    /// repair packets on (rtc drops the repair stream from a sender whose answer had
    /// no RTX codec).
    fn learn_answer(&mut self, answer: &str) -> Vec<Codec> {
        let mut unplayable = Vec::new();
        for leg in self.legs.values_mut() {
            let mid = self
                .pc
                .rtp_transceiver(leg.transceiver)
                .and_then(|t| t.mid().clone());
            if mid.and_then(|mid| section_takes(answer, &mid, leg.pt)) == Some(false) {
                leg.playable = false;
                unplayable.push(leg.codec);
            }
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
        unplayable.retain(|&c| self.tell_unplayable(c));
        unplayable
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

#[cfg(test)]
mod tests {
    //! Codec negotiation with plain calls: rtc's sans-IO core plays the browser.
    use super::*;
    use crate::sfu::pc_setup::{h264, opus, vp8, Shared, H264_PT};
    use rtc::peer_connection::configuration::media_engine::MediaEngine;
    use rtc::peer_connection::RTCPeerConnectionBuilder;
    use rtc::rtp_transceiver::rtp_sender::{RTCRtpCodec, RTCRtpCodecParameters, RtpCodecKind};
    use std::time::Duration;

    const UFRAG: &str = "abcdefghijklmnop";
    const PWD: &str = "abcdefghijklmnopqrstuvwxyz012345";

    fn relay_conn(role: PcKind) -> Conn {
        let shared = Shared::new(Duration::from_secs(30), false).unwrap();
        let (pc, tap) = shared
            .build(UFRAG, PWD, role == PcKind::Subscribe, Instant::now())
            .unwrap();
        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        let key = ConnKey { worker: 0, id: 1 };
        let user = UserId::parse("someone").unwrap();
        let here = ["127.0.0.1:7882".parse().unwrap()];
        Conn::new(
            key,
            user,
            role,
            pc,
            tap,
            UFRAG.into(),
            PWD.into(),
            tx,
            &here,
        )
        .unwrap()
    }

    /// A browser stand-in taking these video codecs, most preferred first.
    fn browser(video: &[(RTCRtpCodec, u8)]) -> RTCPeerConnection {
        let mut me = MediaEngine::default();
        let mut reg = |codec: RTCRtpCodec, payload_type: u8, kind| {
            let params = RTCRtpCodecParameters {
                rtp_codec: codec,
                payload_type,
            };
            me.register_codec(params, kind).unwrap();
        };
        reg(opus(), 111, RtpCodecKind::Audio);
        for (codec, pt) in video {
            reg(codec.clone(), *pt, RtpCodecKind::Video);
        }
        RTCPeerConnectionBuilder::new()
            .with_media_engine(me)
            .build(Instant::now())
            .unwrap()
    }

    /// The browser's offer to publish a camera in its first codec.
    fn publish_offer(b: &mut RTCPeerConnection, codec: RTCRtpCodec) -> String {
        let track = MediaStreamTrack::new(
            "s".into(),
            "cam".into(),
            "cam".into(),
            RtpCodecKind::Video,
            vec![RTCRtpEncodingParameters {
                rtp_coding_parameters: RTCRtpCodingParameters {
                    ssrc: Some(1234),
                    ..Default::default()
                },
                codec,
                ..Default::default()
            }],
        );
        let init = RTCRtpTransceiverInit {
            direction: RTCRtpTransceiverDirection::Sendonly,
            streams: vec![],
            send_encodings: vec![],
        };
        b.add_transceiver_from_track(track, Some(init)).unwrap();
        let offer = b.create_offer(None).unwrap();
        b.set_local_description(Instant::now(), offer).unwrap();
        b.local_description().unwrap().sdp
    }

    /// The browser's answer to the relay's offer.
    fn answer(b: &mut RTCPeerConnection, offer: String) -> String {
        let now = Instant::now();
        b.set_remote_description(now, RTCSessionDescription::offer(offer).unwrap())
            .unwrap();
        let answer = b.create_answer(None).unwrap();
        b.set_local_description(now, answer).unwrap();
        b.local_description().unwrap().sdp
    }

    /// One negotiation round: the relay's offer, the browser's answer, what the relay
    /// says the browser cannot play.
    fn round(relay: &mut Conn, b: &mut RTCPeerConnection) -> Vec<Codec> {
        let now = Instant::now();
        let offer = relay.renegotiate(now).unwrap().unwrap();
        relay.take_answer(answer(b, offer), now).unwrap()
    }

    /// The codec a video section lists first (the one the other side sends), and its
    /// payload type.
    fn first_video_codec(sdp: &str) -> (String, String) {
        let m = sdp.lines().find(|l| l.starts_with("m=video")).unwrap();
        let pt = m.split_whitespace().nth(3).unwrap().to_string();
        let prefix = format!("a=rtpmap:{pt} ");
        let map = sdp.lines().find_map(|l| l.strip_prefix(&prefix)).unwrap();
        (map.to_string(), pt)
    }

    #[test]
    fn an_extension_id_is_read_from_its_extmap_line() {
        let sdp = "v=0\r\na=extmap:3 urn:a\r\na=extmap:7/sendonly http://x/twcc\r\n";
        assert_eq!(extmap_id(sdp, "http://x/twcc"), Some(7));
        assert_eq!(extmap_id(sdp, "urn:a"), Some(3));
        assert_eq!(extmap_id(sdp, "urn:b"), None);
        assert_eq!(extmap_id("a=extmap:x urn:a", "urn:a"), None);
    }

    #[test]
    fn a_stream_keeps_the_codec_it_began_with() {
        let mut inbound = Inbound::new(1, 0);
        assert_eq!(inbound.same_codec(106), SameCodec::Yes);
        assert_eq!(inbound.same_codec(106), SameCodec::Yes);
        assert_eq!(inbound.same_codec(96), SameCodec::No { first: true });
        assert_eq!(inbound.same_codec(96), SameCodec::No { first: false });
        assert_eq!(inbound.same_codec(106), SameCodec::Yes);
    }

    #[test]
    fn a_publisher_that_puts_h264_first_is_answered_h264_and_vp8_stays_the_default() {
        // Chromium's payload type for constrained baseline, not the relay's own.
        let mut b = browser(&[(h264(), 106), (vp8(), 96)]);
        let offer = publish_offer(&mut b, h264());
        let answer = relay_conn(PcKind::Publish)
            .answer_offer(offer, Instant::now())
            .unwrap();
        assert_eq!(
            first_video_codec(&answer),
            ("H264/90000".into(), "106".into()),
            "{answer}"
        );
        assert!(answer.contains("profile-level-id=42e01f"), "{answer}");

        let mut b = browser(&[(vp8(), 96), (h264(), 106)]);
        let offer = publish_offer(&mut b, vp8());
        let answer = relay_conn(PcKind::Publish)
            .answer_offer(offer, Instant::now())
            .unwrap();
        assert_eq!(first_video_codec(&answer).0, "VP8/90000", "{answer}");

        assert_eq!(Codec::of(MediaKind::Video, Some("video/h264")), Codec::H264);
        assert_eq!(Codec::of(MediaKind::Screen, Some("video/VP8")), Codec::Vp8);
        assert_eq!(Codec::of(MediaKind::Audio, None), Codec::Opus);
    }

    #[test]
    fn an_h264_track_is_offered_as_h264_and_a_viewer_without_it_is_told_once() {
        let owner = UserId::parse("publisher").unwrap();
        let now = Instant::now();
        let mut relay = relay_conn(PcKind::Subscribe);
        relay
            .add_leg(1, MediaKind::Video, Codec::H264, &owner)
            .unwrap();
        assert_eq!(relay.legs[&1].pt, H264_PT);
        let offer = relay.renegotiate(now).unwrap().unwrap();
        // H.264 first, and VP8 offered too (see `video_preferences`).
        assert_eq!(
            first_video_codec(&offer),
            ("H264/90000".into(), H264_PT.to_string()),
            "{offer}"
        );
        assert!(offer.contains("VP8/90000"), "{offer}");

        // A browser that plays VP8 only: told once, not at each renegotiation, and a
        // VP8 track added afterwards still plays.
        let mut vp8_only = browser(&[(vp8(), 96)]);
        let sdp = answer(&mut vp8_only, offer);
        assert_eq!(relay.take_answer(sdp, now).unwrap(), vec![Codec::H264]);
        assert!(!relay.legs[&1].playable, "nothing is sent on it");
        relay
            .add_leg(2, MediaKind::Video, Codec::Vp8, &owner)
            .unwrap();
        assert_eq!(round(&mut relay, &mut vp8_only), vec![]);
        // A second H.264 track cannot even be added now; the client was told already.
        assert!(matches!(
            relay.add_leg(3, MediaKind::Video, Codec::H264, &owner),
            Err(LegError::Unplayable(Codec::H264))
        ));
        assert!(!relay.tell_unplayable(Codec::H264));

        // A browser with both plays both, whichever comes first, and is told nothing.
        let mut relay = relay_conn(PcKind::Subscribe);
        relay
            .add_leg(1, MediaKind::Video, Codec::H264, &owner)
            .unwrap();
        let offer = relay.renegotiate(now).unwrap().unwrap();
        let mut both = browser(&[(vp8(), 96), (h264(), 102)]);
        // Added while the offer is out: not in this answer, so not judged by it.
        relay
            .add_leg(2, MediaKind::Video, Codec::Vp8, &owner)
            .unwrap();
        let sdp = answer(&mut both, offer);
        assert_eq!(relay.take_answer(sdp, now).unwrap(), vec![]);
        assert_eq!(round(&mut relay, &mut both), vec![]);
        assert!(relay.legs.values().all(|l| l.playable));

        // VP8 first, then H.264.
        let mut relay = relay_conn(PcKind::Subscribe);
        relay
            .add_leg(1, MediaKind::Video, Codec::Vp8, &owner)
            .unwrap();
        let mut both = browser(&[(vp8(), 96), (h264(), 102)]);
        assert_eq!(round(&mut relay, &mut both), vec![]);
        relay
            .add_leg(2, MediaKind::Video, Codec::H264, &owner)
            .unwrap();
        assert_eq!(round(&mut relay, &mut both), vec![]);
        assert!(relay.legs.values().all(|l| l.playable));
    }
}
