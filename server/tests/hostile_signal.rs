//! Signaling as an attacker uses it: floods (JSON pings and WebSocket pings), large
//! frames, frames over the limit and text that is not UTF-8. Members who keep flooding
//! are cut off; everyone else carries on.
mod common;

use std::time::{Duration, Instant};

use common::TestServer;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::Message;

/// Sends `frames` as fast as the socket takes them, ignoring send errors once the
/// server has closed; returns every JSON frame read and the close code, if any.
async fn flood(ws: &mut common::ws::Ws, frame: Message, count: usize) -> (Vec<Value>, Option<u16>) {
    let (mut sink, mut stream) = (&mut ws.stream).split();
    let send = async {
        for _ in 0..count {
            if sink.send(frame.clone()).await.is_err() {
                break;
            }
        }
    };
    let read = async {
        let mut got = vec![];
        loop {
            match tokio::time::timeout(Duration::from_secs(5), stream.next()).await {
                Ok(Some(Ok(Message::Text(t)))) => got.push(serde_json::from_str(&t).unwrap()),
                Ok(Some(Ok(Message::Close(c)))) => return (got, c.map(|c| c.code.into())),
                Ok(Some(Ok(_))) => {}
                _ => return (got, None),
            }
        }
    };
    let ((), out) = tokio::join!(send, read);
    out
}

fn left_reason(frames: &[Value]) -> Option<&str> {
    frames
        .iter()
        .find(|f| f["type"] == "left")
        .and_then(|f| f["reason"].as_str())
}

#[tokio::test]
async fn a_member_who_keeps_flooding_is_disconnected_and_others_carry_on() {
    let s = TestServer::start().await;
    s.room(
        "r",
        &[("a", "attendee"), ("b", "attendee"), ("w", "attendee")],
    )
    .await;
    let (mut w, _) = s.join("r", "w").await;
    for (user, frame) in [
        (
            "a",
            Message::Text(json!({"type": "ping", "ts": 1}).to_string().into()),
        ),
        ("b", Message::Ping(vec![1, 2, 3].into())),
    ] {
        let (mut ws, _) = s.join("r", user).await;
        loop {
            let ev = w.next_of("participantsChanged").await;
            if ev["added"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["id"] == user)
            {
                break;
            }
        }
        let (got, _) = flood(&mut ws, frame, 20_000).await;
        assert!(
            got.iter().any(|f| f["error"]["code"] == "RateLimited"),
            "{user} was never told"
        );
        assert_eq!(
            left_reason(&got),
            Some("rateLimited"),
            "{user}: {:?}",
            got.last()
        );
        // Gone for good, not kept for resume: the others see it leave.
        loop {
            let ev = w.next_of("participantsChanged").await;
            if ev["removed"] == json!([user]) {
                break;
            }
        }
    }
    // The bystander's round trip is still quick.
    let t = Instant::now();
    w.send(json!({"type": "ping", "ts": 7})).await;
    assert_eq!(w.next_of("pong").await["ts"], 7.0);
    assert!(t.elapsed() < Duration::from_secs(1));
}

#[tokio::test]
async fn a_short_burst_is_told_to_slow_down_but_not_cut_off() {
    let s = TestServer::start().await;
    s.room("r", &[("a", "attendee")]).await;
    let (mut a, _) = s.join("r", "a").await;
    for i in 0..80 {
        a.send(json!({"type": "ping", "ts": i})).await;
    }
    let mut limited = 0;
    while let Some(f) = a.next_frame(Duration::from_millis(500)).await {
        assert_ne!(f["type"], "left", "cut off after a short burst");
        if f["error"]["code"] == "RateLimited" {
            limited += 1;
        }
    }
    // Told once for the spell, not once per refused frame.
    assert_eq!(limited, 1);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    a.send(json!({"type": "ping", "ts": 99})).await;
    assert_eq!(a.next_of("pong").await["ts"], 99.0);
}

#[tokio::test]
async fn large_frames_cost_more_than_small_ones() {
    let s = TestServer::start().await;
    s.room("r", &[("a", "attendee")]).await;
    let (mut a, _) = s.join("r", "a").await;
    // 40 KiB frames cost 11 each: the burst of 50 runs out after 4 of them, where 8
    // small frames all pass.
    let pad = "x".repeat(40 * 1024);
    for (i, pad) in [pad.as_str(), ""].iter().enumerate() {
        if i == 1 {
            tokio::time::sleep(Duration::from_secs(3)).await; // refilled
        }
        for ts in 0..8 {
            a.send(json!({"type": "ping", "ts": ts, "pad": pad})).await;
        }
        let mut got = vec![];
        while let Some(f) = a.next_frame(Duration::from_millis(500)).await {
            got.push(f);
        }
        let pongs = got.iter().filter(|f| f["type"] == "pong").count();
        let limited = got.iter().any(|f| f["error"]["code"] == "RateLimited");
        if i == 0 {
            assert!(
                pongs <= 5 && limited,
                "8 large frames, {pongs} answered: {got:?}"
            );
        } else {
            assert!(
                pongs == 8 && !limited,
                "8 small frames, {pongs} answered: {got:?}"
            );
        }
    }
}

#[tokio::test]
async fn oversized_and_non_utf8_frames_get_a_close_code() {
    let s = TestServer::start().await;
    s.room("r", &[("a", "attendee"), ("b", "attendee")]).await;
    let (mut a, _) = s.join("r", "a").await;
    let big = "x".repeat(70 * 1024);
    let (_, code) = flood(&mut a, Message::Text(big.into()), 1).await;
    assert_eq!(code, Some(1009));
    let (mut b, _) = s.join("r", "b").await;
    let bad = Frame::message(vec![b'"', 0xff, 0xfe, b'"'], OpCode::Data(Data::Text), true);
    let (_, code) = flood(&mut b, Message::Frame(bad), 1).await;
    assert_eq!(code, Some(1007));
}
