//! Webhook signatures: `Convene-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>`, the
//! MAC over `"<t>.<body>"` with the endpoint's secret (the scheme Stripe uses, so
//! receivers can reject replays by `t` as well as forgeries).

use hmac::{Hmac, Mac};
use sha2::Sha256;

pub const HEADER: &str = "convene-signature";

fn mac(secret: &str, t: i64, body: &[u8]) -> Hmac<Sha256> {
    let mut m = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    m.update(t.to_string().as_bytes());
    m.update(b".");
    m.update(body);
    m
}

/// The header value for `body` sent at `t`.
pub fn sign(secret: &str, t: i64, body: &[u8]) -> String {
    let tag = mac(secret, t, body).finalize().into_bytes();
    let hex: String = tag.iter().map(|b| format!("{b:02x}")).collect();
    format!("t={t},v1={hex}")
}

/// Checks a header value against `body` (as receivers should), in constant time, and
/// that `t` is within `tolerance` seconds of `now`.
pub fn verify(secret: &str, header: &str, body: &[u8], now: i64, tolerance: i64) -> bool {
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => t = v.parse::<i64>().ok(),
            Some(("v1", v)) => v1 = Some(v),
            _ => {}
        }
    }
    let (Some(t), Some(v1)) = (t, v1) else {
        return false;
    };
    if (now - t).abs() > tolerance || v1.len() != 64 {
        return false;
    }
    let Some(tag) = (0..32)
        .map(|i| u8::from_str_radix(&v1[2 * i..2 * i + 2], 16).ok())
        .collect::<Option<Vec<u8>>>()
    else {
        return false;
    };
    mac(secret, t, body).verify_slice(&tag).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_and_forgeries_do_not() {
        let h = sign("whsec_x", 1000, b"{\"a\":1}");
        assert!(h.starts_with("t=1000,v1="));
        assert!(verify("whsec_x", &h, b"{\"a\":1}", 1010, 300));
        assert!(
            !verify("whsec_y", &h, b"{\"a\":1}", 1010, 300),
            "other secret"
        );
        assert!(
            !verify("whsec_x", &h, b"{\"a\":2}", 1010, 300),
            "other body"
        );
        assert!(!verify("whsec_x", &h, b"{\"a\":1}", 2000, 300), "too old");
        assert!(!verify("whsec_x", "t=1000", b"{}", 1000, 300));
    }
}
