//! Who is talking: the relay reports each member's audio level (RFC 6464, in -dBov);
//! a member whose level was at or above speech level within the last `HOLD` is
//! speaking, and `activeSpeakersChanged` tells everyone the list, loudest first, when
//! it changes, at most every `MIN_GAP` (a list that changes inside the gap goes out at
//! its end). The hold keeps a speaker listed through the pauses between words. A member
//! who joins is told the list as it stands.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use convene_protocol::signal::{ActiveSpeaker, ServerMessage, ACTIVE_SPEAKERS_MIN_GAP_MS};

use super::output::Output;
use super::Session;
use crate::ids::UserId;

/// Levels at or below this many -dBov count as speech (quiet rooms sit near 127).
pub const SPEECH_DBOV: u8 = 50;
const HOLD: Duration = Duration::from_millis(1500);
const MIN_GAP: Duration = Duration::from_millis(ACTIVE_SPEAKERS_MIN_GAP_MS);

#[derive(Debug, Default)]
pub struct Speakers {
    /// The loudest level heard from each member while it was speaking, and when.
    loud: HashMap<UserId, (u8, Instant)>,
    /// The list last sent (also for members who join later).
    told_speakers: Vec<ActiveSpeaker>,
    last_sent: Option<Instant>,
}

impl Speakers {
    pub fn heard(&mut self, member: &UserId, dbov: u8, now: Instant) {
        if dbov <= SPEECH_DBOV {
            self.loud.insert(member.clone(), (dbov, now));
        }
    }

    pub fn forget(&mut self, member: &UserId) {
        self.loud.remove(member);
    }

    /// Members speaking at `now`, loudest first (ties by id, so the order is stable).
    fn active(&self, now: Instant) -> Vec<(&UserId, u8)> {
        let mut list: Vec<_> = self
            .loud
            .iter()
            .filter(|(_, (_, at))| now.saturating_duration_since(*at) < HOLD)
            .map(|(id, (dbov, _))| (id, *dbov))
            .collect();
        list.sort_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.cmp(b.0)));
        list
    }

    /// When the list may next change by itself: a speaker's hold running out, or the
    /// end of the gap for a change waiting to go out.
    pub fn next_deadline(&self, now: Instant) -> Option<Instant> {
        let hold_ends = self
            .loud
            .values()
            .map(|(_, at)| *at + HOLD)
            .filter(|t| *t > now)
            .min();
        let gap_ends = self
            .last_sent
            .map(|t| t + MIN_GAP)
            .filter(|t| *t > now && self.changed(now));
        match (hold_ends, gap_ends) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn changed(&self, now: Instant) -> bool {
        let active = self.active(now);
        active.len() != self.told_speakers.len()
            || active
                .iter()
                .zip(&self.told_speakers)
                .any(|((id, _), told)| id.as_str() != told.participant_id)
    }

    /// The message to send at `now`, if the list changed and the gap has passed.
    fn due(&mut self, now: Instant) -> Option<ServerMessage> {
        if !self.changed(now) || self.last_sent.is_some_and(|t| now < t + MIN_GAP) {
            return None;
        }
        let active = self.active(now);
        let speakers = active
            .iter()
            .map(|(id, dbov)| ActiveSpeaker {
                participant_id: id.to_string(),
                // -dBov to a linear amplitude, 0 to 1.
                level: 10f32.powf(-f32::from(*dbov) / 20.0),
            })
            .collect();
        self.told_speakers.clone_from(&speakers);
        self.last_sent = Some(now);
        self.loud
            .retain(|_, (_, at)| now.saturating_duration_since(*at) < HOLD);
        Some(ServerMessage::ActiveSpeakersChanged { speakers })
    }
}

impl Session {
    /// A level from the relay, for a member whose audio may be heard now.
    pub(super) fn audio_level(&mut self, member: &UserId, dbov: u8) {
        let audible = self.members.get(member).is_some_and(|m| m.media.audio);
        if audible {
            self.speakers.heard(member, dbov, self.mono);
        } else {
            self.speakers.forget(member);
        }
    }

    /// A member joining while someone talks hears who; one resuming gets the list even
    /// when empty, since it may hold one that ended while it was away.
    pub(super) fn tell_speakers(&mut self, conn: super::ConnId, resumed: bool) {
        if resumed || !self.speakers.told_speakers.is_empty() {
            let speakers = self.speakers.told_speakers.clone();
            self.out.send(
                Some(conn),
                ServerMessage::ActiveSpeakersChanged { speakers },
            );
        }
    }

    /// Sends the list if it changed and may go out now.
    pub(super) fn flush_speakers(&mut self) {
        if let Some(msg) = self.speakers.due(self.mono) {
            self.out.push(Output::Broadcast(msg));
        }
    }
}
