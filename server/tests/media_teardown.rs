//! After many join/leave cycles the relay holds nothing: peer connections, member
//! tasks, published tracks and per-subscriber senders all count back to zero. Alone in
//! its own test binary because the counters are process-wide.
mod common;

use std::time::Duration;

use bytes::Bytes;
use common::TestServer;
use convene_load::client::local_track;
use rtc::rtp::{Header, Packet};
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use serde_json::json;
use webrtc::media_stream::track_local::TrackLocal;

const LIGHT_CYCLES: usize = 1000;
const FULL_CYCLES: usize = 10;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_leave_cycles_leave_nothing_behind() {
    let s = TestServer::start().await;
    s.room("t", &[("pub", "attendee"), ("sub", "attendee")])
        .await;

    // One real offer, reused: every cycle makes the server build, answer and tear
    // down a publish connection.
    let probe = s
        .media_client("t", "pub", &[local_track(RtpCodecKind::Video, "v", 7)])
        .await;
    let pc = probe.publish.clone().unwrap();
    let offer_sdp = pc.local_description().await.unwrap().sdp;
    probe.close().await;

    for i in 0..LIGHT_CYCLES {
        let (mut p, _) = s.join("t", "pub").await;
        p.send(json!({"type": "offer", "pc": "publish", "sdp": offer_sdp}))
            .await;
        p.send(json!({"type": "subscribe"})).await;
        let answer = p.next_of("answer").await;
        assert_eq!(answer["pc"], "publish", "cycle {i}");
        p.send(json!({"type": "leave"})).await;
        assert_eq!(p.closed_with().await, "clientLeft");
    }

    for _ in 0..FULL_CYCLES {
        let mut sub = s.media_client("t", "sub", &[]).await;
        let video = local_track(RtpCodecKind::Video, "cam", 99);
        let publisher = s
            .media_client("t", "pub", std::slice::from_ref(&video))
            .await;
        let v = video.clone();
        let pumping = tokio::spawn(async move {
            for i in 0u16.. {
                let pkt = Packet {
                    header: Header {
                        version: 2,
                        payload_type: 96,
                        sequence_number: i,
                        ssrc: 99,
                        ..Default::default()
                    },
                    payload: Bytes::from_static(&[0x10, 0, 1, 2, 3]),
                };
                if v.write_rtp(pkt).await.is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        });
        let track = tokio::time::timeout(Duration::from_secs(10), sub.tracks.recv())
            .await
            .expect("media flows in a full cycle")
            .unwrap();
        drop(track);
        pumping.abort();
        publisher.close().await;
        sub.close().await;
    }

    let zero = convene::sfu::stats::Counts {
        peers: 0,
        tracks: 0,
        sinks: 0,
        members: 0,
    };
    let mut last = convene::sfu::stats::counts();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while last != zero && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
        last = convene::sfu::stats::counts();
    }
    assert_eq!(
        last, zero,
        "left behind after {LIGHT_CYCLES}+{FULL_CYCLES} cycles"
    );
    let (_, sessions) = s.get("/v1/sessions").await;
    assert_eq!(sessions["value"], json!([]));
}
