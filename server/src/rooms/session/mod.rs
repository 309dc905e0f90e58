//! One live session as a sans-IO state machine, in the shape of str0m and webrtc-rs's
//! `rtc`: the driver (`rooms::driver`) feeds it inputs with the time
//! (`handle(input, now)`, `handle_timeout(now)`), then drains what it must do
//! (`poll_output()`: frames to send to whom, commands for the media relay, the end) and
//! sleeps until `poll_timeout()`. It owns no socket, channel, task or clock, so every
//! rule and timer is tested with plain calls.
//!
//! The parts, by what they do: `lifecycle` (joins, drops, resumes, removals, the end),
//! `members` (the member table and roster deltas),
//! `media` (who sends what, and what the relay may forward), `speakers` (who is talking),
//! `quality` (how each member's connection is doing), `chat`, `timers` (every deadline), `output` (what the driver is told).

mod chat;
mod ending;
mod lifecycle;
mod media;
mod members;
mod output;
mod quality;
mod seating;
mod seats;
mod speakers;
mod timers;

#[cfg(test)]
mod harness;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_live;

use crate::model::ice::IceConfig;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use convene_protocol::signal::{ClientMessage, LeaveReason, Participant, ServerMessage};
use convene_protocol::{ErrorBody, ErrorCode};

pub use members::{MemberInit, MAX_AUDIENCE_PAGE};
pub use output::{MediaCommand, Output};
pub use seats::APPLICATION_TTL;
pub use timers::{AUDIENCE_INTERVAL, BATCH_INTERVAL};

use self::members::Members;
use self::output::Outputs;
use self::seating::SeatRequest;
use self::timers::{Pending, Timers};
use crate::clock::Now;
use crate::ids::{ConnId, SessionId, UserId};
use crate::model::event::{EventType, NewEvent};
use crate::model::{Room, RosterChange};
use crate::sfu::port::{MediaEvent, MediaSignal};

/// Settings every session of a server shares.
#[derive(Debug, Clone, Default)]
pub struct SessionConfig {
    /// How long a member whose connection dropped keeps its place for `resume`.
    pub resume_grace: Duration,
    /// The STUN/TURN servers handed to each member in `joined`.
    pub ice: IceConfig,
    /// Whether a media relay serves this session (false: signaling only).
    pub media: bool,
}

/// Everything that can happen to a session.
#[derive(Debug)]
pub enum Input {
    Join {
        init: MemberInit,
        conn: ConnId,
        resume: Option<String>,
    },
    /// A message from a member's connection (ignored unless it is the current one).
    Client {
        user: UserId,
        conn: ConnId,
        msg: ClientMessage,
    },
    /// The connection's socket closed without `leave`.
    Dropped {
        user: UserId,
        conn: ConnId,
    },
    /// The connection's queue was full: it missed a frame and needs a snapshot.
    QueueFull {
        user: UserId,
        conn: ConnId,
    },
    /// The connection kept sending after being rate-limited: it leaves for good.
    Flooded {
        user: UserId,
        conn: ConnId,
    },
    Media(MediaEvent),
    /// The stored room changed (applied only when newer than what the session has).
    RoomUpdated(Box<Room>),
    RoomDeleted,
    Roster(Vec<RosterChange>),
    TokenRevoked(String),
    /// The admin removes a member from the call.
    Kick(UserId),
    /// The admin takes whoever sits on this seat off it.
    Unseat(u32),
    Shutdown,
    /// Another node holds the room's home lease now (two took it across a Redis outage):
    /// members are disconnected without `left`, so their clients reconnect and join the
    /// room there, and the session ends.
    HandOver,
}

/// The immediate answer to an input, where the caller waits for one.
#[derive(Debug, PartialEq, Eq)]
pub enum Answer {
    None,
    Join(Result<JoinOutcome, JoinRefusal>),
    /// The removed member's token id, so the caller can revoke it (None: not joined).
    Kicked(Option<String>),
    /// Who was taken off the seat (None: it was empty, or no such seat).
    Unseated(Option<UserId>),
}

/// How a join went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinOutcome {
    Joined,
    /// Took over a member kept after a drop, or a second connection of the same client.
    Resumed,
    /// Replaced an older connection of the same user (which got `duplicateSession`).
    Replaced,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinRefusal {
    RoomFull,
    /// The session has ended; join a new one.
    Ended,
}

pub struct Session {
    room: Room,
    id: SessionId,
    started_at: DateTime<Utc>,
    /// The wall and monotonic times of the input being handled.
    wall: DateTime<Utc>,
    mono: Instant,
    /// Seats of a live or voice room (none in a conference).
    seats: seats::Seats,
    /// The seat list or the applications changed during this input: told once, after.
    seats_dirty: bool,
    applications_dirty: bool,
    config: SessionConfig,
    members: Members,
    out: Outputs,
    timers: Timers,
    /// Members whose forwarding gates may have changed during this input.
    gates_dirty: BTreeSet<UserId>,
    /// The end (`validUntil`) a `roomEnding` notice went out for (see `ending`).
    ending_told: Option<DateTime<Utc>>,
    /// When the next `roomEnding` notice is due, on the monotonic clock.
    ending_at: Option<Instant>,
    /// Who is talking (see `speakers`).
    speakers: speakers::Speakers,
    /// Each member's connection quality (see `quality`).
    qualities: quality::Qualities,
    ended: bool,
}

fn error_msg(code: ErrorCode, message: impl Into<String>) -> ServerMessage {
    ServerMessage::Error {
        error: ErrorBody::new(code, message),
    }
}

impl Session {
    pub fn new(room: Room, config: SessionConfig, now: Now) -> Self {
        let expires_at = now.mono_at(room.valid_until);
        let seats = seating::seats_for(&room);
        let mut s = Self {
            room,
            id: SessionId::generate(),
            started_at: now.wall,
            wall: now.wall,
            mono: now.mono,
            seats,
            seats_dirty: false,
            applications_dirty: false,
            config,
            members: Members::default(),
            out: Outputs::default(),
            timers: Timers::new(now.mono, expires_at),
            gates_dirty: BTreeSet::new(),
            ending_told: None,
            ending_at: None,
            speakers: Default::default(),
            qualities: Default::default(),
            ended: false,
        };
        let started = serde_json::json!({ "startedAt": now.wall.to_rfc3339() });
        s.report(EventType::SessionStarted, started);
        s
    }

    /// Queues an event for webhooks; `data` gets the session id.
    fn report(&mut self, kind: EventType, mut data: serde_json::Value) {
        if let Some(d) = data.as_object_mut() {
            d.insert("sessionId".into(), self.id.to_string().into());
        }
        let ev = NewEvent::new(kind, &self.room.id, self.wall, data);
        self.out.push(Output::Event(ev));
    }

    pub fn id(&self) -> &SessionId {
        &self.id
    }

    pub fn room(&self) -> &Room {
        &self.room
    }

    pub fn started_at(&self) -> DateTime<Utc> {
        self.started_at
    }

    pub fn len(&self) -> usize {
        self.members.len()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    pub fn is_ended(&self) -> bool {
        self.ended
    }

    /// Everyone joined now, announced or not (the admin view).
    pub fn members(&self) -> Vec<Participant> {
        self.members.all()
    }

    pub fn audience_count(&self) -> u32 {
        self.members.audience_count()
    }

    /// The seat list (empty in a conference).
    pub fn seats(&self) -> Vec<convene_protocol::signal::SeatInfo> {
        self.seat_views()
    }

    /// Seats with someone on them (0 in a conference).
    pub fn seats_taken(&self) -> usize {
        self.seats.all().iter().filter(|s| s.user.is_some()).count()
    }

    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop()
    }

    /// When `handle_timeout` is next due; `None` once the session has ended.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.ended {
            return None;
        }
        let next = self
            .timers
            .next(self.destroy_delay(), self.next_grace_deadline());
        let next = self.ending_at.map_or(next, |t| t.min(next));
        let next = self
            .speakers
            .next_deadline(self.mono)
            .map_or(next, |t| t.min(next));
        Some(self.seats.next_expiry().map_or(next, |t| t.min(next)))
    }

    pub fn handle(&mut self, input: Input, now: Now) -> Answer {
        self.wall = now.wall;
        self.mono = now.mono;
        if self.ended {
            return match input {
                Input::Join { .. } => Answer::Join(Err(JoinRefusal::Ended)),
                Input::Kick(_) => Answer::Kicked(None),
                Input::Unseat(_) => Answer::Unseated(None),
                _ => Answer::None,
            };
        }
        let answer = match input {
            Input::Join { init, conn, resume } => {
                Answer::Join(self.join(init, conn, resume.as_deref(), now))
            }
            Input::Client { user, conn, msg } => {
                if self.members.is_current(&user, conn) {
                    self.client_message(&user, msg, now);
                }
                Answer::None
            }
            Input::Dropped { user, conn } => {
                self.detach(&user, conn, now.mono);
                Answer::None
            }
            Input::QueueFull { user, conn } => {
                if self.members.is_current(&user, conn) {
                    self.members.set_lagging(&user, true);
                }
                Answer::None
            }
            Input::Flooded { user, conn } => {
                if self.members.is_current(&user, conn) {
                    tracing::warn!(room = %self.room.id, %user, "member flooded signaling; disconnected");
                    self.remove(&user, LeaveReason::RateLimited);
                }
                Answer::None
            }
            Input::Media(ev) => {
                self.media_event(ev);
                Answer::None
            }
            Input::RoomUpdated(room) => {
                // Notifications may arrive out of order; the newest stored state wins.
                if room.id == self.room.id && room.version > self.room.version {
                    let old = std::mem::replace(&mut self.room, *room);
                    self.room_changed(&old);
                }
                Answer::None
            }
            Input::RoomDeleted => {
                self.end(LeaveReason::RoomDeleted);
                Answer::None
            }
            Input::Roster(changes) => {
                self.roster_changed(changes);
                Answer::None
            }
            Input::TokenRevoked(jti) => {
                self.remove_where(LeaveReason::Removed, |m| m.jti == jti);
                Answer::None
            }
            Input::Kick(user) => {
                let jti = self.members.get(&user).map(|m| m.init.jti.clone());
                self.remove(&user, LeaveReason::Removed);
                Answer::Kicked(jti)
            }
            Input::Unseat(index) => {
                let who = self
                    .seats
                    .all()
                    .get(index as usize)
                    .and_then(|s| s.user.clone());
                if let Some(u) = &who {
                    self.seats.leave(u);
                    self.seats_dirty = true;
                    self.rights_changed(u, "seatChanged");
                }
                Answer::Unseated(who)
            }
            Input::Shutdown => {
                self.end(LeaveReason::ServerShutdown);
                Answer::None
            }
            Input::HandOver => {
                self.hand_over();
                Answer::None
            }
        };
        self.after(now);
        answer
    }

    /// Runs whatever is due at `now`.
    pub fn handle_timeout(&mut self, now: Now) {
        self.wall = now.wall;
        self.mono = now.mono;
        if self.ended {
            return;
        }
        if self.timers.flush_due(now.mono) {
            self.flush();
        }
        self.expire_dropped(now.mono);
        self.expire_applications(now.mono);
        if now.mono >= self.timers.expires_at && self.room.has_ended_at(now.wall) {
            tracing::info!(room = %self.room.id, "room expired; ending session");
            self.end(LeaveReason::RoomExpired);
        }
        let destroy = self.timers.destroy_at(self.destroy_delay());
        if !self.ended && self.members.is_empty() && destroy.is_some_and(|t| t <= now.mono) {
            self.end_quietly();
        }
        self.after(now);
    }

    fn destroy_delay(&self) -> Duration {
        Duration::from_secs(self.room.destroy_delay_seconds.into())
    }

    /// Bookkeeping after every input: tell the relay what it may forward, and move the
    /// deadlines.
    fn after(&mut self, now: Now) {
        self.flush_seats();
        self.emit_gates();
        self.flush_speakers();
        if self.ended {
            return;
        }
        let pending = if self.members.has_pending() && !self.members.pending_is_audience_only() {
            Pending::Members
        } else if self.members.has_pending() || self.members.laggards() > 0 {
            Pending::AudienceOnly
        } else {
            Pending::Nothing
        };
        self.timers
            .schedule_flush(pending, self.members.len(), now.mono);
        self.timers.set_empty(self.members.is_empty(), now.mono);
        self.timers.expires_at = now.mono_at(self.room.valid_until);
        self.check_ending();
        self.ending_at = self.ending_notice_at(now);
    }

    fn roster_changed(&mut self, changes: Vec<RosterChange>) {
        for change in changes {
            match change {
                RosterChange::Removed(user) => {
                    self.remove(&user, LeaveReason::Removed);
                }
                RosterChange::RoleChanged { entry, .. } => {
                    self.change_role(&entry.user_id, entry.role)
                }
                RosterChange::Added(entry) => {
                    // Removed and invited again: tokens of the old invitation die.
                    let invite = entry.invite_id.clone();
                    self.remove_where(LeaveReason::Removed, |m| {
                        m.user == entry.user_id && m.invite_id != invite
                    });
                }
            }
        }
    }

    fn client_message(&mut self, user: &UserId, msg: ClientMessage, now: Now) {
        let signal = match msg {
            ClientMessage::SetMedia {
                audio,
                video,
                screen,
            } => return self.set_media(user, audio, video, screen),
            ClientMessage::Mute {
                participant_id,
                audio,
                video,
                screen,
            } => return self.mute(user, &participant_id, audio, video, screen),
            ClientMessage::SendMessage { text } => return self.chat(user, text, now),
            ClientMessage::ListAudience { after, limit } => {
                let page = self.members.audience_page(after.as_deref(), limit);
                return self.send_to(user, page);
            }
            ClientMessage::Leave => {
                self.remove(user, LeaveReason::ClientLeft);
                return;
            }
            ClientMessage::Ping { .. } => return,
            ClientMessage::TakeSeat { index } => {
                return self.seat_request(user, SeatRequest::Take(index), now.mono)
            }
            ClientMessage::LeaveSeat => {
                return self.seat_request(user, SeatRequest::Leave, now.mono)
            }
            ClientMessage::ApplySeat { index } => {
                return self.seat_request(user, SeatRequest::Apply(index), now.mono)
            }
            ClientMessage::CancelSeatApplication => {
                return self.seat_request(user, SeatRequest::Cancel, now.mono)
            }
            ClientMessage::ApproveSeat { user_id } => {
                return self.seat_request(user, SeatRequest::Approve(user_id), now.mono)
            }
            ClientMessage::RejectSeat { user_id } => {
                return self.seat_request(user, SeatRequest::Reject(user_id), now.mono)
            }
            ClientMessage::LockSeat { index, locked } => {
                return self.seat_request(user, SeatRequest::Lock(index, locked), now.mono)
            }
            ClientMessage::MoveSeat { user_id, index } => {
                return self.seat_request(user, SeatRequest::Move(user_id, index), now.mono)
            }
            ClientMessage::KickFromSeat { user_id } => {
                return self.seat_request(user, SeatRequest::Kick(user_id), now.mono)
            }
            ClientMessage::SetRoomAttributes { attributes } => {
                return self.set_room_attributes(user, attributes)
            }
            ClientMessage::SetMemberAttributes {
                participant_id,
                attributes,
            } => return self.set_member_attributes(user, participant_id, attributes),
            ClientMessage::SetViewing {
                participant_id,
                video,
                screen,
                video_height,
            } => {
                let asked = (video, screen, video_height);
                return self.set_viewing(user, &participant_id, asked);
            }
            ClientMessage::Subscribe if self.config.media => {
                return self.out.media(MediaCommand::Subscribe(user.clone()));
            }
            ClientMessage::Subscribe => {
                return self.refuse(
                    user,
                    ErrorCode::InvalidParameter,
                    "media is not enabled on this server",
                );
            }
            ClientMessage::Offer {
                pc,
                sdp,
                screen_track_ids,
            } => MediaSignal::Offer {
                pc,
                sdp,
                screen_track_ids,
            },
            ClientMessage::Answer { pc, sdp } => MediaSignal::Answer { pc, sdp },
            ClientMessage::Candidate {
                pc,
                candidate,
                sdp_mid,
                sdp_m_line_index,
            } => MediaSignal::Candidate {
                pc,
                candidate,
                sdp_mid,
                sdp_m_line_index,
            },
        };
        if !self.config.media {
            return self.refuse(
                user,
                ErrorCode::InvalidParameter,
                "media is not enabled on this server",
            );
        }
        let may_publish = self
            .members
            .get(user)
            .is_some_and(|m| m.init.role.publishes());
        self.out.media(MediaCommand::Signal {
            user: user.clone(),
            may_publish,
            signal,
        });
    }

    /// Sends one batch of membership deltas to everyone, and fresh snapshots to members
    /// that fell behind.
    fn flush(&mut self) {
        if let Some(batch) = self.members.take_delta() {
            self.out.push(Output::Broadcast(batch));
        }
        let laggards = self.members.take_laggards();
        if !laggards.is_empty() {
            let msg = ServerMessage::Snapshot {
                participants: self.members.announced_participants(),
                audience_count: self.members.audience_count(),
            };
            self.out.push(Output::Resync {
                to: laggards.clone(),
                msg,
            });
            // They may have missed grade changes too.
            for conn in laggards {
                self.tell_qualities(conn, None);
            }
        }
    }

    fn send_to(&mut self, user: &UserId, msg: ServerMessage) {
        let conn = self.members.get(user).and_then(|m| m.conn);
        self.out.send(conn, msg);
    }

    fn refuse(&mut self, user: &UserId, code: ErrorCode, message: impl Into<String>) {
        self.send_to(user, error_msg(code, message));
    }
}
