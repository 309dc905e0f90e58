//! Connection quality over real sockets: webrtc-rs clients, the relay measuring their
//! links, and the session grading them. In a file of its own: its publisher sends with
//! gaps on purpose, which would move the relay counters other media tests read.
mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::TestServer;
use convene_load::client::local_track;
use rtc::rtp::{Header, Packet};
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use webrtc::media_stream::track_local::TrackLocal;

/// Connection quality from what the relay measures: a publisher whose packets arrive
/// with a quarter missing (gaps in the sequence numbers) is graded poor for everyone;
/// once nothing is missing it is graded excellent again, after three good windows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lossy_uplink_is_graded_poor_then_excellent() {
    let s = TestServer::start().await;
    s.room("q", &[("alice", "attendee"), ("bob", "consumer")])
        .await;
    let mut bob = s.media_client("q", "bob", &[]).await;
    let video = local_track(RtpCodecKind::Video, "cam", 6666);
    let alice = s
        .media_client("q", "alice", std::slice::from_ref(&video))
        .await;
    // Every fourth packet is never sent while `lossy` is set.
    let lossy = Arc::new(AtomicBool::new(true));
    let stop = Arc::new(AtomicBool::new(false));
    let (t, l, st) = (video.clone(), lossy.clone(), stop.clone());
    tokio::spawn(async move {
        let mut i: u32 = 0;
        while !st.load(Ordering::Relaxed) {
            if !(l.load(Ordering::Relaxed) && i % 4 == 3) {
                let pkt = Packet {
                    header: Header {
                        version: 2,
                        marker: true,
                        payload_type: 96,
                        sequence_number: i as u16,
                        timestamp: i.wrapping_mul(3000),
                        ssrc: 6666,
                        ..Default::default()
                    },
                    payload: Bytes::from_static(&[0x10, 0x00, 0x9d, 0x01, 0x2a]),
                };
                let _ = t.write_rtp(pkt).await;
            }
            i += 1;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    let seen = grade_until(&mut bob, "alice", "poor").await;
    println!("alice, sending with gaps: {seen:?}");
    lossy.store(false, Ordering::Relaxed);
    let later = grade_until(&mut bob, "alice", "excellent").await;
    println!("alice, then without: {later:?}");
    // Bob's own grade, from the receiver reports his client sends on what it receives.
    assert!(
        seen.iter().chain(&later).any(|g| g == "bob=excellent"),
        "bob graded from his reports: {seen:?} {later:?}"
    );
    stop.store(true, Ordering::Relaxed);
    alice.close().await;
    bob.close().await;
}

/// The grades `client` is told (`who=grade`) until `who` is graded `want`.
async fn grade_until(client: &mut common::rtc::MediaClient, who: &str, want: &str) -> Vec<String> {
    let mut seen = vec![];
    let found = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let v = client.next_of("connectionQualityChanged").await;
            let (id, g) = (
                v["participantId"].as_str().unwrap(),
                v["quality"].as_str().unwrap(),
            );
            seen.push(format!("{id}={g}"));
            if id == who && g == want {
                return;
            }
        }
    })
    .await;
    assert!(found.is_ok(), "{who} never graded {want}; told {seen:?}");
    seen
}
