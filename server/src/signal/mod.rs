//! The signaling WebSocket, `GET /v1/rtc?token=...[&resume=...]`. Every check (token,
//! invitation, policy, window, capacity) runs before the upgrade, so a refused join is
//! a plain HTTP error with the envelope; after it, this module only moves frames
//! between the socket and the room's session.

mod admission;
mod socket;

pub use admission::rtc;
