//! One RTCPeerConnection (publish or subscribe). Like the socket, its callbacks only
//! forward events into the room's input queue; the closures are owned here and the
//! connection is closed when this is dropped.

use convene_protocol::signal::{IceServer, PcKind};
use futures_channel::mpsc::UnboundedSender;
use js_sys::Reflect;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    Event, RtcConfiguration, RtcIceCandidateInit, RtcPeerConnection, RtcPeerConnectionIceEvent,
    RtcSdpType, RtcSessionDescriptionInit, RtcTrackEvent,
};

use crate::driver::Input;
use crate::errors::SdkError;

pub enum PeerEvent {
    Candidate {
        candidate: String,
        sdp_mid: Option<String>,
        sdp_m_line_index: Option<u16>,
    },
    Track(RtcTrackEvent),
    /// `connectionState` changed; the value is the state's name (`failed`, ...).
    State(String),
}

pub struct Peer {
    pub pc: RtcPeerConnection,
    /// Remote candidates that came before the remote description.
    pending: Vec<RtcIceCandidateInit>,
    _on_candidate: Closure<dyn FnMut(RtcPeerConnectionIceEvent)>,
    _on_track: Closure<dyn FnMut(RtcTrackEvent)>,
    _on_state: Closure<dyn FnMut(Event)>,
}

fn media_error(what: &str, e: JsValue) -> SdkError {
    let detail = Reflect::get(&e, &"message".into())
        .ok()
        .and_then(|m| m.as_string())
        .unwrap_or_default();
    SdkError::connection_failed(format!("{what} failed: {detail}"))
}

impl Peer {
    pub fn new(
        kind: PcKind,
        generation: u64,
        ice_servers: &[IceServer],
        policy: crate::options::IceTransportPolicy,
        tx: UnboundedSender<Input>,
    ) -> Result<Self, SdkError> {
        let config = RtcConfiguration::new();
        let servers = serde_wasm_bindgen::to_value(ice_servers).unwrap_or(JsValue::NULL);
        config.set_ice_servers(&servers);
        if policy == crate::options::IceTransportPolicy::Relay {
            config.set_ice_transport_policy(web_sys::RtcIceTransportPolicy::Relay);
        }
        let pc = RtcPeerConnection::new_with_configuration(&config)
            .map_err(|e| media_error("creating a peer connection", e))?;
        let send = move |ev: PeerEvent| {
            let _ = tx.unbounded_send(Input::Peer(kind, generation, ev));
        };
        let s = send.clone();
        let on_candidate = Closure::<dyn FnMut(RtcPeerConnectionIceEvent)>::new(
            move |e: RtcPeerConnectionIceEvent| {
                // `None` marks the end of gathering; the server needs no such marker.
                if let Some(c) = e.candidate().filter(|c| {
                    crate::candidates::worth_sending(&c.candidate(), c.sdp_m_line_index())
                }) {
                    s(PeerEvent::Candidate {
                        candidate: c.candidate(),
                        sdp_mid: c.sdp_mid(),
                        sdp_m_line_index: c.sdp_m_line_index(),
                    });
                }
            },
        );
        let s = send.clone();
        let on_track = Closure::<dyn FnMut(RtcTrackEvent)>::new(move |e: RtcTrackEvent| {
            s(PeerEvent::Track(e))
        });
        let on_state = Closure::<dyn FnMut(Event)>::new(move |e: Event| {
            let state = e
                .target()
                .and_then(|t| Reflect::get(&t, &"connectionState".into()).ok())
                .and_then(|s| s.as_string())
                .unwrap_or_default();
            send(PeerEvent::State(state));
        });
        pc.set_onicecandidate(Some(on_candidate.as_ref().unchecked_ref()));
        pc.set_ontrack(Some(on_track.as_ref().unchecked_ref()));
        pc.set_onconnectionstatechange(Some(on_state.as_ref().unchecked_ref()));
        Ok(Self {
            pc,
            pending: Vec::new(),
            _on_candidate: on_candidate,
            _on_track: on_track,
            _on_state: on_state,
        })
    }

    /// Adds a remote candidate now, or once the remote description is set.
    pub fn candidate_init(
        candidate: &str,
        sdp_mid: Option<&str>,
        sdp_m_line_index: Option<u16>,
    ) -> RtcIceCandidateInit {
        let init = RtcIceCandidateInit::new(candidate);
        init.set_sdp_mid(sdp_mid);
        init.set_sdp_m_line_index(sdp_m_line_index);
        init
    }

    pub fn has_remote_description(&self) -> bool {
        self.pc.remote_description().is_some()
    }

    pub fn queue_candidate(&mut self, init: RtcIceCandidateInit) {
        self.pending.push(init);
    }

    pub fn take_pending(&mut self) -> Vec<RtcIceCandidateInit> {
        std::mem::take(&mut self.pending)
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.pc.set_onicecandidate(None);
        self.pc.set_ontrack(None);
        self.pc.set_onconnectionstatechange(None);
        self.pc.close();
    }
}

// The async steps take a cloned handle, never a `Peer`, so no borrow of the room's
// state is held across an await.

pub async fn add_candidate(pc: &RtcPeerConnection, init: &RtcIceCandidateInit) {
    let promise = pc.add_ice_candidate_with_opt_rtc_ice_candidate_init(Some(init));
    if let Err(e) = JsFuture::from(promise).await {
        web_sys::console::warn_2(&"convene: a remote ICE candidate was refused".into(), &e);
    }
}

fn description(kind: RtcSdpType, sdp: &str) -> RtcSessionDescriptionInit {
    let d = RtcSessionDescriptionInit::new(kind);
    d.set_sdp(sdp);
    d
}

async fn sdp_of(promise: js_sys::Promise, what: &str) -> Result<String, SdkError> {
    let d = JsFuture::from(promise)
        .await
        .map_err(|e| media_error(what, e))?;
    Reflect::get(&d, &"sdp".into())
        .ok()
        .and_then(|s| s.as_string())
        .ok_or_else(|| SdkError::connection_failed(format!("{what} returned no SDP")))
}

/// createOffer + setLocalDescription; the SDP to send.
pub async fn offer(pc: &RtcPeerConnection) -> Result<String, SdkError> {
    let sdp = sdp_of(pc.create_offer(), "createOffer").await?;
    JsFuture::from(pc.set_local_description(&description(RtcSdpType::Offer, &sdp)))
        .await
        .map_err(|e| media_error("setLocalDescription(offer)", e))?;
    Ok(sdp)
}

/// setRemoteDescription(offer) + createAnswer + setLocalDescription; the SDP to send.
pub async fn answer(pc: &RtcPeerConnection, remote_offer: &str) -> Result<String, SdkError> {
    JsFuture::from(pc.set_remote_description(&description(RtcSdpType::Offer, remote_offer)))
        .await
        .map_err(|e| media_error("setRemoteDescription(offer)", e))?;
    let sdp = sdp_of(pc.create_answer(), "createAnswer").await?;
    JsFuture::from(pc.set_local_description(&description(RtcSdpType::Answer, &sdp)))
        .await
        .map_err(|e| media_error("setLocalDescription(answer)", e))?;
    Ok(sdp)
}

pub async fn accept_answer(pc: &RtcPeerConnection, sdp: &str) -> Result<(), SdkError> {
    JsFuture::from(pc.set_remote_description(&description(RtcSdpType::Answer, sdp)))
        .await
        .map_err(|e| media_error("setRemoteDescription(answer)", e))?;
    Ok(())
}
