//! The media scenario: M publishers and S receive-only members in one room, on Convene or
//! on Janus. Joining differs per SFU; waiting, the measured window and every figure are
//! the same code for both.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::convene_media::{self, Run};
use convene_load::pool::Pool;

use crate::media::{Kind, MediaMember, Tally, TallySink};
use crate::progress::{countdown, Progress};
use crate::{admin, janus, stats};

pub enum Sfu<'a> {
    Convene {
        addr: SocketAddr,
        admin: &'a admin::Admin,
    },
    Janus(janus::Janus),
}

pub struct Plan {
    /// Threads of light client peers (one socket each).
    pub client_threads: usize,
    pub publishers: usize,
    pub subscribers: usize,
    pub kind: Kind,
    pub video_pps: u32,
    pub seconds: u64,
    pub concurrency: usize,
}

/// Runs `plan` against `sfu`; `pid` is the SFU's process for CPU and RSS. Returns the
/// report, also when the run failed part-way (then with `"error"`), so a ladder can stop.
pub async fn run(plan: &Plan, sfu: Sfu<'_>, pid: Option<u32>) -> Value {
    let pool = match Pool::start(plan.client_threads, 50) {
        Ok(p) => p,
        Err(e) => return json!({"scenario": "media", "error": format!("client peers: {e}")}),
    };
    let tally = Tally::new();
    let run = Arc::new(Run {
        kind: plan.kind,
        video_pps: plan.video_pps,
        epoch: pool.epoch,
        sink: TallySink::new(tally.clone(), pool.epoch),
        tally,
        pool,
        stop: Arc::new(AtomicBool::new(false)),
    });
    let target = match sfu {
        Sfu::Convene { .. } => "convene",
        Sfu::Janus(_) => "janus",
    };
    let (m, n) = (plan.publishers, plan.subscribers);
    eprintln!(
        "{target}: joining {m} publishers ({:?}) and {n} subscribers...",
        plan.kind
    );
    let rss0 = pid.and_then(stats::rss_bytes);
    let joined_started = Instant::now();
    let (members, failures, first_error) = match sfu {
        Sfu::Convene { addr, admin } => join_convene(plan, addr, admin, &run).await,
        Sfu::Janus(j) => join_janus(plan, &j, &run).await,
    };
    let join_secs = joined_started.elapsed().as_secs_f64();
    // Every member that should receive something (publishers receive the others).
    let receivers = n + if m > 1 { m } else { 0 };
    let with_media = || run.tally.members_with_media.load(Ordering::Relaxed) as usize;
    // ICE, DTLS and the first packets take a moment; a member that gets nothing within
    // the wait is counted as a failed connection.
    let deadline = Instant::now() + Duration::from_secs(10 + receivers as u64 / 20);
    while with_media() < receivers && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let connected = with_media();
    tokio::time::sleep(Duration::from_secs(2)).await;

    let sent_total = |ms: &[MediaMember]| -> u64 { ms.iter().map(MediaMember::sent).sum() };
    run.tally
        .window_start_us
        .store(run.epoch.elapsed().as_micros() as u64, Ordering::Relaxed);
    let sent0 = sent_total(&members);
    let cpu0 = pid.and_then(stats::cpu_time);
    let me = std::process::id();
    let own0 = stats::cpu_time(me);
    let machine0 = stats::machine_cpu();
    let t0 = Instant::now();
    countdown(&format!("{target} measuring"), plan.seconds).await;
    run.stop.store(true, Ordering::Relaxed);
    for x in &members {
        x.stop_sending();
    }
    let wall = t0.elapsed();
    let cpu1 = pid.and_then(stats::cpu_time);
    let own1 = stats::cpu_time(me);
    let machine1 = stats::machine_cpu();
    let rss = pid.and_then(stats::rss_bytes);
    let udp_sockets = pid.and_then(stats::udp_sockets);
    // Packets still in flight when sending stops are counted if they arrive within 1 s.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let sent = sent_total(&members) - sent0;
    let receivers_per_packet = (m.saturating_sub(1) + n) as u64;
    let expected = sent * receivers_per_packet;
    let received = run.tally.received.load(Ordering::Relaxed);
    let gaps = run.tally.gaps.load(Ordering::Relaxed);
    let to_durations = |v: &std::sync::Mutex<Vec<u64>>| -> Vec<Duration> {
        v.lock()
            .map(|v| v.iter().map(|u| Duration::from_micros(*u)).collect())
            .unwrap_or_default()
    };
    let mut lat = to_durations(&run.tally.latencies_us);
    let mut first = to_durations(&run.tally.first_media_us);
    let closing = Progress::new(&format!("{target} leaving"), members.len());
    for x in members {
        x.close().await;
        closing.inc();
    }
    closing.finish();
    let loss = if expected > 0 {
        1.0 - received as f64 / expected as f64
    } else {
        0.0
    };
    let pct = |a: Option<Duration>, b: Option<Duration>| match (a, b) {
        (Some(a), Some(b)) => {
            Some((1000.0 * (b - a).as_secs_f64() / wall.as_secs_f64()).round() / 10.0)
        }
        _ => None,
    };
    // CPU of everything else on the machine (in % of one core), e.g. a build running
    // alongside: a run with much of it is not comparable.
    let others = match (machine0, machine1, pct(cpu0, cpu1), pct(own0, own1)) {
        (Some((b0, _)), Some((b1, _)), Some(server), Some(tool)) => {
            let busy = 100.0 * (b1 - b0).as_secs_f64() / wall.as_secs_f64();
            Some(((busy - server - tool).max(0.0) * 10.0).round() / 10.0)
        }
        _ => None,
    };
    let mut report = json!({
        "scenario": "media",
        "target": target,
        "kind": plan.kind,
        "publishers": m,
        "subscribers": n,
        "videoPpsPerTrack": if plan.kind == Kind::Audio { Value::Null } else { json!(plan.video_pps) },
        "seconds": wall.as_secs_f64(),
        "joinFailures": failures,
        "joinSeconds": join_secs,
        "receivers": receivers,
        "receiversWithMedia": connected,
        "timeToFirstMediaMs": {
            "p50": stats::ms(stats::percentile(&mut first, 50.0)),
            "p95": stats::ms(stats::percentile(&mut first, 95.0)),
            "p99": stats::ms(stats::percentile(&mut first, 99.0)),
        },
        "packetsSent": sent,
        "packetsExpected": expected,
        "packetsReceived": received,
        "receivedPerSecond": (received as f64 / wall.as_secs_f64()).round(),
        "lossPercent": (loss.max(0.0) * 10000.0).round() / 100.0,
        "gapPackets": gaps,
        "latencyMs": {
            "p50": stats::ms(stats::percentile(&mut lat, 50.0)),
            "p95": stats::ms(stats::percentile(&mut lat, 95.0)),
            "p99": stats::ms(stats::percentile(&mut lat, 99.0)),
        },
        "serverCpuPercent": pct(cpu0, cpu1),
        "serverRssBytes": rss,
        "serverRssBeforeBytes": rss0,
        "serverUdpSockets": udp_sockets,
        "loadToolCpuPercent": pct(own0, own1),
        "otherCpuPercent": others,
    });
    let mut errors = Vec::new();
    if let Some(e) = first_error {
        errors.push(format!("{failures} joins failed, first: {e}"));
    }
    if connected < receivers {
        errors.push(format!(
            "{} of {receivers} receivers got no media",
            receivers - connected
        ));
    }
    if sent == 0 || received == 0 {
        errors.push("no media flowed".into());
    }
    if !errors.is_empty() {
        report["error"] = json!(errors.join("; "));
    }
    report
}

type Joined = (Vec<MediaMember>, usize, Option<String>);

/// Runs `jobs` with at most `concurrency` in flight, ticking a progress bar.
async fn join_all<F>(
    label: &str,
    concurrency: usize,
    jobs: Vec<F>,
) -> Vec<Result<MediaMember, String>>
where
    F: std::future::Future<Output = Result<MediaMember, String>> + Send + 'static,
{
    let bar = Arc::new(Progress::new(label, jobs.len()));
    let gate = Arc::new(Semaphore::new(concurrency.max(1)));
    let mut set = JoinSet::new();
    for (i, job) in jobs.into_iter().enumerate() {
        let permit = gate.clone().acquire_owned().await.expect("never closed");
        let bar = bar.clone();
        set.spawn(async move {
            let r = job.await;
            drop(permit);
            bar.inc();
            (i, r)
        });
    }
    let mut out: Vec<Option<Result<MediaMember, String>>> = Vec::new();
    out.resize_with(set.len(), || None);
    while let Some(r) = set.join_next().await {
        match r {
            Ok((i, r)) => out[i] = Some(r),
            Err(e) => out.push(Some(Err(e.to_string()))),
        }
    }
    bar.finish();
    out.into_iter().flatten().collect()
}

fn collect(results: Vec<Result<MediaMember, String>>, into: &mut Joined) {
    for r in results {
        match r {
            Ok(m) => into.0.push(m),
            Err(e) => {
                into.1 += 1;
                into.2.get_or_insert(e);
            }
        }
    }
}

async fn join_convene(
    plan: &Plan,
    addr: SocketAddr,
    admin: &admin::Admin,
    run: &Arc<Run>,
) -> Joined {
    let mut joined: Joined = (Vec::new(), 0, None);
    let room = format!("media-{}-{}", std::process::id(), rand::random::<u32>());
    if let Err(e) = admin
        .setup_media_room(&room, plan.publishers, plan.subscribers)
        .await
    {
        joined.1 = plan.publishers + plan.subscribers;
        joined.2 = Some(e);
        return joined;
    }
    // Publishers first, so receive-only members find every track at once (as on Janus).
    for (prefix, count, publish) in [("p", plan.publishers, true), ("s", plan.subscribers, false)] {
        let mut jobs = Vec::new();
        for i in 0..count {
            let token = match admin.token(&room, &format!("{prefix}{i}")).await {
                Ok(t) => t,
                Err(e) => {
                    joined.1 += 1;
                    joined.2.get_or_insert(e);
                    continue;
                }
            };
            let run = run.clone();
            jobs.push(async move { convene_media::join(addr, &token, publish, &run).await });
        }
        let label = if publish { "publishers" } else { "subscribers" };
        collect(join_all(label, plan.concurrency, jobs).await, &mut joined);
    }
    joined
}

async fn join_janus(plan: &Plan, j: &janus::Janus, run: &Arc<Run>) -> Joined {
    let mut joined: Joined = (Vec::new(), 0, None);
    let room = 1_000_000 + rand::random::<u32>() as u64;
    if let Err(e) = janus::create_room(j, room, plan.publishers).await {
        joined.1 = plan.publishers + plan.subscribers;
        joined.2 = Some(e);
        return joined;
    }
    // Feed ids are ours to choose: publisher i is feed i + 1, so every subscriber knows
    // the feeds without listing them.
    let feeds: Vec<u64> = (1..=plan.publishers as u64).collect();
    let started = Instant::now();
    let bar = Progress::new("publishers", plan.publishers);
    let mut publishers = Vec::new();
    for &feed in &feeds {
        match janus::publish(j, room, Some(feed), run).await {
            Ok(p) => publishers.push((feed, p)),
            Err(e) => {
                joined.1 += 1;
                joined.2.get_or_insert(e);
            }
        }
        bar.inc();
    }
    bar.finish();
    let mut jobs = Vec::new();
    // Publishers subscribe to everyone but themselves, on a connection of their own.
    for (feed, p) in publishers {
        let others: Vec<u64> = feeds.iter().copied().filter(|f| *f != feed).collect();
        let run = run.clone();
        jobs.push(Box::pin(
            async move { janus::subscribe(p, room, others, false, started, &run).await },
        )
            as std::pin::Pin<Box<dyn std::future::Future<Output = _> + Send>>);
    }
    for _ in 0..plan.subscribers {
        let (j, run, feeds) = (j.clone(), run.clone(), feeds.clone());
        jobs.push(Box::pin(async move {
            let joined_at = Instant::now();
            let s = janus::publish(&j, room, None, &run).await?;
            janus::subscribe(s, room, feeds, true, joined_at, &run).await
        }));
    }
    collect(
        join_all("subscribers", plan.concurrency, jobs).await,
        &mut joined,
    );
    joined
}
