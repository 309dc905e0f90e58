mod common;

use common::TestServer;

#[tokio::test]
async fn document_covers_every_route_and_the_error_envelope() {
    let s = TestServer::start().await;
    // The document is public: it holds no secrets and tools fetch it unauthenticated.
    let resp = s
        .http()
        .get(s.url("/v1/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let doc: serde_json::Value = resp.json().await.unwrap();
    let paths = doc["paths"].as_object().unwrap();
    let want = [
        ("/v1/rooms", &["post", "get"][..]),
        ("/v1/rooms/{roomId}", &["get", "patch", "delete"]),
        ("/v1/rooms/{roomId}/participants", &["get", "patch"]),
        ("/v1/rooms/{roomId}/tokens", &["post"]),
        ("/v1/rooms/{roomId}/tokens/{tokenId}", &["delete"]),
        ("/v1/openapi.json", &["get"]),
    ];
    for (path, methods) in want {
        for m in methods {
            assert!(
                paths.get(path).and_then(|p| p.get(*m)).is_some(),
                "{m} {path} missing"
            );
        }
    }
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for name in [
        "Room",
        "CreateRoomRequest",
        "UpdateRoomRequest",
        "ErrorEnvelope",
        "ErrorCode",
        "MintTokenRequest",
        "RosterEntry",
    ] {
        assert!(schemas.contains_key(name), "schema {name} missing");
    }
    let codes = schemas["ErrorCode"].to_string();
    for c in [
        "RoomNotFound",
        "InvalidParameter",
        "RoomExpired",
        "NotInvited",
    ] {
        assert!(codes.contains(c), "{c}");
    }
    assert!(doc["components"]["securitySchemes"]["adminKey"].is_object());
}
