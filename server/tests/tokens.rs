mod common;

use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use common::{assert_error, TestServer};
use serde_json::json;

fn claims(token: &str) -> serde_json::Value {
    let body = token.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(body)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

#[tokio::test]
async fn minted_for_invited_users_with_a_join_link() {
    let s = TestServer::start().await;
    s.room("t", &[("alice", "presenter")]).await;
    let (st, b) = s
        .post(
            "/v1/rooms/t/tokens",
            json!({"userId": "alice", "ttlSeconds": 600}),
        )
        .await;
    assert_eq!(st, 201, "{b}");
    let token = b["token"].as_str().unwrap();
    assert_eq!(b["role"], "presenter");
    assert_eq!(b["joinUrl"], format!("{}/join#token={token}", s.base));
    let c = claims(token);
    assert_eq!(c["sub"], "alice");
    assert_eq!(c["room"], "t");
    assert_eq!(c["jti"], b["tokenId"]);
    let exp: DateTime<Utc> = b["expiresAt"].as_str().unwrap().parse().unwrap();
    let left = exp - Utc::now();
    assert!(
        left > Duration::seconds(590) && left <= Duration::seconds(600),
        "{left}"
    );
    assert_eq!(c["exp"].as_i64().unwrap(), exp.timestamp());

    let (st, b) = s
        .post("/v1/rooms/t/tokens", json!({"userId": "mallory"}))
        .await;
    assert_error(st, &b, 403, "NotInvited", Some("userId"));
    let (st, b) = s
        .post("/v1/rooms/t/tokens", json!({"userId": "bad id"}))
        .await;
    assert_error(st, &b, 400, "InvalidParameter", Some("userId"));
    let (st, b) = s.post("/v1/rooms/t/tokens", json!({})).await;
    assert_error(st, &b, 400, "InvalidParameter", Some("userId"));
    for ttl in [0, 59, 15_552_001] {
        let (st, b) = s
            .post(
                "/v1/rooms/t/tokens",
                json!({"userId": "alice", "ttlSeconds": ttl}),
            )
            .await;
        assert_error(st, &b, 400, "InvalidParameter", Some("ttlSeconds"));
    }
    let (st, b) = s
        .post("/v1/rooms/zzz/tokens", json!({"userId": "alice"}))
        .await;
    assert_error(st, &b, 404, "RoomNotFound", None);
}

#[tokio::test]
async fn never_outlives_the_room() {
    let s = TestServer::start().await;
    let until = Utc::now() + Duration::minutes(5);
    let (st, b) = s
        .post(
            "/v1/rooms",
            json!({"id": "short", "validUntil": until, "participants": {"bob": {}}}),
        )
        .await;
    assert_eq!(st, 201, "{b}");
    let (st, b) = s
        .post(
            "/v1/rooms/short/tokens",
            json!({"userId": "bob", "ttlSeconds": 86400}),
        )
        .await;
    assert_eq!(st, 201, "{b}");
    let exp: DateTime<Utc> = b["expiresAt"].as_str().unwrap().parse().unwrap();
    assert!(exp <= until, "{exp} > {until}");
    assert!(exp > until - Duration::seconds(2));
}

#[tokio::test]
async fn expired_room_mints_nothing() {
    let s = TestServer::start().await;
    let until = Utc::now() + Duration::milliseconds(1500);
    let (st, b) = s
        .post(
            "/v1/rooms",
            json!({"id": "brief", "validUntil": until, "participants": {"bob": {}}}),
        )
        .await;
    assert_eq!(st, 201, "{b}");
    tokio::time::sleep(std::time::Duration::from_millis(1700)).await;
    let (st, b) = s
        .post("/v1/rooms/brief/tokens", json!({"userId": "bob"}))
        .await;
    assert_error(st, &b, 410, "RoomExpired", None);
}

#[tokio::test]
async fn revoke_is_idempotent_and_checked() {
    let s = TestServer::start().await;
    s.room("rv", &[("bob", "attendee")]).await;
    let (_, b) = s
        .post("/v1/rooms/rv/tokens", json!({"userId": "bob"}))
        .await;
    let id = b["tokenId"].as_str().unwrap();
    let (st, _) = s.delete(&format!("/v1/rooms/rv/tokens/{id}")).await;
    assert_eq!(st, 204);
    let (st, _) = s.delete(&format!("/v1/rooms/rv/tokens/{id}")).await;
    assert_eq!(st, 204);
    let (st, b) = s.delete("/v1/rooms/rv/tokens/not-a-token").await;
    assert_error(st, &b, 400, "InvalidParameter", Some("tokenId"));
    // A made-up id, and a real id of another room, are not this room's tokens.
    let made_up = format!("t_{}", "a".repeat(32));
    let (st, b) = s.delete(&format!("/v1/rooms/rv/tokens/{made_up}")).await;
    assert_error(st, &b, 404, "TokenNotFound", Some("tokenId"));
    s.room("other", &[("carol", "attendee")]).await;
    let (_, b) = s
        .post("/v1/rooms/other/tokens", json!({"userId": "carol"}))
        .await;
    let (theirs, token) = (b["tokenId"].as_str().unwrap(), b["token"].as_str().unwrap());
    let (st, b) = s.delete(&format!("/v1/rooms/rv/tokens/{theirs}")).await;
    assert_error(st, &b, 404, "TokenNotFound", Some("tokenId"));
    // ...and it was not revoked: it still joins its own room.
    assert!(
        s.ws(token, None).await.is_ok(),
        "the other room's token still joins"
    );
}

#[tokio::test]
async fn a_link_minted_early_counts_from_the_opening() {
    let s = TestServer::start().await;
    let from = Utc::now() + Duration::days(3);
    let (st, b) = s
        .post(
            "/v1/rooms",
            json!({"id": "later", "validFrom": from, "participants": {"bob": {}}}),
        )
        .await;
    assert_eq!(st, 201, "{b}");
    let (_, b) = s
        .post(
            "/v1/rooms/later/tokens",
            json!({"userId": "bob", "ttlSeconds": 3600}),
        )
        .await;
    let exp: DateTime<Utc> = b["expiresAt"].as_str().unwrap().parse().unwrap();
    let d = exp - (from + Duration::hours(1));
    assert!(d.num_seconds().abs() <= 1, "{exp} vs {from}");
}
