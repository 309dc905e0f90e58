//! Who is in the call, as the server reported it, and which events a change means.
//! Pure: no browser types, so it is tested natively and in the browser alike.

use std::collections::BTreeMap;

use convene_protocol::signal::Participant;

/// What a message changed, in the order events should fire.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    Joined(Participant),
    Left(Participant),
    /// Microphone, camera or screen state changed (for anyone, including you).
    Media {
        participant: Participant,
        reason: Option<String>,
    },
}

#[derive(Debug, Clone)]
pub struct Roster {
    me: Participant,
    /// Everyone else, by id.
    others: BTreeMap<String, Participant>,
    audience_count: u32,
}

fn same_media(a: &Participant, b: &Participant) -> bool {
    a.audio == b.audio && a.video == b.video && a.screen == b.screen
}

impl Roster {
    /// The list in `joined`. Its members were there before us: no `Joined` events.
    pub fn new(me: Participant, participants: Vec<Participant>, audience_count: u32) -> Self {
        let mut roster = Self {
            me,
            others: BTreeMap::new(),
            audience_count,
        };
        for p in participants {
            if p.id != roster.me.id {
                roster.others.insert(p.id.clone(), p);
            }
        }
        roster
    }

    pub fn me(&self) -> &Participant {
        &self.me
    }

    pub fn get(&self, id: &str) -> Option<&Participant> {
        if id == self.me.id {
            Some(&self.me)
        } else {
            self.others.get(id)
        }
    }

    pub fn audience_count(&self) -> u32 {
        self.audience_count
    }

    /// Everyone in the call, you included, in the order they joined.
    pub fn all(&self) -> Vec<Participant> {
        let mut all: Vec<Participant> = self.others.values().cloned().collect();
        all.push(self.me.clone());
        // RFC 3339 times from one server compare correctly as strings.
        all.sort_by(|a, b| a.joined_at.cmp(&b.joined_at).then(a.id.cmp(&b.id)));
        all
    }

    /// Adds or updates one participant.
    fn upsert(&mut self, p: Participant, reason: Option<String>, out: &mut Vec<Change>) {
        let slot = if p.id == self.me.id {
            Some(&mut self.me)
        } else {
            self.others.get_mut(&p.id)
        };
        match slot {
            Some(old) => {
                let media = !same_media(old, &p);
                *old = p.clone();
                if media {
                    out.push(Change::Media {
                        participant: p,
                        reason,
                    });
                }
            }
            None => {
                self.others.insert(p.id.clone(), p.clone());
                out.push(Change::Joined(p));
            }
        }
    }

    fn remove(&mut self, id: &str, out: &mut Vec<Change>) {
        if let Some(p) = self.others.remove(id) {
            out.push(Change::Left(p));
        }
    }

    /// `participantsChanged`: removals first, so someone who left and came back within
    /// one batch is seen leaving before arriving.
    pub fn apply_delta(
        &mut self,
        added: Vec<Participant>,
        removed: Vec<String>,
        updated: Vec<Participant>,
        audience_count: u32,
    ) -> Vec<Change> {
        let mut out = Vec::new();
        for id in removed {
            self.remove(&id, &mut out);
        }
        for p in added.into_iter().chain(updated) {
            self.upsert(p, None, &mut out);
        }
        self.audience_count = audience_count;
        out
    }

    /// A full list (`snapshot`, or `joined` after a reconnect): the differences.
    pub fn replace(
        &mut self,
        me: Option<Participant>,
        participants: Vec<Participant>,
        audience_count: u32,
    ) -> Vec<Change> {
        let mut out = Vec::new();
        let gone: Vec<String> = self
            .others
            .keys()
            .filter(|id| !participants.iter().any(|p| &p.id == *id))
            .cloned()
            .collect();
        for id in gone {
            self.remove(&id, &mut out);
        }
        for p in me.into_iter().chain(participants) {
            self.upsert(p, None, &mut out);
        }
        self.audience_count = audience_count;
        out
    }

    /// `memberAttributesChanged`: the participant as it is now, if listed.
    pub fn set_attributes(
        &mut self,
        id: &str,
        attributes: BTreeMap<String, String>,
    ) -> Option<Participant> {
        let p = if id == self.me.id {
            &mut self.me
        } else {
            self.others.get_mut(id)?
        };
        p.attributes = attributes;
        Some(p.clone())
    }

    /// `mediaChanged`. Unknown ids (members counted in the audience) change nothing.
    pub fn apply_media(
        &mut self,
        id: &str,
        audio: bool,
        video: bool,
        screen: bool,
        reason: Option<String>,
    ) -> Vec<Change> {
        let mut out = Vec::new();
        if let Some(p) = self.get(id) {
            let p = Participant {
                audio,
                video,
                screen,
                ..p.clone()
            };
            self.upsert(p, reason, &mut out);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub fn person(id: &str, at: &str) -> Participant {
        Participant {
            id: id.into(),
            role: "attendee".into(),
            audio: false,
            video: false,
            screen: false,
            joined_at: at.into(),
            name: None,
            attributes: Default::default(),
        }
    }

    fn ids(changes: &[Change]) -> Vec<String> {
        changes
            .iter()
            .map(|c| match c {
                Change::Joined(p) => format!("+{}", p.id),
                Change::Left(p) => format!("-{}", p.id),
                Change::Media { participant, .. } => format!("~{}", participant.id),
            })
            .collect()
    }

    #[test]
    fn initial_list_excludes_me_and_fires_nothing() {
        let me = person("me", "2026-01-01T00:00:02Z");
        let r = Roster::new(
            me.clone(),
            vec![person("a", "2026-01-01T00:00:01Z"), me.clone()],
            3,
        );
        let all: Vec<String> = r.all().into_iter().map(|p| p.id).collect();
        assert_eq!(all, ["a", "me"]);
        assert_eq!(r.audience_count(), 3);
    }

    #[test]
    fn deltas_apply_by_id_and_own_arrival_is_not_a_join() {
        let me = person("me", "t1");
        let mut r = Roster::new(me.clone(), vec![], 0);
        let c = r.apply_delta(vec![me.clone(), person("b", "t2")], vec![], vec![], 1);
        assert_eq!(ids(&c), ["+b"]);
        // Announced again in `updated` with the same media: nothing to tell.
        let c = r.apply_delta(vec![], vec![], vec![person("b", "t2")], 1);
        assert!(c.is_empty());
        let mut b = person("b", "t2");
        b.video = true;
        let c = r.apply_delta(vec![], vec![], vec![b], 1);
        assert_eq!(ids(&c), ["~b"]);
        let c = r.apply_delta(vec![], vec!["b".into(), "nobody".into()], vec![], 0);
        assert_eq!(ids(&c), ["-b"]);
        assert_eq!(r.all().len(), 1);
    }

    #[test]
    fn left_and_back_in_one_batch_is_seen_in_order() {
        let mut r = Roster::new(person("me", "t1"), vec![person("b", "t0")], 0);
        let c = r.apply_delta(vec![person("b", "t3")], vec!["b".into()], vec![], 0);
        assert_eq!(ids(&c), ["-b", "+b"]);
    }

    #[test]
    fn media_changes_only_when_flags_differ_and_carry_the_reason() {
        let mut r = Roster::new(person("me", "t1"), vec![person("b", "t0")], 0);
        let c = r.apply_media("b", true, false, false, None);
        assert_eq!(ids(&c), ["~b"]);
        assert!(r.apply_media("b", true, false, false, None).is_empty());
        let c = r.apply_media("me", false, true, false, Some("mutedBy:b".into()));
        match &c[..] {
            [Change::Media {
                participant,
                reason,
            }] => {
                assert_eq!(participant.id, "me");
                assert!(participant.video);
                assert_eq!(reason.as_deref(), Some("mutedBy:b"));
            }
            other => panic!("{other:?}"),
        }
        assert!(r.me().video);
        assert!(r.apply_media("ghost", true, true, true, None).is_empty());
    }

    #[test]
    fn replace_reports_the_difference() {
        let mut r = Roster::new(
            person("me", "t1"),
            vec![person("a", "t0"), person("b", "t0")],
            0,
        );
        let mut a = person("a", "t0");
        a.audio = true;
        let c = r.replace(None, vec![a, person("c", "t2")], 5);
        assert_eq!(ids(&c), ["-b", "~a", "+c"]);
        assert_eq!(r.audience_count(), 5);
    }

    #[test]
    fn attributes_follow_their_member() {
        let mut r = Roster::new(person("me", "t0"), vec![person("b", "t1")], 0);
        let mut a = BTreeMap::new();
        a.insert("hand".to_string(), "up".to_string());
        assert_eq!(r.set_attributes("b", a.clone()).unwrap().attributes, a);
        assert_eq!(r.get("b").unwrap().attributes, a);
        assert!(r.set_attributes("me", a.clone()).is_some());
        assert!(r.set_attributes("nobody", a).is_none());
    }
}
