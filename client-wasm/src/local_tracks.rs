//! This browser's own devices: turning the microphone, camera and screen on and off,
//! and following what the server decides (a presenter's mute, a role change).

use std::rc::Rc;

use convene_protocol::signal::{Capabilities, ClientMessage};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::MediaStreamTrack;

use crate::driver::{Inner, Input, Phase, State};
use crate::errors::SdkError;
use crate::media::{add_sender, stop};
use crate::naming::TrackKind;

fn local_slot(st: &mut State, kind: TrackKind) -> &mut Option<MediaStreamTrack> {
    match kind {
        TrackKind::Audio => &mut st.mic,
        TrackKind::Video => &mut st.cam,
        TrackKind::Screen => &mut st.screen,
    }
}

/// Stops a local device and stops sending it (no renegotiation: the sender stays).
pub async fn stop_local(inner: &Inner, kind: TrackKind) {
    let sender = {
        let mut st = inner.st.borrow_mut();
        let track = local_slot(&mut st, kind).take();
        if let Some(t) = &track {
            st.local_stream.remove_track(t);
            st.screen_stream.remove_track(t);
        }
        stop(track);
        if kind == TrackKind::Screen {
            st.screen_ended = None;
        }
        st.senders.get(&kind).cloned()
    };
    if let Some(s) = sender {
        let _ = JsFuture::from(s.replace_track(None)).await;
    }
}

/// The server turned our media off (a presenter muted us, or our role changed).
pub async fn follow_forced(inner: &Inner, audio: bool, video: bool, screen: bool) {
    if !audio {
        if let Some(m) = &inner.st.borrow().mic {
            m.set_enabled(false);
        }
    }
    if !video {
        stop_local(inner, TrackKind::Video).await;
    }
    if !screen {
        stop_local(inner, TrackKind::Screen).await;
    }
}

/// What the new role may not publish is turned off.
pub async fn follow_capabilities(inner: &Inner, caps: Capabilities) {
    for (kind, allowed) in [
        (TrackKind::Audio, caps.publish_audio),
        (TrackKind::Video, caps.publish_video),
        (TrackKind::Screen, caps.publish_screen),
    ] {
        if !allowed {
            stop_local(inner, kind).await;
        }
    }
}

fn allowed(inner: &Inner, kind: TrackKind) -> Result<(), SdkError> {
    let st = inner.st.borrow();
    if st.phase == Phase::Disconnected {
        return Err(SdkError::not_connected());
    }
    let Some(s) = &st.session else {
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

fn set_media(kind: TrackKind, on: bool) -> ClientMessage {
    let v = Some(on);
    match kind {
        TrackKind::Audio => ClientMessage::SetMedia {
            audio: v,
            video: None,
            screen: None,
        },
        TrackKind::Video => ClientMessage::SetMedia {
            audio: None,
            video: v,
            screen: None,
        },
        TrackKind::Screen => ClientMessage::SetMedia {
            audio: None,
            video: None,
            screen: v,
        },
    }
}

/// Starts sending a newly acquired local track.
async fn publish(
    inner: &Rc<Inner>,
    kind: TrackKind,
    track: MediaStreamTrack,
) -> Result<(), SdkError> {
    let sender = {
        let mut st = inner.st.borrow_mut();
        if st.phase == Phase::Disconnected {
            track.stop();
            return Err(SdkError::not_connected());
        }
        stop(local_slot(&mut st, kind).replace(track.clone()));
        if kind == TrackKind::Screen {
            st.screen_stream.add_track(&track);
        } else {
            st.local_stream.add_track(&track);
        }
        st.senders.get(&kind).cloned()
    };
    match sender {
        Some(s) => {
            JsFuture::from(s.replace_track(Some(&track)))
                .await
                .map_err(|_| SdkError::media_unavailable("the new track could not be sent"))?;
        }
        None => add_sender(inner, kind, &track)?,
    }
    Ok(())
}

/// Tracks asked for at join, once the role is known.
pub async fn publish_initial(inner: &Rc<Inner>, tracks: Vec<MediaStreamTrack>) {
    for t in tracks {
        let kind = if t.kind() == "audio" {
            TrackKind::Audio
        } else {
            TrackKind::Video
        };
        if let Err(e) = publish(inner, kind, t).await {
            web_sys::console::warn_1(&e.message.into());
        }
    }
}

/// `setMicrophoneEnabled`, `setCameraEnabled`, `startScreenShare` / `stopScreenShare`.
pub async fn set_enabled(inner: &Rc<Inner>, kind: TrackKind, on: bool) -> Result<(), SdkError> {
    if !on {
        if inner.st.borrow().phase == Phase::Disconnected {
            return Err(SdkError::not_connected());
        }
        match kind {
            // The microphone stays open while muted, so unmuting is instant.
            TrackKind::Audio => {
                if let Some(m) = &inner.st.borrow().mic {
                    m.set_enabled(false);
                }
            }
            _ => stop_local(inner, kind).await,
        }
        inner.send(&set_media(kind, false));
        return Ok(());
    }
    allowed(inner, kind)?;
    let live = {
        let st = inner.st.borrow();
        let slot = match kind {
            TrackKind::Audio => &st.mic,
            TrackKind::Video => &st.cam,
            TrackKind::Screen => &st.screen,
        };
        slot.as_ref()
            .filter(|t| t.ready_state() == web_sys::MediaStreamTrackState::Live)
            .cloned()
    };
    match live {
        Some(t) => t.set_enabled(true),
        None => {
            let track = match kind {
                TrackKind::Audio => first(crate::local_media::user_media(true, false).await?)?,
                TrackKind::Video => first(crate::local_media::user_media(false, true).await?)?,
                TrackKind::Screen => {
                    let t = crate::local_media::display_media().await?;
                    watch_screen_end(inner, &t);
                    t
                }
            };
            publish(inner, kind, track).await?;
        }
    }
    inner.send(&set_media(kind, true));
    Ok(())
}

fn first(tracks: Vec<MediaStreamTrack>) -> Result<MediaStreamTrack, SdkError> {
    tracks
        .into_iter()
        .next()
        .ok_or_else(|| SdkError::media_unavailable("the device gave no track"))
}

/// The browser's own "Stop sharing" button ends the track: stop sharing for real.
fn watch_screen_end(inner: &Rc<Inner>, track: &MediaStreamTrack) {
    if let Some(old) = &inner.st.borrow().screen {
        old.set_onended(None);
    }
    let tx = inner.tx.clone();
    let on_ended = Closure::<dyn FnMut(web_sys::Event)>::new(move |_| {
        let _ = tx.unbounded_send(Input::ScreenEnded);
    });
    track.set_onended(Some(on_ended.as_ref().unchecked_ref()));
    inner.st.borrow_mut().screen_ended = Some(on_ended);
}
