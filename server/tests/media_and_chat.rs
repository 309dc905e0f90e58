//! Media status, chat rules and malformed frames.
mod common;

use std::time::Duration;

use common::TestServer;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn media_status_reaches_everyone_and_roles_are_enforced() {
    let s = TestServer::start().await;
    s.room("m", &[("a", "attendee"), ("c", "consumer")]).await;
    let (mut a, _) = s.join("m", "a").await;
    let (mut c, _) = s.join("m", "c").await;
    a.set_media(true, true).await;
    let ev = c.next_of("mediaChanged").await;
    assert_eq!(
        ev,
        json!({"type": "mediaChanged", "participantId": "a", "audio": true, "video": true, "screen": false})
    );
    a.send(json!({"type": "setMedia", "audio": false})).await;
    let ev = c.next_of("mediaChanged").await;
    assert_eq!(
        (ev["audio"].as_bool(), ev["video"].as_bool()),
        (Some(false), Some(true))
    );
    // Attendees may not share a screen; consumers may not publish at all.
    a.send(json!({"type": "setMedia", "screen": true})).await;
    assert_eq!(
        a.next_of("error").await["error"]["code"],
        "PermissionDenied"
    );
    c.set_media(true, false).await;
    assert_eq!(
        c.next_of("error").await["error"]["code"],
        "PermissionDenied"
    );
    // Refusals change nothing.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (_, members) = s.get("/v1/rooms/m/members").await;
    let states: Vec<(String, bool, bool, bool)> = members["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["id"].as_str().unwrap().to_string(),
                m["audio"].as_bool().unwrap(),
                m["video"].as_bool().unwrap(),
                m["screen"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        states,
        [
            ("a".into(), false, true, false),
            ("c".into(), false, false, false)
        ]
    );
}

#[tokio::test]
async fn presenters_mute_others() {
    let s = TestServer::start().await;
    s.room("m", &[("p", "presenter"), ("a", "attendee")]).await;
    let (mut p, _) = s.join("m", "p").await;
    let (mut a, _) = s.join("m", "a").await;
    a.set_media(true, true).await;
    p.next_of("mediaChanged").await;
    a.next_of("mediaChanged").await; // its own, as confirmation
    a.send(json!({"type": "mute", "participantId": "p", "audio": true}))
        .await;
    assert_eq!(
        a.next_of("error").await["error"]["code"],
        "PermissionDenied"
    );
    p.send(json!({"type": "mute", "participantId": "a", "audio": true}))
        .await;
    let ev = a.next_of("mediaChanged").await;
    assert_eq!(ev["audio"], false);
    assert_eq!(ev["video"], true);
    assert_eq!(ev["reason"], "mutedBy:p");
}

#[tokio::test]
async fn chat_is_broadcast_limited_and_can_be_disabled() {
    let s = TestServer::start().await;
    s.room("c", &[("a", "attendee"), ("b", "attendee")]).await;
    let (mut a, _) = s.join("c", "a").await;
    let (mut b, _) = s.join("c", "b").await;
    a.send(json!({"type": "sendMessage", "text": "hello"}))
        .await;
    let m = b.next_of("message").await;
    assert_eq!(
        (m["from"].as_str(), m["text"].as_str()),
        (Some("a"), Some("hello"))
    );
    a.send(json!({"type": "sendMessage", "text": "x".repeat(4097)}))
        .await;
    assert_eq!(
        a.next_of("error").await["error"]["code"],
        "InvalidParameter"
    );
    // The burst allowance is 10; the 11th quick message is refused.
    for i in 0..12 {
        a.send(json!({"type": "sendMessage", "text": format!("m{i}")}))
            .await;
    }
    assert_eq!(a.next_of("error").await["error"]["code"], "RateLimited");
    s.patch("/v1/rooms/c", json!({"isMessageDisabled": true}))
        .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    b.send(json!({"type": "sendMessage", "text": "still there?"}))
        .await;
    assert_eq!(
        b.next_of("error").await["error"]["code"],
        "PermissionDenied"
    );
}

#[tokio::test]
async fn malformed_frames_get_an_error_not_a_disconnect() {
    let s = TestServer::start().await;
    s.room("f", &[("a", "attendee")]).await;
    let (mut a, _) = s.join("f", "a").await;
    for bad in [
        "not json",
        r#"{"type":"dance"}"#,
        r#"{"type":"setMedia","audio":"yes"}"#,
    ] {
        a.send_raw(Message::Text(bad.into())).await;
        let e = a.next_of("error").await;
        assert_eq!(e["error"]["code"], "InvalidParameter", "{bad}");
    }
    a.send_raw(Message::Binary(vec![1, 2, 3].into())).await;
    assert_eq!(
        a.next_of("error").await["error"]["code"],
        "InvalidParameter"
    );
    a.send(json!({"type": "ping", "ts": 42.0})).await;
    assert_eq!(a.next_of("pong").await["ts"], 42.0);
    // Over the frame limit: the server closes the socket rather than buffer it.
    a.send_raw(Message::Text("x".repeat(70 * 1024).into()))
        .await;
    use futures_util::StreamExt;
    tokio::time::timeout(common::WAIT, async {
        loop {
            match a.stream.next().await {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => continue,
            }
        }
    })
    .await
    .expect("an oversized frame must close the socket");
}
