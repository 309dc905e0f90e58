//! `Room`, the class web developers use: join, look at who is there, listen for
//! events, control the microphone, camera and screen, chat, leave.

use std::rc::Rc;

use convene_protocol::signal::{ClientMessage, MAX_CHAT_BYTES};
use js_sys::{Array, Function, Promise};
use serde::Deserialize;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;
use web_sys::MediaStream;

use crate::driver::{self, Inner, Phase};
use crate::errors::SdkError;
use crate::events::{self, event_name};
use crate::naming::TrackKind;
use crate::{local_tracks, media};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct JoinOptions {
    url: Option<String>,
    token: String,
    audio: Option<bool>,
    video: Option<bool>,
    reconnect: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct MuteOptions {
    audio: Option<bool>,
    video: Option<bool>,
    screen: Option<bool>,
}

/// A joined call. Get one with `Room.join`.
#[wasm_bindgen]
pub struct Room {
    inner: Rc<Inner>,
}

fn promise<F>(f: F) -> Promise
where
    F: std::future::Future<Output = Result<JsValue, SdkError>> + 'static,
{
    future_to_promise(async move { f.await.map_err(|e| e.to_js()) })
}

fn page_origin() -> Option<String> {
    web_sys::window().and_then(|w| w.location().origin().ok())
}

async fn join(options: JsValue) -> Result<Room, SdkError> {
    let opts: JoinOptions = serde_wasm_bindgen::from_value(options).map_err(|e| {
        SdkError::invalid(
            "options",
            format!(
                "Room.join options: {e} (expected {{url?, token, audio?, video?, reconnect?}})"
            ),
        )
    })?;
    let token = opts.token.trim().to_string();
    if token.is_empty() {
        return Err(SdkError::invalid(
            "token",
            "a join token is required (the part after #token= in an invite link)",
        ));
    }
    let base = match opts.url {
        Some(u) => u,
        None => page_origin().ok_or_else(|| SdkError::invalid("url", "give the server's url"))?,
    };
    let (inner, rx) = Inner::new(base, token, opts.reconnect.unwrap_or(true));
    let (tx, joined) = futures_channel::oneshot::channel();
    inner.st.borrow_mut().waiter = Some(tx);
    inner.connect(false)?;
    wasm_bindgen_futures::spawn_local(driver::run(inner.clone(), rx));
    match joined.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(e),
        Err(_) => {
            return Err(SdkError::connection_failed(
                "the connection closed while joining",
            ))
        }
    }
    // Devices are asked for once the role is known, so a receive-only member is never
    // prompted for a camera. A refused device does not undo the join.
    let caps = inner
        .st
        .borrow()
        .session
        .as_ref()
        .map(|s| s.caps)
        .unwrap_or_default();
    let audio = opts.audio.unwrap_or(true) && caps.publish_audio;
    let video = opts.video.unwrap_or(true) && caps.publish_video;
    match crate::local_media::user_media(audio, video).await {
        Ok(tracks) => local_tracks::publish_initial(&inner, tracks).await,
        Err(e) => inner.st.borrow_mut().media_error = Some(e),
    }
    Ok(Room { inner })
}

#[wasm_bindgen]
impl Room {
    /// Joins the room the token is for; resolves once joined.
    #[wasm_bindgen(unchecked_return_type = "Promise<Room>")]
    pub fn join(#[wasm_bindgen(unchecked_param_type = "JoinOptions")] options: JsValue) -> Promise {
        promise(async move { join(options).await.map(JsValue::from) })
    }

    #[wasm_bindgen(skip_typescript)]
    pub fn on(&self, event: &str, listener: Function) -> Result<(), JsValue> {
        let name = event_name(event).map_err(|e| e.to_js())?;
        self.inner
            .listeners
            .borrow_mut()
            .add(name, listener.clone());
        if name == "trackAdded" {
            // Tracks can arrive before `join` resolves (while the camera starts): a
            // `trackAdded` listener is told about those too, right after `on` returns.
            let inner = self.inner.clone();
            wasm_bindgen_futures::spawn_local(async move {
                for (mid, payload) in media::current_tracks(&inner) {
                    let still = inner.st.borrow().remote.contains_key(&mid);
                    if still {
                        let _ = listener.call1(&JsValue::UNDEFINED, &payload);
                    }
                }
            });
        }
        Ok(())
    }

    #[wasm_bindgen(skip_typescript)]
    pub fn off(&self, event: &str, listener: Function) -> Result<(), JsValue> {
        let name = event_name(event).map_err(|e| e.to_js())?;
        self.inner.listeners.borrow_mut().remove(name, &listener);
        Ok(())
    }

    /// Everyone in the call, you included (`isLocal`), in the order they joined.
    /// Receive-only members past the room's announce limit are only counted
    /// (`audienceCount`).
    #[wasm_bindgen(unchecked_return_type = "Participant[]")]
    pub fn participants(&self) -> Array {
        let st = self.inner.st.borrow();
        let Some(s) = &st.session else {
            return Array::new();
        };
        let me = s.roster.me().id.clone();
        s.roster
            .all()
            .iter()
            .map(|p| events::participant(p, &me))
            .collect()
    }

    /// You, as others see you.
    #[wasm_bindgen(getter, js_name = localParticipant, unchecked_return_type = "Participant")]
    pub fn local_participant(&self) -> JsValue {
        let st = self.inner.st.borrow();
        match &st.session {
            Some(s) => events::participant(s.roster.me(), &s.roster.me().id),
            None => JsValue::UNDEFINED,
        }
    }

    #[wasm_bindgen(getter, unchecked_return_type = "ConnectionState")]
    pub fn state(&self) -> String {
        self.inner.st.borrow().phase.as_str().into()
    }

    /// What your role allows.
    #[wasm_bindgen(getter, unchecked_return_type = "Capabilities")]
    pub fn capabilities(&self) -> JsValue {
        let st = self.inner.st.borrow();
        events::value(&st.session.as_ref().map(|s| s.caps).unwrap_or_default())
    }

    #[wasm_bindgen(getter, unchecked_return_type = "Role")]
    pub fn role(&self) -> String {
        let st = self.inner.st.borrow();
        st.session
            .as_ref()
            .map(|s| s.role.clone())
            .unwrap_or_default()
    }

    /// The room's id, name and validity window.
    #[wasm_bindgen(getter, unchecked_return_type = "RoomInfo")]
    pub fn info(&self) -> JsValue {
        let st = self.inner.st.borrow();
        st.session
            .as_ref()
            .map_or(JsValue::UNDEFINED, |s| events::value(&s.room))
    }

    /// Receive-only members not listed in `participants()`.
    #[wasm_bindgen(getter, js_name = audienceCount)]
    pub fn audience_count(&self) -> u32 {
        let st = self.inner.st.borrow();
        st.session.as_ref().map_or(0, |s| s.roster.audience_count())
    }

    /// Your camera and microphone, for a local preview (mute the element that plays it).
    #[wasm_bindgen(getter, js_name = localStream)]
    pub fn local_stream(&self) -> MediaStream {
        self.inner.st.borrow().local_stream.clone()
    }

    /// Set when the camera or microphone asked for in `join` could not be used; the
    /// room is joined without them.
    #[wasm_bindgen(getter, js_name = mediaError, unchecked_return_type = "ConveneError | null")]
    pub fn media_error(&self) -> JsValue {
        match &self.inner.st.borrow().media_error {
            Some(e) => e.to_js(),
            None => JsValue::NULL,
        }
    }

    #[wasm_bindgen(js_name = setMicrophoneEnabled, unchecked_return_type = "Promise<void>")]
    pub fn set_microphone_enabled(&self, enabled: bool) -> Promise {
        self.set_enabled(TrackKind::Audio, enabled)
    }

    #[wasm_bindgen(js_name = setCameraEnabled, unchecked_return_type = "Promise<void>")]
    pub fn set_camera_enabled(&self, enabled: bool) -> Promise {
        self.set_enabled(TrackKind::Video, enabled)
    }

    /// Asks the user for a screen, window or tab and shares it (presenters and
    /// collaborators).
    #[wasm_bindgen(js_name = startScreenShare, unchecked_return_type = "Promise<void>")]
    pub fn start_screen_share(&self) -> Promise {
        self.set_enabled(TrackKind::Screen, true)
    }

    #[wasm_bindgen(js_name = stopScreenShare, unchecked_return_type = "Promise<void>")]
    pub fn stop_screen_share(&self) -> Promise {
        self.set_enabled(TrackKind::Screen, false)
    }

    /// Sends a chat message to everyone (1 to 4096 bytes).
    #[wasm_bindgen(js_name = sendMessage, unchecked_return_type = "Promise<void>")]
    pub fn send_message(&self, text: String) -> Promise {
        let inner = self.inner.clone();
        promise(async move {
            connected(&inner)?;
            if text.trim().is_empty() || text.len() > MAX_CHAT_BYTES {
                return Err(SdkError::invalid(
                    "text",
                    format!("a message is 1 to {MAX_CHAT_BYTES} bytes"),
                ));
            }
            let disabled = inner
                .st
                .borrow()
                .session
                .as_ref()
                .is_some_and(|s| s.room.is_message_disabled);
            if disabled {
                return Err(SdkError::server(
                    convene_protocol::ErrorCode::PermissionDenied,
                    "chat is turned off in this room",
                ));
            }
            inner.send(&ClientMessage::SendMessage { text });
            Ok(JsValue::UNDEFINED)
        })
    }

    /// Presenters: turns another participant's microphone, camera or screen off
    /// (all three when `kinds` is left out).
    /// Typed in types.rs (an optional parameter).
    #[wasm_bindgen(js_name = muteParticipant, skip_typescript)]
    pub fn mute_participant(&self, id: String, kinds: Option<JsValue>) -> Promise {
        let inner = self.inner.clone();
        promise(async move {
            connected(&inner)?;
            let k: MuteOptions = match kinds {
                Some(k) if !k.is_undefined() && !k.is_null() => {
                    serde_wasm_bindgen::from_value(k)
                        .map_err(|e| SdkError::invalid("kinds", e.to_string()))?
                }
                _ => MuteOptions::default(),
            };
            let all = k.audio.is_none() && k.video.is_none() && k.screen.is_none();
            inner.send(&ClientMessage::Mute {
                participant_id: id,
                audio: all || k.audio == Some(true),
                video: all || k.video == Some(true),
                screen: all || k.screen == Some(true),
            });
            Ok(JsValue::UNDEFINED)
        })
    }

    /// Leaves the call: devices off, connections closed, listeners dropped.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn leave(&self) -> Promise {
        let inner = self.inner.clone();
        promise(async move {
            inner.send(&ClientMessage::Leave);
            driver::finish(&inner, "clientLeft", None);
            Ok(JsValue::UNDEFINED)
        })
    }

    fn set_enabled(&self, kind: TrackKind, on: bool) -> Promise {
        let inner = self.inner.clone();
        promise(async move {
            local_tracks::set_enabled(&inner, kind, on).await?;
            Ok(JsValue::UNDEFINED)
        })
    }
}

fn connected(inner: &Inner) -> Result<(), SdkError> {
    if inner.st.borrow().phase == Phase::Disconnected {
        Err(SdkError::not_connected())
    } else {
        Ok(())
    }
}
