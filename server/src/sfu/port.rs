//! The seam between a live session and the media relay. The session decides who may
//! publish what and tells the relay; the relay reports what it sends and what members
//! publish. No WebRTC type crosses this boundary, so the session stays testable
//! without a media stack. It lives here, below `rooms`, so that layers point one way:
//! `rooms` calls this port, and the relay never imports `rooms`.

use std::net::SocketAddr;

use crate::model::ice::IceConfig;
use convene_protocol::signal::{PcKind, ServerMessage};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

pub use super::pc_setup::Codec;

use crate::ids::{RoomId, UserId};
pub use crate::model::MediaKind;

/// Media negotiation from a member's client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "signal", rename_all = "camelCase")]
pub enum MediaSignal {
    Offer {
        pc: PcKind,
        sdp: String,
        /// Browser track ids of the offered screen shares.
        screen_track_ids: Vec<String>,
    },
    Answer {
        pc: PcKind,
        sdp: String,
    },
    Candidate {
        pc: PcKind,
        candidate: String,
        sdp_mid: Option<String>,
        sdp_m_line_index: Option<u16>,
    },
}

impl MediaSignal {
    pub fn pc(&self) -> PcKind {
        match self {
            Self::Offer { pc, .. } | Self::Answer { pc, .. } | Self::Candidate { pc, .. } => *pc,
        }
    }
}

/// What the relay tells the session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "camelCase")]
pub enum MediaEvent {
    /// A frame for one member (offers, answers, candidates, errors).
    Send { to: UserId, msg: Box<ServerMessage> },
    /// A member started or stopped sending a track of this kind.
    Published {
        member: UserId,
        kind: MediaKind,
        on: bool,
    },
    /// The loudest audio level in a member's recent packets, in -dBov (RFC 6464: 0 is
    /// the loudest, 127 silence); sent when it changes noticeably.
    AudioLevel { member: UserId, dbov: u8 },
    /// How one of a member's two connections did over the last window: its uplink
    /// (`Publish`) or its downlink (`Subscribe`).
    LinkQuality {
        member: UserId,
        pc: PcKind,
        window: crate::sfu::quality::LinkWindow,
    },
    /// Between the relays of one session on several nodes: for the session's driver,
    /// which carries it between nodes; the session core ignores it.
    Relay { relay: RelayEvent },
}

/// A session on several nodes has a relay on each node with members that receive
/// media: the home's receives every publisher (a member's publish connection goes
/// to the home, whichever node its socket is on) and sends to the members that
/// subscribed there; each other node's relay sends to the members that subscribed
/// there, and receives each track it needs from the home once, however many members
/// there watch it (a pipe, see `sfu::pipe`), while one of them shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "camelCase")]
pub enum RelayEvent {
    /// From the home's relay: the tracks other nodes offer their members now.
    Tracks { tracks: Vec<SharedTrack> },
    /// From another node's relay: send `track` to it through `pipe` (or stop).
    Pipe(PipeRequest),
    /// From another node: a subscription for `member` found the room gone there (its
    /// last socket there went meanwhile).
    NotReceiving { member: UserId },
}

/// A track the home's relay receives, as other nodes' relays offer it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SharedTrack {
    /// Its number in the home's relay.
    pub id: u64,
    pub owner: UserId,
    pub kind: MediaKind,
    pub codec: Codec,
    /// Where its pipes come from (and keyframe requests go).
    pub from: SocketAddr,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PipeRequest {
    /// The track's number in the home's relay.
    pub track: u64,
    /// The asking relay's address.
    pub to: SocketAddr,
    pub pipe: u64,
    pub on: bool,
}

/// What a session's home tells the relay of another node about that node's members.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "camelCase")]
pub enum RelayCmd {
    /// Negotiation on the member's subscribe connection.
    Signal {
        member: UserId,
        msg: MediaSignal,
    },
    Subscribe {
        member: UserId,
    },
    #[serde(rename_all = "camelCase")]
    Viewing {
        viewer: UserId,
        owner: UserId,
        kind: MediaKind,
        shown: bool,
    },
    #[serde(rename_all = "camelCase")]
    FitVideo {
        viewer: UserId,
        owner: UserId,
        height: u32,
    },
    Remove {
        member: UserId,
    },
    /// The tracks to offer (`RelayEvent::Tracks` from the home's relay).
    Tracks {
        tracks: Vec<SharedTrack>,
    },
}

/// Which of a member's tracks may be forwarded now (its role allows it and it has not
/// muted or been muted).
pub type Gates = crate::model::MediaSet;

/// One session's media relay. Calls return at once; work happens in the relay's
/// own tasks, and results come back as `MediaEvent`s.
pub trait RoomMedia: Send {
    /// `may_publish`: whether the member's role lets it publish anything at all.
    fn signal(&mut self, member: &UserId, may_publish: bool, msg: MediaSignal);
    /// The member wants to receive: offer it every track of the others, now and later.
    fn subscribe(&mut self, member: &UserId);
    fn set_gates(&mut self, member: &UserId, gates: Gates);
    /// Whether `viewer` shows `owner`'s track of `kind` now: one not shown is not sent
    /// to it (and a keyframe is asked for when it is shown again).
    fn set_viewing(&mut self, viewer: &UserId, owner: &UserId, kind: MediaKind, shown: bool);
    /// How tall `viewer` shows `owner`'s camera, in device pixels: of one sent in
    /// simulcast, the smallest layer at least that tall is sent to it.
    fn fit_video(&mut self, viewer: &UserId, owner: &UserId, height: u32);
    fn remove_member(&mut self, member: &UserId);
    /// Closes every connection; the relay is unusable afterwards.
    fn close(&mut self);
    /// On a node other than the session's home: the home's tracks to offer this node's
    /// members (all of them, each time they change).
    fn remote_tracks(&mut self, _tracks: Vec<SharedTrack>) {}
    /// On the home: another node's relay asks for a track, or is done with it.
    fn pipe(&mut self, _req: PipeRequest) {}
    /// On the home: another node's relay is gone; stop every pipe to it.
    fn drop_pipes(&mut self, _to: SocketAddr) {}
}

pub trait MediaFactory: Send + Sync + 'static {
    fn create(
        &self,
        room: &RoomId,
        events: mpsc::UnboundedSender<MediaEvent>,
    ) -> Box<dyn RoomMedia>;
    /// The STUN/TURN servers clients are handed in `joined` (with per-member TURN
    /// credentials when a secret is configured).
    fn ice(&self) -> IceConfig;
}
