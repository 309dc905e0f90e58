//! One room's relay, as seen from above: which members have which connections (on which
//! worker), what each publishes, and who receives what. A task owns this and turns the
//! session's requests into commands for the workers, and the workers' events into
//! messages for the session. It never touches a packet.

use crate::model::ice::IceConfig;
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use convene_protocol::signal::{PcKind, ServerMessage, VideoKind};
use convene_protocol::{ErrorBody, ErrorCode};
use tokio::sync::mpsc::{self, UnboundedReceiver, UnboundedSender};

use super::config::SfuConfig;
use super::demand::{need_of, Demand, Need};
use super::engine::Engine;
use super::pc_setup::Codec;
use super::port::{
    Gates, MediaEvent, MediaFactory, MediaKind, MediaSignal, PipeRequest, RelayEvent, RoomMedia,
    SharedTrack,
};
use super::stats;
use super::wire::{Cmd, ConnEvent, ConnKey, TrackKey};
use crate::ids::{RoomId, UserId};

/// Creates a relay per live session on the server's one engine.
pub struct SfuFactory {
    engine: Arc<Engine>,
    ice: IceConfig,
}

impl SfuFactory {
    /// Binds the media port and starts the workers.
    pub fn start(config: SfuConfig) -> std::io::Result<Self> {
        Ok(Self {
            engine: Engine::start(&config)?,
            ice: config.ice,
        })
    }

    /// The UDP port media uses (useful when the OS picked it).
    pub fn port(&self) -> u16 {
        self.engine.port()
    }

    /// Whether the media port is still bound and served by every worker.
    pub fn running(&self) -> bool {
        self.engine.running()
    }
}

impl MediaFactory for SfuFactory {
    fn create(&self, room: &RoomId, events: UnboundedSender<MediaEvent>) -> Box<dyn RoomMedia> {
        let (tx, rx) = mpsc::unbounded_channel();
        let (conn_tx, conn_rx) = mpsc::unbounded_channel();
        let ctl = RoomCtl {
            room: room.clone(),
            engine: self.engine.clone(),
            events,
            conn_tx,
            members: HashMap::new(),
            tracks: HashMap::new(),
            remote: HashMap::new(),
            shared: vec![],
            demand_at: None,
            repeat_at: None,
        };
        tokio::spawn(ctl.run(rx, conn_rx));
        Box::new(SfuRoom { tx })
    }

    fn ice(&self) -> IceConfig {
        self.ice.clone()
    }
}

enum RoomCmd {
    Signal {
        member: UserId,
        may_publish: bool,
        msg: MediaSignal,
    },
    Subscribe(UserId),
    Gates(UserId, Gates),
    Viewing {
        viewer: UserId,
        owner: UserId,
        kind: MediaKind,
        shown: bool,
    },
    Fit {
        viewer: UserId,
        owner: UserId,
        height: u32,
    },
    Remove(UserId),
    RemoteTracks(Vec<SharedTrack>),
    Pipe(PipeRequest),
    DropPipes(SocketAddr),
    Close,
}

/// The session's handle on its relay: every call only queues a command.
pub struct SfuRoom {
    tx: UnboundedSender<RoomCmd>,
}

impl RoomMedia for SfuRoom {
    fn signal(&mut self, member: &UserId, may_publish: bool, msg: MediaSignal) {
        let _ = self.tx.send(RoomCmd::Signal {
            member: member.clone(),
            may_publish,
            msg,
        });
    }
    fn subscribe(&mut self, member: &UserId) {
        let _ = self.tx.send(RoomCmd::Subscribe(member.clone()));
    }
    fn set_gates(&mut self, member: &UserId, gates: Gates) {
        let _ = self.tx.send(RoomCmd::Gates(member.clone(), gates));
    }
    fn set_viewing(&mut self, viewer: &UserId, owner: &UserId, kind: MediaKind, shown: bool) {
        let _ = self.tx.send(RoomCmd::Viewing {
            viewer: viewer.clone(),
            owner: owner.clone(),
            kind,
            shown,
        });
    }
    fn fit_video(&mut self, viewer: &UserId, owner: &UserId, height: u32) {
        let _ = self.tx.send(RoomCmd::Fit {
            viewer: viewer.clone(),
            owner: owner.clone(),
            height,
        });
    }
    fn remove_member(&mut self, member: &UserId) {
        let _ = self.tx.send(RoomCmd::Remove(member.clone()));
    }
    fn close(&mut self) {
        let _ = self.tx.send(RoomCmd::Close);
    }
    fn remote_tracks(&mut self, tracks: Vec<SharedTrack>) {
        let _ = self.tx.send(RoomCmd::RemoteTracks(tracks));
    }
    fn pipe(&mut self, req: PipeRequest) {
        let _ = self.tx.send(RoomCmd::Pipe(req));
    }
    fn drop_pipes(&mut self, to: SocketAddr) {
        let _ = self.tx.send(RoomCmd::DropPipes(to));
    }
}

impl Drop for SfuRoom {
    fn drop(&mut self) {
        let _ = self.tx.send(RoomCmd::Close);
    }
}

struct Member {
    publish: Option<ConnKey>,
    subscribe: Option<ConnKey>,
    gates: Gates,
    /// Others' tracks (owner, kind) this member does not show now: not sent to it,
    /// whichever receiving connection it has.
    hidden: HashSet<(UserId, MediaKind)>,
    /// How tall it shows others' cameras (see `simulcast`), by owner.
    fit: HashMap<UserId, u32>,
    /// What its own camera must carry, as told to it (see `demand`).
    demand: Demand,
    /// When its receiving connection opened: for a while after, a camera it has said
    /// no size for does not count as wanted as large as there is (`demand::need_of`).
    subscribed: Option<Instant>,
    _held: stats::Held,
}

struct Track {
    owner: UserId,
    kind: MediaKind,
    /// What its publisher sends, so what its viewers are offered.
    codec: Codec,
    source: ConnKey,
    /// Subscribers per worker other than the source's (each needs one copy).
    fanout: HashMap<u16, usize>,
    /// The subscribe connections this track is offered on (so adding and removing a
    /// leg are idempotent and the fan-out counts stay right).
    viewers: HashSet<ConnKey>,
    /// Those of `viewers` whose member does not show it now.
    hidden_by: HashSet<ConnKey>,
    /// Published on the home's relay, on another node (this is an edge's relay).
    remote: Option<Remote>,
    /// On the home: other nodes' relays it is sent to (their address, the pipe).
    exports: HashSet<(SocketAddr, u64)>,
}

/// A track received from the home's relay (see `port::RelayEvent`).
struct Remote {
    /// Its number there.
    id: u64,
    from: SocketAddr,
    /// Open while a member here shows it (see `sync_pipe`).
    pipe: Option<u64>,
}

impl Track {
    /// Whether subscribers are offered this track now. A screen share is offered only
    /// while it is on: when the sharer stops (or is stopped), it leaves the viewers'
    /// SDP, so their SDK says `trackRemoved` and no frozen screen stays behind. A camera
    /// or microphone stays offered while off (the tile shows it is off).
    fn offered(&self, gates: Gates) -> bool {
        self.kind != MediaKind::Screen || gates.get(MediaKind::Screen)
    }
}

struct RoomCtl {
    room: RoomId,
    engine: Arc<Engine>,
    events: UnboundedSender<MediaEvent>,
    conn_tx: UnboundedSender<ConnEvent>,
    members: HashMap<UserId, Member>,
    tracks: HashMap<TrackKey, Track>,
    /// On an edge: the home's track numbers, to ours.
    remote: HashMap<u64, TrackKey>,
    /// The tracks last told to other nodes (`RelayEvent::Tracks`).
    shared: Vec<SharedTrack>,
    /// When the publishers' camera needs are looked at next (see `tell_demand`).
    demand_at: Option<Instant>,
    /// When each publisher is next told its camera's need again, changed or not.
    repeat_at: Option<Instant>,
}

/// How long changes to who shows what gather before the camera needs are looked at.
const DEMAND_COALESCE: Duration = Duration::from_millis(100);
/// How often a publisher is told its camera's need again: a message lost while its
/// socket was down (or dropped from a full queue) is made good within this.
const DEMAND_REPEAT: Duration = Duration::from_secs(10);

impl RoomCtl {
    async fn run(
        mut self,
        mut rx: UnboundedReceiver<RoomCmd>,
        mut conn_rx: UnboundedReceiver<ConnEvent>,
    ) {
        // One timer for the whole life of the room, moved when `demand_at` moves.
        let sleep = tokio::time::sleep(Duration::from_secs(3600));
        tokio::pin!(sleep);
        let mut armed: Option<Instant> = None;
        loop {
            let wake = self.demand_at;
            if let Some(at) = wake.filter(|&at| armed != Some(at)) {
                sleep.as_mut().reset(tokio::time::Instant::from_std(at));
                armed = Some(at);
            }
            tokio::select! {
                cmd = rx.recv() => match cmd {
                    None | Some(RoomCmd::Close) => break,
                    Some(cmd) => self.command(cmd),
                },
                Some(ev) = conn_rx.recv() => {
                    // Levels and link figures, the frequent events, change no track.
                    let tracks = !matches!(ev, ConnEvent::AudioLevel { .. } | ConnEvent::Quality { .. });
                    self.conn_event(ev);
                    if !tracks {
                        continue;
                    }
                }
                () = &mut sleep, if wake.is_some() => {
                    armed = None;
                    self.tell_demand(Instant::now());
                    continue;
                }
            }
            self.share();
            // Who shows which camera may have changed: looked at soon, once for all the
            // changes until then (a thousand joins cost a handful of looks, not a
            // thousand walks over every viewer).
            let soon = Instant::now() + DEMAND_COALESCE;
            if self.demand_at.is_none_or(|at| at > soon) {
                self.demand_at = Some(soon);
            }
        }
        let users: Vec<UserId> = self.members.keys().cloned().collect();
        for u in users {
            self.remove(&u, false);
        }
        tracing::debug!(room = %self.room, "media relay closed");
    }

    /// Whether `source` is the connection `user` receives on now (an event about an
    /// older one, replaced by a reconnect, is stale).
    fn receives_on(&self, user: &UserId, source: ConnKey) -> bool {
        self.members
            .get(user)
            .is_some_and(|m| m.subscribe == Some(source))
    }

    fn send(&self, to: &UserId, msg: ServerMessage) {
        let _ = self.events.send(MediaEvent::Send {
            to: to.clone(),
            msg: Box::new(msg),
        });
    }

    fn fail(&self, to: &UserId, code: ErrorCode, message: impl Into<String>) {
        self.send(
            to,
            ServerMessage::Error {
                error: ErrorBody::new(code, message),
            },
        );
    }

    fn member(&mut self, user: &UserId) -> &mut Member {
        self.members.entry(user.clone()).or_insert_with(|| Member {
            publish: None,
            subscribe: None,
            gates: Gates::default(),
            hidden: HashSet::new(),
            fit: HashMap::new(),
            demand: Demand::default(),
            subscribed: None,
            _held: stats::Held::new(&stats::MEMBERS),
        })
    }

    fn command(&mut self, cmd: RoomCmd) {
        match cmd {
            RoomCmd::Signal {
                member,
                may_publish,
                msg,
            } => self.signal(&member, may_publish, msg),
            RoomCmd::Subscribe(user) => self.subscribe(&user),
            RoomCmd::Gates(user, gates) => {
                self.member(&user).gates = gates;
                let mine: Vec<TrackKey> = self
                    .tracks
                    .iter()
                    .filter(|(_, t)| t.owner == user && t.remote.is_none())
                    .map(|(k, _)| *k)
                    .collect();
                for t in mine {
                    let Some(track) = self.tracks.get(&t) else {
                        continue;
                    };
                    let (worker, kind, offered) =
                        (track.source.worker, track.kind, track.offered(gates));
                    self.engine.send(
                        worker,
                        Cmd::Gate {
                            track: t,
                            open: gates.get(kind),
                        },
                    );
                    self.offer_to_all(t, offered);
                }
            }
            RoomCmd::Viewing {
                viewer,
                owner,
                kind,
                shown,
            } => self.viewing(&viewer, owner, kind, shown),
            RoomCmd::Fit {
                viewer,
                owner,
                height,
            } => self.fit(&viewer, owner, height),
            RoomCmd::Remove(user) => self.remove(&user, false),
            RoomCmd::RemoteTracks(tracks) => self.remote_tracks(tracks),
            RoomCmd::Pipe(req) => self.pipe(req),
            RoomCmd::DropPipes(to) => {
                let pipes: Vec<PipeRequest> = (self.tracks.iter())
                    .flat_map(|(&track, t)| {
                        (t.exports.iter())
                            .filter(|(a, _)| *a == to)
                            .map(move |&(to, pipe)| PipeRequest {
                                track,
                                to,
                                pipe,
                                on: false,
                            })
                    })
                    .collect();
                for p in pipes {
                    self.pipe(p);
                }
            }
            RoomCmd::Close => {}
        }
    }

    fn signal(&mut self, user: &UserId, may_publish: bool, msg: MediaSignal) {
        match msg {
            MediaSignal::Offer {
                pc: PcKind::Publish,
                sdp,
                screen_track_ids,
            } => {
                if !may_publish {
                    return self.fail(
                        user,
                        ErrorCode::PermissionDenied,
                        "your role may not publish",
                    );
                }
                let key = match self.member(user).publish {
                    Some(k) => k,
                    None => {
                        let k = self
                            .engine
                            .open(user, PcKind::Publish, self.conn_tx.clone());
                        self.member(user).publish = Some(k);
                        k
                    }
                };
                self.engine.send(
                    key.worker,
                    Cmd::Offer {
                        key,
                        sdp,
                        screen_ids: screen_track_ids,
                    },
                );
            }
            MediaSignal::Offer { .. } => self.fail(
                user,
                ErrorCode::InvalidParameter,
                "the server makes the offers on the subscribe connection",
            ),
            MediaSignal::Answer {
                pc: PcKind::Subscribe,
                sdp,
            } => match self.members.get(user).and_then(|m| m.subscribe) {
                Some(key) => self.engine.send(key.worker, Cmd::Answer { key, sdp }),
                None => self.fail(
                    user,
                    ErrorCode::InvalidParameter,
                    "answer refused: no offer was made",
                ),
            },
            MediaSignal::Answer { .. } => self.fail(
                user,
                ErrorCode::InvalidParameter,
                "the client makes the offers on the publish connection",
            ),
            // The relay is ICE-lite: it learns the client's addresses from the client's
            // own checks, so trickled candidates are not needed.
            MediaSignal::Candidate { .. } => {}
        }
    }

    fn subscribe(&mut self, user: &UserId) {
        if self.member(user).subscribe.is_some() {
            return;
        }
        let key = self
            .engine
            .open(user, PcKind::Subscribe, self.conn_tx.clone());
        let m = self.member(user);
        m.subscribe = Some(key);
        m.subscribed = Some(Instant::now());
        let others: Vec<TrackKey> = self
            .tracks
            .iter()
            .filter(|(_, t)| {
                t.owner != *user && (t.remote.is_some() || t.offered(self.gates_of(&t.owner)))
            })
            .map(|(k, _)| *k)
            .collect();
        for t in others {
            self.add_leg(user, t);
        }
    }

    fn gates_of(&self, user: &UserId) -> Gates {
        self.members.get(user).map(|m| m.gates).unwrap_or_default()
    }

    /// Offers `track` to every subscriber but its owner (`on`), or takes it back from
    /// all of them.
    fn offer_to_all(&mut self, track: TrackKey, on: bool) {
        let Some(owner) = self.tracks.get(&track).map(|t| t.owner.clone()) else {
            return;
        };
        let subscribers: Vec<(UserId, ConnKey)> = self
            .members
            .iter()
            .filter(|(u, _)| **u != owner)
            .filter_map(|(u, m)| m.subscribe.map(|k| (u.clone(), k)))
            .collect();
        for (user, key) in subscribers {
            if on {
                self.add_leg(&user, track);
            } else {
                self.remove_leg(key, track);
            }
        }
    }

    /// `viewer` shows `owner`'s track of `kind`, or no longer does.
    fn viewing(&mut self, viewer: &UserId, owner: UserId, kind: MediaKind, shown: bool) {
        let Some(m) = self.members.get_mut(viewer) else {
            return;
        };
        let changed = if shown {
            m.hidden.remove(&(owner.clone(), kind))
        } else {
            m.hidden.insert((owner.clone(), kind))
        };
        let Some(key) = m.subscribe.filter(|_| changed) else {
            return;
        };
        let tracks: Vec<TrackKey> = (self.tracks.iter_mut())
            .filter(|(_, t)| t.owner == owner && t.kind == kind && t.viewers.contains(&key))
            .map(|(&track, t)| {
                if shown {
                    t.hidden_by.remove(&key);
                } else {
                    t.hidden_by.insert(key);
                }
                track
            })
            .collect();
        for track in tracks {
            // Shown: its pipe (if it comes through one) is open before the leg resumes.
            if shown {
                self.sync_pipe(track);
            }
            let paused = !shown;
            self.engine
                .send(key.worker, Cmd::Pause { key, track, paused });
            if !shown {
                self.sync_pipe(track);
            }
        }
    }

    /// Tells each publisher how large its camera is shown now (see `demand`): by the
    /// members here that show it, or as large as there is when other nodes' relays
    /// receive it (their viewers' sizes are not known here). Walks every viewer of every
    /// camera: at most once per `DEMAND_COALESCE` while members come and go, plus the
    /// waits and repeats.
    fn tell_demand(&mut self, now: Instant) {
        let by_conn: HashMap<ConnKey, &Member> = (self.members.values())
            .filter_map(|m| m.subscribe.map(|k| (k, m)))
            .collect();
        let mut needs: HashMap<UserId, Need> = HashMap::new();
        // The first moment a new viewer's grace ends (see `need_of`), to look again then.
        let mut grace_ends: Option<Instant> = None;
        for t in self.tracks.values() {
            if t.kind != MediaKind::Video || t.remote.is_some() {
                continue;
            }
            let need = if t.exports.is_empty() {
                let shown = (t.viewers.iter())
                    .filter(|k| !t.hidden_by.contains(k))
                    .filter_map(|k| by_conn.get(k))
                    .map(|m| (m.fit.get(&t.owner).copied(), m.subscribed));
                let (need, ends) = need_of(shown, now);
                grace_ends = match (grace_ends, ends) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                need
            } else {
                Need::All
            };
            let n = needs.entry(t.owner.clone()).or_insert(need);
            *n = (*n).max(need);
        }
        let repeat = self.repeat_at.is_some_and(|at| now >= at);
        if repeat || self.repeat_at.is_none() {
            self.repeat_at = (!needs.is_empty()).then(|| now + DEMAND_REPEAT);
        }
        // A member whose camera track is gone (its connection is being replaced) is
        // still told what was decided, so the SDK's next encodings start from it.
        let told: Vec<(UserId, Need)> = (self.members.iter_mut())
            .filter_map(|(user, m)| {
                let told = match needs.get(user) {
                    Some(&need) => {
                        if repeat {
                            m.demand.resend();
                        }
                        m.demand.set(need, now)
                    }
                    None => m.demand.poll(now),
                };
                told.map(|n| (user.clone(), n))
            })
            .collect();
        self.demand_at = (self.members.values())
            .filter_map(|m| m.demand.deadline())
            .chain(grace_ends)
            .chain(self.repeat_at)
            .min();
        for (owner, need) in told {
            tracing::debug!(room = %self.room, %owner, ?need, "camera demand");
            self.send(
                &owner,
                ServerMessage::CameraDemand {
                    max_height: need.max_height(),
                },
            );
        }
    }

    /// How tall `viewer` shows `owner`'s camera: its legs are sent the layer that fits.
    fn fit(&mut self, viewer: &UserId, owner: UserId, height: u32) {
        let Some(m) = self.members.get_mut(viewer) else {
            return;
        };
        m.fit.insert(owner.clone(), height);
        let Some(key) = m.subscribe else {
            return;
        };
        for (&track, t) in &self.tracks {
            if t.owner == owner && t.kind == MediaKind::Video && t.viewers.contains(&key) {
                let max_height = Some(height);
                self.engine.send(
                    key.worker,
                    Cmd::Fit {
                        key,
                        track,
                        max_height,
                    },
                );
            }
        }
    }

    /// For a track from the home: its pipe is open while a viewer here shows it, and
    /// closed when none does (no viewer left, or each one hides it).
    fn sync_pipe(&mut self, track: TrackKey) {
        let Some(t) = self.tracks.get_mut(&track) else {
            return;
        };
        let needed = t.viewers.len() > t.hidden_by.len();
        let Some(r) = t.remote.as_mut().filter(|r| r.pipe.is_some() != needed) else {
            return;
        };
        let (pipe, cmd) = match r.pipe.take() {
            Some(pipe) => (pipe, Cmd::Unimport { track, pipe }),
            None => {
                let pipe = rand::random::<u64>();
                r.pipe = Some(pipe);
                let from = r.from;
                let kind = t.kind;
                (
                    pipe,
                    Cmd::Import {
                        track,
                        kind,
                        pipe,
                        from,
                    },
                )
            }
        };
        self.engine.send(t.source.worker, cmd);
        let _ = self.events.send(MediaEvent::Relay {
            relay: RelayEvent::Pipe(PipeRequest {
                track: r.id,
                to: self.engine.pipe_addr(),
                pipe,
                on: needed,
            }),
        });
    }

    fn add_leg(&mut self, user: &UserId, track: TrackKey) {
        let Some(m) = self.members.get(user) else {
            return;
        };
        let Some(key) = m.subscribe else {
            return;
        };
        let Some(t) = self.tracks.get_mut(&track) else {
            return;
        };
        if !t.viewers.insert(key) {
            return;
        }
        let paused = m.hidden.contains(&(t.owner.clone(), t.kind));
        let max_height = (t.kind == MediaKind::Video)
            .then(|| m.fit.get(&t.owner).copied())
            .flatten();
        if paused {
            t.hidden_by.insert(key);
        }
        // A track from the home comes through a pipe, open before the leg is added.
        self.sync_pipe(track);
        let Some(t) = self.tracks.get(&track) else {
            return;
        };
        self.engine.send(
            key.worker,
            Cmd::AddLeg {
                key,
                track,
                kind: t.kind,
                codec: t.codec,
                owner: t.owner.clone(),
                source: t.source,
                paused,
                max_height,
            },
        );
        let Some(t) = self.tracks.get_mut(&track) else {
            return;
        };
        if key.worker != t.source.worker {
            let n = t.fanout.entry(key.worker).or_insert(0);
            *n += 1;
            if *n == 1 {
                self.engine.send(
                    t.source.worker,
                    Cmd::Fanout {
                        track,
                        kind: t.kind,
                        worker: key.worker,
                        add: true,
                    },
                );
            }
        }
    }

    fn remove_leg(&mut self, key: ConnKey, track: TrackKey) {
        let Some(t) = self.tracks.get_mut(&track) else {
            self.engine.send(key.worker, Cmd::RemoveLeg { key, track });
            return;
        };
        if !t.viewers.remove(&key) {
            return;
        }
        t.hidden_by.remove(&key);
        self.engine.send(key.worker, Cmd::RemoveLeg { key, track });
        if key.worker != t.source.worker {
            if let Some(n) = t.fanout.get_mut(&key.worker) {
                *n -= 1;
                if *n == 0 {
                    t.fanout.remove(&key.worker);
                    self.engine.send(
                        t.source.worker,
                        Cmd::Fanout {
                            track,
                            kind: t.kind,
                            worker: key.worker,
                            add: false,
                        },
                    );
                }
            }
        }
        // The last viewer here that showed it is gone: so is its pipe.
        self.sync_pipe(track);
    }

    /// Stops forwarding `track` to everyone; `tell`: the session hears the member
    /// stopped sending it.
    fn unpublish(&mut self, track: TrackKey, tell: bool) {
        let subscribers: Vec<ConnKey> = self
            .tracks
            .get(&track)
            .map(|t| {
                self.members
                    .iter()
                    .filter(|(u, _)| **u != t.owner)
                    .filter_map(|(_, m)| m.subscribe)
                    .collect()
            })
            .unwrap_or_default();
        for key in subscribers {
            self.remove_leg(key, track);
        }
        if let Some(t) = self.tracks.remove(&track) {
            for (to, pipe) in t.exports {
                self.engine.send(
                    t.source.worker,
                    Cmd::Export {
                        track,
                        to,
                        pipe,
                        on: false,
                    },
                );
            }
            if tell {
                let _ = self.events.send(MediaEvent::Published {
                    member: t.owner,
                    kind: t.kind,
                    on: false,
                });
            }
        }
    }

    /// Stops forwarding what `user` publishes here (not its tracks from the home,
    /// which others here still watch).
    fn unpublish_all(&mut self, user: &UserId, tell: bool) {
        let mine: Vec<TrackKey> = self
            .tracks
            .iter()
            .filter(|(_, t)| t.owner == *user && t.remote.is_none())
            .map(|(k, _)| *k)
            .collect();
        for t in mine {
            self.unpublish(t, tell);
        }
    }

    fn remove(&mut self, user: &UserId, tell: bool) {
        self.unpublish_all(user, tell);
        // Its own subscriptions: the fan-out counts drop with them.
        if let Some(sub) = self.members.get(user).and_then(|m| m.subscribe) {
            let received: Vec<TrackKey> = self
                .tracks
                .iter()
                .filter(|(_, t)| t.owner != *user)
                .map(|(k, _)| *k)
                .collect();
            for t in received {
                self.remove_leg(sub, t);
            }
        }
        if let Some(m) = self.members.remove(user) {
            for key in [m.publish, m.subscribe].into_iter().flatten() {
                self.engine.send(key.worker, Cmd::Close { key });
            }
        }
    }

    /// On an edge: the home's tracks now. New ones are offered to the members here,
    /// gone ones taken back (their pipes close with their last viewer).
    fn remote_tracks(&mut self, tracks: Vec<SharedTrack>) {
        let want: HashSet<u64> = tracks.iter().map(|t| t.id).collect();
        let gone: Vec<(u64, TrackKey)> = (self.remote.iter())
            .filter(|(id, _)| !want.contains(id))
            .map(|(id, k)| (*id, *k))
            .collect();
        for (id, key) in gone {
            self.remote.remove(&id);
            self.unpublish(key, false);
        }
        for t in tracks {
            if self.remote.contains_key(&t.id) {
                continue;
            }
            let key = self.engine.new_track();
            // No connection publishes it here: its pipe's worker is its source.
            let source = ConnKey {
                worker: self.engine.pick_worker(),
                id: 0,
            };
            self.tracks.insert(
                key,
                Track {
                    owner: t.owner,
                    kind: t.kind,
                    codec: t.codec,
                    source,
                    fanout: HashMap::new(),
                    viewers: HashSet::new(),
                    hidden_by: HashSet::new(),
                    remote: Some(Remote {
                        id: t.id,
                        from: t.from,
                        pipe: None,
                    }),
                    exports: HashSet::new(),
                },
            );
            self.remote.insert(t.id, key);
            self.offer_to_all(key, true);
        }
    }

    /// On the home: another node's relay starts or stops receiving a track.
    fn pipe(&mut self, req: PipeRequest) {
        let Some(t) = (self.tracks.get_mut(&req.track)).filter(|t| t.remote.is_none()) else {
            return; // ended meanwhile: that node hears so with the next track list
        };
        let changed = if req.on {
            t.exports.insert((req.to, req.pipe))
        } else {
            t.exports.remove(&(req.to, req.pipe))
        };
        if changed {
            self.engine.send(
                t.source.worker,
                Cmd::Export {
                    track: req.track,
                    to: req.to,
                    pipe: req.pipe,
                    on: req.on,
                },
            );
        }
    }

    /// Tells other nodes the tracks published here that they may offer, when that
    /// list changed.
    fn share(&mut self) {
        let from = self.engine.pipe_addr();
        let mut now: Vec<SharedTrack> = (self.tracks.iter())
            .filter(|(_, t)| t.remote.is_none())
            .filter(|(_, t)| t.offered(self.gates_of(&t.owner)))
            .map(|(&id, t)| SharedTrack {
                id,
                owner: t.owner.clone(),
                kind: t.kind,
                codec: t.codec,
                from,
            })
            .collect();
        now.sort_by_key(|t| t.id);
        if now != self.shared {
            self.shared = now.clone();
            let _ = self.events.send(MediaEvent::Relay {
                relay: RelayEvent::Tracks { tracks: now },
            });
        }
    }

    fn conn_event(&mut self, ev: ConnEvent) {
        match ev {
            ConnEvent::Answer { user, sdp } => self.send(
                &user,
                ServerMessage::Answer {
                    pc: PcKind::Publish,
                    sdp,
                },
            ),
            ConnEvent::Offer { user, sdp } => self.send(
                &user,
                ServerMessage::Offer {
                    pc: PcKind::Subscribe,
                    sdp,
                },
            ),
            ConnEvent::Quality {
                user,
                source,
                window,
            } => {
                // Only from the member's current connections.
                let pc = self.members.get(&user).and_then(|m| {
                    if m.publish == Some(source) {
                        Some(PcKind::Publish)
                    } else if m.subscribe == Some(source) {
                        Some(PcKind::Subscribe)
                    } else {
                        None
                    }
                });
                if let Some(pc) = pc {
                    let _ = self.events.send(MediaEvent::LinkQuality {
                        member: user,
                        pc,
                        window,
                    });
                }
            }
            ConnEvent::AudioLevel { user, dbov, source } => {
                // Only from the member's current publish connection.
                if self
                    .members
                    .get(&user)
                    .is_some_and(|m| m.publish == Some(source))
                {
                    let _ = self
                        .events
                        .send(MediaEvent::AudioLevel { member: user, dbov });
                }
            }
            ConnEvent::Published {
                user,
                track,
                kind,
                codec,
                source,
            } => {
                // A late event from a connection the member no longer has is stale.
                let Some(m) = (self.members.get_mut(&user)).filter(|m| m.publish == Some(source))
                else {
                    return;
                };
                if kind == MediaKind::Video {
                    // A camera on a new connection: its SDK may have started again
                    // from every layer, so it hears what it needs again.
                    m.demand.resend();
                }
                let gates = m.gates;
                let old: Vec<TrackKey> = self
                    .tracks
                    .iter()
                    .filter(|(_, t)| t.owner == user && t.kind == kind)
                    .map(|(k, _)| *k)
                    .collect();
                for t in old {
                    self.unpublish(t, false);
                }
                self.tracks.insert(
                    track,
                    Track {
                        owner: user.clone(),
                        kind,
                        codec,
                        source,
                        fanout: HashMap::new(),
                        viewers: HashSet::new(),
                        hidden_by: HashSet::new(),
                        remote: None,
                        exports: HashSet::new(),
                    },
                );
                self.engine.send(
                    source.worker,
                    Cmd::Gate {
                        track,
                        open: gates.get(kind),
                    },
                );
                let offered = self.tracks.get(&track).is_some_and(|t| t.offered(gates));
                self.offer_to_all(track, offered);
                let _ = self.events.send(MediaEvent::Published {
                    member: user,
                    kind,
                    on: true,
                });
            }
            ConnEvent::Failed { user, role } => {
                tracing::debug!(room = %self.room, %user, ?role, "media connection failed");
                let Some(m) = self.members.get_mut(&user) else {
                    return;
                };
                match role {
                    PcKind::Publish => {
                        m.publish = None;
                        self.unpublish_all(&user, true);
                    }
                    PcKind::Subscribe => {
                        let Some(old) = m.subscribe.take() else {
                            return;
                        };
                        let received: Vec<TrackKey> = self
                            .tracks
                            .iter()
                            .filter(|(_, t)| t.owner != user)
                            .map(|(k, _)| *k)
                            .collect();
                        for t in received {
                            self.remove_leg(old, t);
                        }
                    }
                }
            }
            ConnEvent::Refused { user, message } => {
                self.fail(&user, ErrorCode::InvalidParameter, message)
            }
            ConnEvent::Unplayable {
                user,
                source,
                codecs,
            } => {
                if !self.receives_on(&user, source) {
                    return;
                }
                let names: Vec<&str> = codecs.iter().map(|c| c.mime()).collect();
                self.fail(
                    &user,
                    ErrorCode::CodecUnsupported,
                    format!(
                        "this browser cannot play {} (its answer left the codec out), which \
                         another participant sends: that track is not shown here",
                        names.join(" or ")
                    ),
                )
            }
            ConnEvent::LinkPaused {
                user,
                source,
                tracks,
                paused,
            } => {
                if !self.receives_on(&user, source) {
                    return;
                }
                for track in tracks {
                    let Some(t) = self.tracks.get(&track) else {
                        continue;
                    };
                    let kind = match t.kind {
                        MediaKind::Screen => VideoKind::Screen,
                        _ => VideoKind::Video,
                    };
                    let participant_id = t.owner.to_string();
                    let msg = if paused {
                        ServerMessage::TrackPaused {
                            participant_id,
                            kind,
                        }
                    } else {
                        ServerMessage::TrackResumed {
                            participant_id,
                            kind,
                        }
                    };
                    self.send(&user, msg);
                }
            }
        }
    }
}
