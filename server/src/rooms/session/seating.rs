//! Live and voice rooms in the session: the one publishing check that knows about seats
//! and room types, the seat requests members and presenters send, applications and
//! their expiry, and room and member attributes set during the call.

use std::collections::BTreeMap;
use std::time::Instant;

use convene_protocol::signal::{
    ApplicationOutcome, Capabilities, SeatApplication, SeatInfo, ServerMessage,
};
use convene_protocol::ErrorCode;

use super::output::Output;
use super::seats::{SeatError, Seats};
use super::Session;
use crate::ids::UserId;
use crate::model::{MediaKind, Room, RoomType, TakeSeatMode};

/// A member's own attributes: at most this many keys...
pub const MAX_MEMBER_ATTRIBUTES: usize = 8;
/// ... of 1 to 32 characters of `A-Z a-z 0-9 . _ -`, with values of at most 256.
pub const MAX_MEMBER_ATTRIBUTE_KEY: usize = 32;
pub const MAX_MEMBER_ATTRIBUTE_VALUE: usize = 256;

/// What a member sent about seats.
pub(super) enum SeatRequest {
    Take(Option<u32>),
    Leave,
    Apply(Option<u32>),
    Cancel,
    Approve(String),
    Reject(String),
    Lock(u32, bool),
    Move(String, u32),
    Kick(String),
}

/// Which requests leave the seats as they were.
enum Kind {
    Apply,
    Cancel,
    Reject,
    Other,
}

pub(super) fn seats_for(room: &Room) -> Seats {
    if room.room_type.has_seats() {
        Seats::new(room.max_seat_count)
    } else {
        Seats::default()
    }
}

impl Session {
    /// The one check for publishing (`Role::may_publish_in`), with this member's seat.
    pub(super) fn may_publish(&self, user: &UserId, kind: MediaKind) -> bool {
        self.members.get(user).is_some_and(|m| {
            let seated = self.seats.seat_of(user).is_some();
            m.init
                .role
                .may_publish_in(self.room.room_type, kind, seated)
        })
    }

    /// Why `kind` may not be published, for the refusal.
    pub(super) fn publish_refusal(&self, user: &UserId, kind: MediaKind) -> String {
        let role = self
            .members
            .get(user)
            .map(|m| m.init.role)
            .unwrap_or_default();
        if !role.may_publish(kind) {
            format!("the {role} role may not publish that")
        } else if self.room.room_type == RoomType::Voice && kind != MediaKind::Audio {
            "this is a voice room: audio only".into()
        } else {
            "take a seat to publish in this room".into()
        }
    }

    pub(super) fn capabilities(&self, user: &UserId) -> Capabilities {
        let seated = self.seats.seat_of(user).is_some();
        self.members
            .get(user)
            .map_or_else(Capabilities::default, |m| {
                m.init.role.capabilities_in(self.room.room_type, seated)
            })
    }

    /// After what a member may publish changed (a seat, a room type): it is told, and
    /// what it may no longer send stops at once.
    pub(super) fn rights_changed(&mut self, user: &UserId, reason: &str) {
        let Some(m) = self.members.get(user) else {
            return;
        };
        let (role, media) = (m.init.role, m.media);
        let allowed = media.limited_to(|k| self.may_publish(user, k));
        let caps = self.capabilities(user);
        self.gates_dirty.insert(user.clone());
        self.send_to(
            user,
            ServerMessage::CapabilitiesChanged {
                role: role.as_str().to_string(),
                capabilities: caps,
            },
        );
        self.update_media(user, allowed, Some(reason.to_string()));
    }

    pub(super) fn seat_views(&self) -> Vec<SeatInfo> {
        self.seats
            .all()
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let media = s
                    .user
                    .as_ref()
                    .and_then(|u| self.members.get(u))
                    .map(|m| m.media)
                    .unwrap_or_default();
                SeatInfo {
                    index: i as u32,
                    user_id: s.user.as_ref().map(|u| u.to_string()),
                    locked: s.locked,
                    audio: media.audio,
                    video: media.video,
                }
            })
            .collect()
    }

    fn application_views(&self) -> Vec<SeatApplication> {
        let wall = |at: Instant| {
            let ahead = at.saturating_duration_since(self.mono);
            (self.wall + chrono::Duration::from_std(ahead).unwrap_or_default()).to_rfc3339()
        };
        self.seats
            .applications()
            .iter()
            .map(|(u, a)| SeatApplication {
                user_id: u.to_string(),
                index: a.index,
                expires_at: wall(a.expires),
            })
            .collect()
    }

    /// Sends the open applications to every presenter (or to `only`).
    pub(super) fn send_applications(&mut self, only: Option<&UserId>) {
        if !self.room.room_type.has_seats() {
            return;
        }
        let msg = ServerMessage::SeatApplications {
            applications: self.application_views(),
        };
        let to: Vec<UserId> = match only {
            Some(u) => vec![u.clone()],
            None => self
                .members
                .values()
                .filter(|m| m.init.role.capabilities().moderate)
                .map(|m| m.init.user.clone())
                .collect(),
        };
        for u in to {
            self.send_to(&u, msg.clone());
        }
    }

    fn seat_error(&mut self, user: &UserId, e: SeatError) {
        let (code, message) = match e {
            SeatError::NoSuchSeat(i) => (
                ErrorCode::InvalidParameter,
                format!("there is no seat {i} (seats are numbered from 0)"),
            ),
            SeatError::Unavailable(why) => (ErrorCode::SeatUnavailable, why),
            SeatError::AlreadySeated(i) => (
                ErrorCode::SeatUnavailable,
                format!("you already sit on seat {i}"),
            ),
            SeatError::NotSeated => (
                ErrorCode::InvalidParameter,
                "that member is not on a seat".into(),
            ),
            SeatError::NoApplication => (
                ErrorCode::SeatApplicationNotFound,
                "no open application from that member".into(),
            ),
        };
        self.refuse(user, code, message);
    }

    /// A seat request from `user`.
    pub(super) fn seat_request(&mut self, user: &UserId, req: SeatRequest, now: Instant) {
        if !self.room.room_type.has_seats() {
            return self.refuse(
                user,
                ErrorCode::InvalidParameter,
                "this room has no seats (its roomType is conference)",
            );
        }
        let moderator = self
            .members
            .get(user)
            .is_some_and(|m| m.init.role.capabilities().moderate);
        let target = |s: &Self, id: &str| s.members.find(id).cloned();
        let req_kind = match &req {
            SeatRequest::Apply(_) => Kind::Apply,
            SeatRequest::Cancel => Kind::Cancel,
            SeatRequest::Reject(_) => Kind::Reject,
            _ => Kind::Other,
        };
        let result = match req {
            SeatRequest::Take(index) => {
                if self.room.take_seat_mode == TakeSeatMode::ApplyToTake && !moderator {
                    return self.refuse(
                        user,
                        ErrorCode::PermissionDenied,
                        "seats in this room are given by application: send applySeat",
                    );
                }
                self.seats.take(user, index).map(|_| vec![user.clone()])
            }
            SeatRequest::Leave => match self.seats.leave(user) {
                Some(_) => Ok(vec![user.clone()]),
                None => Err(SeatError::NotSeated),
            },
            SeatRequest::Apply(index) => {
                if self.room.take_seat_mode == TakeSeatMode::FreeToTake {
                    return self.refuse(
                        user,
                        ErrorCode::InvalidParameter,
                        "seats in this room are free to take: send takeSeat",
                    );
                }
                match self.seats.apply(user, index, now) {
                    Ok(()) => {
                        self.applications_dirty = true;
                        Ok(vec![])
                    }
                    Err(e) => Err(e),
                }
            }
            SeatRequest::Cancel => {
                if self.seats.cancel(user) {
                    self.applications_dirty = true;
                    self.send_to(
                        user,
                        ServerMessage::SeatApplicationEnded {
                            outcome: ApplicationOutcome::Cancelled,
                        },
                    );
                    Ok(vec![])
                } else {
                    Err(SeatError::NoApplication)
                }
            }
            SeatRequest::Approve(_)
            | SeatRequest::Reject(_)
            | SeatRequest::Lock(..)
            | SeatRequest::Move(..)
            | SeatRequest::Kick(_)
                if !moderator =>
            {
                return self.refuse(
                    user,
                    ErrorCode::PermissionDenied,
                    "only the host or a presenter may do that",
                );
            }
            SeatRequest::Approve(id) => match target(self, &id) {
                None => Err(SeatError::NoApplication),
                Some(who) => match self.seats.approve(&who) {
                    Ok(_) => {
                        self.applications_dirty = true;
                        self.send_to(
                            &who,
                            ServerMessage::SeatApplicationEnded {
                                outcome: ApplicationOutcome::Approved,
                            },
                        );
                        Ok(vec![who])
                    }
                    Err(e) => Err(e),
                },
            },
            SeatRequest::Reject(id) => match target(self, &id) {
                Some(who) if self.seats.cancel(&who) => {
                    self.applications_dirty = true;
                    self.send_to(
                        &who,
                        ServerMessage::SeatApplicationEnded {
                            outcome: ApplicationOutcome::Rejected,
                        },
                    );
                    Ok(vec![])
                }
                _ => Err(SeatError::NoApplication),
            },
            SeatRequest::Lock(index, locked) => self.seats.lock(index, locked).map(|_| vec![]),
            SeatRequest::Move(id, index) => match target(self, &id) {
                Some(who) => self.seats.move_to(&who, index).map(|_| vec![]),
                None => Err(SeatError::NotSeated),
            },
            SeatRequest::Kick(id) => {
                match target(self, &id).and_then(|w| self.seats.leave(&w).map(|_| w)) {
                    Some(who) => Ok(vec![who]),
                    None => Err(SeatError::NotSeated),
                }
            }
        };
        let seats_changed = !matches!(req_kind, Kind::Apply | Kind::Cancel | Kind::Reject);
        match result {
            Ok(changed) => {
                self.seats_dirty |= seats_changed;
                for who in changed {
                    self.rights_changed(&who, "seatChanged");
                }
            }
            Err(e) => self.seat_error(user, e),
        }
    }

    /// A member leaving the session leaves its seat and its application.
    pub(super) fn leave_seat_of_departed(&mut self, user: &UserId) {
        if self.seats.leave(user).is_some() {
            self.seats_dirty = true;
        }
        if self.seats.cancel(user) {
            self.applications_dirty = true;
        }
    }

    /// Lapses applications whose time ran out.
    pub(super) fn expire_applications(&mut self, now: Instant) {
        for who in self.seats.expire(now) {
            self.applications_dirty = true;
            self.send_to(
                &who,
                ServerMessage::SeatApplicationEnded {
                    outcome: ApplicationOutcome::Expired,
                },
            );
        }
    }

    /// The stored room changed: seats follow its type and count, rights follow the
    /// seats, and everyone hears which attributes changed.
    pub(super) fn room_changed(&mut self, old: &Room) {
        let room = self.room.clone();
        let seats_changed = old.room_type.has_seats() != room.room_type.has_seats()
            || old.max_seat_count != room.max_seat_count;
        let mut affected: Vec<UserId> = vec![];
        if seats_changed {
            if room.room_type.has_seats() && old.room_type.has_seats() {
                affected = self.seats.resize(room.max_seat_count);
            } else {
                affected = self
                    .seats
                    .all()
                    .iter()
                    .filter_map(|s| s.user.clone())
                    .collect();
                self.seats = seats_for(&room);
            }
            self.seats_dirty = true;
        }
        if old.room_type != room.room_type {
            // Everyone's rights may have changed.
            affected = self.members.users();
        }
        for u in affected {
            self.rights_changed(&u, "roomChanged");
        }
        let mut changed: BTreeMap<String, Option<String>> = BTreeMap::new();
        for (k, v) in &room.attributes {
            if old.attributes.get(k) != Some(v) {
                changed.insert(k.clone(), Some(v.clone()));
            }
        }
        for k in old.attributes.keys() {
            if !room.attributes.contains_key(k) {
                changed.insert(k.clone(), None);
            }
        }
        if !changed.is_empty() {
            self.out
                .push(Output::Broadcast(ServerMessage::RoomAttributesChanged {
                    changed,
                }));
        }
    }

    /// Presenters set room attributes: checked here, stored by the driver; everyone
    /// hears of it when the stored room comes back (`room_changed`).
    pub(super) fn set_room_attributes(
        &mut self,
        user: &UserId,
        changes: BTreeMap<String, Option<String>>,
    ) {
        let moderator = self
            .members
            .get(user)
            .is_some_and(|m| m.init.role.capabilities().moderate);
        if !moderator {
            return self.refuse(
                user,
                ErrorCode::PermissionDenied,
                "only the host or a presenter may set room attributes",
            );
        }
        let mut merged = self.room.attributes.clone();
        for (k, v) in &changes {
            match v {
                Some(v) => merged.insert(k.clone(), v.clone()),
                None => merged.remove(k),
            };
        }
        if let Err(e) = crate::rooms::settings::check_attributes(&merged) {
            return self.refuse(user, ErrorCode::InvalidParameter, e.message);
        }
        self.out.push(Output::SaveRoomAttributes(changes));
    }

    /// A member's own attributes (or, for presenters, another's).
    pub(super) fn set_member_attributes(
        &mut self,
        user: &UserId,
        target: Option<String>,
        changes: BTreeMap<String, Option<String>>,
    ) {
        let who = match target {
            None => user.clone(),
            Some(id) => match self.members.find(&id).cloned() {
                Some(w) => w,
                None => {
                    return self.refuse(
                        user,
                        ErrorCode::NotInRoom,
                        format!("'{id}' is not in the room"),
                    )
                }
            },
        };
        let moderator = self
            .members
            .get(user)
            .is_some_and(|m| m.init.role.capabilities().moderate);
        if who != *user && !moderator {
            return self.refuse(
                user,
                ErrorCode::PermissionDenied,
                "only a presenter may set another member's attributes",
            );
        }
        let Some(m) = self.members.get(&who) else {
            return;
        };
        let mut merged = m.attributes.clone();
        for (k, v) in changes {
            let key_ok = !k.is_empty()
                && k.chars().count() <= MAX_MEMBER_ATTRIBUTE_KEY
                && k.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
            if !key_ok {
                return self.refuse(
                    user,
                    ErrorCode::InvalidParameter,
                    format!(
                        "attribute keys are 1 to {MAX_MEMBER_ATTRIBUTE_KEY} characters of letters, digits, '.', '_' or '-'"
                    ),
                );
            }
            match v {
                Some(v) if v.chars().count() > MAX_MEMBER_ATTRIBUTE_VALUE => {
                    return self.refuse(
                        user,
                        ErrorCode::InvalidParameter,
                        format!(
                            "attribute values are at most {MAX_MEMBER_ATTRIBUTE_VALUE} characters"
                        ),
                    )
                }
                Some(v) => merged.insert(k, v),
                None => merged.remove(&k),
            };
        }
        if merged.len() > MAX_MEMBER_ATTRIBUTES {
            return self.refuse(
                user,
                ErrorCode::InvalidParameter,
                format!("a member has at most {MAX_MEMBER_ATTRIBUTES} attributes"),
            );
        }
        let announced = m.announced;
        if let Some(m) = self.members.get_mut(&who) {
            m.attributes = merged.clone();
        }
        let msg = ServerMessage::MemberAttributesChanged {
            participant_id: who.to_string(),
            attributes: merged,
        };
        if announced {
            self.out.push(Output::Broadcast(msg));
        } else {
            self.send_to(&who, msg);
        }
    }

    /// Seats and applications that changed during this input, told once.
    pub(super) fn flush_seats(&mut self) {
        if std::mem::take(&mut self.seats_dirty) && self.room.room_type.has_seats() {
            let seats = self.seat_views();
            self.out
                .push(Output::Broadcast(ServerMessage::SeatsChanged { seats }));
        }
        if std::mem::take(&mut self.applications_dirty) {
            self.send_applications(None);
        }
    }
}
