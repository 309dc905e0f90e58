//! Simulcast: a publisher sends its camera as up to three encodings of one picture
//! (RIDs `q`, `h`, `f`: a quarter, half and full size), and each viewer gets one of
//! them, as one continuous stream. Sans-IO: packets, heights and instants in, verdicts
//! and rewritten numbers out; the worker moves the packets.
//!
//! - [`Layers`] is what the relay knows of a track's layers: which are arriving, and
//!   how tall each one's picture is (read from its keyframes).
//! - [`Follow`] is one viewer's place among them. It picks the layer to send (the
//!   smallest at least as tall as the viewer shows the video, else the tallest there
//!   is), keeps sending the current one until the chosen one brings a keyframe (a
//!   decoder cannot start mid-stream), and then switches, rewriting what the viewer
//!   sees so the switch is invisible to it: RTP timestamps go on from the last one sent
//!   (by the time that passed), and VP8 picture ids and `TL0PICIDX` go on by one.
//!   Sequence numbers are `SeqShift`'s (a switch is a resume on another stream).
//!
//! A track sent as one encoding is a track with one layer: the same code, never a
//! switch, nothing rewritten.

use std::time::{Duration, Instant};

/// At most this many encodings of one track are relayed.
pub const LAYERS: usize = 3;

/// A layer that sent nothing for this long is taken for stopped (a publisher whose
/// uplink cannot carry it drops its top layer; a paused encoding sends nothing).
const LIVE: Duration = Duration::from_millis(1500);

/// A viewer waiting for another layer's keyframe asks again after this long.
const ASK_AGAIN: Duration = Duration::from_secs(1);

/// The layer slot of a RID: the SDK's `q`, `h` and `f` (low to high). Others take the
/// first free slot in the order they arrive (`None`: all taken); their heights, once
/// known, are what ranks them.
pub fn slot_of_rid(rid: &str, taken: &[bool; LAYERS]) -> Option<u8> {
    let named = match rid {
        "q" => Some(0),
        "h" => Some(1),
        "f" => Some(2),
        _ => None,
    };
    named
        .filter(|&s| !taken[s as usize])
        .or_else(|| (0..LAYERS as u8).find(|&s| !taken[s as usize]))
}

/// A 7- or 15-bit VP8 picture id and where it sits in the payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PictureId {
    pub value: u16,
    pub long: bool,
    pub at: usize,
}

impl PictureId {
    fn mask(&self) -> u16 {
        if self.long {
            0x7fff
        } else {
            0x7f
        }
    }
}

/// What the relay reads of a VP8 payload (RFC 7741): the descriptor's numbers, and
/// whether the packet starts a keyframe (with the picture's size).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Vp8 {
    pub picture_id: Option<PictureId>,
    /// `TL0PICIDX` and where it sits.
    pub tl0: Option<(u8, usize)>,
    pub keyframe: bool,
    /// A keyframe's width and height.
    pub size: Option<(u16, u16)>,
}

/// Reads a VP8 payload's descriptor; `None` when too short to be one.
pub fn vp8(p: &[u8]) -> Option<Vp8> {
    let b0 = *p.first()?;
    let mut at = 1;
    let mut out = Vp8::default();
    if b0 & 0x80 != 0 {
        let x = *p.get(at)?;
        at += 1;
        if x & 0x80 != 0 {
            let m = *p.get(at)?;
            if m & 0x80 != 0 {
                let lo = *p.get(at + 1)?;
                out.picture_id = Some(PictureId {
                    value: (u16::from(m & 0x7f) << 8) | u16::from(lo),
                    long: true,
                    at,
                });
                at += 2;
            } else {
                out.picture_id = Some(PictureId {
                    value: u16::from(m),
                    long: false,
                    at,
                });
                at += 1;
            }
        }
        if x & 0x40 != 0 {
            out.tl0 = Some((*p.get(at)?, at));
            at += 1;
        }
        if x & 0x30 != 0 {
            at += 1;
        }
    }
    // The first packet of a frame (S set, partition 0) starts with the frame tag,
    // whose lowest bit is 0 for a keyframe; a keyframe's tag is followed by a start
    // code and the size (14 bits each, little-endian).
    let start = b0 & 0x10 != 0 && b0 & 0x07 == 0;
    if start {
        let tag = *p.get(at)?;
        out.keyframe = tag & 0x01 == 0;
        if out.keyframe {
            if let Some(s) = p.get(at + 3..at + 10) {
                if s[..3] == [0x9d, 0x01, 0x2a] {
                    let w = u16::from_le_bytes([s[3], s[4]]) & 0x3fff;
                    let h = u16::from_le_bytes([s[5], s[6]]) & 0x3fff;
                    out.size = Some((w, h));
                }
            }
        }
    }
    Some(out)
}

/// The layers of one track as they arrive at the relay.
#[derive(Debug, Clone, Copy, Default)]
pub struct Layers {
    seen: [Option<Instant>; LAYERS],
    height: [u16; LAYERS],
}

impl Layers {
    /// A packet of `layer` arrived now (with what its VP8 descriptor says, if any).
    pub fn packet(&mut self, layer: u8, vp8: Option<&Vp8>, now: Instant) {
        let l = layer as usize % LAYERS;
        self.seen[l] = Some(now);
        if let Some((_, h)) = vp8.and_then(|v| v.size) {
            self.height[l] = h;
        }
    }

    fn live(&self, l: usize, now: Instant) -> bool {
        self.seen[l].is_some_and(|t| now.saturating_duration_since(t) < LIVE)
    }

    /// The layer for a viewer showing the video `max_height` device pixels tall (`None`:
    /// as large as there is) whose link carries up to the `max_rank`-th smallest arriving
    /// layer (see `bwe`): the smallest arriving layer at least that tall, else the
    /// tallest arriving, but no higher than that rank. Layers whose height is not known
    /// yet rank by their slot.
    pub fn pick(&self, max_height: Option<u32>, max_rank: u8, now: Instant) -> Option<u8> {
        let mut live = [0usize; LAYERS];
        let mut n = 0;
        for l in (0..LAYERS).filter(|&l| self.live(l, now)) {
            live[n] = l;
            n += 1;
        }
        let live = &mut live[..n];
        live.sort_unstable_by_key(|&l| (self.height[l], l));
        let fits = max_height
            .and_then(|want| live.iter().position(|&l| u32::from(self.height[l]) >= want));
        let at = fits.unwrap_or(n.checked_sub(1)?);
        Some(live[at.min(max_rank as usize)] as u8)
    }
}

/// What to do with one packet for one viewer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Verdict {
    pub send: bool,
    /// It is the first of another layer than the last one sent: the sequence numbers
    /// resume after the last sent (see `SeqShift::resume`).
    pub switched: bool,
    /// The viewer waits for a keyframe of another layer: ask the publisher for one.
    pub want_keyframe: bool,
}

/// One viewer's place among a track's layers.
#[derive(Debug, Clone, Copy, Default)]
pub struct Follow {
    /// How tall the viewer shows the video (device pixels); `None`: as large as there is.
    pub max_height: Option<u32>,
    current: Option<u8>,
    ts_offset: u32,
    pid_offset: u16,
    tl0_offset: u8,
    /// The last timestamp, picture id and `TL0PICIDX` sent, and when.
    last_ts: Option<(u32, Instant)>,
    last_pid: Option<u16>,
    last_tl0: Option<u8>,
    asked: Option<Instant>,
}

impl Follow {
    /// The layer being sent.
    pub fn current(&self) -> Option<u8> {
        self.current
    }

    /// Whether to send a packet of `layer` (whose RTP timestamp is `ts`, in a codec of
    /// `clock_rate`) to this viewer, given the layer picked for it.
    pub fn admit(
        &mut self,
        layer: u8,
        vp8: Option<&Vp8>,
        pick: Option<u8>,
        ts: u32,
        clock_rate: u32,
        now: Instant,
    ) -> Verdict {
        let Some(pick) = pick else {
            return Verdict::default();
        };
        let mut v = Verdict::default();
        match self.current {
            // The first packet: whatever it is, the viewer's decoder asks for the
            // keyframe it needs (and one is asked for when a viewer subscribes).
            None if layer == pick => {
                self.start(layer, vp8, ts, clock_rate, now);
                v.send = true;
            }
            Some(c) if c == layer && c == pick => v.send = true,
            // At its keyframe; a codec whose keyframes the relay cannot read (H.264 from
            // a client other than the SDK's) at once, and the viewer's decoder asks for
            // the keyframe it needs.
            Some(_) if layer == pick && vp8.is_none_or(|v| v.keyframe) => {
                self.start(layer, vp8, ts, clock_rate, now);
                v.send = true;
                v.switched = true;
            }
            // Waiting for the picked layer's keyframe: the current one goes on meanwhile
            // (if it still arrives).
            current => {
                v.send = current == Some(layer);
                if layer == pick && self.asked.is_none_or(|t| now >= t + ASK_AGAIN) {
                    self.asked = Some(now);
                    v.want_keyframe = true;
                }
            }
        }
        v
    }

    /// Starts sending `layer` from this packet on: its numbers continue the last sent.
    fn start(&mut self, layer: u8, vp8: Option<&Vp8>, ts: u32, clock_rate: u32, now: Instant) {
        self.current = Some(layer);
        self.asked = None;
        self.ts_offset = match self.last_ts {
            Some((last, at)) => {
                let ticks = now.saturating_duration_since(at).as_micros() * u128::from(clock_rate)
                    / 1_000_000;
                let next = last.wrapping_add((ticks as u32).max(1));
                next.wrapping_sub(ts)
            }
            None => 0,
        };
        let pid = vp8.and_then(|v| v.picture_id);
        self.pid_offset = match (pid, self.last_pid) {
            (Some(p), Some(last)) => last.wrapping_add(1).wrapping_sub(p.value) & p.mask(),
            _ => 0,
        };
        let tl0 = vp8.and_then(|v| v.tl0);
        self.tl0_offset = match (tl0, self.last_tl0) {
            (Some((t, _)), Some(last)) => last.wrapping_add(1).wrapping_sub(t),
            _ => 0,
        };
    }

    /// The viewer's timestamp for the publisher's `ts` (of the current layer).
    pub fn timestamp(&self, ts: u32) -> u32 {
        ts.wrapping_add(self.ts_offset)
    }

    /// A packet was sent with the viewer's timestamp `ts`: the numbers a switch goes on
    /// from.
    pub fn sent(&mut self, ts: u32, vp8: Option<&Vp8>, now: Instant) {
        self.last_ts = Some((ts, now));
        if let Some(v) = vp8 {
            if let Some(p) = v.picture_id {
                self.last_pid = Some(p.value.wrapping_add(self.pid_offset) & p.mask());
            }
            if let Some((t, _)) = v.tl0 {
                self.last_tl0 = Some(t.wrapping_add(self.tl0_offset));
            }
        }
    }

    /// Whether the VP8 descriptor needs rewriting for this viewer.
    pub fn rewrites(&self) -> bool {
        self.pid_offset != 0 || self.tl0_offset != 0
    }

    /// Rewrites the picture id and `TL0PICIDX` of `payload` (the VP8 payload `vp8` was
    /// read from, in a buffer of the viewer's own) to the viewer's numbers.
    pub fn rewrite(&self, vp8: &Vp8, payload: &mut [u8]) {
        if let Some(p) = vp8.picture_id {
            let v = p.value.wrapping_add(self.pid_offset) & p.mask();
            if p.long {
                if let Some(b) = payload.get_mut(p.at..p.at + 2) {
                    b[0] = 0x80 | (v >> 8) as u8;
                    b[1] = v as u8;
                }
            } else if let Some(b) = payload.get_mut(p.at) {
                *b = v as u8;
            }
        }
        if let Some((t, at)) = vp8.tl0 {
            if let Some(b) = payload.get_mut(at) {
                *b = t.wrapping_add(self.tl0_offset);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A VP8 payload: descriptor with a 15-bit picture id and TL0PICIDX, then a frame
    /// tag (a keyframe of `size` when given).
    fn payload(pid: u16, tl0: u8, start: bool, key: Option<(u16, u16)>) -> Vec<u8> {
        let mut p = vec![0x80 | if start { 0x10 } else { 0 }, 0xc0];
        p.extend_from_slice(&[0x80 | (pid >> 8) as u8, pid as u8, tl0]);
        match key {
            Some((w, h)) => {
                p.extend_from_slice(&[0x00, 0x00, 0x00, 0x9d, 0x01, 0x2a]);
                p.extend_from_slice(&w.to_le_bytes());
                p.extend_from_slice(&h.to_le_bytes());
            }
            None => p.extend_from_slice(&[0x01, 0x00, 0x00]),
        }
        p.extend_from_slice(&[0xab; 20]);
        p
    }

    #[test]
    fn a_vp8_descriptor_is_read() {
        let key = vp8(&payload(0x1234, 9, true, Some((640, 360)))).unwrap();
        assert_eq!(
            key.picture_id,
            Some(PictureId {
                value: 0x1234,
                long: true,
                at: 2
            })
        );
        assert_eq!(key.tl0, Some((9, 4)));
        assert!(key.keyframe);
        assert_eq!(key.size, Some((640, 360)));
        let delta = vp8(&payload(7, 1, true, None)).unwrap();
        assert!(!delta.keyframe);
        assert_eq!(delta.size, None);
        // Not the first packet of a frame: not a keyframe whatever its bytes.
        let middle = vp8(&payload(7, 1, false, Some((640, 360)))).unwrap();
        assert!(!middle.keyframe);
        // A 7-bit picture id, no extension bits after it.
        let short = vp8(&[0x90, 0x80, 0x05, 0x00, 0, 0, 0x9d, 0x01, 0x2a, 0, 0, 0, 0]).unwrap();
        assert_eq!(
            short.picture_id,
            Some(PictureId {
                value: 5,
                long: false,
                at: 2
            })
        );
        assert!(short.keyframe);
        // Cut short: refused, never a panic.
        for cut in 0..5 {
            let p = payload(0x1234, 9, true, Some((640, 360)));
            let _ = vp8(&p[..cut]);
        }
        assert_eq!(vp8(&[]), None);
        assert_eq!(vp8(&[0x80]), None);
    }

    #[test]
    fn rids_take_their_slots_and_others_the_free_ones() {
        let mut taken = [false; LAYERS];
        assert_eq!(slot_of_rid("h", &taken), Some(1));
        taken[1] = true;
        assert_eq!(slot_of_rid("hi", &taken), Some(0));
        taken[0] = true;
        assert_eq!(slot_of_rid("h", &taken), Some(2));
        taken[2] = true;
        assert_eq!(slot_of_rid("f", &taken), None);
    }

    #[test]
    fn the_smallest_layer_tall_enough_is_picked_among_those_arriving() {
        let t0 = Instant::now();
        let mut l = Layers::default();
        assert_eq!(l.pick(None, 2, t0), None);
        for (layer, h) in [(0u8, 180u16), (1, 360), (2, 720)] {
            let k = vp8(&payload(1, 0, true, Some((h * 16 / 9, h)))).unwrap();
            l.packet(layer, Some(&k), t0);
        }
        assert_eq!(l.pick(None, 2, t0), Some(2));
        assert_eq!(l.pick(Some(100), 2, t0), Some(0));
        assert_eq!(l.pick(Some(181), 2, t0), Some(1));
        assert_eq!(l.pick(Some(360), 2, t0), Some(1));
        assert_eq!(l.pick(Some(2000), 2, t0), Some(2));
        // A link that carries two layers, or one.
        assert_eq!(l.pick(None, 1, t0), Some(1));
        assert_eq!(l.pick(Some(100), 1, t0), Some(0));
        assert_eq!(l.pick(None, 0, t0), Some(0));
        // The top layer stops (the publisher's uplink): the tallest left.
        let later = t0 + Duration::from_secs(1);
        l.packet(0, None, later);
        l.packet(1, None, later);
        let t = t0 + Duration::from_millis(2000);
        assert_eq!(l.pick(None, 2, t), Some(1));
        assert_eq!(l.pick(Some(700), 2, t), Some(1));
        assert_eq!(l.pick(None, 0, t), Some(0));
    }

    /// One viewer across a switch from layer 0 to layer 2 and back: it gets only the
    /// current layer, switches at the target's keyframe, and sees its timestamps and
    /// picture ids go on.
    #[test]
    fn a_viewer_switches_only_at_a_keyframe_and_its_numbers_go_on() {
        let t0 = Instant::now();
        let ms = |n: u64| t0 + Duration::from_millis(n);
        let mut f = Follow::default();
        let send = |f: &mut Follow, layer: u8, pick: u8, ts: u32, p: &[u8], at: Instant| {
            let d = vp8(p).unwrap();
            let v = f.admit(layer, Some(&d), Some(pick), ts, 90_000, at);
            let mut out = p.to_vec();
            if v.send {
                let ts_out = f.timestamp(ts);
                f.sent(ts_out, Some(&d), at);
                f.rewrite(&d, &mut out);
                return (v, Some((ts_out, vp8(&out).unwrap())));
            }
            (v, None)
        };
        // Layer 0 (pid 100.., ts 1000..), picked: sent as is.
        let (v, out) = send(&mut f, 0, 0, 1000, &payload(100, 5, true, None), ms(0));
        assert!(v.send && !v.switched);
        let (ts, d) = out.unwrap();
        assert_eq!(
            (ts, d.picture_id.unwrap().value, d.tl0.unwrap().0),
            (1000, 100, 5)
        );
        assert!(!f.rewrites());
        // Layer 2 (pid 9000.., ts 50000..) arrives but is not picked: dropped.
        let (v, _) = send(&mut f, 2, 0, 50_000, &payload(9000, 200, true, None), ms(1));
        assert_eq!(v, Verdict::default());
        // Layer 2 picked now: its delta frames wait (and ask for a keyframe, once a
        // second); layer 0 goes on meanwhile.
        let (v, _) = send(
            &mut f,
            2,
            2,
            50_000,
            &payload(9000, 200, true, None),
            ms(10),
        );
        assert!(!v.send && v.want_keyframe);
        let (v, _) = send(
            &mut f,
            2,
            2,
            50_001,
            &payload(9001, 200, true, None),
            ms(20),
        );
        assert!(!v.send && !v.want_keyframe);
        let (v, out) = send(
            &mut f,
            0,
            2,
            1000 + 2700,
            &payload(101, 5, true, None),
            ms(30),
        );
        assert!(v.send && !v.switched);
        assert_eq!(out.unwrap().1.picture_id.unwrap().value, 101);
        let (v, _) = send(
            &mut f,
            2,
            2,
            50_002,
            &payload(9002, 200, true, None),
            ms(1020),
        );
        assert!(v.want_keyframe, "asked again after a second");
        // Its keyframe: the switch, 1,030 ms after the last packet sent (ts 3700).
        let key = payload(9003, 201, true, Some((1280, 720)));
        let (v, out) = send(&mut f, 2, 2, 50_003, &key, ms(1060));
        assert!(v.send && v.switched);
        let (ts, d) = out.unwrap();
        assert_eq!(ts, 3700 + 1030 * 90, "the time since the last packet sent");
        assert_eq!(d.picture_id.unwrap().value, 102);
        assert_eq!(d.tl0.unwrap().0, 6);
        assert!(d.keyframe, "the rest of the payload is untouched");
        assert_eq!(d.size, Some((1280, 720)));
        // Layer 0 now goes nowhere; layer 2 goes on with the same shift.
        let (v, _) = send(
            &mut f,
            0,
            2,
            3700 + 2700,
            &payload(103, 5, true, None),
            ms(1070),
        );
        assert!(!v.send);
        let (_, out) = send(
            &mut f,
            2,
            2,
            50_003 + 3000,
            &payload(9004, 201, false, None),
            ms(1090),
        );
        let (ts, d) = out.unwrap();
        assert_eq!(ts, 3700 + 1030 * 90 + 3000);
        assert_eq!(d.picture_id.unwrap().value, 103);
        // Back down at layer 0's keyframe: picture ids still go on by one.
        let key0 = payload(104, 6, true, Some((320, 180)));
        let (v, out) = send(&mut f, 0, 0, 9000, &key0, ms(1100));
        assert!(v.switched);
        assert_eq!(out.unwrap().1.picture_id.unwrap().value, 104);
        assert_eq!(f.current(), Some(0));
    }

    #[test]
    fn a_codec_whose_keyframes_are_not_read_switches_at_once() {
        let t0 = Instant::now();
        let mut f = Follow::default();
        assert!(f.admit(0, None, Some(0), 100, 90_000, t0).send);
        f.sent(100, None, t0);
        let v = f.admit(1, None, Some(1), 5000, 90_000, t0);
        assert!(v.send && v.switched && !v.want_keyframe);
        assert!(!f.rewrites());
    }

    #[test]
    fn picture_ids_wrap_within_their_width() {
        let t0 = Instant::now();
        let mut f = Follow::default();
        let a = vp8(&payload(0x7fff, 255, true, None)).unwrap();
        assert!(f.admit(0, Some(&a), Some(0), 0, 90_000, t0).send);
        f.sent(0, Some(&a), t0);
        let k = payload(3, 0, true, Some((64, 36)));
        let kd = vp8(&k).unwrap();
        assert!(f.admit(1, Some(&kd), Some(1), 0, 90_000, t0).switched);
        let mut out = k.clone();
        f.rewrite(&kd, &mut out);
        let d = vp8(&out).unwrap();
        assert_eq!(d.picture_id.unwrap().value, 0, "0x7fff + 1 wraps to 0");
        assert_eq!(d.tl0.unwrap().0, 0, "255 + 1 wraps to 0");
    }

    #[test]
    fn one_layer_is_sent_as_it_comes() {
        let t0 = Instant::now();
        let mut l = Layers::default();
        let mut f = Follow::default();
        for i in 0..100u16 {
            let p = payload(i, 0, i % 3 == 0, None);
            let d = vp8(&p).unwrap();
            l.packet(0, Some(&d), t0);
            let v = f.admit(
                0,
                Some(&d),
                l.pick(Some(90), 2, t0),
                u32::from(i) * 3000,
                90_000,
                t0,
            );
            assert!(v.send && !v.switched && !v.want_keyframe);
            f.sent(f.timestamp(u32::from(i) * 3000), Some(&d), t0);
            assert_eq!(f.timestamp(u32::from(i) * 3000), u32::from(i) * 3000);
        }
        assert!(!f.rewrites());
    }
}
