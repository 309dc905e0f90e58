//! What a publisher's camera must carry: the tallest any viewer shows it, so its SDK
//! pauses the simulcast layers nobody needs (an encoder that runs for nobody costs the
//! publisher's CPU and uplink). A need that grows is told at once (the viewer gets the
//! tallest layer arriving meanwhile and switches up at the new layer's first
//! keyframe); one that shrinks is told `LOWER_AFTER` after it first did (with the need
//! as it is then), so a tile being resized or a viewer's connection coming back does
//! not stop and restart an encoder. What was told can be told again (`resend`): the
//! message is lost when the publisher's socket is down, and a publisher that made new
//! connections starts from every layer. Sans-IO: needs and instants in, what to tell out.

use std::time::{Duration, Instant};

/// How long after a need first shrinks the publisher is told.
pub const LOWER_AFTER: Duration = Duration::from_secs(3);

/// How large a camera is shown, ordered from nothing to everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Need {
    /// Nobody shows it (the smallest layer goes on, for the next viewer's first frame).
    Nothing,
    /// Up to this many device pixels tall.
    UpTo(u32),
    /// As large as there is (a viewer that said no size, or viewers on other nodes).
    All,
}

impl Need {
    /// The need of viewers showing it `heights` tall (`None`: no size said).
    pub fn of(heights: impl IntoIterator<Item = Option<u32>>) -> Need {
        (heights.into_iter())
            .map(|h| h.map_or(Need::All, Need::UpTo))
            .max()
            .unwrap_or(Need::Nothing)
    }

    /// As `cameraDemand`'s `maxHeight` says it.
    pub fn max_height(self) -> Option<u32> {
        match self {
            Need::Nothing => Some(0),
            Need::UpTo(h) => Some(h),
            Need::All => None,
        }
    }
}

/// How long a new viewer may take to say how large it shows a camera before it counts
/// as wanting it as large as there is (its first frame comes from whatever layer is
/// arriving; the join page says its tiles' sizes within a second). Without it, each
/// join would wake every camera's larger layers for `LOWER_AFTER`.
pub const NO_SIZE_GRACE: Duration = Duration::from_secs(2);

/// The need of a camera from the viewers that show it: each one's height, if it said
/// one, and when its receiving connection opened. Also when the first new viewer's
/// grace ends (`NO_SIZE_GRACE`), to look again then.
pub fn need_of(
    viewers: impl IntoIterator<Item = (Option<u32>, Option<Instant>)>,
    now: Instant,
) -> (Need, Option<Instant>) {
    let mut grace_ends: Option<Instant> = None;
    let need = Need::of(viewers.into_iter().filter_map(|(height, since)| {
        if height.is_some() {
            return Some(height);
        }
        match since.map(|at| at + NO_SIZE_GRACE) {
            Some(end) if now < end => {
                grace_ends = Some(grace_ends.map_or(end, |g| g.min(end)));
                None
            }
            _ => Some(None),
        }
    }));
    (need, grace_ends)
}

/// One publisher's camera: what it was told, and a smaller need waiting to be told.
#[derive(Debug, Clone, Copy)]
pub struct Demand {
    told: Need,
    /// The smaller need, and since when one has been wanted.
    lower: Option<(Need, Instant)>,
    /// What was told is told again at the next look.
    resend: bool,
}

impl Default for Demand {
    /// A publisher sends every layer until told otherwise.
    fn default() -> Self {
        Self {
            told: Need::All,
            lower: None,
            resend: false,
        }
    }
}

impl Demand {
    /// The need now; what to tell the publisher, if anything.
    pub fn set(&mut self, need: Need, now: Instant) -> Option<Need> {
        if need >= self.told {
            self.lower = None;
            if need > self.told || std::mem::take(&mut self.resend) {
                self.told = need;
                return Some(need);
            }
            return None;
        }
        let since = self.lower.map_or(now, |(_, since)| since);
        self.lower = Some((need, since));
        self.poll(now)
    }

    /// What to tell now that time passed (a smaller need whose wait is over, or what
    /// was told, again when asked to).
    pub fn poll(&mut self, now: Instant) -> Option<Need> {
        match self.lower {
            Some((need, since)) if now >= since + LOWER_AFTER => {
                self.lower = None;
                self.resend = false;
                self.told = need;
                Some(need)
            }
            _ => std::mem::take(&mut self.resend).then_some(self.told),
        }
    }

    /// Tell what was told again, at the next look (`set` or `poll`).
    pub fn resend(&mut self) {
        self.resend = true;
    }

    /// When `poll` may have something to tell.
    pub fn deadline(&self) -> Option<Instant> {
        self.lower.map(|(_, since)| since + LOWER_AFTER)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_need_is_the_tallest_viewer_and_all_when_one_said_no_size() {
        assert_eq!(Need::of([]), Need::Nothing);
        assert_eq!(Need::of([Some(180), Some(360)]), Need::UpTo(360));
        assert_eq!(Need::of([Some(180), None]), Need::All);
        assert_eq!(Need::Nothing.max_height(), Some(0));
        assert_eq!(Need::UpTo(360).max_height(), Some(360));
        assert_eq!(Need::All.max_height(), None);
    }

    #[test]
    fn a_new_viewer_without_a_size_counts_once_its_grace_is_over() {
        let t0 = Instant::now();
        let new = Some(t0);
        let old = Some(t0 - NO_SIZE_GRACE);
        // Said a size: counts at once.
        assert_eq!(need_of([(Some(180), new)], t0), (Need::UpTo(180), None));
        // No size yet, just joined: not counted until its grace ends.
        let end = t0 + NO_SIZE_GRACE;
        assert_eq!(need_of([(None, new)], t0), (Need::Nothing, Some(end)));
        assert_eq!(
            need_of([(Some(180), old), (None, new)], t0),
            (Need::UpTo(180), Some(end))
        );
        assert_eq!(need_of([(None, new)], end), (Need::All, None));
        // No size and long there (or never subscribed): as large as there is.
        assert_eq!(
            need_of([(Some(180), new), (None, old)], t0),
            (Need::All, None)
        );
        assert_eq!(need_of([(None, None)], t0), (Need::All, None));
        // Several new ones: the first grace to end.
        let later = Some(t0 + Duration::from_millis(500));
        assert_eq!(
            need_of([(None, later), (None, new)], t0),
            (Need::Nothing, Some(end))
        );
        assert_eq!(need_of([], t0), (Need::Nothing, None));
    }

    #[test]
    fn growth_is_told_at_once_and_shrinking_after_it_held() {
        let t0 = Instant::now();
        let mut d = Demand::default();
        assert_eq!(
            d.set(Need::All, t0),
            None,
            "every layer is sent to begin with"
        );
        assert_eq!(d.deadline(), None);

        // Shrinks: told only after LOWER_AFTER, with the latest smaller need.
        assert_eq!(d.set(Need::UpTo(720), t0), None);
        assert_eq!(d.deadline(), Some(t0 + LOWER_AFTER));
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!(d.set(Need::UpTo(180), t1), None);
        assert_eq!(d.poll(t0 + LOWER_AFTER - Duration::from_millis(1)), None);
        assert_eq!(d.poll(t0 + LOWER_AFTER), Some(Need::UpTo(180)));
        assert_eq!(d.deadline(), None);
        assert_eq!(d.poll(t0 + LOWER_AFTER * 2), None, "told once");

        // Grows: told at once.
        let t2 = t0 + Duration::from_secs(10);
        assert_eq!(d.set(Need::UpTo(360), t2), Some(Need::UpTo(360)));
        assert_eq!(d.set(Need::UpTo(360), t2), None, "no change, nothing told");
    }

    #[test]
    fn a_shrink_that_does_not_hold_is_never_told() {
        let t0 = Instant::now();
        let mut d = Demand::default();
        assert_eq!(d.set(Need::Nothing, t0), None);
        // The viewer comes back (a reconnect) before the wait is over.
        assert_eq!(d.set(Need::All, t0 + Duration::from_secs(1)), None);
        assert_eq!(d.deadline(), None);
        assert_eq!(d.poll(t0 + LOWER_AFTER * 2), None);

        // A smaller need that partly grows back while waiting: the wait goes on from
        // the first moment, with the need as it is now.
        let t1 = t0 + Duration::from_secs(10);
        assert_eq!(d.set(Need::Nothing, t1), None);
        assert_eq!(d.set(Need::UpTo(360), t1 + Duration::from_secs(1)), None);
        assert_eq!(d.poll(t1 + LOWER_AFTER), Some(Need::UpTo(360)));
    }

    #[test]
    fn what_was_told_is_told_again_when_asked() {
        let t0 = Instant::now();
        let mut d = Demand::default();
        assert_eq!(d.set(Need::UpTo(180), t0), None);
        assert_eq!(d.poll(t0 + LOWER_AFTER), Some(Need::UpTo(180)));
        // Unchanged: nothing, until a resend is asked for; then once.
        assert_eq!(d.set(Need::UpTo(180), t0 + LOWER_AFTER * 2), None);
        d.resend();
        assert_eq!(
            d.set(Need::UpTo(180), t0 + LOWER_AFTER * 2),
            Some(Need::UpTo(180))
        );
        assert_eq!(d.set(Need::UpTo(180), t0 + LOWER_AFTER * 2), None);
        // Asked while a smaller need waits: what was told now, the smaller one on time.
        let t1 = t0 + Duration::from_secs(20);
        assert_eq!(d.set(Need::Nothing, t1), None);
        d.resend();
        assert_eq!(d.poll(t1 + Duration::from_secs(1)), Some(Need::UpTo(180)));
        assert_eq!(d.poll(t1 + LOWER_AFTER), Some(Need::Nothing));
        // A member with no camera now: `poll` tells it too.
        d.resend();
        assert_eq!(d.poll(t1 + LOWER_AFTER * 2), Some(Need::Nothing));
        assert_eq!(d.poll(t1 + LOWER_AFTER * 2), None);
    }
}
