//! Live counts of the relay's resources and what it dropped, so tests can prove teardown
//! frees everything and operators can see why packets went nowhere.

use std::sync::atomic::{AtomicUsize, Ordering};

pub struct Counter(AtomicUsize);

impl Counter {
    const fn new() -> Self {
        Self(AtomicUsize::new(0))
    }
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
    pub fn add(&self, n: usize) {
        if n > 0 {
            self.0.fetch_add(n, Ordering::Relaxed);
        }
    }
    pub fn dec(&self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
    pub fn sub(&self, n: usize) {
        if n > 0 {
            self.0.fetch_sub(n, Ordering::Relaxed);
        }
    }
    pub fn get(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }
}

/// Peer connections open.
pub static PEERS: Counter = Counter::new();
/// Published tracks arriving.
pub static TRACKS: Counter = Counter::new();
/// Tracks sent to a subscriber (one per subscriber per track).
pub static SINKS: Counter = Counter::new();
/// Members the relay holds state for.
pub static MEMBERS: Counter = Counter::new();

/// RTP packets written to subscribers.
pub static FORWARDED: Counter = Counter::new();
/// RTP payload bytes written to subscribers.
pub static FORWARDED_BYTES: Counter = Counter::new();
/// Of those, encrypted by the relay itself (the rest went through rtc's pipeline).
pub static FORWARDED_FAST: Counter = Counter::new();
/// NACKs (RTCP generic NACK packets) received from subscribers.
pub static NACKS_RECEIVED: Counter = Counter::new();
/// Packets resent to subscribers over RTX, answering their NACKs.
pub static RETRANSMITTED: Counter = Counter::new();
/// Packets subscribers NACKed that could not be resent: no longer kept, or the
/// subscriber took no repair stream.
pub static RETRANSMIT_MISSED: Counter = Counter::new();
/// Keyframe requests sent to publishers (after throttling).
pub static KEYFRAME_REQUESTS: Counter = Counter::new();
/// Datagrams from an unknown address that were not a binding request.
pub static DROPPED_UNROUTABLE: Counter = Counter::new();
/// Binding requests naming a ufrag no connection has.
pub static DROPPED_UNKNOWN_UFRAG: Counter = Counter::new();
/// Binding requests whose MESSAGE-INTEGRITY failed.
pub static DROPPED_UNAUTHENTICATED: Counter = Counter::new();
/// Connections whose own SRTP did not match rtc's on a first packet (kept on rtc's
/// path). Should stay 0.
pub static FAST_PATH_REFUSED: Counter = Counter::new();
/// Datagrams not sent because the socket's buffer was full.
pub static SEND_DROPPED: Counter = Counter::new();
/// Tracks this relay sends to other nodes' relays (one pipe per track per node).
pub static PIPES_OUT: Counter = Counter::new();
/// Tracks this relay receives from another node's relay.
pub static PIPES_IN: Counter = Counter::new();
/// Packets sent to other nodes' relays.
pub static PIPE_SENT: Counter = Counter::new();
/// Packets received from other nodes' relays.
pub static PIPE_RECEIVED: Counter = Counter::new();
/// Pipe datagrams for no open pipe here (closed a moment ago) or malformed.
pub static PIPE_DROPPED: Counter = Counter::new();
/// Encodings arriving of tracks sent in simulcast (a camera in three layers counts 3).
pub static SIMULCAST_LAYERS: Counter = Counter::new();
/// Publishers' resends of a simulcast layer's packets taken (see `layer_repair`).
pub static LAYER_RESENDS_TAKEN: Counter = Counter::new();
/// Viewers' connections whose link carries no video now (see `bwe`).
pub static LINKS_PAUSED: Counter = Counter::new();
/// Viewers' connections whose link carries less than every layer now (paused included).
pub static LINKS_REDUCED: Counter = Counter::new();
/// Times a viewer's link estimate moved it a layer up or down.
pub static LINK_STEPS: Counter = Counter::new();
/// Times a viewer was switched to another simulcast layer (at its keyframe).
pub static LAYER_SWITCHES: Counter = Counter::new();
/// Publishers' packets that came a second time (resent as bandwidth probes): not
/// forwarded.
pub static DROPPED_DUPLICATE: Counter = Counter::new();
/// Publishers' packets in another codec than their stream began with (not forwarded).
pub static DROPPED_CODEC_CHANGE: Counter = Counter::new();

/// Every number above for the metrics endpoint: (what, value, is_counter).
pub fn all() -> Vec<(&'static str, u64, bool)> {
    let c = |what, v: &Counter| (what, v.get() as u64, true);
    let g = |what, v: &Counter| (what, v.get() as u64, false);
    vec![
        c("forwarded_packets", &FORWARDED),
        c("forwarded_payload_bytes", &FORWARDED_BYTES),
        c("forwarded_fast_packets", &FORWARDED_FAST),
        c("keyframe_requests", &KEYFRAME_REQUESTS),
        c("nacks_received", &NACKS_RECEIVED),
        c("retransmitted_packets", &RETRANSMITTED),
        c("retransmit_missed_packets", &RETRANSMIT_MISSED),
        c("dropped_unroutable", &DROPPED_UNROUTABLE),
        c("dropped_unknown_ufrag", &DROPPED_UNKNOWN_UFRAG),
        c("dropped_unauthenticated", &DROPPED_UNAUTHENTICATED),
        c("dropped_send_buffer_full", &SEND_DROPPED),
        c("dropped_codec_change", &DROPPED_CODEC_CHANGE),
        c("dropped_duplicate", &DROPPED_DUPLICATE),
        c("fast_path_refused", &FAST_PATH_REFUSED),
        c("pipe_sent_packets", &PIPE_SENT),
        c("pipe_received_packets", &PIPE_RECEIVED),
        c("pipe_dropped_datagrams", &PIPE_DROPPED),
        c("layer_switches", &LAYER_SWITCHES),
        c("layer_resends_taken", &LAYER_RESENDS_TAKEN),
        g("simulcast_layers", &SIMULCAST_LAYERS),
        c("link_steps", &LINK_STEPS),
        g("links_paused", &LINKS_PAUSED),
        g("links_reduced", &LINKS_REDUCED),
        g("pipes_out", &PIPES_OUT),
        g("pipes_in", &PIPES_IN),
        g("peer_connections", &PEERS),
        g("tracks", &TRACKS),
        g("subscriber_streams", &SINKS),
        g("members", &MEMBERS),
    ]
}

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

/// Decrements on drop, so a holder's count is right however it ends.
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
