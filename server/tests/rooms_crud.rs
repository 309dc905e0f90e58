mod common;

use chrono::{DateTime, Duration, Utc};
use common::{assert_error, TestServer};
use serde_json::json;

fn time(v: &serde_json::Value) -> DateTime<Utc> {
    v.as_str().unwrap().parse().unwrap()
}

#[tokio::test]
async fn create_with_defaults_generates_id_and_window() {
    let s = TestServer::start().await;
    let before = Utc::now();
    let (status, room) = s.post("/v1/rooms", json!({})).await;
    assert_eq!(status, 201, "{room}");
    let id = room["id"].as_str().unwrap();
    assert!(id.starts_with("r_"), "{id}");
    let from = time(&room["validFrom"]);
    assert!(from >= before - Duration::seconds(1) && from <= Utc::now());
    assert_eq!(time(&room["validUntil"]) - from, Duration::days(180));
    assert_eq!(room["joinPolicy"], "invite");
    assert_eq!(room["announceLimit"], 50);
    let (status, got) = s.get(&format!("/v1/rooms/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(got, room);
}

#[tokio::test]
async fn client_chosen_id_and_options_round_trip() {
    let s = TestServer::start().await;
    let (status, room) = s
        .post(
            "/v1/rooms",
            json!({
                "id": "standup", "name": "Daily standup",
                "validFrom": "2030-01-01T00:00:00Z", "validUntil": "2030-01-02T00:00:00Z",
                "maxParticipants": 12, "joinPolicy": "closed", "isMessageDisabled": true,
                "isPublicVisible": true, "coverUrl": "https://example.com/c.png",
                "destroyDelaySeconds": 30, "attributes": {"team": "blue"}
            }),
        )
        .await;
    // validFrom is more than 180 days ahead of now (2026): refused.
    assert_error(status, &room, 400, "InvalidParameter", Some("validFrom"));
    let from = Utc::now() + Duration::days(1);
    let until = from + Duration::hours(2);
    let (status, room) = s
        .post(
            "/v1/rooms",
            json!({
                "id": "standup", "name": "Daily standup",
                "validFrom": from, "validUntil": until,
                "maxParticipants": 12, "joinPolicy": "closed", "isMessageDisabled": true,
                "isPublicVisible": true, "coverUrl": "https://example.com/c.png",
                "destroyDelaySeconds": 30, "attributes": {"team": "blue"}
            }),
        )
        .await;
    assert_eq!(status, 201, "{room}");
    assert_eq!(room["id"], "standup");
    assert_eq!(room["maxParticipants"], 12);
    assert_eq!(room["joinPolicy"], "closed");
    assert_eq!(room["isMessageDisabled"], true);
    assert_eq!(room["attributes"]["team"], "blue");
    assert_eq!(time(&room["validUntil"]), until);
    let (status, dup) = s.post("/v1/rooms", json!({"id": "standup"})).await;
    assert_error(status, &dup, 409, "RoomAlreadyExists", Some("id"));
}

#[tokio::test]
async fn repeatability_header_returns_the_first_result() {
    let s = TestServer::start().await;
    let send = || {
        s.req(reqwest::Method::POST, "/v1/rooms")
            .header("Repeatability-Request-ID", "retry-123")
            .json(&json!({"name": "once"}))
    };
    let (s1, first) = s.send(send()).await;
    let (s2, second) = s.send(send()).await;
    assert_eq!((s1, s2), (201, 201));
    assert_eq!(first, second);
    let (_, list) = s.get("/v1/rooms").await;
    assert_eq!(list["value"].as_array().unwrap().len(), 1);
    // A new key creates a new room.
    let (s3, third) = s
        .send(
            s.req(reqwest::Method::POST, "/v1/rooms")
                .header("Repeatability-Request-ID", "retry-456")
                .json(&json!({"name": "once"})),
        )
        .await;
    assert_eq!(s3, 201);
    assert_ne!(third["id"], first["id"]);
    // Once the room is deleted, the key no longer replays it: a retry creates a room
    // that exists.
    let (st, _) = s
        .delete(&format!("/v1/rooms/{}", first["id"].as_str().unwrap()))
        .await;
    assert_eq!(st, 204);
    let (s4, fourth) = s.send(send()).await;
    assert_eq!(s4, 201, "{fourth}");
    let (st, got) = s
        .get(&format!("/v1/rooms/{}", fourth["id"].as_str().unwrap()))
        .await;
    assert_eq!(st, 200, "the room answered exists: {got}");
}

#[tokio::test]
async fn list_is_paged_with_next_link() {
    let s = TestServer::start().await;
    for i in 0..5 {
        s.room(&format!("room-{i}"), &[]).await;
    }
    let mut seen = vec![];
    let mut next = Some("/v1/rooms?maxPageSize=2".to_string());
    let mut pages = 0;
    while let Some(path) = next {
        let (status, page) = s.get(&path).await;
        assert_eq!(status, 200, "{page}");
        for r in page["value"].as_array().unwrap() {
            seen.push(r["id"].as_str().unwrap().to_string());
        }
        next = page["nextLink"].as_str().map(str::to_owned);
        pages += 1;
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, ["room-0", "room-1", "room-2", "room-3", "room-4"]);
    let (status, body) = s.get("/v1/rooms?maxPageSize=0").await;
    assert_error(status, &body, 400, "InvalidParameter", Some("maxPageSize"));
    let (status, body) = s.get("/v1/rooms?skipToken=%%%").await;
    assert_eq!(status, 400, "{body}");
}

#[tokio::test]
async fn patch_merges_and_null_resets() {
    let s = TestServer::start().await;
    let (_, room) = s
        .post(
            "/v1/rooms",
            json!({"id": "p", "name": "Old", "maxParticipants": 5, "attributes": {"a": "1", "b": "2"}}),
        )
        .await;
    let (status, updated) = s
        .patch(
            "/v1/rooms/p",
            json!({"name": "New", "maxParticipants": null, "attributes": {"a": null, "c": "3"}}),
        )
        .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["name"], "New");
    assert!(updated["maxParticipants"].is_null());
    assert_eq!(updated["attributes"], json!({"b": "2", "c": "3"}));
    assert_eq!(updated["validUntil"], room["validUntil"]);
    let (_, got) = s.get("/v1/rooms/p").await;
    assert_eq!(got, updated);
    // A window change is checked as a whole.
    let from: DateTime<Utc> = time(&room["validFrom"]);
    let (status, body) = s
        .patch(
            "/v1/rooms/p",
            json!({"validUntil": from - Duration::hours(1)}),
        )
        .await;
    assert_error(status, &body, 400, "InvalidParameter", Some("validUntil"));
    let (status, body) = s.patch("/v1/rooms/p", json!({"id": "other"})).await;
    assert_error(status, &body, 400, "InvalidParameter", Some("id"));
    let (status, body) = s.patch("/v1/rooms/nope", json!({"name": "x"})).await;
    assert_error(status, &body, 404, "RoomNotFound", Some("roomId"));
}

#[tokio::test]
async fn delete_removes_room_and_roster() {
    let s = TestServer::start().await;
    s.room("gone", &[("alice", "presenter")]).await;
    let (status, body) = s.delete("/v1/rooms/gone").await;
    assert_eq!(status, 204, "{body}");
    let (status, body) = s.get("/v1/rooms/gone").await;
    assert_error(status, &body, 404, "RoomNotFound", None);
    let (status, body) = s.delete("/v1/rooms/gone").await;
    assert_error(status, &body, 404, "RoomNotFound", None);
    let (status, body) = s.get("/v1/rooms/gone/participants").await;
    assert_error(status, &body, 404, "RoomNotFound", None);
    // The id is free again, with an empty roster.
    s.room("gone", &[]).await;
    let (_, roster) = s.get("/v1/rooms/gone/participants").await;
    assert_eq!(roster["value"], json!([]));
}
