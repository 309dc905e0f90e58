//! The one task that owns a room's call: the socket, the peer connections, the local
//! devices, and the call's state machine (`call::Call`). Socket and peer-connection
//! callbacks, timers and every API call that changes something (device toggles, chat,
//! `leave`) become `Input`s, handled one at a time, so SDP steps never interleave and a
//! camera toggle can never race a rejoin.
//!
//! `Ctx` is owned by the task and lent as `&mut` to the modules that act on it
//! (`media`, `local_tracks`, `reconnect`); nothing else can reach it. The `Room` class
//! holds only `Shared`: the input queue, the listeners, and a read-only `View` that the
//! driver keeps current.

use std::cell::RefCell;
use std::rc::Rc;

use convene_protocol::signal::{
    Capabilities, ClientMessage, IceServer, Participant, ResumeInfo, RoomInfo, SeatApplication,
    SeatInfo, ServerMessage,
};
use futures_channel::mpsc::{UnboundedReceiver, UnboundedSender};
use futures_channel::oneshot;
use futures_util::StreamExt;
use gloo_timers::future::TimeoutFuture;
use js_sys::Function;
use wasm_bindgen::JsValue;
use web_sys::{MediaStream, MediaStreamTrack};

use crate::call::{Call, Phase};
use crate::endpoint;
use crate::errors::SdkError;
use crate::events::{self, Emit, Listeners};
use crate::handle::same;
use crate::local_tracks::{DeviceStep, LocalTracks};
use crate::media::MediaState;
use crate::naming::TrackKind;
use crate::peer::PeerEvent;
use crate::roster::Roster;
use crate::socket::{Socket, SocketEvent};

pub enum Input {
    Socket(u64, SocketEvent),
    Peer(convene_protocol::signal::PcKind, u64, PeerEvent),
    /// A reconnect attempt is due.
    Retry,
    Ping,
    /// Local tracks were added to the publish connection: offer again.
    Renegotiate,
    /// The user stopped the screen share from the browser's own control.
    ScreenEnded,
    /// Turn a device on or off. `track`: one the caller acquired after `NeedTrack`.
    Device {
        kind: TrackKind,
        on: bool,
        track: Option<MediaStreamTrack>,
        reply: oneshot::Sender<Result<DeviceStep, SdkError>>,
    },
    /// Start sending a track acquired at join (the relay reports it as published).
    Publish(TrackKind, MediaStreamTrack),
    /// A message for the server (chat, mute, seats, attributes).
    Send(ClientMessage),
    /// Leave, telling listeners `reason` (`clientLeft`, or `switched` by `switchTo`).
    Leave(&'static str, oneshot::Sender<()>),
    /// A page of the audience; the answer comes in the server's `audience`.
    ListAudience {
        after: Option<String>,
        limit: Option<u32>,
        reply: oneshot::Sender<(Vec<Participant>, Option<String>)>,
    },
    /// Call a new `trackAdded` listener with the tracks told before it was added.
    Replay(Function, Vec<JsValue>),
}

/// What `joined` told us.
pub struct Session {
    pub roster: Roster,
    pub room: RoomInfo,
    pub role: String,
    pub caps: Capabilities,
    pub resume: ResumeInfo,
    pub ice_servers: Vec<IceServer>,
    /// A live or voice room's seats (empty in a conference).
    pub seats: Vec<SeatInfo>,
    /// Open seat applications (presenters are told).
    pub applications: Vec<SeatApplication>,
    /// Who is talking, loudest first.
    pub active_speakers: Vec<convene_protocol::signal::ActiveSpeaker>,
    /// Members' connection quality, as last told.
    pub qualities: std::collections::HashMap<String, convene_protocol::signal::ConnectionQuality>,
}

/// What the `Room` class may read. Written only by the driver, and never borrowed
/// while a listener runs.
pub struct View {
    pub phase: Phase,
    pub session: Option<Session>,
    /// Camera and microphone, for the local preview.
    pub local_stream: MediaStream,
    /// The screen being shared, for the sharer's own preview.
    pub local_screen_stream: MediaStream,
    pub media_error: Option<SdkError>,
}

pub struct Shared {
    pub tx: UnboundedSender<Input>,
    pub listeners: RefCell<Listeners>,
    pub view: RefCell<View>,
    /// `trackAdded` payloads dispatched and not removed since: what a `trackAdded`
    /// listener added now has missed. Kept at dispatch time (not when the driver learns
    /// of a track) so that a late listener gets each track exactly once: from this
    /// list if it was told before the listener was added, live if after.
    pub told_tracks: RefCell<Vec<JsValue>>,
}

impl Shared {
    fn note_track(&self, name: &str, payload: &JsValue) {
        let track = |p: &JsValue| js_sys::Reflect::get(p, &"track".into()).unwrap_or_default();
        let mut told = self.told_tracks.borrow_mut();
        match name {
            "trackAdded" => told.push(payload.clone()),
            "trackRemoved" => {
                let gone = track(payload);
                told.retain(|p| track(p) != gone);
            }
            _ => {}
        }
    }

    /// Calls the listeners of each event, in order, with no state borrowed.
    pub fn dispatch(&self, emits: Vec<Emit>) {
        for Emit(name, payload) in emits {
            self.note_track(name, &payload);
            let fs = self.listeners.borrow().of(name);
            for f in fs {
                if let Err(e) = f.call1(&JsValue::UNDEFINED, &payload) {
                    web_sys::console::error_2(
                        &format!("convene: a '{name}' listener threw").into(),
                        &e,
                    );
                }
            }
        }
    }

    pub fn local_id(&self) -> String {
        self.view
            .borrow()
            .session
            .as_ref()
            .map(|s| s.roster.me().id.clone())
            .unwrap_or_default()
    }

    pub fn phase(&self) -> Phase {
        self.view.borrow().phase
    }
}

/// The driver's state. Owned by its task; modules get it as `&mut Ctx`.
pub struct Ctx {
    pub shared: Rc<Shared>,
    pub call: Call,
    pub base: String,
    pub token: String,
    pub socket: Option<Socket>,
    pub waiter: Option<oneshot::Sender<Result<(), SdkError>>>,
    pub media: MediaState,
    pub local: LocalTracks,
    /// `listAudience` calls waiting for the server's answers, oldest first.
    pub audience_waiters:
        std::collections::VecDeque<oneshot::Sender<(Vec<Participant>, Option<String>)>>,
    /// From `JoinOptions.iceTransportPolicy`, for every peer connection of the call.
    pub ice_policy: crate::options::IceTransportPolicy,
    /// From `JoinOptions.videoCodec`, for the camera and the screen share.
    pub video_codec: crate::codecs::VideoCodec,
    /// Send the camera in layers (see `simulcast`).
    pub simulcast: bool,
}

pub fn new_stream() -> MediaStream {
    MediaStream::new().expect("MediaStream is available in browsers")
}

impl Ctx {
    /// A new call, not yet connected; `joined` resolves once the server says `joined`.
    pub fn new(
        base: String,
        token: String,
        auto_reconnect: bool,
        joined: oneshot::Sender<Result<(), SdkError>>,
    ) -> (Self, UnboundedReceiver<Input>) {
        let (tx, rx) = futures_channel::mpsc::unbounded();
        let local_stream = new_stream();
        let screen_stream = new_stream();
        let shared = Rc::new(Shared {
            tx,
            listeners: RefCell::new(Listeners::default()),
            told_tracks: RefCell::new(Vec::new()),
            view: RefCell::new(View {
                phase: Phase::Connecting,
                session: None,
                local_stream: same(&local_stream),
                local_screen_stream: same(&screen_stream),
                media_error: None,
            }),
        });
        let ctx = Self {
            shared,
            call: Call::new(auto_reconnect),
            base,
            token,
            socket: None,
            waiter: Some(joined),
            media: MediaState::new(screen_stream),
            local: LocalTracks::new(local_stream),
            audience_waiters: Default::default(),
            ice_policy: Default::default(),
            video_codec: Default::default(),
            simulcast: true,
        };
        (ctx, rx)
    }

    pub fn send(&self, msg: &ClientMessage) {
        if let Some(s) = &self.socket {
            s.send(msg);
        }
    }

    pub fn emit(&self, emits: Vec<Emit>) {
        self.shared.dispatch(emits);
    }

    /// Keeps the view's phase equal to the call's.
    pub fn sync_phase(&self) {
        self.shared.view.borrow_mut().phase = self.call.phase();
    }

    pub fn ice_servers(&self) -> Vec<IceServer> {
        self.shared
            .view
            .borrow()
            .session
            .as_ref()
            .map(|s| s.ice_servers.clone())
            .unwrap_or_default()
    }

    /// Opens a signaling socket (a new generation: events of older ones are ignored).
    pub fn connect(&mut self, resume: bool) -> Result<(), SdkError> {
        let resume_token = self
            .shared
            .view
            .borrow()
            .session
            .as_ref()
            .filter(|_| resume)
            .map(|s| s.resume.token.clone());
        let url = endpoint::signaling_url(&self.base, &self.token, resume_token.as_deref())?;
        let gen = self.call.new_socket();
        self.socket = None;
        self.socket = Some(Socket::open(&url, gen, self.shared.tx.clone())?);
        Ok(())
    }
}

/// Runs until the room is left; then every closure and connection is released.
pub async fn run(mut ctx: Ctx, mut rx: UnboundedReceiver<Input>) {
    let tx = ctx.shared.tx.clone();
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
        handle(&mut ctx, input).await;
        if ctx.call.is_over() {
            break;
        }
    }
    // Inputs still queued get their answer: the call is over.
    rx.close();
    while let Ok(input) = rx.try_recv() {
        match input {
            Input::Device { reply, track, .. } => {
                crate::media::stop(track);
                let _ = reply.send(Err(SdkError::not_connected()));
            }
            Input::Publish(_, track) => crate::media::stop(Some(track)),
            Input::Leave(_, reply) => {
                let _ = reply.send(());
            }
            _ => {}
        }
    }
}

async fn handle(ctx: &mut Ctx, input: Input) {
    match input {
        Input::Socket(gen, ev) => {
            if !ctx.call.is_current_socket(gen) {
                return;
            }
            match ev {
                SocketEvent::Open => {}
                SocketEvent::Message(text) => match serde_json::from_str::<ServerMessage>(&text) {
                    Ok(msg) => crate::incoming::on_server(ctx, msg).await,
                    // A newer server may send types this SDK does not know yet.
                    Err(_) => {
                        web_sys::console::debug_1(&"convene: ignored a signaling frame".into())
                    }
                },
                SocketEvent::Closed => crate::reconnect::on_closed(ctx).await,
            }
        }
        Input::Peer(kind, gen, ev) => crate::media::on_peer(ctx, kind, gen, ev).await,
        Input::Retry => crate::reconnect::retry(ctx),
        Input::Ping => ctx.send(&ClientMessage::Ping { ts: None }),
        Input::Renegotiate => crate::media::offer_publish(ctx).await,
        Input::ScreenEnded => {
            crate::local_tracks::stop_local(ctx, TrackKind::Screen).await;
            ctx.send(&ClientMessage::SetMedia {
                audio: None,
                video: None,
                screen: Some(false),
            });
        }
        Input::Device {
            kind,
            on,
            track,
            reply,
        } => {
            let result = crate::local_tracks::device(ctx, kind, on, track).await;
            let _ = reply.send(result);
        }
        Input::Publish(kind, track) => {
            if let Err(e) = crate::local_tracks::publish(ctx, kind, track).await {
                web_sys::console::warn_1(&e.message.into());
            }
        }
        Input::Send(msg) => ctx.send(&msg),
        Input::Leave(reason, reply) => {
            ctx.send(&ClientMessage::Leave);
            finish(ctx, reason, None);
            let _ = reply.send(());
        }
        Input::ListAudience {
            after,
            limit,
            reply,
        } => {
            ctx.audience_waiters.push_back(reply);
            ctx.send(&ClientMessage::ListAudience { after, limit });
        }
        Input::Replay(listener, missed) => {
            // Not if `off` came first, and not for tracks removed meanwhile.
            if !ctx.shared.listeners.borrow().has("trackAdded", &listener) {
                return;
            }
            let told = ctx.shared.told_tracks.borrow().clone();
            for payload in missed.iter().filter(|p| told.contains(p)) {
                let _ = listener.call1(&JsValue::UNDEFINED, payload);
            }
        }
    }
}

/// The first join failed: the promise rejects and everything is released.
pub fn fail_join(ctx: &mut Ctx, e: SdkError) {
    if let Some(w) = ctx.waiter.take() {
        let _ = w.send(Err(e.clone()));
    }
    finish(ctx, e.code.clone().as_str(), Some(e));
}

/// The end of the call, whatever the cause: devices off, connections closed, closures
/// released, listeners told and then dropped.
pub fn finish(ctx: &mut Ctx, reason: &str, error: Option<SdkError>) {
    if !ctx.call.finish() {
        return;
    }
    ctx.sync_phase();
    let was_joined = ctx.call.has_joined();
    let mut emits = crate::media::release_all(ctx);
    ctx.socket = None;
    if let Some(w) = ctx.waiter.take() {
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
    ctx.emit(emits);
    ctx.shared.listeners.borrow_mut().clear();
}

fn left_error(reason: &str) -> SdkError {
    use convene_protocol::ErrorCode;
    match reason {
        "roomFull" => SdkError::server(ErrorCode::RoomFull, "the room is full"),
        "rateLimited" => SdkError::server(
            ErrorCode::RateLimited,
            "disconnected for sending too many messages",
        ),
        "roomExpired" => SdkError::server(ErrorCode::RoomExpired, "the room has ended"),
        "roomDeleted" => SdkError::server(ErrorCode::RoomNotFound, "the room was deleted"),
        "removed" | "roleRevoked" => {
            SdkError::server(ErrorCode::NotInvited, "you were removed from this room")
        }
        other => SdkError::connection_failed(format!("the server ended the call ({other})")),
    }
}
