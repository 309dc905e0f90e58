mod common;

use common::{assert_error, TestServer};
use serde_json::json;

#[tokio::test]
async fn upsert_defaults_change_and_remove() {
    let s = TestServer::start().await;
    s.room("r", &[("alice", "presenter")]).await;
    let (st, b) = s
        .patch(
            "/v1/rooms/r/participants",
            json!({"participants": {"bob": {}, "carol": {"role": "consumer"}, "alice": {"role": "collaborator"}}}),
        )
        .await;
    assert_eq!(st, 200, "{b}");
    assert_eq!(b["added"].as_array().unwrap().len(), 2);
    assert_eq!(b["updated"][0]["userId"], "alice");
    let (_, roster) = s.get("/v1/rooms/r/participants").await;
    let roles: Vec<(String, String)> = roster["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["userId"].as_str().unwrap().into(),
                e["role"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        roles,
        [
            ("alice".into(), "collaborator".into()),
            ("bob".into(), "attendee".into()),
            ("carol".into(), "consumer".into())
        ]
    );
    let (st, b) = s
        .patch(
            "/v1/rooms/r/participants",
            json!({"participants": {"bob": null, "nobody": null}}),
        )
        .await;
    assert_eq!(st, 200, "{b}");
    assert_eq!(b["removed"], json!(["bob"]));
    let (_, roster) = s.get("/v1/rooms/r/participants").await;
    assert_eq!(roster["value"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn bad_roster_input_names_the_field() {
    let s = TestServer::start().await;
    s.room("r", &[]).await;
    let (st, b) = s
        .patch(
            "/v1/rooms/r/participants",
            json!({"participants": {"dave": {"role": "owner"}}}),
        )
        .await;
    assert_error(
        st,
        &b,
        400,
        "InvalidParameter",
        Some("participants.dave.role"),
    );
    let (st, b) = s
        .patch(
            "/v1/rooms/r/participants",
            json!({"participants": {"no spaces": {}}}),
        )
        .await;
    assert_error(
        st,
        &b,
        400,
        "InvalidParameter",
        Some("participants.no spaces"),
    );
    let (st, b) = s.patch("/v1/rooms/r/participants", json!({})).await;
    assert_error(st, &b, 400, "InvalidParameter", None);
    let (st, b) = s
        .patch("/v1/rooms/none/participants", json!({"participants": {}}))
        .await;
    assert_error(st, &b, 404, "RoomNotFound", None);
    // A failed request changes nothing.
    let (_, roster) = s.get("/v1/rooms/r/participants").await;
    assert_eq!(roster["value"], json!([]));
}

#[tokio::test]
async fn roster_is_paged() {
    let s = TestServer::start().await;
    s.room("big", &[]).await;
    let many: serde_json::Map<_, _> = (0..25)
        .map(|i| (format!("user{i:02}"), json!({})))
        .collect();
    let (st, _) = s
        .patch(
            "/v1/rooms/big/participants",
            json!({ "participants": many }),
        )
        .await;
    assert_eq!(st, 200);
    let (_, p1) = s.get("/v1/rooms/big/participants?maxPageSize=10").await;
    assert_eq!(p1["value"].as_array().unwrap().len(), 10);
    let next = p1["nextLink"].as_str().unwrap();
    let (_, p2) = s.get(next).await;
    assert_eq!(p2["value"][0]["userId"], "user10");
}
