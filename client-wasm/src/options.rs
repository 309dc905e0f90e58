//! Options objects read from JS (`Room.join`, `Room.check`, `muteParticipant`,
//! `listAudience`): unknown keys are refused (serde-wasm-bindgen alone reads only the fields a struct has, so a typo such
//! as `vidoe: false` would pass unnoticed), and `tracks` is checked.

use js_sys::Array;
use serde::Deserialize;
use wasm_bindgen::{JsCast, JsValue};
use web_sys::MediaStreamTrack;

use crate::errors::SdkError;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JoinOptions {
    pub url: Option<String>,
    pub token: String,
    pub audio: Option<bool>,
    pub video: Option<bool>,
    pub reconnect: Option<bool>,
    /// Listeners added before connecting, so `stateChanged` shows `connecting` too.
    #[serde(default, with = "serde_wasm_bindgen::preserve")]
    pub on: JsValue,
    /// Tracks to publish instead of asking for the camera and microphone (a pre-join
    /// preview's): the SDK owns them from here on.
    #[serde(default, with = "serde_wasm_bindgen::preserve")]
    pub tracks: JsValue,
    /// `relay`: media only through the TURN servers the server hands out.
    pub ice_transport_policy: Option<IceTransportPolicy>,
    /// The codec to send video in (default VP8).
    pub video_codec: Option<crate::codecs::VideoCodec>,
    /// Send the camera in three layers (default true; see `simulcast`).
    pub simulcast: Option<bool>,
}

/// Which ICE candidates the browser may use, as in `RTCConfiguration`.
#[derive(Deserialize, Clone, Copy, PartialEq, Eq, Debug, Default)]
#[serde(rename_all = "lowercase")]
pub enum IceTransportPolicy {
    #[default]
    All,
    Relay,
}

#[derive(Deserialize)]
pub struct CheckOptions {
    pub url: Option<String>,
    pub token: String,
}

/// The keys of an options object that `known` does not list. serde-wasm-bindgen reads
/// only the fields a struct has, so without this check a typo (`vidoe: false`) would
/// pass unnoticed.
fn unknown_keys(options: &JsValue, known: &[&str]) -> Vec<String> {
    if !options.is_object() {
        return Vec::new();
    }
    js_sys::Object::keys(&js_sys::Object::from(options.clone()))
        .iter()
        .filter_map(|k| k.as_string())
        .filter(|k| !known.contains(&k.as_str()))
        .collect()
}

/// Reads `Room.<method>`'s options, refusing unknown keys with the expected shape.
pub fn read_options<T: serde::de::DeserializeOwned>(
    options: JsValue,
    method: &str,
    known: &[&str],
    shape: &str,
) -> Result<T, SdkError> {
    let explain = |why: String| {
        SdkError::invalid(
            "options",
            format!("Room.{method} options: {why} (expected {shape})"),
        )
    };
    if let Some(k) = unknown_keys(&options, known).first() {
        return Err(explain(format!("unknown option `{k}`")));
    }
    serde_wasm_bindgen::from_value(options).map_err(|e| explain(e.to_string()))
}

/// The tracks in `JoinOptions.tracks`: an array of audio and video `MediaStreamTrack`s.
pub fn given_tracks(tracks: &JsValue) -> Result<Option<Vec<MediaStreamTrack>>, SdkError> {
    if tracks.is_undefined() || tracks.is_null() {
        return Ok(None);
    }
    let bad = || SdkError::invalid("tracks", "tracks is an array of MediaStreamTracks");
    if !Array::is_array(tracks) {
        return Err(bad());
    }
    let tracks: Vec<MediaStreamTrack> = Array::from(tracks)
        .iter()
        .map(|t| t.dyn_into().map_err(|_| bad()))
        .collect::<Result<_, _>>()?;
    let audio = tracks.iter().filter(|t| t.kind() == "audio").count();
    let video = tracks.iter().filter(|t| t.kind() == "video").count();
    if audio > 1 || video > 1 {
        return Err(SdkError::invalid(
            "tracks",
            "give at most one audio and one video track",
        ));
    }
    Ok(Some(tracks))
}

impl JoinOptions {
    pub fn read(options: JsValue) -> Result<Self, SdkError> {
        read_options(
            options,
            "join",
            &[
                "url",
                "token",
                "audio",
                "video",
                "tracks",
                "reconnect",
                "on",
                "iceTransportPolicy",
                "videoCodec",
                "simulcast",
            ],
            "{url?, token, audio?, video?, tracks?, reconnect?, on?, iceTransportPolicy?, videoCodec?, simulcast?}",
        )
    }
}

impl CheckOptions {
    pub fn read(options: JsValue) -> Result<Self, SdkError> {
        read_options(options, "check", &["url", "token"], "{url?, token}")
    }
}
