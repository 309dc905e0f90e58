//! This browser's own devices: turning the microphone, camera and screen on and off,
//! and following what the server decides (a presenter's mute, a role change). Runs in
//! the driver; only asking the browser for a device (`acquire`, which may wait on a
//! permission prompt) happens in the API call, before its result is handed over.

use convene_protocol::signal::{Capabilities, ClientMessage};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{MediaStream, MediaStreamTrack};

use crate::driver::{Ctx, Input};
use crate::errors::SdkError;
use crate::handle::same;
use crate::media::{add_sender, stop};
use crate::naming::TrackKind;

/// What the driver made of a device request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceStep {
    Done,
    /// No live track of that kind: acquire one and send it.
    NeedTrack,
}

pub struct LocalTracks {
    mic: Option<MediaStreamTrack>,
    cam: Option<MediaStreamTrack>,
    screen: Option<MediaStreamTrack>,
    /// Camera and microphone, for the local preview (the view shares it).
    stream: MediaStream,
    screen_ended: Option<Closure<dyn FnMut(web_sys::Event)>>,
}

impl LocalTracks {
    pub fn new(stream: MediaStream) -> Self {
        Self {
            mic: None,
            cam: None,
            screen: None,
            stream,
            screen_ended: None,
        }
    }

    pub fn stream(&self) -> &MediaStream {
        &self.stream
    }

    fn slot(&mut self, kind: TrackKind) -> &mut Option<MediaStreamTrack> {
        match kind {
            TrackKind::Audio => &mut self.mic,
            TrackKind::Video => &mut self.cam,
            TrackKind::Screen => &mut self.screen,
        }
    }

    /// The tracks we have, to publish again on new connections.
    pub fn live(&self) -> Vec<(TrackKind, MediaStreamTrack)> {
        [
            (TrackKind::Audio, &self.mic),
            (TrackKind::Video, &self.cam),
            (TrackKind::Screen, &self.screen),
        ]
        .into_iter()
        .filter_map(|(k, t)| Some((k, t.clone()?)))
        .collect()
    }

    pub fn stop_all(&mut self) {
        stop(self.mic.take());
        stop(self.cam.take());
        stop(self.screen.take());
        self.screen_ended = None;
    }
}

/// Asks the browser for a device of this kind (in the API call, not the driver: a
/// permission prompt may take a while).
pub async fn acquire(kind: TrackKind) -> Result<MediaStreamTrack, SdkError> {
    let first = |tracks: Vec<MediaStreamTrack>| {
        tracks
            .into_iter()
            .next()
            .ok_or_else(|| SdkError::media_unavailable("the device gave no track"))
    };
    match kind {
        TrackKind::Audio => first(crate::local_media::user_media(true, false).await?),
        TrackKind::Video => first(crate::local_media::user_media(false, true).await?),
        TrackKind::Screen => crate::local_media::display_media().await,
    }
}

/// Stops a local device and stops sending it (no renegotiation: the sender stays).
pub async fn stop_local(ctx: &mut Ctx, kind: TrackKind) {
    let track = ctx.local.slot(kind).take();
    if let Some(t) = &track {
        ctx.local.stream.remove_track(t);
        ctx.media.screen_stream.remove_track(t);
    }
    stop(track);
    if kind == TrackKind::Screen {
        ctx.local.screen_ended = None;
    }
    if let Some(s) = ctx.media.senders.get(&kind).cloned() {
        let _ = JsFuture::from(s.replace_track(None)).await;
    }
}

/// The server turned our media off (a presenter muted us, or our role changed).
pub async fn follow_forced(ctx: &mut Ctx, audio: bool, video: bool, screen: bool) {
    if !audio {
        if let Some(m) = &ctx.local.mic {
            m.set_enabled(false);
        }
    }
    if !video {
        stop_local(ctx, TrackKind::Video).await;
    }
    if !screen {
        stop_local(ctx, TrackKind::Screen).await;
    }
}

/// What the new role may not publish is turned off.
pub async fn follow_capabilities(ctx: &mut Ctx, caps: Capabilities) {
    for (kind, allowed) in [
        (TrackKind::Audio, caps.publish_audio),
        (TrackKind::Video, caps.publish_video),
        (TrackKind::Screen, caps.publish_screen),
    ] {
        if !allowed {
            stop_local(ctx, kind).await;
        }
    }
}

fn set_media(kind: TrackKind, on: bool) -> ClientMessage {
    let v = Some(on);
    let (audio, video, screen) = match kind {
        TrackKind::Audio => (v, None, None),
        TrackKind::Video => (None, v, None),
        TrackKind::Screen => (None, None, v),
    };
    ClientMessage::SetMedia {
        audio,
        video,
        screen,
    }
}

/// Starts sending a newly acquired local track.
pub async fn publish(
    ctx: &mut Ctx,
    kind: TrackKind,
    track: MediaStreamTrack,
) -> Result<(), SdkError> {
    if ctx.call.is_over() {
        track.stop();
        return Err(SdkError::not_connected());
    }
    if kind == TrackKind::Screen {
        watch_screen_end(ctx, &track);
        ctx.media.screen_stream.add_track(&track);
    } else {
        ctx.local.stream.add_track(&track);
    }
    // A replaced track (a device switch) leaves the previews with its slot.
    let old = ctx.local.slot(kind).replace(same(&track));
    if let Some(o) = &old {
        ctx.local.stream.remove_track(o);
        ctx.media.screen_stream.remove_track(o);
    }
    stop(old);
    match ctx.media.senders.get(&kind).cloned() {
        Some(s) => {
            JsFuture::from(s.replace_track(Some(&track)))
                .await
                .map_err(|_| SdkError::media_unavailable("the new track could not be sent"))?;
            if kind == TrackKind::Video {
                // Which layers are needed depends on the new picture's size.
                crate::media::apply_camera_demand(ctx);
            }
        }
        None => add_sender(ctx, kind, &track)?,
    }
    Ok(())
}

/// `setMicrophoneEnabled`, `setCameraEnabled`, `startScreenShare` / `stopScreenShare`,
/// as the driver carries them out.
pub async fn device(
    ctx: &mut Ctx,
    kind: TrackKind,
    on: bool,
    track: Option<MediaStreamTrack>,
) -> Result<DeviceStep, SdkError> {
    if ctx.call.is_over() {
        stop(track);
        return Err(SdkError::not_connected());
    }
    if !on {
        stop(track);
        match kind {
            // The microphone stays open while muted, so unmuting is instant.
            TrackKind::Audio => {
                if let Some(m) = &ctx.local.mic {
                    m.set_enabled(false);
                }
            }
            _ => stop_local(ctx, kind).await,
        }
        ctx.send(&set_media(kind, false));
        return Ok(DeviceStep::Done);
    }
    match track {
        Some(t) => publish(ctx, kind, t).await?,
        None => {
            let live = ctx
                .local
                .slot(kind)
                .as_ref()
                .filter(|t| t.ready_state() == web_sys::MediaStreamTrackState::Live)
                .cloned();
            match live {
                Some(t) => t.set_enabled(true),
                None => return Ok(DeviceStep::NeedTrack),
            }
        }
    }
    ctx.send(&set_media(kind, true));
    Ok(DeviceStep::Done)
}

/// The browser's own "Stop sharing" button ends the track: stop sharing for real.
fn watch_screen_end(ctx: &mut Ctx, track: &MediaStreamTrack) {
    if let Some(old) = &ctx.local.screen {
        old.set_onended(None);
    }
    let tx = ctx.shared.tx.clone();
    let on_ended = Closure::<dyn FnMut(web_sys::Event)>::new(move |_| {
        let _ = tx.unbounded_send(Input::ScreenEnded);
    });
    track.set_onended(Some(on_ended.as_ref().unchecked_ref()));
    ctx.local.screen_ended = Some(on_ended);
}
