//! Live rooms over the real API and sockets: room types and hosts, the public live list
//! and guest tokens (and what never appears there), room attributes set during the
//! call reaching everyone and the store, and seats seen and cleared by the admin.
mod common;

use std::time::Duration;

use common::{assert_error, TestServer};
use serde_json::{json, Value};

async fn public_live(s: &TestServer, id: &str) {
    let (st, b) = s
        .post(
            "/v1/rooms",
            json!({"id": id, "name": "Launch", "roomType": "live", "ownerId": "host",
                   "isPublicVisible": true, "joinPolicy": "public", "maxSeatCount": 4,
                   "coverUrl": "https://img.example.com/c.png",
                   "participants": {"guest1": {}}}),
        )
        .await;
    assert_eq!(st, 201, "{b}");
}

async fn live_list(s: &TestServer) -> Value {
    let r = s.http().get(s.url("/v1/live")).send().await.unwrap();
    assert_eq!(r.status(), 200, "no admin key needed");
    r.json().await.unwrap()
}

#[tokio::test]
async fn a_live_room_has_a_host_and_seats() {
    let s = TestServer::start().await;
    public_live(&s, "show").await;
    let (_, room) = s.get("/v1/rooms/show").await;
    assert_eq!(
        (
            room["roomType"].clone(),
            room["ownerId"].clone(),
            room["maxSeatCount"].clone()
        ),
        (json!("live"), json!("host"), json!(4))
    );
    let (_, roster) = s.get("/v1/rooms/show/participants").await;
    let host = roster["value"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["userId"] == "host")
        .cloned()
        .unwrap();
    assert_eq!(
        host["role"], "presenter",
        "the host is invited as a presenter"
    );
    let (st, b) = s
        .post("/v1/rooms", json!({"roomType": "live", "maxSeatCount": 0}))
        .await;
    assert_error(st, &b, 400, "InvalidParameter", Some("maxSeatCount"));
    let (st, b) = s.post("/v1/rooms", json!({"roomType": "stage"})).await;
    assert_error(st, &b, 400, "InvalidParameter", Some("roomType"));

    // A guest on a seat, as the admin sees it, then taken off.
    let (mut host_ws, joined) = s.join("show", "host").await;
    assert_eq!(joined["seats"].as_array().unwrap().len(), 4);
    let (mut g, _) = s.join("show", "guest1").await;
    g.send(json!({"type": "takeSeat", "index": 2})).await;
    host_ws.next_of("seatsChanged").await;
    let (_, seats) = s.get("/v1/rooms/show/seats").await;
    assert_eq!(seats["value"][2]["userId"], "guest1");
    let (st, _) = s.delete("/v1/rooms/show/seats/2").await;
    assert_eq!(st, 204);
    let caps = g.next_of("capabilitiesChanged").await;
    assert_eq!(caps["capabilities"]["publishAudio"], true);
    let caps = g.next_of("capabilitiesChanged").await;
    assert_eq!(caps["capabilities"]["publishAudio"], false, "off the seat");
    let (st, b) = s.delete("/v1/rooms/show/seats/2").await;
    assert_error(st, &b, 404, "NotInRoom", Some("index"));
}

#[tokio::test]
async fn the_public_live_list_and_guests() {
    let s = TestServer::start().await;
    public_live(&s, "show").await;
    // Not listed: an invite-only live room, a public conference, a hidden live room.
    s.post(
        "/v1/rooms",
        json!({"id": "private", "roomType": "live", "participants": {"x": {}}}),
    )
    .await;
    s.post(
        "/v1/rooms",
        json!({"id": "conf", "isPublicVisible": true, "joinPolicy": "public", "participants": {"x": {}}}),
    )
    .await;
    assert_eq!(live_list(&s).await["value"], json!([]), "nothing live yet");
    let (_host, _) = s.join("show", "host").await;
    let (_x, _) = s.join("private", "x").await;
    let (_y, _) = s.join("conf", "x").await;
    let list = live_list(&s).await;
    let rooms = list["value"].as_array().unwrap();
    assert_eq!(rooms.len(), 1, "{list}");
    assert_eq!(rooms[0]["roomId"], "show");
    assert_eq!(rooms[0]["ownerId"], "host");
    assert_eq!(rooms[0]["memberCount"], 1);
    assert_eq!(rooms[0]["seatCount"], 4);

    let guest = |room: &str, name: &str| {
        s.http()
            .post(s.url(&format!("/v1/live/{room}/guest-tokens")))
            .json(&json!({"displayName": name}))
            .send()
    };
    let r = guest("show", "  Viewer One ").await.unwrap();
    assert_eq!(r.status(), 201);
    let t: Value = r.json().await.unwrap();
    assert!(t["userId"].as_str().unwrap().starts_with("guest_"));
    let mut v = s.ws(t["token"].as_str().unwrap(), None).await.unwrap();
    let joined = v.next_of("joined").await;
    assert_eq!(joined["self"]["role"], "consumer");
    assert_eq!(joined["self"]["name"], "Viewer One");
    tokio::time::timeout(Duration::from_secs(5), async {
        while live_list(&s).await["value"][0]["memberCount"] != 2 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the guest counts");
    for room in ["private", "conf", "nope"] {
        let r = guest(room, "Eve").await.unwrap();
        let st = r.status().as_u16();
        let b: Value = r.json().await.unwrap();
        assert_error(st, &b, 404, "RoomNotFound", Some("roomId"));
    }
    let r = guest("show", "").await.unwrap();
    let st = r.status().as_u16();
    let b: Value = r.json().await.unwrap();
    assert_error(st, &b, 400, "InvalidParameter", Some("displayName"));
    // Guest tokens are rate-limited per address.
    let mut limited = false;
    for _ in 0..12 {
        let r = guest("show", "Many").await.unwrap();
        if r.status() == 429 {
            assert!(r.headers().contains_key("retry-after"));
            limited = true;
            break;
        }
    }
    assert!(limited, "no 429 after a dozen guest tokens");
}

#[tokio::test]
async fn room_attributes_set_in_the_call_reach_everyone_and_the_store() {
    let s = TestServer::start().await;
    public_live(&s, "show").await;
    let (mut host, _) = s.join("show", "host").await;
    let (mut g, _) = s.join("show", "guest1").await;
    host.send(json!({"type": "setRoomAttributes", "attributes": {"topic": "Q&A"}}))
        .await;
    for ws in [&mut g, &mut host] {
        let got = ws.next_of("roomAttributesChanged").await;
        assert_eq!(got["changed"], json!({"topic": "Q&A"}));
    }
    let (_, room) = s.get("/v1/rooms/show").await;
    assert_eq!(room["attributes"]["topic"], "Q&A", "stored with the room");
    // An admin change reaches the call the same way.
    s.patch(
        "/v1/rooms/show",
        json!({"attributes": {"topic": null, "stage": "2"}}),
    )
    .await;
    let got = host.next_of("roomAttributesChanged").await;
    assert_eq!(got["changed"], json!({"topic": null, "stage": "2"}));
    g.send(json!({"type": "setRoomAttributes", "attributes": {"topic": "mine"}}))
        .await;
    assert_eq!(
        g.next_of("error").await["error"]["code"],
        "PermissionDenied"
    );
}
