//! The sequence numbers a publisher's stream brought lately, so a second copy of a
//! packet goes nowhere. Browsers resend old packets on their repair stream to probe for
//! bandwidth as well as to answer NACKs (Chromium's camera in simulcast: about 90 such
//! packets a second while its estimate climbs); each would otherwise reach every viewer
//! again. Sans-IO: numbers in, a verdict out.

/// How far back a copy is recognised.
const WINDOW: usize = 1024;

#[derive(Debug, Clone, Default)]
pub struct Seen {
    highest: Option<u16>,
    bits: [u64; WINDOW / 64],
}

impl Seen {
    /// Whether `seq` arrives for the first time (and remembers it). A number more than
    /// the window behind the highest counts as a restart of the stream's numbering,
    /// not as a copy.
    pub fn first(&mut self, seq: u16) -> bool {
        let Some(high) = self.highest else {
            return self.restart(seq);
        };
        let ahead = seq.wrapping_sub(high) as i16;
        if ahead > 0 {
            if ahead as usize >= WINDOW {
                return self.restart(seq);
            }
            for n in 1..=ahead as u16 {
                self.put(high.wrapping_add(n), false);
            }
            self.highest = Some(seq);
            self.put(seq, true);
            return true;
        }
        if ahead.unsigned_abs() as usize >= WINDOW {
            return self.restart(seq);
        }
        if self.get(seq) {
            return false;
        }
        self.put(seq, true);
        true
    }

    fn restart(&mut self, seq: u16) -> bool {
        self.bits = [0; WINDOW / 64];
        self.highest = Some(seq);
        self.put(seq, true);
        true
    }

    fn get(&self, seq: u16) -> bool {
        let i = seq as usize % WINDOW;
        self.bits[i / 64] & (1 << (i % 64)) != 0
    }

    fn put(&mut self, seq: u16, on: bool) {
        let i = seq as usize % WINDOW;
        if on {
            self.bits[i / 64] |= 1 << (i % 64);
        } else {
            self.bits[i / 64] &= !(1 << (i % 64));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_copy_is_refused_and_late_first_copies_taken() {
        let mut s = Seen::default();
        assert!(s.first(65530));
        assert!(s.first(65531));
        assert!(!s.first(65530), "a copy");
        // Across the wrap, with a gap that arrives late (a resend answering a NACK).
        assert!(s.first(2));
        assert!(s.first(65535), "late, but the first");
        assert!(s.first(0));
        assert!(!s.first(0));
        assert!(!s.first(65531));
        // A window on, old numbers are forgotten, not refused.
        assert!(s.first(2 + 1000));
        assert!(!s.first(2));
        assert!(s.first(2000));
        assert!(s.first(2), "far behind: a restart of the numbering");
        assert!(!s.first(2));
        // A jump ahead of more than the window forgets everything before.
        assert!(s.first(40_000));
        assert!(s.first(40_000 - 5));
        assert!(!s.first(40_000 - 5));
    }
}
