//! A session's media relays, one per node with members that receive media (see
//! `sfu::port::RelayEvent`): the driver's half. The home's relay receives every
//! publisher; a member whose socket is on another node when it subscribes receives on
//! that node's relay, and keeps receiving there until it is removed (a member that
//! resumes keeps its browser's connections, wherever its new socket is). So what
//! concerns a member's receiving (its subscribe connection, what it shows) goes to that
//! node, with the room's frames (`Delivery`), and everything else stays with the home's
//! relay. The home relay's track list goes to every other node with members; their
//! relays' requests for pipes come back here.

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;

use convene_protocol::signal::PcKind;

use super::delivery::Delivery;
use super::session::MediaCommand;
use crate::ids::{NodeId, UserId};
use crate::sfu::port::{MediaEvent, RelayCmd, RelayEvent, RoomMedia, SharedTrack};

pub(super) struct Relays {
    /// The home's relay (`None`: signaling only).
    home: Option<Box<dyn RoomMedia>>,
    /// Its tracks, as it last told them.
    tracks: Vec<SharedTrack>,
    /// Each other node's relay address, from its pipe requests (to stop its pipes
    /// when that node is gone).
    relays: HashMap<NodeId, SocketAddr>,
    /// Members that receive on another node's relay, and which, from their
    /// subscription until their removal.
    receiving: HashMap<UserId, NodeId>,
}

impl Relays {
    pub fn new(home: Option<Box<dyn RoomMedia>>) -> Self {
        Self {
            home,
            tracks: vec![],
            relays: HashMap::new(),
            receiving: HashMap::new(),
        }
    }

    /// Carries out one of the session's media commands, on this node or the member's.
    pub fn command(&mut self, delivery: &Delivery, cmd: MediaCommand) {
        let Some(home) = self.home.as_deref_mut() else {
            return;
        };
        match cmd {
            MediaCommand::Signal {
                user,
                may_publish,
                signal,
            } => match self.receiving.get(&user) {
                Some(node) if signal.pc() == PcKind::Subscribe => {
                    let cmd = RelayCmd::Signal {
                        member: user,
                        msg: signal,
                    };
                    delivery.relay_cmd(node, cmd)
                }
                _ => home.signal(&user, may_publish, signal),
            },
            MediaCommand::Subscribe(user) => {
                // Already receiving somewhere: there (subscribing is idempotent).
                let node = match self.receiving.get(&user) {
                    Some(node) => Some(node.clone()),
                    None => delivery.edge_of(&user).cloned(),
                };
                match node {
                    Some(node) => {
                        let tracks = self.tracks.clone();
                        delivery.relay_cmd(&node, RelayCmd::Tracks { tracks });
                        let cmd = RelayCmd::Subscribe {
                            member: user.clone(),
                        };
                        delivery.relay_cmd(&node, cmd);
                        self.receiving.insert(user, node);
                    }
                    None => home.subscribe(&user),
                }
            }
            MediaCommand::SetGates(user, gates) => home.set_gates(&user, gates),
            MediaCommand::RemoveMember(user) => {
                if let Some(node) = self.receiving.remove(&user) {
                    let cmd = RelayCmd::Remove {
                        member: user.clone(),
                    };
                    delivery.relay_cmd(&node, cmd);
                }
                home.remove_member(&user)
            }
            MediaCommand::SetViewing {
                viewer,
                owner,
                kind,
                shown,
            } => match self.receiving.get(&viewer) {
                Some(node) => {
                    let cmd = RelayCmd::Viewing {
                        viewer,
                        owner,
                        kind,
                        shown,
                    };
                    delivery.relay_cmd(node, cmd)
                }
                None => home.set_viewing(&viewer, &owner, kind, shown),
            },
            MediaCommand::FitVideo {
                viewer,
                owner,
                height,
            } => match self.receiving.get(&viewer) {
                Some(node) => {
                    let cmd = RelayCmd::FitVideo {
                        viewer,
                        owner,
                        height,
                    };
                    delivery.relay_cmd(node, cmd)
                }
                None => home.fit_video(&viewer, &owner, height),
            },
        }
    }

    /// An event of the home's relay: the session's (returned), or its track list,
    /// which goes to every other node with members (sockets, or members receiving).
    pub fn home_event(&mut self, delivery: &Delivery, ev: MediaEvent) -> Option<MediaEvent> {
        match ev {
            MediaEvent::Relay {
                relay: RelayEvent::Tracks { tracks },
            } => {
                let nodes: BTreeSet<&NodeId> = delivery
                    .edge_nodes()
                    .chain(self.receiving.values())
                    .collect();
                for node in nodes {
                    let tracks = tracks.clone();
                    delivery.relay_cmd(node, RelayCmd::Tracks { tracks });
                }
                self.tracks = tracks;
                None
            }
            ev => Some(ev),
        }
    }

    /// An event of `node`'s relay: a pipe request, or one for the session (returned).
    /// Only what such a relay makes is taken: it holds no publisher.
    pub fn edge_event(
        &mut self,
        delivery: &Delivery,
        node: NodeId,
        ev: MediaEvent,
    ) -> Option<MediaEvent> {
        match ev {
            // A subscription reached that node after the member's last socket there had
            // gone (and the room with it): subscribe it again where it is now.
            MediaEvent::Relay {
                relay: RelayEvent::NotReceiving { member },
            } => {
                if self.receiving.get(&member) == Some(&node) {
                    self.receiving.remove(&member);
                    if delivery.has_user(&member) {
                        self.command(delivery, MediaCommand::Subscribe(member));
                    }
                }
                None
            }
            MediaEvent::Relay {
                relay: RelayEvent::Pipe(req),
            } => {
                if let Some(home) = self.home.as_deref_mut() {
                    self.relays.insert(node, req.to);
                    home.pipe(req);
                }
                None
            }
            ev @ (MediaEvent::Send { .. } | MediaEvent::LinkQuality { .. }) => Some(ev),
            _ => None,
        }
    }

    /// `node` is gone (or was taken for gone): so are the pipes to its relay, and its
    /// members' receiving there. Should it be alive, its relay is told to drop them:
    /// their connections there close, and their browsers rejoin for new ones.
    pub fn node_gone(&mut self, delivery: &Delivery, node: &NodeId) {
        let there: Vec<UserId> = (self.receiving.iter())
            .filter(|(_, n)| *n == node)
            .map(|(u, _)| u.clone())
            .collect();
        for member in there {
            self.receiving.remove(&member);
            delivery.relay_cmd(node, RelayCmd::Remove { member });
        }
        if let (Some(home), Some(to)) = (self.home.as_deref_mut(), self.relays.remove(node)) {
            home.drop_pipes(to);
        }
    }

    /// Closes the home's relay (the session has ended; other nodes' relays close as
    /// their rooms there end).
    pub fn close(&mut self) {
        if let Some(mut m) = self.home.take() {
            m.close();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tokio::sync::mpsc;

    use super::*;
    use crate::ids::{ConnId, RoomId, UserId};
    use crate::rooms::remote::{FrameKind, Sink};
    use crate::sfu::port::{Codec, Gates, MediaKind, MediaSignal, PipeRequest};

    /// The home's relay, as a list of what it was asked.
    #[derive(Clone, Default)]
    struct Calls(Arc<Mutex<Vec<String>>>);

    impl Calls {
        fn take(&self) -> Vec<String> {
            std::mem::take(&mut self.0.lock().unwrap())
        }
        fn push(&self, s: String) {
            self.0.lock().unwrap().push(s);
        }
    }

    impl RoomMedia for Calls {
        fn signal(&mut self, member: &UserId, _: bool, msg: MediaSignal) {
            self.push(format!("signal {member} {:?}", msg.pc()));
        }
        fn subscribe(&mut self, member: &UserId) {
            self.push(format!("subscribe {member}"));
        }
        fn set_gates(&mut self, member: &UserId, _: Gates) {
            self.push(format!("gates {member}"));
        }
        fn set_viewing(&mut self, viewer: &UserId, _: &UserId, _: MediaKind, _: bool) {
            self.push(format!("viewing {viewer}"));
        }
        fn fit_video(&mut self, viewer: &UserId, _: &UserId, height: u32) {
            self.push(format!("fit {viewer} {height}"));
        }
        fn remove_member(&mut self, member: &UserId) {
            self.push(format!("remove {member}"));
        }
        fn close(&mut self) {
            self.push("close".into());
        }
        fn pipe(&mut self, req: PipeRequest) {
            self.push(format!("pipe {} {} {}", req.track, req.to, req.on));
        }
        fn drop_pipes(&mut self, to: SocketAddr) {
            self.push(format!("drop pipes {to}"));
        }
    }

    fn user(u: &str) -> UserId {
        UserId::parse(u).unwrap()
    }

    fn answer(pc: PcKind) -> MediaSignal {
        MediaSignal::Answer {
            pc,
            sdp: "v=0".into(),
        }
    }

    #[test]
    fn a_member_on_another_node_receives_there_and_publishes_here() {
        let calls = Calls::default();
        let mut relays = Relays::new(Some(Box::new(calls.clone())));
        let (edges, mut frames) = mpsc::unbounded_channel();
        let mut d = Delivery::new(RoomId::parse("r").unwrap(), Some(edges));
        let (tx, _local) = mpsc::channel(8);
        d.add(ConnId(1), user("here"), Sink::Local(tx));
        let n1 = NodeId::parse("n1").unwrap();
        let edge = Sink::Edge {
            node: n1.clone(),
            edge_conn: ConnId(9),
        };
        d.add(ConnId(2), user("there"), edge);
        let mut to_n1 = || {
            let mut got = vec![];
            while let Ok(f) = frames.try_recv() {
                assert_eq!(f.to, n1);
                match f.kind {
                    FrameKind::Media { cmd } => got.push(cmd),
                    FrameKind::Joined { .. } => {}
                    other => panic!("{other:?}"),
                }
            }
            got
        };
        to_n1();

        // The home's relay has a track: the other nodes hear of it.
        let track = SharedTrack {
            id: 7,
            owner: user("here"),
            kind: MediaKind::Video,
            codec: Codec::Vp8,
            from: "127.0.0.1:7882".parse().unwrap(),
        };
        let tracks = vec![track];
        let ev = MediaEvent::Relay {
            relay: RelayEvent::Tracks {
                tracks: tracks.clone(),
            },
        };
        assert_eq!(relays.home_event(&d, ev), None);
        assert_eq!(
            to_n1(),
            [RelayCmd::Tracks {
                tracks: tracks.clone()
            }]
        );

        // Receiving is done on the member's node, with the track list first...
        let there = user("there");
        relays.command(&d, MediaCommand::Subscribe(there.clone()));
        let signal = MediaCommand::Signal {
            user: there.clone(),
            may_publish: true,
            signal: answer(PcKind::Subscribe),
        };
        relays.command(&d, signal);
        let viewing = MediaCommand::SetViewing {
            viewer: there.clone(),
            owner: user("here"),
            kind: MediaKind::Video,
            shown: false,
        };
        relays.command(&d, viewing);
        let fit = MediaCommand::FitVideo {
            viewer: there.clone(),
            owner: user("here"),
            height: 180,
        };
        relays.command(&d, fit);
        let sent = to_n1();
        assert_eq!(sent.len(), 5, "{sent:?}");
        assert_eq!(sent[0], RelayCmd::Tracks { tracks });
        assert_eq!(
            sent[1],
            RelayCmd::Subscribe {
                member: there.clone()
            }
        );
        assert!(matches!(&sent[2], RelayCmd::Signal { member, .. } if *member == there));
        assert!(matches!(&sent[3], RelayCmd::Viewing { viewer, .. } if *viewer == there));
        assert!(
            matches!(&sent[4], RelayCmd::FitVideo { viewer, height: 180, .. } if *viewer == there)
        );
        assert_eq!(calls.take(), Vec::<String>::new());

        // ...publishing at the home, and so are a local member's both.
        let publish = MediaCommand::Signal {
            user: there.clone(),
            may_publish: true,
            signal: answer(PcKind::Publish),
        };
        relays.command(&d, publish);
        relays.command(&d, MediaCommand::SetGates(there.clone(), Gates::default()));
        relays.command(&d, MediaCommand::Subscribe(user("here")));
        let fit = MediaCommand::FitVideo {
            viewer: user("here"),
            owner: there.clone(),
            height: 360,
        };
        relays.command(&d, fit);
        assert_eq!(
            calls.take(),
            [
                "signal there Publish",
                "gates there",
                "subscribe here",
                "fit here 360"
            ]
        );
        assert_eq!(to_n1(), []);

        // Its node's relay asks for a pipe; a publisher's event from it is not taken
        // (it holds none), a frame for the member is.
        let req = PipeRequest {
            track: 7,
            to: "127.0.0.1:7883".parse().unwrap(),
            pipe: 42,
            on: true,
        };
        let pipe = MediaEvent::Relay {
            relay: RelayEvent::Pipe(req),
        };
        assert_eq!(relays.edge_event(&d, n1.clone(), pipe), None);
        let forged = MediaEvent::Published {
            member: there.clone(),
            kind: MediaKind::Video,
            on: true,
        };
        assert_eq!(relays.edge_event(&d, n1.clone(), forged), None);
        let quality = MediaEvent::LinkQuality {
            member: there.clone(),
            pc: PcKind::Subscribe,
            window: Default::default(),
        };
        assert_eq!(
            relays.edge_event(&d, n1.clone(), quality.clone()),
            Some(quality)
        );
        assert_eq!(calls.take(), ["pipe 7 127.0.0.1:7883 true"]);

        // Its socket drops (it may resume elsewhere): it still receives on n1, which
        // still hears of the home's tracks.
        d.remove(ConnId(2));
        assert_eq!(d.edge_of(&there), None);
        let viewing = MediaCommand::SetViewing {
            viewer: there.clone(),
            owner: user("here"),
            kind: MediaKind::Video,
            shown: true,
        };
        relays.command(&d, viewing);
        let ev = MediaEvent::Relay {
            relay: RelayEvent::Tracks { tracks: vec![] },
        };
        assert_eq!(relays.home_event(&d, ev), None);
        let sent = to_n1();
        assert!(
            matches!(&sent[..], [RelayCmd::Viewing { .. }, RelayCmd::Tracks { tracks }] if tracks.is_empty()),
            "{sent:?}"
        );
        assert_eq!(calls.take(), Vec::<String>::new());

        // Removed: at both.
        relays.command(&d, MediaCommand::RemoveMember(there.clone()));
        assert_eq!(to_n1(), [RelayCmd::Remove { member: there }]);
        assert_eq!(calls.take(), ["remove there"]);

        // A subscription reaches n1 after the member's last socket there went (the
        // room with it): n1 says so, and the member subscribes again where it is now.
        let late = user("late");
        let edge = |c| Sink::Edge {
            node: n1.clone(),
            edge_conn: ConnId(c),
        };
        d.add(ConnId(3), late.clone(), edge(8));
        relays.command(&d, MediaCommand::Subscribe(late.clone()));
        assert_eq!(to_n1().len(), 2);
        d.remove(ConnId(3));
        let (tx, _local) = mpsc::channel(8);
        d.add(ConnId(4), late.clone(), Sink::Local(tx));
        let relay = RelayEvent::NotReceiving {
            member: late.clone(),
        };
        let ev = MediaEvent::Relay { relay };
        assert_eq!(relays.edge_event(&d, n1.clone(), ev), None);
        assert_eq!(calls.take(), ["subscribe late"]);

        // n1 taken for gone while a member receives there: n1 is told to drop it (should
        // it be alive), and the pipes to it stop.
        let third = user("third");
        d.add(ConnId(5), third.clone(), edge(7));
        relays.command(&d, MediaCommand::Subscribe(third.clone()));
        assert_eq!(to_n1().len(), 2);
        relays.node_gone(&d, &n1);
        assert_eq!(to_n1(), [RelayCmd::Remove { member: third }]);
        assert_eq!(calls.take(), ["drop pipes 127.0.0.1:7883"]);
    }
}
