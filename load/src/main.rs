//! convene-load: N signaling members in one room against a Convene server, reporting
//! join latency, the server's memory per member and how fast one chat message reaches
//! everyone. `--spawn BIN` starts a server of its own on loopback.

mod admin;
mod media;
mod signal;
mod stats;

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use serde_json::json;
use tokio::sync::{mpsc, watch, Semaphore};

#[derive(Debug, Parser)]
#[command(name = "convene-load", about = "Load Convene with signaling members")]
struct Args {
    /// `signal`: N signaling members; `media`: publishers and subscribers with RTP.
    #[arg(long, default_value = "signal")]
    scenario: String,
    /// media: members that publish one VP8 track (and subscribe to the others).
    #[arg(long, default_value_t = 1)]
    publishers: usize,
    /// media: receive-only members.
    #[arg(long, default_value_t = 10)]
    subscribers: usize,
    /// media: packets per second per published track (1000-byte payloads).
    #[arg(long, default_value_t = 100)]
    pps: u32,
    /// media: seconds measured, after the connections settle.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Members to join to one room.
    #[arg(long, default_value_t = 1000)]
    members: usize,
    /// Joins in flight at once.
    #[arg(long, default_value_t = 200)]
    concurrency: usize,
    /// Start this `convene` binary on a free loopback port (with a temp data dir).
    #[arg(long)]
    spawn: Option<String>,
    /// Server address (host:port on loopback) when not spawning.
    #[arg(long)]
    server: Option<SocketAddr>,
    /// Admin key when not spawning.
    #[arg(long, env = "CONVENE_ADMIN_KEY")]
    admin_key: Option<String>,
    /// Server pid for RSS and CPU, when not spawning.
    #[arg(long)]
    pid: Option<u32>,
    /// Write the JSON report here.
    #[arg(long)]
    json: Option<String>,
}

const LOOPBACK_ONLY: &str = "convene-load sends traffic only to 127.0.0.0/8";

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("convene-load: {e}");
            ExitCode::FAILURE
        }
    }
}

struct Spawned {
    child: tokio::process::Child,
    _dir: TempDir,
}

/// A directory removed when dropped.
struct TempDir(std::path::PathBuf);
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn spawn_server(bin: &str, key: &str) -> Result<(Spawned, SocketAddr), String> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| e.to_string())?
        .port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let dir = std::env::temp_dir().join(format!("convene-load-{}-{port}", std::process::id()));
    let child = tokio::process::Command::new(bin)
        .args(["serve", "--listen", &addr.to_string()])
        .arg("--data-dir")
        .arg(&dir)
        .env("CONVENE_ADMIN_KEY", key)
        .env("CONVENE_LOG", "warn,rtc=error,webrtc=error")
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start {bin}: {e}"))?;
    let spawned = Spawned {
        child,
        _dir: TempDir(dir),
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while tokio::net::TcpStream::connect(addr).await.is_err() {
        if Instant::now() > deadline {
            return Err("the spawned server did not start".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok((spawned, addr))
}

async fn run(args: Args) -> Result<(), String> {
    let key = args
        .admin_key
        .clone()
        .unwrap_or_else(|| "convene-load-admin-key-0123456789".to_string());
    let (spawned, addr) = match (&args.spawn, args.server) {
        (Some(bin), _) => {
            let (s, a) = spawn_server(bin, &key).await?;
            (Some(s), a)
        }
        (None, Some(a)) => (None, a),
        (None, None) => return Err("give --spawn BIN or --server ADDR".into()),
    };
    if !addr.ip().is_loopback() {
        return Err(LOOPBACK_ONLY.into());
    }
    let pid = spawned.as_ref().and_then(|s| s.child.id()).or(args.pid);
    let admin = admin::Admin::new(&format!("http://{addr}"), &key);
    if args.scenario == "media" {
        let r = run_media(&args, addr, pid, &admin).await;
        drop(spawned);
        return r;
    }
    if args.scenario != "signal" {
        return Err(format!(
            "unknown scenario '{}' (signal or media)",
            args.scenario
        ));
    }
    let room = format!("load-{}", std::process::id());
    let n = args.members;
    eprintln!("setting up room {room} with {n} members...");
    admin.setup_room(&room, n).await?;
    let mut tokens = Vec::with_capacity(n);
    for i in 0..n {
        tokens.push(admin.token(&room, &format!("m{i}")).await?);
    }
    let marker = format!("bench-{}", std::process::id());
    let (arrive_tx, mut arrive_rx) = mpsc::unbounded_channel();
    let (stop_tx, stop_rx) = watch::channel(false);
    let host_token = admin.token(&room, "host").await?;
    let mut host = signal::join(
        addr,
        &host_token,
        signal::source_ip(0),
        marker.clone(),
        arrive_tx.clone(),
        stop_rx.clone(),
        true,
    )
    .await?;
    let rss_before = pid.and_then(stats::rss_bytes);
    let cpu_before = pid.and_then(stats::cpu_time);

    eprintln!("joining {n} members, {} at a time...", args.concurrency);
    let gate = Arc::new(Semaphore::new(args.concurrency));
    let started = Instant::now();
    let mut joins = Vec::with_capacity(n);
    for (i, token) in tokens.into_iter().enumerate() {
        let permit = gate.clone().acquire_owned().await.unwrap();
        let (tx, stop, marker) = (arrive_tx.clone(), stop_rx.clone(), marker.clone());
        joins.push(tokio::spawn(async move {
            let r = signal::join(
                addr,
                &token,
                signal::source_ip(i + 1),
                marker,
                tx,
                stop,
                false,
            )
            .await;
            drop(permit);
            r
        }));
        if (i + 1) % (n / 10).max(1) == 0 {
            eprintln!("  {:>3}% started", (i + 1) * 100 / n);
        }
    }
    let mut latencies = Vec::with_capacity(n);
    let mut members = Vec::with_capacity(n);
    let mut failures = 0;
    for j in joins {
        match j.await.map_err(|e| e.to_string())? {
            Ok(m) => {
                latencies.push(m.join_latency);
                members.push(m);
            }
            Err(e) => {
                failures += 1;
                if failures <= 3 {
                    eprintln!("  join failed: {e}");
                }
            }
        }
    }
    let join_all = started.elapsed();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_after = pid.and_then(stats::rss_bytes);
    let cpu_after = pid.and_then(stats::cpu_time);

    eprintln!("sending one message to {} members...", members.len() + 1);
    let sent = Instant::now();
    signal::send_chat(&mut host, &marker).await?;
    let expected = members.len() + 1;
    let mut fanout = Vec::with_capacity(expected);
    while fanout.len() < expected {
        match tokio::time::timeout(Duration::from_secs(60), arrive_rx.recv()).await {
            Ok(Some(t)) => fanout.push(t.duration_since(sent)),
            _ => break,
        }
    }
    let _ = stop_tx.send(true);
    drop(members);
    drop(spawned);

    let per_member = match (rss_before, rss_after) {
        (Some(b), Some(a)) if !latencies.is_empty() => {
            Some((a.saturating_sub(b)) as f64 / latencies.len() as f64)
        }
        _ => None,
    };
    let joined = latencies.len();
    let report = json!({
        "scenario": "signaling: N members in one room, one chat message to all",
        "members": n,
        "joined": joined,
        "joinFailures": failures,
        "joinAllSeconds": join_all.as_secs_f64(),
        "joinLatencyMs": {
            "p50": stats::ms(stats::percentile(&mut latencies, 50.0)),
            "p95": stats::ms(stats::percentile(&mut latencies, 95.0)),
            "p99": stats::ms(stats::percentile(&mut latencies, 99.0)),
        },
        "messageReached": fanout.len(),
        "messageFanoutMs": {
            "p50": stats::ms(stats::percentile(&mut fanout, 50.0)),
            "p99": stats::ms(stats::percentile(&mut fanout, 99.0)),
            "all": stats::ms(fanout.iter().max().copied().unwrap_or_default()),
        },
        "serverRssBytes": { "before": rss_before, "after": rss_after },
        "serverRssPerMemberBytes": per_member.map(|b| b.round()),
        "serverCpuSecondsDuringJoins": match (cpu_before, cpu_after) {
            (Some(b), Some(a)) => Some(a.saturating_sub(b).as_secs_f64()),
            _ => None,
        },
    });
    println!(
        "members {joined}/{n} joined in {:.2}s | join p50 {} ms p99 {} ms | message to all {}: p50 {} ms p99 {} ms max {} ms | server RSS/member {}",
        join_all.as_secs_f64(),
        report["joinLatencyMs"]["p50"],
        report["joinLatencyMs"]["p99"],
        fanout.len(),
        report["messageFanoutMs"]["p50"],
        report["messageFanoutMs"]["p99"],
        report["messageFanoutMs"]["all"],
        per_member.map_or("n/a".into(), |b| format!("{:.1} KiB", b / 1024.0)),
    );
    if let Some(path) = args.json {
        std::fs::write(&path, serde_json::to_string_pretty(&report).unwrap())
            .map_err(|e| format!("{path}: {e}"))?;
    }
    if failures > 0 || fanout.len() < expected {
        return Err(format!(
            "{failures} joins failed, {} of {expected} got the message",
            fanout.len()
        ));
    }
    Ok(())
}

async fn run_media(
    args: &Args,
    addr: SocketAddr,
    pid: Option<u32>,
    admin: &admin::Admin,
) -> Result<(), String> {
    let room = format!("media-{}", std::process::id());
    let (m, n) = (args.publishers, args.subscribers);
    admin.setup_media_room(&room, m, n).await?;
    let epoch = Instant::now();
    let tally = Arc::new(media::Tally::default());
    tally
        .window_start_us
        .store(u64::MAX, std::sync::atomic::Ordering::Relaxed);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    eprintln!("joining {m} publishers and {n} subscribers...");
    let mut members = Vec::new();
    for (prefix, count, publish) in [("p", m, true), ("s", n, false)] {
        for i in 0..count {
            let token = admin.token(&room, &format!("{prefix}{i}")).await?;
            let member = media::join(
                addr,
                &token,
                publish,
                args.pps,
                epoch,
                tally.clone(),
                stop.clone(),
            )
            .await?;
            members.push(member);
        }
    }
    // Let ICE connect and the first keyframes flow before measuring.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let sent_total = |ms: &[media::MediaMember]| -> u64 {
        ms.iter()
            .map(|x| x.sent.load(std::sync::atomic::Ordering::Relaxed))
            .sum()
    };
    tally.window_start_us.store(
        epoch.elapsed().as_micros() as u64,
        std::sync::atomic::Ordering::Relaxed,
    );
    let sent0 = sent_total(&members);
    let cpu0 = pid.and_then(stats::cpu_time);
    let t0 = Instant::now();
    tokio::time::sleep(Duration::from_secs(args.seconds)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let wall = t0.elapsed();
    let cpu1 = pid.and_then(stats::cpu_time);
    let rss = pid.and_then(stats::rss_bytes);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let sent = sent_total(&members) - sent0;
    let receivers_per_packet = (m - 1 + n) as u64;
    let expected = sent * receivers_per_packet;
    let received = tally.received.load(std::sync::atomic::Ordering::Relaxed);
    let gaps = tally.gaps.load(std::sync::atomic::Ordering::Relaxed);
    let mut lat: Vec<Duration> = tally
        .latencies_us
        .lock()
        .map(|v| v.iter().map(|u| Duration::from_micros(*u)).collect())
        .unwrap_or_default();
    for x in members {
        x.close().await;
    }
    let loss = if expected > 0 {
        1.0 - received as f64 / expected as f64
    } else {
        0.0
    };
    let cpu_pct = match (cpu0, cpu1) {
        (Some(a), Some(b)) => Some(100.0 * (b - a).as_secs_f64() / wall.as_secs_f64()),
        _ => None,
    };
    let report = json!({
        "scenario": "media",
        "publishers": m,
        "subscribers": n,
        "ppsPerTrack": args.pps,
        "seconds": wall.as_secs_f64(),
        "packetsSent": sent,
        "packetsExpected": expected,
        "packetsReceived": received,
        "forwardedPerSecond": (received as f64 / wall.as_secs_f64()).round(),
        "lossPercent": (loss.max(0.0) * 10000.0).round() / 100.0,
        "gapPackets": gaps,
        "latencyMs": {
            "p50": stats::ms(stats::percentile(&mut lat, 50.0)),
            "p99": stats::ms(stats::percentile(&mut lat, 99.0)),
        },
        "serverCpuPercent": cpu_pct.map(|c| c.round()),
        "serverRssBytes": rss,
    });
    println!(
        "media {m} pub x {} recv each: forwarded {}/s, loss {}%, latency p50 {} ms p99 {} ms, server CPU {}%, RSS {} MiB",
        receivers_per_packet,
        report["forwardedPerSecond"],
        report["lossPercent"],
        report["latencyMs"]["p50"],
        report["latencyMs"]["p99"],
        report["serverCpuPercent"],
        rss.map_or("n/a".into(), |r| format!("{:.1}", r as f64 / 1048576.0)),
    );
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&report).unwrap())
            .map_err(|e| format!("{path}: {e}"))?;
    }
    if sent == 0 || received == 0 {
        return Err("no media flowed".into());
    }
    Ok(())
}
