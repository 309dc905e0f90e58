//! Two admins at once: concurrent room PATCHes serialize (none is lost), `If-Match`
//! refuses a stale version, and the live session always ends on the stored room.
//! Each check runs on both stores: SQLite and PostgreSQL.
mod common;

use std::time::Duration;

use common::{assert_error, TestServer};
use serde_json::{json, Value};

macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {
        mod on_sqlite {
            $(#[tokio::test]
            async fn $name() { super::$name(super::TestServer::start().await).await })*
        }
        mod on_postgres {
            $(#[tokio::test]
            async fn $name() { super::$name(super::TestServer::start_on_postgres().await).await })*
        }
    };
}

on_both_stores!(
    twenty_concurrent_patches_lose_nothing,
    a_policy_or_window_change_racing_renames_is_kept,
    if_match_updates_only_the_version_read,
    the_live_session_always_ends_on_the_stored_state,
);

/// Sends all `bodies` as PATCHes at once; every one must answer 200.
async fn patch_all(s: &TestServer, path: &str, bodies: Vec<Value>) {
    let sends = bodies.into_iter().map(|b| {
        let rb = s.req(reqwest::Method::PATCH, path).json(&b);
        s.send(rb)
    });
    for (status, body) in futures_util::future::join_all(sends).await {
        assert_eq!(status, 200, "{body}");
    }
}

async fn twenty_concurrent_patches_lose_nothing(s: TestServer) {
    s.room("race", &[]).await;
    let mut version = 1;
    for round in 0..10 {
        // Each writer changes its own attribute; a lost update would drop one of them.
        let bodies = (0..20)
            .map(|i| json!({"attributes": {format!("k{i}"): format!("r{round}")}}))
            .collect();
        patch_all(&s, "/v1/rooms/race", bodies).await;
        let (status, room) = s.get("/v1/rooms/race").await;
        assert_eq!(status, 200);
        let attrs = room["attributes"].as_object().unwrap();
        let kept = (0..20)
            .filter(|i| attrs[&format!("k{i}")] == format!("r{round}"))
            .count();
        assert_eq!(kept, 20, "round {round}: {room}");
        version += 20;
        assert_eq!(room["version"], version, "one version per PATCH");
    }
}

async fn a_policy_or_window_change_racing_renames_is_kept(s: TestServer) {
    s.room("race", &[]).await;
    let until = (chrono::Utc::now() + chrono::Duration::hours(2)).to_rfc3339();
    for round in 0..10 {
        let mut bodies: Vec<Value> = (0..19)
            .map(|i| json!({"name": format!("name {round}-{i}")}))
            .collect();
        let special = if round % 2 == 0 {
            json!({"joinPolicy": if round % 4 == 0 { "closed" } else { "invite" }})
        } else {
            json!({"validUntil": until})
        };
        bodies.insert(round % 20, special.clone());
        patch_all(&s, "/v1/rooms/race", bodies).await;
        let (_, room) = s.get("/v1/rooms/race").await;
        for (k, v) in special.as_object().unwrap() {
            if k == "validUntil" {
                let want: chrono::DateTime<chrono::Utc> = v.as_str().unwrap().parse().unwrap();
                let got: chrono::DateTime<chrono::Utc> = room[k].as_str().unwrap().parse().unwrap();
                assert_eq!(got, want, "round {round}: {room}");
            } else {
                assert_eq!(&room[k], v, "round {round}: {room}");
            }
        }
    }
}

async fn if_match_updates_only_the_version_read(s: TestServer) {
    s.room("etag", &[]).await;
    let resp = s
        .req(reqwest::Method::GET, "/v1/rooms/etag")
        .send()
        .await
        .unwrap();
    let etag = resp.headers()["etag"].to_str().unwrap().to_string();
    assert_eq!(etag, "\"1\"");
    let patch = |tag: &str, body: Value| {
        s.req(reqwest::Method::PATCH, "/v1/rooms/etag")
            .header("If-Match", tag)
            .json(&body)
    };
    let resp = patch(&etag, json!({"name": "first"})).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["etag"], "\"2\"");
    // A second writer that read version 1 is refused, and nothing changes.
    let (status, body) = s.send(patch(&etag, json!({"name": "second"}))).await;
    assert_error(status, &body, 412, "PreconditionFailed", Some("If-Match"));
    assert_eq!(body["error"]["number"], 100017);
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("version 2"));
    let (_, room) = s.get("/v1/rooms/etag").await;
    assert_eq!(room["name"], "first");
    // `*` matches any version; a malformed tag is a clear 400.
    let (status, _) = s.send(patch("*", json!({"name": "third"}))).await;
    assert_eq!(status, 200);
    let (status, body) = s.send(patch("W/\"3\"", json!({"name": "x"}))).await;
    assert_error(status, &body, 400, "InvalidParameter", Some("If-Match"));
    // A refused edit keeps the version.
    let (status, _) = s.send(patch("\"3\"", json!({"maxParticipants": 0}))).await;
    assert_eq!(status, 400);
    let (_, room) = s.get("/v1/rooms/etag").await;
    assert_eq!(room["version"], 3);
    // DELETE honours it too.
    let del = |tag: &str| {
        s.req(reqwest::Method::DELETE, "/v1/rooms/etag")
            .header("If-Match", tag)
    };
    let (status, body) = s.send(del("\"2\"")).await;
    assert_error(status, &body, 412, "PreconditionFailed", Some("If-Match"));
    let (status, _) = s.send(del("\"3\"")).await;
    assert_eq!(status, 204);
}

/// The session's room version, as the admin's session list shows it.
async fn session_version(s: &TestServer, room: &str) -> u64 {
    let (_, sessions) = s.get("/v1/sessions").await;
    sessions["value"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["roomId"] == room)
        .map(|x| x["roomVersion"].as_u64().unwrap())
        .unwrap_or(0)
}

async fn the_live_session_always_ends_on_the_stored_state(s: TestServer) {
    s.room("live", &[("a", "attendee")]).await;
    let (mut a, _) = s.join("live", "a").await;
    for round in 0..15 {
        // Twenty writers: some turn chat off, some on, some rename.
        let bodies = (0..20)
            .map(|i| match (i + round) % 3 {
                0 => json!({"isMessageDisabled": true}),
                1 => json!({"isMessageDisabled": false}),
                _ => json!({"name": format!("n{i}")}),
            })
            .collect();
        patch_all(&s, "/v1/rooms/live", bodies).await;
        let (_, room) = s.get("/v1/rooms/live").await;
        let stored = room["version"].as_u64().unwrap();
        // The session reaches the stored version (notifications are queued before the
        // PATCH answers, so this is immediate in practice).
        let reached = tokio::time::timeout(Duration::from_secs(2), async {
            loop {
                if session_version(&s, "live").await == stored {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
        assert!(reached.is_ok(), "round {round}: the session is behind");
        a.send(json!({"type": "sendMessage", "text": format!("hi {round}")}))
            .await;
        let disabled = room["isMessageDisabled"].as_bool().unwrap();
        let got = loop {
            let f = a.next_frame(common::WAIT).await.expect("an answer");
            if f["type"] == "message" || f["type"] == "error" {
                break f;
            }
        };
        if disabled {
            assert_eq!(got["error"]["code"], "PermissionDenied", "round {round}");
        } else {
            assert_eq!(got["type"], "message", "round {round}: {got}");
        }
    }
}
