//! Media over the two peer connections: the publish one (we offer, with our camera,
//! microphone and screen) and the subscribe one (the server offers what we receive).

use std::rc::Rc;

use convene_protocol::signal::{ClientMessage, PcKind};
use js_sys::{Array, Object};
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{
    MediaStream, MediaStreamTrack, RtcRtpTransceiver, RtcRtpTransceiverDirection,
    RtcRtpTransceiverInit, RtcTrackEvent,
};

use crate::driver::{Inner, Input, Remote, State};
use crate::errors::SdkError;
use crate::events::{self, Emit};
use crate::naming::{self, TrackKind};
use crate::peer::{self, Peer, PeerEvent};

pub fn track_event(
    participant: &str,
    kind: TrackKind,
    track: &MediaStreamTrack,
    stream: &MediaStream,
) -> JsValue {
    let o = Object::new();
    events::set(&o, "participantId", participant);
    events::set(&o, "kind", kind.as_str());
    events::set(&o, "track", track.clone());
    events::set(&o, "stream", stream.clone());
    o.into()
}

fn removed(r: &Remote) -> Emit {
    Emit(
        "trackRemoved",
        track_event(&r.participant, r.kind, &r.track, &r.stream),
    )
}

/// Tracks received so far, by mid, as `trackAdded` payloads.
pub fn current_tracks(inner: &Inner) -> Vec<(String, JsValue)> {
    let st = inner.st.borrow();
    st.remote
        .iter()
        .map(|(mid, r)| {
            (
                mid.clone(),
                track_event(&r.participant, r.kind, &r.track, &r.stream),
            )
        })
        .collect()
}

/// Forgets the tracks received from one participant (it left).
pub fn drop_remote_of(inner: &Inner, participant: &str) -> Vec<Emit> {
    let mut st = inner.st.borrow_mut();
    let mids: Vec<String> = st
        .remote
        .iter()
        .filter(|(_, r)| r.participant == participant)
        .map(|(m, _)| m.clone())
        .collect();
    mids.iter()
        .filter_map(|m| st.remote.remove(m))
        .map(|r| removed(&r))
        .collect()
}

fn drop_connections(st: &mut State) -> Vec<Emit> {
    let emits = std::mem::take(&mut st.remote)
        .values()
        .map(removed)
        .collect();
    st.publish = None;
    st.subscribe = None;
    st.senders.clear();
    st.offer_in_flight = false;
    st.offer_again = false;
    st.pc_gen += 1;
    emits
}

pub(crate) fn stop(track: Option<MediaStreamTrack>) {
    if let Some(t) = track {
        t.set_onended(None);
        t.stop();
    }
}

/// Everything off and closed: the call is over.
pub fn release_all(inner: &Inner) -> Vec<Emit> {
    let mut st = inner.st.borrow_mut();
    let emits = drop_connections(&mut st);
    stop(st.mic.take());
    stop(st.cam.take());
    stop(st.screen.take());
    st.screen_ended = None;
    emits
}

/// New connections (first join, or a join the server did not treat as a resume):
/// receive everything, publish the local tracks again.
pub fn restart(inner: &Rc<Inner>) -> Vec<Emit> {
    let emits = {
        let mut st = inner.st.borrow_mut();
        let emits = drop_connections(&mut st);
        st.screen_msid = None;
        emits
    };
    inner.send(&ClientMessage::Subscribe);
    let tracks: Vec<(TrackKind, MediaStreamTrack)> = {
        let st = inner.st.borrow();
        [
            (TrackKind::Audio, st.mic.clone()),
            (TrackKind::Video, st.cam.clone()),
            (TrackKind::Screen, st.screen.clone()),
        ]
        .into_iter()
        .filter_map(|(k, t)| Some((k, t?)))
        .collect()
    };
    for (kind, track) in tracks {
        if let Err(e) = add_sender(inner, kind, &track) {
            web_sys::console::warn_1(&e.message.into());
        }
    }
    emits
}

/// A new send-only transceiver for a local track; the offer follows from the driver.
pub(crate) fn add_sender(
    inner: &Rc<Inner>,
    kind: TrackKind,
    track: &MediaStreamTrack,
) -> Result<(), SdkError> {
    let mut st = inner.st.borrow_mut();
    if st.publish.is_none() {
        let ice = st
            .session
            .as_ref()
            .map(|s| s.ice_servers.clone())
            .unwrap_or_default();
        st.publish = Some(Peer::new(
            PcKind::Publish,
            st.pc_gen,
            &ice,
            inner.tx.clone(),
        )?);
    }
    let init = RtcRtpTransceiverInit::new();
    init.set_direction(RtcRtpTransceiverDirection::Sendonly);
    let stream = if kind == TrackKind::Screen {
        st.screen_msid = Some(track.id());
        &st.screen_stream
    } else {
        &st.local_stream
    };
    init.set_streams(&Array::of1(stream));
    let pc = &st.publish.as_ref().expect("created above").pc;
    let t = pc.add_transceiver_with_media_stream_track_and_init(track, &init);
    st.senders.insert(kind, t.sender());
    let _ = inner.tx.unbounded_send(Input::Renegotiate);
    Ok(())
}

/// Sends the publish connection's offer, or queues one while another is unanswered.
pub async fn offer_publish(inner: &Rc<Inner>) {
    let (pc, gen) = {
        let mut st = inner.st.borrow_mut();
        if st.offer_in_flight {
            st.offer_again = true;
            return;
        }
        let Some(p) = &st.publish else { return };
        let pc = p.pc.clone();
        st.offer_in_flight = true;
        (pc, st.pc_gen)
    };
    let result = peer::offer(&pc).await;
    let st_gen = inner.st.borrow().pc_gen;
    if st_gen != gen {
        return;
    }
    match result {
        Ok(sdp) => {
            let screen_track_ids = inner.st.borrow().screen_msid.clone().into_iter().collect();
            inner.send(&ClientMessage::Offer {
                pc: PcKind::Publish,
                sdp,
                screen_track_ids,
            });
        }
        Err(e) => {
            inner.st.borrow_mut().offer_in_flight = false;
            inner.dispatch(vec![Emit("error", e.to_js())]);
        }
    }
}

fn peer_pc(st: &State, kind: PcKind) -> Option<web_sys::RtcPeerConnection> {
    match kind {
        PcKind::Publish => st.publish.as_ref(),
        PcKind::Subscribe => st.subscribe.as_ref(),
    }
    .map(|p| p.pc.clone())
}

async fn flush_candidates(inner: &Inner, kind: PcKind) {
    let (pc, pending) = {
        let mut st = inner.st.borrow_mut();
        let peer = match kind {
            PcKind::Publish => st.publish.as_mut(),
            PcKind::Subscribe => st.subscribe.as_mut(),
        };
        let Some(p) = peer else { return };
        (p.pc.clone(), p.take_pending())
    };
    for c in pending {
        peer::add_candidate(&pc, &c).await;
    }
}

pub async fn on_answer(inner: &Rc<Inner>, kind: PcKind, sdp: &str) {
    let Some(pc) = peer_pc(&inner.st.borrow(), kind) else {
        return;
    };
    if kind != PcKind::Publish {
        return;
    }
    if let Err(e) = peer::accept_answer(&pc, sdp).await {
        inner.dispatch(vec![Emit("error", e.to_js())]);
    }
    flush_candidates(inner, kind).await;
    let again = {
        let mut st = inner.st.borrow_mut();
        st.offer_in_flight = false;
        std::mem::take(&mut st.offer_again)
    };
    if again {
        offer_publish(inner).await;
    }
}

pub async fn on_offer(inner: &Rc<Inner>, kind: PcKind, sdp: &str) {
    if kind != PcKind::Subscribe {
        return;
    }
    let pc = {
        let mut st = inner.st.borrow_mut();
        if st.subscribe.is_none() {
            let ice = st
                .session
                .as_ref()
                .map(|s| s.ice_servers.clone())
                .unwrap_or_default();
            match Peer::new(PcKind::Subscribe, st.pc_gen, &ice, inner.tx.clone()) {
                Ok(p) => st.subscribe = Some(p),
                Err(e) => {
                    drop(st);
                    inner.dispatch(vec![Emit("error", e.to_js())]);
                    return;
                }
            }
        }
        st.subscribe.as_ref().expect("set above").pc.clone()
    };
    match peer::answer(&pc, sdp).await {
        Ok(answer) => inner.send(&ClientMessage::Answer {
            pc: PcKind::Subscribe,
            sdp: answer,
        }),
        Err(e) => {
            inner.dispatch(vec![Emit("error", e.to_js())]);
            return;
        }
    }
    flush_candidates(inner, kind).await;
    let emits = reconcile(inner, &pc);
    inner.dispatch(emits);
}

/// After a new subscribe offer: tracks whose transceiver stopped receiving are gone.
fn reconcile(inner: &Inner, pc: &web_sys::RtcPeerConnection) -> Vec<Emit> {
    let mut st = inner.st.borrow_mut();
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
            if let Some(r) = st.remote.remove(&mid) {
                emits.push(removed(&r));
            }
        }
    }
    emits
}

pub async fn on_candidate(
    inner: &Rc<Inner>,
    kind: PcKind,
    candidate: &str,
    sdp_mid: Option<String>,
    sdp_m_line_index: Option<u16>,
) {
    let init = Peer::candidate_init(candidate, sdp_mid.as_deref(), sdp_m_line_index);
    let pc = {
        let mut st = inner.st.borrow_mut();
        let peer = match kind {
            PcKind::Publish => st.publish.as_mut(),
            PcKind::Subscribe => st.subscribe.as_mut(),
        };
        let Some(p) = peer else { return };
        if !p.has_remote_description() {
            p.queue_candidate(init);
            return;
        }
        p.pc.clone()
    };
    peer::add_candidate(&pc, &init).await;
}

pub async fn on_peer(inner: &Rc<Inner>, kind: PcKind, gen: u64, ev: PeerEvent) {
    if gen != inner.st.borrow().pc_gen {
        return;
    }
    match ev {
        PeerEvent::Candidate {
            candidate,
            sdp_mid,
            sdp_m_line_index,
        } => inner.send(&ClientMessage::Candidate {
            pc: kind,
            candidate,
            sdp_mid,
            sdp_m_line_index,
        }),
        PeerEvent::Track(ev) if kind == PcKind::Subscribe => {
            let emits = received(inner, &ev);
            inner.dispatch(emits);
        }
        PeerEvent::Track(_) => {}
        PeerEvent::State(state) => {
            if state == "failed" {
                web_sys::console::warn_1(
                    &format!("convene: the {kind:?} media connection failed; rejoining").into(),
                );
                crate::reconnect::rejoin_fresh(inner);
            }
        }
    }
}

/// A relayed track arrived: whose and what it is come from the server's naming.
fn received(inner: &Inner, ev: &RtcTrackEvent) -> Vec<Emit> {
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
    let mut st = inner.st.borrow_mut();
    let mut emits = Vec::new();
    let replaced: Vec<String> = st
        .remote
        .iter()
        .filter(|(m, r)| r.participant == participant && r.kind == kind && **m != mid)
        .map(|(m, _)| m.clone())
        .collect();
    for m in replaced {
        if let Some(r) = st.remote.remove(&m) {
            emits.push(removed(&r));
        }
    }
    emits.push(Emit(
        "trackAdded",
        track_event(&participant, kind, &track, &stream),
    ));
    st.remote.insert(
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
