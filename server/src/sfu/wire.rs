//! The messages between the parts of the relay: rooms (tokio tasks) command the worker
//! threads that own the connections, workers hand each other packets and stray
//! datagrams, and tell the rooms what happened. Plain data; no part reaches into
//! another's state.

use std::net::{IpAddr, SocketAddr};

use bytes::BytesMut;
use convene_protocol::signal::PcKind;
use rtc::rtp;
use tokio::sync::mpsc::UnboundedSender;

use super::pc_setup::Codec;
use super::port::MediaKind;
use crate::ids::UserId;

/// Which worker owns a connection, and where in its table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnKey {
    pub worker: u16,
    pub id: u64,
}

/// A published track, unique across the relay.
pub type TrackKey = u64;

/// What a room tells a worker (and what workers tell each other).
pub enum Cmd {
    /// Create a connection for `user`'s `role` leg with these ICE credentials.
    Open {
        key: ConnKey,
        user: UserId,
        role: PcKind,
        ufrag: String,
        pwd: String,
        events: UnboundedSender<ConnEvent>,
    },
    /// The client's offer on its publish connection (answered with `ConnEvent::Answer`).
    Offer {
        key: ConnKey,
        sdp: String,
        screen_ids: Vec<String>,
    },
    /// The client's answer on its subscribe connection.
    Answer {
        key: ConnKey,
        sdp: String,
    },
    /// Start sending `track` (published by `owner` on `source`'s worker) on this
    /// subscribe connection.
    AddLeg {
        key: ConnKey,
        track: TrackKey,
        kind: MediaKind,
        codec: Codec,
        owner: UserId,
        source: ConnKey,
        /// Its viewer does not show it now (see `Pause`).
        paused: bool,
        /// Video: how tall its viewer shows it (see `Fit`).
        max_height: Option<u32>,
    },
    /// Of a track sent in simulcast, send this subscribe connection the smallest layer
    /// at least `max_height` device pixels tall (`None`: the largest).
    Fit {
        key: ConnKey,
        track: TrackKey,
        max_height: Option<u32>,
    },
    /// Stop or resume sending `track` on this subscribe connection (its viewer hides or
    /// shows it); resuming asks the publisher for a keyframe.
    Pause {
        key: ConnKey,
        track: TrackKey,
        paused: bool,
    },
    RemoveLeg {
        key: ConnKey,
        track: TrackKey,
    },
    /// On the track's source worker (its publisher's, or its pipe's): also hand
    /// `track`'s packets to `worker` (or stop).
    Fanout {
        track: TrackKey,
        kind: MediaKind,
        worker: u16,
        add: bool,
    },
    /// On the publisher's worker: whether `track` may be forwarded.
    Gate {
        track: TrackKey,
        open: bool,
    },
    Close {
        key: ConnKey,
    },
    /// Receive `track` from another node's relay (at `from`) through `pipe`: this
    /// worker is its source here (see `pipe`).
    Import {
        track: TrackKey,
        kind: MediaKind,
        pipe: u64,
        from: SocketAddr,
    },
    /// Stop receiving through `pipe`.
    Unimport {
        track: TrackKey,
        pipe: u64,
    },
    /// On the publisher's worker: also send `track` to another node's relay at `to`
    /// through `pipe` (or stop).
    Export {
        track: TrackKey,
        to: SocketAddr,
        pipe: u64,
        on: bool,
    },
    /// From another worker: packets of tracks with subscribers here.
    Forward(Vec<(TrackKey, u8, rtp::Packet)>),
    /// From another worker: a subscriber of `track` needs a keyframe.
    Keyframe(TrackKey),
    /// From another worker: datagrams its socket received for connections owned here.
    Datagrams(Vec<Stray>),
    /// From another worker: datagrams from `addr` belong to a connection of `worker`.
    Route {
        addr: SocketAddr,
        worker: Option<u16>,
    },
    Shutdown,
}

/// A datagram that reached the wrong worker's socket.
pub struct Stray {
    pub src: SocketAddr,
    pub dst_ip: Option<IpAddr>,
    pub data: BytesMut,
    /// The worker whose socket received it (told where the address belongs).
    pub from: u16,
}

/// What a worker tells the room that owns a connection.
#[derive(Debug)]
pub enum ConnEvent {
    /// The answer to the client's offer on its publish connection.
    Answer { user: UserId, sdp: String },
    /// An offer for the client's subscribe connection.
    Offer { user: UserId, sdp: String },
    /// The client started sending a track.
    Published {
        user: UserId,
        track: TrackKey,
        kind: MediaKind,
        codec: Codec,
        source: ConnKey,
    },
    /// The loudest audio level of the client's recent audio (see `levels`).
    AudioLevel {
        user: UserId,
        dbov: u8,
        source: ConnKey,
    },
    /// How the connection's link did over the last window (see `quality`).
    Quality {
        user: UserId,
        source: ConnKey,
        window: super::quality::LinkWindow,
    },
    /// The connection failed (consent expired, DTLS closed) and was closed.
    Failed { user: UserId, role: PcKind },
    /// A request could not be carried out (shown to the client as an error).
    Refused { user: UserId, message: String },
    /// The client's answer left out the codec of tracks sent to it: it gets their
    /// packets but cannot play them.
    Unplayable {
        user: UserId,
        source: ConnKey,
        codecs: Vec<Codec>,
    },
    /// The subscribe connection's link can carry no video now, or can again: these
    /// video tracks stopped or resumed.
    LinkPaused {
        user: UserId,
        source: ConnKey,
        tracks: Vec<TrackKey>,
        paused: bool,
    },
}
