//! One live session's state and rules, as plain data: every method takes the time it
//! needs as an argument and talks to members only through their queues. The task in
//! `live.rs` drives it; the tests here call it directly.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use convene_protocol::signal::{
    IceServer, LeaveReason, Participant, ResumeInfo, RoomInfo, ServerMessage, SessionInfo,
};
use convene_protocol::{ErrorBody, ErrorCode, PROTOCOL_VERSION};
use tokio::time::{Duration, Instant};

use super::media::{Gates, MediaKind};
use super::outbound::{frame, Conn, Offer};
use super::{Role, Room};
use crate::ids::{SessionId, UserId};

/// Chat allowance per member: a burst, refilled at a steady rate.
pub const CHAT_BURST: f64 = 10.0;
pub const CHAT_PER_SECOND: f64 = 5.0;
/// Largest page of `listAudience`.
pub const MAX_AUDIENCE_PAGE: usize = 500;

/// Who is joining, as checked by the edge (token, roster, window).
#[derive(Debug, Clone)]
pub struct MemberInit {
    pub user: UserId,
    pub role: Role,
    pub jti: String,
    pub invite_id: String,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Media {
    pub audio: bool,
    pub video: bool,
    pub screen: bool,
}

struct Member {
    init: MemberInit,
    media: Media,
    joined_at: DateTime<Utc>,
    announced: bool,
    resume_token: String,
    conn: Option<Conn>,
    /// Its queue overflowed: it gets a snapshot at the next flush instead of deltas.
    lagging: bool,
    /// When its connection dropped; it is kept until the resume grace runs out.
    dropped_at: Option<Instant>,
    chat_tokens: f64,
    chat_at: Instant,
}

impl Member {
    fn view(&self) -> Participant {
        Participant {
            id: self.init.user.to_string(),
            role: self.init.role.as_str().to_string(),
            audio: self.media.audio,
            video: self.media.video,
            screen: self.media.screen,
            joined_at: self.joined_at.to_rfc3339(),
        }
    }
}

/// How a join went.
#[derive(Debug, PartialEq, Eq)]
pub enum JoinOutcome {
    Joined,
    /// Took over a member kept after a drop, or a second connection of the same client.
    Resumed,
    /// Replaced an older connection of the same user (which got `duplicateSession`).
    Replaced,
}

#[derive(Debug, PartialEq, Eq)]
pub enum JoinRefusal {
    RoomFull,
}

pub struct Session {
    pub room: Room,
    pub id: SessionId,
    pub started_at: DateTime<Utc>,
    ice_servers: Vec<IceServer>,
    resume_grace: Duration,
    members: BTreeMap<UserId, Member>,
    announced: usize,
    added: BTreeSet<UserId>,
    removed: BTreeSet<UserId>,
    updated: BTreeSet<UserId>,
    audience_dirty: bool,
    /// Members marked lagging, so the driver knows a resync flush is due.
    laggards: usize,
    /// Members gone since the driver last asked (their media must be torn down).
    departed: Vec<UserId>,
    /// Members whose forwarding gates may have changed since the driver last asked.
    gates_dirty: BTreeSet<UserId>,
}

fn error_frame(code: ErrorCode, message: impl Into<String>) -> Bytes {
    frame(&ServerMessage::Error {
        error: ErrorBody::new(code, message),
    })
}

impl Session {
    pub fn new(
        room: Room,
        started_at: DateTime<Utc>,
        resume_grace: Duration,
        ice_servers: Vec<IceServer>,
    ) -> Self {
        Self {
            room,
            id: SessionId::generate(),
            started_at,
            ice_servers,
            resume_grace,
            members: BTreeMap::new(),
            announced: 0,
            added: BTreeSet::new(),
            removed: BTreeSet::new(),
            updated: BTreeSet::new(),
            audience_dirty: false,
            laggards: 0,
            departed: Vec::new(),
            gates_dirty: BTreeSet::new(),
        }
    }

    pub fn take_departed(&mut self) -> Vec<UserId> {
        std::mem::take(&mut self.departed)
    }

    /// Which of each changed member's tracks may be forwarded now: its role allows the
    /// kind and its own switch for it is on.
    pub fn take_gate_changes(&mut self) -> Vec<(UserId, Gates)> {
        let dirty = std::mem::take(&mut self.gates_dirty);
        dirty
            .into_iter()
            .filter_map(|u| {
                let m = self.members.get(&u)?;
                let caps = m.init.role.capabilities();
                let gates = Gates {
                    audio: m.media.audio && caps.publish_audio,
                    video: m.media.video && caps.publish_video,
                    screen: m.media.screen && caps.publish_screen,
                };
                Some((u, gates))
            })
            .collect()
    }

    pub fn may_publish(&self, user: &UserId) -> bool {
        self.members
            .get(user)
            .is_some_and(|m| m.init.role != Role::Consumer)
    }

    /// A frame for one member, from the media relay.
    pub fn send_message(&mut self, user: &UserId, msg: &ServerMessage) {
        self.send_to(user, &frame(msg));
    }

    /// The relay saw a member start or stop sending a track: its status follows, as far
    /// as its role allows (a track the role forbids is never forwarded nor shown).
    pub fn relay_published(&mut self, user: &UserId, kind: MediaKind, on: bool) {
        let Some(m) = self.members.get_mut(user) else {
            return;
        };
        let caps = m.init.role.capabilities();
        let (flag, allowed) = match kind {
            MediaKind::Audio => (&mut m.media.audio, caps.publish_audio),
            MediaKind::Video => (&mut m.media.video, caps.publish_video),
            MediaKind::Screen => (&mut m.media.screen, caps.publish_screen),
        };
        if !allowed || *flag == on {
            return;
        }
        *flag = on;
        self.gates_dirty.insert(user.clone());
        self.broadcast_media(user, None);
    }

    pub fn len(&self) -> usize {
        self.members.len()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    pub fn audience_count(&self) -> u32 {
        (self.members.len() - self.announced) as u32
    }

    /// Only the audience count changed: worth telling everyone, but not every batch.
    pub fn pending_is_audience_only(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.updated.is_empty()
    }

    pub fn has_pending(&self) -> bool {
        !self.added.is_empty()
            || !self.removed.is_empty()
            || !self.updated.is_empty()
            || self.audience_dirty
    }

    /// Everyone joined now, announced or not (the admin view).
    pub fn members(&self) -> Vec<Participant> {
        self.members.values().map(Member::view).collect()
    }

    pub fn announced_participants(&self) -> Vec<Participant> {
        self.members
            .values()
            .filter(|m| m.announced)
            .map(Member::view)
            .collect()
    }

    pub fn contains(&self, user: &UserId) -> bool {
        self.members.contains_key(user)
    }

    /// Adds a member, or hands an existing one a new connection.
    ///
    /// With the right `resume` token the member is taken over silently (others see
    /// nothing); without it, an older connection of the same user is told
    /// `duplicateSession` and replaced.
    pub fn join(
        &mut self,
        init: MemberInit,
        conn: Conn,
        resume: Option<&str>,
        now: Instant,
        wall: DateTime<Utc>,
    ) -> Result<JoinOutcome, JoinRefusal> {
        let user = init.user.clone();
        let outcome = if let Some(m) = self.members.get_mut(&user) {
            let resumed = resume.is_some_and(|t| t == m.resume_token);
            if let Some(old) = m.conn.take() {
                let last = (!resumed).then(|| {
                    frame(&ServerMessage::Left {
                        reason: LeaveReason::DuplicateSession,
                    })
                });
                old.finish(last.as_ref());
            }
            m.conn = Some(conn);
            m.dropped_at = None;
            if m.lagging {
                // The new connection starts with a full `joined`.
                m.lagging = false;
                self.laggards -= 1;
            }
            if m.init.role != init.role && m.announced {
                self.updated.insert(user.clone());
            }
            m.init = init;
            if resumed {
                JoinOutcome::Resumed
            } else {
                // A new client: its media starts off, and others see that.
                if m.media != Media::default() {
                    m.media = Media::default();
                    self.gates_dirty.insert(user.clone());
                    if m.announced {
                        self.updated.insert(user.clone());
                    }
                }
                m.resume_token = crate::ids::random_token(24);
                // A new client (a reload, another tab) brings new peer connections: the
                // relay drops the old ones so the new offer and subscribe start afresh.
                self.departed.push(user.clone());
                JoinOutcome::Replaced
            }
        } else {
            if let Some(max) = self.room.max_participants {
                if self.members.len() >= max as usize {
                    return Err(JoinRefusal::RoomFull);
                }
            }
            let announced =
                init.role != Role::Consumer || self.announced < self.room.announce_limit as usize;
            if announced {
                self.announced += 1;
                // Left and back within one batch: others just see it updated.
                if self.removed.remove(&user) {
                    self.updated.insert(user.clone());
                } else {
                    self.added.insert(user.clone());
                }
            } else {
                self.audience_dirty = true;
            }
            self.members.insert(
                user.clone(),
                Member {
                    init,
                    media: Media::default(),
                    joined_at: wall,
                    announced,
                    resume_token: crate::ids::random_token(24),
                    conn: Some(conn),
                    lagging: false,
                    dropped_at: None,
                    chat_tokens: CHAT_BURST,
                    chat_at: now,
                },
            );
            JoinOutcome::Joined
        };
        let joined = self.joined_message(&user, outcome == JoinOutcome::Resumed);
        self.send_to(&user, &frame(&joined));
        Ok(outcome)
    }

    fn joined_message(&self, user: &UserId, resumed: bool) -> ServerMessage {
        let m = &self.members[user];
        ServerMessage::Joined {
            protocol_version: PROTOCOL_VERSION,
            me: m.view(),
            room: RoomInfo {
                id: self.room.id.to_string(),
                name: self.room.name.clone(),
                valid_from: self.room.valid_from.to_rfc3339(),
                valid_until: self.room.valid_until.to_rfc3339(),
                is_message_disabled: self.room.is_message_disabled,
            },
            session: SessionInfo {
                id: self.id.to_string(),
                started_at: self.started_at.to_rfc3339(),
            },
            participants: self.announced_participants(),
            audience_count: self.audience_count(),
            capabilities: m.init.role.capabilities(),
            ice_servers: self.ice_servers.clone(),
            resume: ResumeInfo {
                token: m.resume_token.clone(),
                grace_seconds: self.resume_grace.as_secs() as u32,
            },
            resumed,
        }
    }

    /// The token id a member joined with.
    pub fn token_of(&self, user: &UserId) -> Option<String> {
        self.members.get(user).map(|m| m.init.jti.clone())
    }

    /// Whether `conn_id` is the member's current connection (older ones are ignored).
    pub fn is_current(&self, user: &UserId, conn_id: u64) -> bool {
        self.members
            .get(user)
            .and_then(|m| m.conn.as_ref())
            .is_some_and(|c| c.id == conn_id)
    }

    /// The socket dropped without `leave`: keep the member for the resume grace.
    pub fn detach(&mut self, user: &UserId, conn_id: u64, now: Instant) {
        if !self.is_current(user, conn_id) {
            return;
        }
        if let Some(m) = self.members.get_mut(user) {
            m.conn = None;
            m.dropped_at = Some(now);
        }
    }

    /// When the next dropped member's grace runs out.
    pub fn next_grace_deadline(&self) -> Option<Instant> {
        self.members
            .values()
            .filter_map(|m| m.dropped_at)
            .min()
            .map(|t| t + self.resume_grace)
    }

    /// Removes dropped members whose grace has run out; returns them.
    pub fn expire_dropped(&mut self, now: Instant) -> Vec<UserId> {
        let gone: Vec<UserId> = self
            .members
            .values()
            .filter(|m| m.dropped_at.is_some_and(|t| t + self.resume_grace <= now))
            .map(|m| m.init.user.clone())
            .collect();
        for u in &gone {
            self.remove(u, LeaveReason::Timeout);
        }
        gone
    }

    /// Takes a member out, telling it why (when it is still connected).
    pub fn remove(&mut self, user: &UserId, reason: LeaveReason) -> bool {
        let Some(m) = self.members.remove(user) else {
            return false;
        };
        self.departed.push(user.clone());
        if m.lagging {
            self.laggards -= 1;
        }
        if let Some(conn) = m.conn {
            conn.finish(Some(&frame(&ServerMessage::Left { reason })));
        }
        if m.announced {
            self.announced -= 1;
            if !self.added.remove(user) {
                self.removed.insert(user.clone());
            }
            self.updated.remove(user);
        } else {
            self.audience_dirty = true;
        }
        true
    }

    /// Removes the members whose token or invitation is no longer good.
    pub fn remove_where(&mut self, reason: LeaveReason, pred: impl Fn(&MemberInit) -> bool) {
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
    pub fn end(&mut self, reason: LeaveReason) {
        let all: Vec<UserId> = self.members.keys().cloned().collect();
        for u in all {
            self.remove(&u, reason);
        }
        self.added.clear();
        self.removed.clear();
        self.updated.clear();
        self.audience_dirty = false;
    }

    /// The admin changed a member's role: tell it its new rights, and stop what the new
    /// role may not publish.
    pub fn change_role(&mut self, user: &UserId, role: Role) {
        let Some(m) = self.members.get_mut(user) else {
            return;
        };
        if m.init.role == role {
            return;
        }
        m.init.role = role;
        if !m.announced && role != Role::Consumer {
            // Members who may publish are always announced.
            m.announced = true;
            self.announced += 1;
            self.added.insert(user.clone());
            self.audience_dirty = true;
        }
        let caps = role.capabilities();
        let before = m.media;
        m.media.audio &= caps.publish_audio;
        m.media.video &= caps.publish_video;
        m.media.screen &= caps.publish_screen;
        let media_changed = m.media != before;
        let announced = m.announced;
        self.gates_dirty.insert(user.clone());
        let msg = ServerMessage::CapabilitiesChanged {
            role: role.as_str().to_string(),
            capabilities: role.capabilities(),
        };
        self.send_to(user, &frame(&msg));
        if media_changed {
            self.broadcast_media(user, Some("roleChanged".into()));
        }
        if announced {
            self.updated.insert(user.clone());
        }
    }

    /// `setMedia` from the member itself.
    pub fn set_media(
        &mut self,
        user: &UserId,
        audio: Option<bool>,
        video: Option<bool>,
        screen: Option<bool>,
    ) {
        let Some(m) = self.members.get_mut(user) else {
            return;
        };
        let caps = m.init.role.capabilities();
        let refused = (audio == Some(true) && !caps.publish_audio)
            || (video == Some(true) && !caps.publish_video)
            || (screen == Some(true) && !caps.publish_screen);
        if refused {
            let f = error_frame(
                ErrorCode::PermissionDenied,
                format!("the {} role may not publish that", m.init.role),
            );
            self.send_to(user, &f);
            return;
        }
        let before = m.media;
        m.media.audio = audio.unwrap_or(m.media.audio);
        m.media.video = video.unwrap_or(m.media.video);
        m.media.screen = screen.unwrap_or(m.media.screen);
        if m.media != before {
            self.gates_dirty.insert(user.clone());
            self.broadcast_media(user, None);
        }
    }

    /// A moderator turns another member's media off.
    pub fn mute(&mut self, by: &UserId, target: &str, audio: bool, video: bool, screen: bool) {
        let allowed = self
            .members
            .get(by)
            .is_some_and(|m| m.init.role.capabilities().moderate);
        if !allowed {
            let f = error_frame(
                ErrorCode::PermissionDenied,
                "only a presenter may mute others",
            );
            self.send_to(by, &f);
            return;
        }
        let Some((uid, m)) = self.members.iter_mut().find(|(u, _)| u.as_str() == target) else {
            let f = error_frame(
                ErrorCode::NotInRoom,
                format!("'{target}' is not in the room"),
            );
            self.send_to(by, &f);
            return;
        };
        let uid = uid.clone();
        let before = m.media;
        m.media.audio &= !audio;
        m.media.video &= !video;
        m.media.screen &= !screen;
        if m.media != before {
            self.gates_dirty.insert(uid.clone());
            self.broadcast_media(&uid, Some(format!("mutedBy:{by}")));
        }
    }

    fn broadcast_media(&mut self, user: &UserId, reason: Option<String>) {
        let Some(m) = self.members.get(user) else {
            return;
        };
        let msg = ServerMessage::MediaChanged {
            participant_id: user.to_string(),
            audio: m.media.audio,
            video: m.media.video,
            screen: m.media.screen,
            reason,
        };
        self.broadcast(&frame(&msg));
    }

    /// Room chat, checked against the room's setting, the size limit and the sender's
    /// allowance.
    pub fn chat(&mut self, user: &UserId, text: String, now: Instant, wall: DateTime<Utc>) {
        let refusal = if self.room.is_message_disabled {
            Some((
                ErrorCode::PermissionDenied,
                "messages are disabled in this room".to_string(),
            ))
        } else if text.is_empty() || text.len() > convene_protocol::signal::MAX_CHAT_BYTES {
            Some((
                ErrorCode::InvalidParameter,
                format!(
                    "a message must be 1 to {} bytes",
                    convene_protocol::signal::MAX_CHAT_BYTES
                ),
            ))
        } else {
            None
        };
        if let Some((code, msg)) = refusal {
            self.send_to(user, &error_frame(code, msg));
            return;
        }
        let Some(m) = self.members.get_mut(user) else {
            return;
        };
        let elapsed = now.saturating_duration_since(m.chat_at).as_secs_f64();
        m.chat_tokens = (m.chat_tokens + elapsed * CHAT_PER_SECOND).min(CHAT_BURST);
        m.chat_at = now;
        if m.chat_tokens < 1.0 {
            let f = error_frame(
                ErrorCode::RateLimited,
                format!("too many messages; at most {CHAT_PER_SECOND} per second"),
            );
            self.send_to(user, &f);
            return;
        }
        m.chat_tokens -= 1.0;
        let msg = ServerMessage::Message {
            from: user.to_string(),
            text,
            sent_at: wall.to_rfc3339(),
        };
        self.broadcast(&frame(&msg));
    }

    /// A page of the members not announced individually, by user id.
    pub fn list_audience(&mut self, user: &UserId, after: Option<&str>, limit: Option<u32>) {
        let limit = (limit.unwrap_or(100) as usize).clamp(1, MAX_AUDIENCE_PAGE);
        let start = match after.map(UserId::parse) {
            Some(Ok(a)) => std::ops::Bound::Excluded(a),
            _ => std::ops::Bound::Unbounded,
        };
        let mut page: Vec<Participant> = self
            .members
            .range((start, std::ops::Bound::Unbounded))
            .map(|(_, m)| m)
            .filter(|m| !m.announced)
            .take(limit + 1)
            .map(Member::view)
            .collect();
        let next = if page.len() > limit {
            page.truncate(limit);
            page.last().map(|p| p.id.clone())
        } else {
            None
        };
        let msg = ServerMessage::Audience {
            participants: page,
            next,
        };
        self.send_to(user, &frame(&msg));
    }

    /// Sends one batch of membership deltas to everyone, and fresh snapshots to members
    /// that fell behind. Deltas apply by id, so a member may see itself in `added`.
    pub fn flush(&mut self) {
        if self.has_pending() {
            let view = |u: &UserId| self.members.get(u).map(Member::view);
            let added: Vec<Participant> = self.added.iter().filter_map(view).collect();
            let updated: Vec<Participant> = self
                .updated
                .iter()
                .filter(|u| !self.added.contains(*u))
                .filter_map(view)
                .collect();
            let msg = ServerMessage::ParticipantsChanged {
                added,
                removed: self.removed.iter().map(|u| u.to_string()).collect(),
                updated,
                audience_count: self.audience_count(),
            };
            self.added.clear();
            self.removed.clear();
            self.updated.clear();
            self.audience_dirty = false;
            self.broadcast(&frame(&msg));
        }
        self.resync_laggards();
    }

    fn resync_laggards(&mut self) {
        if !self.members.values().any(|m| m.lagging) {
            return;
        }
        let snapshot = frame(&ServerMessage::Snapshot {
            participants: self.announced_participants(),
            audience_count: self.audience_count(),
        });
        for m in self.members.values_mut().filter(|m| m.lagging) {
            match &m.conn {
                Some(c) if c.offer(&snapshot) == Offer::Full => {}
                // Queued, or no connection (a resume sends a full `joined`).
                _ => m.lagging = false,
            }
        }
        self.laggards = self.members.values().filter(|m| m.lagging).count();
    }

    /// Tells one member that its request was refused.
    pub fn notify_error(&mut self, user: &UserId, code: ErrorCode, message: &str) {
        self.send_to(user, &error_frame(code, message));
    }

    pub fn has_laggards(&self) -> bool {
        self.laggards > 0
    }

    pub fn lagging_count(&self) -> usize {
        self.laggards
    }

    fn send_to(&mut self, user: &UserId, f: &Bytes) {
        if let Some(m) = self.members.get_mut(user) {
            if let Some(c) = &m.conn {
                if c.offer(f) == Offer::Full && !m.lagging {
                    m.lagging = true;
                    self.laggards += 1;
                }
            }
        }
    }

    /// One frame to every connected member that keeps up; a full queue marks its
    /// member as lagging instead of waiting.
    fn broadcast(&mut self, f: &Bytes) {
        for m in self.members.values_mut() {
            if m.lagging {
                continue;
            }
            if let Some(c) = &m.conn {
                if c.offer(f) == Offer::Full {
                    m.lagging = true;
                    self.laggards += 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rooms::live::test_conn;
    use crate::rooms::outbound::Outbound;
    use chrono::TimeZone;
    use tokio::sync::mpsc::Receiver;

    fn room(limit: u32) -> Room {
        let t = Utc.with_ymd_and_hms(2026, 3, 1, 10, 0, 0).unwrap();
        Room {
            id: crate::ids::RoomId::parse("r").unwrap(),
            name: String::new(),
            created_at: t,
            valid_from: t,
            valid_until: t + chrono::Duration::days(1),
            max_participants: None,
            join_policy: Default::default(),
            is_message_disabled: false,
            is_public_visible: false,
            cover_url: None,
            destroy_delay_seconds: 0,
            announce_limit: limit,
            attributes: Default::default(),
        }
    }

    fn init(user: &str, role: Role) -> MemberInit {
        MemberInit {
            user: UserId::parse(user).unwrap(),
            role,
            jti: format!("t_{user}"),
            invite_id: "i".into(),
        }
    }

    fn frames(rx: &mut Receiver<Outbound>) -> Vec<serde_json::Value> {
        let mut out = vec![];
        while let Ok(Outbound::Text(b)) = rx.try_recv() {
            out.push(serde_json::from_slice(&b).unwrap());
        }
        out
    }

    fn session() -> Session {
        Session::new(room(50), Utc::now(), Duration::from_secs(15), vec![])
    }

    #[tokio::test]
    async fn a_slow_member_is_skipped_then_resynchronised() {
        let mut s = session();
        let now = Instant::now();
        let (fast, mut fast_rx) = test_conn(1, 64);
        let (slow, mut slow_rx) = test_conn(2, 2);
        s.join(init("fast", Role::Presenter), fast, None, now, Utc::now())
            .unwrap();
        s.join(init("slow", Role::Attendee), slow, None, now, Utc::now())
            .unwrap();
        // slow's queue: its `joined` plus one more frame, then it is full.
        let fast_user = UserId::parse("fast").unwrap();
        for i in 0..10 {
            s.set_media(&fast_user, Some(i % 2 == 0), None, None);
        }
        assert_eq!(s.lagging_count(), 1);
        // The fast member got every event, and nobody waited.
        let got = frames(&mut fast_rx);
        assert_eq!(
            got.iter().filter(|f| f["type"] == "mediaChanged").count(),
            10
        );
        // Once slow drains its queue, the next flush sends it a snapshot, not deltas.
        let before = frames(&mut slow_rx);
        assert_eq!(before.len(), 2);
        s.flush();
        let after = frames(&mut slow_rx);
        assert_eq!(after.last().unwrap()["type"], "snapshot");
        assert_eq!(
            after.last().unwrap()["participants"]
                .as_array()
                .unwrap()
                .len(),
            2
        );
        assert_eq!(s.lagging_count(), 0);
    }

    #[tokio::test]
    async fn chat_allowance_refills_with_time() {
        let mut s = session();
        let t0 = Instant::now();
        let (c, mut rx) = test_conn(1, 256);
        s.join(init("a", Role::Attendee), c, None, t0, Utc::now())
            .unwrap();
        let a = UserId::parse("a").unwrap();
        for _ in 0..11 {
            s.chat(&a, "hi".into(), t0, Utc::now());
        }
        let got = frames(&mut rx);
        assert_eq!(got.iter().filter(|f| f["type"] == "message").count(), 10);
        assert_eq!(got.last().unwrap()["error"]["code"], "RateLimited");
        // 400 ms later, two more messages are allowed (5 per second).
        for _ in 0..3 {
            s.chat(&a, "hi".into(), t0 + Duration::from_millis(400), Utc::now());
        }
        let got = frames(&mut rx);
        assert_eq!(got.iter().filter(|f| f["type"] == "message").count(), 2);
    }

    #[tokio::test]
    async fn dropped_members_leave_when_grace_runs_out() {
        let mut s = session();
        let t0 = Instant::now();
        let (c, _rx) = test_conn(7, 8);
        s.join(init("a", Role::Attendee), c, None, t0, Utc::now())
            .unwrap();
        s.flush();
        let a = UserId::parse("a").unwrap();
        s.detach(&a, 99, t0); // a stale connection id changes nothing
        assert_eq!(s.next_grace_deadline(), None);
        s.detach(&a, 7, t0);
        assert_eq!(s.next_grace_deadline(), Some(t0 + Duration::from_secs(15)));
        assert!(s.expire_dropped(t0 + Duration::from_secs(14)).is_empty());
        assert_eq!(s.expire_dropped(t0 + Duration::from_secs(15)), vec![a]);
        assert!(s.is_empty());
        assert!(s.has_pending());
    }

    #[tokio::test]
    async fn capacity_and_announcing() {
        let mut r = room(1);
        r.max_participants = Some(3);
        let mut s = Session::new(r, Utc::now(), Duration::from_secs(15), vec![]);
        let t = Instant::now();
        for (u, role) in [
            ("c1", Role::Consumer),
            ("c2", Role::Consumer),
            ("p", Role::Presenter),
        ] {
            let (c, _rx) = test_conn(1, 8);
            s.join(init(u, role), c, None, t, Utc::now()).unwrap();
        }
        assert_eq!(s.audience_count(), 1, "c2 is past the limit of 1");
        assert_eq!(s.announced_participants().len(), 2);
        let (c, _rx) = test_conn(2, 8);
        assert_eq!(
            s.join(init("x", Role::Attendee), c, None, t, Utc::now()),
            Err(JoinRefusal::RoomFull)
        );
    }

    #[tokio::test]
    async fn promoting_an_audience_member_announces_it() {
        let mut s = Session::new(room(0), Utc::now(), Duration::from_secs(15), vec![]);
        let t = Instant::now();
        let (c, _rx) = test_conn(1, 8);
        s.join(init("v", Role::Consumer), c, None, t, Utc::now())
            .unwrap();
        let (w, mut wrx) = test_conn(2, 64);
        s.join(init("w", Role::Presenter), w, None, t, Utc::now())
            .unwrap();
        s.flush();
        assert_eq!(s.audience_count(), 1);
        frames(&mut wrx);
        s.change_role(&UserId::parse("v").unwrap(), Role::Attendee);
        s.flush();
        assert_eq!(s.audience_count(), 0);
        let got = frames(&mut wrx);
        let batch = got
            .iter()
            .find(|f| f["type"] == "participantsChanged")
            .unwrap();
        assert_eq!(batch["added"][0]["id"], "v");
        assert_eq!(batch["audienceCount"], 0);
    }

    #[tokio::test]
    async fn leaving_and_returning_within_a_batch_is_an_update() {
        let mut s = session();
        let t = Instant::now();
        let (w, mut wrx) = test_conn(1, 64);
        s.join(init("w", Role::Attendee), w, None, t, Utc::now())
            .unwrap();
        let (a, _arx) = test_conn(2, 8);
        s.join(init("a", Role::Attendee), a, None, t, Utc::now())
            .unwrap();
        s.flush();
        frames(&mut wrx);
        let a_id = UserId::parse("a").unwrap();
        s.remove(&a_id, LeaveReason::Timeout);
        let (a2, _arx2) = test_conn(3, 8);
        s.join(init("a", Role::Attendee), a2, None, t, Utc::now())
            .unwrap();
        s.flush();
        let got = frames(&mut wrx);
        let batch = got
            .iter()
            .find(|f| f["type"] == "participantsChanged")
            .unwrap();
        assert_eq!(batch["removed"], serde_json::json!([]));
        assert_eq!(batch["added"], serde_json::json!([]));
        assert_eq!(batch["updated"][0]["id"], "a");
    }
}
