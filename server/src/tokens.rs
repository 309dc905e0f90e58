//! Join tokens: compact HS256 JWTs (the `jsonwebtoken` crate) signed with a secret kept
//! in the data directory.
//! The role is not in the token: it is read from the roster at join time, so a role
//! change or a removal applies to tokens already handed out.
//!
//! A token id (`jti`) carries a MAC of its room, so revoking can tell, without storing
//! every token minted, that an id was minted for that room: a made-up id, or one of
//! another room, is `TokenNotFound`.

use hmac::{Hmac, Mac};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::secret::Secret;

const ISSUER: &str = "convene";
/// Longest token text accepted, well above what `mint` produces.
pub const MAX_TOKEN_LEN: usize = convene_protocol::signal::MAX_TOKEN_BYTES;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinClaims {
    pub iss: String,
    /// The user id.
    pub sub: String,
    /// The room id.
    pub room: String,
    /// Token id, for revocation.
    pub jti: String,
    /// The invitation this token was minted for (see `RosterEntry::invite_id`);
    /// `guest` for a guest token.
    pub inv: String,
    pub iat: i64,
    pub exp: i64,
    /// A guest's display name (guest tokens only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// The `inv` of guest tokens: no invitation stands behind them.
pub const GUEST_INVITE: &str = "guest";

/// Random characters of a token id, then its room tag.
const JTI_NONCE: usize = 20;
const JTI_TAG: usize = 12;

fn jti_tag(secret: &Secret, room: &str, nonce: &str) -> String {
    let mut m = mac(secret);
    m.update(b"jti\0");
    m.update(room.as_bytes());
    m.update(b"\0");
    m.update(nonce.as_bytes());
    let bytes = m.finalize().into_bytes();
    bytes[..JTI_TAG / 2]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Whether `jti` was minted (with `secret`) for `room`.
pub fn token_id_is_of_room(secret: &Secret, room: &str, jti: &str) -> bool {
    let Some(rest) = jti.strip_prefix("t_") else {
        return false;
    };
    if rest.len() != JTI_NONCE + JTI_TAG || !rest.is_ascii() {
        return false;
    }
    let (nonce, tag) = rest.split_at(JTI_NONCE);
    // Not secret-dependent timing worth guarding: the caller holds the admin key.
    jti_tag(secret, room, nonce) == tag
}

impl JoinClaims {
    pub fn new(
        secret: &Secret,
        user: &str,
        room: &str,
        invite_id: &str,
        iat: i64,
        exp: i64,
    ) -> Self {
        let nonce = crate::ids::random_token(JTI_NONCE);
        Self {
            iss: ISSUER.to_owned(),
            sub: user.to_owned(),
            room: room.to_owned(),
            jti: format!("t_{nonce}{}", jti_tag(secret, room, &nonce)),
            inv: invite_id.to_owned(),
            iat,
            exp,
            name: None,
        }
    }

    /// A guest token: a receive-only member of a public live room, by `name`.
    pub fn guest(secret: &Secret, user: &str, room: &str, name: &str, iat: i64, exp: i64) -> Self {
        Self {
            name: Some(name.to_owned()),
            ..Self::new(secret, user, room, GUEST_INVITE, iat, exp)
        }
    }

    pub fn is_guest(&self) -> bool {
        self.inv == GUEST_INVITE && self.name.is_some()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the join token is malformed")]
    Malformed,
    #[error("the join token's signature is not valid")]
    BadSignature,
    #[error("the join token has expired")]
    Expired,
}

fn mac(secret: &Secret) -> Hmac<Sha256> {
    Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes()).expect("HMAC takes any key size")
}

pub fn mint(secret: &Secret, claims: &JoinClaims) -> String {
    let key = EncodingKey::from_secret(secret.expose().as_bytes())
        .expect("the token key is never empty (secret::load_or_create)");
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &key)
        .expect("join claims always encode")
}

/// Checks the signature, then the expiry against `now_secs`.
pub fn verify(secret: &Secret, token: &str, now_secs: i64) -> Result<JoinClaims, TokenError> {
    let claims = verify_signature(secret, token)?;
    if now_secs >= claims.exp {
        return Err(TokenError::Expired);
    }
    Ok(claims)
}

/// Checks only the signature (HS256 and nothing else, so `alg: none` and algorithm
/// confusion cannot happen) and the issuer, so a caller can say *why* an expired token
/// is no good (e.g. "the room has ended" rather than "the token expired").
pub fn verify_signature(secret: &Secret, token: &str) -> Result<JoinClaims, TokenError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(TokenError::Malformed);
    }
    let mut rules = Validation::new(Algorithm::HS256);
    rules.validate_exp = false;
    rules.validate_aud = false;
    rules.leeway = 0;
    rules.set_required_spec_claims(&["exp", "iss", "sub"]);
    rules.set_issuer(&[ISSUER]);
    let Ok(key) = DecodingKey::from_secret(secret.expose().as_bytes()) else {
        return Err(TokenError::Malformed);
    };
    jsonwebtoken::decode::<JoinClaims>(token, &key, &rules)
        .map(|data| data.claims)
        .map_err(|e| match e.kind() {
            ErrorKind::InvalidSignature => TokenError::BadSignature,
            _ => TokenError::Malformed,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
    use base64::Engine;

    fn claims() -> JoinClaims {
        JoinClaims::new(&Secret::new("k"), "alice", "room1", "i1", 1_000, 2_000)
    }

    #[test]
    fn token_ids_name_their_room() {
        let key = Secret::new("k");
        let c = claims();
        assert!(token_id_is_of_room(&key, "room1", &c.jti));
        assert!(
            !token_id_is_of_room(&key, "room2", &c.jti),
            "another room's"
        );
        assert!(!token_id_is_of_room(&Secret::new("other"), "room1", &c.jti));
        let made_up = format!("t_{}", "a".repeat(JTI_NONCE + JTI_TAG));
        for bad in [made_up.as_str(), "t_abc", "", "x_", "t_é"] {
            assert!(!token_id_is_of_room(&key, "room1", bad), "{bad}");
        }
    }

    #[test]
    fn round_trip() {
        let key = Secret::new("k");
        let c = claims();
        let t = mint(&key, &c);
        assert_eq!(verify(&key, &t, 1_500).unwrap(), c);
    }

    #[test]
    fn expiry_is_exclusive() {
        let key = Secret::new("k");
        let t = mint(&key, &claims());
        assert_eq!(verify(&key, &t, 2_000), Err(TokenError::Expired));
    }

    #[test]
    fn other_key_or_tampering_fails() {
        let t = mint(&Secret::new("k"), &claims());
        assert_eq!(
            verify(&Secret::new("other"), &t, 1_500),
            Err(TokenError::BadSignature)
        );
        let mut forged = claims();
        forged.sub = "mallory".into();
        let forged_body = B64.encode(serde_json::to_vec(&forged).unwrap());
        let parts: Vec<_> = t.split('.').collect();
        let tampered = format!("{}.{}.{}", parts[0], forged_body, parts[2]);
        assert_eq!(
            verify(&Secret::new("k"), &tampered, 1_500),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn garbage_is_malformed() {
        let key = Secret::new("k");
        for t in ["", "a.b", "a.b.c.d", "!!.!!.!!", &"x".repeat(5000)] {
            assert_eq!(verify(&key, t, 0), Err(TokenError::Malformed), "{t}");
        }
        let none_alg = format!(
            "{}.{}.",
            B64.encode(r#"{"alg":"none"}"#),
            B64.encode(serde_json::to_vec(&claims()).unwrap())
        );
        assert_eq!(verify(&key, &none_alg, 1_500), Err(TokenError::Malformed));
    }
}
