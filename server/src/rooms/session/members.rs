//! The member table of one session and the roster deltas others have not been told yet.
//! Members are announced one by one up to the room's limit; past it, receive-only
//! members count as the audience and are listed on request.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;
use std::time::Instant;

use chrono::{DateTime, Utc};
use convene_protocol::signal::{Participant, ServerMessage};

use crate::ids::{ConnId, UserId};
use crate::model::{MediaSet, Role};
use crate::rate::TokenBucket;

/// Largest page of `listAudience`.
pub const MAX_AUDIENCE_PAGE: usize = 500;

/// Who is joining, as admission checked it (token, roster, window). Serializable: a
/// node that admitted a member hands it to the room's home node this way.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MemberInit {
    pub user: UserId,
    pub role: Role,
    pub jti: String,
    pub invite_id: String,
    /// A guest's display name (from its guest token).
    pub name: Option<String>,
}

#[derive(Debug)]
pub struct Member {
    pub init: MemberInit,
    pub media: MediaSet,
    /// Kinds last turned off by the member itself (or a presenter's mute): the relay's
    /// report that a new track started does not turn them back on. A mute clicked while
    /// the microphone was still being published would otherwise be undone by it.
    pub turned_off: MediaSet,
    pub joined_at: DateTime<Utc>,
    pub announced: bool,
    pub resume_token: String,
    /// Its current connection; `None` while dropped and waiting for a resume.
    pub conn: Option<ConnId>,
    /// Its queue overflowed: it gets a snapshot at the next flush instead of deltas.
    pub lagging: bool,
    /// When its connection dropped; it is kept until the resume grace runs out.
    /// Set only through `Members::set_dropped`, which keeps the index of dropped members.
    pub dropped_at: Option<Instant>,
    pub chat: TokenBucket,
    /// Its own small key-value map (a raised hand...), set by itself or a presenter.
    pub attributes: BTreeMap<String, String>,
}

impl Member {
    pub fn view(&self) -> Participant {
        Participant {
            id: self.init.user.to_string(),
            role: self.init.role.as_str().to_string(),
            audio: self.media.audio,
            video: self.media.video,
            screen: self.media.screen,
            joined_at: self.joined_at.to_rfc3339(),
            name: self.init.name.clone(),
            attributes: self.attributes.clone(),
        }
    }
}

/// What others have not been told yet.
#[derive(Debug, Default)]
struct Delta {
    added: BTreeSet<UserId>,
    removed: BTreeSet<UserId>,
    updated: BTreeSet<UserId>,
    audience: bool,
}

#[derive(Debug, Default)]
pub struct Members {
    map: BTreeMap<UserId, Member>,
    /// Members kept after a drop, by when they dropped: the next grace deadline is the
    /// first entry, found without walking every member on every input.
    dropped: BTreeSet<(Instant, UserId)>,
    announced: usize,
    laggards: usize,
    delta: Delta,
}

impl Members {
    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn get(&self, user: &UserId) -> Option<&Member> {
        self.map.get(user)
    }

    pub fn get_mut(&mut self, user: &UserId) -> Option<&mut Member> {
        self.map.get_mut(user)
    }

    pub fn find(&self, user: &str) -> Option<&UserId> {
        self.map.keys().find(|u| u.as_str() == user)
    }

    pub fn values(&self) -> impl Iterator<Item = &Member> {
        self.map.values()
    }

    pub fn users(&self) -> Vec<UserId> {
        self.map.keys().cloned().collect()
    }

    /// The member's current connection, if `conn` is it (older ones are ignored).
    pub fn is_current(&self, user: &UserId, conn: ConnId) -> bool {
        self.map.get(user).and_then(|m| m.conn) == Some(conn)
    }

    pub fn audience_count(&self) -> u32 {
        (self.map.len() - self.announced) as u32
    }

    /// Adds a new member, announcing it when it publishes or the room's limit allows.
    pub fn insert(&mut self, mut m: Member, announce_limit: u32) {
        let user = m.init.user.clone();
        m.announced = m.init.role.publishes() || self.announced < announce_limit as usize;
        if m.announced {
            self.announced += 1;
            // Left and back within one batch: others just see it updated.
            if self.delta.removed.remove(&user) {
                self.delta.updated.insert(user.clone());
            } else {
                self.delta.added.insert(user.clone());
            }
        } else {
            self.delta.audience = true;
        }
        self.map.insert(user, m);
    }

    /// Marks the member dropped at `at` (kept for resume), or back (`None`).
    pub fn set_dropped(&mut self, user: &UserId, at: Option<Instant>) {
        let Some(m) = self.map.get_mut(user) else {
            return;
        };
        if let Some(old) = m.dropped_at.take() {
            self.dropped.remove(&(old, user.clone()));
        }
        if let Some(t) = at {
            self.dropped.insert((t, user.clone()));
        }
        m.dropped_at = at;
    }

    /// When the member that dropped first dropped.
    pub fn first_dropped(&self) -> Option<Instant> {
        self.dropped.first().map(|(t, _)| *t)
    }

    /// Members that dropped at or before `t`.
    pub fn dropped_by(&self, t: Instant) -> Vec<UserId> {
        self.dropped
            .iter()
            .take_while(|(at, _)| *at <= t)
            .map(|(_, u)| u.clone())
            .collect()
    }

    pub fn remove(&mut self, user: &UserId) -> Option<Member> {
        let m = self.map.remove(user)?;
        if let Some(t) = m.dropped_at {
            self.dropped.remove(&(t, user.clone()));
        }
        if m.lagging {
            self.laggards -= 1;
        }
        if m.announced {
            self.announced -= 1;
            if !self.delta.added.remove(user) {
                self.delta.removed.insert(user.clone());
            }
            self.delta.updated.remove(user);
        } else {
            self.delta.audience = true;
        }
        Some(m)
    }

    /// Others will see this member's new state in the next batch.
    pub fn touch(&mut self, user: &UserId) {
        if self.map.get(user).is_some_and(|m| m.announced) {
            self.delta.updated.insert(user.clone());
        }
    }

    /// A member that may now publish is announced from now on.
    pub fn announce(&mut self, user: &UserId) {
        let Some(m) = self.map.get_mut(user) else {
            return;
        };
        if !m.announced {
            m.announced = true;
            self.announced += 1;
            self.delta.added.insert(user.clone());
            self.delta.audience = true;
        }
    }

    pub fn set_lagging(&mut self, user: &UserId, lagging: bool) {
        if let Some(m) = self.map.get_mut(user) {
            if m.lagging != lagging {
                m.lagging = lagging;
                if lagging {
                    self.laggards += 1;
                } else {
                    self.laggards -= 1;
                }
            }
        }
    }

    pub fn laggards(&self) -> usize {
        self.laggards
    }

    /// Connections of members that fell behind, now marked as caught up (a snapshot is
    /// on its way to them; the driver reports again if it does not fit either).
    pub fn take_laggards(&mut self) -> Vec<ConnId> {
        if self.laggards == 0 {
            return vec![];
        }
        let mut out = vec![];
        for m in self.map.values_mut().filter(|m| m.lagging) {
            m.lagging = false;
            out.extend(m.conn);
        }
        self.laggards = 0;
        out
    }

    pub fn all(&self) -> Vec<Participant> {
        self.map.values().map(Member::view).collect()
    }

    pub fn announced_participants(&self) -> Vec<Participant> {
        self.map
            .values()
            .filter(|m| m.announced)
            .map(Member::view)
            .collect()
    }

    /// A page of the members not announced individually, by user id.
    pub fn audience_page(&self, after: Option<&str>, limit: Option<u32>) -> ServerMessage {
        let limit = (limit.unwrap_or(100) as usize).clamp(1, MAX_AUDIENCE_PAGE);
        let start = match after.map(UserId::parse) {
            Some(Ok(a)) => Bound::Excluded(a),
            _ => Bound::Unbounded,
        };
        let mut page: Vec<Participant> = self
            .map
            .range((start, Bound::Unbounded))
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
        ServerMessage::Audience {
            participants: page,
            next,
        }
    }

    pub fn has_pending(&self) -> bool {
        !self.pending_is_audience_only() || self.delta.audience
    }

    /// Only the audience count changed: worth telling everyone, but not every batch.
    pub fn pending_is_audience_only(&self) -> bool {
        self.delta.added.is_empty()
            && self.delta.removed.is_empty()
            && self.delta.updated.is_empty()
    }

    pub fn clear_delta(&mut self) {
        self.delta = Delta::default();
    }

    /// The batch of deltas since the last one (None when there is nothing to say).
    /// Deltas apply by id, so a member may see itself in `added`.
    pub fn take_delta(&mut self) -> Option<ServerMessage> {
        if !self.has_pending() {
            return None;
        }
        let d = std::mem::take(&mut self.delta);
        let view = |u: &UserId| self.map.get(u).map(Member::view);
        Some(ServerMessage::ParticipantsChanged {
            added: d.added.iter().filter_map(view).collect(),
            removed: d.removed.iter().map(|u| u.to_string()).collect(),
            updated: d
                .updated
                .iter()
                .filter(|u| !d.added.contains(*u))
                .filter_map(view)
                .collect(),
            audience_count: self.audience_count(),
        })
    }
}
