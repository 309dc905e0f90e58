//! One token bucket, used wherever Convene limits a rate: chat messages and signaling
//! commands per member, failed admin-key attempts per source address. Plain data that
//! takes the time as an argument, so limits are tested without sleeping.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// Most tokens held at once: the burst allowed after a quiet spell.
    pub burst: f64,
    /// Tokens added per second.
    pub per_second: f64,
}

impl Rate {
    pub const fn new(burst: f64, per_second: f64) -> Self {
        Self { burst, per_second }
    }
}

#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: Rate,
    tokens: f64,
    at: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(rate: Rate, now: Instant) -> Self {
        Self {
            rate,
            tokens: rate.burst,
            at: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate.per_second).min(self.rate.burst);
        // Never move backwards: an older `now` must not refill twice later.
        if now > self.at {
            self.at = now;
        }
    }

    /// Takes `cost` tokens if there are that many; false (and nothing taken) otherwise.
    pub fn try_take(&mut self, cost: f64, now: Instant) -> bool {
        self.refill(now);
        if self.tokens >= cost {
            self.tokens -= cost;
            true
        } else {
            false
        }
    }

    pub fn take(&mut self, now: Instant) -> bool {
        self.try_take(1.0, now)
    }

    /// How long until `cost` tokens are there (zero when they are now).
    pub fn wait_for(&mut self, cost: f64, now: Instant) -> Duration {
        self.refill(now);
        let missing = cost - self.tokens;
        if missing <= 0.0 || self.rate.per_second <= 0.0 {
            return Duration::ZERO;
        }
        Duration::from_secs_f64(missing / self.rate.per_second)
    }

    /// True when the bucket is full again at `now`: nothing has been spent lately, so a
    /// keyed limiter may forget it.
    pub fn is_full(&mut self, now: Instant) -> bool {
        self.refill(now);
        self.tokens >= self.rate.burst
    }
}

/// A token bucket per key (e.g. per source address), for things that cost something
/// only when they fail (a wrong admin key). The map is bounded: past `max_keys`, buckets
/// that have refilled are forgotten, and if none has, new keys are refused as if empty.
pub struct KeyedLimiter<K> {
    rate: Rate,
    max_keys: usize,
    // A std Mutex: held for one map operation, never across an await.
    buckets: Mutex<HashMap<K, TokenBucket>>,
}

impl<K: Hash + Eq + Clone> KeyedLimiter<K> {
    pub fn new(rate: Rate, max_keys: usize) -> Self {
        Self {
            rate,
            max_keys,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<K, TokenBucket>> {
        self.buckets.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `Err(wait)` when `key` has no token left: it must wait that long.
    pub fn check(&self, key: &K, now: Instant) -> Result<(), Duration> {
        match self.lock().get_mut(key) {
            Some(b) => match b.wait_for(1.0, now) {
                d if d.is_zero() => Ok(()),
                d => Err(d),
            },
            None => Ok(()),
        }
    }

    /// Takes a token from `key`'s bucket; `Err(wait)` when there was none.
    pub fn charge(&self, key: &K, now: Instant) -> Result<(), Duration> {
        let mut m = self.lock();
        if !m.contains_key(key) && m.len() >= self.max_keys {
            m.retain(|_, b| !b.is_full(now));
            if m.len() >= self.max_keys {
                return Err(Duration::from_secs_f64(
                    1.0 / self.rate.per_second.max(1e-9),
                ));
            }
        }
        let b = m
            .entry(key.clone())
            .or_insert_with(|| TokenBucket::new(self.rate, now));
        if b.take(now) {
            Ok(())
        } else {
            Err(b.wait_for(1.0, now))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_steady_rate() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(Rate::new(10.0, 5.0), t0);
        assert_eq!((0..11).filter(|_| b.take(t0)).count(), 10);
        // 400 ms at 5 per second: two more.
        let t1 = t0 + Duration::from_millis(400);
        assert_eq!((0..3).filter(|_| b.take(t1)).count(), 2);
        assert_eq!(b.wait_for(1.0, t1), Duration::from_millis(200));
        assert!(!b.is_full(t1));
        assert!(b.is_full(t1 + Duration::from_secs(2)));
    }

    #[test]
    fn expensive_requests_cost_more() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(Rate::new(4.0, 1.0), t0);
        assert!(b.try_take(3.0, t0));
        assert!(
            !b.try_take(3.0, t0),
            "nothing is taken when there is not enough"
        );
        assert!(b.take(t0));
    }

    #[test]
    fn keyed_limits_are_per_key_and_bounded() {
        let t0 = Instant::now();
        let l = KeyedLimiter::new(Rate::new(2.0, 0.5), 2);
        assert!(l.charge(&"a", t0).is_ok());
        assert!(l.charge(&"a", t0).is_ok());
        assert_eq!(l.charge(&"a", t0), Err(Duration::from_secs(2)));
        assert_eq!(l.check(&"a", t0), Err(Duration::from_secs(2)));
        assert!(l.check(&"b", t0).is_ok(), "another key is untouched");
        assert!(l.charge(&"b", t0).is_ok());
        // Full: a third key is refused until a bucket has refilled...
        assert!(l.charge(&"c", t0).is_err());
        // ...and then forgotten to make room.
        assert!(l.charge(&"c", t0 + Duration::from_secs(10)).is_ok());
        assert!(l.check(&"a", t0 + Duration::from_secs(2)).is_ok());
    }

    #[test]
    fn an_earlier_instant_does_not_refill_twice() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(Rate::new(1.0, 1.0), t0);
        let t1 = t0 + Duration::from_secs(1);
        assert!(b.take(t1));
        assert!(!b.take(t0), "time running backwards gives nothing");
        assert!(!b.take(t1));
    }
}
