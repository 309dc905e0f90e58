//! The pieces of convene-load that the server's own tests share: a webrtc-rs client
//! peer that plays the browser (Opus and VP8, trickle ICE over channels), and the pool
//! of light client peers (many per thread, one socket per thread).

pub mod client;
pub mod pool;
