//! Connection quality: each member's link graded `excellent`, `good`, `poor` or `lost`,
//! and `connectionQualityChanged` when the grade changes.
//!
//! The relay sends a window of figures for each of a member's two connections every
//! two seconds (`sfu::quality`): loss on what the member sends (its uplink), and the
//! loss, jitter and round trip it reports on what it receives (its downlink). The grade
//! is the worse of the two, each from the worst of its figures (`grade`); a window
//! older than `STALE` (the member stopped sending, say) no longer counts. A worse grade
//! is told at once; a better one only after `BETTER_IN_A_ROW` windows in a row say so,
//! so a link near a line does not flap. A member whose signaling connection dropped is
//! `lost` until it resumes, then back to its grade.
//!
//! Everyone hears about announced members; a member in the audience (not announced in
//! a large room) hears only about itself, so a crowd's links cost the room nothing. A
//! member who joins or resumes, or who fell behind and gets a snapshot, is told the
//! grades as they stand. Each grade change is its own message: a member's grade changes
//! at most once per window (2 s), and only when the grade does.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use convene_protocol::signal::{ConnectionQuality, PcKind, ServerMessage};

use super::output::Output;
use super::{ConnId, Session};
use crate::ids::UserId;
use crate::sfu::quality::{LinkWindow, WINDOW};

/// A window this old no longer counts (three windows missed).
const STALE: Duration = Duration::from_secs(WINDOW.as_secs() * 3);
/// Windows in a row that must say "better" before a better grade is told.
const BETTER_IN_A_ROW: u8 = 3;

/// One window's grade: the worst any of its figures earns.
pub fn grade(w: &LinkWindow) -> ConnectionQuality {
    let rtt = w.rtt_ms.unwrap_or(0);
    let jitter = w.jitter_ms.unwrap_or(0);
    if w.loss >= 0.10 || rtt >= 500 || jitter >= 100 {
        ConnectionQuality::Poor
    } else if w.loss >= 0.03 || rtt >= 250 || jitter >= 50 {
        ConnectionQuality::Good
    } else {
        ConnectionQuality::Excellent
    }
}

#[derive(Debug, Default)]
struct Link {
    up: Option<(LinkWindow, Instant)>,
    down: Option<(LinkWindow, Instant)>,
    /// The grade the figures earned, as last told (or to tell again after a resume).
    graded: Option<ConnectionQuality>,
    better_in_a_row: u8,
}

#[derive(Debug, Default)]
pub struct Qualities {
    links: HashMap<UserId, Link>,
    /// What everyone was last told about each member (`lost` included).
    pub(super) told: HashMap<UserId, ConnectionQuality>,
}

impl Qualities {
    /// A window for one of `member`'s connections; the grade to tell, if it changed.
    fn window(
        &mut self,
        member: &UserId,
        pc: PcKind,
        w: LinkWindow,
        now: Instant,
    ) -> Option<ConnectionQuality> {
        let link = self.links.entry(member.clone()).or_default();
        match pc {
            PcKind::Publish => link.up = Some((w, now)),
            PcKind::Subscribe => link.down = Some((w, now)),
        }
        let fresh = |x: &Option<(LinkWindow, Instant)>| {
            x.filter(|(_, at)| now.saturating_duration_since(*at) < STALE)
                .map(|(w, _)| grade(&w))
        };
        let now_grade = fresh(&link.up).max(fresh(&link.down))?;
        let tell = match link.graded {
            Some(g) if now_grade > g => true,
            Some(g) if now_grade < g => {
                link.better_in_a_row += 1;
                link.better_in_a_row >= BETTER_IN_A_ROW
            }
            Some(_) => {
                link.better_in_a_row = 0;
                false
            }
            None => true,
        };
        if !tell {
            return None;
        }
        link.better_in_a_row = 0;
        link.graded = Some(now_grade);
        Some(now_grade)
    }

    pub fn forget(&mut self, member: &UserId) {
        self.links.remove(member);
        self.told.remove(member);
    }
}

impl Session {
    /// The relay's window of figures for one of `member`'s connections.
    pub(super) fn link_quality(&mut self, member: &UserId, pc: PcKind, w: LinkWindow) {
        let Some(m) = self.members.get(member) else {
            return;
        };
        let dropped = m.conn.is_none();
        let Some(grade) = self.qualities.window(member, pc, w, self.mono) else {
            return;
        };
        // While dropped it stays `lost`; the grade is told when it resumes.
        if !dropped {
            self.tell_quality(member, grade);
        }
    }

    /// Its signaling connection dropped (`true`) or came back.
    pub(super) fn quality_dropped(&mut self, member: &UserId, dropped: bool) {
        let grade = if dropped {
            Some(ConnectionQuality::Lost)
        } else {
            self.qualities.links.get(member).and_then(|l| l.graded)
        };
        match grade {
            Some(g) => self.tell_quality(member, g),
            // Back, and never graded: nothing left to say but that it is not lost.
            None if self.qualities.told.contains_key(member) => {
                self.qualities.told.remove(member);
                self.tell_quality(member, ConnectionQuality::Excellent);
            }
            None => {}
        }
    }

    fn tell_quality(&mut self, member: &UserId, quality: ConnectionQuality) {
        if self.qualities.told.get(member) == Some(&quality) {
            return;
        }
        self.qualities.told.insert(member.clone(), quality);
        let msg = ServerMessage::ConnectionQualityChanged {
            participant_id: member.to_string(),
            quality,
        };
        let announced = self.members.get(member).is_some_and(|m| m.announced);
        if announced {
            self.out.push(Output::Broadcast(msg));
        } else {
            self.send_to(member, msg);
        }
    }

    /// A member who joins or resumes (`user`), or one that fell behind and gets a
    /// snapshot, hears the grades as they stand: the announced members' and its own.
    pub(super) fn tell_qualities(&mut self, conn: ConnId, user: Option<&UserId>) {
        let mut told: Vec<(UserId, ConnectionQuality)> = self
            .qualities
            .told
            .iter()
            .filter(|(id, _)| {
                Some(*id) == user || self.members.get(id).is_some_and(|m| m.announced)
            })
            .map(|(id, q)| (id.clone(), *q))
            .collect();
        told.sort();
        for (id, quality) in told {
            // Its own `lost` is over: it is here.
            if Some(&id) == user && quality == ConnectionQuality::Lost {
                continue;
            }
            self.out.send(
                Some(conn),
                ServerMessage::ConnectionQualityChanged {
                    participant_id: id.to_string(),
                    quality,
                },
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(loss: f32, rtt: u32, jitter: u32) -> LinkWindow {
        LinkWindow {
            loss,
            rtt_ms: Some(rtt),
            jitter_ms: Some(jitter),
        }
    }

    #[test]
    fn each_figure_can_lower_the_grade() {
        use ConnectionQuality::*;
        assert_eq!(grade(&w(0.0, 20, 5)), Excellent);
        assert_eq!(grade(&LinkWindow::default()), Excellent);
        assert_eq!(grade(&w(0.05, 20, 5)), Good);
        assert_eq!(grade(&w(0.0, 300, 5)), Good);
        assert_eq!(grade(&w(0.0, 20, 60)), Good);
        assert_eq!(grade(&w(0.2, 20, 5)), Poor);
        assert_eq!(grade(&w(0.0, 800, 5)), Poor);
        assert_eq!(grade(&w(0.0, 20, 150)), Poor);
    }

    #[test]
    fn worse_at_once_better_after_three_windows_and_stale_windows_drop_out() {
        use ConnectionQuality::*;
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let a = UserId::parse("a").unwrap();
        let mut q = Qualities::default();
        assert_eq!(
            q.window(&a, PcKind::Subscribe, w(0.0, 20, 5), at(0)),
            Some(Excellent)
        );
        assert_eq!(q.window(&a, PcKind::Subscribe, w(0.0, 20, 5), at(2)), None);
        // The uplink loses a fifth: poor at once, though the downlink is fine.
        assert_eq!(
            q.window(&a, PcKind::Publish, w(0.2, 0, 0), at(3)),
            Some(Poor)
        );
        // The uplink recovers: two windows are not enough, the third tells.
        assert_eq!(q.window(&a, PcKind::Publish, w(0.0, 0, 0), at(5)), None);
        assert_eq!(q.window(&a, PcKind::Subscribe, w(0.0, 20, 5), at(6)), None);
        assert_eq!(
            q.window(&a, PcKind::Publish, w(0.0, 0, 0), at(7)),
            Some(Excellent)
        );
        // A "better" streak broken by a window of the same grade starts again.
        assert_eq!(
            q.window(&a, PcKind::Publish, w(0.05, 0, 0), at(9)),
            Some(Good)
        );
        assert_eq!(q.window(&a, PcKind::Publish, w(0.0, 0, 0), at(11)), None);
        assert_eq!(q.window(&a, PcKind::Publish, w(0.05, 0, 0), at(13)), None);
        assert_eq!(q.window(&a, PcKind::Publish, w(0.0, 0, 0), at(15)), None);
        assert_eq!(q.window(&a, PcKind::Publish, w(0.0, 0, 0), at(17)), None);
        assert_eq!(
            q.window(&a, PcKind::Publish, w(0.0, 0, 0), at(19)),
            Some(Excellent)
        );
        // A bad downlink, then only uplink windows: after `STALE` the old one no longer
        // holds the grade down.
        assert_eq!(
            q.window(&a, PcKind::Subscribe, w(0.5, 20, 5), at(20)),
            Some(Poor)
        );
        for s in [22, 24] {
            assert_eq!(q.window(&a, PcKind::Publish, w(0.0, 0, 0), at(s)), None);
        }
        let mut told = None;
        for s in [26, 28, 30, 32] {
            told = told.or(q.window(&a, PcKind::Publish, w(0.0, 0, 0), at(s)));
        }
        assert_eq!(told, Some(Excellent));
    }
}
