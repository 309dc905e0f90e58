//! Admin changes take effect in the live session at once.
mod common;

use std::time::Duration;

use chrono::Utc;
use common::{assert_error, TestServer};
use serde_json::json;

#[tokio::test]
async fn roster_removal_disconnects_within_a_second_and_kills_tokens() {
    let s = TestServer::start().await;
    s.room("r", &[("a", "attendee"), ("b", "attendee")]).await;
    let (mut a, _) = s.join("r", "a").await;
    let tb = s.token("r", "b").await;
    let mut b = s.ws(&tb, None).await.unwrap();
    b.next_of("joined").await;
    // Added and removed within one batch would cancel out; let a see b first.
    let mut seen = false;
    while !seen {
        let ev = a.next_of("participantsChanged").await;
        seen = ev["added"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["id"] == "b");
    }
    let t0 = std::time::Instant::now();
    s.patch(
        "/v1/rooms/r/participants",
        json!({"participants": {"b": null}}),
    )
    .await;
    assert_eq!(b.closed_with().await, "removed");
    assert!(t0.elapsed() < Duration::from_secs(1), "{:?}", t0.elapsed());
    let r = s.ws(&tb, None).await.err().unwrap();
    assert_error(r.status, &r.body, 403, "NotInvited", None);
    let mut gone = false;
    while !gone {
        let ev = a.next_of("participantsChanged").await;
        gone = ev["removed"] == json!(["b"]);
    }
}

#[tokio::test]
async fn role_change_tells_capabilities_and_stops_media() {
    let s = TestServer::start().await;
    s.room("r", &[("a", "presenter"), ("b", "attendee")]).await;
    let (mut a, _) = s.join("r", "a").await;
    let (mut b, _) = s.join("r", "b").await;
    b.set_media(true, true).await;
    let m = a.next_of("mediaChanged").await;
    assert_eq!(
        (m["audio"].as_bool(), m["video"].as_bool()),
        (Some(true), Some(true))
    );
    s.patch(
        "/v1/rooms/r/participants",
        json!({"participants": {"b": {"role": "consumer"}}}),
    )
    .await;
    let caps = b.next_of("capabilitiesChanged").await;
    assert_eq!(caps["role"], "consumer");
    assert_eq!(caps["capabilities"]["publishAudio"], false);
    let m = a.next_of("mediaChanged").await;
    assert_eq!(m["participantId"], "b");
    assert_eq!(m["audio"], false);
    assert_eq!(m["reason"], "roleChanged");
    let (_, members) = s.get("/v1/rooms/r/members").await;
    let b_row = members["value"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == "b")
        .unwrap()
        .clone();
    assert_eq!(b_row["role"], "consumer");
    assert_eq!(b_row["video"], false);
}

#[tokio::test]
async fn deleting_the_room_ends_the_session() {
    let s = TestServer::start().await;
    s.room("r", &[("a", "attendee")]).await;
    let (mut a, _) = s.join("r", "a").await;
    s.delete("/v1/rooms/r").await;
    assert_eq!(a.closed_with().await, "roomDeleted");
}

#[tokio::test]
async fn the_room_expires_on_time() {
    let s = TestServer::start().await;
    let until = Utc::now() + chrono::Duration::milliseconds(1500);
    s.post(
        "/v1/rooms",
        json!({"id": "e", "validUntil": until, "participants": {"a": {}}}),
    )
    .await;
    let (mut a, _) = s.join("e", "a").await;
    assert_eq!(a.closed_with().await, "roomExpired");
    let late = Utc::now() - until;
    assert!(late < chrono::Duration::milliseconds(500), "{late}");
    assert!(late >= chrono::Duration::zero(), "ended early by {late}");
}

#[tokio::test]
async fn extending_the_window_keeps_the_session() {
    let s = TestServer::start().await;
    let until = Utc::now() + chrono::Duration::milliseconds(1200);
    s.post(
        "/v1/rooms",
        json!({"id": "x", "validUntil": until, "participants": {"a": {}}}),
    )
    .await;
    let (mut a, _) = s.join("x", "a").await;
    let later = Utc::now() + chrono::Duration::hours(1);
    let (st, _) = s.patch("/v1/rooms/x", json!({"validUntil": later})).await;
    assert_eq!(st, 200);
    a.expect_none("left", Duration::from_millis(1500)).await;
}

#[tokio::test]
async fn the_same_user_again_replaces_the_older_connection() {
    let s = TestServer::start().await;
    s.room("r", &[("a", "attendee"), ("w", "attendee")]).await;
    let (mut w, _) = s.join("r", "w").await;
    let (mut a1, _) = s.join("r", "a").await;
    let (_a2, joined) = s.join("r", "a").await;
    assert_eq!(joined["self"]["id"], "a");
    assert_eq!(a1.closed_with().await, "duplicateSession");
    let (_, members) = s.get("/v1/rooms/r/members").await;
    assert_eq!(members["value"].as_array().unwrap().len(), 2);
    // The watcher saw one join of a, and no leave.
    w.expect_none("left", Duration::from_millis(200)).await;
    let mut removed = vec![];
    while let Some(ev) = w.next_frame(Duration::from_millis(200)).await {
        if ev["type"] == "participantsChanged" {
            removed.extend(ev["removed"].as_array().unwrap().clone());
        }
    }
    assert!(removed.is_empty(), "{removed:?}");
}

#[tokio::test]
async fn admin_kick_and_members_view() {
    let s = TestServer::start().await;
    s.room("r", &[("a", "attendee"), ("b", "attendee")]).await;
    let ta = s.token("r", "a").await;
    let mut a = s.ws(&ta, None).await.unwrap();
    a.next_of("joined").await;
    a.set_media(true, false).await;
    let (_b, _) = s.join("r", "b").await;
    let (st, members) = s.get("/v1/rooms/r/members").await;
    assert_eq!(st, 200);
    let a_row = members["value"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == "a")
        .unwrap()
        .clone();
    assert_eq!(
        (a_row["audio"].as_bool(), a_row["video"].as_bool()),
        (Some(true), Some(false))
    );
    let (st, _) = s.delete("/v1/rooms/r/members/a").await;
    assert_eq!(st, 204);
    assert_eq!(a.closed_with().await, "removed");
    // The token a joined with is revoked, so a client cannot just reconnect.
    let r = s.ws(&ta, None).await.err().unwrap();
    assert_error(r.status, &r.body, 401, "Unauthenticated", None);
    let (st, b) = s.delete("/v1/rooms/r/members/a").await;
    assert_error(st, &b, 404, "NotInRoom", Some("userId"));
    let (st, b) = s.get("/v1/rooms/none/members").await;
    assert_error(st, &b, 404, "RoomNotFound", None);
    // Kicked, not uninvited: a fresh join works.
    let (_a, _) = s.join("r", "a").await;
}
