//! The SDK's pure logic, run in headless Chromium as the wasm32 build (see
//! scripts/test.sh): the same code paths the browser runs, plus what only exists there
//! (the JS error objects).
#![cfg(target_arch = "wasm32")]

use convene_protocol::signal::Participant;
use convene_sdk::backoff::{self, Next};
use convene_sdk::endpoint::signaling_url;
use convene_sdk::errors::SdkError;
use convene_sdk::event_names::event_name;
use convene_sdk::naming::{kind_of_track, participant_of_stream, TrackKind};
use convene_sdk::roster::{Change, Roster};
use js_sys::Reflect;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

fn person(id: &str, at: &str) -> Participant {
    Participant {
        id: id.into(),
        role: "attendee".into(),
        audio: false,
        video: false,
        screen: false,
        joined_at: at.into(),
        name: None,
        attributes: Default::default(),
    }
}

#[wasm_bindgen_test]
fn roster_turns_messages_into_events() {
    let mut r = Roster::new(person("me", "t1"), vec![person("a", "t0")], 0);
    let c = r.apply_delta(vec![person("b", "t2")], vec!["a".into()], vec![], 0);
    assert!(matches!(&c[..], [Change::Left(a), Change::Joined(b)] if a.id == "a" && b.id == "b"));
    let c = r.apply_media("b", true, true, false, None);
    assert!(matches!(&c[..], [Change::Media { participant, .. }] if participant.video));
    let ids: Vec<String> = r.all().into_iter().map(|p| p.id).collect();
    assert_eq!(ids, ["me", "b"]);
}

#[wasm_bindgen_test]
fn relayed_track_names_decode() {
    assert_eq!(
        participant_of_stream("u-616c696365").as_deref(),
        Some("alice")
    );
    assert_eq!(
        kind_of_track("screen-616c696365", "video"),
        TrackKind::Screen
    );
}

#[wasm_bindgen_test]
fn urls_and_backoff() {
    assert_eq!(
        signaling_url("https://h:8443/", "a.b", Some("r")).unwrap(),
        "wss://h:8443/v1/rtc?token=a.b&resume=r"
    );
    assert_eq!(backoff::delay_ms(3), 1000);
    assert_eq!(backoff::next(20_000.0, 15), Next::Rejoin);
}

#[wasm_bindgen_test]
fn errors_become_js_errors_with_code_and_number() {
    let e = event_name("nope").unwrap_err();
    let js = e.to_js();
    assert!(js.is_instance_of::<js_sys::Error>());
    let get = |k: &str| Reflect::get(&js, &JsValue::from_str(k)).unwrap();
    assert_eq!(get("code").as_string().as_deref(), Some("InvalidParameter"));
    assert_eq!(get("number").as_f64(), Some(100002.0));
    assert_eq!(get("target").as_string().as_deref(), Some("event"));
    assert_eq!(get("name").as_string().as_deref(), Some("ConveneError"));
    assert!(get("message")
        .as_string()
        .unwrap()
        .contains("participantJoined"));
    let nc = SdkError::not_connected().to_js();
    assert_eq!(
        Reflect::get(&nc, &"number".into()).unwrap().as_f64(),
        Some(100103.0)
    );
}

#[wasm_bindgen_test]
fn the_call_state_machine_runs_the_same_in_the_browser() {
    use convene_sdk::call::{Attempt, Call, Closed};
    let mut c = Call::new(true);
    assert!(c.joined(false));
    let gen = c.want_offer().unwrap();
    assert_eq!(c.want_offer(), None);
    assert!(c.answered());
    assert_eq!(c.want_offer(), Some(gen));
    assert_eq!(c.on_socket_closed(0.0), Closed::Reconnect { delay_ms: 0 });
    assert_eq!(c.attempt(1.0, 15), Attempt::Resume);
}

/// `same` is the same stream; web-sys's `clone()` on a stream is JS's copy (the trap
/// `handle::same` exists for).
#[wasm_bindgen_test]
fn same_is_the_same_stream_and_clone_is_a_copy() {
    let stream = web_sys::MediaStream::new().unwrap();
    let handle = convene_sdk::handle::same(&stream);
    assert_eq!(JsValue::from(&handle), JsValue::from(&stream));
    #[allow(clippy::redundant_clone)]
    let copy = stream.clone();
    assert_ne!(
        copy.id(),
        stream.id(),
        "MediaStream.clone() makes a new stream"
    );
}
