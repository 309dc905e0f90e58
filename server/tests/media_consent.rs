//! A client that goes silent (no consent checks) loses its media connection when its
//! consent expires: the connection is closed and forgotten, and what it published is
//! unpublished for everyone. Alone in its own test binary: it counts the relay's
//! process-wide connections.
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::light::Counts;
use common::{test_config, TestServer};
use convene_load::pool::{Pool, SendTrack};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consent_expiry_tears_the_connection_down() {
    let tmp = tempfile::tempdir().unwrap();
    let mut config = test_config(tmp.path());
    config.media.consent_timeout = Duration::from_secs(3);
    let s = TestServer::start_with(config).await;
    s.room("quiet", &[("p", "attendee"), ("v", "attendee")])
        .await;
    let pool = Pool::start(1, 107).unwrap();
    let counts = Arc::new(Counts::default());
    let p = s
        .light_member(&pool, "quiet", "p", vec![SendTrack::video(50)], false, None)
        .await;
    let mut v = s
        .light_member(&pool, "quiet", "v", vec![], true, Some(counts.clone()))
        .await;
    let id = v.subscribe.as_ref().unwrap().id;
    tokio::time::timeout(Duration::from_secs(15), async {
        while counts.packets(id) < 20 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("media flows");
    // The viewer sees p's camera on.
    let on = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let f = v.frames.recv().await.unwrap();
            if f["type"] == "mediaChanged" && f["participantId"] == "p" && f["video"] == true {
                return;
            }
        }
    })
    .await;
    assert!(on.is_ok(), "p's camera shows on");
    let peers = convene::sfu::stats::PEERS.get();
    assert_eq!(peers, 2, "p's publish and v's subscribe connections");

    // p's client vanishes without a word: no consent checks, nothing.
    let silent_at = Instant::now();
    p.publish.as_ref().unwrap().go_dark(true);
    let off = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let f = v.frames.recv().await.unwrap();
            if f["type"] == "mediaChanged" && f["participantId"] == "p" && f["video"] == false {
                return;
            }
        }
    })
    .await;
    assert!(off.is_ok(), "p's camera shows off once consent expires");
    // Consent is counted from the client's last check, and clients check every 2 s.
    let after = silent_at.elapsed();
    assert!(
        after >= Duration::from_secs(1),
        "not before the consent timeout ({after:?})"
    );
    assert_eq!(
        convene::sfu::stats::PEERS.get(),
        1,
        "p's connection was closed and forgotten"
    );
    assert_eq!(convene::sfu::stats::TRACKS.get(), 0);
}
