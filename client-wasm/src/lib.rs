//! Convene browser SDK: join an invite-only Convene room from a web page.
//!
//! ```js
//! import init, { Room } from "convene-sdk";
//! await init();
//! const room = await Room.join({ url: "https://calls.example.com", token });
//! room.on("trackAdded", ({ kind, stream }) => { /* attach to <video> or <audio> */ });
//! ```
//!
//! Layout: the call's logic is plain Rust, tested natively and in the browser: `call`
//! (the state machine: phase, generations, offer turns, reconnects), `roster`, `naming`,
//! `backoff`, `candidates`, `codecs` (the video codec asked for), `simulcast` (the
//! camera's layers), `endpoint`, `errors`. The browser parts only build for wasm32 and carry
//! out what it decides: `driver` (the one task that owns the call), `incoming` (what each server
//! message does), `socket`, `peer`,
//! `media`, `local_media`, `local_tracks`, `reconnect`, `check` (the join check), `options` (reading `Room.join`'s and `Room.check`'s options), and `room` (the JS class, which
//! only reads the driver's view and sends it inputs) with `live` (its seats, attributes
//! and room switching).

pub mod backoff;
pub mod call;
pub mod candidates;
pub mod codecs;
pub mod endpoint;
pub mod errors;
pub mod event_names;
#[cfg(target_arch = "wasm32")]
pub mod handle;
pub mod naming;
pub mod roster;
pub mod simulcast;

#[cfg(target_arch = "wasm32")]
mod check;
#[cfg(target_arch = "wasm32")]
mod driver;
#[cfg(target_arch = "wasm32")]
mod events;
#[cfg(target_arch = "wasm32")]
mod incoming;
#[cfg(target_arch = "wasm32")]
mod live;
#[cfg(target_arch = "wasm32")]
mod local_media;
#[cfg(target_arch = "wasm32")]
mod local_tracks;
#[cfg(target_arch = "wasm32")]
mod media;
#[cfg(target_arch = "wasm32")]
mod options;
#[cfg(target_arch = "wasm32")]
mod peer;
#[cfg(target_arch = "wasm32")]
mod reconnect;
#[cfg(target_arch = "wasm32")]
mod room;
#[cfg(target_arch = "wasm32")]
mod socket;
#[cfg(target_arch = "wasm32")]
mod types;

#[cfg(target_arch = "wasm32")]
pub use room::Room;

use wasm_bindgen::prelude::wasm_bindgen;

/// The SDK's own version, taken from this crate's `Cargo.toml` at build time.
#[wasm_bindgen]
pub fn version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}

/// The signaling protocol version this SDK speaks
/// ([`convene_protocol::PROTOCOL_VERSION`]).
#[wasm_bindgen(js_name = protocolVersion)]
pub fn protocol_version() -> u32 {
    convene_protocol::PROTOCOL_VERSION
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_crate_and_protocol_versions() {
        assert_eq!(version(), env!("CARGO_PKG_VERSION"));
        assert_eq!(protocol_version(), convene_protocol::PROTOCOL_VERSION);
    }
}
