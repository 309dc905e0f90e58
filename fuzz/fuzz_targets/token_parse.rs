//! The join-token parser: any text in `?token=`. Verifying never panics, and nothing
//! but a token minted with the key verifies.
#![no_main]

use convene::secret::Secret;
use convene::tokens::{self, JoinClaims};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let key = Secret::new("fuzz-key");
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(claims) = tokens::verify_signature(&key, text) {
        // Only a real signature gets here: the input must be what minting gives.
        assert_eq!(tokens::mint(&key, &claims), text);
    }
    let _ = tokens::verify(&key, text, 0);
    // A token with fuzzed claims round-trips.
    let claims = JoinClaims::new(&key, text, text, text, 0, i64::MAX);
    let token = tokens::mint(&key, &claims);
    if token.len() <= tokens::MAX_TOKEN_LEN {
        assert_eq!(tokens::verify(&key, &token, 1).unwrap(), claims);
    }
});
