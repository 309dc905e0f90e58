//! Media over the two peer connections: the publish one (we offer, with our camera,
//! microphone and screen) and the subscribe one (the server offers what we receive).
//! Whose turn it is to offer, and which connections are current, is `call::Call`'s to
//! say; this file carries it out on the browser's RTCPeerConnections.

use std::cell::Cell;
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

use convene_protocol::signal::{ClientMessage, PcKind};
use js_sys::{Array, Object, Reflect};
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{
    MediaStream, MediaStreamTrack, RtcRtpSender, RtcRtpTransceiver, RtcRtpTransceiverDirection,
    RtcRtpTransceiverInit, RtcTrackEvent,
};

use crate::codecs::{preference_order, VideoCodec};
use crate::driver::{Ctx, Input};
use crate::errors::SdkError;
use crate::events::{self, Emit};
use crate::handle::same;
use crate::naming::{self, TrackKind};
use crate::peer::{self, Peer, PeerEvent};

/// A relayed track we receive.
pub struct Remote {
    pub participant: String,
    pub kind: TrackKind,
    pub track: MediaStreamTrack,
    pub stream: MediaStream,
}

/// The peer connections and what travels on them.
pub struct MediaState {
    publish: Option<Peer>,
    subscribe: Option<Peer>,
    /// Our senders on the publish connection, by kind (kept when a device stops, so
    /// turning it on again needs no renegotiation).
    pub senders: HashMap<TrackKind, RtcRtpSender>,
    /// Received tracks, by transceiver mid.
    remote: BTreeMap<String, Remote>,
    /// The track id the screen was first offered with: the SDP keeps it (replaceTrack
    /// does not renegotiate), so the server keeps recognizing that sender as a screen.
    screen_msid: Option<String>,
    pub screen_stream: MediaStream,
    /// How tall the tallest viewer shows our camera, as the server last said
    /// (`cameraDemand`; `None`: as large as there is): the camera's layers follow it,
    /// also those of a sender made after it was said. Shared with the tasks that apply
    /// it, so one that lost a race to another applies the latest, not its own.
    camera_demand: Rc<Cell<Option<u32>>>,
}

pub fn track_event(
    participant: &str,
    kind: TrackKind,
    track: &MediaStreamTrack,
    stream: &MediaStream,
) -> JsValue {
    let o = Object::new();
    events::set(&o, "participantId", participant);
    events::set(&o, "kind", kind.as_str());
    events::set(&o, "track", same(track));
    events::set(&o, "stream", same(stream));
    o.into()
}

fn removed(r: &Remote) -> Emit {
    Emit(
        "trackRemoved",
        track_event(&r.participant, r.kind, &r.track, &r.stream),
    )
}

pub(crate) fn stop(track: Option<MediaStreamTrack>) {
    if let Some(t) = track {
        t.set_onended(None);
        t.stop();
    }
}

impl MediaState {
    pub fn new(screen_stream: MediaStream) -> Self {
        Self {
            publish: None,
            subscribe: None,
            senders: HashMap::new(),
            remote: BTreeMap::new(),
            screen_msid: None,
            screen_stream,
            camera_demand: Rc::new(Cell::new(None)),
        }
    }

    /// Forgets the tracks received from one participant (it left).
    pub fn drop_remote_of(&mut self, participant: &str) -> Vec<Emit> {
        let mids: Vec<String> = self
            .remote
            .iter()
            .filter(|(_, r)| r.participant == participant)
            .map(|(m, _)| m.clone())
            .collect();
        mids.iter()
            .filter_map(|m| self.remote.remove(m))
            .map(|r| removed(&r))
            .collect()
    }

    /// Closes both connections; their tracks are gone.
    fn drop_connections(&mut self) -> Vec<Emit> {
        let emits = std::mem::take(&mut self.remote)
            .values()
            .map(removed)
            .collect();
        self.publish = None;
        self.subscribe = None;
        self.senders.clear();
        emits
    }

    fn pc(&self, kind: PcKind) -> Option<web_sys::RtcPeerConnection> {
        match kind {
            PcKind::Publish => self.publish.as_ref(),
            PcKind::Subscribe => self.subscribe.as_ref(),
        }
        .map(|p| p.pc.clone())
    }

    fn peer_mut(&mut self, kind: PcKind) -> Option<&mut Peer> {
        match kind {
            PcKind::Publish => self.publish.as_mut(),
            PcKind::Subscribe => self.subscribe.as_mut(),
        }
    }
}

/// Everything off and closed: the call is over.
pub fn release_all(ctx: &mut Ctx) -> Vec<Emit> {
    ctx.call.reset_media();
    let emits = ctx.media.drop_connections();
    ctx.local.stop_all();
    emits
}

/// New connections (first join, or a join the server did not treat as a resume):
/// receive everything, publish the local tracks again.
pub fn restart(ctx: &mut Ctx) -> Vec<Emit> {
    ctx.call.reset_media();
    let emits = ctx.media.drop_connections();
    ctx.media.screen_msid = None;
    // Every layer until told otherwise (the server tells again what it decided when
    // the camera comes on the new connection).
    ctx.media.camera_demand.set(None);
    ctx.send(&ClientMessage::Subscribe);
    for (kind, track) in ctx.local.live() {
        if let Err(e) = add_sender(ctx, kind, &track) {
            web_sys::console::warn_1(&e.message.into());
        }
    }
    emits
}

/// A new send-only transceiver for a local track; the offer follows from the driver.
pub(crate) fn add_sender(
    ctx: &mut Ctx,
    kind: TrackKind,
    track: &MediaStreamTrack,
) -> Result<(), SdkError> {
    if ctx.media.publish.is_none() {
        let peer = Peer::new(
            PcKind::Publish,
            ctx.call.pc_gen(),
            &ctx.ice_servers(),
            ctx.ice_policy,
            ctx.shared.tx.clone(),
        )?;
        ctx.media.publish = Some(peer);
    }
    let init = RtcRtpTransceiverInit::new();
    init.set_direction(RtcRtpTransceiverDirection::Sendonly);
    let stream = if kind == TrackKind::Screen {
        ctx.media.screen_msid = Some(track.id());
        same(&ctx.media.screen_stream)
    } else {
        same(ctx.local.stream())
    };
    init.set_streams(&Array::of1(&stream));
    let picture = size(track);
    let layers = crate::simulcast::encodings(kind, ctx.video_codec, ctx.simulcast, picture);
    if !layers.is_empty() {
        let heights: Vec<u32> = (layers.iter())
            .map(|e| layer_height(picture, e.scale_down_by))
            .collect();
        let active = crate::simulcast::active(&heights, ctx.media.camera_demand.get());
        let list: Array = (layers.iter().zip(active))
            .map(|(e, active)| {
                let o = Object::new();
                let _ = Reflect::set(&o, &"rid".into(), &e.rid.into());
                let _ = Reflect::set(&o, &"scaleResolutionDownBy".into(), &e.scale_down_by.into());
                let _ = Reflect::set(&o, &"maxBitrate".into(), &e.max_bitrate.into());
                let _ = Reflect::set(&o, &"active".into(), &active.into());
                JsValue::from(o)
            })
            .collect();
        let _ = Reflect::set(&init, &"sendEncodings".into(), &list);
    }
    if kind == TrackKind::Screen {
        // Text and lines stay sharp; the frame rate gives way first.
        let _ = Reflect::set(track, &"contentHint".into(), &"detail".into());
    }
    let pc = &ctx.media.publish.as_ref().expect("created above").pc;
    let t = pc.add_transceiver_with_media_stream_track_and_init(track, &init);
    if kind != TrackKind::Audio {
        if let Err(why) = prefer_codec(&t, ctx.video_codec) {
            web_sys::console::warn_1(&why.into());
        }
    }
    ctx.media.senders.insert(kind, t.sender());
    let _ = ctx.shared.tx.unbounded_send(Input::Renegotiate);
    Ok(())
}

/// How tall a layer scaled down by `scale` is, of a picture `picture` large (a 720p
/// camera's when not known).
fn layer_height(picture: Option<(u32, u32)>, scale: f64) -> u32 {
    let height = picture.map_or(720, |(_, h)| h);
    (f64::from(height) / scale.max(1.0)) as u32
}

/// The server says how tall the tallest viewer shows our camera (`cameraDemand`): its
/// encodings nobody needs are paused (`active: false`), the others resumed.
pub fn camera_demand(ctx: &mut Ctx, max_height: Option<u32>) {
    ctx.media.camera_demand.set(max_height);
    apply_camera_demand(ctx);
}

/// Sets the camera's encodings for the demand last said (also after a new camera track
/// was put on the sender: its picture may be another size).
pub fn apply_camera_demand(ctx: &Ctx) {
    let Some(sender) = ctx.media.senders.get(&TrackKind::Video).cloned() else {
        return;
    };
    let wanted = ctx.media.camera_demand.clone();
    wasm_bindgen_futures::spawn_local(async move {
        // `setParameters` refuses parameters read before another call changed them: the
        // loser of such a race waits, reads them again and applies the latest demand;
        // a demand that changed while one was applied is applied in turn.
        let mut failures = 0;
        loop {
            let want = wanted.get();
            match set_layers(&sender, want).await {
                Ok(()) if wanted.get() == want => return,
                Ok(()) => {}
                Err(e) => {
                    failures += 1;
                    if failures == 3 {
                        web_sys::console::warn_2(
                            &"convene-sdk: could not pause or resume camera layers:".into(),
                            &e,
                        );
                        return;
                    }
                    gloo_timers::future::TimeoutFuture::new(100).await;
                }
            }
        }
    });
}

/// Sets the camera encodings' `active` flags for `max_height` (see `simulcast::active`).
async fn set_layers(sender: &RtcRtpSender, max_height: Option<u32>) -> Result<(), JsValue> {
    let get = |o: &JsValue, k: &str| Reflect::get(o, &k.into()).unwrap_or(JsValue::UNDEFINED);
    let call = |name: &str, args: &Array| -> Result<JsValue, JsValue> {
        get(sender, name)
            .dyn_into::<js_sys::Function>()?
            .apply(sender, args)
    };
    // No camera on the sender (turned off): decided when one is put on, by its size.
    let Some(track) = sender.track() else {
        return Ok(());
    };
    let params = call("getParameters", &Array::new())?;
    let encodings: Vec<JsValue> = Array::from(&get(&params, "encodings")).iter().collect();
    if encodings.len() < 2 {
        return Ok(());
    }
    let picture = size(&track);
    let heights: Vec<u32> = (encodings.iter())
        .map(|e| {
            layer_height(
                picture,
                get(e, "scaleResolutionDownBy").as_f64().unwrap_or(1.0),
            )
        })
        .collect();
    let mut changed = false;
    for (e, on) in encodings
        .iter()
        .zip(crate::simulcast::active(&heights, max_height))
    {
        if get(e, "active").as_bool() != Some(on) {
            Reflect::set(e, &"active".into(), &on.into())?;
            changed = true;
        }
    }
    if changed {
        let done = call("setParameters", &Array::of1(&params))?;
        wasm_bindgen_futures::JsFuture::from(js_sys::Promise::from(done)).await?;
    }
    Ok(())
}

/// A video track's picture size, as its settings say.
fn size(track: &MediaStreamTrack) -> Option<(u32, u32)> {
    let get = |o: &JsValue, k: &str| Reflect::get(o, &k.into()).ok();
    let settings = get(track, "getSettings")?
        .dyn_into::<js_sys::Function>()
        .ok()?
        .call0(track)
        .ok()?;
    let n = |k| get(&settings, k).and_then(|v| v.as_f64()).map(|v| v as u32);
    Some((n("width")?, n("height")?))
}

/// Orders the transceiver's codecs so the server picks `codec` (see `codecs`). The
/// list is the browser's receive capabilities, which `setCodecPreferences` requires;
/// whether it can also send the codec is checked first.
fn prefer_codec(t: &web_sys::RtcRtpTransceiver, codec: VideoCodec) -> Result<(), String> {
    let get = |o: &JsValue, k: &str| Reflect::get(o, &k.into()).unwrap_or(JsValue::UNDEFINED);
    let codecs_of = |class: &str| -> Vec<JsValue> {
        let class = get(&js_sys::global(), class);
        let caps = get(&class, "getCapabilities")
            .dyn_into::<js_sys::Function>()
            .ok()
            .and_then(|f| f.call1(&class, &"video".into()).ok())
            .unwrap_or(JsValue::UNDEFINED);
        Array::from(&get(&caps, "codecs")).iter().collect()
    };
    let pairs = |list: &[JsValue]| -> Vec<(String, String)> {
        list.iter()
            .map(|c| {
                let s = |k| get(c, k).as_string().unwrap_or_default();
                (s("mimeType"), s("sdpFmtpLine"))
            })
            .collect()
    };
    let receive = codecs_of("RTCRtpReceiver");
    let send = pairs(&codecs_of("RTCRtpSender"));
    let can_send = codec == VideoCodec::Vp8 || preference_order(codec, &send).is_some();
    let order = preference_order(codec, &pairs(&receive)).filter(|_| can_send);
    let Some(order) = order else {
        return match codec {
            VideoCodec::Vp8 => Ok(()),
            VideoCodec::H264 => Err("convene-sdk: this browser cannot send H.264 \
                (constrained baseline): sending VP8 instead of videoCodec \"h264\""
                .into()),
        };
    };
    let list: Array = order.into_iter().map(|i| receive[i].clone()).collect();
    let set = get(t, "setCodecPreferences")
        .dyn_into::<js_sys::Function>()
        .map_err(|_| "convene-sdk: this browser cannot choose a video codec".to_string())?;
    set.call1(t, &list)
        .map(|_| ())
        .map_err(|e| format!("convene-sdk: setCodecPreferences failed: {e:?}"))
}

/// Sends the publish connection's offer when it is our turn (see `Call::want_offer`).
pub async fn offer_publish(ctx: &mut Ctx) {
    let Some(pc) = ctx.media.pc(PcKind::Publish) else {
        return;
    };
    let Some(gen) = ctx.call.want_offer() else {
        return;
    };
    let result = peer::offer(&pc).await;
    if !ctx.call.is_current_pc(gen) {
        return;
    }
    match result {
        Ok(sdp) => {
            let screen_track_ids = ctx.media.screen_msid.clone().into_iter().collect();
            ctx.send(&ClientMessage::Offer {
                pc: PcKind::Publish,
                sdp,
                screen_track_ids,
            });
        }
        Err(e) => {
            ctx.call.offer_failed(gen);
            ctx.emit(vec![Emit("error", e.to_js())]);
        }
    }
}

async fn flush_candidates(ctx: &mut Ctx, kind: PcKind) {
    let Some(p) = ctx.media.peer_mut(kind) else {
        return;
    };
    let (pc, pending) = (p.pc.clone(), p.take_pending());
    for c in pending {
        peer::add_candidate(&pc, &c).await;
    }
}

pub async fn on_answer(ctx: &mut Ctx, kind: PcKind, sdp: &str) {
    if kind != PcKind::Publish {
        return;
    }
    let Some(pc) = ctx.media.pc(kind) else {
        return;
    };
    if let Err(e) = peer::accept_answer(&pc, sdp).await {
        ctx.emit(vec![Emit("error", e.to_js())]);
    }
    flush_candidates(ctx, kind).await;
    if ctx.call.answered() {
        offer_publish(ctx).await;
    }
}

pub async fn on_offer(ctx: &mut Ctx, kind: PcKind, sdp: &str) {
    if kind != PcKind::Subscribe {
        return;
    }
    if ctx.media.subscribe.is_none() {
        match Peer::new(
            PcKind::Subscribe,
            ctx.call.pc_gen(),
            &ctx.ice_servers(),
            ctx.ice_policy,
            ctx.shared.tx.clone(),
        ) {
            Ok(p) => ctx.media.subscribe = Some(p),
            Err(e) => return ctx.emit(vec![Emit("error", e.to_js())]),
        }
    }
    let pc = ctx.media.pc(PcKind::Subscribe).expect("set above");
    match peer::answer(&pc, sdp).await {
        Ok(answer) => ctx.send(&ClientMessage::Answer {
            pc: PcKind::Subscribe,
            sdp: answer,
        }),
        Err(e) => return ctx.emit(vec![Emit("error", e.to_js())]),
    }
    flush_candidates(ctx, kind).await;
    let emits = reconcile(ctx, &pc);
    ctx.emit(emits);
}

/// After a new subscribe offer: tracks whose transceiver stopped receiving are gone.
fn reconcile(ctx: &mut Ctx, pc: &web_sys::RtcPeerConnection) -> Vec<Emit> {
    let mut emits = Vec::new();
    for t in pc.get_transceivers().iter() {
        let Ok(t) = t.dyn_into::<RtcRtpTransceiver>() else {
            continue;
        };
        let receiving = matches!(
            t.current_direction(),
            Some(RtcRtpTransceiverDirection::Recvonly | RtcRtpTransceiverDirection::Sendrecv)
        ) && !t.stopped();
        if let (false, Some(mid)) = (receiving, t.mid()) {
            if let Some(r) = ctx.media.remote.remove(&mid) {
                emits.push(removed(&r));
            }
        }
    }
    emits
}

pub async fn on_candidate(
    ctx: &mut Ctx,
    kind: PcKind,
    candidate: &str,
    sdp_mid: Option<String>,
    sdp_m_line_index: Option<u16>,
) {
    let init = Peer::candidate_init(candidate, sdp_mid.as_deref(), sdp_m_line_index);
    let Some(p) = ctx.media.peer_mut(kind) else {
        return;
    };
    if !p.has_remote_description() {
        p.queue_candidate(init);
        return;
    }
    let pc = p.pc.clone();
    peer::add_candidate(&pc, &init).await;
}

pub async fn on_peer(ctx: &mut Ctx, kind: PcKind, gen: u64, ev: PeerEvent) {
    if !ctx.call.is_current_pc(gen) {
        return;
    }
    match ev {
        PeerEvent::Candidate {
            candidate,
            sdp_mid,
            sdp_m_line_index,
        } => ctx.send(&ClientMessage::Candidate {
            pc: kind,
            candidate,
            sdp_mid,
            sdp_m_line_index,
        }),
        PeerEvent::Track(ev) if kind == PcKind::Subscribe => {
            let emits = received(ctx, &ev);
            ctx.emit(emits);
        }
        PeerEvent::Track(_) => {}
        PeerEvent::State(state) => match state.as_str() {
            "connected" => ctx.call.media_connected(),
            "failed" => {
                web_sys::console::warn_1(
                    &format!("convene: the {kind:?} media connection failed; rejoining").into(),
                );
                crate::reconnect::rejoin_fresh(ctx);
            }
            _ => {}
        },
    }
}

/// A relayed track arrived: whose and what it is come from the server's naming.
fn received(ctx: &mut Ctx, ev: &RtcTrackEvent) -> Vec<Emit> {
    let track = ev.track();
    let stream_id = ev
        .streams()
        .get(0)
        .dyn_into::<MediaStream>()
        .map(|s| s.id())
        .unwrap_or_default();
    let Some(participant) = naming::participant_of_stream(&stream_id) else {
        return Vec::new();
    };
    let kind = naming::kind_of_track(&track.id(), &track.kind());
    let mid = ev.transceiver().mid().unwrap_or_else(|| track.id());
    let Ok(stream) = MediaStream::new_with_tracks(&Array::of1(&track)) else {
        return Vec::new();
    };
    let remote = &mut ctx.media.remote;
    let mut emits = Vec::new();
    let replaced: Vec<String> = remote
        .iter()
        .filter(|(m, r)| r.participant == participant && r.kind == kind && **m != mid)
        .map(|(m, _)| m.clone())
        .collect();
    for m in replaced {
        if let Some(r) = remote.remove(&m) {
            emits.push(removed(&r));
        }
    }
    emits.push(Emit(
        "trackAdded",
        track_event(&participant, kind, &track, &stream),
    ));
    remote.insert(
        mid,
        Remote {
            participant,
            kind,
            track,
            stream,
        },
    );
    emits
}
