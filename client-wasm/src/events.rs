//! Event names, listeners, and the JS payloads events carry.

use std::collections::HashMap;

use convene_protocol::signal::Participant;
use js_sys::{Function, Object, Reflect};
use serde::Serialize;
use wasm_bindgen::JsValue;

use crate::errors::SdkError;
pub use crate::event_names::event_name;

/// One event to fire once no state is borrowed (a listener may call back into the room).
pub struct Emit(pub &'static str, pub JsValue);

#[derive(Default)]
pub struct Listeners(HashMap<&'static str, Vec<Function>>);

impl Listeners {
    pub fn add(&mut self, name: &'static str, f: Function) {
        let list = self.0.entry(name).or_default();
        // Adding the same listener twice keeps one, as addEventListener does.
        if !list.iter().any(|g| JsValue::from(g) == JsValue::from(&f)) {
            list.push(f);
        }
    }

    pub fn remove(&mut self, name: &'static str, f: &Function) {
        if let Some(list) = self.0.get_mut(name) {
            list.retain(|g| JsValue::from(g) != JsValue::from(f));
        }
    }

    pub fn has(&self, name: &str, f: &Function) -> bool {
        self.0
            .get(name)
            .is_some_and(|list| list.iter().any(|g| JsValue::from(g) == JsValue::from(f)))
    }

    pub fn of(&self, name: &str) -> Vec<Function> {
        self.0.get(name).cloned().unwrap_or_default()
    }

    pub fn clear(&mut self) {
        self.0.clear();
    }
}

/// A Rust value as a plain JS object (maps as objects, `None` as undefined).
pub fn value<T: Serialize>(v: &T) -> JsValue {
    v.serialize(&serde_wasm_bindgen::Serializer::json_compatible())
        .unwrap_or(JsValue::UNDEFINED)
}

pub fn set(o: &Object, k: &str, v: impl Into<JsValue>) {
    let _ = Reflect::set(o, &JsValue::from_str(k), &v.into());
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ParticipantView<'a> {
    #[serde(flatten)]
    p: &'a Participant,
    is_local: bool,
}

pub fn participant(p: &Participant, local_id: &str) -> JsValue {
    value(&ParticipantView {
        p,
        is_local: p.id == local_id,
    })
}

pub fn media_changed(p: &Participant, local_id: &str, reason: Option<&str>) -> JsValue {
    let o = Object::new();
    set(&o, "participant", participant(p, local_id));
    set(&o, "participantId", p.id.as_str());
    set(&o, "audio", p.audio);
    set(&o, "video", p.video);
    set(&o, "screen", p.screen);
    if let Some(r) = reason {
        set(&o, "reason", r);
    }
    o.into()
}

pub fn state_changed(state: &str, reason: Option<&str>) -> JsValue {
    let o = Object::new();
    set(&o, "state", state);
    if let Some(r) = reason {
        set(&o, "reason", r);
    }
    o.into()
}

pub fn left(reason: &str, error: Option<&SdkError>) -> JsValue {
    let o = Object::new();
    set(&o, "reason", reason);
    if let Some(e) = error {
        set(&o, "error", e.to_js());
    }
    o.into()
}
