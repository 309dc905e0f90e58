//! Every refused join is a plain HTTP error with the envelope, before any upgrade.
mod common;

use chrono::{Duration, Utc};
use common::{assert_error, TestServer};
use serde_json::json;

#[tokio::test]
async fn bad_tokens_are_401() {
    let s = TestServer::start().await;
    s.room("r", &[("alice", "attendee")]).await;
    let r = s.ws("", None).await.err().unwrap();
    assert_error(r.status, &r.body, 401, "Unauthenticated", Some("token"));
    let r = s.ws("abc.def.ghi", None).await.err().unwrap();
    assert_error(r.status, &r.body, 401, "Unauthenticated", Some("token"));
    // Revoked.
    let (_, b) = s
        .post("/v1/rooms/r/tokens", json!({"userId": "alice"}))
        .await;
    let token = b["token"].as_str().unwrap();
    s.delete(&format!(
        "/v1/rooms/r/tokens/{}",
        b["tokenId"].as_str().unwrap()
    ))
    .await;
    let r = s.ws(token, None).await.err().unwrap();
    assert_error(r.status, &r.body, 401, "Unauthenticated", None);
    assert!(r.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("revoked"));
}

/// A plain GET without an upgrade is the pre-join check: what joining would give,
/// with nothing joined.
#[tokio::test]
async fn plain_get_is_the_pre_join_check() {
    let s = TestServer::start().await;
    s.room("r", &[("alice", "attendee"), ("carol", "consumer")])
        .await;
    let token = s.token("r", "alice").await;
    let (st, b) = s
        .send(s.http().get(s.url(&format!("/v1/rtc?token={token}"))))
        .await;
    assert_eq!(st, 200, "{b}");
    assert_eq!(b["room"]["id"], "r");
    assert_eq!(b["room"]["roomType"], "conference");
    assert_eq!(b["participantId"], "alice");
    assert_eq!(b["role"], "attendee");
    assert_eq!(b["participantCount"], 0);
    let caps = &b["capabilities"];
    assert_eq!(
        (
            caps["publishAudio"].as_bool(),
            caps["publishVideo"].as_bool()
        ),
        (Some(true), Some(true))
    );
    assert_eq!(caps["publishScreen"], false);
    assert_eq!(caps["moderate"], false);
    // A receive-only role is told so: its page skips the camera preview.
    let token = s.token("r", "carol").await;
    let (_, b) = s
        .send(s.http().get(s.url(&format!("/v1/rtc?token={token}"))))
        .await;
    assert_eq!(b["role"], "consumer");
    assert_eq!(b["capabilities"]["publishAudio"], false);
    // Checking joined nobody.
    let (_, sessions) = s.get("/v1/sessions").await;
    assert_eq!(sessions["value"], json!([]), "{sessions}");
}

#[tokio::test]
async fn uninvited_and_reinvited_users_are_403() {
    let s = TestServer::start().await;
    s.room("r", &[("bob", "attendee")]).await;
    let old = s.token("r", "bob").await;
    s.patch(
        "/v1/rooms/r/participants",
        json!({"participants": {"bob": null}}),
    )
    .await;
    let r = s.ws(&old, None).await.err().unwrap();
    assert_error(r.status, &r.body, 403, "NotInvited", None);
    // Invited again: the old token stays dead, a new one works.
    s.patch(
        "/v1/rooms/r/participants",
        json!({"participants": {"bob": {}}}),
    )
    .await;
    let r = s.ws(&old, None).await.err().unwrap();
    assert_error(r.status, &r.body, 403, "NotInvited", None);
    let fresh = s.token("r", "bob").await;
    assert!(s.ws(&fresh, None).await.is_ok());
}

#[tokio::test]
async fn policy_window_and_existence() {
    let s = TestServer::start().await;
    let soon = Utc::now() + Duration::hours(1);
    let (st, b) = s
        .post(
            "/v1/rooms",
            json!({"id": "later", "validFrom": soon, "participants": {"a": {}}}),
        )
        .await;
    assert_eq!(st, 201, "{b}");
    let t = s.token("later", "a").await;
    let r = s.ws(&t, None).await.err().unwrap();
    assert_error(r.status, &r.body, 403, "RoomNotOpenYet", None);
    assert!(r.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("opens at"));
    // `at` is machine-readable, so a page can say it in the user's time zone.
    let at = r.body["error"]["at"]
        .as_str()
        .expect("RoomNotOpenYet has `at`");
    let at: chrono::DateTime<Utc> = at.parse().unwrap();
    assert!(
        (at - soon).num_milliseconds().abs() < 1000,
        "{at} vs {soon}"
    );

    s.post(
        "/v1/rooms",
        json!({"id": "shut", "joinPolicy": "closed", "participants": {"a": {}}}),
    )
    .await;
    let t = s.token("shut", "a").await;
    let r = s.ws(&t, None).await.err().unwrap();
    assert_error(r.status, &r.body, 403, "RoomClosed", None);

    let until = Utc::now() + Duration::milliseconds(1200);
    s.post(
        "/v1/rooms",
        json!({"id": "brief", "validUntil": until, "participants": {"a": {}}}),
    )
    .await;
    let t = s.token("brief", "a").await;
    tokio::time::sleep(std::time::Duration::from_millis(1400)).await;
    let r = s.ws(&t, None).await.err().unwrap();
    assert_error(r.status, &r.body, 410, "RoomExpired", None);
    assert!(r.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("ended at"));
    let at = r.body["error"]["at"]
        .as_str()
        .expect("RoomExpired has `at`");
    let at: chrono::DateTime<Utc> = at.parse().unwrap();
    assert!(
        (at - until).num_milliseconds().abs() < 1000,
        "{at} vs {until}"
    );

    s.room("gone", &[("a", "attendee")]).await;
    let t = s.token("gone", "a").await;
    s.delete("/v1/rooms/gone").await;
    let r = s.ws(&t, None).await.err().unwrap();
    assert_error(r.status, &r.body, 404, "RoomNotFound", None);
}

#[tokio::test]
async fn a_full_room_is_409_but_a_returning_member_gets_in() {
    let s = TestServer::start().await;
    s.post(
        "/v1/rooms",
        json!({"id": "tiny", "maxParticipants": 1, "participants": {"a": {}, "b": {}}}),
    )
    .await;
    let (_a, _) = s.join("tiny", "a").await;
    let t = s.token("tiny", "b").await;
    let r = s.ws(&t, None).await.err().unwrap();
    assert_error(r.status, &r.body, 409, "RoomFull", None);
    // The same user opening a second tab is not refused: it replaces the first.
    let (_a2, joined) = s.join("tiny", "a").await;
    assert_eq!(joined["self"]["id"], "a");
}

/// `joinPolicy: closed` locks the meeting: nobody new gets in, the people already in
/// the call stay, and one of them reconnecting after a network blip gets back in.
#[tokio::test]
async fn a_closed_room_keeps_its_call_and_refuses_newcomers() {
    let s = TestServer::start().await;
    s.room("r", &[("a", "attendee"), ("b", "attendee")]).await;
    let ta = s.token("r", "a").await;
    let mut a = s.ws(&ta, None).await.unwrap();
    let joined = a.next_of("joined").await;
    let (st, b) = s
        .patch("/v1/rooms/r", json!({"joinPolicy": "closed"}))
        .await;
    assert_eq!(st, 200, "{b}");
    a.expect_none("left", std::time::Duration::from_millis(500))
        .await;
    let tb = s.token("r", "b").await;
    let r = s.ws(&tb, None).await.err().unwrap();
    assert_error(r.status, &r.body, 403, "RoomClosed", None);
    // a's connection drops; within the resume grace it comes back.
    let resume = joined["resume"]["token"].as_str().unwrap().to_string();
    drop(a);
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let mut a = s
        .ws(&ta, Some(&resume))
        .await
        .expect("a reconnect was refused");
    assert_eq!(a.next_of("joined").await["resumed"], true);
    // Once gone for good, a is a newcomer too.
    a.send(json!({"type": "leave"})).await;
    a.closed_with().await;
    let r = s.ws(&ta, None).await.err().unwrap();
    assert_error(r.status, &r.body, 403, "RoomClosed", None);
}
