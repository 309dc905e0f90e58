//! The session core driven by plain calls and an injected clock: no runtime, no socket,
//! no sleep. `Harness` (in `harness.rs`) plays the driver.

use std::time::Duration;

use convene_protocol::signal::ClientMessage;

use super::harness::*;
use super::*;
use crate::model::{MediaSet, Role, RosterEntry};
use crate::rooms::outbound::Outbound;

#[test]
fn a_slow_member_is_skipped_then_resynchronised() {
    let mut h = Harness::new(room(50));
    h.join("fast", Role::Presenter);
    // slow's queue: its `joined` plus one more frame, then it is full.
    h.join_with("slow", Role::Attendee, 2, None).unwrap();
    for i in 0..10 {
        h.set_media("fast", Some(i % 2 == 0), None);
    }
    assert_eq!(h.s.members.laggards(), 1);
    // The fast member got every event, and nobody waited.
    let got = h.frames("fast");
    assert_eq!(of_type(&got, "mediaChanged").len(), 10);
    // Once slow drains its queue, the next flush sends it a snapshot, not deltas.
    let before = h.frames("slow");
    assert_eq!(before.len(), 2);
    h.advance(AUDIENCE_INTERVAL);
    let after = h.frames("slow");
    assert_eq!(after.last().unwrap()["type"], "snapshot");
    assert_eq!(
        after.last().unwrap()["participants"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(h.s.members.laggards(), 0);
}

#[test]
fn chat_allowance_refills_with_time() {
    let mut h = Harness::new(room(50));
    h.join("a", Role::Attendee);
    h.frames("a");
    for _ in 0..11 {
        h.client("a", ClientMessage::SendMessage { text: "hi".into() });
    }
    let got = h.frames("a");
    assert_eq!(of_type(&got, "message").len(), 10);
    assert_eq!(got.last().unwrap()["error"]["code"], "RateLimited");
    // 400 ms later, two more messages are allowed (5 per second).
    h.advance(Duration::from_millis(400));
    for _ in 0..3 {
        h.client("a", ClientMessage::SendMessage { text: "hi".into() });
    }
    let got = h.frames("a");
    assert_eq!(of_type(&got, "message").len(), 2);
}

#[test]
fn dropped_members_leave_when_grace_runs_out() {
    let mut h = Harness::new(room(50));
    h.join("a", Role::Attendee);
    h.join("w", Role::Attendee);
    h.advance(BATCH_INTERVAL);
    h.frames("w");
    let a = uid("a");
    // A stale connection id changes nothing.
    h.input(Input::Dropped {
        user: a.clone(),
        conn: ConnId(99),
    });
    assert_eq!(h.s.next_grace_deadline(), None);
    let conn = h.conns["a"];
    h.input(Input::Dropped {
        user: a.clone(),
        conn,
    });
    let dropped_at = h.now.mono;
    assert_eq!(
        h.s.next_grace_deadline(),
        Some(dropped_at + Duration::from_secs(15))
    );
    h.advance(Duration::from_secs(14));
    assert_eq!(h.s.len(), 2, "still within the grace");
    let got = h.frames("w");
    assert_eq!(
        got.len(),
        1,
        "others saw only that a's connection was lost: {got:?}"
    );
    assert_eq!(got[0]["type"], "connectionQualityChanged");
    assert_eq!(got[0]["quality"], "lost");
    h.advance(Duration::from_secs(1) + BATCH_INTERVAL);
    assert_eq!(h.s.len(), 1);
    let got = h.frames("w");
    assert_eq!(of_type(&got, "participantsChanged")[0]["removed"][0], "a");
    assert!(h.media.contains(&MediaCommand::RemoveMember(a)));
}

#[test]
fn a_resume_within_the_grace_is_silent() {
    let mut h = Harness::new(room(50));
    h.join("a", Role::Attendee);
    h.join("w", Role::Attendee);
    h.advance(BATCH_INTERVAL);
    h.frames("w");
    let token = h.frames("a")[0]["resume"]["token"]
        .as_str()
        .unwrap()
        .to_string();
    let conn = h.conns["a"];
    h.input(Input::Dropped {
        user: uid("a"),
        conn,
    });
    h.advance(Duration::from_secs(10));
    let outcome = h.join_with("a", Role::Attendee, 64, Some(token)).unwrap();
    assert_eq!(outcome, JoinOutcome::Resumed);
    assert_eq!(h.frames("a")[0]["resumed"], true);
    h.advance(Duration::from_secs(30));
    assert_eq!(h.s.len(), 2);
    // Others saw no leave and no join; only that a's connection was lost, then back.
    let got = h.frames("w");
    let kinds: Vec<_> = got
        .iter()
        .map(|f| format!("{} {}", f["type"], f["quality"]))
        .collect();
    assert_eq!(
        kinds,
        [
            r#""connectionQualityChanged" "lost""#,
            r#""connectionQualityChanged" "excellent""#
        ],
        "{got:?}"
    );
}

/// Connection quality: the relay's windows grade each member; everyone hears about
/// announced members, an audience member only about itself; a dropped member is lost,
/// then back to its grade; a member who joins hears the grades as they stand.
#[test]
fn connection_quality_follows_the_relay_and_the_signaling() {
    use crate::sfu::quality::LinkWindow;
    use convene_protocol::signal::PcKind;
    // Two announced members at most: a third who does not publish is in the audience.
    let mut h = Harness::new(room(2));
    h.join("a", Role::Attendee);
    h.join("w", Role::Attendee);
    h.join("x", Role::Consumer);
    h.advance(BATCH_INTERVAL);
    for u in ["a", "w", "x"] {
        h.frames(u);
    }
    let window = |h: &mut Harness, who: &str, pc, loss: f32| {
        h.input(Input::Media(MediaEvent::LinkQuality {
            member: uid(who),
            pc,
            window: LinkWindow {
                loss,
                rtt_ms: Some(30),
                jitter_ms: Some(5),
            },
        }));
    };
    let told = |frames: Vec<serde_json::Value>| -> Vec<String> {
        of_type(&frames, "connectionQualityChanged")
            .iter()
            .map(|f| {
                format!(
                    "{}={}",
                    f["participantId"].as_str().unwrap(),
                    f["quality"].as_str().unwrap()
                )
            })
            .collect()
    };
    window(&mut h, "a", PcKind::Publish, 0.2);
    assert_eq!(told(h.frames("w")), ["a=poor"]);
    assert_eq!(
        told(h.frames("x")),
        ["a=poor"],
        "the audience hears about the announced"
    );
    assert_eq!(told(h.frames("a")), ["a=poor"], "and so does a itself");
    // The audience member's grade goes to itself only.
    window(&mut h, "x", PcKind::Subscribe, 0.05);
    assert_eq!(told(h.frames("x")), ["x=good"]);
    assert!(told(h.frames("w")).is_empty());
    assert!(told(h.frames("a")).is_empty());
    // The same grade again: nothing new.
    window(&mut h, "a", PcKind::Publish, 0.2);
    assert!(told(h.frames("w")).is_empty());
    // a's socket drops: lost; windows while it is away are kept, not told.
    let token = h.frames("a");
    assert!(token.is_empty());
    h.input(Input::Dropped {
        user: uid("a"),
        conn: h.conns["a"],
    });
    assert_eq!(told(h.frames("w")), ["a=lost"]);
    window(&mut h, "a", PcKind::Publish, 0.0);
    assert!(told(h.frames("w")).is_empty(), "still lost while away");
    // A newcomer hears the grades as they stand: a lost (x, in the audience, is not told).
    h.join("n", Role::Consumer);
    assert_eq!(told(h.frames("n")), ["a=lost"]);
    // Everyone who left forgets: a leaves for good at the end of its grace.
    h.advance(Duration::from_secs(20));
    assert!(!h.s.qualities.told.contains_key(&uid("a")));
}

#[test]
fn a_second_client_replaces_the_first() {
    let mut h = Harness::new(room(50));
    h.join("a", Role::Attendee);
    let first = h.rx.remove("a").unwrap();
    let outcome = h.join_with("a", Role::Attendee, 64, None).unwrap();
    assert_eq!(outcome, JoinOutcome::Replaced);
    let mut first = first;
    let mut got = vec![];
    while let Ok(o) = first.try_recv() {
        got.push(o);
    }
    let Outbound::Text(last) = &got[got.len() - 2] else {
        panic!("a final frame before the close");
    };
    assert!(std::str::from_utf8(last)
        .unwrap()
        .contains("duplicateSession"));
    assert!(matches!(got.last(), Some(Outbound::Close)));
    assert!(h.media.contains(&MediaCommand::RemoveMember(uid("a"))));
}

#[test]
fn capacity_and_announcing() {
    let mut r = room(1);
    r.max_participants = Some(3);
    let mut h = Harness::new(r);
    for (u, role) in [
        ("c1", Role::Consumer),
        ("c2", Role::Consumer),
        ("p", Role::Presenter),
    ] {
        h.join(u, role);
    }
    assert_eq!(h.s.audience_count(), 1, "c2 is past the limit of 1");
    assert_eq!(h.s.members.announced_participants().len(), 2);
    assert_eq!(
        h.join_with("x", Role::Attendee, 8, None),
        Err(JoinRefusal::RoomFull)
    );
}

#[test]
fn membership_deltas_are_batched() {
    let mut h = Harness::new(room(50));
    h.join("w", Role::Attendee);
    h.advance(BATCH_INTERVAL);
    h.frames("w");
    h.join("a", Role::Attendee);
    h.advance(Duration::from_millis(10));
    h.join("b", Role::Attendee);
    h.advance(Duration::from_millis(19));
    assert!(
        of_type(&h.frames("w"), "participantsChanged").is_empty(),
        "nothing before the batch interval"
    );
    h.advance(Duration::from_millis(1));
    let got = h.frames("w");
    let batches = of_type(&got, "participantsChanged");
    assert_eq!(batches.len(), 1, "{got:?}");
    assert_eq!(batches[0]["added"].as_array().unwrap().len(), 2);
}

#[test]
fn audience_counts_go_out_at_most_once_a_second() {
    let mut h = Harness::new(room(0));
    h.join("p", Role::Presenter);
    h.advance(BATCH_INTERVAL);
    h.frames("p");
    for i in 0..5 {
        h.join(&format!("v{i}"), Role::Consumer);
        h.advance(Duration::from_millis(100));
    }
    assert!(of_type(&h.frames("p"), "participantsChanged").is_empty());
    h.advance(Duration::from_millis(600));
    let got = h.frames("p");
    let batches = of_type(&got, "participantsChanged");
    assert_eq!(batches.len(), 1);
    assert_eq!(batches[0]["audienceCount"], 5);
}

#[test]
fn promoting_an_audience_member_announces_it() {
    let mut h = Harness::new(room(0));
    h.join("v", Role::Consumer);
    h.join("w", Role::Presenter);
    h.advance(AUDIENCE_INTERVAL);
    assert_eq!(h.s.audience_count(), 1);
    h.frames("w");
    let entry = RosterEntry {
        user_id: uid("v"),
        role: Role::Attendee,
        invited_at: t0(),
        invite_id: "i".into(),
    };
    h.input(Input::Roster(vec![RosterChange::RoleChanged {
        entry,
        from: Role::Consumer,
    }]));
    h.advance(BATCH_INTERVAL);
    assert_eq!(h.s.audience_count(), 0);
    let got = h.frames("w");
    let batch = of_type(&got, "participantsChanged")[0];
    assert_eq!(batch["added"][0]["id"], "v");
    assert_eq!(batch["audienceCount"], 0);
    let v = h.frames("v");
    assert_eq!(of_type(&v, "capabilitiesChanged")[0]["role"], "attendee");
}

#[test]
fn leaving_and_returning_within_a_batch_is_an_update() {
    let mut h = Harness::new(room(50));
    h.join("w", Role::Attendee);
    h.join("a", Role::Attendee);
    h.advance(BATCH_INTERVAL);
    h.frames("w");
    h.input(Input::Kick(uid("a")));
    h.join("a", Role::Attendee);
    h.advance(BATCH_INTERVAL);
    let got = h.frames("w");
    let batch = of_type(&got, "participantsChanged")[0];
    assert_eq!(batch["removed"], serde_json::json!([]));
    assert_eq!(batch["added"], serde_json::json!([]));
    assert_eq!(batch["updated"][0]["id"], "a");
}

#[test]
fn an_empty_session_ends_after_its_destroy_delay() {
    let mut r = room(50);
    r.destroy_delay_seconds = 5;
    let mut h = Harness::new(r);
    h.join("a", Role::Attendee);
    h.client("a", ClientMessage::Leave);
    assert!(h.closed("a"));
    h.advance(Duration::from_secs(4));
    assert!(!h.ended);
    // Someone comes back in time: the session lives on.
    h.join("b", Role::Attendee);
    h.advance(Duration::from_secs(10));
    assert!(!h.ended);
    h.client("b", ClientMessage::Leave);
    h.advance(Duration::from_secs(5));
    assert!(h.ended);
    assert_eq!(h.s.poll_timeout(), None);
}

#[test]
fn the_session_ends_when_the_window_does_and_follows_a_changed_window() {
    let mut h = Harness::new(room(50));
    h.join("a", Role::Attendee);
    // The admin moves the end 10 minutes from now.
    let mut r = h.s.room().clone();
    r.version = 2;
    r.valid_until = h.now.wall + chrono::Duration::minutes(10);
    h.input(Input::RoomUpdated(Box::new(r.clone())));
    h.advance(Duration::from_secs(9 * 60));
    assert!(!h.ended);
    // ... then 10 minutes later still.
    r.version = 3;
    r.valid_until += chrono::Duration::minutes(10);
    h.input(Input::RoomUpdated(Box::new(r)));
    h.advance(Duration::from_secs(2 * 60));
    assert!(!h.ended, "the later end holds");
    h.advance(Duration::from_secs(8 * 60));
    assert!(!h.ended, "one minute to go");
    h.advance(Duration::from_secs(60));
    assert!(h.ended);
    let got = h.frames("a");
    assert_eq!(got.last().unwrap()["reason"], "roomExpired");
}

#[test]
fn an_older_room_version_never_overwrites_a_newer_one() {
    let mut h = Harness::new(room(50));
    h.join("a", Role::Attendee);
    h.frames("a");
    let mut v3 = h.s.room().clone();
    v3.version = 3;
    v3.is_message_disabled = true;
    let mut v2 = v3.clone();
    v2.version = 2;
    v2.is_message_disabled = false;
    h.input(Input::RoomUpdated(Box::new(v3)));
    h.input(Input::RoomUpdated(Box::new(v2)));
    assert_eq!(h.s.room().version, 3);
    h.client("a", ClientMessage::SendMessage { text: "hi".into() });
    let got = h.frames("a");
    assert_eq!(got[0]["error"]["code"], "PermissionDenied");
}

#[test]
fn roles_gate_publishing_with_one_check() {
    let mut h = Harness::new(room(50));
    h.join("c", Role::Consumer);
    h.join("a", Role::Attendee);
    h.frames("c");
    h.set_media("c", Some(true), None);
    assert_eq!(h.frames("c")[0]["error"]["code"], "PermissionDenied");
    h.set_media("a", Some(true), Some(true));
    let gates = MediaSet {
        audio: true,
        video: true,
        screen: false,
    };
    assert!(h.media.contains(&MediaCommand::SetGates(uid("a"), gates)));
    // The relay reports a screen the attendee role may not send: nothing changes.
    h.media.clear();
    h.input(Input::Media(MediaEvent::Published {
        member: uid("a"),
        kind: crate::model::MediaKind::Screen,
        on: true,
    }));
    assert!(h.media.is_empty());
    // Demoted to consumer: media off, gates closed, everyone told why.
    let entry = RosterEntry {
        user_id: uid("a"),
        role: Role::Consumer,
        invited_at: t0(),
        invite_id: "i".into(),
    };
    h.frames("c");
    h.input(Input::Roster(vec![RosterChange::RoleChanged {
        entry,
        from: Role::Attendee,
    }]));
    assert!(h
        .media
        .contains(&MediaCommand::SetGates(uid("a"), MediaSet::default())));
    let got = h.frames("c");
    assert_eq!(of_type(&got, "mediaChanged")[0]["reason"], "roleChanged");
}

/// A mute clicked while the microphone was still being published: the relay's report
/// that the track started must not undo it. Found in Chromium: the member showed as
/// speaking with its mute button off.
#[test]
fn a_track_starting_does_not_undo_an_earlier_off() {
    let mut h = Harness::new(room(50));
    h.join("p", Role::Presenter);
    h.join("a", Role::Attendee);
    let started = |h: &mut Harness, kind| {
        h.input(Input::Media(MediaEvent::Published {
            member: uid("a"),
            kind,
            on: true,
        }))
    };
    let media = |h: &Harness| h.s.members.get(&uid("a")).unwrap().media;
    // The join flow: tracks start, the relay reports them, they are on.
    started(&mut h, crate::model::MediaKind::Video);
    assert!(media(&h).video);
    // Off before the microphone's first packet reached the relay: it stays off.
    h.set_media("a", Some(false), None);
    started(&mut h, crate::model::MediaKind::Audio);
    assert!(!media(&h).audio, "the member's own off holds");
    // Turned on again by the member: on, and a later report changes nothing.
    h.set_media("a", Some(true), None);
    assert!(media(&h).audio);
    // A presenter's mute holds the same way (the muted client may publish again on a
    // resume).
    h.client(
        "p",
        ClientMessage::Mute {
            participant_id: "a".into(),
            audio: false,
            video: true,
            screen: false,
        },
    );
    assert!(!media(&h).video);
    started(&mut h, crate::model::MediaKind::Video);
    assert!(!media(&h).video, "the presenter's mute holds");
    // The relay's report that a track stopped always counts.
    h.input(Input::Media(MediaEvent::Published {
        member: uid("a"),
        kind: crate::model::MediaKind::Audio,
        on: false,
    }));
    assert!(!media(&h).audio);
}

#[test]
fn only_presenters_mute_others() {
    let mut h = Harness::new(room(50));
    h.join("p", Role::Presenter);
    h.join("a", Role::Attendee);
    h.set_media("a", Some(true), Some(true));
    h.frames("a");
    h.frames("p");
    let mute = |id: &str| ClientMessage::Mute {
        participant_id: id.into(),
        audio: true,
        video: false,
        screen: false,
    };
    h.client("a", mute("p"));
    assert_eq!(h.frames("a")[0]["error"]["code"], "PermissionDenied");
    h.client("p", mute("nobody"));
    assert_eq!(h.frames("p")[0]["error"]["code"], "NotInRoom");
    h.client("p", mute("a"));
    let got = h.frames("a");
    assert_eq!(got[0]["type"], "mediaChanged");
    assert_eq!(got[0]["audio"], false);
    assert_eq!(got[0]["video"], true);
    assert_eq!(got[0]["reason"], "mutedBy:p");
}

#[test]
fn removals_end_membership_and_media() {
    let mut h = Harness::new(room(50));
    h.join("a", Role::Attendee);
    h.join("b", Role::Attendee);
    h.frames("a");
    assert_eq!(h.input(Input::Kick(uid("nobody"))), Answer::Kicked(None));
    assert_eq!(
        h.input(Input::Kick(uid("a"))),
        Answer::Kicked(Some("t_a".into()))
    );
    let got = h.frames("a");
    assert_eq!(got.last().unwrap()["reason"], "removed");
    h.input(Input::TokenRevoked("t_b".into()));
    assert!(h.s.is_empty());
    h.input(Input::RoomDeleted);
    assert!(h.ended);
    // An ended session refuses joins so the caller starts a new one.
    assert_eq!(
        h.join_with("c", Role::Attendee, 8, None),
        Err(JoinRefusal::Ended)
    );
}

#[test]
fn a_flooding_connection_leaves_for_good_with_rate_limited() {
    let mut h = Harness::new(room(50));
    h.join("a", Role::Attendee);
    h.join("b", Role::Attendee);
    let old = h.conns["a"];
    // A stale connection's flood report does not remove the member's new connection.
    h.join("a", Role::Attendee);
    h.frames("a");
    h.input(Input::Flooded {
        user: uid("a"),
        conn: old,
    });
    assert!(h.s.members.get(&uid("a")).is_some());
    let conn = h.conns["a"];
    h.input(Input::Flooded {
        user: uid("a"),
        conn,
    });
    let got = h.frames("a");
    assert_eq!(of_type(&got, "left")[0]["reason"], "rateLimited");
    assert!(h.s.members.get(&uid("a")).is_none(), "not kept for resume");
    assert!(h.s.members.get(&uid("b")).is_some());
}

#[test]
fn dropped_members_expire_in_the_order_they_dropped() {
    let mut h = Harness::new(room(50));
    for u in ["a", "b", "c"] {
        h.join(u, Role::Attendee);
    }
    let drop = |h: &mut Harness, u: &str| {
        let conn = h.conns[u];
        h.input(Input::Dropped { user: uid(u), conn });
    };
    drop(&mut h, "b");
    let b_at = h.now.mono;
    h.advance(Duration::from_secs(5));
    drop(&mut h, "a");
    assert_eq!(
        h.s.next_grace_deadline(),
        Some(b_at + Duration::from_secs(15))
    );
    h.advance(Duration::from_secs(10));
    assert!(h.s.members.get(&uid("b")).is_none(), "b's grace ran out");
    assert!(h.s.members.get(&uid("a")).is_some(), "a's has not");
    // a comes back: no deadline is left.
    h.join("a", Role::Attendee);
    assert_eq!(h.s.next_grace_deadline(), None);
    h.advance(Duration::from_secs(30));
    assert_eq!(h.s.len(), 2);
}

fn endings(frames: &[serde_json::Value]) -> Vec<(String, u64)> {
    frames
        .iter()
        .filter(|f| f["type"] == "roomEnding")
        .map(|f| {
            (
                f["validUntil"].as_str().unwrap().to_string(),
                f["secondsLeft"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn members_hear_the_room_is_ending_five_minutes_ahead_and_when_the_end_moves() {
    let mut h = Harness::new(room(50));
    let mut r = h.s.room().clone();
    r.version = 2;
    r.valid_until = h.now.wall + chrono::Duration::minutes(20);
    let end = r.valid_until.to_rfc3339();
    h.join("a", Role::Attendee);
    h.input(Input::RoomUpdated(Box::new(r.clone())));
    h.advance(Duration::from_secs(15 * 60 - 1));
    assert_eq!(endings(&h.frames("a")), vec![], "not yet");
    h.advance(Duration::from_secs(1));
    assert_eq!(
        endings(&h.frames("a")),
        vec![(end.clone(), 300)],
        "at 5 minutes"
    );
    // Someone joining during the notice hears it too, with the time left then.
    h.advance(Duration::from_secs(60));
    h.join("b", Role::Attendee);
    assert_eq!(endings(&h.frames("b")), vec![(end.clone(), 240)]);
    assert_eq!(endings(&h.frames("a")), vec![], "told once");
    // The admin gives ten more minutes: the notice is lifted with the new end...
    r.version = 3;
    r.valid_until += chrono::Duration::minutes(10);
    let later = r.valid_until.to_rfc3339();
    h.input(Input::RoomUpdated(Box::new(r)));
    assert_eq!(endings(&h.frames("a")), vec![(later.clone(), 840)]);
    assert_eq!(endings(&h.frames("b")), vec![(later.clone(), 840)]);
    // ... and comes back five minutes before that end.
    h.advance(Duration::from_secs(540));
    assert_eq!(endings(&h.frames("a")), vec![(later, 300)]);
    h.advance(Duration::from_secs(300));
    assert!(h.ended);
}

fn speakers_of(frames: &[serde_json::Value]) -> Vec<Vec<String>> {
    of_type(frames, "activeSpeakersChanged")
        .iter()
        .map(|f| {
            f["speakers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s["participantId"].as_str().unwrap().to_string())
                .collect()
        })
        .collect()
}

#[test]
fn active_speakers_follow_levels_loudest_first_and_throttled() {
    let mut h = Harness::new(room(50));
    h.join("a", Role::Attendee);
    h.join("b", Role::Attendee);
    h.join("c", Role::Consumer);
    h.set_media("a", Some(true), None);
    h.set_media("b", Some(true), None);
    h.frames("c");
    let level = |h: &mut Harness, who: &str, dbov: u8| {
        h.input(Input::Media(MediaEvent::AudioLevel {
            member: uid(who),
            dbov,
        }))
    };
    // Quiet levels are no speech.
    level(&mut h, "a", 110);
    assert!(speakers_of(&h.frames("c")).is_empty());
    level(&mut h, "a", 30);
    assert_eq!(speakers_of(&h.frames("c")), [["a"]], "told at once");
    // b louder, inside the gap: told at the gap's end, loudest first.
    h.advance(Duration::from_millis(100));
    level(&mut h, "b", 20);
    assert!(speakers_of(&h.frames("c")).is_empty(), "not inside the gap");
    h.advance(Duration::from_millis(250));
    let got = h.frames("c");
    assert_eq!(speakers_of(&got), [["b", "a"]]);
    let first = &of_type(&got, "activeSpeakersChanged")[0]["speakers"][0];
    assert!(
        (first["level"].as_f64().unwrap() - 0.1).abs() < 1e-3,
        "-20 dBov: 0.1"
    );
    // a keeps talking; b falls silent and drops out after the hold.
    for _ in 0..8 {
        h.advance(Duration::from_millis(250));
        level(&mut h, "a", 30);
    }
    assert_eq!(speakers_of(&h.frames("c")), [["a"]]);
    // Someone joining while a talks is told at once.
    h.join("d", Role::Consumer);
    assert_eq!(speakers_of(&h.frames("d")), [["a"]]);
    // Muting a (or a consumer's levels) lists nobody.
    h.set_media("a", Some(false), None);
    h.advance(Duration::from_millis(400));
    level(&mut h, "c", 10);
    assert_eq!(speakers_of(&h.frames("c")), [Vec::<String>::new()]);
}

#[test]
fn what_a_member_does_not_show_is_not_sent_to_it() {
    let mut h = Harness::new(room(50));
    h.join("a", Role::Presenter);
    h.join("b", Role::Attendee);
    h.media.clear();
    let viewing = |video, screen| ClientMessage::SetViewing {
        participant_id: "a".into(),
        video,
        screen,
        video_height: None,
    };
    h.client("b", viewing(Some(false), None));
    assert_eq!(
        h.media,
        vec![MediaCommand::SetViewing {
            viewer: uid("b"),
            owner: uid("a"),
            kind: crate::model::MediaKind::Video,
            shown: false,
        }]
    );
    h.media.clear();
    h.client("b", viewing(Some(true), Some(false)));
    assert_eq!(h.media.len(), 2, "{:?}", h.media);
    // How tall it shows the camera (for simulcast), alone or with the rest.
    h.media.clear();
    let fit = ClientMessage::SetViewing {
        participant_id: "a".into(),
        video: None,
        screen: None,
        video_height: Some(180),
    };
    h.client("b", fit);
    assert_eq!(
        h.media,
        vec![MediaCommand::FitVideo {
            viewer: uid("b"),
            owner: uid("a"),
            height: 180,
        }]
    );
    // Someone no longer (or never) in the room: nothing to do, and no error.
    h.media.clear();
    h.client(
        "b",
        ClientMessage::SetViewing {
            participant_id: "gone".into(),
            video: Some(false),
            screen: None,
            video_height: Some(1),
        },
    );
    assert!(h.media.is_empty());
    assert!(h.frames("b").iter().all(|f| f["type"] != "error"));
}
