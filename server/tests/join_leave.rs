//! Join, leave, the participant list and its batched deltas.
mod common;

use std::time::Duration;

use common::ws::ids;
use common::TestServer;
use serde_json::json;

#[tokio::test]
async fn joined_carries_self_room_session_and_capabilities() {
    let s = TestServer::start().await;
    s.room("j", &[("alice", "presenter"), ("carol", "consumer")])
        .await;
    let (_a, joined) = s.join("j", "alice").await;
    assert_eq!(joined["protocolVersion"], 1);
    assert_eq!(joined["self"]["id"], "alice");
    assert_eq!(joined["self"]["role"], "presenter");
    assert_eq!(joined["self"]["audio"], false);
    assert_eq!(joined["room"]["id"], "j");
    assert!(joined["session"]["id"].as_str().unwrap().starts_with("s_"));
    assert_eq!(joined["capabilities"]["moderate"], true);
    assert_eq!(joined["capabilities"]["publishScreen"], true);
    assert!(joined["resume"]["token"].as_str().unwrap().len() >= 16);
    assert_eq!(joined["resumed"], false);
    let (_c, joined_c) = s.join("j", "carol").await;
    assert_eq!(joined_c["capabilities"]["publishAudio"], false);
    assert_eq!(joined_c["session"]["id"], joined["session"]["id"]);
    assert_eq!(ids(&joined_c["participants"]), ["alice", "carol"]);
}

#[tokio::test]
async fn others_see_joins_and_leaves() {
    let s = TestServer::start().await;
    s.room("j", &[("a", "attendee"), ("b", "attendee")]).await;
    let (mut a, _) = s.join("j", "a").await;
    let (mut b, joined_b) = s.join("j", "b").await;
    assert_eq!(ids(&joined_b["participants"]), ["a", "b"]);
    let ev = a.next_of("participantsChanged").await;
    // Deltas apply by id: a's own arrival may ride in the same batch.
    let added: Vec<String> = ids(&ev["added"]).into_iter().filter(|i| i != "a").collect();
    assert_eq!(added, ["b"]);
    b.send(json!({"type": "leave"})).await;
    assert_eq!(b.closed_with().await, "clientLeft");
    let mut removed = vec![];
    while removed.is_empty() {
        let ev = a.next_of("participantsChanged").await;
        removed = ev["removed"].as_array().unwrap().clone();
    }
    assert_eq!(removed, [json!("b")]);
    let (st, members) = s.get("/v1/rooms/j/members").await;
    assert_eq!(st, 200);
    assert_eq!(ids(&members["value"]), ["a"]);
}

#[tokio::test]
async fn simultaneous_joins_arrive_batched() {
    let s = TestServer::start().await;
    let users: Vec<String> = (0..8).map(|i| format!("u{i}")).collect();
    let mut roster: Vec<(&str, &str)> = users.iter().map(|u| (u.as_str(), "attendee")).collect();
    roster.push(("watcher", "attendee"));
    s.room("batch", &roster).await;
    let (mut w, _) = s.join("batch", "watcher").await;
    let mut tokens = vec![];
    for u in &users {
        tokens.push(s.token("batch", u).await);
    }
    let conns = futures_util::future::join_all(tokens.iter().map(|t| s.ws(t, None))).await;
    assert!(conns.iter().all(|c| c.is_ok()));
    let mut seen = vec![];
    let mut batches = 0;
    while seen.len() < users.len() {
        let ev = w.next_of("participantsChanged").await;
        seen.extend(ids(&ev["added"]).into_iter().filter(|i| i != "watcher"));
        batches += 1;
    }
    seen.sort();
    assert_eq!(seen, users);
    assert!(
        batches < users.len(),
        "{batches} batches for {} joins",
        users.len()
    );
    w.expect_none("participantsChanged", Duration::from_millis(200))
        .await;
}

#[tokio::test]
async fn sessions_start_with_the_first_and_end_after_the_last() {
    let s = TestServer::start().await;
    s.room("life", &[("a", "attendee")]).await;
    let (_, sessions) = s.get("/v1/sessions").await;
    assert_eq!(sessions["value"], json!([]));
    let (mut a, joined) = s.join("life", "a").await;
    let (_, sessions) = s.get("/v1/sessions").await;
    assert_eq!(sessions["value"][0]["roomId"], "life");
    assert_eq!(sessions["value"][0]["sessionId"], joined["session"]["id"]);
    assert_eq!(sessions["value"][0]["memberCount"], 1);
    a.send(json!({"type": "leave"})).await;
    a.closed_with().await;
    tokio::time::timeout(common::WAIT, async {
        loop {
            let (_, sessions) = s.get("/v1/sessions").await;
            if sessions["value"] == json!([]) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("session did not end");
    // A new join starts a new session.
    let (_a, again) = s.join("life", "a").await;
    assert_ne!(again["session"]["id"], joined["session"]["id"]);
}
