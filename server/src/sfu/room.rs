//! One room's relay: who is connected for media, what is published, and who receives
//! it. A task owns this state; the session reaches it through `SfuRoom`, whose calls
//! only queue a command.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use convene_protocol::signal::IceServer;
use tokio::sync::mpsc::{self, UnboundedReceiver, UnboundedSender};
use webrtc::media_stream::track_remote::TrackRemote;

use super::config::{Ports, SfuConfig};
use super::forward::Published;
use super::member::{self, MemberCmd};
use super::port::{Gates, MediaEvent, MediaFactory, MediaKind, MediaSignal, RoomMedia};
use crate::ids::{RoomId, UserId};

pub enum RoomCmd {
    Signal {
        member: UserId,
        may_publish: bool,
        msg: MediaSignal,
    },
    Subscribe(UserId),
    Gates(UserId, Gates),
    Remove(UserId),
    Close,
    TrackArrived {
        member: UserId,
        kind: MediaKind,
        remote: Arc<dyn TrackRemote>,
    },
    PublisherGone(UserId),
    /// A track finished starting (see TrackArrived).
    Published(Arc<Published>),
}

/// Creates a relay per live session; shared by all sessions of the server.
pub struct SfuFactory {
    config: Arc<SfuConfig>,
    ports: Arc<Ports>,
}

impl SfuFactory {
    pub fn new(config: SfuConfig) -> Self {
        Self {
            config: Arc::new(config),
            ports: Arc::new(Ports::default()),
        }
    }
}

impl MediaFactory for SfuFactory {
    fn create(&self, room: &RoomId, events: UnboundedSender<MediaEvent>) -> Box<dyn RoomMedia> {
        let (tx, rx) = mpsc::unbounded_channel();
        let actor = RoomActor {
            room: room.clone(),
            config: self.config.clone(),
            ports: self.ports.clone(),
            events,
            self_tx: tx.clone(),
            members: HashMap::new(),
            published: HashMap::new(),
        };
        tokio::spawn(actor.run(rx));
        Box::new(SfuRoom { tx })
    }

    fn ice_servers(&self) -> Vec<IceServer> {
        self.config.ice_servers.clone()
    }
}

/// The session's handle on its relay.
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
    fn remove_member(&mut self, member: &UserId) {
        let _ = self.tx.send(RoomCmd::Remove(member.clone()));
    }
    fn close(&mut self) {
        let _ = self.tx.send(RoomCmd::Close);
    }
}

impl Drop for SfuRoom {
    fn drop(&mut self) {
        let _ = self.tx.send(RoomCmd::Close);
    }
}

struct Entry {
    tx: UnboundedSender<MemberCmd>,
    subscribed: bool,
    gates: Gates,
}

struct RoomActor {
    room: RoomId,
    config: Arc<SfuConfig>,
    ports: Arc<Ports>,
    events: UnboundedSender<MediaEvent>,
    self_tx: UnboundedSender<RoomCmd>,
    members: HashMap<UserId, Entry>,
    published: HashMap<(UserId, MediaKind), Arc<Published>>,
}

impl RoomActor {
    async fn run(mut self, mut rx: UnboundedReceiver<RoomCmd>) {
        while let Some(cmd) = rx.recv().await {
            match cmd {
                RoomCmd::Close => break,
                cmd => self.handle(cmd),
            }
        }
        for (_, e) in self.members.drain() {
            let _ = e.tx.send(MemberCmd::Close);
        }
        tracing::debug!(room = %self.room, "media relay closed");
    }

    fn entry(&mut self, member: &UserId) -> &mut Entry {
        if !self.members.contains_key(member) {
            let (tx, rx) = mpsc::unbounded_channel();
            let ctx = member::Ctx {
                user: member.clone(),
                config: self.config.clone(),
                ports: self.ports.clone(),
                events: self.events.clone(),
                room: self.self_tx.clone(),
            };
            tokio::spawn(member::run(ctx, rx));
            self.members.insert(
                member.clone(),
                Entry {
                    tx,
                    subscribed: false,
                    gates: Gates::default(),
                },
            );
        }
        self.members.get_mut(member).expect("inserted above")
    }

    fn handle(&mut self, cmd: RoomCmd) {
        match cmd {
            RoomCmd::Signal {
                member,
                may_publish,
                msg,
            } => {
                let _ = self
                    .entry(&member)
                    .tx
                    .send(MemberCmd::Signal { may_publish, msg });
            }
            RoomCmd::Subscribe(member) => {
                let others: Vec<Arc<Published>> = self
                    .published
                    .values()
                    .filter(|p| p.owner != member)
                    .cloned()
                    .collect();
                let e = self.entry(&member);
                if e.subscribed {
                    return;
                }
                e.subscribed = true;
                for p in others {
                    let _ = e.tx.send(MemberCmd::AddTrack(p));
                }
            }
            RoomCmd::Gates(member, gates) => {
                if let Some(e) = self.members.get_mut(&member) {
                    e.gates = gates;
                }
                for p in self.published.values().filter(|p| p.owner == member) {
                    p.gate.store(gates.get(p.kind), Ordering::Relaxed);
                }
            }
            RoomCmd::TrackArrived {
                member,
                kind,
                remote,
            } => {
                let Some(gates) = self.members.get(&member).map(|e| e.gates) else {
                    return; // left meanwhile
                };
                let actor_tx = self.self_tx.clone();
                // Published::start is async (it reads the SSRC); finish in a task and
                // come back with the result, so this loop never waits.
                tokio::spawn(async move {
                    let p = Published::start(member.clone(), kind, remote).await;
                    p.gate.store(gates.get(kind), Ordering::Relaxed);
                    let _ = actor_tx.send(RoomCmd::Published(p));
                });
            }
            RoomCmd::Published(p) => self.publish(p),
            RoomCmd::PublisherGone(member) => {
                self.unpublish_all(&member, true);
                if let Some(e) = self.members.get(&member) {
                    let _ = e.tx.send(MemberCmd::ClosePublish);
                }
            }
            RoomCmd::Remove(member) => {
                self.unpublish_all(&member, false);
                for p in self.published.values() {
                    p.remove_subscriber(&member);
                }
                if let Some(e) = self.members.remove(&member) {
                    let _ = e.tx.send(MemberCmd::Close);
                }
            }
            RoomCmd::Close => {}
        }
    }

    fn publish(&mut self, p: Arc<Published>) {
        let key = (p.owner.clone(), p.kind);
        if !self.members.contains_key(&p.owner) {
            return;
        }
        if self.published.contains_key(&key) {
            self.unpublish(&key, false);
        }
        for (user, e) in &self.members {
            if *user != p.owner && e.subscribed {
                let _ = e.tx.send(MemberCmd::AddTrack(p.clone()));
            }
        }
        let _ = self.events.send(MediaEvent::Published {
            member: p.owner.clone(),
            kind: p.kind,
            on: true,
        });
        self.published.insert(key, p);
    }

    fn unpublish(&mut self, key: &(UserId, MediaKind), tell: bool) {
        if self.published.remove(key).is_none() {
            return;
        }
        for (user, e) in &self.members {
            if *user != key.0 {
                let _ = e.tx.send(MemberCmd::RemoveTrack(key.0.clone(), key.1));
            }
        }
        if tell {
            let _ = self.events.send(MediaEvent::Published {
                member: key.0.clone(),
                kind: key.1,
                on: false,
            });
        }
    }

    fn unpublish_all(&mut self, member: &UserId, tell: bool) {
        let keys: Vec<_> = self
            .published
            .keys()
            .filter(|(u, _)| u == member)
            .cloned()
            .collect();
        for k in keys {
            self.unpublish(&k, tell);
        }
    }
}
