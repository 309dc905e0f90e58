//! The call's logic as one plain-Rust state machine: its phase, which socket and which
//! peer connections are current (generations), the publish connection's offer/answer
//! turns, and when to reconnect or rejoin. No browser type, no timer, no clock: the
//! driver passes the time in and carries out what the answers say, so every rule here
//! is tested natively.

use crate::backoff::{self, Next};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Connecting,
    Connected,
    Reconnecting,
    Disconnected,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Connecting => "connecting",
            Phase::Connected => "connected",
            Phase::Reconnecting => "reconnecting",
            Phase::Disconnected => "disconnected",
        }
    }
}

/// The publish connection's negotiation: we offer, the server answers, one at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Offer {
    Idle,
    /// An offer awaits its answer; `again`: tracks changed meanwhile, offer once more.
    InFlight {
        again: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Reconnect {
    started_ms: f64,
    attempt: u32,
    /// Join afresh even within the grace (the media failed, not just the socket).
    fresh: bool,
}

/// What to do about a signaling socket that closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closed {
    /// Already over.
    Ignore,
    /// The first join never completed: ask the server why over HTTP, then fail the join.
    DiagnoseAndFail,
    /// Dropped while in the call: reconnecting now; the first attempt after `delay_ms`.
    Reconnect { delay_ms: u32 },
    /// A reconnect attempt was refused: ask why, then `diagnosed`.
    Diagnose,
    /// Dropped with reconnecting turned off.
    Finish,
}

/// What the next attempt is, when its timer fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    Resume,
    Rejoin,
    GiveUp,
    /// Not reconnecting any more (joined meanwhile, or left).
    Ignore,
}

/// Longest wait between rejoins caused by failing media connections: unlike a dropped
/// socket, a network that keeps failing ICE must not be retried in a tight loop.
pub const MEDIA_RETRY_CAP_MS: u32 = 16_000;

#[derive(Debug, Clone)]
pub struct Call {
    phase: Phase,
    auto_reconnect: bool,
    joined_once: bool,
    socket_gen: u64,
    pc_gen: u64,
    offer: Offer,
    reconnect: Option<Reconnect>,
    /// Media connections that failed in a row (reset once one connects).
    media_failures: u32,
}

impl Call {
    pub fn new(auto_reconnect: bool) -> Self {
        Self {
            phase: Phase::Connecting,
            auto_reconnect,
            joined_once: false,
            socket_gen: 0,
            pc_gen: 0,
            offer: Offer::Idle,
            reconnect: None,
            media_failures: 0,
        }
    }

    pub fn phase(&self) -> Phase {
        self.phase
    }

    pub fn is_over(&self) -> bool {
        self.phase == Phase::Disconnected
    }

    pub fn has_joined(&self) -> bool {
        self.joined_once
    }

    /// A new socket is being opened: events of older ones must be ignored.
    pub fn new_socket(&mut self) -> u64 {
        self.socket_gen += 1;
        self.socket_gen
    }

    pub fn is_current_socket(&self, gen: u64) -> bool {
        gen == self.socket_gen
    }

    pub fn pc_gen(&self) -> u64 {
        self.pc_gen
    }

    pub fn is_current_pc(&self, gen: u64) -> bool {
        gen == self.pc_gen
    }

    /// `joined` arrived. True when the media must start afresh: the first join, a join
    /// the server did not treat as a resume, or a resume that interrupted an offer.
    pub fn joined(&mut self, resumed: bool) -> bool {
        let first = !self.joined_once;
        self.joined_once = true;
        self.phase = Phase::Connected;
        self.reconnect = None;
        first || !resumed || self.offer != Offer::Idle
    }

    pub fn on_socket_closed(&mut self, now_ms: f64) -> Closed {
        match self.phase {
            Phase::Disconnected => Closed::Ignore,
            Phase::Connecting if !self.joined_once => Closed::DiagnoseAndFail,
            Phase::Connected if self.auto_reconnect => {
                let delay_ms = self.start_reconnect(now_ms, false);
                Closed::Reconnect { delay_ms }
            }
            Phase::Reconnecting => Closed::Diagnose,
            _ => Closed::Finish,
        }
    }

    /// After a refused reconnect was diagnosed: `None` to give up (a permanent
    /// refusal), else the delay before the next attempt.
    pub fn diagnosed(&mut self, permanent: bool) -> Option<u32> {
        if permanent {
            None
        } else {
            Some(self.next_delay())
        }
    }

    /// A peer connection failed while signaling still works: rejoin afresh (the server
    /// then drops the old connections), waiting longer each time it happens in a row.
    /// `None` when there is nothing to do (not connected, or reconnecting is off).
    pub fn media_failed(&mut self, now_ms: f64) -> Option<u32> {
        if self.phase != Phase::Connected || !self.auto_reconnect {
            return None;
        }
        self.new_socket();
        // 250 ms, doubling with each failure in a row, up to the cap.
        let wait = 250u32
            .saturating_mul(1 << self.media_failures.min(16))
            .min(MEDIA_RETRY_CAP_MS);
        self.media_failures += 1;
        self.start_reconnect(now_ms, true);
        Some(wait)
    }

    /// A media connection reached `connected`: failures in a row start over.
    pub fn media_connected(&mut self) {
        self.media_failures = 0;
    }

    fn start_reconnect(&mut self, now_ms: f64, fresh: bool) -> u32 {
        self.phase = Phase::Reconnecting;
        self.reconnect = Some(Reconnect {
            started_ms: now_ms,
            attempt: 0,
            fresh,
        });
        self.next_delay()
    }

    /// The delay before the next attempt (growing with each).
    pub fn next_delay(&mut self) -> u32 {
        match self.reconnect.as_mut() {
            Some(r) => {
                let d = backoff::delay_ms(r.attempt);
                r.attempt += 1;
                d
            }
            None => 0,
        }
    }

    /// A retry timer fired.
    pub fn attempt(&self, now_ms: f64, grace_seconds: u32) -> Attempt {
        if self.phase != Phase::Reconnecting {
            return Attempt::Ignore;
        }
        let Some(r) = &self.reconnect else {
            return Attempt::Ignore;
        };
        match backoff::next(now_ms - r.started_ms, grace_seconds) {
            Next::Resume if r.fresh => Attempt::Rejoin,
            Next::Resume => Attempt::Resume,
            Next::Rejoin => Attempt::Rejoin,
            Next::GiveUp => Attempt::GiveUp,
        }
    }

    /// Local tracks changed: `Some(gen)` when an offer should be made now on the
    /// publish connection of generation `gen`, `None` when one is in flight (it is
    /// made again once answered).
    pub fn want_offer(&mut self) -> Option<u64> {
        match &mut self.offer {
            Offer::InFlight { again } => {
                *again = true;
                None
            }
            Offer::Idle => {
                self.offer = Offer::InFlight { again: false };
                Some(self.pc_gen)
            }
        }
    }

    /// Making the offer failed: the turn is over.
    pub fn offer_failed(&mut self, gen: u64) {
        if gen == self.pc_gen {
            self.offer = Offer::Idle;
        }
    }

    /// The server answered our offer; true when another offer is due now.
    pub fn answered(&mut self) -> bool {
        let again = matches!(self.offer, Offer::InFlight { again: true });
        self.offer = Offer::Idle;
        again
    }

    /// The peer connections are dropped (new ones follow): a new generation, no offer
    /// in flight.
    pub fn reset_media(&mut self) -> u64 {
        self.pc_gen += 1;
        self.offer = Offer::Idle;
        self.pc_gen
    }

    /// The call is over. False when it already was.
    pub fn finish(&mut self) -> bool {
        if self.phase == Phase::Disconnected {
            return false;
        }
        self.phase = Phase::Disconnected;
        self.reconnect = None;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offers_take_turns_and_changes_meanwhile_offer_again() {
        let mut c = Call::new(true);
        c.joined(false);
        let gen = c.want_offer().expect("the first offer goes out");
        assert_eq!(c.want_offer(), None, "one at a time");
        assert_eq!(c.want_offer(), None);
        assert!(c.answered(), "tracks changed meanwhile: offer again");
        assert_eq!(c.want_offer(), Some(gen));
        assert!(!c.answered());
        assert_eq!(c.want_offer(), Some(gen));
        c.offer_failed(gen);
        assert_eq!(c.want_offer(), Some(gen), "a failed offer ends the turn");
    }

    #[test]
    fn new_connections_start_a_new_generation_with_no_offer_in_flight() {
        let mut c = Call::new(true);
        c.joined(false);
        let old = c.want_offer().unwrap();
        let new = c.reset_media();
        assert_ne!(old, new);
        assert!(!c.is_current_pc(old));
        c.offer_failed(old); // a late failure of the old connection changes nothing
        assert_eq!(c.want_offer(), Some(new));
    }

    #[test]
    fn a_resume_restarts_media_only_when_needed() {
        let mut c = Call::new(true);
        assert!(c.joined(false), "first join");
        assert!(!c.joined(true), "a clean resume keeps the connections");
        assert!(c.joined(false), "not resumed: the server dropped our media");
        c.want_offer();
        assert!(c.joined(true), "a resume during an offer starts over");
    }

    #[test]
    fn a_dropped_socket_resumes_then_rejoins_then_gives_up() {
        let mut c = Call::new(true);
        assert_eq!(c.on_socket_closed(0.0), Closed::DiagnoseAndFail);
        c.joined(false);
        assert_eq!(
            c.on_socket_closed(1000.0),
            Closed::Reconnect { delay_ms: 0 }
        );
        assert_eq!(c.phase(), Phase::Reconnecting);
        assert_eq!(c.attempt(1000.0, 15), Attempt::Resume);
        // The attempt's socket closes too: diagnose, then wait longer each time.
        assert_eq!(c.on_socket_closed(1100.0), Closed::Diagnose);
        assert_eq!(c.diagnosed(false), Some(250));
        assert_eq!(c.diagnosed(false), Some(500));
        assert_eq!(c.diagnosed(true), None);
        assert_eq!(c.attempt(17_000.0, 15), Attempt::Rejoin);
        assert_eq!(c.attempt(61_000.0, 15), Attempt::GiveUp);
        assert!(!c.joined(true));
        assert_eq!(c.attempt(62_000.0, 15), Attempt::Ignore);
    }

    #[test]
    fn without_reconnect_a_drop_ends_the_call() {
        let mut c = Call::new(false);
        c.joined(false);
        assert_eq!(c.on_socket_closed(0.0), Closed::Finish);
        assert_eq!(c.media_failed(0.0), None);
        assert!(c.finish());
        assert!(!c.finish());
        assert_eq!(c.on_socket_closed(0.0), Closed::Ignore);
    }

    #[test]
    fn failing_media_rejoins_with_a_growing_wait_until_media_connects() {
        let mut c = Call::new(true);
        let mut waits = vec![];
        for _ in 0..12 {
            c.joined(false);
            let socket = c.socket_gen;
            waits.push(c.media_failed(0.0).expect("rejoins"));
            assert_ne!(c.socket_gen, socket, "the old socket is dropped");
            assert_eq!(c.attempt(0.0, 15), Attempt::Rejoin, "never a resume");
        }
        assert!(waits.windows(2).all(|w| w[0] <= w[1]), "{waits:?}");
        assert_eq!(*waits.last().unwrap(), MEDIA_RETRY_CAP_MS);
        // In 30 s of constant failure, at most a handful of rejoins.
        let mut t = 0u32;
        let rejoins = waits.iter().take_while(|w| {
            t += **w;
            t <= 30_000
        });
        assert!(rejoins.count() <= 8, "{waits:?}");
        c.joined(false);
        c.media_connected();
        assert_eq!(
            c.media_failed(0.0),
            Some(250),
            "after a success it starts over"
        );
    }
}
