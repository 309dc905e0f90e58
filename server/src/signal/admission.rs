//! Reads what admission needs (the token's claims, the revocation list, the room, the
//! roster entry, how many are joined) and hands it to the pure rules in
//! `rooms::admission`. The store is read once per join (one batched read); after the
//! join, it is read again only if something was written meanwhile.

use convene_protocol::ErrorCode;

use crate::api::{ApiError, ApiResult};
use crate::ids::{RoomId, UserId};
use crate::model::{JoinPolicy, Room, RosterChange};
use crate::rooms::admission::{self, Facts, TokenFacts};
use crate::rooms::session::MemberInit;
use crate::state::AppState;
use crate::tokens;

/// A member cleared to join.
pub struct Admitted {
    pub room: Room,
    pub init: MemberInit,
    /// `writes_seen` before the read admission used.
    generation: u64,
}

fn unauthenticated(msg: &str) -> ApiError {
    ApiError::new(ErrorCode::Unauthenticated, msg).with_target("token")
}

pub async fn admit(state: &AppState, token: Option<&str>, resuming: bool) -> ApiResult<Admitted> {
    let token = token
        .filter(|t| !t.is_empty())
        .ok_or_else(|| unauthenticated("a join token is required: /v1/rtc?token=..."))?;
    if token.len() > tokens::MAX_TOKEN_LEN {
        return Err(unauthenticated(&format!(
            "the join token is {} characters, longer than any valid token ({}): is the \
             link complete, and pasted once?",
            token.len(),
            tokens::MAX_TOKEN_LEN
        )));
    }
    let claims = tokens::verify_signature(&state.token_key, token)
        .map_err(|_| unauthenticated("the join token is not valid"))?;
    let room_id =
        RoomId::parse(&claims.room).map_err(|_| unauthenticated("the join token is not valid"))?;
    let user =
        UserId::parse(&claims.sub).map_err(|_| unauthenticated("the join token is not valid"))?;
    let generation = state.writes_seen();
    let read = state
        .store
        .admission_read(&room_id, &user, &claims.jti)
        .await?;
    let (revoked, room, entry) = (read.revoked, read.room, read.entry);
    let guest_name = claims.is_guest().then(|| claims.name.clone()).flatten();
    let token = TokenFacts {
        guest_name,
        user,
        jti: claims.jti,
        invite_id: claims.inv,
        exp: claims.exp,
    };
    // Asked of the session only for a closed room, where it decides.
    let in_call = match &room {
        Some(r) if r.join_policy == JoinPolicy::Closed => state
            .cluster
            .members(&r.id)
            .await?
            .iter()
            .any(|p| p.id == token.user.as_str()),
        _ => false,
    };
    let facts = Facts {
        now: state.clock.now(),
        token: &token,
        revoked,
        room: room.as_ref(),
        entry: entry.as_ref(),
        in_call,
    };
    let init = admission::admit(&facts)?;
    let room = room.expect("admitted into an existing room");
    // A room with a limit counts its members on every node.
    let joined = match room.max_participants {
        Some(_) => state.cluster.member_count(&room.id).await?,
        None => state.live.member_count(&room.id),
    };
    let may_be_full = room.max_participants.is_some_and(|m| joined >= m as usize);
    // Only a room that looks full is worth asking whether this user is already in it
    // (on any node: a rejoin replaces its older connection, so it takes no new place).
    let here = !resuming
        && may_be_full
        && state
            .cluster
            .members(&room.id)
            .await?
            .iter()
            .any(|p| p.id == init.user.as_str());
    admission::check_capacity(&room, joined, resuming, || here)?;
    Ok(Admitted {
        room,
        init,
        generation,
    })
}

/// Re-reads what admission checked, once the member is in the session: an admin change
/// made between admission and the join reached no session, so it is applied here, and
/// told to the other nodes (the session may be on the room's home node).
/// Nothing written since admission read (the common case, and all of a join storm):
/// nothing to read again.
pub async fn recheck(state: &AppState, admitted: &Admitted) {
    if state.writes_seen() == admitted.generation {
        return;
    }
    let room_id = &admitted.room.id;
    let user = &admitted.init.user;
    let Ok(read) = state
        .store
        .admission_read(room_id, user, &admitted.init.jti)
        .await
    else {
        return; // the store hiccuped; the next admin change still applies
    };
    let Some(room) = read.room else {
        return state.cluster.room_deleted(room_id);
    };
    // Ignored by the session unless newer than what it has.
    state.cluster.room_updated(&room);
    let revoked = read.revoked;
    let guest = admitted.init.invite_id == tokens::GUEST_INVITE;
    match read.entry {
        // A guest has no roster entry: it stays unless its token was revoked.
        None if guest && !revoked => {}
        Some(e) if !revoked && e.invite_id == admitted.init.invite_id => {
            if e.role != admitted.init.role {
                let change = RosterChange::RoleChanged {
                    from: admitted.init.role,
                    entry: e,
                };
                state.cluster.roster_changed(room_id, &[change]);
            }
        }
        _ => {
            if let Err(e) = state.cluster.kick(room_id, user.clone()).await {
                tracing::warn!(room = %room_id, %user, "cannot remove a member admitted on a stale read: {e}");
            }
        }
    }
}
