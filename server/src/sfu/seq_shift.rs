//! Keeps a viewer's stream of one track gapless across a pause. A track its viewer does
//! not show is not sent to it (`setViewing`); when it is shown again, its packets go on
//! from the sequence number after the last one sent, not with a gap of everything
//! skipped meanwhile, which the viewer would count as lost and ask to be resent (a
//! NACK storm for packets it never wanted). Sans-IO: plain numbers in and out.

/// The shift from the publisher's sequence numbers to one viewer's.
#[derive(Debug, Clone, Copy, Default)]
pub struct SeqShift {
    offset: u16,
    /// The viewer's next sequence number.
    next: u16,
    /// Since the last resume: the first number sent after it. A NACK for a number
    /// before it was sent under another offset.
    since: Option<u16>,
    resumed: bool,
}

impl SeqShift {
    /// The viewer's sequence number for the publisher's `seq` (sent now).
    pub fn out(&mut self, seq: u16) -> u16 {
        if self.resumed {
            self.resumed = false;
            self.offset = self.next.wrapping_sub(seq);
            self.since = Some(self.next);
        }
        let out = seq.wrapping_add(self.offset);
        self.next = out.wrapping_add(1);
        out
    }

    /// The track is shown again: the next packet sent follows the last one.
    pub fn resume(&mut self) {
        self.resumed = true;
    }

    /// The publisher's sequence number of the viewer's `out`, for a resend; `None` for
    /// one sent before the last resume (under another offset).
    pub fn source(&self, out: u16) -> Option<u16> {
        match self.since {
            Some(since) if (out.wrapping_sub(since) as i16) < 0 => None,
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
        assert_eq!(s.out(100), 100);
        assert_eq!(s.out(101), 101);
        assert_eq!(s.source(101), Some(101));
        // 102..=499 skipped while hidden; then shown again.
        s.resume();
        assert_eq!(s.out(500), 102);
        assert_eq!(s.out(501), 103);
        // A resend asks for the publisher's numbers; not for those before the resume.
        assert_eq!(s.source(103), Some(501));
        assert_eq!(s.source(101), None);
        // Across the 16-bit wrap.
        s.resume();
        assert_eq!(s.out(65535), 104);
        assert_eq!(s.out(0), 105);
        assert_eq!(s.source(105), Some(0));
    }
}
