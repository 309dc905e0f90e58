//! Past the announce limit, receive-only members are a count, listed on request.
mod common;

use common::ws::ids;
use common::TestServer;
use serde_json::json;

#[tokio::test]
async fn audience_is_counted_and_paged() {
    let s = TestServer::start().await;
    let viewers: Vec<String> = (0..5).map(|i| format!("v{i}")).collect();
    let mut roster: serde_json::Map<String, serde_json::Value> = viewers
        .iter()
        .map(|v| (v.clone(), json!({"role": "consumer"})))
        .collect();
    roster.insert("host".into(), json!({"role": "presenter"}));
    roster.insert("speaker".into(), json!({"role": "attendee"}));
    let (st, b) = s
        .post(
            "/v1/rooms",
            json!({"id": "big", "announceLimit": 2, "participants": roster}),
        )
        .await;
    assert_eq!(st, 201, "{b}");
    let (mut host, _) = s.join("big", "host").await;
    let mut conns = vec![];
    for v in &viewers {
        conns.push(s.join("big", v).await);
    }
    // host + 1 viewer fill the limit of 2; the other 4 viewers are audience.
    let (_, last_joined) = conns.last().unwrap();
    assert_eq!(last_joined["audienceCount"], 4);
    assert_eq!(ids(&last_joined["participants"]), ["host", "v0"]);
    // Publishers are always announced, past the limit too.
    let (_sp, joined) = s.join("big", "speaker").await;
    assert_eq!(ids(&joined["participants"]), ["host", "speaker", "v0"]);
    let mut count = 0;
    while count != 4 {
        count = host.next_of("participantsChanged").await["audienceCount"]
            .as_u64()
            .unwrap();
    }
    host.send(json!({"type": "listAudience", "limit": 3})).await;
    let p1 = host.next_of("audience").await;
    assert_eq!(ids(&p1["participants"]), ["v1", "v2", "v3"]);
    assert_eq!(p1["next"], "v3");
    host.send(json!({"type": "listAudience", "after": "v3", "limit": 3}))
        .await;
    let p2 = host.next_of("audience").await;
    assert_eq!(ids(&p2["participants"]), ["v4"]);
    assert!(p2.get("next").is_none());
}
