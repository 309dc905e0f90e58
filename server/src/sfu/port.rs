//! The seam between a live session and the media relay. The session decides who may
//! publish what and tells the relay; the relay reports what it sends and what members
//! publish. No WebRTC type crosses this boundary, so the session stays testable
//! without a media stack. It lives here, below `rooms`, so that layers point one way:
//! `rooms` calls this port, and the relay never imports `rooms`.

use crate::model::ice::IceConfig;
use convene_protocol::signal::{PcKind, ServerMessage};
use tokio::sync::mpsc;

use crate::ids::{RoomId, UserId};
pub use crate::model::MediaKind;

/// Media negotiation from a member's client.
#[derive(Debug, Clone, PartialEq)]
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

/// What the relay tells the session.
#[derive(Debug, Clone)]
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
    fn remove_member(&mut self, member: &UserId);
    /// Closes every connection; the relay is unusable afterwards.
    fn close(&mut self);
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
