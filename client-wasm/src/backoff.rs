//! When to try again after the signaling connection drops. Within the server's resume
//! grace the member is kept and a reconnect is invisible to others; after it, a fresh
//! join still beats giving up, until the reconnect budget runs out.

/// How long reconnecting may take in all before the SDK gives up.
pub const RECONNECT_BUDGET_MS: f64 = 60_000.0;

/// Delay before attempt `n` (0-based): at once, then doubling from 250 ms to 4 s.
pub fn delay_ms(attempt: u32) -> u32 {
    match attempt {
        0 => 0,
        n => 250u32.saturating_mul(1 << (n - 1).min(4)),
    }
}

/// What the next attempt should be, `elapsed_ms` after the drop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Take the kept member back over: others see nothing.
    Resume,
    /// The grace is over and the server has let the member go: join afresh.
    Rejoin,
    GiveUp,
}

pub fn next(elapsed_ms: f64, grace_seconds: u32) -> Next {
    if elapsed_ms >= RECONNECT_BUDGET_MS {
        Next::GiveUp
    } else if elapsed_ms < f64::from(grace_seconds) * 1000.0 {
        Next::Resume
    } else {
        Next::Rejoin
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_and_cap() {
        let d: Vec<u32> = (0..8).map(delay_ms).collect();
        assert_eq!(d, [0, 250, 500, 1000, 2000, 4000, 4000, 4000]);
        assert_eq!(delay_ms(u32::MAX), 4000);
    }

    #[test]
    fn resume_within_grace_then_rejoin_then_give_up() {
        assert_eq!(next(0.0, 15), Next::Resume);
        assert_eq!(next(14_999.0, 15), Next::Resume);
        assert_eq!(next(15_000.0, 15), Next::Rejoin);
        assert_eq!(next(0.0, 0), Next::Rejoin);
        assert_eq!(next(RECONNECT_BUDGET_MS, 15), Next::GiveUp);
    }
}
