//! Keeps a viewer's stream of one track gapless across a pause. A track its viewer does
//! not show is not sent to it (`setViewing`); when it is shown again, its packets go on
//! from the sequence number after the highest one sent, not with a gap of everything
//! skipped meanwhile, which the viewer would count as lost and ask to be resent (a
//! NACK storm for packets it never wanted). Sans-IO: plain numbers in and out.

use super::history::HISTORY;

/// The shift from the publisher's sequence numbers to one viewer's.
#[derive(Debug, Clone, Copy, Default)]
pub struct SeqShift {
    offset: u16,
    /// The viewer's next sequence number: one past the highest sent (none yet: `None`).
    next: Option<u16>,
    /// After a resume, while older packets may still be asked for: the publisher's
    /// first number sent after it, and the viewer's. A packet older than the first is
    /// not sent (it came late, and its number is taken); a NACK for a viewer's number
    /// before the second was sent under another offset.
    since: Option<(u16, u16)>,
    resumed: bool,
}

/// Whether `a` comes before `b` in 16-bit sequence space.
fn before(a: u16, b: u16) -> bool {
    (a.wrapping_sub(b) as i16) < 0
}

impl SeqShift {
    /// The viewer's sequence number for the publisher's `seq`, sent now; `None`: do not
    /// send it (older than the last resume).
    pub fn out(&mut self, seq: u16) -> Option<u16> {
        if self.resumed {
            self.resumed = false;
            // Nothing sent yet (added while hidden): the publisher's numbers do.
            self.offset = self.next.map_or(0, |n| n.wrapping_sub(seq));
            self.since = Some((seq, seq.wrapping_add(self.offset)));
        }
        if let Some((first, viewer_first)) = self.since {
            if before(seq, first) {
                return None;
            }
            // Far enough on that nothing from before is still kept to resend.
            let next = self.next.unwrap_or(viewer_first);
            if next.wrapping_sub(viewer_first) >= HISTORY as u16 {
                self.since = None;
            }
        }
        let out = seq.wrapping_add(self.offset);
        // The highest, so a reordered packet does not take numbers back.
        if self.next.is_none_or(|n| !before(out, n)) {
            self.next = Some(out.wrapping_add(1));
        }
        Some(out)
    }

    /// The track is shown again: the next packet sent follows the highest one sent.
    pub fn resume(&mut self) {
        self.resumed = true;
    }

    /// The publisher's sequence number of the viewer's `out`, for a resend; `None` for
    /// one sent before the last resume (under another offset).
    pub fn source(&self, out: u16) -> Option<u16> {
        match self.since {
            Some((_, viewer_first)) if before(out, viewer_first) => None,
            _ => Some(out.wrapping_sub(self.offset)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_paused_stream_goes_on_without_a_gap() {
        let mut s = SeqShift::default();
        // Sent as they come until the pause.
        assert_eq!(s.out(100), Some(100));
        assert_eq!(s.out(101), Some(101));
        assert_eq!(s.source(101), Some(101));
        // 102..=499 skipped while hidden; then shown again.
        s.resume();
        assert_eq!(s.out(500), Some(102));
        assert_eq!(s.out(501), Some(103));
        // A resend asks for the publisher's numbers; not for those before the resume.
        assert_eq!(s.source(103), Some(501));
        assert_eq!(s.source(101), None);
        // A packet from before the resume, come late: not sent (its number is taken).
        assert_eq!(s.out(499), None);
        // Reordered after the resume: sent, and the next one still follows the highest.
        assert_eq!(s.out(503), Some(105));
        assert_eq!(s.out(502), Some(104));
        s.resume();
        assert_eq!(s.out(900), Some(106));
        // Across the 16-bit wrap.
        s.resume();
        assert_eq!(s.out(65535), Some(107));
        assert_eq!(s.out(0), Some(108));
        assert_eq!(s.source(108), Some(0));
    }

    #[test]
    fn resends_keep_working_long_after_a_resume() {
        let mut s = SeqShift::default();
        assert_eq!(s.out(40_000), Some(40_000));
        assert_eq!(s.out(40_001), Some(40_001));
        s.resume();
        assert_eq!(s.out(10), Some(40_002));
        s.resume();
        let mut last = 0;
        // Well past half the sequence space, where a plain signed distance flips.
        for seq in 11u16..45_000 {
            last = s.out(seq).expect("sent");
        }
        assert_eq!(s.source(last), Some(44_999));
        assert_eq!(s.source(last.wrapping_sub(500)), Some(44_499));
    }

    #[test]
    fn a_stream_added_paused_starts_when_shown() {
        let mut s = SeqShift::default();
        s.resume();
        assert_eq!(s.out(40_000), Some(40_000));
        assert_eq!(s.out(40_001), Some(40_001));
        assert_eq!(s.source(40_001), Some(40_001));
        // And numbers past half the space count as the highest from the first.
        s.resume();
        assert_eq!(s.out(50_000), Some(40_002));
    }
}
