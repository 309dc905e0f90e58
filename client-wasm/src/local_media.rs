//! The browser's own camera, microphone and screen.

use js_sys::Reflect;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    DisplayMediaStreamConstraints, MediaStream, MediaStreamConstraints, MediaStreamTrack,
};

use crate::errors::SdkError;

fn devices() -> Result<web_sys::MediaDevices, SdkError> {
    web_sys::window()
        .and_then(|w| w.navigator().media_devices().ok())
        .ok_or_else(|| {
            SdkError::media_unavailable(
                "this page cannot use a camera or microphone (it needs https or localhost)",
            )
        })
}

fn explain(what: &str, e: JsValue) -> SdkError {
    let name = Reflect::get(&e, &"name".into())
        .ok()
        .and_then(|n| n.as_string())
        .unwrap_or_default();
    let why = match name.as_str() {
        "NotAllowedError" => "permission was refused".to_string(),
        "NotFoundError" => "no such device was found".to_string(),
        "NotReadableError" => "the device is in use by another application".to_string(),
        "OverconstrainedError" => "no device has that id (see enumerateDevices)".to_string(),
        _ => Reflect::get(&e, &"message".into())
            .ok()
            .and_then(|m| m.as_string())
            .unwrap_or(name),
    };
    SdkError::media_unavailable(format!("cannot use the {what}: {why}"))
}

fn tracks(stream: &MediaStream) -> Vec<MediaStreamTrack> {
    stream
        .get_tracks()
        .iter()
        .filter_map(|t| t.dyn_into().ok())
        .collect()
}

/// The microphone and/or camera, as asked.
pub async fn user_media(audio: bool, video: bool) -> Result<Vec<MediaStreamTrack>, SdkError> {
    if !audio && !video {
        return Ok(Vec::new());
    }
    let what = match (audio, video) {
        (true, true) => "camera and microphone",
        (true, false) => "microphone",
        _ => "camera",
    };
    let c = MediaStreamConstraints::new();
    c.set_audio_bool(audio);
    if video {
        c.set_video(&camera_size(js_sys::Object::new()));
    } else {
        c.set_video_bool(false);
    }
    Ok(tracks(&get_user_media(&c, what).await?))
}

/// Asks a camera for 1280x720 where it can (it gives what it has nearest): enough for
/// the three simulcast layers a browser sends from 960x540 up (see `simulcast`).
fn camera_size(c: js_sys::Object) -> js_sys::Object {
    for (k, v) in [("width", 1280), ("height", 720)] {
        let ideal = js_sys::Object::new();
        let _ = Reflect::set(&ideal, &"ideal".into(), &v.into());
        let _ = Reflect::set(&c, &k.into(), &ideal);
    }
    c
}

/// `getUserMedia(c)`, its refusals explained for `what`.
async fn get_user_media(c: &MediaStreamConstraints, what: &str) -> Result<MediaStream, SdkError> {
    let promise = devices()?
        .get_user_media_with_constraints(c)
        .map_err(|e| explain(what, e))?;
    Ok(JsFuture::from(promise)
        .await
        .map_err(|e| explain(what, e))?
        .unchecked_into())
}

/// The microphone or camera with this `deviceId` (from `enumerateDevices`), exactly.
pub async fn device_track(audio: bool, device_id: &str) -> Result<MediaStreamTrack, SdkError> {
    let what = if audio { "microphone" } else { "camera" };
    let exact = js_sys::Object::new();
    let id = js_sys::Object::new();
    let _ = Reflect::set(&id, &"exact".into(), &device_id.into());
    let _ = Reflect::set(&exact, &"deviceId".into(), &id);
    let c = MediaStreamConstraints::new();
    if audio {
        c.set_audio(&exact);
    } else {
        c.set_video(&camera_size(exact));
    }
    tracks(&get_user_media(&c, what).await?)
        .into_iter()
        .next()
        .ok_or_else(|| SdkError::media_unavailable(format!("the {what} gave no track")))
}

/// A screen, window or tab the user picks.
pub async fn display_media() -> Result<MediaStreamTrack, SdkError> {
    let c = DisplayMediaStreamConstraints::new();
    c.set_video_bool(true);
    let promise = devices()?
        .get_display_media_with_constraints(&c)
        .map_err(|e| explain("screen", e))?;
    let stream: MediaStream = JsFuture::from(promise)
        .await
        .map_err(|e| explain("screen", e))?
        .unchecked_into();
    tracks(&stream)
        .into_iter()
        .find(|t| t.kind() == "video")
        .ok_or_else(|| SdkError::media_unavailable("the screen share has no video"))
}
