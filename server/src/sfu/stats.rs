//! Live counts of the relay's resources, so tests can prove teardown frees them.

use std::sync::atomic::{AtomicUsize, Ordering};

pub struct Counter(AtomicUsize);

impl Counter {
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
    pub fn dec(&self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
    pub fn get(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

pub static PEERS: Counter = Counter(AtomicUsize::new(0));
/// Published tracks being read.
pub static TRACKS: Counter = Counter(AtomicUsize::new(0));
/// Per-subscriber sending tasks.
pub static SINKS: Counter = Counter(AtomicUsize::new(0));
/// Member tasks.
pub static MEMBERS: Counter = Counter(AtomicUsize::new(0));

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Counts {
    pub peers: usize,
    pub tracks: usize,
    pub sinks: usize,
    pub members: usize,
}

pub fn counts() -> Counts {
    Counts {
        peers: PEERS.get(),
        tracks: TRACKS.get(),
        sinks: SINKS.get(),
        members: MEMBERS.get(),
    }
}

/// Decrements on drop, so a task's count is right however it ends.
pub struct Held(&'static Counter);

impl Held {
    pub fn new(c: &'static Counter) -> Self {
        c.inc();
        Self(c)
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.0.dec();
    }
}
