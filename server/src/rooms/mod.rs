//! The room domain: the rules (window, settings, admission) and live sessions.
//!
//! - `session/`: one live session as a sans-IO core (`handle(input, now)`,
//!   `poll_output()`, `poll_timeout()`), with no socket, task or clock inside.
//! - `driver`: the thin task that runs one session core, and `delivery`, its queues;
//!   `relays`, its media relays when its members are on several nodes.
//! - `registry`: the live sessions of this server (`LiveRooms`), started on first join.
//! - `remote`: members whose socket is on another node; `delivery` sends their frames
//!   one copy per node, and on that node hands them to the members' queues.
//! - `admission`: who may join, as a pure function of what the edge read.
//! - `settings`, `validity`: limits on a room's options and window.
//!
//! Layers point one way: the edge (`http`, `signal`) calls in here; this module calls
//! `store` and the media relay's port (`sfu::port`) and never the edge. The records it
//! shares with the store live in `model`.

pub mod admission;
pub mod delivery;
mod driver;
pub mod member_event;
pub mod outbound;
pub mod registry;
mod relays;
pub mod remote;
pub mod session;
pub mod settings;
pub mod validity;

pub use crate::model::{JoinPolicy, Role, Room, RosterEntry, RuleError};
pub use registry::{JoinError, LiveRooms, SessionSummary};
