//! The test driver of the session core: feeds inputs, delivers outputs through the real
//! `Delivery` into channels, and moves an injected clock to each deadline the session
//! asks for.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use chrono::TimeZone;
use convene_protocol::signal::ClientMessage;
use serde_json::Value;
use tokio::sync::mpsc::{self, Receiver};

use super::*;
use crate::model::Role;
use crate::rooms::delivery::Delivery;
use crate::rooms::outbound::Outbound;

pub(super) fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 10, 0, 0).unwrap()
}

pub(super) fn room(limit: u32) -> Room {
    Room::for_tests(t0(), t0() + chrono::Duration::days(1), limit)
}

pub(super) fn uid(u: &str) -> UserId {
    UserId::parse(u).unwrap()
}

pub(super) fn init(user: &str, role: Role) -> MemberInit {
    MemberInit {
        user: uid(user),
        role,
        jti: format!("t_{user}"),
        invite_id: "i".into(),
        name: None,
    }
}

pub(super) struct Harness {
    pub(super) s: Session,
    pub(super) now: Now,
    pub(super) delivery: Delivery,
    pub(super) rx: HashMap<String, Receiver<Outbound>>,
    pub(super) conns: HashMap<String, ConnId>,
    pub(super) next_conn: u64,
    pub(super) media: Vec<MediaCommand>,
    /// Room attribute changes the session asked the driver to store.
    pub(super) saved: Vec<BTreeMap<String, Option<String>>>,
    pub(super) ended: bool,
}

impl Harness {
    pub(super) fn new(room: Room) -> Self {
        let now = Now {
            mono: Instant::now(),
            wall: t0() + chrono::Duration::hours(1),
        };
        let config = SessionConfig {
            resume_grace: Duration::from_secs(15),
            ice: Default::default(),
            media: true,
        };
        Self {
            delivery: Delivery::new(room.id.clone(), None),
            s: Session::new(room, config, now),
            now,
            rx: HashMap::new(),
            conns: HashMap::new(),
            next_conn: 1,
            media: vec![],
            saved: vec![],
            ended: false,
        }
    }

    /// Joins `user` on a new connection whose queue holds `queue` frames.
    pub(super) fn join_with(
        &mut self,
        user: &str,
        role: Role,
        queue: usize,
        resume: Option<String>,
    ) -> Result<JoinOutcome, JoinRefusal> {
        let conn = ConnId(self.next_conn);
        self.next_conn += 1;
        let (tx, rx) = mpsc::channel(queue);
        let input = Input::Join {
            init: init(user, role),
            conn,
            resume,
        };
        let answer = self.s.handle(input, self.now);
        let Answer::Join(result) = answer else {
            panic!("a join answers with a join result");
        };
        if result.is_ok() {
            self.delivery.add_local(conn, uid(user), tx);
            self.rx.insert(user.to_string(), rx);
            self.conns.insert(user.to_string(), conn);
        }
        self.drain();
        result
    }

    pub(super) fn join(&mut self, user: &str, role: Role) {
        self.join_with(user, role, 256, None).unwrap();
    }

    pub(super) fn input(&mut self, input: Input) -> Answer {
        let a = self.s.handle(input, self.now);
        self.drain();
        a
    }

    pub(super) fn client(&mut self, user: &str, msg: ClientMessage) {
        let conn = self.conns[user];
        self.input(Input::Client {
            user: uid(user),
            conn,
            msg,
        });
    }

    /// `user` turns its microphone and camera on or off (`None`: unchanged).
    pub(super) fn set_media(&mut self, user: &str, audio: Option<bool>, video: Option<bool>) {
        self.client(
            user,
            ClientMessage::SetMedia {
                audio,
                video,
                screen: None,
            },
        );
    }

    /// Moves time forward by `d`, running every deadline on the way at its own time.
    pub(super) fn advance(&mut self, d: Duration) {
        let target = self.now.after(d);
        while let Some(t) = self.s.poll_timeout() {
            if t > target.mono {
                break;
            }
            let at = self.now.after(t.saturating_duration_since(self.now.mono));
            self.now = at;
            self.s.handle_timeout(at);
            self.drain();
        }
        self.now = target;
    }

    pub(super) fn drain(&mut self) {
        loop {
            let mut full = vec![];
            while let Some(o) = self.s.poll_output() {
                match o {
                    Output::Media(m) => self.media.push(m),
                    Output::SaveRoomAttributes(c) => self.saved.push(c),
                    Output::Ended => self.ended = true,
                    frame => self.delivery.deliver(frame, &mut full),
                }
            }
            if full.is_empty() {
                return;
            }
            for (user, conn) in full {
                self.s.handle(Input::QueueFull { user, conn }, self.now);
            }
        }
    }

    /// Frames `user` received since the last call (the close marker is skipped).
    pub(super) fn frames(&mut self, user: &str) -> Vec<Value> {
        let rx = self.rx.get_mut(user).expect("joined");
        let mut out = vec![];
        while let Ok(o) = rx.try_recv() {
            if let Outbound::Text(b) = o {
                out.push(serde_json::from_slice(&b).unwrap());
            }
        }
        out
    }

    pub(super) fn closed(&mut self, user: &str) -> bool {
        let rx = self.rx.get_mut(user).expect("joined");
        let mut closed = false;
        while let Ok(o) = rx.try_recv() {
            closed |= matches!(o, Outbound::Close);
        }
        closed
    }
}

pub(super) fn of_type<'a>(frames: &'a [Value], t: &str) -> Vec<&'a Value> {
    frames.iter().filter(|f| f["type"] == t).collect()
}
