//! `Room.check`: asks the server, over plain HTTP, what joining with a token would give
//! (the room, the role, what it may publish) without joining. A page uses it for its
//! pre-join screen; the reconnect path uses it to learn why a WebSocket was refused
//! (browsers hide the HTTP answer to a refused upgrade).

use convene_protocol::signal::JoinCheck;
use convene_protocol::ErrorEnvelope;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

use crate::endpoint;
use crate::errors::SdkError;

/// The server's answer for `token`: `Ok` when the join would be admitted now, the
/// refusal (`RoomNotOpenYet`, `NotInvited`...) otherwise, `ConnectionFailed` when the
/// server cannot be reached.
pub async fn check(base: &str, token: &str) -> Result<JoinCheck, SdkError> {
    let unreachable =
        || SdkError::connection_failed(format!("cannot reach the Convene server at {base}"));
    let url = endpoint::check_url(base, token)?;
    let window = web_sys::window().ok_or_else(unreachable)?;
    let resp: web_sys::Response = JsFuture::from(window.fetch_with_str(&url))
        .await
        .ok()
        .and_then(|r| r.dyn_into().ok())
        .ok_or_else(unreachable)?;
    let text = match resp.text() {
        Ok(p) => JsFuture::from(p).await.ok().and_then(|t| t.as_string()),
        Err(_) => None,
    }
    .ok_or_else(unreachable)?;
    if resp.ok() {
        return serde_json::from_str(&text).map_err(|e| {
            SdkError::connection_failed(format!(
                "{base} answered the join check with something other than Convene's \
                 answer ({e}): is the url right?"
            ))
        });
    }
    match serde_json::from_str::<ErrorEnvelope>(&text) {
        Ok(env) => Err(env.error.into()),
        Err(_) => Err(SdkError::connection_failed(format!(
            "{base} answered the join check with HTTP {} and no Convene error: is the url \
             right?",
            resp.status()
        ))),
    }
}

/// Why a WebSocket join was refused, read from the same URL over plain HTTP.
pub async fn diagnose(base: &str, token: &str) -> SdkError {
    match check(base, token).await {
        Ok(_) => SdkError::connection_failed(
            "the server accepted the token but the WebSocket connection failed \
             (is a proxy blocking WebSockets?)",
        ),
        Err(e) => e,
    }
}
