//! The media relay (SFU), on webrtc-rs's sans-IO core (`rtc`): the only module that
//! imports it.
//!
//! One UDP port carries all media. `engine` claims it for this process (`claim`: no
//! other process may share it), binds it once per worker thread (SO_REUSEPORT) and
//! starts the workers; each `worker` owns its socket and a share of
//! the connections, reads and writes in batches (the `mediaio` crate: recvmmsg / sendmmsg), routes
//! datagrams by source address (learned from the first authentic STUN binding request,
//! `stun`), drives each `conn`'s `rtc` state machine, and forwards RTP with its header
//! rewritten per subscriber, reading publishers' audio levels on the way (`levels`),
//! taking a simulcast layer's resends as the packets they resend (`layer_repair`) and
//! forwarding a packet sent twice once (`seen`);
//! a video its viewer does not show is not sent to it, and goes on gapless when shown
//! again (`seq_shift`); a camera sent in simulcast reaches each viewer as the one layer
//! that fits how large it shows it, switched at keyframes and renumbered so the viewer
//! sees one stream (`simulcast`), no larger than its link carries: each viewer's
//! transport-wide feedback moves it a layer down on congestion and up when quiet, and
//! pauses its video below the smallest (`bwe`); a publisher is told how large anyone
//! shows its camera, so it pauses the layers nobody needs (`demand`); a track other nodes' relays need is sent to each once, and one
//! from another node is received the same way, on the same port (`pipe`). A
//! `room` task per live session decides who receives what
//! and commands the workers (`wire`: the messages between the parts). The relay is
//! ICE-lite; each connection's ufrag names it on the shared port.
//!
//! Each member has two connections: one it publishes on (the client offers, we answer)
//! and one it receives on (we offer whenever the forwarded tracks change, the client
//! answers), so the two sides never offer at once (no glare). RTP is forwarded, never
//! decoded. `port` is the seam the session calls.

mod bwe;
mod claim;
mod config;
mod conn;
mod demand;
mod engine;
mod history;
mod layer_repair;
mod levels;
mod pc_setup;
mod pipe;
pub mod port;
pub mod quality;
mod read_step;
mod room;
mod seen;
mod seq_shift;
mod simulcast;
pub mod stats;
mod stun;
mod wire;
mod worker;

pub use config::{default_workers, SfuConfig, DEFAULT_CONSENT_TIMEOUT, DEFAULT_MEDIA_PORT};
pub use conn::{stream_id, track_id};
pub use pc_setup::{KeyframeRequests, KEYFRAME_SLOT};
pub use room::SfuFactory;
pub use worker::PLI_INTERVAL;
