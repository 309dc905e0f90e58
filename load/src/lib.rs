//! The pieces of convene-load that the server's own tests share: a webrtc-rs client
//! peer that plays the browser (Opus and VP8, trickle ICE over channels).

pub mod client;
