//! What operators watch: Prometheus metrics from the `prometheus` crate, one registry per
//! server (so several servers in one test process do not mix). Counters the edge bumps
//! live here; numbers other parts already keep (live sessions and members, the relay's
//! packet counters, stored rooms) are read when Prometheus scrapes, through `Snapshot`.

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
    TextEncoder,
};

/// Numbers read at scrape time from the parts that own them.
#[derive(Debug, Default, Clone)]
pub struct Snapshot {
    pub rooms: u64,
    pub sessions: u64,
    pub members: u64,
    /// The relay's numbers: (what, value, is_counter). Counters go to
    /// `convene_media_total{what}`, the rest to `convene_media_open{what}`.
    pub media: Vec<(&'static str, u64, bool)>,
    /// Messages to other nodes dropped while this node's subscription was lost.
    pub cluster_dropped: u64,
}

pub struct Metrics {
    /// Everything of Convene's own, named `convene_*`.
    registry: Registry,
    /// HTTP requests by route template, method and status class.
    pub http: HistogramVec,
    /// Signaling joins by result: `joined`, or the refusal's error code.
    pub joins: IntCounterVec,
    /// Signaling frames received from members, and sent to them.
    pub frames_in: IntCounter,
    pub frames_out: IntCounter,
    /// Admin requests refused for a wrong or missing key.
    pub admin_refusals: IntCounter,
    rooms: IntGauge,
    sessions: IntGauge,
    members: IntGauge,
    media_counters: IntCounterVec,
    media_gauges: prometheus::IntGaugeVec,
    cluster_dropped: IntCounter,
    /// Process metrics (CPU, memory, file descriptors, threads), unprefixed as
    /// Prometheus conventions have them.
    process: Registry,
}

fn must<T>(r: prometheus::Result<T>) -> T {
    r.expect("metric definitions are valid and registered once")
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new_custom(Some("convene".into()), None).expect("registry");
        let http = must(HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "HTTP requests by route template, method and status class",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
            ]),
            &["route", "method", "status"],
        ));
        let joins = must(IntCounterVec::new(
            Opts::new(
                "joins_total",
                "Signaling joins by result: joined, or the refusal's error code",
            ),
            &["result"],
        ));
        let frames_in = must(IntCounter::new(
            "signaling_frames_received_total",
            "Signaling frames received from members",
        ));
        let frames_out = must(IntCounter::new(
            "signaling_frames_sent_total",
            "Signaling frames sent to members",
        ));
        let admin_refusals = must(IntCounter::new(
            "admin_key_refusals_total",
            "Admin requests refused for a wrong or missing admin key",
        ));
        let rooms = must(IntGauge::new("rooms", "Rooms stored"));
        let sessions = must(IntGauge::new("live_sessions", "Live sessions running"));
        let members = must(IntGauge::new(
            "live_members",
            "Members in live sessions (connected or kept for resume)",
        ));
        let media_counters = must(IntCounterVec::new(
            Opts::new("media_total", "Media relay counters, by what they count"),
            &["what"],
        ));
        let media_gauges = must(prometheus::IntGaugeVec::new(
            Opts::new("media_open", "Media relay resources open, by kind"),
            &["what"],
        ));
        let cluster_dropped = must(IntCounter::new(
            "cluster_messages_dropped_total",
            "Rooms' messages to other nodes dropped while this node's Redis subscription \
             was lost (members joined across nodes reconnect after it)",
        ));
        for c in [
            Box::new(cluster_dropped.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(http.clone()),
            Box::new(joins.clone()),
            Box::new(frames_in.clone()),
            Box::new(frames_out.clone()),
            Box::new(admin_refusals.clone()),
            Box::new(rooms.clone()),
            Box::new(sessions.clone()),
            Box::new(members.clone()),
            Box::new(media_counters.clone()),
            Box::new(media_gauges.clone()),
        ] {
            must(registry.register(c));
        }
        let process = Registry::new();
        #[cfg(target_os = "linux")]
        must(process.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        )));
        Self {
            registry,
            http,
            joins,
            frames_in,
            frames_out,
            admin_refusals,
            rooms,
            sessions,
            members,
            media_counters,
            media_gauges,
            cluster_dropped,
            process,
        }
    }

    /// The text exposition format, with the snapshot's numbers filled in.
    pub fn render(&self, s: &Snapshot) -> String {
        self.rooms.set(s.rooms as i64);
        self.sessions.set(s.sessions as i64);
        self.members.set(s.members as i64);
        // Read from its owner: only moves forward.
        let now = self.cluster_dropped.get();
        if s.cluster_dropped > now {
            self.cluster_dropped.inc_by(s.cluster_dropped - now);
        }
        for (name, value, counter) in &s.media {
            if *counter {
                let c = self.media_counters.with_label_values(&[name]);
                let now = c.get();
                if *value > now {
                    c.inc_by(value - now);
                }
            } else {
                self.media_gauges
                    .with_label_values(&[name])
                    .set(*value as i64);
            }
        }
        let mut families = self.registry.gather();
        families.extend(self.process.gather());
        let mut out = vec![];
        let _ = TextEncoder::new().encode(&families, &mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_gauges_and_the_snapshot() {
        let m = Metrics::new();
        m.joins.with_label_values(&["joined"]).inc();
        m.joins.with_label_values(&["RoomFull"]).inc();
        let snap = |v| Snapshot {
            rooms: 3,
            sessions: 1,
            members: 2,
            media: vec![("forwarded_packets", v, true), ("peers", 4, false)],
            cluster_dropped: v,
        };
        let text = m.render(&snap(10));
        assert!(
            text.contains("convene_joins_total{result=\"RoomFull\"} 1"),
            "{text}"
        );
        assert!(text.contains("convene_rooms 3"));
        assert!(text.contains("convene_media_total{what=\"forwarded_packets\"} 10"));
        assert!(text.contains("convene_media_open{what=\"peers\"} 4"));
        // Counters read from elsewhere only move forward.
        let text = m.render(&snap(25));
        assert!(text.contains("convene_media_total{what=\"forwarded_packets\"} 25"));
        assert!(text.contains("convene_cluster_messages_dropped_total 25"));
    }
}
