//! The one place that reads the clocks. Domain code takes a `Now` (or a wall time) as an
//! argument, so tests can pass any moment they like and never sleep.

use std::time::Instant;

use chrono::{DateTime, SubsecRound, Utc};

pub trait Clock: Send + Sync + 'static {
    /// Wall time: what rooms' windows and the API's timestamps are in.
    fn now(&self) -> DateTime<Utc>;
}

#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    /// Millisecond precision: what the store keeps, so a time reads back as written.
    fn now(&self) -> DateTime<Utc> {
        Utc::now().trunc_subsecs(3)
    }
}

/// Both clocks read at one moment: `mono` for intervals and deadlines (it never jumps),
/// `wall` for the room's window. A session core is handed one of these with every input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    pub mono: Instant,
    pub wall: DateTime<Utc>,
}

impl Now {
    /// `mono` from tokio's clock, so a test that pauses tokio time moves it too.
    pub fn read(clock: &dyn Clock) -> Self {
        Self {
            mono: tokio::time::Instant::now().into_std(),
            wall: clock.now(),
        }
    }

    /// The same moment `d` later on both clocks (for tests and deadlines).
    pub fn after(self, d: std::time::Duration) -> Self {
        Self {
            mono: self.mono + d,
            wall: self.wall + chrono::Duration::from_std(d).unwrap_or(chrono::Duration::zero()),
        }
    }

    /// The monotonic instant at which the wall clock reads `at`, as far as can be told
    /// now (never earlier than `mono`).
    pub fn mono_at(self, at: DateTime<Utc>) -> Instant {
        let left = (at - self.wall).to_std().unwrap_or_default();
        // Beyond about a year the answer is "far away"; rooms end within 180 days.
        self.mono + left.min(std::time::Duration::from_secs(400 * 24 * 3600))
    }
}
