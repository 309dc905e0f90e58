//! Live and voice rooms in the session core: seats (free and by application), who may
//! publish because of them, locks, moves and kicks by presenters, applications that
//! lapse, and room and member attributes during the call.

use std::collections::BTreeMap;
use std::time::Duration;

use convene_protocol::signal::ClientMessage;
use serde_json::json;

use super::harness::*;
use super::*;
use crate::model::{Role, RoomType, TakeSeatMode};
use crate::sfu::port::Gates;

fn live(mode: TakeSeatMode, seats: u32) -> Harness {
    let mut r = room(50);
    r.room_type = RoomType::Live;
    r.take_seat_mode = mode;
    r.max_seat_count = seats;
    Harness::new(r)
}

fn error_code(frames: &[serde_json::Value]) -> Option<String> {
    of_type(frames, "error")
        .last()
        .map(|e| e["error"]["code"].as_str().unwrap().to_string())
}

#[test]
fn a_seat_is_what_lets_an_attendee_publish() {
    let mut h = live(TakeSeatMode::FreeToTake, 2);
    h.join("a", Role::Attendee);
    h.join("w", Role::Consumer);
    let joined = &h.frames("a")[0];
    assert_eq!(joined["capabilities"]["publishAudio"], false);
    assert_eq!(joined["seats"].as_array().unwrap().len(), 2);
    assert_eq!(joined["room"]["roomType"], "live");
    h.set_media("a", Some(true), None);
    let got = h.frames("a");
    assert_eq!(error_code(&got).as_deref(), Some("PermissionDenied"));
    assert!(of_type(&got, "error")[0]["error"]["message"]
        .as_str()
        .unwrap()
        .contains("take a seat"));

    h.client("a", ClientMessage::TakeSeat { index: Some(1) });
    let got = h.frames("a");
    assert_eq!(
        of_type(&got, "capabilitiesChanged")[0]["capabilities"]["publishAudio"],
        true
    );
    let got = h.frames("w");
    let seats = &of_type(&got, "seatsChanged")[0]["seats"];
    assert_eq!(seats[1]["userId"], "a");
    h.set_media("a", Some(true), Some(true));
    h.frames("a");
    assert_eq!(
        h.media.last(),
        Some(&MediaCommand::SetGates(
            uid("a"),
            Gates {
                audio: true,
                video: true,
                screen: false
            }
        ))
    );
    // The consumer may not sit down: its role publishes nothing anyway, but the seat
    // itself is free to take; taking a second one is refused.
    h.client("a", ClientMessage::TakeSeat { index: Some(0) });
    assert_eq!(
        error_code(&h.frames("a")).as_deref(),
        Some("SeatUnavailable")
    );

    // Leaving the seat stops the media at once, and the relay is told.
    h.frames("w");
    h.client("a", ClientMessage::LeaveSeat);
    let got = h.frames("w");
    let change = of_type(&got, "mediaChanged")[0];
    assert_eq!(
        (change["audio"].clone(), change["reason"].clone()),
        (json!(false), json!("seatChanged"))
    );
    assert_eq!(
        h.media.last(),
        Some(&MediaCommand::SetGates(uid("a"), Gates::default()))
    );
    assert!(of_type(&got, "seatsChanged")[0]["seats"][1]
        .get("userId")
        .is_none());
}

#[test]
fn presenters_publish_without_a_seat_and_voice_rooms_are_audio_only() {
    let mut r = room(50);
    r.room_type = RoomType::Voice;
    let mut h = Harness::new(r);
    h.join("p", Role::Presenter);
    h.set_media("p", Some(true), None);
    assert!(
        of_type(&h.frames("p"), "error").is_empty(),
        "a presenter needs no seat"
    );
    h.set_media("p", None, Some(true));
    let got = h.frames("p");
    assert!(of_type(&got, "error")[0]["error"]["message"]
        .as_str()
        .unwrap()
        .contains("voice room"));
}

#[test]
fn applications_are_approved_rejected_or_lapse() {
    let mut h = live(TakeSeatMode::ApplyToTake, 3);
    h.join("host", Role::Presenter);
    for u in ["b", "c", "d", "e"] {
        h.join(u, Role::Attendee);
    }
    h.frames("host");
    h.client("b", ClientMessage::TakeSeat { index: None });
    assert_eq!(
        error_code(&h.frames("b")).as_deref(),
        Some("PermissionDenied")
    );
    h.client("b", ClientMessage::ApplySeat { index: Some(2) });
    h.client("c", ClientMessage::ApplySeat { index: None });
    let got = h.frames("host");
    let apps = of_type(&got, "seatApplications");
    assert_eq!(
        apps.last().unwrap()["applications"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    // Only presenters answer.
    h.client(
        "c",
        ClientMessage::ApproveSeat {
            user_id: "b".into(),
        },
    );
    assert_eq!(
        error_code(&h.frames("c")).as_deref(),
        Some("PermissionDenied")
    );

    h.client(
        "host",
        ClientMessage::ApproveSeat {
            user_id: "b".into(),
        },
    );
    let got = h.frames("b");
    assert_eq!(
        of_type(&got, "seatApplicationEnded")[0]["outcome"],
        "approved"
    );
    assert_eq!(of_type(&got, "seatsChanged")[0]["seats"][2]["userId"], "b");
    assert_eq!(
        of_type(&got, "capabilitiesChanged")[0]["capabilities"]["publishVideo"],
        true
    );

    h.client(
        "host",
        ClientMessage::RejectSeat {
            user_id: "c".into(),
        },
    );
    assert_eq!(
        of_type(&h.frames("c"), "seatApplicationEnded")[0]["outcome"],
        "rejected"
    );
    h.client(
        "host",
        ClientMessage::RejectSeat {
            user_id: "c".into(),
        },
    );
    assert_eq!(
        error_code(&h.frames("host")).as_deref(),
        Some("SeatApplicationNotFound")
    );

    h.client("d", ClientMessage::ApplySeat { index: None });
    h.advance(APPLICATION_TTL - Duration::from_secs(1));
    assert!(of_type(&h.frames("d"), "seatApplicationEnded").is_empty());
    h.advance(Duration::from_secs(2));
    assert_eq!(
        of_type(&h.frames("d"), "seatApplicationEnded")[0]["outcome"],
        "expired"
    );

    h.client("e", ClientMessage::ApplySeat { index: None });
    h.client("e", ClientMessage::CancelSeatApplication);
    assert_eq!(
        of_type(&h.frames("e"), "seatApplicationEnded")[0]["outcome"],
        "cancelled"
    );
    let got = h.frames("host");
    let apps = of_type(&got, "seatApplications");
    assert_eq!(apps.last().unwrap()["applications"], json!([]));
}

#[test]
fn presenters_lock_move_and_kick() {
    let mut h = live(TakeSeatMode::FreeToTake, 3);
    h.join("host", Role::Presenter);
    h.join("a", Role::Attendee);
    h.join("b", Role::Attendee);
    h.client(
        "a",
        ClientMessage::LockSeat {
            index: 0,
            locked: true,
        },
    );
    assert_eq!(
        error_code(&h.frames("a")).as_deref(),
        Some("PermissionDenied")
    );
    h.client(
        "host",
        ClientMessage::LockSeat {
            index: 0,
            locked: true,
        },
    );
    h.client("a", ClientMessage::TakeSeat { index: Some(0) });
    assert_eq!(
        error_code(&h.frames("a")).as_deref(),
        Some("SeatUnavailable")
    );
    h.client("a", ClientMessage::TakeSeat { index: None });
    h.client(
        "host",
        ClientMessage::MoveSeat {
            user_id: "a".into(),
            index: 2,
        },
    );
    h.client("host", ClientMessage::TakeSeat { index: Some(9) });
    assert_eq!(
        error_code(&h.frames("host")).as_deref(),
        Some("InvalidParameter")
    );
    let seats = of_type(&h.frames("b"), "seatsChanged").last().unwrap()["seats"].clone();
    assert_eq!(
        (seats[0]["locked"].clone(), seats[2]["userId"].clone()),
        (json!(true), json!("a"))
    );
    h.frames("a");
    h.client(
        "host",
        ClientMessage::KickFromSeat {
            user_id: "a".into(),
        },
    );
    let got = h.frames("a");
    assert_eq!(
        of_type(&got, "capabilitiesChanged")[0]["capabilities"]["publishAudio"],
        false
    );
    // Leaving the room frees the seat too.
    h.client("b", ClientMessage::TakeSeat { index: None });
    h.client("b", ClientMessage::Leave);
    let seats = of_type(&h.frames("host"), "seatsChanged").last().unwrap()["seats"].clone();
    assert!(seats
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s.get("userId").is_none()));
    assert_eq!(h.input(Input::Unseat(1)), Answer::Unseated(None));
}

#[test]
fn a_conference_has_no_seats_and_a_type_change_takes_rights_away() {
    let mut h = Harness::new(room(50));
    h.join("a", Role::Attendee);
    h.client("a", ClientMessage::TakeSeat { index: None });
    assert_eq!(
        error_code(&h.frames("a")).as_deref(),
        Some("InvalidParameter")
    );
    h.set_media("a", Some(true), Some(true));
    h.frames("a");
    // The room becomes a live room: an attendee without a seat stops publishing.
    let mut r = h.s.room().clone();
    r.version += 1;
    r.room_type = RoomType::Live;
    h.input(Input::RoomUpdated(Box::new(r)));
    let got = h.frames("a");
    assert_eq!(of_type(&got, "mediaChanged")[0]["video"], false);
    assert_eq!(
        of_type(&got, "seatsChanged")[0]["seats"]
            .as_array()
            .unwrap()
            .len(),
        8
    );
}

#[test]
fn room_and_member_attributes_change_during_the_call() {
    let mut h = live(TakeSeatMode::FreeToTake, 2);
    h.join("host", Role::Presenter);
    h.join("a", Role::Attendee);
    let set = |k: &str, v: Option<&str>| {
        let mut m = BTreeMap::new();
        m.insert(k.to_string(), v.map(str::to_string));
        m
    };
    h.client(
        "a",
        ClientMessage::SetRoomAttributes {
            attributes: set("topic", Some("x")),
        },
    );
    assert_eq!(
        error_code(&h.frames("a")).as_deref(),
        Some("PermissionDenied")
    );
    h.client(
        "host",
        ClientMessage::SetRoomAttributes {
            attributes: set("topic", Some("Q&A")),
        },
    );
    assert_eq!(
        h.saved,
        vec![set("topic", Some("Q&A"))],
        "stored by the driver"
    );
    // The stored room comes back: everyone hears what changed.
    let mut r = h.s.room().clone();
    r.version += 1;
    r.attributes.insert("topic".into(), "Q&A".into());
    h.input(Input::RoomUpdated(Box::new(r)));
    let got = of_type(&h.frames("a"), "roomAttributesChanged")[0].clone();
    assert_eq!(got["changed"], json!({"topic": "Q&A"}));

    h.client(
        "a",
        ClientMessage::SetMemberAttributes {
            participant_id: None,
            attributes: set("hand", Some("up")),
        },
    );
    let got = of_type(&h.frames("host"), "memberAttributesChanged")[0].clone();
    assert_eq!(
        (got["participantId"].clone(), got["attributes"].clone()),
        (json!("a"), json!({"hand": "up"}))
    );
    h.client(
        "a",
        ClientMessage::SetMemberAttributes {
            participant_id: Some("host".into()),
            attributes: set("hand", Some("up")),
        },
    );
    assert_eq!(
        error_code(&h.frames("a")).as_deref(),
        Some("PermissionDenied")
    );
    h.client(
        "host",
        ClientMessage::SetMemberAttributes {
            participant_id: Some("a".into()),
            attributes: set("hand", None),
        },
    );
    assert_eq!(
        of_type(&h.frames("a"), "memberAttributesChanged")[0]["attributes"],
        json!({})
    );
    h.client(
        "a",
        ClientMessage::SetMemberAttributes {
            participant_id: None,
            attributes: set("bad key", Some("x")),
        },
    );
    assert_eq!(
        error_code(&h.frames("a")).as_deref(),
        Some("InvalidParameter")
    );
}
