//! The signaling decoder: any bytes a client may send as a text frame. Decoding never
//! panics, and whatever decodes encodes and decodes again to the same message.
#![no_main]

use convene_protocol::signal::ClientMessage;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(msg) = serde_json::from_str::<ClientMessage>(text) {
        let again = serde_json::to_string(&msg).expect("a decoded message encodes");
        let back: ClientMessage = serde_json::from_str(&again).expect("and decodes again");
        assert_eq!(back, msg);
    }
});
