//! How each connection's link is doing, as the relay sees it, for the session's
//! connection quality. Sans-IO: the worker feeds packets and reports in, and takes one
//! window of figures per connection every `WINDOW`.
//!
//! - A publish connection's uplink: loss from the sequence numbers of what arrives
//!   (RFC 3550's expected minus received), before repair: a packet that comes late (the
//!   publisher's resend over RTX, or reordered) counts as lost, as the link lost it.
//! - A subscribe connection's downlink: the viewer's receiver reports on what the relay
//!   sends it: the worst loss and jitter, and the round trip from the relay's own sender
//!   reports (RFC 3550 6.4.1: arrival - LSR - DLSR). The viewer counts as lost every
//!   sequence number it never got, including those the relay never had (lost on the
//!   publisher's uplink): the relay counts the gaps in what it sent each viewer and
//!   takes them off, so a viewer is not graded down for its publisher's link.

use std::time::Duration;

use rtc::rtcp::reception_report::ReceptionReport;

/// How often a connection's figures go to the session.
pub const WINDOW: Duration = Duration::from_secs(2);

/// One connection's figures over a window.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LinkWindow {
    /// Share of packets lost, 0..1.
    pub loss: f32,
    pub rtt_ms: Option<u32>,
    pub jitter_ms: Option<u32>,
}

/// Loss of one incoming stream, from its sequence numbers.
#[derive(Debug, Default)]
pub struct SeqLoss {
    /// The highest sequence number seen, extended with its wrap count.
    highest: Option<u64>,
    /// `highest` when the window began.
    window_start: Option<u64>,
    received: u32,
}

/// `seq` extended with a wrap count: the candidate nearest the highest seen so far. The
/// first starts one cycle up, so a late packet from before it still extends below it.
fn extend(highest: Option<u64>, seq: u16) -> u64 {
    let Some(h) = highest else {
        return u64::from(seq) + 0x1_0000;
    };
    let base = h & !0xffff;
    [base.wrapping_sub(0x1_0000), base, base + 0x1_0000]
        .into_iter()
        .map(|b| b.wrapping_add(u64::from(seq)))
        .min_by_key(|c| c.abs_diff(h))
        .unwrap_or(h)
}

impl SeqLoss {
    pub fn packet(&mut self, seq: u16) {
        let ext = extend(self.highest, seq);
        if self.highest.is_none_or(|h| ext > h) {
            self.received += 1;
        }
        if self.highest.is_none() {
            // The first packet opens the first window just before itself.
            self.window_start = Some(ext.wrapping_sub(1));
        }
        if self.highest.is_none_or(|h| ext > h) {
            self.highest = Some(ext);
        }
    }

    /// (expected, received) since the last call, and a new window.
    pub fn take(&mut self) -> (u32, u32) {
        let (Some(h), Some(start)) = (self.highest, self.window_start) else {
            return (0, 0);
        };
        let expected = h.saturating_sub(start).min(u64::from(u32::MAX)) as u32;
        let received = std::mem::take(&mut self.received);
        self.window_start = Some(h);
        (expected, received)
    }
}

/// The loss of several streams together (a publisher's audio and video).
pub fn loss_of(counts: impl IntoIterator<Item = (u32, u32)>) -> Option<f32> {
    let (expected, received) = counts.into_iter().fold((0u64, 0u64), |(e, r), (de, dr)| {
        (e + de as u64, r + dr as u64)
    });
    (expected > 0).then(|| (expected.saturating_sub(received) as f32 / expected as f32).min(1.0))
}

/// What the relay sent one viewer on one stream: the gaps in its sequence numbers
/// (packets the relay never had), to take off the viewer's own count of lost packets.
#[derive(Debug, Clone, Copy, Default)]
pub struct SentGaps {
    highest: Option<u64>,
    gaps: i64,
    /// The viewer's last report: its extended highest sequence number, and its loss
    /// less the gaps it was sent.
    last: Option<(u32, i64)>,
}

impl SentGaps {
    pub fn sent(&mut self, seq: u16) {
        let ext = extend(self.highest, seq);
        match self.highest {
            Some(h) if ext > h => self.gaps += (ext - h - 1) as i64,
            // A late packet (the publisher's repair) fills a gap.
            Some(_) => self.gaps = (self.gaps - 1).max(0),
            None => {}
        }
        if self.highest.is_none_or(|h| ext > h) {
            self.highest = Some(ext);
        }
    }

    /// The share of packets lost on the viewer's own link since its previous report,
    /// from this report's cumulative counts (`None` for the first).
    pub fn viewer_loss(&mut self, r: &ReceptionReport) -> Option<f32> {
        // total_lost is a signed 24-bit count (RFC 3550 6.4.1).
        let total = (((r.total_lost & 0xff_ffff) << 8) as i32 >> 8) as i64;
        let lost = total - self.gaps;
        let ext = r.last_sequence_number;
        let loss = self.last.and_then(|(prev_ext, prev_lost)| {
            let expected = i64::from(ext.wrapping_sub(prev_ext) as i32);
            (expected > 0).then(|| ((lost - prev_lost).max(0) as f32 / expected as f32).min(1.0))
        });
        self.last = Some((ext, lost));
        loss
    }
}

/// A viewer's receiver reports over a window.
#[derive(Debug, Default)]
pub struct Reports {
    any: bool,
    worst_loss: f32,
    worst_jitter_ms: Option<u32>,
    rtt_ms: Option<u32>,
}

impl Reports {
    /// One report block about a stream sent with `clock_rate`, arriving at `now_ntp`
    /// (the wall clock as 64-bit NTP), with the viewer's own loss since its previous one
    /// (`SentGaps::viewer_loss`).
    pub fn report(
        &mut self,
        r: &ReceptionReport,
        loss: Option<f32>,
        clock_rate: u32,
        now_ntp: u64,
    ) {
        self.any = true;
        self.worst_loss = self.worst_loss.max(loss.unwrap_or(0.0));
        if clock_rate > 0 {
            let ms = (u64::from(r.jitter) * 1000 / u64::from(clock_rate)) as u32;
            self.worst_jitter_ms = Some(self.worst_jitter_ms.unwrap_or(0).max(ms));
        }
        if let Some(rtt) = rtt_ms(now_ntp, r.last_sender_report, r.delay) {
            self.rtt_ms = Some(rtt);
        }
    }

    pub fn take(&mut self) -> Option<LinkWindow> {
        let taken = std::mem::take(self);
        taken.any.then_some(LinkWindow {
            loss: taken.worst_loss,
            rtt_ms: taken.rtt_ms,
            jitter_ms: taken.worst_jitter_ms,
        })
    }
}

/// The round trip a report block shows, or `None` when it names no sender report of
/// ours (LSR 0) or the figures do not add up (a clock step).
pub fn rtt_ms(now_ntp: u64, lsr: u32, dlsr: u32) -> Option<u32> {
    if lsr == 0 {
        return None;
    }
    let now_mid = (now_ntp >> 16) as u32;
    let rtt = now_mid.wrapping_sub(lsr).wrapping_sub(dlsr);
    // Units of 1/65536 s; more than a minute means the subtraction wrapped.
    (rtt < (60 << 16)).then(|| ((u64::from(rtt) * 1000) >> 16) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loss_counts_gaps_across_the_wrap_and_late_packets() {
        let mut s = SeqLoss::default();
        for seq in [65530u16, 65531, 65533, 65535, 0, 2, 1, 3] {
            s.packet(seq);
        }
        // 65530..=3 is 10 packets; 65532 and 65534 never came, and 1 came late (a
        // repair): the link lost three.
        assert_eq!(s.take(), (10, 7));
        for seq in [4u16, 5, 9] {
            s.packet(seq);
        }
        assert_eq!(s.take(), (6, 3));
        assert_eq!(s.take(), (0, 0), "nothing new: an empty window");
        // A stream starting at 0, with one packet from before it arriving late.
        let mut s = SeqLoss::default();
        for seq in [0u16, 1, 65535, 2, 3] {
            s.packet(seq);
        }
        assert_eq!(
            s.take(),
            (4, 4),
            "0..=3, all on time; the late one is not a jump"
        );
        assert_eq!(loss_of([(10, 8), (6, 3)]), Some(5.0 / 16.0));
        assert_eq!(loss_of([(0, 0)]), None);
        // A duplicate (resent twice) never makes loss negative.
        assert_eq!(loss_of([(4, 6)]), Some(0.0));
    }

    #[test]
    fn receiver_reports_give_the_worst_loss_and_jitter_and_the_round_trip() {
        let mut r = Reports::default();
        assert_eq!(r.take(), None, "no report, no window");
        // Our sender report left at NTP 1000.5 s; the viewer held it 0.25 s; its report
        // arrives at 1000.85 s: a round trip of 100 ms.
        let sent = (1000u64 << 32) | (1u64 << 31);
        let lsr = (sent >> 16) as u32;
        let now = (1000u64 << 32) + ((85u64 << 32) / 100);
        let block = |jitter: u32| ReceptionReport {
            jitter,
            last_sender_report: lsr,
            delay: 1 << 14,
            ..Default::default()
        };
        r.report(&block(900), Some(0.05), 90_000, now);
        r.report(&block(480), Some(0.25), 48_000, now);
        let w = r.take().unwrap();
        assert_eq!(w.loss, 0.25);
        assert_eq!(w.jitter_ms, Some(10));
        assert!((99..=101).contains(&w.rtt_ms.unwrap()), "{:?}", w.rtt_ms);
        assert_eq!(r.take(), None, "each window starts empty");
        assert_eq!(rtt_ms(now, 0, 0), None, "no sender report named");
        assert_eq!(rtt_ms(now, lsr + (1 << 16), 1 << 14), None, "a clock step");
    }

    #[test]
    fn a_viewer_is_not_blamed_for_gaps_it_was_sent() {
        let mut g = SentGaps::default();
        let report = |highest: u32, total_lost: u32| ReceptionReport {
            last_sequence_number: highest,
            total_lost,
            ..Default::default()
        };
        for seq in 0..=100u16 {
            g.sent(seq);
        }
        assert_eq!(
            g.viewer_loss(&report(100, 0)),
            None,
            "the first report sets the base"
        );
        // 101..=200 sent with 10 missing (lost before the relay); the viewer misses
        // those 10 and 5 more of its own.
        for seq in 101..=200u16 {
            if seq % 10 != 5 {
                g.sent(seq);
            }
        }
        assert_eq!(g.viewer_loss(&report(200, 15)), Some(0.05));
        // The publisher's repair of one gap arrives late and is forwarded: the viewer
        // got it, and the relay no longer counts that gap.
        g.sent(150);
        for seq in 201..=300u16 {
            g.sent(seq);
        }
        assert_eq!(g.viewer_loss(&report(300, 14)), Some(0.0));
        // total_lost is signed: duplicates can make it negative; never negative loss.
        assert_eq!(g.viewer_loss(&report(400, 0xff_ffff)), Some(0.0));
        // Across the 16-bit wrap.
        let mut g = SentGaps::default();
        for seq in 65_500..=65_535u16 {
            g.sent(seq);
        }
        g.viewer_loss(&report(65_535, 0));
        for seq in (0..100u16).filter(|&s| s != 3) {
            g.sent(seq);
        }
        assert_eq!(g.viewer_loss(&report(65_536 + 99, 1)), Some(0.0));
    }
}
