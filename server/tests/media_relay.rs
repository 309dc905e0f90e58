//! Real media through the SFU: webrtc-rs clients publish synthetic Opus and VP8 RTP whose
//! payload carries a sequence number and a send time, and subscribers check what
//! arrives.
mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::rtp::{
    expect_100_in_order, in_order_without_gaps, pump, record, record_tracks, wait_until,
};
use common::TestServer;
use convene_load::client::local_track;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use serde_json::json;
use webrtc::media_stream::track_local::{TrackLocal, TrackLocalEvent};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_subscriber_gets_audio_and_video_in_order() {
    let s = TestServer::start().await;
    s.room(
        "m",
        &[
            ("alice", "attendee"),
            ("bob", "consumer"),
            ("carol", "attendee"),
        ],
    )
    .await;
    let mut bob = s.media_client("m", "bob", &[]).await;
    let mut carol = s.media_client("m", "carol", &[]).await;
    let video = local_track(RtpCodecKind::Video, "cam", 1111);
    let audio = local_track(RtpCodecKind::Audio, "mic", 2222);
    let alice = s
        .media_client("m", "alice", &[video.clone(), audio.clone()])
        .await;
    let stop = Arc::new(AtomicBool::new(false));
    let epoch = Instant::now();
    pump(video.clone(), 96, 1111, epoch, stop.clone());
    pump(audio.clone(), 111, 2222, epoch, stop.clone());

    // The relay says alice publishes, from her tracks.
    let mut seen_media = (false, false);
    while seen_media != (true, true) {
        let ev = bob.next_of("mediaChanged").await;
        if ev["participantId"] == "alice" {
            seen_media = (ev["audio"] == true, ev["video"] == true);
        }
    }
    for sub in [&mut bob, &mut carol] {
        let got = record_tracks(&mut sub.tracks, 2).await;
        for (_, t, _) in &got {
            // Stream ids name the publisher: u-<hex of the user id>.
            assert_eq!(
                t.stream_id().await,
                convene::sfu::stream_id(&convene::ids::UserId::parse("alice").unwrap())
            );
        }
        expect_100_in_order(&got).await;
    }
    stop.store(true, Ordering::Relaxed);
    let (st, members) = s.get("/v1/rooms/m/members").await;
    assert_eq!(st, 200);
    let a = members["value"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == "alice")
        .unwrap()
        .clone();
    assert_eq!(
        (a["audio"].as_bool(), a["video"].as_bool()),
        (Some(true), Some(true))
    );
    alice.close().await;
    bob.close().await;
    carol.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_mute_and_keyframes() {
    let s = TestServer::start().await;
    s.room(
        "r",
        &[
            ("p", "presenter"),
            ("a", "attendee"),
            ("c", "consumer"),
            ("late", "consumer"),
        ],
    )
    .await;
    // A consumer's offer is refused.
    let cam = local_track(RtpCodecKind::Video, "ccam", 3333);
    let mut c = s.media_client("r", "c", &[cam]).await;
    let e = c.next_of("error").await;
    assert_eq!(e["error"]["code"], "PermissionDenied");

    let mut p = s.media_client("r", "p", &[]).await;
    let video = local_track(RtpCodecKind::Video, "acam", 4444);
    let a = s.media_client("r", "a", std::slice::from_ref(&video)).await;
    // Count keyframe requests reaching the publisher.
    let plis = Arc::new(AtomicU64::new(0));
    let (v, n) = (video.clone(), plis.clone());
    tokio::spawn(async move {
        while let Some(ev) = v.poll().await {
            if let TrackLocalEvent::OnRtcpPacket(pkts) = ev {
                // The keyframe interceptor also passes NACKs and receiver reports.
                let plis = pkts
                    .iter()
                    .filter(|p| p.as_any().is::<rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication>())
                    .count();
                n.fetch_add(plis as u64, Ordering::Relaxed);
            }
        }
    });
    let stop = Arc::new(AtomicBool::new(false));
    pump(video.clone(), 96, 4444, Instant::now(), stop.clone());
    let t = tokio::time::timeout(Duration::from_secs(10), p.tracks.recv())
        .await
        .expect("presenter receives a's video")
        .unwrap();
    let seen = record(t, true);
    wait_until("video at the presenter", || {
        seen.lock().unwrap().len() >= 20
    })
    .await;
    let c_tracks = tokio::time::timeout(Duration::from_secs(10), c.tracks.recv()).await;
    assert!(c_tracks.is_ok(), "a consumer still receives");

    // A late subscriber triggers a keyframe request to the publisher.
    let before = plis.load(Ordering::Relaxed);
    let mut late = s.media_client("r", "late", &[]).await;
    let lt = tokio::time::timeout(Duration::from_secs(10), late.tracks.recv())
        .await
        .expect("late joiner receives")
        .unwrap();
    let late_seen = record(lt, true);
    wait_until("video at the late joiner", || {
        late_seen.lock().unwrap().len() >= 5
    })
    .await;
    wait_until("a keyframe request at the publisher", || {
        plis.load(Ordering::Relaxed) > before
    })
    .await;

    // The presenter mutes a's camera: forwarding stops at once.
    p.send(json!({"type": "mute", "participantId": "a", "video": true}));
    let ev = p.next_of("mediaChanged").await;
    let ev = if ev["participantId"] == "a" && ev["video"] == false {
        ev
    } else {
        p.next_of("mediaChanged").await
    };
    assert_eq!(ev["reason"], "mutedBy:p");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let frozen = seen.lock().unwrap().len();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        seen.lock().unwrap().len(),
        frozen,
        "muted video is not forwarded"
    );
    // Demotion to consumer keeps it stopped even if a tries to turn it back on.
    s.patch(
        "/v1/rooms/r/participants",
        json!({"participants": {"a": {"role": "consumer"}}}),
    )
    .await;
    a.send(json!({"type": "setMedia", "video": true}));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        seen.lock().unwrap().len(),
        frozen,
        "a demoted member's video is not forwarded"
    );
    stop.store(true, Ordering::Relaxed);
    for m in [a, p, c, late] {
        m.close().await;
    }
}

/// A viewer's NACK is answered from the relay's buffer on the viewer's repair stream
/// (RTX): the client's pipeline unwraps the repair packets, so the NACKed packets
/// arrive a second time, and the relay counts them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_nack_is_answered_over_rtx() {
    use rtc::rtcp::transport_feedbacks::transport_layer_nack::{
        nack_pairs_from_sequence_numbers, TransportLayerNack,
    };
    let s = TestServer::start().await;
    s.room("n", &[("alice", "attendee"), ("bob", "consumer")])
        .await;
    let mut bob = s.media_client("n", "bob", &[]).await;
    let video = local_track(RtpCodecKind::Video, "cam", 5555);
    let alice = s
        .media_client("n", "alice", std::slice::from_ref(&video))
        .await;
    let stop = Arc::new(AtomicBool::new(false));
    pump(video.clone(), 96, 5555, Instant::now(), stop.clone());
    let t = tokio::time::timeout(Duration::from_secs(10), bob.tracks.recv())
        .await
        .expect("bob receives alice's video")
        .unwrap();
    let seen = record(t.clone(), true);
    wait_until("50 packets", || seen.lock().unwrap().len() >= 50).await;
    assert!(
        in_order_without_gaps(&seen.lock().unwrap()),
        "no loss, no repair yet"
    );
    let ssrc = t.ssrcs().await[0];
    // The pump numbers packets (index = sequence number) and the relay keeps the
    // numbers: ask again for three bob got about 0.4 s ago, well inside what the relay
    // keeps.
    let first = seen.lock().unwrap()[5];
    let again: Vec<u16> = (first..first + 3).map(|i| i as u16).collect();
    let nack = TransportLayerNack {
        sender_ssrc: 1,
        media_ssrc: ssrc,
        nacks: nack_pairs_from_sequence_numbers(&again),
    };
    let resent_before = media_total(&s, "retransmitted_packets").await;
    t.write_rtcp(vec![Box::new(nack)]).await.unwrap();
    wait_until("the NACKed packets again", || {
        let v = seen.lock().unwrap();
        (first..first + 3).all(|i| v.iter().filter(|&&x| x == i).count() == 2)
    })
    .await;
    let resent = media_total(&s, "retransmitted_packets").await;
    assert!(
        resent >= resent_before + 3,
        "the relay counted its resends: {resent_before} -> {resent}"
    );
    // The counters are the process's, shared by this file's tests (which run at once, and
    // whose clients also NACK what a busy machine drops): each check is a change seen
    // after its own request, never an exact total.
    let missed_before = media_total(&s, "retransmit_missed_packets").await;
    // A NACK for a packet never sent is not answered, only counted as missed.
    let never = TransportLayerNack {
        sender_ssrc: 1,
        media_ssrc: ssrc,
        nacks: nack_pairs_from_sequence_numbers(&[60_000]),
    };
    t.write_rtcp(vec![Box::new(never)]).await.unwrap();
    let mut missed = missed_before;
    for _ in 0..100 {
        missed = media_total(&s, "retransmit_missed_packets").await;
        if missed > missed_before {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        missed > missed_before,
        "the NACK for a packet never sent is counted as missed"
    );
    stop.store(true, Ordering::Relaxed);
    alice.close().await;
    bob.close().await;
}

/// One `convene_media_total` counter from `/metrics`.
async fn media_total(s: &TestServer, what: &str) -> u64 {
    let sample = format!("convene_media_total{{what=\"{what}\"}}");
    s.metric(&sample)
        .await
        .unwrap_or_else(|| panic!("no {sample} in /metrics"))
}
