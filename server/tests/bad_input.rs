//! Every kind of bad input gets the error envelope with a fitting 4xx, never a 500.
mod common;

use chrono::{Duration, Utc};
use common::{assert_error, TestServer};
use serde_json::json;

#[tokio::test]
async fn malformed_and_mistyped_bodies_name_the_field() {
    let s = TestServer::start().await;
    let raw = |body: &'static str| {
        s.req(reqwest::Method::POST, "/v1/rooms")
            .header("content-type", "application/json")
            .body(body)
    };
    let (st, b) = s.send(raw("{not json")).await;
    assert_error(st, &b, 400, "InvalidParameter", Some("body"));
    let (st, b) = s.send(raw("[1,2]")).await;
    assert_error(st, &b, 400, "InvalidParameter", None);
    let (st, b) = s.post("/v1/rooms", json!({"maxParticipants": "ten"})).await;
    assert_error(st, &b, 400, "InvalidParameter", Some("maxParticipants"));
    let (st, b) = s.post("/v1/rooms", json!({"maxParticipants": -1})).await;
    assert_error(st, &b, 400, "InvalidParameter", Some("maxParticipants"));
    let (st, b) = s.post("/v1/rooms", json!({"maxParticipants": 0})).await;
    assert_error(st, &b, 400, "InvalidParameter", Some("maxParticipants"));
    let (st, b) = s.post("/v1/rooms", json!({"colour": "red"})).await;
    assert_error(st, &b, 400, "InvalidParameter", Some("colour"));
    let (st, b) = s
        .post("/v1/rooms", json!({"validFrom": "+262142-12-31T00:00:00Z"}))
        .await;
    assert_error(st, &b, 400, "InvalidParameter", Some("validFrom"));
    let (st, b) = s
        .post("/v1/rooms", json!({"validFrom": "next tuesday"}))
        .await;
    assert_error(st, &b, 400, "InvalidParameter", Some("validFrom"));
    let (st, b) = s.post("/v1/rooms", json!({"joinPolicy": "open"})).await;
    assert_error(st, &b, 400, "InvalidParameter", Some("joinPolicy"));
    let (st, b) = s
        .post("/v1/rooms", json!({"coverUrl": "javascript:alert(1)"}))
        .await;
    assert_error(st, &b, 400, "InvalidParameter", Some("coverUrl"));
    let (st, b) = s
        .post("/v1/rooms", json!({"destroyDelaySeconds": 100000}))
        .await;
    assert_error(st, &b, 400, "InvalidParameter", Some("destroyDelaySeconds"));
    let (st, b) = s.post("/v1/rooms", json!({"name": "x".repeat(201)})).await;
    assert_error(st, &b, 400, "InvalidParameter", Some("name"));
    let (st, b) = s
        .post("/v1/rooms", json!({"attributes": {"a b": "x"}}))
        .await;
    assert_error(st, &b, 400, "InvalidParameter", Some("attributes.a b"));
    let (st, b) = s.post("/v1/rooms", json!({"attributes": {"k": 1}})).await;
    assert_error(st, &b, 400, "InvalidParameter", Some("attributes.k"));
    let (st, b) = s
        .post(
            "/v1/rooms",
            json!({"participants": {"bob": {"role": "admin"}}}),
        )
        .await;
    assert_error(
        st,
        &b,
        400,
        "InvalidParameter",
        Some("participants.bob.role"),
    );
    let (st, b) = s
        .post("/v1/rooms", json!({"participants": {"bad user": {}}}))
        .await;
    assert_error(
        st,
        &b,
        400,
        "InvalidParameter",
        Some("participants.bad user"),
    );
}

#[tokio::test]
async fn bad_ids_are_refused() {
    let s = TestServer::start().await;
    for id in ["", "has space", "slash/y", "ü", &"a".repeat(65)] {
        let (st, b) = s.post("/v1/rooms", json!({ "id": id })).await;
        assert_error(st, &b, 400, "InvalidParameter", Some("id"));
    }
    let (st, b) = s.get("/v1/rooms/has%20space").await;
    assert_error(st, &b, 400, "InvalidParameter", Some("roomId"));
    let (st, b) = s.get("/v1/rooms/nobody-here").await;
    assert_error(st, &b, 404, "RoomNotFound", Some("roomId"));
}

#[tokio::test]
async fn validity_rules_name_the_field() {
    let s = TestServer::start().await;
    let now = Utc::now();
    let cases = [
        (
            json!({"validUntil": now - Duration::hours(1)}),
            "validUntil",
        ),
        (
            json!({"validFrom": now + Duration::days(2), "validUntil": now + Duration::days(1)}),
            "validUntil",
        ),
        (
            json!({"validFrom": now + Duration::days(1), "validUntil": now + Duration::days(1)}),
            "validUntil",
        ),
        (
            json!({"validUntil": now + Duration::days(181)}),
            "validUntil",
        ),
        (json!({"validFrom": now + Duration::days(181)}), "validFrom"),
    ];
    for (body, target) in cases {
        let (st, b) = s.post("/v1/rooms", body.clone()).await;
        assert_error(st, &b, 400, "InvalidParameter", Some(target));
    }
    let (st, b) = s
        .post(
            "/v1/rooms",
            json!({"validFrom": now + Duration::days(179), "validUntil": now + Duration::days(180)}),
        )
        .await;
    assert_eq!(st, 201, "{b}");
}

#[tokio::test]
async fn oversized_body_is_413() {
    let s = TestServer::start().await;
    let big = format!("{{\"name\": \"{}\"}}", "x".repeat(2 * 1024 * 1024));
    let (st, b) = s
        .send(s.req(reqwest::Method::POST, "/v1/rooms").body(big))
        .await;
    assert_error(st, &b, 413, "PayloadTooLarge", None);
}

#[tokio::test]
async fn unknown_routes_and_methods_get_the_envelope() {
    let s = TestServer::start().await;
    let (st, b) = s.get("/v1/nothing").await;
    assert_error(st, &b, 404, "NotFound", None);
    let (st, b) = s.send(s.req(reqwest::Method::PUT, "/v1/rooms")).await;
    assert_error(st, &b, 405, "MethodNotAllowed", None);
}

#[tokio::test]
async fn request_ids_are_echoed_or_made() {
    let s = TestServer::start().await;
    let resp = s
        .req(reqwest::Method::GET, "/v1/rooms/missing")
        .header("x-request-id", "trace-42")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["x-request-id"], "trace-42");
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["requestId"], "trace-42");
    let resp = s
        .req(reqwest::Method::GET, "/v1/rooms")
        .send()
        .await
        .unwrap();
    let id = resp.headers()["x-request-id"].to_str().unwrap();
    assert!(id.starts_with("req_"), "{id}");
}

#[tokio::test]
async fn admin_key_is_required() {
    let s = TestServer::start().await;
    let resp = s.http().get(s.url("/v1/rooms")).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(resp.headers()["www-authenticate"], "Bearer");
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "Unauthenticated");
    let (st, b) = s
        .send(
            s.http()
                .get(s.url("/v1/rooms"))
                .bearer_auth("wrong-key-wrong-key"),
        )
        .await;
    assert_error(st, &b, 401, "Unauthenticated", None);
    let (st, b) = s
        .send(
            s.http()
                .post(s.url("/v1/rooms"))
                .header("authorization", format!("Basic {}", s.key)),
        )
        .await;
    assert_error(st, &b, 401, "Unauthenticated", None);
    let (st, _) = s.get("/v1/rooms").await;
    assert_eq!(st, 200);
}
