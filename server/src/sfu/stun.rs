//! Reading just enough of a STUN binding request to route it: whose connection it is
//! for (the local half of USERNAME is the ufrag we gave that connection) and whether it
//! is authentic (MESSAGE-INTEGRITY under that connection's password). Only datagrams
//! from an address we do not know yet come here; known addresses route by table.

use rtc::crypto::RTCCrypto;
use rtc::stun::attributes::ATTR_USERNAME;
use rtc::stun::integrity::MessageIntegrity;
use rtc::stun::message::{is_stun_message, Message, BINDING_REQUEST};
use rtc::stun::textattrs::Username;

/// A binding request, parsed.
pub struct Request {
    msg: Message,
    /// Our ufrag: the part of USERNAME before the colon.
    pub ufrag: String,
}

/// The binding request in `b`, if it is one with a USERNAME.
pub fn binding_request(b: &[u8]) -> Option<Request> {
    if !is_stun_message(b) {
        return None;
    }
    let mut msg = Message::new();
    msg.unmarshal_binary(b).ok()?;
    if msg.typ != BINDING_REQUEST {
        return None;
    }
    let user = Username::get_from_as(&msg, ATTR_USERNAME).ok()?;
    let (ours, _theirs) = user.text.split_once(':')?;
    Some(Request {
        ufrag: ours.to_string(),
        msg,
    })
}

impl Request {
    /// True when MESSAGE-INTEGRITY checks out under `pwd` (RFC 8445 short-term
    /// credentials): only then may its source address be bound to the connection.
    pub fn authenticate(mut self, pwd: &str, crypto: &dyn RTCCrypto) -> bool {
        MessageIntegrity::check(&mut self.msg, pwd.as_bytes(), crypto).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtc::stun::message::{Setter, TransactionId};

    fn request(username: &str, pwd: &str) -> Vec<u8> {
        let provider = rtc::crypto::default_provider().unwrap();
        let mut m = Message::new();
        let user = Username::new(ATTR_USERNAME, username.to_string());
        let integrity = MessageIntegrity::new_short_term_integrity_with_provider(
            pwd.to_string(),
            provider.crypto(),
        );
        let setters: Vec<Box<dyn Setter>> = vec![
            Box::new(BINDING_REQUEST),
            Box::new(TransactionId::new()),
            Box::new(user),
            Box::new(integrity),
        ];
        m.build(&setters).unwrap();
        m.raw.clone()
    }

    #[test]
    fn the_local_ufrag_routes_and_the_password_authenticates() {
        let crypto = rtc::crypto::default_provider().unwrap();
        let b = request("srv123:cli9", "a-password-of-24-chars!!");
        let r = binding_request(&b).unwrap();
        assert_eq!(r.ufrag, "srv123");
        assert!(r.authenticate("a-password-of-24-chars!!", crypto.crypto()));
        let r = binding_request(&b).unwrap();
        assert!(!r.authenticate("another-password-entirely", crypto.crypto()));
        assert!(binding_request(b"\x80\x60 not stun at all, rtp maybe....").is_none());
        let mut no_colon = request("nocolon", "x");
        assert!(binding_request(&no_colon).is_none());
        no_colon.truncate(10);
        assert!(binding_request(&no_colon).is_none());
    }
}
