//! The media relay (SFU), the only module that imports webrtc-rs.
//!
//! Each member has two peer connections: one it publishes on (the client offers, we
//! answer) and one it receives on (we offer whenever the forwarded tracks change, the
//! client answers). Two connections instead of one with renegotiation both ways means
//! the two sides never make offers at the same time (no glare), and a publisher's
//! renegotiation never disturbs what it receives. RTP is forwarded as it came, with
//! only SSRC, payload type and header extensions rewritten per subscriber; it is never
//! decoded.

mod config;
mod forward;
mod member;
mod peer;
pub mod port;
mod room;
pub mod stats;

pub use config::SfuConfig;
pub use member::{stream_id, track_id};
pub use peer::{KeyframeRequests, KEYFRAME_SLOT};
pub use room::SfuFactory;
