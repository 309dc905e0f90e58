//! Retransmissions of simulcast layers, on a publish connection. A browser resends a
//! layer's lost packets (RTX, RFC 4588) on a repair stream named only by the
//! `repaired-rtp-stream-id` extension (the RID of the layer it repairs), with no SSRC
//! in the SDP to pair it by; `rtc` binds no stream for them, and drops them.
//! This interceptor, nearest the wire, turns each such packet back into the packet it
//! resends (the layer's SSRC and payload type, the original sequence number and
//! payload) before anything else sees it: the NACK generator then counts it received,
//! and the relay forwards it as if it had come on time.
//!
//! What it cannot turn back (a padding-only bandwidth probe, a resend of a layer not
//! seen yet) goes on as it came, for `rtc` to drop: the transport-wide feedback, which
//! sits after the NACK generator, must still count it arrived. Dropped here, Chromium
//! took every probe for lost and its send estimate sank to about 100 kbit/s, below its
//! smallest layer: layers it paused never came back, and a camera with three viewers
//! could fall to one layer. Sans-IO, like every interceptor: packets in, packets out.

use std::collections::{HashMap, VecDeque};

use rtc::interceptor::{Packet as IPacket, Slot, StreamInfo, TaggedPacket};

use super::read_step::{OnRead, ReadStep};

/// Nearest the wire on the read path: before the NACK generator (7,000) and the
/// transport-wide feedback (8,000) see the packet.
pub const REPAIR_SLOT: Slot = Slot::Custom(500);

const RID: &str = "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id";
const RRID: &str = "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id";

pub type LayerRepair = OnRead<Repair>;

#[derive(Default)]
pub struct Repair {
    /// The extension ids this connection negotiated (from its streams' bindings).
    rid_id: Option<u8>,
    rrid_id: Option<u8>,
    /// Each layer's SSRC and payload type, by its RID (as its packets say).
    layers: HashMap<Vec<u8>, (u32, u8)>,
    /// Payload types of the streams bound, by SSRC.
    types: HashMap<u32, u8>,
}

impl Repair {
    /// The packet to hand on for `pkt`: the original packet it resends, or itself (also
    /// a resend with nothing in it, a padding-only bandwidth probe, or of no known layer).
    fn repair(&mut self, mut pkt: rtc::rtp::Packet) -> rtc::rtp::Packet {
        let h = &pkt.header;
        if !h.extension {
            return pkt;
        }
        if let Some(rid) = self.rid_id.and_then(|id| h.get_extension(id)) {
            if let Some(&pt) = self.types.get(&h.ssrc) {
                if !self.layers.contains_key(&rid[..]) {
                    self.layers.insert(rid.to_vec(), (h.ssrc, pt));
                }
            }
            return pkt;
        }
        let Some(rrid) = self.rrid_id.and_then(|id| h.get_extension(id)) else {
            return pkt;
        };
        let Some(&(ssrc, pt)) = self.layers.get(&rrid[..]) else {
            return pkt;
        };
        if pkt.payload.len() < 2 {
            return pkt;
        }
        pkt.header.ssrc = ssrc;
        pkt.header.payload_type = pt;
        pkt.header.sequence_number = u16::from_be_bytes([pkt.payload[0], pkt.payload[1]]);
        pkt.payload = pkt.payload.slice(2..);
        super::stats::LAYER_RESENDS_TAKEN.inc();
        pkt
    }
}

impl ReadStep for Repair {
    fn read(&mut self, mut msg: TaggedPacket, out: &mut VecDeque<TaggedPacket>) {
        if let IPacket::Rtp(pkt) = msg.message.packet {
            msg.message.packet = IPacket::Rtp(self.repair(pkt));
        }
        out.push_back(msg);
    }
    fn bind_remote_stream(&mut self, info: &StreamInfo) {
        for e in &info.rtp_header_extensions {
            match e.uri.as_str() {
                RID => self.rid_id = u8::try_from(e.id).ok(),
                RRID => self.rrid_id = u8::try_from(e.id).ok(),
                _ => {}
            }
        }
        self.types.insert(info.ssrc, info.payload_type);
    }
    fn unbind_remote_stream(&mut self, info: &StreamInfo) {
        self.types.remove(&info.ssrc);
        self.layers.retain(|_, (ssrc, _)| *ssrc != info.ssrc);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtc::interceptor::RTPHeaderExtension;
    use rtc::rtp;

    fn layer_info(ssrc: u32) -> StreamInfo {
        StreamInfo {
            ssrc,
            payload_type: 96,
            rtp_header_extensions: vec![
                RTPHeaderExtension {
                    uri: RID.into(),
                    id: 10,
                },
                RTPHeaderExtension {
                    uri: RRID.into(),
                    id: 11,
                },
            ],
            ..Default::default()
        }
    }

    fn packet(ssrc: u32, pt: u8, seq: u16, ext: Option<(u8, &str)>, payload: &[u8]) -> rtp::Packet {
        let mut header = rtp::header::Header {
            version: 2,
            payload_type: pt,
            sequence_number: seq,
            timestamp: 1234,
            ssrc,
            ..Default::default()
        };
        if let Some((id, v)) = ext {
            header
                .set_extension(id, bytes::Bytes::copy_from_slice(v.as_bytes()))
                .unwrap();
        }
        rtp::Packet {
            header,
            payload: bytes::Bytes::copy_from_slice(payload),
        }
    }

    #[test]
    fn a_layers_resend_becomes_the_packet_it_resends() {
        let mut r = Repair::default();
        r.bind_remote_stream(&layer_info(1111));
        r.bind_remote_stream(&layer_info(2222));
        // Plain packets and the layers' own pass untouched (and name the layers).
        let plain = packet(1111, 96, 5, None, b"abc");
        assert_eq!(r.repair(plain.clone()), plain);
        let q = packet(1111, 96, 6, Some((10, "q")), b"abc");
        assert_eq!(r.repair(q.clone()), q);
        let f = packet(2222, 96, 60, Some((10, "f")), b"abc");
        assert_eq!(r.repair(f.clone()), f);
        // A resend of f's packet 58 on its repair stream (another SSRC, the RTX type).
        let rtx = packet(3333, 97, 900, Some((11, "f")), &[0, 58, b'x', b'y']);
        let back = r.repair(rtx);
        assert_eq!(back.header.ssrc, 2222);
        assert_eq!(back.header.payload_type, 96);
        assert_eq!(back.header.sequence_number, 58);
        assert_eq!(back.header.timestamp, 1234);
        assert_eq!(&back.payload[..], b"xy");
        // A padding-only probe, and a resend of a layer never seen: on as they came (the
        // transport-wide feedback must count them arrived).
        let probe = packet(3333, 97, 901, Some((11, "f")), &[]);
        assert_eq!(r.repair(probe.clone()), probe);
        let unknown = packet(4444, 97, 1, Some((11, "h")), &[0, 1, 2]);
        assert_eq!(r.repair(unknown.clone()), unknown);
        // A layer gone: its resends are no longer turned back.
        r.unbind_remote_stream(&layer_info(2222));
        let late = packet(3333, 97, 902, Some((11, "f")), &[0, 59, 1]);
        assert_eq!(r.repair(late.clone()), late);
    }
}
