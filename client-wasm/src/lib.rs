//! Convene browser SDK, compiled to WebAssembly with wasm-bindgen.
//!
//! For now this only exposes version information, enough to prove the wasm
//! toolchain (cargo -> wasm-bindgen -> wasm-opt -> JS) works end to end.

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
