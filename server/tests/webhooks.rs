//! Webhooks against a real receiver: every event type arrives, signed, in order; the
//! endpoints API refuses what it should; and an event whose delivery was cut by
//! `kill -9` is delivered after the restart, once.
mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use common::{assert_error, TestServer};
use convene::webhooks::sign;
use serde_json::{json, Value};

const SECRET: &str = "test-webhook-secret-0123456789";

/// What the receiver saw: every attempt, and whether it accepted it.
#[derive(Clone, Default)]
struct Receiver {
    seen: Arc<Mutex<Vec<(HeaderMap, Value, bool)>>>,
    accept: Arc<AtomicBool>,
}

impl Receiver {
    async fn start(accept: bool) -> (Self, String) {
        let r = Receiver::default();
        r.accept.store(accept, Ordering::SeqCst);
        let app = axum::Router::new()
            .route("/hook", post(record))
            .with_state(r.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (r, url)
    }

    /// Accepted deliveries, in arrival order.
    fn delivered(&self) -> Vec<(HeaderMap, Value)> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, _, ok)| *ok)
            .map(|(h, b, _)| (h.clone(), b.clone()))
            .collect()
    }

    async fn until(&self, what: &str, f: impl Fn(&Self) -> bool) {
        tokio::time::timeout(Duration::from_secs(30), async {
            while !f(self) {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"));
    }
}

async fn record(State(r): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let ok = r.accept.load(Ordering::SeqCst);
    let now = chrono::Utc::now().timestamp();
    let signed = headers
        .get(sign::HEADER)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|h| sign::verify(SECRET, h, &body, now, 300));
    assert!(signed, "an unsigned or badly signed delivery");
    let value: Value = serde_json::from_slice(&body).unwrap();
    r.seen.lock().unwrap().push((headers, value, ok));
    if ok {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    }
}

fn types(d: &[(HeaderMap, Value)]) -> Vec<String> {
    d.iter()
        .map(|(_, b)| b["type"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn every_event_arrives_signed_and_in_order() {
    let s = TestServer::start().await;
    let (rx, url) = Receiver::start(true).await;
    let (st, hook) = s
        .post("/v1/webhooks", json!({"url": url, "secret": SECRET}))
        .await;
    assert_eq!(st, 201, "{hook}");
    assert_eq!(hook["secret"], SECRET, "shown once, on create");

    s.room("r", &[("alice", "presenter"), ("bob", "attendee")])
        .await;
    s.patch("/v1/rooms/r", json!({"name": "Standup"})).await;
    s.patch(
        "/v1/rooms/r/participants",
        json!({"participants": {"carol": {}}}),
    )
    .await;
    let (mut alice, _) = s.join("r", "alice").await;
    alice.set_media(true, false).await;
    alice.next_of("mediaChanged").await;
    alice.set_media(false, false).await;
    alice.next_of("mediaChanged").await;
    let (mut bob, _) = s.join("r", "bob").await;
    bob.send(json!({"type": "leave"})).await;
    bob.closed_with().await;
    alice.send(json!({"type": "leave"})).await;
    alice.closed_with().await;
    // The session ends by itself (destroy delay 0) before the room is deleted.
    rx.until("session.ended", |r| {
        types(&r.delivered()).contains(&"session.ended".to_string())
    })
    .await;
    let (st, _) = s.delete("/v1/rooms/r").await;
    assert_eq!(st, 204);

    let want = [
        "room.created",
        "room.updated",
        "roster.changed",
        "session.started",
        "participant.joined",
        "track.published",
        "track.unpublished",
        "participant.joined",
        "participant.left",
        "participant.left",
        "session.ended",
        "room.deleted",
    ];
    rx.until("every event", |r| r.delivered().len() >= want.len())
        .await;
    let got = rx.delivered();
    assert_eq!(types(&got), want);
    let mut last = 0;
    let mut ids = std::collections::HashSet::new();
    for (headers, body) in &got {
        assert_eq!(body["roomId"], "r");
        assert_eq!(
            headers["convene-event-type"],
            body["type"].as_str().unwrap()
        );
        assert_eq!(headers["convene-event-id"], body["id"].as_str().unwrap());
        assert!(
            ids.insert(body["id"].as_str().unwrap().to_string()),
            "sent once"
        );
        let seq = body["sequence"].as_u64().unwrap();
        assert!(seq > last, "in order: {seq} after {last}");
        last = seq;
    }
    assert_eq!(got[0].1["data"]["id"], "r");
    assert_eq!(got[1].1["data"]["name"], "Standup");
    assert_eq!(got[2].1["data"]["added"][0]["userId"], "carol");
    assert_eq!(got[5].1["data"]["kind"], "audio");
    assert_eq!(got[8].1["data"]["reason"], "clientLeft");
    assert_eq!(got[8].1["data"]["userId"], "bob");
}

#[tokio::test]
async fn endpoints_are_checked_listed_and_deleted() {
    let s = TestServer::start().await;
    let (st, b) = s.post("/v1/webhooks", json!({"url": "ftp://x"})).await;
    assert_error(st, &b, 400, "InvalidParameter", Some("url"));
    let (st, b) = s
        .post(
            "/v1/webhooks",
            json!({"url": "http://127.0.0.1:9/x", "events": ["room.exploded"]}),
        )
        .await;
    assert_error(st, &b, 400, "InvalidParameter", Some("events"));
    let (st, b) = s
        .post(
            "/v1/webhooks",
            json!({"url": "http://127.0.0.1:9/x", "secret": "short"}),
        )
        .await;
    assert_error(st, &b, 400, "InvalidParameter", Some("secret"));
    let (st, made) = s
        .post(
            "/v1/webhooks",
            json!({"url": "http://127.0.0.1:9/x", "events": ["room.*"]}),
        )
        .await;
    assert_eq!(st, 201);
    assert!(made["secret"].as_str().unwrap().starts_with("whsec_"));
    let (_, list) = s.get("/v1/webhooks").await;
    assert_eq!(list["value"][0]["id"], made["id"]);
    assert!(
        list["value"][0].get("secret").is_none(),
        "never shown again"
    );
    let (st, b) = s.delete("/v1/webhooks/wh_nope").await;
    assert_error(st, &b, 404, "WebhookNotFound", Some("webhookId"));
    let (st, _) = s
        .delete(&format!("/v1/webhooks/{}", made["id"].as_str().unwrap()))
        .await;
    assert_eq!(st, 204);
    let (_, list) = s.get("/v1/webhooks").await;
    assert_eq!(list["value"], json!([]));
}

fn spawn_server(dir: &std::path::Path, port: u16, key: &str) -> std::process::Child {
    std::process::Command::new(env!("CARGO_BIN_EXE_convene"))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .arg("--data-dir")
        .arg(dir)
        .env("CONVENE_ADMIN_KEY", key)
        .env("CONVENE_MEDIA_IP", "127.0.0.1")
        .env("CONVENE_MEDIA_PORT", "0")
        .env("CONVENE_LOG", "error")
        .spawn()
        .unwrap()
}

async fn wait_up(http: &reqwest::Client, base: &str) {
    for _ in 0..200 {
        if http.get(format!("{base}/healthz")).send().await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the server did not start");
}

#[tokio::test]
async fn an_event_cut_off_by_kill_9_is_delivered_after_the_restart_once() {
    let tmp = tempfile::tempdir().unwrap();
    let key = "ck_admin_webhook_restart_test_0123";
    let port = common::free_port();
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let (rx, url) = Receiver::start(false).await;
    let mut server = spawn_server(tmp.path(), port, key);
    wait_up(&http, &base).await;
    let r = http
        .post(format!("{base}/v1/webhooks"))
        .bearer_auth(key)
        .json(&json!({"url": url, "secret": SECRET}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = http
        .post(format!("{base}/v1/rooms"))
        .bearer_auth(key)
        .json(&json!({"id": "k"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    // The receiver refuses: the server is retrying when it dies.
    rx.until("a refused attempt", |r| !r.seen.lock().unwrap().is_empty())
        .await;
    server.kill().unwrap(); // SIGKILL
    server.wait().unwrap();
    rx.accept.store(true, Ordering::SeqCst);
    let mut server = spawn_server(tmp.path(), port, key);
    wait_up(&http, &base).await;
    rx.until("the delivery after the restart", |r| {
        !r.delivered().is_empty()
    })
    .await;
    // Nothing more comes: delivered once.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let got = rx.delivered();
    assert_eq!(types(&got), ["room.created"], "{got:?}");
    assert_eq!(got[0].1["roomId"], "k");
    server.kill().unwrap();
    server.wait().unwrap();
}
