//! The media engine on its one UDP port: many members on one port with one socket per
//! worker, clients told apart by port, STUN that does not belong dropped, a client
//! whose address changes followed, a slow client losing only its own packets, and a
//! silent client's connection torn down when its consent expires. Clients are the load
//! tool's light peers, so hundreds of them are cheap.
mod common;

use std::collections::HashSet;
use std::net::UdpSocket;
use std::sync::Arc;
use std::time::Duration;

use common::light::Counts;
use common::TestServer;
use convene_load::pool::{PeerEvent, Pool, SendTrack};
use rtc::stun::attributes::ATTR_USERNAME;
use rtc::stun::integrity::MessageIntegrity;
use rtc::stun::message::{Message, Setter, TransactionId, BINDING_REQUEST};
use rtc::stun::textattrs::Username;

async fn eventually(what: &str, wait: Duration, f: impl Fn() -> bool) {
    tokio::time::timeout(wait, async {
        while !f() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("timed out: {what}"));
}

fn hex_port(port: u16) -> String {
    format!(":{port:04X} ")
}

/// UDP sockets bound to `port`, from /proc/net/udp (IPv4).
fn sockets_on_port(port: u16) -> usize {
    let table = std::fs::read_to_string("/proc/net/udp").unwrap();
    table
        .lines()
        .skip(1)
        .filter(|l| {
            l.split_whitespace()
                .nth(1)
                .is_some_and(|local| format!("{local} ").contains(&hex_port(port)))
        })
        .count()
}

/// UDP sockets this process holds (its fds that are in /proc/net/udp).
fn udp_sockets_of_this_process() -> usize {
    let table = std::fs::read_to_string("/proc/net/udp").unwrap();
    let inodes: HashSet<String> = table
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().nth(9).map(str::to_string))
        .collect();
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter_map(|p| {
            let s = p.to_string_lossy().to_string();
            s.strip_prefix("socket:[")?
                .strip_suffix(']')
                .map(str::to_string)
        })
        .filter(|inode| inodes.contains(inode))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_members_share_one_port_with_one_socket_per_worker() {
    let s = TestServer::start().await;
    let mut roster: Vec<(String, &str)> = vec![("pub".into(), "presenter")];
    roster.extend((0..199).map(|i| (format!("s{i}"), "attendee")));
    let roster: Vec<(&str, &str)> = roster.iter().map(|(u, r)| (u.as_str(), *r)).collect();
    s.room("big", &roster).await;
    let pool = Pool::start(2, 101).unwrap();
    let counts = Arc::new(Counts::default());
    let publisher = s
        .light_member(
            &pool,
            "big",
            "pub",
            vec![SendTrack::video(30), SendTrack::audio()],
            false,
            None,
        )
        .await;
    let mut subs = vec![];
    for i in 0..199 {
        subs.push(
            s.light_member(
                &pool,
                "big",
                &format!("s{i}"),
                vec![],
                true,
                Some(counts.clone()),
            )
            .await,
        );
    }
    let ids: Vec<u64> = subs
        .iter()
        .map(|m| m.subscribe.as_ref().unwrap().id)
        .collect();
    eventually(
        "every subscriber receives audio and video",
        Duration::from_secs(90),
        || ids.iter().all(|id| counts.of(*id).len() == 2),
    )
    .await;
    let port = publisher.media_port();
    // One socket per worker on the media port, and nothing else: the relay opened no
    // socket per connection (400 connections; the pool's two threads have one each).
    assert_eq!(sockets_on_port(port), 2, "sockets on the media port");
    assert_eq!(udp_sockets_of_this_process(), 2 + 2, "UDP sockets in all");
    // After each stream's first packet the relay encrypts on its own, and its output
    // matched rtc's every time.
    use convene::sfu::stats;
    assert_eq!(stats::FAST_PATH_REFUSED.get(), 0);
    assert!(
        stats::FORWARDED_FAST.get() * 10 > stats::FORWARDED.get() * 9,
        "{} of {} forwarded on the fast path",
        stats::FORWARDED_FAST.get(),
        stats::FORWARDED.get()
    );
    drop(subs);
    drop(publisher);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_on_one_address_are_told_apart_by_port() {
    let s = TestServer::start().await;
    s.room(
        "nat",
        &[("a", "attendee"), ("b", "attendee"), ("v", "attendee")],
    )
    .await;
    // Two pools with the same first address: their first peers are both 127.102.0.1,
    // on two sockets (two ports), as two people behind one NAT would be.
    let pool_a = Pool::start(1, 102).unwrap();
    let pool_b = Pool::start(1, 102).unwrap();
    let viewers = Pool::start(1, 103).unwrap();
    let counts = Arc::new(Counts::default());
    let a = s
        .light_member(&pool_a, "nat", "a", vec![SendTrack::video(50)], false, None)
        .await;
    let b = s
        .light_member(&pool_b, "nat", "b", vec![SendTrack::video(50)], false, None)
        .await;
    assert_eq!(
        a.publish.as_ref().unwrap().ip,
        b.publish.as_ref().unwrap().ip
    );
    let v = s
        .light_member(&viewers, "nat", "v", vec![], true, Some(counts.clone()))
        .await;
    let peer = v.subscribe.as_ref().unwrap();
    let mut owners = std::collections::HashMap::new();
    while owners.len() < 2 {
        let ev = peer
            .wait_for(Duration::from_secs(20), |e| {
                matches!(e, PeerEvent::Track { .. })
            })
            .await
            .expect("two tracks");
        if let PeerEvent::Track {
            ssrc, stream_id, ..
        } = ev
        {
            owners.insert(ssrc, stream_id);
        }
    }
    let mut names: Vec<&String> = owners.values().collect();
    names.sort();
    assert_eq!(
        names,
        [
            &convene::sfu::stream_id(&uid("a")),
            &convene::sfu::stream_id(&uid("b"))
        ]
    );
    eventually("both streams flow", Duration::from_secs(15), || {
        counts
            .of(peer.id)
            .iter()
            .filter(|(_, s)| s.packets > 50)
            .count()
            == 2
    })
    .await;
    for (ssrc, st) in counts.of(peer.id) {
        assert_eq!(st.gaps, 0, "{} lost packets", owners[&ssrc]);
    }
}

fn uid(u: &str) -> convene::ids::UserId {
    convene::ids::UserId::parse(u).unwrap()
}

fn binding_request(username: &str, pwd: &str) -> Vec<u8> {
    let provider = rtc::crypto::default_provider().unwrap();
    let mut m = Message::new();
    let setters: Vec<Box<dyn Setter>> = vec![
        Box::new(BINDING_REQUEST),
        Box::new(TransactionId::new()),
        Box::new(Username::new(ATTR_USERNAME, username.to_string())),
        Box::new(MessageIntegrity::new_short_term_integrity_with_provider(
            pwd.to_string(),
            provider.crypto(),
        )),
    ];
    m.build(&setters).unwrap();
    m.raw.clone()
}

fn sdp_attr<'a>(sdp: &'a str, name: &str) -> &'a str {
    sdp.lines()
        .find_map(|l| l.strip_prefix(&format!("a={name}:")))
        .unwrap_or_else(|| panic!("no a={name} in {sdp}"))
}

/// The first datagram `sock` gets within `wait`.
fn reply(sock: &UdpSocket, wait: Duration) -> Option<Vec<u8>> {
    sock.set_read_timeout(Some(wait)).unwrap();
    let mut buf = [0u8; 2048];
    sock.recv(&mut buf).ok().map(|n| buf[..n].to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stun_that_does_not_belong_is_dropped_and_counted() {
    use convene::sfu::stats;
    let s = TestServer::start().await;
    s.room("probe", &[("a", "attendee")]).await;
    let pool = Pool::start(1, 104).unwrap();
    let a = s
        .light_member(&pool, "probe", "a", vec![SendTrack::video(10)], false, None)
        .await;
    let answer = a.sdps.lock().unwrap()[0].clone();
    let (ufrag, pwd) = (sdp_attr(&answer, "ice-ufrag"), sdp_attr(&answer, "ice-pwd"));
    let server = format!("127.0.0.1:{}", a.media_port());
    let probe = UdpSocket::bind("127.0.0.1:0").unwrap();
    probe.connect(&server).unwrap();

    let before = stats::DROPPED_UNKNOWN_UFRAG.get();
    probe
        .send(&binding_request(
            "nosuchufrag:x",
            "a-password-of-some-length",
        ))
        .unwrap();
    assert_eq!(reply(&probe, Duration::from_millis(500)), None);
    assert!(
        stats::DROPPED_UNKNOWN_UFRAG.get() > before,
        "unknown ufrag counted"
    );

    let before = stats::DROPPED_UNAUTHENTICATED.get();
    probe
        .send(&binding_request(
            &format!("{ufrag}:x"),
            "not-the-password-at-all",
        ))
        .unwrap();
    assert_eq!(reply(&probe, Duration::from_millis(500)), None);
    assert!(
        stats::DROPPED_UNAUTHENTICATED.get() > before,
        "bad integrity counted"
    );

    let before = stats::DROPPED_UNROUTABLE.get();
    probe
        .send(&[0x80, 0x60, 1, 2, 3, 4, 5, 6, 7, 8, 9])
        .unwrap();
    assert_eq!(reply(&probe, Duration::from_millis(300)), None);
    assert!(
        stats::DROPPED_UNROUTABLE.get() > before,
        "unroutable counted"
    );

    // The same request with the right password is answered: the checks above could
    // have failed.
    probe
        .send(&binding_request(&format!("{ufrag}:x"), pwd))
        .unwrap();
    let got = reply(&probe, Duration::from_secs(2)).expect("a binding response");
    let mut m = Message::new();
    m.unmarshal_binary(&got).unwrap();
    assert_eq!(m.typ.to_string().to_lowercase(), "binding success response");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_whose_port_changes_keeps_its_media() {
    let s = TestServer::start().await;
    s.room("rebind", &[("p", "attendee"), ("v", "attendee")])
        .await;
    let pool = Pool::start(1, 105).unwrap();
    let counts = Arc::new(Counts::default());
    let _p = s
        .light_member(
            &pool,
            "rebind",
            "p",
            vec![SendTrack::video(50)],
            false,
            None,
        )
        .await;
    let v = s
        .light_member(&pool, "rebind", "v", vec![], true, Some(counts.clone()))
        .await;
    let peer = v.subscribe.as_ref().unwrap().clone();
    let id = peer.id;
    eventually("media flows", Duration::from_secs(15), || {
        counts.packets(id) > 50
    })
    .await;
    // The viewer's NAT gives it a new port: media stops until its next consent check
    // (a binding request) comes from the new port, then follows it there.
    peer.rebind();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let at_rebind = counts.packets(id);
    eventually(
        "media flows to the new port",
        Duration::from_secs(15),
        || counts.packets(id) > at_rebind + 100,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_subscriber_on_another_worker_loses_only_its_own_packets() {
    let s = TestServer::start().await;
    s.room(
        "slow",
        &[
            ("p", "attendee"),
            ("s1", "attendee"),
            ("s2", "attendee"),
            ("s3", "attendee"),
            ("s4", "attendee"),
        ],
    )
    .await;
    let pool = Pool::start(2, 106).unwrap();
    let counts = Arc::new(Counts::default());
    // Connections go to the two workers in turn: s1 and s3 land on the publisher's
    // worker, s2 and s4 on the other.
    let mut subs = vec![];
    for u in ["s1", "s2", "s3", "s4"] {
        let m = s
            .light_member(&pool, "slow", u, vec![], true, Some(counts.clone()))
            .await;
        subs.push(m);
    }
    let _p = s
        .light_member(&pool, "slow", "p", vec![SendTrack::video(100)], false, None)
        .await;
    let ids: Vec<u64> = subs
        .iter()
        .map(|m| m.subscribe.as_ref().unwrap().id)
        .collect();
    eventually("all four receive", Duration::from_secs(20), || {
        ids.iter().all(|id| counts.packets(*id) > 20)
    })
    .await;
    // s2 stops reading: its packets are lost, nobody else's.
    subs[1].subscribe.as_ref().unwrap().stall(true);
    let before: Vec<u64> = ids.iter().map(|id| counts.packets(*id)).collect();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after: Vec<u64> = ids.iter().map(|id| counts.packets(*id)).collect();
    assert_eq!(after[1], before[1], "the slow subscriber got nothing");
    for i in [0, 2, 3] {
        assert!(
            after[i] >= before[i] + 150,
            "subscriber {i}: {before:?} -> {after:?}"
        );
        let gaps: u64 = counts.of(ids[i]).iter().map(|(_, s)| s.gaps).sum();
        assert_eq!(gaps, 0, "subscriber {i} lost packets");
    }
}
