//! How members come and go: joining (new, resumed, or replacing an older client), a
//! dropped connection kept for the resume grace, removals with a reason, and the end
//! of the session.

use std::time::Instant;

use convene_protocol::signal::{LeaveReason, ResumeInfo, ServerMessage, SessionInfo};
use convene_protocol::PROTOCOL_VERSION;

use super::members::{Member, MemberInit};
use super::output::{MediaCommand, Output};
use super::{chat, JoinOutcome, JoinRefusal, Session};
use crate::clock::Now;
use crate::ids::{ConnId, UserId};
use crate::model::event::EventType;
use crate::model::{MediaKind, MediaSet};
use crate::rate::TokenBucket;

impl Session {
    /// Adds a member, or hands an existing one a new connection.
    ///
    /// With the right `resume` token the member is taken over silently (others see
    /// nothing); without it, an older connection of the same user is told
    /// `duplicateSession` and replaced.
    pub(super) fn join(
        &mut self,
        init: MemberInit,
        conn: ConnId,
        resume: Option<&str>,
        now: Now,
    ) -> Result<JoinOutcome, JoinRefusal> {
        let user = init.user.clone();
        let mut was_dropped = false;
        let outcome = if let Some(m) = self.members.get_mut(&user) {
            let resumed = resume.is_some_and(|t| t == m.resume_token);
            was_dropped = m.dropped_at.is_some();
            if let Some(old) = m.conn.take() {
                let last = (!resumed).then_some(ServerMessage::Left {
                    reason: LeaveReason::DuplicateSession,
                });
                self.out.push(Output::Close { conn: old, last });
            }
            m.conn = Some(conn);
            let role_changed = m.init.role != init.role;
            m.init = init;
            self.members.set_dropped(&user, None);
            // The new connection starts with a full `joined`.
            self.members.set_lagging(&user, false);
            if role_changed {
                self.members.touch(&user);
            }
            if resumed {
                JoinOutcome::Resumed
            } else {
                self.replace_client(&user);
                JoinOutcome::Replaced
            }
        } else {
            if let Some(max) = self.room.max_participants {
                if self.members.len() >= max as usize {
                    return Err(JoinRefusal::RoomFull);
                }
            }
            let member = Member {
                init,
                media: MediaSet::default(),
                turned_off: MediaSet::default(),
                joined_at: now.wall,
                announced: false,
                resume_token: crate::ids::random_token(24),
                conn: Some(conn),
                lagging: false,
                dropped_at: None,
                chat: TokenBucket::new(chat::CHAT_RATE, now.mono),
                attributes: Default::default(),
            };
            let role = member.init.role;
            self.members.insert(member, self.room.announce_limit);
            self.report(
                EventType::ParticipantJoined,
                serde_json::json!({ "userId": user.as_str(), "role": role.as_str() }),
            );
            JoinOutcome::Joined
        };
        let joined = self.joined_message(&user, outcome == JoinOutcome::Resumed);
        self.out.send(Some(conn), joined);
        self.tell_ending(conn);
        self.tell_speakers(conn, outcome == JoinOutcome::Resumed);
        if was_dropped {
            self.quality_dropped(&user, false);
        }
        self.tell_qualities(conn, Some(&user));
        if self
            .members
            .get(&user)
            .is_some_and(|m| m.init.role.capabilities().moderate)
        {
            // Presenters answer seat applications: they start with the open ones.
            self.send_applications(Some(&user));
        }
        Ok(outcome)
    }

    fn joined_message(&self, user: &UserId, resumed: bool) -> ServerMessage {
        let m = self.members.get(user).expect("joined members exist");
        ServerMessage::Joined {
            protocol_version: PROTOCOL_VERSION,
            me: m.view(),
            room: self.room.info(),
            session: SessionInfo {
                id: self.id.to_string(),
                started_at: self.started_at.to_rfc3339(),
            },
            participants: self.members.announced_participants(),
            audience_count: self.members.audience_count(),
            capabilities: self.capabilities(user),
            ice_servers: self
                .config
                .ice
                .servers_for(user, self.wall, self.room.valid_until),
            resume: ResumeInfo {
                token: m.resume_token.clone(),
                grace_seconds: self.config.resume_grace.as_secs() as u32,
            },
            resumed,
            seats: self.seat_views(),
        }
    }

    /// The socket dropped without `leave`: keep the member for the resume grace.
    pub(super) fn detach(&mut self, user: &UserId, conn: ConnId, now: Instant) {
        if !self.members.is_current(user, conn) {
            return;
        }
        if let Some(m) = self.members.get_mut(user) {
            m.conn = None;
        }
        self.members.set_dropped(user, Some(now));
        self.out.push(Output::Close { conn, last: None });
        self.quality_dropped(user, true);
    }

    /// When the next dropped member's grace runs out.
    pub(super) fn next_grace_deadline(&self) -> Option<Instant> {
        self.members
            .first_dropped()
            .map(|t| t + self.config.resume_grace)
    }

    pub(super) fn expire_dropped(&mut self, now: Instant) {
        let Some(since) = now.checked_sub(self.config.resume_grace) else {
            return;
        };
        let gone = self.members.dropped_by(since);
        for u in &gone {
            self.remove(u, LeaveReason::Timeout);
        }
    }

    /// Takes a member out, telling it why (when it is still connected).
    pub(super) fn remove(&mut self, user: &UserId, reason: LeaveReason) -> bool {
        self.take_out(user, reason, true)
    }

    /// Takes a member out; its connection is closed with `left {reason}` when `tell`,
    /// else without a word (its client reconnects).
    fn take_out(&mut self, user: &UserId, reason: LeaveReason, tell: bool) -> bool {
        let Some(m) = self.members.remove(user) else {
            return false;
        };
        self.speakers.forget(user);
        self.qualities.forget(user);
        self.leave_seat_of_departed(user);
        for kind in MediaKind::ALL {
            if m.media.get(kind) {
                self.report_track(user, kind, false);
            }
        }
        let why = serde_json::to_value(reason).unwrap_or_default();
        self.report(
            EventType::ParticipantLeft,
            serde_json::json!({ "userId": user.as_str(), "reason": why }),
        );
        self.out.media(MediaCommand::RemoveMember(user.clone()));
        self.gates_dirty.remove(user);
        if let Some(conn) = m.conn {
            self.out.push(Output::Close {
                conn,
                last: tell.then_some(ServerMessage::Left { reason }),
            });
        }
        true
    }

    /// Ends the session with every member disconnected silently: its room now runs on
    /// another node, where the clients reconnect.
    pub(super) fn hand_over(&mut self) {
        for u in self.members.users() {
            self.take_out(&u, LeaveReason::ServerShutdown, false);
        }
        self.end_quietly();
    }

    /// Removes the members whose token or invitation is no longer good.
    pub(super) fn remove_where(&mut self, reason: LeaveReason, pred: impl Fn(&MemberInit) -> bool) {
        let who: Vec<UserId> = self
            .members
            .values()
            .filter(|m| pred(&m.init))
            .map(|m| m.init.user.clone())
            .collect();
        for u in who {
            self.remove(&u, reason);
        }
    }

    /// Ends the session: everyone is told `reason` and disconnected.
    pub(super) fn end(&mut self, reason: LeaveReason) {
        for u in self.members.users() {
            self.remove(&u, reason);
        }
        self.end_quietly();
    }

    pub(super) fn end_quietly(&mut self) {
        self.members.clear_delta();
        self.report(EventType::SessionEnded, serde_json::json!({}));
        self.ended = true;
        self.out.push(Output::Ended);
    }
}
