//! The ICE servers a member is handed in `joined`: fixed STUN/TURN entries, and TURN
//! credentials minted for this member by the TURN REST API scheme (what coturn's
//! `use-auth-secret` / `static-auth-secret` checks): username `<expiry>:<user>`,
//! credential base64(HMAC-SHA1(secret, username)). The TURN server needs no call back
//! to Convene, and a credential is worthless after its expiry.

use std::time::Duration;

use base64::Engine;
use chrono::{DateTime, Utc};
use convene_protocol::signal::IceServer;
use hmac::{Hmac, Mac};

use crate::ids::UserId;
use crate::secret::Secret;

/// Longest a minted credential lasts by default: a day, as the TURN REST draft suggests.
pub const DEFAULT_TURN_TTL: Duration = Duration::from_secs(24 * 3600);

#[derive(Debug, Clone, Default)]
pub struct IceConfig {
    /// Handed to everyone as they are (STUN, or TURN with a fixed username).
    pub fixed: Vec<IceServer>,
    /// TURN URLs that get per-member credentials.
    pub turn: Option<TurnRest>,
}

#[derive(Debug, Clone)]
pub struct TurnRest {
    pub urls: Vec<String>,
    /// Shared with the TURN server (coturn: `static-auth-secret`).
    pub secret: Secret,
    /// Longest a credential lasts; it ends sooner when the room's window does.
    pub ttl: Duration,
}

impl IceConfig {
    /// The servers for `user`, joining at `now` a room whose window ends at `room_ends`.
    /// The credential lasts to the end of the window (a member is removed then) plus a
    /// minute of slack, and never longer than the TTL.
    pub fn servers_for(
        &self,
        user: &UserId,
        now: DateTime<Utc>,
        room_ends: DateTime<Utc>,
    ) -> Vec<IceServer> {
        let mut servers = self.fixed.clone();
        if let Some(turn) = &self.turn {
            let longest = now + chrono::Duration::from_std(turn.ttl).unwrap_or_default();
            let expiry = (room_ends + chrono::Duration::minutes(1)).min(longest);
            let (username, credential) = turn.credential(user, expiry);
            servers.push(IceServer {
                urls: turn.urls.clone(),
                username: Some(username),
                credential: Some(credential),
            });
        }
        servers
    }
}

impl TurnRest {
    /// The username and credential for `user` until `expiry`. User ids may hold ':',
    /// the scheme's separator: it becomes '_' in the name part.
    pub fn credential(&self, user: &UserId, expiry: DateTime<Utc>) -> (String, String) {
        let username = format!("{}:{}", expiry.timestamp(), user.as_str().replace(':', "_"));
        let mut mac = Hmac::<sha1::Sha1>::new_from_slice(self.secret.expose().as_bytes())
            .expect("HMAC takes a key of any length");
        mac.update(username.as_bytes());
        let credential =
            base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
        (username, credential)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn turn() -> IceConfig {
        IceConfig {
            fixed: vec![IceServer {
                urls: vec!["stun:stun.example.com:3478".into()],
                username: None,
                credential: None,
            }],
            turn: Some(TurnRest {
                urls: vec!["turn:turn.example.com:3478?transport=udp".into()],
                secret: Secret::new("north"),
                ttl: Duration::from_secs(3600),
            }),
        }
    }

    #[test]
    fn credentials_follow_the_turn_rest_scheme() {
        // Worked out with coreutils and openssl:
        // printf '1700000000:alice' | openssl dgst -sha1 -hmac north -binary | base64
        let expiry = Utc.timestamp_opt(1_700_000_000, 0).unwrap();
        let (username, credential) = turn()
            .turn
            .unwrap()
            .credential(&UserId::parse("alice").unwrap(), expiry);
        assert_eq!(username, "1700000000:alice");
        assert_eq!(credential, "Cd/49soE35ICqcJF/bCTn8Z4OyE=");
    }

    #[test]
    fn a_credential_ends_with_the_window_or_the_ttl() {
        let now = Utc.timestamp_opt(1_700_000_000, 0).unwrap();
        let user = UserId::parse("a:b").unwrap();
        let soon = turn().servers_for(&user, now, now + chrono::Duration::minutes(10));
        assert_eq!(soon.len(), 2, "the fixed STUN server, then TURN");
        assert_eq!(soon[0].username, None);
        assert_eq!(
            soon[1].username.as_deref(),
            Some("1700000660:a_b"),
            "window end + 1 min"
        );
        let late = turn().servers_for(&user, now, now + chrono::Duration::days(30));
        assert_eq!(
            late[1].username.as_deref(),
            Some("1700003600:a_b"),
            "the TTL"
        );
        let none = IceConfig::default().servers_for(&user, now, now);
        assert!(none.is_empty());
    }
}
