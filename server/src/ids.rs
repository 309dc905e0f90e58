//! Typed identifiers. Each parses from untrusted text exactly once, at the edge,
//! so the rest of the code never re-checks charset or length.

use std::fmt;

use rand::Rng;
use serde::{Deserialize, Serialize};

/// Why an id was refused; the message is shown to API callers as is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct IdError(pub String);

macro_rules! text_id {
    ($name:ident, $what:literal, $max:expr, $extra:literal) => {
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Longest accepted id, in bytes.
            pub const MAX_LEN: usize = $max;

            pub fn parse(s: &str) -> Result<Self, IdError> {
                if s.is_empty() || s.len() > Self::MAX_LEN {
                    return Err(IdError(format!(
                        "{} must be 1 to {} characters long",
                        $what,
                        Self::MAX_LEN
                    )));
                }
                let ok = s.chars().all(|c| {
                    c.is_ascii_alphanumeric() || c == '-' || c == '_' || $extra.contains(c)
                });
                if !ok {
                    return Err(IdError(format!(
                        "{} may contain only letters, digits, '-', '_'{}",
                        $what,
                        if $extra.is_empty() {
                            String::new()
                        } else {
                            format!(" and any of \"{}\"", $extra)
                        }
                    )));
                }
                Ok(Self(s.to_owned()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::parse(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}

text_id!(RoomId, "a room id", 64, "");
text_id!(UserId, "a user id", 128, ".@:+");
text_id!(SessionId, "a session id", 64, "");
text_id!(NodeId, "a node id", 64, ".");

impl RoomId {
    /// A fresh random id: `r_` and 20 characters from [a-z0-9], about 103 bits.
    pub fn generate() -> Self {
        Self(format!("r_{}", random_token(20)))
    }
}

impl SessionId {
    pub fn generate() -> Self {
        Self(format!("s_{}", random_token(20)))
    }
}

impl NodeId {
    /// A fresh random id: `n_` and 10 characters from [a-z0-9].
    pub fn generate() -> Self {
        Self(format!("n_{}", random_token(10)))
    }
}

/// One signaling connection of a member, numbered by the server. A member keeps its
/// place across connections (resume, reload); frames go to its current one only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ConnId(pub u64);

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "c{}", self.0)
    }
}

/// Random lower-case alphanumeric text from the OS-seeded CSPRNG.
pub fn random_token(len: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::thread_rng();
    (0..len)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_ids_are_checked() {
        assert!(RoomId::parse("standup-2026_11").is_ok());
        assert!(RoomId::parse("").is_err());
        assert!(RoomId::parse(&"a".repeat(65)).is_err());
        assert!(RoomId::parse("has space").is_err());
        assert!(RoomId::parse("a/b").is_err());
        assert!(RoomId::parse("é").is_err());
    }

    #[test]
    fn user_ids_allow_emails() {
        assert!(UserId::parse("alice@example.com").is_ok());
        assert!(UserId::parse("alice smith").is_err());
    }

    #[test]
    fn generated_ids_parse() {
        let id = RoomId::generate();
        assert_eq!(RoomId::parse(id.as_str()).unwrap(), id);
        assert_ne!(RoomId::generate(), id);
    }
}
