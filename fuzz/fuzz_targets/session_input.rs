//! The session core: any sequence of joins, client messages, drops, kicks, floods,
//! room changes, audio levels and link windows from the relay, and time passing. It never
//! panics, whatever arrives in whatever order,
//! and once it says it ended it stays ended.
#![no_main]

use std::time::{Duration, Instant};

use chrono::TimeZone;
use convene::clock::Now;
use convene::ids::{ConnId, RoomId, UserId};
use convene::model::{JoinPolicy, Role, Room, RoomType};
use convene::rooms::session::{Input, MemberInit, Output, Session, SessionConfig};
use convene::sfu::port::MediaEvent;
use convene::sfu::quality::LinkWindow;
use convene_protocol::signal::{ClientMessage, PcKind};
use libfuzzer_sys::fuzz_target;

const USERS: [&str; 4] = ["a", "b", "c", "d"];
const ROLES: [Role; 4] = [
    Role::Presenter,
    Role::Collaborator,
    Role::Attendee,
    Role::Consumer,
];

fn room() -> Room {
    let t0 = chrono::Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap();
    Room {
        id: RoomId::parse("r").unwrap(),
        version: 1,
        name: String::new(),
        created_at: t0,
        valid_from: t0,
        valid_until: t0 + chrono::Duration::hours(2),
        max_participants: Some(3),
        join_policy: JoinPolicy::Invite,
        is_message_disabled: false,
        is_public_visible: false,
        cover_url: None,
        destroy_delay_seconds: 1,
        announce_limit: 2,
        attributes: Default::default(),
        room_type: RoomType::Live,
        owner_id: None,
        max_seat_count: 3,
        take_seat_mode: Default::default(),
    }
}

fuzz_target!(|data: &[u8]| {
    let mut now = Now {
        mono: Instant::now(),
        wall: chrono::Utc.with_ymd_and_hms(2026, 3, 1, 10, 0, 0).unwrap(),
    };
    let config = SessionConfig {
        resume_grace: Duration::from_secs(2),
        ice: Default::default(),
        media: true,
    };
    let mut room = room();
    let mut s = Session::new(room.clone(), config, now);
    let mut conns = [ConnId(0); 4];
    let mut next_conn = 1;
    let mut ended = false;
    let mut bytes = data.iter().copied();
    while let Some(op) = bytes.next() {
        let who = (op >> 4) as usize % USERS.len();
        let user = UserId::parse(USERS[who]).unwrap();
        let arg = bytes.next().unwrap_or(0);
        let input = match op % 11 {
            0 => {
                conns[who] = ConnId(next_conn);
                next_conn += 1;
                Input::Join {
                    init: MemberInit {
                        user,
                        role: ROLES[arg as usize % ROLES.len()],
                        jti: format!("t{who}"),
                        invite_id: format!("i{who}"),
                        name: None,
                    },
                    conn: conns[who],
                    resume: (arg & 0x80 != 0).then(|| "r".repeat(arg as usize % 40)),
                }
            }
            1 => {
                // A frame of `arg` bytes, decoded as the socket would.
                let frame: Vec<u8> = bytes.by_ref().take(arg as usize).collect();
                let Ok(msg) = serde_json::from_slice::<ClientMessage>(&frame) else {
                    continue;
                };
                Input::Client {
                    user,
                    conn: conns[who],
                    msg,
                }
            }
            2 => Input::Dropped {
                user,
                conn: conns[who],
            },
            3 => Input::QueueFull {
                user,
                conn: conns[who],
            },
            4 => Input::Kick(user),
            5 => Input::Flooded {
                user,
                conn: conns[who],
            },
            6 => {
                room.version += 1;
                room.join_policy = if arg & 1 == 0 {
                    JoinPolicy::Invite
                } else {
                    JoinPolicy::Closed
                };
                room.is_message_disabled = arg & 2 != 0;
                room.announce_limit = u32::from(arg >> 4);
                Input::RoomUpdated(Box::new(room.clone()))
            }
            7 => Input::TokenRevoked(format!("t{}", arg as usize % USERS.len())),
            8 => Input::Media(MediaEvent::AudioLevel {
                member: user,
                dbov: arg & 0x7f,
            }),
            // A link window: loss from the low bits, a round trip and jitter from the rest.
            9 => Input::Media(MediaEvent::LinkQuality {
                member: user,
                pc: if arg & 1 == 0 {
                    PcKind::Publish
                } else {
                    PcKind::Subscribe
                },
                window: LinkWindow {
                    loss: f32::from(arg >> 1) / 127.0,
                    rtt_ms: (arg & 0x40 != 0).then_some(u32::from(arg) * 8),
                    jitter_ms: (arg & 0x20 != 0).then_some(u32::from(arg)),
                },
            }),
            _ => {
                // Time passes: up to ~25 s, past the resume grace and destroy delay.
                let step = Duration::from_millis(u64::from(arg) * 100);
                now.mono += step;
                now.wall += chrono::Duration::from_std(step).unwrap();
                s.handle_timeout(now);
                drain(&mut s, &mut ended);
                continue;
            }
        };
        s.handle(input, now);
        drain(&mut s, &mut ended);
        assert!(
            !(ended && s.poll_timeout().is_some()),
            "an ended session asks for time"
        );
    }
});

fn drain(s: &mut Session, ended: &mut bool) {
    while let Some(out) = s.poll_output() {
        assert!(!*ended, "output after the end: {out:?}");
        if matches!(out, Output::Ended) {
            *ended = true;
        }
    }
}
