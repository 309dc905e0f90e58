//! A dropped connection keeps the member for the grace period (800 ms in tests).
mod common;

use std::time::Duration;

use common::TestServer;
use serde_json::json;

#[tokio::test]
async fn resume_within_grace_is_invisible_to_others() {
    let s = TestServer::start().await;
    s.room("r", &[("a", "attendee"), ("w", "attendee")]).await;
    let (mut w, _) = s.join("r", "w").await;
    let ta = s.token("r", "a").await;
    let mut a = s.ws(&ta, None).await.unwrap();
    let joined = a.next_of("joined").await;
    a.set_media(true, false).await;
    w.next_of("mediaChanged").await;
    let resume = joined["resume"]["token"].as_str().unwrap().to_string();
    drop(a); // the TCP connection just goes away
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut a = s.ws(&ta, Some(&resume)).await.unwrap();
    let again = a.next_of("joined").await;
    assert_eq!(again["resumed"], true);
    assert_eq!(again["session"]["id"], joined["session"]["id"]);
    assert_eq!(
        again["self"]["audio"], true,
        "media state survives a resume"
    );
    let mut deltas = vec![];
    while let Some(ev) = w.next_frame(Duration::from_millis(1200)).await {
        if ev["type"] == "participantsChanged" {
            deltas.push(ev);
        }
    }
    let removed: Vec<_> = deltas
        .iter()
        .flat_map(|d| d["removed"].as_array().unwrap().clone())
        .collect();
    assert!(removed.is_empty(), "others saw a leave: {deltas:?}");
}

#[tokio::test]
async fn past_grace_the_member_leaves_with_timeout() {
    let s = TestServer::start().await;
    s.room("r", &[("a", "attendee"), ("w", "attendee")]).await;
    let (mut w, _) = s.join("r", "w").await;
    let ta = s.token("r", "a").await;
    let mut a = s.ws(&ta, None).await.unwrap();
    let joined = a.next_of("joined").await;
    let resume = joined["resume"]["token"].as_str().unwrap().to_string();
    drop(a);
    let mut removed = false;
    while !removed {
        let ev = w.next_of("participantsChanged").await;
        removed = ev["removed"] == json!(["a"]);
    }
    // Too late to resume: a fresh join, which others see.
    let mut a = s.ws(&ta, Some(&resume)).await.unwrap();
    assert_eq!(a.next_of("joined").await["resumed"], false);
    let mut added = false;
    while !added {
        let ev = w.next_of("participantsChanged").await;
        added = ev["added"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["id"] == "a");
    }
}
