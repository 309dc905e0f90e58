//! The notice that the room's window is about to end, so a page can count down instead
//! of the call just stopping at `validUntil`: `roomEnding` goes to everyone
//! `ROOM_ENDING_NOTICE_SECONDS` before the end, to members who join after that, and
//! again when an admin moves the end while a notice stands (with the new end: a later
//! one lifts the notice).

use std::time::{Duration, Instant};

use convene_protocol::signal::{ServerMessage, ROOM_ENDING_NOTICE_SECONDS};

use super::output::Output;
use super::{ConnId, Session};
use crate::clock::Now;

const NOTICE: Duration = Duration::from_secs(ROOM_ENDING_NOTICE_SECONDS);

impl Session {
    /// When the notice for the current end is due; `None` once it went out.
    pub(super) fn ending_notice_at(&self, now: Now) -> Option<Instant> {
        let end = self.room.valid_until;
        let notice = chrono::Duration::from_std(NOTICE).expect("a few minutes");
        (self.ending_told != Some(end)).then(|| now.mono_at(end - notice))
    }

    /// Sends the notice when it is due, or again when the end moved after one.
    pub(super) fn check_ending(&mut self) {
        let end = self.room.valid_until;
        if self.ending_told == Some(end) {
            return;
        }
        let left = self.seconds_left();
        let due = left <= ROOM_ENDING_NOTICE_SECONDS;
        if due || self.ending_told.is_some() {
            let msg = self.ending_message(left);
            self.out.push(Output::Broadcast(msg));
        }
        self.ending_told = due.then_some(end);
    }

    /// A member joining while a notice stands gets it too.
    pub(super) fn tell_ending(&mut self, conn: ConnId) {
        if self.ending_told == Some(self.room.valid_until) {
            let msg = self.ending_message(self.seconds_left());
            self.out.send(Some(conn), msg);
        }
    }

    fn seconds_left(&self) -> u64 {
        (self.room.valid_until - self.wall).num_seconds().max(0) as u64
    }

    fn ending_message(&self, seconds_left: u64) -> ServerMessage {
        ServerMessage::RoomEnding {
            valid_until: self.room.valid_until.to_rfc3339(),
            seconds_left,
        }
    }
}
