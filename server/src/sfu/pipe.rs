//! Pipes: a track's packets from one node's relay to another's, once per track per node
//! however many viewers that node has, while one of them shows it (see `room`: the
//! home's relay receives every publisher, an edge's relay sends to its own members).
//!
//! A pipe shares the media port. Its datagrams start with a byte the relay's WebRTC
//! traffic never starts with (RFC 7983: STUN 0-3, DTLS 20-63, TURN channels 64-79, RTP
//! and RTCP 128-191; QUIC, which RFC 9443 gives 192-255, is not spoken here), then their kind
//! and the pipe's 64-bit id, which the importing relay picked at random:
//! - `MEDIA`, exporter to importer: the publisher's RTP packet, as decrypted (plain),
//!   with its simulcast layer in the kind byte's high nibble (see `simulcast`);
//! - `KEYFRAME`, importer to exporter: a viewer there needs a keyframe.
//!
//! Like the database and Redis between nodes, pipes are meant for a private network:
//! their packets are not encrypted, and the unguessable id is what a relay checks.

use std::collections::HashMap;
use std::sync::RwLock;

use bytes::BytesMut;
use rtc::rtp;

use super::wire::TrackKey;

/// The first byte of every pipe datagram.
pub const MARK: u8 = 0xC5;
const HEADER: usize = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Media = 0,
    Keyframe = 1,
}

/// One pipe's end on this relay: which worker holds the track, and which track.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct End {
    pub worker: u16,
    pub track: TrackKey,
}

/// The pipes of this relay, by id, for a datagram that reached any worker's socket.
#[derive(Default)]
pub struct Pipes {
    /// Tracks received from another node (their media arrives here).
    pub imports: RwLock<HashMap<u64, End>>,
    /// Tracks sent to another node (its keyframe requests arrive here).
    pub exports: RwLock<HashMap<u64, End>>,
}

impl Pipes {
    pub fn import(&self, pipe: u64) -> Option<End> {
        read(&self.imports, pipe)
    }
    pub fn export(&self, pipe: u64) -> Option<End> {
        read(&self.exports, pipe)
    }
    pub fn set(map: &RwLock<HashMap<u64, End>>, pipe: u64, end: Option<End>) {
        let mut m = map.write().unwrap_or_else(|p| p.into_inner());
        match end {
            Some(e) => m.insert(pipe, e),
            None => m.remove(&pipe),
        };
    }
}

fn read(map: &RwLock<HashMap<u64, End>>, pipe: u64) -> Option<End> {
    map.read()
        .unwrap_or_else(|p| p.into_inner())
        .get(&pipe)
        .copied()
}

/// The header of a datagram of `kind` (of simulcast `layer`) for `pipe`, with room for
/// `body` bytes after it.
fn start(kind: Kind, layer: u8, pipe: u64, body: usize) -> BytesMut {
    let mut b = BytesMut::with_capacity(HEADER + body);
    b.extend_from_slice(&[MARK, kind as u8 | (layer << 4)]);
    b.extend_from_slice(&pipe.to_be_bytes());
    b
}

/// A datagram of `kind` for `pipe`, with `body` after the header.
pub fn datagram(kind: Kind, pipe: u64, body: &[u8]) -> BytesMut {
    let mut b = start(kind, 0, pipe, body.len());
    b.extend_from_slice(body);
    b
}

/// A media datagram carrying `pkt` of simulcast `layer` (header and payload as the publisher sent them,
/// without padding: the payload arrives with it removed, and a header still saying
/// "padded" would have the other end cut the payload's last bytes off).
pub fn media(pipe: u64, layer: u8, pkt: &rtp::Packet) -> Option<BytesMut> {
    use rtc::shared::marshal::{Marshal, MarshalSize};
    let unpadded;
    let header = if pkt.header.padding {
        unpadded = rtp::header::Header {
            padding: false,
            ..pkt.header.clone()
        };
        &unpadded
    } else {
        &pkt.header
    };
    let n = header.marshal_size();
    let mut b = start(Kind::Media, layer, pipe, n + pkt.payload.len());
    b.resize(HEADER + n, 0);
    header.marshal_to(&mut b[HEADER..]).ok()?;
    b.extend_from_slice(&pkt.payload);
    Some(b)
}

/// What a pipe datagram says (its kind, simulcast layer, pipe and body); `None` when
/// it is not one or is malformed.
pub fn parse(data: &[u8]) -> Option<(Kind, u8, u64, &[u8])> {
    if data.len() < HEADER || data[0] != MARK {
        return None;
    }
    let layer = data[1] >> 4;
    let kind = match data[1] & 0x0f {
        0 if (layer as usize) < super::simulcast::LAYERS => Kind::Media,
        1 if layer == 0 => Kind::Keyframe,
        _ => return None,
    };
    let pipe = u64::from_be_bytes(data[2..HEADER].try_into().ok()?);
    Some((kind, layer, pipe, &data[HEADER..]))
}

/// The RTP packet a media datagram's body holds.
pub fn packet(body: &[u8]) -> Option<rtp::Packet> {
    use rtc::shared::marshal::Unmarshal;
    let mut buf = body;
    rtp::Packet::unmarshal(&mut buf).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A packet as rtc hands it over (any padding already cut from the payload).
    fn pkt(padding: bool, payload: &'static [u8]) -> rtp::Packet {
        rtp::Packet {
            header: rtp::header::Header {
                version: 2,
                padding,
                marker: true,
                payload_type: 96,
                sequence_number: 65535,
                timestamp: 90_000,
                ssrc: 0xdead_beef,
                ..Default::default()
            },
            payload: bytes::Bytes::from_static(payload),
        }
    }

    #[test]
    fn a_padded_packet_arrives_whole() {
        let d = media(1, 0, &pkt(true, b"opus")).unwrap();
        let back = packet(parse(&d).unwrap().3).unwrap();
        assert!(!back.header.padding);
        assert_eq!(&back.payload[..], b"opus");
    }

    #[test]
    fn a_media_datagram_carries_the_packet_and_its_pipe() {
        let pkt = pkt(false, b"frame");
        let d = media(0x0102_0304_0506_0708, 2, &pkt).unwrap();
        assert!(
            !(0..=191).contains(&d[0]),
            "never taken for STUN, DTLS or RTP"
        );
        let (kind, layer, pipe, body) = parse(&d).unwrap();
        assert_eq!((kind, layer, pipe), (Kind::Media, 2, 0x0102_0304_0506_0708));
        let back = packet(body).unwrap();
        assert_eq!(back.header.sequence_number, 65535);
        assert_eq!(back.header.ssrc, 0xdead_beef);
        assert!(back.header.marker);
        assert_eq!(&back.payload[..], b"frame");
        let k = datagram(Kind::Keyframe, 7, &[]);
        assert_eq!(
            parse(&k).map(|(k, l, p, b)| (k, l, p, b.len())),
            Some((Kind::Keyframe, 0, 7, 0))
        );
        // Short, of another kind, or not a pipe's at all: none.
        assert_eq!(parse(&d[..9]), None);
        assert_eq!(parse(&[MARK, 9, 0, 0, 0, 0, 0, 0, 0, 1]), None);
        // A layer past the last, or a keyframe request with one.
        assert_eq!(parse(&[MARK, 0x30, 0, 0, 0, 0, 0, 0, 0, 1]), None);
        assert_eq!(parse(&[MARK, 0x11, 0, 0, 0, 0, 0, 0, 0, 1]), None);
        assert_eq!(parse(&[0x80; 20]), None);
        assert!(packet(&[0x80]).is_none());
    }
}
