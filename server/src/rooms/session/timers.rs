//! Every deadline of a session, as plain instants: the next batch of roster deltas, the
//! end of the room's window, the resume grace of dropped members and the destroy delay
//! of an empty session. The session asks these after each input and hands the earliest
//! to its driver (`poll_timeout`), which sleeps until then and calls `handle_timeout`.

use std::time::{Duration, Instant};

/// Membership deltas are gathered this long and sent as one `participantsChanged`.
pub const BATCH_INTERVAL: Duration = Duration::from_millis(30);
/// A change of the audience count alone goes to everyone at most this often: in a
/// large audience, joins would otherwise cost one frame per member per batch. Members
/// that fell behind are resynchronised on the same beat. Larger rooms wait longer
/// (`audience_interval`).
pub const AUDIENCE_INTERVAL: Duration = Duration::from_secs(1);
/// At most this many audience-count frames a second, per room: one count to 100,000
/// members took 1.4 s of this 2-core machine, so a count every second during a join storm
/// queued faster than it went out, and a message to all waited behind the backlog
/// (bench/spread.sh: p99 2.3 s). 100,000 members get a count every 10 s.
const AUDIENCE_FRAMES_PER_SECOND: f64 = 10_000.0;

/// How long an audience-only change waits in a room of `members`.
pub fn audience_interval(members: usize) -> Duration {
    AUDIENCE_INTERVAL.max(Duration::from_secs_f64(
        members as f64 / AUDIENCE_FRAMES_PER_SECOND,
    ))
}

#[derive(Debug, Clone)]
pub struct Timers {
    /// When the pending deltas (or snapshots for laggards) go out.
    pub flush_at: Option<Instant>,
    /// Since when the session has had no member (it ends after the destroy delay).
    pub empty_since: Option<Instant>,
    /// When the room's window ends, on the monotonic clock (re-read at every input, so
    /// a changed `validUntil` or a wall-clock step is followed).
    pub expires_at: Instant,
}

/// What is pending, for scheduling the next flush.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pending {
    Nothing,
    /// Joins, leaves or updates of announced members.
    Members,
    /// Only the audience count, or members to resynchronise.
    AudienceOnly,
}

impl Timers {
    pub fn new(now: Instant, expires_at: Instant) -> Self {
        Self {
            flush_at: None,
            empty_since: Some(now),
            expires_at,
        }
    }

    /// A member delta pulls an audience-only flush forward; nothing pushes one back.
    /// `members`: how many the room has now (see `audience_interval`).
    pub fn schedule_flush(&mut self, pending: Pending, members: usize, now: Instant) {
        let due = match pending {
            Pending::Nothing => None,
            Pending::Members => Some(now + BATCH_INTERVAL),
            Pending::AudienceOnly => Some(now + audience_interval(members)),
        };
        self.flush_at = match (self.flush_at, due) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }

    pub fn flush_due(&mut self, now: Instant) -> bool {
        if self.flush_at.is_some_and(|t| t <= now) {
            self.flush_at = None;
            return true;
        }
        false
    }

    pub fn set_empty(&mut self, empty: bool, now: Instant) {
        if empty {
            self.empty_since.get_or_insert(now);
        } else {
            self.empty_since = None;
        }
    }

    pub fn destroy_at(&self, delay: Duration) -> Option<Instant> {
        self.empty_since.map(|t| t + delay)
    }

    /// The earliest of the session's deadlines.
    pub fn next(&self, delay: Duration, grace_deadline: Option<Instant>) -> Instant {
        [self.flush_at, self.destroy_at(delay), grace_deadline]
            .into_iter()
            .flatten()
            .fold(self.expires_at, Instant::min)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_deltas_pull_an_audience_flush_forward() {
        let t = Instant::now();
        let far = t + Duration::from_secs(3600);
        let mut timers = Timers::new(t, far);
        timers.schedule_flush(Pending::AudienceOnly, 10, t);
        assert_eq!(timers.flush_at, Some(t + AUDIENCE_INTERVAL));
        timers.schedule_flush(Pending::Members, 10, t + Duration::from_millis(100));
        assert_eq!(timers.flush_at, Some(t + Duration::from_millis(130)));
        // A later audience-only change does not push it back.
        timers.schedule_flush(Pending::AudienceOnly, 10, t + Duration::from_millis(110));
        assert_eq!(timers.flush_at, Some(t + Duration::from_millis(130)));
        assert!(!timers.flush_due(t + Duration::from_millis(129)));
        assert!(timers.flush_due(t + Duration::from_millis(130)));
        assert_eq!(timers.flush_at, None);
    }

    #[test]
    fn larger_rooms_get_the_audience_count_less_often() {
        assert_eq!(audience_interval(0), AUDIENCE_INTERVAL);
        assert_eq!(audience_interval(10_000), AUDIENCE_INTERVAL);
        assert_eq!(audience_interval(25_000), Duration::from_millis(2500));
        assert_eq!(audience_interval(100_000), Duration::from_secs(10));
        let t = Instant::now();
        let mut timers = Timers::new(t, t + Duration::from_secs(3600));
        timers.schedule_flush(Pending::AudienceOnly, 50_000, t);
        assert_eq!(timers.flush_at, Some(t + Duration::from_secs(5)));
        // Member deltas still go out at once.
        timers.schedule_flush(Pending::Members, 50_000, t);
        assert_eq!(timers.flush_at, Some(t + BATCH_INTERVAL));
    }

    #[test]
    fn the_earliest_deadline_wins() {
        let t = Instant::now();
        let mut timers = Timers::new(t, t + Duration::from_secs(60));
        assert_eq!(
            timers.next(Duration::from_secs(5), None),
            t + Duration::from_secs(5)
        );
        timers.set_empty(false, t);
        assert_eq!(
            timers.next(Duration::from_secs(5), None),
            t + Duration::from_secs(60)
        );
        let grace = Some(t + Duration::from_secs(15));
        assert_eq!(
            timers.next(Duration::ZERO, grace),
            t + Duration::from_secs(15)
        );
    }
}
