//! The Convene wire types: the error envelope shared with the REST API, and the
//! signaling messages exchanged over the WebSocket. Plain serde, no runtime, so it
//! builds for the server and for wasm32.

pub mod error;
pub mod signal;

pub use error::{ErrorBody, ErrorCode, ErrorEnvelope};

/// Bumped on any change a peer of the previous version could not read.
pub const PROTOCOL_VERSION: u32 = 1;
