//! `Room`, the class web developers use: join, look at who is there, listen for
//! events, control the microphone, camera and screen, chat, leave.

use std::rc::Rc;

use convene_protocol::signal::{ClientMessage, MAX_CHAT_BYTES};
use js_sys::{Array, Function, Promise};
use serde::Deserialize;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::future_to_promise;
use web_sys::MediaStream;

use crate::call::Phase;
use crate::driver::{self, Ctx, Input, Shared};
use crate::errors::SdkError;
use crate::events::{self, event_name};
use crate::handle::same;
use crate::local_tracks::{self, DeviceStep};
use crate::naming::TrackKind;
use crate::options::{given_tracks, read_options, CheckOptions, JoinOptions};

/// Rooms this page is in at once, at most.
pub const MAX_ROOMS: usize = 5;

thread_local! {
    /// The rooms joined and not yet left (for the limit and `Room.leaveAll`).
    static ROOMS: std::cell::RefCell<Vec<Rc<Shared>>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Rooms still in a call, after forgetting the ones that ended.
pub(crate) fn active_rooms() -> Vec<Rc<Shared>> {
    ROOMS.with(|r| {
        let mut rooms = r.borrow_mut();
        rooms.retain(|s| s.phase() != Phase::Disconnected);
        rooms.clone()
    })
}

/// The listeners given in `JoinOptions.on`, added before connecting.
fn early_listeners(ctx: &Ctx, on: &JsValue) -> Result<(), SdkError> {
    if on.is_undefined() || on.is_null() {
        return Ok(());
    }
    let entries = js_sys::Object::entries(&js_sys::Object::from(on.clone()));
    for entry in entries.iter() {
        let pair = Array::from(&entry);
        let name = pair.get(0).as_string().unwrap_or_default();
        let name = event_name(&name).map_err(|e| SdkError::invalid("on", e.message))?;
        let f: Function = pair.get(1).dyn_into().map_err(|_| {
            SdkError::invalid("on", format!("the '{name}' listener is not a function"))
        })?;
        ctx.shared.listeners.borrow_mut().add(name, f);
    }
    Ok(())
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct ViewOptions {
    video: Option<bool>,
    screen: Option<bool>,
    video_height: Option<f64>,
}

#[derive(Deserialize, Default)]
struct MuteOptions {
    audio: Option<bool>,
    video: Option<bool>,
    screen: Option<bool>,
}

/// A joined call. Get one with `Room.join`. It holds no call state of its own: reads
/// come from the driver's view, and every change is an input to the driver.
#[wasm_bindgen]
pub struct Room {
    shared: Rc<Shared>,
}

fn promise<F>(f: F) -> Promise
where
    F: std::future::Future<Output = Result<JsValue, SdkError>> + 'static,
{
    future_to_promise(async move { f.await.map_err(|e| e.to_js()) })
}

/// The server URL given, or this page's origin.
fn base_url(url: Option<String>) -> Result<String, SdkError> {
    match url {
        Some(u) => Ok(u),
        None => web_sys::window()
            .and_then(|w| w.location().origin().ok())
            .ok_or_else(|| SdkError::invalid("url", "give the server's url")),
    }
}

async fn join(options: JsValue, replacing: Option<Rc<Shared>>) -> Result<Room, SdkError> {
    let opts = JoinOptions::read(options)?;
    let token = crate::endpoint::check_token(&opts.token)?;
    let given = given_tracks(&opts.tracks)?;
    // The room a `switchTo` is about to leave does not count against the limit.
    let others = active_rooms()
        .iter()
        .filter(|s| !replacing.as_ref().is_some_and(|r| Rc::ptr_eq(r, s)))
        .count();
    if others >= MAX_ROOMS {
        return Err(SdkError::invalid(
            "rooms",
            format!("this page is in {MAX_ROOMS} rooms already: leave one first"),
        ));
    }
    let base = base_url(opts.url)?;
    let (tx, joined) = futures_channel::oneshot::channel();
    let (mut ctx, rx) = Ctx::new(base, token, opts.reconnect.unwrap_or(true), tx);
    ctx.ice_policy = opts.ice_transport_policy.unwrap_or_default();
    ctx.video_codec = opts.video_codec.unwrap_or_default();
    ctx.simulcast = opts.simulcast.unwrap_or(true);
    early_listeners(&ctx, &opts.on)?;
    ctx.emit(vec![events::Emit(
        "stateChanged",
        events::state_changed("connecting", None),
    )]);
    ctx.connect(false)?;
    let shared = ctx.shared.clone();
    wasm_bindgen_futures::spawn_local(driver::run(ctx, rx));
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
    let caps = shared
        .view
        .borrow()
        .session
        .as_ref()
        .map(|s| s.caps)
        .unwrap_or_default();
    let audio = opts.audio.unwrap_or(true) && caps.publish_audio;
    let video = opts.video.unwrap_or(true) && caps.publish_video;
    let media = match given {
        // Given tracks the role may not send (or `audio: false`...) are stopped, as
        // the SDK owns them now.
        Some(tracks) => Ok(tracks
            .into_iter()
            .filter(|t| {
                let keep = if t.kind() == "audio" { audio } else { video };
                if !keep {
                    t.stop();
                }
                keep
            })
            .collect()),
        None => crate::local_media::user_media(audio, video).await,
    };
    match media {
        Ok(tracks) => {
            for t in tracks {
                let kind = if t.kind() == "audio" {
                    TrackKind::Audio
                } else {
                    TrackKind::Video
                };
                if let Err(e) = shared.tx.unbounded_send(Input::Publish(kind, t)) {
                    if let Input::Publish(_, t) = e.into_inner() {
                        t.stop();
                    }
                }
            }
        }
        Err(e) => shared.view.borrow_mut().media_error = Some(e),
    }
    ROOMS.with(|r| r.borrow_mut().push(shared.clone()));
    Ok(Room { shared })
}

impl Room {
    pub(crate) fn shared(&self) -> &Rc<Shared> {
        &self.shared
    }
}

/// Joins with `options` in place of `replacing`; used by `switchTo`.
pub(crate) async fn join_replacing(
    options: JsValue,
    replacing: Rc<Shared>,
) -> Result<Room, SdkError> {
    join(options, Some(replacing)).await
}

#[wasm_bindgen]
impl Room {
    /// Joins the room the token is for; resolves once joined.
    #[wasm_bindgen(unchecked_return_type = "Promise<Room>")]
    pub fn join(#[wasm_bindgen(unchecked_param_type = "JoinOptions")] options: JsValue) -> Promise {
        promise(async move { join(options, None).await.map(JsValue::from) })
    }

    /// What joining with this token would give (the room, your role and what it may
    /// publish), without joining: for a pre-join screen. Rejects with the error the
    /// join would get (`RoomNotOpenYet`, `NotInvited`...).
    #[wasm_bindgen(unchecked_return_type = "Promise<JoinCheck>")]
    pub fn check(
        #[wasm_bindgen(unchecked_param_type = "{ url?: string; token: string }")] options: JsValue,
    ) -> Promise {
        promise(async move {
            let opts = CheckOptions::read(options)?;
            let token = crate::endpoint::check_token(&opts.token)?;
            let base = base_url(opts.url)?;
            let answer = crate::check::check(&base, &token).await?;
            Ok(events::value(&answer))
        })
    }

    #[wasm_bindgen(skip_typescript)]
    pub fn on(&self, event: &str, listener: Function) -> Result<(), JsValue> {
        let name = event_name(event).map_err(|e| e.to_js())?;
        self.shared
            .listeners
            .borrow_mut()
            .add(name, listener.clone());
        if name == "trackAdded" {
            // Tracks can arrive before `join` resolves (while the camera starts): a
            // `trackAdded` listener is told about those too, right after `on` returns.
            // Only those told before now: later ones reach it live.
            let missed = self.shared.told_tracks.borrow().clone();
            if !missed.is_empty() {
                let _ = self
                    .shared
                    .tx
                    .unbounded_send(Input::Replay(listener, missed));
            }
        }
        Ok(())
    }

    #[wasm_bindgen(skip_typescript)]
    pub fn off(&self, event: &str, listener: Function) -> Result<(), JsValue> {
        let name = event_name(event).map_err(|e| e.to_js())?;
        self.shared.listeners.borrow_mut().remove(name, &listener);
        Ok(())
    }

    /// Everyone in the call, you included (`isLocal`), in the order they joined.
    /// Receive-only members past the room's announce limit are only counted
    /// (`audienceCount`).
    #[wasm_bindgen(unchecked_return_type = "Participant[]")]
    pub fn participants(&self) -> Array {
        let view = self.shared.view.borrow();
        let Some(s) = &view.session else {
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
        let view = self.shared.view.borrow();
        match &view.session {
            Some(s) => events::participant(s.roster.me(), &s.roster.me().id),
            None => JsValue::UNDEFINED,
        }
    }

    #[wasm_bindgen(getter, unchecked_return_type = "ConnectionState")]
    pub fn state(&self) -> String {
        self.shared.phase().as_str().into()
    }

    /// What your role allows.
    #[wasm_bindgen(getter, unchecked_return_type = "Capabilities")]
    pub fn capabilities(&self) -> JsValue {
        let view = self.shared.view.borrow();
        events::value(&view.session.as_ref().map(|s| s.caps).unwrap_or_default())
    }

    #[wasm_bindgen(getter, unchecked_return_type = "Role")]
    pub fn role(&self) -> String {
        let view = self.shared.view.borrow();
        view.session
            .as_ref()
            .map(|s| s.role.clone())
            .unwrap_or_default()
    }

    /// The room's id, name and validity window.
    #[wasm_bindgen(getter, unchecked_return_type = "RoomInfo")]
    pub fn info(&self) -> JsValue {
        let view = self.shared.view.borrow();
        view.session
            .as_ref()
            .map_or(JsValue::UNDEFINED, |s| events::value(&s.room))
    }

    /// Who is talking now, loudest first (`activeSpeakersChanged` tells each change).
    #[wasm_bindgen(getter, js_name = activeSpeakers, unchecked_return_type = "ActiveSpeaker[]")]
    pub fn active_speakers(&self) -> JsValue {
        let view = self.shared.view.borrow();
        let empty = Vec::new();
        let list = view.session.as_ref().map_or(&empty, |s| &s.active_speakers);
        events::value(list)
    }

    /// A member's connection quality (`"excellent"`, `"good"`, `"poor"` or `"lost"`), or
    /// `undefined` before the server has graded it (`connectionQualityChanged` tells
    /// each change).
    #[wasm_bindgen(js_name = connectionQuality, unchecked_return_type = "ConnectionQuality | undefined")]
    pub fn connection_quality(
        &self,
        #[wasm_bindgen(js_name = "participantId")] participant_id: &str,
    ) -> JsValue {
        let view = self.shared.view.borrow();
        view.session
            .as_ref()
            .and_then(|s| s.qualities.get(participant_id))
            .map_or(JsValue::UNDEFINED, events::value)
    }

    /// Receive-only members not listed in `participants()`.
    #[wasm_bindgen(getter, js_name = audienceCount)]
    pub fn audience_count(&self) -> u32 {
        let view = self.shared.view.borrow();
        view.session
            .as_ref()
            .map_or(0, |s| s.roster.audience_count())
    }

    /// Your camera and microphone, for a local preview (mute the element that plays it).
    #[wasm_bindgen(getter, js_name = localStream)]
    pub fn local_stream(&self) -> MediaStream {
        same(&self.shared.view.borrow().local_stream)
    }

    /// The screen you are sharing (no track when not sharing), for a preview.
    #[wasm_bindgen(getter, js_name = localScreenStream)]
    pub fn local_screen_stream(&self) -> MediaStream {
        same(&self.shared.view.borrow().local_screen_stream)
    }

    /// Set when the camera or microphone asked for in `join` could not be used; the
    /// room is joined without them.
    #[wasm_bindgen(getter, js_name = mediaError, unchecked_return_type = "ConveneError | null")]
    pub fn media_error(&self) -> JsValue {
        match &self.shared.view.borrow().media_error {
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
        let shared = self.shared.clone();
        promise(async move {
            connected(&shared)?;
            if text.trim().is_empty() || text.len() > MAX_CHAT_BYTES {
                return Err(SdkError::invalid(
                    "text",
                    format!("a message is 1 to {MAX_CHAT_BYTES} bytes"),
                ));
            }
            let disabled = shared
                .view
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
            send(&shared, ClientMessage::SendMessage { text })?;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// Presenters: turns another participant's microphone, camera or screen off
    /// (all three when `kinds` is left out).
    /// Typed in types.rs (an optional parameter).
    #[wasm_bindgen(js_name = muteParticipant, skip_typescript)]
    pub fn mute_participant(&self, id: String, kinds: Option<JsValue>) -> Promise {
        let shared = self.shared.clone();
        promise(async move {
            connected(&shared)?;
            let k: MuteOptions = match kinds {
                Some(k) if !k.is_undefined() && !k.is_null() => read_options(
                    k,
                    "muteParticipant",
                    &["audio", "video", "screen"],
                    "{audio?, video?, screen?}",
                )?,
                _ => MuteOptions::default(),
            };
            let all = k.audio.is_none() && k.video.is_none() && k.screen.is_none();
            send(
                &shared,
                ClientMessage::Mute {
                    participant_id: id,
                    audio: all || k.audio == Some(true),
                    video: all || k.video == Some(true),
                    screen: all || k.screen == Some(true),
                },
            )?;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// Whether this page shows `id`'s camera and screen share now. Tell the server when
    /// a video element scrolls out of view or the page is hidden: what is not shown is
    /// not sent (it saves the bandwidth), and video resumes from a fresh keyframe when
    /// shown again. Everything is shown until said otherwise. Typed in types.rs.
    #[wasm_bindgen(js_name = setViewing, skip_typescript)]
    pub fn set_viewing(&self, id: String, shown: JsValue) -> Promise {
        let shared = self.shared.clone();
        promise(async move {
            connected(&shared)?;
            let shape = "{video?, screen?, videoHeight?}";
            let known = ["video", "screen", "videoHeight"];
            let k: ViewOptions = read_options(shown, "setViewing", &known, shape)?;
            if k.video.is_none() && k.screen.is_none() && k.video_height.is_none() {
                return Err(SdkError::invalid(
                    "options",
                    "Room.setViewing: say whether `video` or `screen` is shown, or how tall \
                     the video is (`videoHeight`)",
                ));
            }
            let video_height = match k.video_height {
                None => None,
                Some(h) if h.is_finite() && h >= 0.0 => Some(h.round().min(u32::MAX as f64) as u32),
                Some(_) => {
                    return Err(SdkError::invalid(
                        "options",
                        "Room.setViewing: `videoHeight` is the video's height in device \
                         pixels, a number of 0 or more",
                    ))
                }
            };
            send(
                &shared,
                ClientMessage::SetViewing {
                    participant_id: id,
                    video: k.video,
                    screen: k.screen,
                    video_height,
                },
            )?;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// Leaves the call: devices off, connections closed, listeners dropped.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn leave(&self) -> Promise {
        let shared = self.shared.clone();
        promise(async move {
            let (reply, done) = futures_channel::oneshot::channel();
            // Already left: the driver is gone, and there is nothing more to do.
            if shared
                .tx
                .unbounded_send(Input::Leave("clientLeft", reply))
                .is_ok()
            {
                let _ = done.await;
            }
            Ok(JsValue::UNDEFINED)
        })
    }

    /// Sends from another microphone (`"audio"`) or camera (`"video"`): `deviceId` as
    /// `navigator.mediaDevices.enumerateDevices()` lists it. The old device is released;
    /// the new one is on (switching turns a muted microphone or stopped camera on).
    #[wasm_bindgen(js_name = switchDevice, unchecked_return_type = "Promise<void>")]
    pub fn switch_device(
        &self,
        #[wasm_bindgen(unchecked_param_type = "\"audio\" | \"video\"")] kind: String,
        #[wasm_bindgen(js_name = deviceId)] device_id: String,
    ) -> Promise {
        let shared = self.shared.clone();
        promise(async move {
            let kind = match kind.as_str() {
                "audio" => TrackKind::Audio,
                "video" => TrackKind::Video,
                other => {
                    return Err(SdkError::invalid(
                        "kind",
                        format!("switchDevice takes \"audio\" or \"video\", not {other:?}"),
                    ))
                }
            };
            if device_id.is_empty() {
                return Err(SdkError::invalid(
                    "deviceId",
                    "give a deviceId from enumerateDevices()",
                ));
            }
            allowed(&shared, kind)?;
            let track =
                crate::local_media::device_track(kind == TrackKind::Audio, &device_id).await?;
            device(&shared, kind, true, Some(track)).await?;
            Ok(JsValue::UNDEFINED)
        })
    }

    fn set_enabled(&self, kind: TrackKind, on: bool) -> Promise {
        let shared = self.shared.clone();
        promise(async move {
            set_enabled(&shared, kind, on).await?;
            Ok(JsValue::UNDEFINED)
        })
    }
}

/// Whether this member's role lets it send `kind` now.
fn allowed(shared: &Shared, kind: TrackKind) -> Result<(), SdkError> {
    connected(shared)?;
    let view = shared.view.borrow();
    let Some(s) = &view.session else {
        return Err(SdkError::not_connected());
    };
    let ok = match kind {
        TrackKind::Audio => s.caps.publish_audio,
        TrackKind::Video => s.caps.publish_video,
        TrackKind::Screen => s.caps.publish_screen,
    };
    if ok {
        Ok(())
    } else {
        Err(SdkError::server(
            convene_protocol::ErrorCode::PermissionDenied,
            format!("the {} role may not publish {}", s.role, kind.as_str()),
        ))
    }
}

fn connected(shared: &Shared) -> Result<(), SdkError> {
    if shared.phase() == Phase::Disconnected {
        Err(SdkError::not_connected())
    } else {
        Ok(())
    }
}

fn send(shared: &Shared, msg: ClientMessage) -> Result<(), SdkError> {
    shared
        .tx
        .unbounded_send(Input::Send(msg))
        .map_err(|_| SdkError::not_connected())
}

/// Checks what the role allows, then hands the request to the driver; when it needs a
/// new device, asks the browser here (a prompt may take a while) and hands that over.
async fn set_enabled(shared: &Shared, kind: TrackKind, on: bool) -> Result<(), SdkError> {
    if on {
        allowed(shared, kind)?;
    } else {
        connected(shared)?;
    }
    if device(shared, kind, on, None).await? == DeviceStep::NeedTrack {
        let track = local_tracks::acquire(kind).await?;
        device(shared, kind, on, Some(track)).await?;
    }
    Ok(())
}

async fn device(
    shared: &Shared,
    kind: TrackKind,
    on: bool,
    track: Option<web_sys::MediaStreamTrack>,
) -> Result<DeviceStep, SdkError> {
    let (reply, answer) = futures_channel::oneshot::channel();
    let input = Input::Device {
        kind,
        on,
        track,
        reply,
    };
    if let Err(e) = shared.tx.unbounded_send(input) {
        if let Input::Device { track: Some(t), .. } = e.into_inner() {
            t.stop();
        }
        return Err(SdkError::not_connected());
    }
    answer
        .await
        .unwrap_or_else(|_| Err(SdkError::not_connected()))
}
