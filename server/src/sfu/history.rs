//! Loss repair toward viewers: the last video packets a worker forwarded for a track, so a
//! viewer's NACK (RFC 4585) is answered from here, and the RTX packets (RFC 4588) that
//! answer it. Sans-IO: the worker feeds packets in and encrypts what comes out.
//!
//! One history per video track per worker, not per viewer: the relay keeps the
//! publisher's timestamps and sequence numbers on every viewer's stream (but for a
//! viewer's shift after a pause, `SeqShift`, which maps its NACKs back), so one copy
//! (the payload shared by reference count) serves every viewer on the worker.

use std::time::Instant;

use bytes::{BufMut, Bytes, BytesMut};
use rtc::rtp;

/// Packets kept per track: several seconds of video at 100 to 200 packets/s, longer than a
/// browser keeps asking for a packet (it gives up after a few round trips).
pub const HISTORY: usize = 1024;
/// Packets resent for one NACK at most.
pub const MAX_RESEND_PER_NACK: usize = 64;
/// Packets resent per second to one viewer on one track at most, with a burst of as many:
/// about twice a 1.5 Mbit/s stream. One datagram can carry dozens of NACKs, so without
/// this a viewer (or a forged NACK) could make the relay resend thousands of packets
/// for one datagram, on the worker every other connection shares.
pub const RESEND_PER_SECOND: f64 = 300.0;

/// A token bucket of resends for one viewer's stream.
#[derive(Debug, Clone, Copy)]
pub struct ResendBudget {
    tokens: f64,
    at: Option<Instant>,
}

impl Default for ResendBudget {
    fn default() -> Self {
        Self {
            tokens: RESEND_PER_SECOND,
            at: None,
        }
    }
}

impl ResendBudget {
    /// Takes one resend if the budget allows it at `now`.
    pub fn take(&mut self, now: Instant) -> bool {
        if let Some(at) = self.at {
            let refill = now.saturating_duration_since(at).as_secs_f64() * RESEND_PER_SECOND;
            self.tokens = (self.tokens + refill).min(RESEND_PER_SECOND);
        }
        self.at = Some(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[derive(Clone)]
struct Kept {
    seq: u16,
    timestamp: u32,
    marker: bool,
    payload: Bytes,
}

/// A ring of the last `HISTORY` packets of one track, by sequence number.
pub struct History {
    slots: Vec<Option<Kept>>,
}

impl Default for History {
    fn default() -> Self {
        Self::new()
    }
}

impl History {
    pub fn new() -> Self {
        Self {
            slots: vec![None; HISTORY],
        }
    }

    pub fn keep(&mut self, pkt: &rtp::Packet) {
        let seq = pkt.header.sequence_number;
        self.slots[seq as usize % HISTORY] = Some(Kept {
            seq,
            timestamp: pkt.header.timestamp,
            marker: pkt.header.marker,
            payload: pkt.payload.clone(),
        });
    }

    /// The RTX packet resending the publisher's `seq`, which the viewer knows as `osn`,
    /// on its repair stream (`ssrc`, payload type `pt`, its own sequence counter
    /// `next_seq`), or `None` when the packet is no longer (or never was) kept. The
    /// payload is the original sequence number, then the original payload; the
    /// timestamp and marker are the original's.
    pub fn rtx(
        &self,
        (seq, osn): (u16, u16),
        ssrc: u32,
        pt: u8,
        next_seq: &mut u16,
    ) -> Option<rtp::Packet> {
        let kept = self.slots[seq as usize % HISTORY]
            .as_ref()
            .filter(|k| k.seq == seq)?;
        let mut payload = BytesMut::with_capacity(2 + kept.payload.len());
        payload.put_u16(osn);
        payload.put_slice(&kept.payload);
        let header = rtp::header::Header {
            version: 2,
            marker: kept.marker,
            payload_type: pt,
            sequence_number: *next_seq,
            timestamp: kept.timestamp,
            ssrc,
            ..Default::default()
        };
        *next_seq = next_seq.wrapping_add(1);
        Some(rtp::Packet {
            header,
            payload: payload.freeze(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkt(seq: u16, ts: u32, body: &[u8]) -> rtp::Packet {
        rtp::Packet {
            header: rtp::header::Header {
                sequence_number: seq,
                timestamp: ts,
                marker: seq.is_multiple_of(2),
                ssrc: 7,
                payload_type: 96,
                ..Default::default()
            },
            payload: Bytes::copy_from_slice(body),
        }
    }

    #[test]
    fn a_kept_packet_comes_back_wrapped_as_rtx() {
        let mut h = History::new();
        h.keep(&pkt(65535, 900, b"abc"));
        h.keep(&pkt(0, 903, b"de"));
        let mut next = 10;
        let r = h.rtx((65535, 65535), 42, 97, &mut next).unwrap();
        assert_eq!(r.header.ssrc, 42);
        assert_eq!(r.header.payload_type, 97);
        assert_eq!(r.header.sequence_number, 10);
        assert_eq!(r.header.timestamp, 900);
        assert!(!r.header.marker);
        assert_eq!(&r.payload[..], &[0xff, 0xff, b'a', b'b', b'c']);
        // The viewer knows packet 0 as 7 (its stream was paused; see `SeqShift`).
        let r = h.rtx((0, 7), 42, 97, &mut next).unwrap();
        assert_eq!(r.header.sequence_number, 11);
        assert!(r.header.marker);
        assert_eq!(&r.payload[..], &[0, 7, b'd', b'e']);
        assert_eq!(next, 12);
    }

    #[test]
    fn resends_are_budgeted_per_second() {
        let t0 = Instant::now();
        let mut b = ResendBudget::default();
        let burst = (0..1000).filter(|_| b.take(t0)).count();
        assert_eq!(
            burst, RESEND_PER_SECOND as usize,
            "a burst of one second's worth"
        );
        assert!(!b.take(t0));
        let later = t0 + std::time::Duration::from_millis(100);
        let refilled = (0..1000).filter(|_| b.take(later)).count();
        assert_eq!(refilled, (RESEND_PER_SECOND / 10.0) as usize);
        // Idle for long: the bucket fills to its size, no more.
        let much_later = t0 + std::time::Duration::from_secs(60);
        let again = (0..1000).filter(|_| b.take(much_later)).count();
        assert_eq!(again, RESEND_PER_SECOND as usize);
    }

    #[test]
    fn what_was_overwritten_or_never_sent_is_not_resent() {
        let mut h = History::new();
        h.keep(&pkt(5, 0, b"old"));
        h.keep(&pkt(5 + HISTORY as u16, 0, b"new"));
        let mut next = 0;
        assert!(
            h.rtx((5, 5), 1, 97, &mut next).is_none(),
            "the slot holds a newer packet"
        );
        assert!(h.rtx((6, 6), 1, 97, &mut next).is_none(), "never kept");
        assert_eq!(next, 0, "no sequence number is spent on a miss");
        let seq = 5 + HISTORY as u16;
        let r = h.rtx((seq, seq), 1, 97, &mut next).unwrap();
        assert_eq!(&r.payload[2..], b"new");
    }
}
