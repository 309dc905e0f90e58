//! Who may join a live session, as one pure function: the edge (`signal`) reads the
//! token, the room, the roster entry and the revocation list, and hands them here; this
//! says yes with the member's identity, or no with a refusal the client can show.

use chrono::{DateTime, Utc};
use convene_protocol::ErrorCode;

use super::session::MemberInit;
use crate::ids::UserId;
use crate::model::{JoinPolicy, Role, Room, RoomType, RosterEntry, Window};

/// What a verified join token says (its signature was checked by the edge).
#[derive(Debug, Clone)]
pub struct TokenFacts {
    pub user: UserId,
    pub jti: String,
    pub invite_id: String,
    /// Expiry, in seconds since the epoch.
    pub exp: i64,
    /// A guest token's display name (`None`: an invited user's token).
    pub guest_name: Option<String>,
}

/// Everything admission looks at, read by the edge at one moment.
#[derive(Debug, Clone)]
pub struct Facts<'a> {
    pub now: DateTime<Utc>,
    pub token: &'a TokenFacts,
    pub revoked: bool,
    pub room: Option<&'a Room>,
    pub entry: Option<&'a RosterEntry>,
    /// The user is in the room's live session now (connected, or kept for resume):
    /// a closed room keeps the people already in its call, reconnects included.
    pub in_call: bool,
}

/// A refused join, in words a person can read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: ErrorCode,
    pub message: String,
    /// The request field it is about (`token`).
    pub target: Option<&'static str>,
    /// The time it is about: when the room opens or ended.
    pub at: Option<DateTime<Utc>>,
}

impl Refusal {
    fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            target: None,
            at: None,
        }
    }

    fn token(message: &str) -> Self {
        Self {
            target: Some("token"),
            ..Self::new(ErrorCode::Unauthenticated, message)
        }
    }

    fn at(mut self, at: DateTime<Utc>) -> Self {
        self.at = Some(at);
        self
    }
}

/// The room has ended at `now`: the refusal every path gives.
pub fn ended(room: &Room) -> Refusal {
    Refusal::new(
        ErrorCode::RoomExpired,
        format!("this room ended at {}", room.valid_until.to_rfc3339()),
    )
    .at(room.valid_until)
}

/// The checks, in the order that tells the user the most useful reason first.
pub fn admit(f: &Facts<'_>) -> Result<MemberInit, Refusal> {
    if f.revoked {
        return Err(Refusal::token("the join token was revoked"));
    }
    let room = f
        .room
        .ok_or_else(|| Refusal::new(ErrorCode::RoomNotFound, "this room no longer exists"))?;
    let window = room.window_at(f.now);
    if window == Window::Ended {
        return Err(ended(room));
    }
    if f.now.timestamp() >= f.token.exp {
        return Err(Refusal::token(
            "the join token has expired; ask for a new link",
        ));
    }
    // A guest joins a public live room as a receive-only member; an invited user keeps
    // its role even with a guest token.
    let guest = f.token.guest_name.as_ref().filter(|_| {
        f.entry.is_none()
            && room.join_policy == JoinPolicy::Public
            && room.is_public_visible
            && room.room_type == RoomType::Live
    });
    if let Some(name) = guest {
        if window == Window::NotYetOpen {
            return Err(Refusal::new(
                ErrorCode::RoomNotOpenYet,
                format!("this room opens at {}", room.valid_from.to_rfc3339()),
            )
            .at(room.valid_from));
        }
        return Ok(MemberInit {
            user: f.token.user.clone(),
            role: Role::Consumer,
            jti: f.token.jti.clone(),
            invite_id: f.token.invite_id.clone(),
            name: Some(name.clone()),
        });
    }
    let entry = f
        .entry
        .filter(|e| e.invite_id == f.token.invite_id)
        .ok_or_else(|| Refusal::new(ErrorCode::NotInvited, "you are not invited to this room"))?;
    if room.join_policy == JoinPolicy::Closed && !f.in_call {
        return Err(Refusal::new(
            ErrorCode::RoomClosed,
            "this room is closed to joining",
        ));
    }
    if window == Window::NotYetOpen {
        return Err(Refusal::new(
            ErrorCode::RoomNotOpenYet,
            format!("this room opens at {}", room.valid_from.to_rfc3339()),
        )
        .at(room.valid_from));
    }
    Ok(MemberInit {
        user: f.token.user.clone(),
        role: entry.role,
        jti: f.token.jti.clone(),
        invite_id: entry.invite_id.clone(),
        name: None,
    })
}

/// Whether one more member fits: someone coming back (resume, a reload) already holds
/// a place. `here` is asked only when the room looks full.
pub fn check_capacity(
    room: &Room,
    joined: usize,
    resuming: bool,
    here: impl FnOnce() -> bool,
) -> Result<(), Refusal> {
    match room.max_participants {
        Some(max) if !resuming && joined >= max as usize && !here() => {
            Err(Refusal::new(ErrorCode::RoomFull, "this room is full"))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Role;
    use chrono::{Duration, TimeZone};

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 1, 10, 0, 0).unwrap()
    }

    fn room() -> Room {
        Room {
            id: crate::ids::RoomId::parse("r").unwrap(),
            version: 1,
            name: String::new(),
            created_at: now(),
            valid_from: now() - Duration::hours(1),
            valid_until: now() + Duration::hours(1),
            max_participants: Some(2),
            join_policy: JoinPolicy::Invite,
            is_message_disabled: false,
            is_public_visible: false,
            cover_url: None,
            destroy_delay_seconds: 0,
            announce_limit: 50,
            room_type: Default::default(),
            owner_id: None,
            max_seat_count: 8,
            take_seat_mode: Default::default(),
            attributes: Default::default(),
        }
    }

    fn token() -> TokenFacts {
        TokenFacts {
            user: UserId::parse("alice").unwrap(),
            jti: "t_1".into(),
            invite_id: "inv".into(),
            exp: (now() + Duration::hours(1)).timestamp(),
            guest_name: None,
        }
    }

    fn entry() -> RosterEntry {
        RosterEntry {
            user_id: UserId::parse("alice").unwrap(),
            role: Role::Presenter,
            invited_at: now(),
            invite_id: "inv".into(),
        }
    }

    #[test]
    fn each_rule_refuses_with_its_own_code() {
        let (room, token, entry) = (room(), token(), entry());
        let facts = Facts {
            now: now(),
            token: &token,
            revoked: false,
            room: Some(&room),
            entry: Some(&entry),
            in_call: false,
        };
        let init = admit(&facts).unwrap();
        assert_eq!(init.role, Role::Presenter);
        let code = |f: Facts<'_>| admit(&f).unwrap_err().code;
        assert_eq!(
            code(Facts {
                revoked: true,
                ..facts.clone()
            }),
            ErrorCode::Unauthenticated
        );
        assert_eq!(
            code(Facts {
                room: None,
                ..facts.clone()
            }),
            ErrorCode::RoomNotFound
        );
        let late = Facts {
            now: now() + Duration::hours(2),
            ..facts.clone()
        };
        let e = admit(&late).unwrap_err();
        assert_eq!(e.code, ErrorCode::RoomExpired);
        assert_eq!(e.at, Some(room.valid_until));
        let other = RosterEntry {
            invite_id: "older".into(),
            ..entry.clone()
        };
        assert_eq!(
            code(Facts {
                entry: Some(&other),
                ..facts.clone()
            }),
            ErrorCode::NotInvited
        );
        let closed = Room {
            join_policy: JoinPolicy::Closed,
            ..room.clone()
        };
        assert_eq!(
            code(Facts {
                room: Some(&closed),
                ..facts.clone()
            }),
            ErrorCode::RoomClosed
        );
        // Someone already in the call (reconnecting) stays in a closed room.
        assert!(admit(&Facts {
            room: Some(&closed),
            in_call: true,
            ..facts.clone()
        })
        .is_ok());
        let later = Room {
            valid_from: now() + Duration::minutes(5),
            ..room.clone()
        };
        let e = admit(&Facts {
            room: Some(&later),
            ..facts.clone()
        })
        .unwrap_err();
        assert_eq!(e.code, ErrorCode::RoomNotOpenYet);
        assert_eq!(e.at, Some(later.valid_from));
    }

    #[test]
    fn capacity_counts_returning_members_once() {
        let room = room();
        assert!(check_capacity(&room, 1, false, || false).is_ok());
        assert_eq!(
            check_capacity(&room, 2, false, || false).unwrap_err().code,
            ErrorCode::RoomFull
        );
        assert!(check_capacity(&room, 2, true, || false).is_ok());
        assert!(check_capacity(&room, 2, false, || true).is_ok());
    }
}
