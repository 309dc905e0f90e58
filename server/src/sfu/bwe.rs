//! Per-viewer bandwidth: what one subscribe connection's link carries, and so how many of
//! a camera's simulcast layers it may be sent. Sans-IO: packets sent, feedback and
//! instants in; a level out.
//!
//! Every packet the relay sends a viewer carries a transport-wide sequence number (the
//! TWCC header extension, when its answer took it); the browser reports when each one
//! arrived (RTCP transport feedback), which `rtc`'s send history joins with when each
//! left. The link is congested when:
//!
//! - its packets queue: averaged over the last few reports, they took more than `QUEUE`
//!   longer than the least the link showed lately (the queue a capped link builds
//!   before it drops); or
//! - it drops far more than a lossy radio does: more than `LOSS` of the packets the
//!   reports of the last `LOSS_WINDOW` list as not received, counted over at least
//!   `LOSS_MIN_PACKETS` (audio alone sends 100 in two seconds), since the level last
//!   changed.
//!
//! Loss is read from the reports' own statuses, never from packets no report mentions:
//! a feedback packet lost on the way back (rtc's send history then calls every packet
//! it covered lost) says nothing about the link to the viewer. Random loss of a few per
//! cent each way (the loss test's 5 %) is repaired by retransmission, not by a smaller
//! layer: over 100 packets a 5 % link shows more than 15 % by chance once in about
//! 27,000 windows (a step down and, 2 s later, back up; a pause takes 4 s of it).
//!
//! Why not `rtc`'s GCC estimator on the same reports: its delay-trend detector took the
//! scheduling noise of a loaded two-core host for congestion (an uncapped loopback
//! viewer fell to the smallest layer beside the capped one), and its estimate climbs a
//! few per cent a second, where a layer is a step of several hundred kbit/s. Layers are
//! few, so the level moves a layer at a time:
//!
//! - congestion takes the viewer's level one layer down, at most once per `SETTLE`
//!   (the queue drains meanwhile); from the smallest layer it goes to `PAUSED` (no
//!   video; audio is never held back);
//! - after `probe_after` with no congestion the level goes one up (from `PAUSED`: video
//!   resumes at the smallest layer). A step up followed by congestion within `PROBE`
//!   was too much: the wait before the next doubles (to `PROBE_AFTER_MAX`, so a link
//!   that recovers is found again within seconds); a step up that held resets it.
//!
//! The level caps the layer `simulcast::Layers::pick` chooses by height: level 0 is the
//! smallest arriving layer, 1 the next, and so on.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rtc::interceptor::{convert_twcc, History, PacketReport};
use rtc::rtcp::transport_feedbacks::transport_layer_cc::TransportLayerCc;
use rtc::rtp;

pub const TWCC_URI: &str =
    "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01";

/// No video at all.
pub const PAUSED: i8 = -1;
/// Every layer (the top of three).
pub const TOP: i8 = super::simulcast::LAYERS as i8 - 1;

/// After a step down, congestion is not acted on again for this long (the new layer
/// starts at its keyframe, and the queue the old one built drains meanwhile)...
const SETTLE: Duration = Duration::from_millis(1500);
/// ...and from the smallest layer to none, this long: a link is not taken for unable
/// to carry any video while it still drains what a larger layer queued.
const SETTLE_BEFORE_PAUSE: Duration = Duration::from_secs(4);
/// A step up within this much of congestion failed.
const PROBE: Duration = Duration::from_secs(2);
const PROBE_AFTER_MIN: Duration = Duration::from_secs(2);
/// From a pause, the first probe waits at least this long (each probe there costs the
/// link's audio a burst of loss).
const PROBE_FROM_PAUSE: Duration = Duration::from_secs(4);
const PROBE_AFTER_MAX: Duration = Duration::from_secs(8);
/// Congestion: packets queued this much longer than the least lately (milliseconds)...
const QUEUE: f64 = 150.0;
/// ...or more than this share of them reported lost, over the last `LOSS_WINDOW`...
const LOSS: f64 = 0.15;
const LOSS_WINDOW: Duration = Duration::from_secs(2);
/// ...once at least this many were reported on.
const LOSS_MIN_PACKETS: u64 = 100;
/// How far back "lately" goes for the least queueing (in two halves).
const BASE: Duration = Duration::from_secs(5);
/// The weight of each report in the averages.
const WEIGHT: f64 = 0.3;
/// Sent packets not acknowledged after this long are forgotten.
const KEEP: Duration = Duration::from_secs(3);

pub struct Bwe {
    /// The extension's id in this connection's packets (`None`: not negotiated, and the
    /// level stays at `TOP`).
    ext: Option<u8>,
    next_seq: u16,
    sent: History,
    /// Departures are counted from here (arrivals are on the browser's own clock).
    epoch: Instant,
    /// The least one-way delay seen (ms, on mixed clocks: only differences count), in
    /// the current and the previous `BASE` window.
    base: [(f64, Option<Instant>); 2],
    /// Per report since the level last changed (within `LOSS_WINDOW`): when, how many
    /// packets it listed, how many of them as not received...
    loss: VecDeque<(Instant, u64, u64)>,
    /// ...and their sums (kept as they come and go: a client may send many reports).
    loss_sum: (u64, u64),
    avg_queue: f64,
    level: i8,
    last_change: Option<Instant>,
    last_congestion: Option<Instant>,
    probe_after: Duration,
    /// When the level last went up (a probe until `PROBE` has passed).
    probing_since: Option<Instant>,
    last_prune: Option<Instant>,
}

impl Default for Bwe {
    fn default() -> Self {
        Self {
            ext: None,
            next_seq: 0,
            sent: History::new(),
            epoch: Instant::now(),
            base: [(f64::MAX, None); 2],
            loss: VecDeque::new(),
            loss_sum: (0, 0),
            avg_queue: 0.0,
            // Starting high: a viewer gets the top layer at once, and a link that cannot
            // carry it says so within a second.
            level: TOP,
            last_change: None,
            last_congestion: None,
            probe_after: PROBE_AFTER_MIN,
            probing_since: None,
            last_prune: None,
        }
    }
}

impl Bwe {
    /// The client's answer took the extension with this id (`None`: it did not).
    pub fn negotiated(&mut self, ext: Option<u8>) {
        self.ext = ext;
    }

    /// How many layers this viewer's link carries (see the module header).
    pub fn level(&self) -> i8 {
        self.level
    }

    /// Numbers a packet about to be sent (of `size` bytes on the wire).
    pub fn stamp(&mut self, header: &mut rtp::header::Header, size: usize, now: Instant) {
        let Some(id) = self.ext else {
            return;
        };
        let seq = self.next_seq;
        if header
            .set_extension(id, Bytes::copy_from_slice(&seq.to_be_bytes()))
            .is_err()
        {
            return;
        }
        self.next_seq = seq.wrapping_add(1);
        self.sent
            .add_outgoing(header.ssrc, header.sequence_number, true, seq, size, now);
    }

    /// The viewer's transport feedback. Returns the new level when it changed.
    pub fn feedback(&mut self, fb: &TransportLayerCc, now: Instant) -> Option<i8> {
        self.ext?;
        let (mut listed, mut lost) = (0, 0);
        for ack in convert_twcc(fb)
            .into_iter()
            .take(fb.packet_status_count.into())
        {
            listed += 1;
            lost += u64::from(!ack.arrived);
            self.sent.on_twcc_feedback(now, ack);
        }
        self.count(now, listed, lost);
        let reports = self.sent.take_reports();
        if self
            .last_prune
            .is_none_or(|t| now >= t + Duration::from_secs(1))
        {
            self.last_prune = Some(now);
            self.sent.prune_before(now.checked_sub(KEEP).unwrap_or(now));
        }
        let congested = self.congested(&reports, now);
        tracing::trace!(
            listed,
            lost,
            reports = reports.len(),
            queue_ms = self.avg_queue as u32,
            ?congested,
            "feedback"
        );
        self.decide(congested?, now)
    }

    /// Whether the link is congested, with these packets' reports taken in (`None`: they
    /// say nothing). Only the arrived ones count here: the lost are counted from the
    /// feedback itself (see the module header).
    fn congested(&mut self, reports: &[PacketReport], now: Instant) -> Option<bool> {
        while let Some(&(t, listed, lost)) = self.loss.front() {
            if now.saturating_duration_since(t) <= LOSS_WINDOW {
                break;
            }
            self.loss.pop_front();
            self.loss_sum.0 -= listed;
            self.loss_sum.1 -= lost;
        }
        if reports.is_empty() {
            return None;
        }
        let epoch = self.epoch;
        let delays = reports.iter().filter(|r| r.arrived).filter_map(|r| {
            let sent = r.departure.saturating_duration_since(epoch);
            Some(r.arrival?.as_secs_f64() * 1000.0 - sent.as_secs_f64() * 1000.0)
        });
        let (mut sum, mut n) = (0.0, 0usize);
        for d in delays {
            self.lowest(d, now);
            sum += d;
            n += 1;
        }
        if n > 0 {
            let base = self.base[0].0.min(self.base[1].0);
            let queue = (sum / n as f64 - base).max(0.0);
            self.avg_queue += WEIGHT * (queue - self.avg_queue);
        }
        let (listed, lost) = self.loss_sum;
        let lossy = listed >= LOSS_MIN_PACKETS && lost as f64 > LOSS * listed as f64;
        Some(lossy || self.avg_queue > QUEUE)
    }

    /// Takes a one-way delay into the least of the current window (a window `BASE` old
    /// becomes the previous one).
    fn lowest(&mut self, d: f64, now: Instant) {
        if self.base[0].1.is_none_or(|t| now >= t + BASE) {
            self.base = [(d, Some(now)), self.base[0]];
        } else if d < self.base[0].0 {
            self.base[0].0 = d;
        }
    }

    /// A report listed `listed` packets, `lost` of them as not received.
    fn count(&mut self, now: Instant, listed: u64, lost: u64) {
        self.loss.push_back((now, listed, lost));
        self.loss_sum.0 += listed;
        self.loss_sum.1 += lost;
    }

    /// The level changed: loss counted before says nothing about the new layer (a step
    /// down would otherwise be followed by another for the old layer's loss).
    fn changed(&mut self, now: Instant) {
        let (listed, lost) = self.loss_sum;
        tracing::debug!(
            level = self.level,
            queue_ms = self.avg_queue as u32,
            listed,
            lost,
            "a viewer's link level changed"
        );
        self.last_change = Some(now);
        self.loss.clear();
        self.loss_sum = (0, 0);
    }

    fn decide(&mut self, congested: bool, now: Instant) -> Option<i8> {
        let since = |t: Option<Instant>| t.map(|t| now.saturating_duration_since(t));
        if congested {
            self.last_congestion = Some(now);
            // A step up that brought congestion is undone at once.
            let failed = since(self.probing_since).is_some_and(|d| d < PROBE);
            if failed {
                self.probe_after = (self.probe_after * 2).min(PROBE_AFTER_MAX);
            }
            self.probing_since = None;
            let settle = if self.level == 0 {
                SETTLE_BEFORE_PAUSE
            } else {
                SETTLE
            };
            let settling = since(self.last_change).is_some_and(|d| d < settle);
            if self.level == PAUSED || (settling && !failed) {
                return None;
            }
            self.level -= 1;
            self.changed(now);
            return Some(self.level);
        }
        if since(self.probing_since).is_some_and(|d| d >= PROBE) {
            self.probing_since = None;
            self.probe_after = PROBE_AFTER_MIN;
        }
        let quiet = [self.last_change, self.last_congestion]
            .into_iter()
            .flatten()
            .max();
        let wait = if self.level == PAUSED {
            self.probe_after.max(PROBE_FROM_PAUSE)
        } else {
            self.probe_after
        };
        if self.level < TOP && since(quiet).is_none_or(|d| d >= wait) {
            self.level += 1;
            self.changed(now);
            self.probing_since = Some(now);
            return Some(self.level);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(t0: Instant, ms: u64) -> Instant {
        t0 + Duration::from_millis(ms)
    }

    /// Congestion steps the level down once per settle time, to paused; quiet steps it up
    /// after the probe wait, which doubles after a failed probe and resets after one
    /// that held.
    #[test]
    fn congestion_steps_down_and_quiet_probes_up() {
        let t0 = Instant::now();
        let mut b = Bwe::default();
        assert_eq!(b.level(), TOP);
        assert_eq!(b.decide(true, at(t0, 0)), Some(1));
        assert_eq!(b.decide(true, at(t0, 500)), None, "settling");
        assert_eq!(b.decide(true, at(t0, 1600)), Some(0));
        assert_eq!(
            b.decide(true, at(t0, 3200)),
            None,
            "draining before a pause"
        );
        assert_eq!(b.decide(true, at(t0, 5600)), Some(PAUSED));
        assert_eq!(b.decide(true, at(t0, 6000)), None, "nothing below paused");
        // Quiet for the probe wait (from a pause, 4 s): video resumes at the smallest.
        assert_eq!(b.decide(false, at(t0, 9000)), None);
        assert_eq!(b.decide(false, at(t0, 10_000)), Some(0));
        // Congestion right after: the probe failed; down again at once, and the next
        // waits 4 s.
        assert_eq!(b.decide(true, at(t0, 10_500)), Some(PAUSED));
        assert_eq!(b.decide(false, at(t0, 13_000)), None);
        assert_eq!(b.decide(false, at(t0, 14_600)), Some(0));
        // This one holds for 2 s: the wait is back to 2 s.
        assert_eq!(b.decide(false, at(t0, 16_000)), None);
        assert_eq!(b.decide(false, at(t0, 16_700)), Some(1));
        assert_eq!(b.decide(false, at(t0, 18_800)), Some(2));
        assert_eq!(b.decide(false, at(t0, 33_000)), None, "at the top");
    }

    /// Reports every 100 ms of 10 packets each: their one-way delay (on a clock of the
    /// browser's own, 1 s off) grows by `growth` ms a report, and `lost` of them vanish.
    fn reports(b: &mut Bwe, t0: Instant, n: u64, growth: f64, lost: usize) -> Vec<bool> {
        (0..n)
            .map(|i| {
                let now = at(t0, i * 100);
                b.count(now, 10, lost as u64);
                let batch: Vec<PacketReport> = (0..10)
                    .map(|k| {
                        let departure = now + Duration::from_millis(k * 10);
                        let sent = departure.duration_since(b.epoch).as_secs_f64();
                        let delay = 0.020 + growth * i as f64 / 1000.0;
                        PacketReport {
                            ssrc: 1,
                            id: i * 10 + k,
                            rtp_sequence_number: 0,
                            is_twcc: true,
                            twcc_sequence_number: 0,
                            size: 1200,
                            arrived: (k as usize) >= lost,
                            departure,
                            arrival: Some(Duration::from_secs_f64(1.0 + sent + delay)),
                            ecn: Default::default(),
                        }
                    })
                    .collect();
                b.congested(&batch, now).unwrap()
            })
            .collect()
    }

    #[test]
    fn queueing_and_loss_are_congestion_and_a_steady_link_is_not() {
        let t0 = Instant::now();
        let steady = reports(&mut Bwe::default(), t0, 50, 0.0, 0);
        assert!(steady.iter().all(|c| !c), "a steady link");
        // Queueing 10 ms more each report: past 150 ms within about two seconds.
        let queue = reports(&mut Bwe::default(), t0, 50, 10.0, 0);
        let first = queue.iter().position(|c| *c).unwrap();
        assert!((15..25).contains(&first), "congested from report {first}");
        // 30 % lost, no queue: congested once 100 packets were reported on.
        let lossy = reports(&mut Bwe::default(), t0, 30, 0.0, 3);
        assert!(lossy[..9].iter().all(|c| !c), "{lossy:?}");
        assert!(lossy[9..].iter().all(|c| *c), "{lossy:?}");
        // 2 % lost (one report in five loses one of ten): not.
        let mut b = Bwe::default();
        let light: Vec<bool> = (0..50)
            .flat_map(|i| reports(&mut b, at(t0, i * 100), 1, 0.0, usize::from(i % 5 == 0)))
            .collect();
        assert!(light.iter().all(|c| !c), "{light:?}");
        assert_eq!(Bwe::default().congested(&[], t0), None);
    }

    /// A link that drops `media` (per mille) of the packets to the viewer at random and
    /// `feedback` of its reports on the way back, with a steady 20 ms delay: 150 packets a
    /// second, a report each 100 ms on the packets since the last (as Chromium sends
    /// them). Returns the lowest level it took over `secs` seconds.
    fn random_loss(media: u64, feedback: u64, secs: u64) -> i8 {
        use rtc::rtcp::transport_feedbacks::transport_layer_cc::{
            PacketStatusChunk, RecvDelta, RunLengthChunk, StatusChunkTypeTcc, SymbolTypeTcc,
        };
        let t0 = Instant::now();
        let mut b = Bwe::default();
        b.negotiated(Some(5));
        // A fixed pseudo-random sequence (an LCG), so a failure can be replayed.
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut roll = move |per_mille: u64| {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            (seed >> 33) % 1000 < per_mille
        };
        let mut lowest = b.level();
        let (mut base, mut count) = (0u16, 0u16);
        let mut pending = vec![];
        for tick in 0..secs * 50 {
            let sent = at(t0, tick * 20);
            for _ in 0..3 {
                let mut h = rtp::header::Header {
                    ssrc: 1,
                    ..Default::default()
                };
                b.stamp(&mut h, 1200, sent);
                // Arrival on the browser's clock (1 s ahead), in microseconds.
                let arrival = 1_000_000 + (tick * 20 + 20) as i64 * 1000;
                pending.push((!roll(media)).then_some(arrival));
                count += 1;
            }
            if tick % 5 != 4 {
                continue;
            }
            let mut chunks = vec![];
            let mut deltas = vec![];
            let mut last = 0;
            for got in pending.drain(..) {
                let symbol = match got {
                    Some(t) => {
                        deltas.push(RecvDelta {
                            type_tcc_packet: SymbolTypeTcc::PacketReceivedLargeDelta,
                            delta: t - last,
                        });
                        last = t;
                        SymbolTypeTcc::PacketReceivedLargeDelta
                    }
                    None => SymbolTypeTcc::PacketNotReceived,
                };
                chunks.push(PacketStatusChunk::RunLengthChunk(RunLengthChunk {
                    type_tcc: StatusChunkTypeTcc::RunLengthChunk,
                    packet_status_symbol: symbol,
                    run_length: 1,
                }));
            }
            let fb = TransportLayerCc {
                base_sequence_number: base,
                packet_status_count: count,
                packet_chunks: chunks,
                recv_deltas: deltas,
                ..Default::default()
            };
            base = base.wrapping_add(count);
            count = 0;
            if !roll(feedback) {
                b.feedback(&fb, at(t0, tick * 20 + 40));
                lowest = lowest.min(b.level());
            }
        }
        lowest
    }

    /// The loss test's link (5 % each way, reports included) keeps the top layer for a
    /// minute; one that drops 30 % of the packets to the viewer does not.
    #[test]
    fn random_loss_and_lost_reports_are_not_congestion() {
        assert_eq!(random_loss(50, 50, 60), TOP);
        assert_eq!(random_loss(0, 200, 60), TOP, "a fifth of the reports lost");
        assert!(random_loss(300, 50, 10) < TOP);
    }

    /// The window's sums are kept as reports come and go (not summed per report: a
    /// client may send thousands).
    #[test]
    fn the_loss_window_keeps_its_sums() {
        let t0 = Instant::now();
        let mut b = Bwe::default();
        for i in 0..500u64 {
            let now = at(t0, i * 13);
            b.count(now, i % 7 + 1, i % 3);
            b.congested(&[], now);
            let sums = b
                .loss
                .iter()
                .fold((0, 0), |(a, c), &(_, l, x)| (a + l, c + x));
            assert_eq!(b.loss_sum, sums);
            assert!(b.loss.len() <= 2000 / 13 + 1);
        }
        b.changed(at(t0, 7000));
        assert_eq!((b.loss.len(), b.loss_sum), (0, (0, 0)));
    }

    #[test]
    fn failed_probes_wait_at_most_eight_seconds() {
        let t0 = Instant::now();
        let mut b = Bwe::default();
        let mut now = 0;
        b.decide(true, at(t0, now));
        for _ in 0..6 {
            // Probe up as soon as allowed, fail at once.
            let up = loop {
                now += 100;
                if b.decide(false, at(t0, now)).is_some() {
                    break now;
                }
            };
            b.decide(true, at(t0, up + 100));
            now = up + 100;
        }
        assert_eq!(b.probe_after, PROBE_AFTER_MAX);
    }

    #[test]
    fn without_the_extension_nothing_is_stamped_and_the_level_stays() {
        let t0 = Instant::now();
        let mut b = Bwe::default();
        let mut h = rtp::header::Header {
            ssrc: 1,
            ..Default::default()
        };
        b.stamp(&mut h, 1000, t0);
        assert!(!h.extension);
        assert_eq!(b.feedback(&TransportLayerCc::default(), t0), None);
        assert_eq!(b.level(), TOP);
        b.negotiated(Some(5));
        b.stamp(&mut h, 1000, t0);
        assert_eq!(h.get_extension(5).as_deref(), Some(&[0u8, 0][..]));
        let mut h2 = rtp::header::Header::default();
        b.stamp(&mut h2, 1000, t0);
        assert_eq!(h2.get_extension(5).as_deref(), Some(&[0u8, 1][..]));
    }
}
