//! Coming back after the signaling connection drops: resume within the server's grace,
//! then join afresh, until the budget runs out or the server refuses for good.

use std::rc::Rc;

use convene_protocol::ErrorEnvelope;
use gloo_timers::future::TimeoutFuture;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

use crate::backoff::{self, Next};
use crate::driver::{fail_join, finish, Inner, Input, Phase};
use crate::endpoint;
use crate::errors::SdkError;
use crate::events::{self, Emit};

pub struct Reconnect {
    pub started_ms: f64,
    pub attempt: u32,
    /// Join afresh even within the grace (the media failed, not just the socket).
    fresh: bool,
}

/// Why the server refused the join, read from the same URL over plain HTTP.
async fn diagnose(base: &str, token: &str) -> SdkError {
    let unreachable =
        || SdkError::connection_failed(format!("cannot reach the Convene server at {base}"));
    let Ok(url) = endpoint::diagnosis_url(base, token) else {
        return unreachable();
    };
    let Some(window) = web_sys::window() else {
        return unreachable();
    };
    let Ok(resp) = JsFuture::from(window.fetch_with_str(&url)).await else {
        return unreachable();
    };
    let Ok(resp) = resp.dyn_into::<web_sys::Response>() else {
        return unreachable();
    };
    let Ok(text) = resp.text() else {
        return unreachable();
    };
    let text = JsFuture::from(text)
        .await
        .ok()
        .and_then(|t| t.as_string())
        .unwrap_or_default();
    match serde_json::from_str::<ErrorEnvelope>(&text) {
        Ok(env) if env.error.target.as_deref() == Some("upgrade") => SdkError::connection_failed(
            "the server accepted the token but the WebSocket connection failed \
             (is a proxy blocking WebSockets?)",
        ),
        Ok(env) => env.error.into(),
        Err(_) => unreachable(),
    }
}

pub async fn on_closed(inner: &Rc<Inner>) {
    let (phase, joined, auto, base, token) = {
        let mut st = inner.st.borrow_mut();
        st.socket = None;
        (
            st.phase,
            st.session.is_some(),
            st.auto_reconnect,
            st.base.clone(),
            st.token.clone(),
        )
    };
    match phase {
        Phase::Disconnected => {}
        Phase::Connecting if !joined => {
            let e = diagnose(&base, &token).await;
            fail_join(inner, e);
        }
        Phase::Connected if auto => {
            inner.st.borrow_mut().reconnect = Some(Reconnect {
                started_ms: js_sys::Date::now(),
                attempt: 0,
                fresh: false,
            });
            begin_reconnect(inner);
        }
        Phase::Reconnecting => {
            let e = diagnose(&base, &token).await;
            if e.is_permanent() {
                finish(inner, "connectionLost", Some(e));
            } else {
                schedule_retry(inner);
            }
        }
        _ => finish(inner, "connectionLost", None),
    }
}

fn begin_reconnect(inner: &Rc<Inner>) {
    inner.st.borrow_mut().phase = Phase::Reconnecting;
    inner.dispatch(vec![Emit(
        "stateChanged",
        events::state_changed("reconnecting", Some("connectionLost")),
    )]);
    schedule_retry(inner);
}

/// Restarts the call's media by joining afresh (the server then drops the old
/// connections); used when a peer connection fails while signaling still works.
pub fn rejoin_fresh(inner: &Rc<Inner>) {
    {
        let mut st = inner.st.borrow_mut();
        if st.phase != Phase::Connected || !st.auto_reconnect {
            return;
        }
        st.socket_gen += 1;
        st.socket = None;
        st.reconnect = Some(Reconnect {
            started_ms: js_sys::Date::now(),
            attempt: 0,
            fresh: true,
        });
    }
    begin_reconnect(inner);
}

fn schedule_retry(inner: &Rc<Inner>) {
    let delay = {
        let mut st = inner.st.borrow_mut();
        let Some(r) = st.reconnect.as_mut() else {
            return;
        };
        let d = backoff::delay_ms(r.attempt);
        r.attempt += 1;
        d
    };
    let tx = inner.tx.clone();
    wasm_bindgen_futures::spawn_local(async move {
        TimeoutFuture::new(delay).await;
        let _ = tx.unbounded_send(Input::Retry);
    });
}

pub async fn retry(inner: &Rc<Inner>) {
    let next = {
        let st = inner.st.borrow();
        if st.phase != Phase::Reconnecting {
            return;
        }
        let (Some(r), Some(s)) = (&st.reconnect, &st.session) else {
            return;
        };
        match backoff::next(js_sys::Date::now() - r.started_ms, s.resume.grace_seconds) {
            Next::Resume if r.fresh => Next::Rejoin,
            n => n,
        }
    };
    let opened = match next {
        Next::GiveUp => return finish(inner, "connectionLost", None),
        Next::Resume => inner.connect(true),
        Next::Rejoin => inner.connect(false),
    };
    if opened.is_err() {
        schedule_retry(inner);
    }
}
