//! The room's state and the one task that changes it. Socket and peer-connection
//! callbacks, timers and API calls that need ordering all become `Input`s, handled one
//! at a time, so SDP steps never interleave and a candidate never overtakes its
//! description. No `RefCell` borrow is held across an await or while a listener runs.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

use convene_protocol::signal::{
    Capabilities, ClientMessage, IceServer, PcKind, ResumeInfo, RoomInfo, ServerMessage,
};
use futures_channel::mpsc::{UnboundedReceiver, UnboundedSender};
use futures_channel::oneshot;
use futures_util::StreamExt;
use gloo_timers::future::TimeoutFuture;
use web_sys::{MediaStream, MediaStreamTrack, RtcRtpSender};

use crate::endpoint;
use crate::errors::SdkError;
use crate::events::{self, Emit, Listeners};
use crate::naming::TrackKind;
use crate::peer::{Peer, PeerEvent};
use crate::roster::{Change, Roster};
use crate::socket::{Socket, SocketEvent};

pub enum Input {
    Socket(u64, SocketEvent),
    Peer(PcKind, u64, PeerEvent),
    /// A reconnect attempt is due.
    Retry,
    Ping,
    /// Local tracks were added to the publish connection: offer again.
    Renegotiate,
    /// The user stopped the screen share from the browser's own control.
    ScreenEnded,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Connecting,
    Connected,
    Reconnecting,
    Disconnected,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Connecting => "connecting",
            Phase::Connected => "connected",
            Phase::Reconnecting => "reconnecting",
            Phase::Disconnected => "disconnected",
        }
    }
}

/// What `joined` told us.
pub struct Session {
    pub roster: Roster,
    pub room: RoomInfo,
    pub role: String,
    pub caps: Capabilities,
    pub resume: ResumeInfo,
    pub ice_servers: Vec<IceServer>,
}

/// A relayed track we receive, by transceiver mid.
pub struct Remote {
    pub participant: String,
    pub kind: TrackKind,
    pub track: MediaStreamTrack,
    pub stream: MediaStream,
}

pub struct State {
    pub base: String,
    pub token: String,
    pub auto_reconnect: bool,
    pub phase: Phase,
    pub(crate) socket: Option<Socket>,
    pub(crate) socket_gen: u64,
    pub session: Option<Session>,
    /// Camera and microphone, for the local preview.
    pub local_stream: MediaStream,
    pub screen_stream: MediaStream,
    pub mic: Option<MediaStreamTrack>,
    pub cam: Option<MediaStreamTrack>,
    pub screen: Option<MediaStreamTrack>,
    /// The track id the screen was first offered with: the SDP keeps it (replaceTrack
    /// does not renegotiate), so the server keeps recognizing that sender as a screen.
    pub screen_msid: Option<String>,
    pub senders: HashMap<TrackKind, RtcRtpSender>,
    pub publish: Option<Peer>,
    pub subscribe: Option<Peer>,
    pub pc_gen: u64,
    pub offer_in_flight: bool,
    pub offer_again: bool,
    pub remote: BTreeMap<String, Remote>,
    pub waiter: Option<oneshot::Sender<Result<(), SdkError>>>,
    pub(crate) reconnect: Option<crate::reconnect::Reconnect>,
    pub media_error: Option<SdkError>,
    pub screen_ended: Option<wasm_bindgen::closure::Closure<dyn FnMut(web_sys::Event)>>,
}

pub struct Inner {
    pub tx: UnboundedSender<Input>,
    pub st: RefCell<State>,
    pub listeners: RefCell<Listeners>,
}

impl Inner {
    pub fn new(
        base: String,
        token: String,
        auto_reconnect: bool,
    ) -> (Rc<Self>, UnboundedReceiver<Input>) {
        let (tx, rx) = futures_channel::mpsc::unbounded();
        let new_stream = || MediaStream::new().expect("MediaStream is available in browsers");
        let st = State {
            base,
            token,
            auto_reconnect,
            phase: Phase::Connecting,
            socket: None,
            socket_gen: 0,
            session: None,
            local_stream: new_stream(),
            screen_stream: new_stream(),
            mic: None,
            cam: None,
            screen: None,
            screen_msid: None,
            senders: HashMap::new(),
            publish: None,
            subscribe: None,
            pc_gen: 0,
            offer_in_flight: false,
            offer_again: false,
            remote: BTreeMap::new(),
            waiter: None,
            reconnect: None,
            media_error: None,
            screen_ended: None,
        };
        let inner = Rc::new(Self {
            tx,
            st: RefCell::new(st),
            listeners: RefCell::new(Listeners::default()),
        });
        (inner, rx)
    }

    /// Calls the listeners of each event, in order, with no state borrowed.
    pub fn dispatch(&self, emits: Vec<Emit>) {
        for Emit(name, payload) in emits {
            let fs = self.listeners.borrow().of(name);
            for f in fs {
                if let Err(e) = f.call1(&wasm_bindgen::JsValue::UNDEFINED, &payload) {
                    web_sys::console::error_2(
                        &format!("convene: a '{name}' listener threw").into(),
                        &e,
                    );
                }
            }
        }
    }

    pub fn send(&self, msg: &ClientMessage) {
        if let Some(s) = &self.st.borrow().socket {
            s.send(msg);
        }
    }

    pub fn local_id(&self) -> String {
        self.st
            .borrow()
            .session
            .as_ref()
            .map(|s| s.roster.me().id.clone())
            .unwrap_or_default()
    }

    /// Opens a signaling socket (a new generation: events of older ones are ignored).
    pub fn connect(&self, resume: bool) -> Result<(), SdkError> {
        let mut st = self.st.borrow_mut();
        let resume_token = st
            .session
            .as_ref()
            .filter(|_| resume)
            .map(|s| s.resume.token.clone());
        let url = endpoint::signaling_url(&st.base, &st.token, resume_token.as_deref())?;
        st.socket_gen += 1;
        st.socket = None;
        st.socket = Some(Socket::open(&url, st.socket_gen, self.tx.clone())?);
        Ok(())
    }
}

/// Runs until the room is left; then every closure and connection is released.
pub async fn run(inner: Rc<Inner>, mut rx: UnboundedReceiver<Input>) {
    let tx = inner.tx.clone();
    wasm_bindgen_futures::spawn_local(async move {
        let period = convene_protocol::signal::PING_INTERVAL_SECONDS * 1000;
        loop {
            TimeoutFuture::new(period).await;
            if tx.unbounded_send(Input::Ping).is_err() {
                break;
            }
        }
    });
    while let Some(input) = rx.next().await {
        handle(&inner, input).await;
        if inner.st.borrow().phase == Phase::Disconnected {
            break;
        }
    }
}

async fn handle(inner: &Rc<Inner>, input: Input) {
    match input {
        Input::Socket(gen, ev) => {
            if gen != inner.st.borrow().socket_gen {
                return;
            }
            match ev {
                SocketEvent::Open => {}
                SocketEvent::Message(text) => match serde_json::from_str::<ServerMessage>(&text) {
                    Ok(msg) => on_server(inner, msg).await,
                    // A newer server may send types this SDK does not know yet.
                    Err(_) => {
                        web_sys::console::debug_1(&"convene: ignored a signaling frame".into())
                    }
                },
                SocketEvent::Closed => crate::reconnect::on_closed(inner).await,
            }
        }
        Input::Peer(kind, gen, ev) => crate::media::on_peer(inner, kind, gen, ev).await,
        Input::Retry => crate::reconnect::retry(inner).await,
        Input::Ping => inner.send(&ClientMessage::Ping { ts: None }),
        Input::Renegotiate => crate::media::offer_publish(inner).await,
        Input::ScreenEnded => {
            crate::local_tracks::stop_local(inner, TrackKind::Screen).await;
            inner.send(&ClientMessage::SetMedia {
                audio: None,
                video: None,
                screen: Some(false),
            });
        }
    }
}

fn roster_emits(inner: &Inner, changes: Vec<Change>) -> Vec<Emit> {
    let local = inner.local_id();
    let mut emits = Vec::new();
    for c in changes {
        match c {
            Change::Joined(p) => {
                emits.push(Emit("participantJoined", events::participant(&p, &local)))
            }
            Change::Left(p) => {
                emits.extend(crate::media::drop_remote_of(inner, &p.id));
                emits.push(Emit("participantLeft", events::participant(&p, &local)));
            }
            Change::Media {
                participant,
                reason,
            } => emits.push(Emit(
                "mediaChanged",
                events::media_changed(&participant, &local, reason.as_deref()),
            )),
        }
    }
    emits
}

async fn on_server(inner: &Rc<Inner>, msg: ServerMessage) {
    match msg {
        ServerMessage::Joined {
            me,
            room,
            participants,
            audience_count,
            capabilities,
            ice_servers,
            resume,
            resumed,
            ..
        } => {
            let role = me.role.clone();
            let (changes, first, waiter) = {
                let mut st = inner.st.borrow_mut();
                let (changes, first) = match st.session.as_mut() {
                    Some(s) => (
                        s.roster.replace(Some(me), participants, audience_count),
                        false,
                    ),
                    None => {
                        st.session = Some(Session {
                            roster: Roster::new(me, participants, audience_count),
                            room: room.clone(),
                            role: role.clone(),
                            caps: capabilities,
                            resume: resume.clone(),
                            ice_servers: ice_servers.clone(),
                        });
                        (Vec::new(), true)
                    }
                };
                let s = st.session.as_mut().expect("set above");
                s.room = room;
                s.role = role;
                s.caps = capabilities;
                s.resume = resume;
                s.ice_servers = ice_servers;
                st.phase = Phase::Connected;
                st.reconnect = None;
                (changes, first, st.waiter.take())
            };
            let mut emits = roster_emits(inner, changes);
            emits.push(Emit(
                "stateChanged",
                events::state_changed("connected", None),
            ));
            let restart = first || !resumed || inner.st.borrow().offer_in_flight;
            if restart {
                emits.extend(crate::media::restart(inner));
            }
            if let Some(w) = waiter {
                let _ = w.send(Ok(()));
            }
            inner.dispatch(emits);
        }
        ServerMessage::ParticipantsChanged {
            added,
            removed,
            updated,
            audience_count,
        } => {
            let changes = match inner.st.borrow_mut().session.as_mut() {
                Some(s) => s
                    .roster
                    .apply_delta(added, removed, updated, audience_count),
                None => return,
            };
            let emits = roster_emits(inner, changes);
            inner.dispatch(emits);
        }
        ServerMessage::Snapshot {
            participants,
            audience_count,
        } => {
            let changes = match inner.st.borrow_mut().session.as_mut() {
                Some(s) => s.roster.replace(None, participants, audience_count),
                None => return,
            };
            let emits = roster_emits(inner, changes);
            inner.dispatch(emits);
        }
        ServerMessage::MediaChanged {
            participant_id,
            audio,
            video,
            screen,
            reason,
        } => {
            let forced = reason.is_some() && participant_id == inner.local_id();
            let changes = match inner.st.borrow_mut().session.as_mut() {
                Some(s) => s
                    .roster
                    .apply_media(&participant_id, audio, video, screen, reason),
                None => return,
            };
            if forced {
                // Muted by a presenter or a role change: the devices follow, so what
                // the page shows matches what others get.
                crate::local_tracks::follow_forced(inner, audio, video, screen).await;
            }
            let emits = roster_emits(inner, changes);
            inner.dispatch(emits);
        }
        ServerMessage::CapabilitiesChanged { role, capabilities } => {
            if let Some(s) = inner.st.borrow_mut().session.as_mut() {
                s.role = role.clone();
                s.caps = capabilities;
            }
            crate::local_tracks::follow_capabilities(inner, capabilities).await;
            let o = js_sys::Object::new();
            events::set(&o, "role", role.as_str());
            events::set(&o, "capabilities", events::value(&capabilities));
            inner.dispatch(vec![Emit("capabilitiesChanged", o.into())]);
        }
        ServerMessage::Message {
            from,
            text,
            sent_at,
        } => {
            let o = js_sys::Object::new();
            events::set(&o, "from", from.as_str());
            events::set(&o, "text", text.as_str());
            events::set(&o, "sentAt", sent_at.as_str());
            inner.dispatch(vec![Emit("message", o.into())]);
        }
        ServerMessage::Offer { pc, sdp } => crate::media::on_offer(inner, pc, &sdp).await,
        ServerMessage::Answer { pc, sdp } => crate::media::on_answer(inner, pc, &sdp).await,
        ServerMessage::Candidate {
            pc,
            candidate,
            sdp_mid,
            sdp_m_line_index,
        } => crate::media::on_candidate(inner, pc, &candidate, sdp_mid, sdp_m_line_index).await,
        ServerMessage::Left { reason } => {
            let reason = serde_json::to_value(reason)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_else(|| "removed".into());
            finish(inner, &reason, None);
        }
        ServerMessage::Error { error } => {
            let e = SdkError::from(error);
            inner.dispatch(vec![Emit("error", e.to_js())]);
        }
        ServerMessage::Audience { .. } | ServerMessage::Pong { .. } => {}
    }
}

/// The first join failed: the promise rejects and everything is released.
pub fn fail_join(inner: &Rc<Inner>, e: SdkError) {
    if let Some(w) = inner.st.borrow_mut().waiter.take() {
        let _ = w.send(Err(e.clone()));
    }
    finish(inner, e.code.clone().as_str(), Some(e));
}

/// The end of the call, whatever the cause: devices off, connections closed, closures
/// released, listeners told and then dropped.
pub fn finish(inner: &Rc<Inner>, reason: &str, error: Option<SdkError>) {
    let (waiter, was_joined) = {
        let mut st = inner.st.borrow_mut();
        if st.phase == Phase::Disconnected {
            return;
        }
        st.phase = Phase::Disconnected;
        (st.waiter.take(), st.session.is_some())
    };
    let mut emits = crate::media::release_all(inner);
    {
        let mut st = inner.st.borrow_mut();
        st.socket = None;
        st.reconnect = None;
    }
    inner.tx.close_channel();
    if let Some(w) = waiter {
        // Told to leave while joining (e.g. `roomFull`): the join promise says so.
        let e = error.clone().unwrap_or_else(|| left_error(reason));
        let _ = w.send(Err(e));
    }
    if was_joined {
        emits.push(Emit(
            "stateChanged",
            events::state_changed("disconnected", Some(reason)),
        ));
        emits.push(Emit("left", events::left(reason, error.as_ref())));
    }
    inner.dispatch(emits);
    inner.listeners.borrow_mut().clear();
}

fn left_error(reason: &str) -> SdkError {
    use convene_protocol::ErrorCode;
    match reason {
        "roomFull" => SdkError::server(ErrorCode::RoomFull, "the room is full"),
        "roomExpired" => SdkError::server(ErrorCode::RoomExpired, "the room has ended"),
        "roomDeleted" => SdkError::server(ErrorCode::RoomNotFound, "the room was deleted"),
        "removed" | "roleRevoked" => {
            SdkError::server(ErrorCode::NotInvited, "you were removed from this room")
        }
        other => SdkError::connection_failed(format!("the server ended the call ({other})")),
    }
}
