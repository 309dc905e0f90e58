//! A published track and its fan-out. One task reads the publisher's packets and offers
//! each to every subscriber's bounded queue; a full queue drops that subscriber's packet
//! only, so a slow subscriber never stalls the publisher or anyone else. Packets are
//! cloned shallowly: the payload bytes are shared.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp::Packet;
use tokio::sync::mpsc;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};

use super::port::MediaKind;
use super::stats;
use crate::ids::UserId;

/// Packets a subscriber may have queued for one track before its own packets drop.
pub const SINK_QUEUE: usize = 512;
/// At most one keyframe request per track this often, however many viewers ask.
pub const PLI_INTERVAL: Duration = Duration::from_millis(500);

pub struct Published {
    pub owner: UserId,
    pub kind: MediaKind,
    remote: Arc<dyn TrackRemote>,
    ssrc: u32,
    /// Open while the owner may send this kind and has not muted it.
    pub gate: AtomicBool,
    subscribers: Mutex<Vec<(UserId, mpsc::Sender<Packet>)>>,
    created: Instant,
    last_pli_ms: AtomicU64,
    pli_pending: AtomicBool,
}

impl Published {
    pub async fn start(owner: UserId, kind: MediaKind, remote: Arc<dyn TrackRemote>) -> Arc<Self> {
        let ssrc = remote.ssrcs().await.first().copied().unwrap_or(0);
        let p = Arc::new(Self {
            owner,
            kind,
            remote: remote.clone(),
            ssrc,
            gate: AtomicBool::new(false),
            subscribers: Mutex::new(Vec::new()),
            created: Instant::now(),
            last_pli_ms: AtomicU64::new(0),
            pli_pending: AtomicBool::new(false),
        });
        let me = p.clone();
        tokio::spawn(async move {
            let _held = stats::Held::new(&stats::TRACKS);
            // Ends when the publisher's connection is closed: webrtc-rs 0.21 emits no
            // end-of-track event of its own.
            while let Some(ev) = remote.poll().await {
                if let TrackRemoteEvent::OnRtpPacket(pkt) = ev {
                    me.fan_out(pkt);
                }
            }
            me.subscribers_lock().clear();
        });
        p
    }

    // A std Mutex held only for non-blocking work, never across an await; a poisoned
    // lock (a panic mid-push) still holds a valid Vec.
    fn subscribers_lock(&self) -> std::sync::MutexGuard<'_, Vec<(UserId, mpsc::Sender<Packet>)>> {
        self.subscribers.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn fan_out(&self, pkt: Packet) {
        if !self.gate.load(Ordering::Relaxed) {
            return;
        }
        // try_send never waits, so offering under the lock is cheap and copies no list.
        // A full queue drops this subscriber's packet only.
        for (_, tx) in self.subscribers_lock().iter() {
            let _ = tx.try_send(pkt.clone());
        }
    }

    pub fn add_subscriber(&self, user: UserId, tx: mpsc::Sender<Packet>) {
        self.subscribers_lock().push((user, tx));
    }

    pub fn remove_subscriber(&self, user: &UserId) {
        self.subscribers_lock().retain(|(u, _)| u != user);
    }

    /// Asks the publisher for a keyframe, at most once per `PLI_INTERVAL`. A request
    /// inside the interval is not dropped but deferred to its end, so a viewer who
    /// joins just after another still gets its keyframe.
    pub fn request_keyframe(self: &Arc<Self>) {
        if self.kind == MediaKind::Audio {
            return;
        }
        let interval = PLI_INTERVAL.as_millis() as u64;
        // Offset by one interval so the very first request is never throttled.
        let now = self.created.elapsed().as_millis() as u64 + interval;
        let last = self.last_pli_ms.load(Ordering::Relaxed);
        if now >= last + interval {
            if self
                .last_pli_ms
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
            {
                self.send_pli();
            }
            return;
        }
        if self.pli_pending.swap(true, Ordering::Relaxed) {
            return; // a deferred request is already scheduled
        }
        let me = self.clone();
        let wait = Duration::from_millis(last + interval - now);
        tokio::spawn(async move {
            tokio::time::sleep(wait).await;
            me.pli_pending.store(false, Ordering::Relaxed);
            me.request_keyframe();
        });
    }

    fn send_pli(&self) {
        let remote = self.remote.clone();
        let ssrc = self.ssrc;
        tokio::spawn(async move {
            let pli = PictureLossIndication {
                sender_ssrc: 0,
                media_ssrc: ssrc,
            };
            let _ = remote.write_rtcp(vec![Box::new(pli)]).await;
        });
    }
}
