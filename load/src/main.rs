//! convene-load: N signaling members in one room against a Convene server, reporting
//! join latency, the server's memory per member and how fast one chat message reaches
//! everyone; or publishers and subscribers with media against Convene or Janus's
//! VideoRoom; or join storms (`--scenario storm`), or idle and slowloris connections
//! (`--scenario idle`). `--spawn BIN` starts a Convene server of its own on loopback.

mod admin;
mod convene_media;
mod idle;
mod janus;
mod media;
mod media_run;
mod part;
mod progress;
mod signal;
mod stats;
mod storm;

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use serde_json::json;
use tokio::sync::{mpsc, watch};

#[derive(Debug, Parser)]
#[command(name = "convene-load", about = "Load Convene with signaling members")]
struct Args {
    /// `signal`: N signaling members; `media`: publishers and subscribers with RTP;
    /// `storm`: --rounds of N members joining at once, then leaving; `idle`: N idle and
    /// N/10 slowloris connections, which the server should close; `setup`: a room with
    /// N members; `part`: N of that room's members joining through one node of several,
    /// timing one message to all (bench/spread.sh runs several parts at once).
    #[arg(long, default_value = "signal")]
    scenario: String,
    /// media: the SFU under test, `convene` or `janus` (then give --janus-url and --pid).
    #[arg(long, default_value = "convene")]
    target: String,
    /// media: Janus's HTTP API root, e.g. http://127.0.0.1:8088/janus (loopback only).
    #[arg(long)]
    janus_url: Option<String>,
    /// media: members that publish (and subscribe to the other publishers).
    #[arg(long, default_value_t = 1)]
    publishers: usize,
    /// media: receive-only members.
    #[arg(long, default_value_t = 10)]
    subscribers: usize,
    /// media: what each publisher sends: `video` (VP8 at --pps, 1000-byte payloads),
    /// `audio` (Opus-sized 120-byte payloads at 50/s) or `av` (both).
    #[arg(long, value_enum, default_value = "video")]
    kind: media::Kind,
    /// media: packets per second per video track.
    #[arg(long, default_value_t = 100)]
    pps: u32,
    /// media: threads of light client peers (each with one UDP socket; every peer has
    /// an address of its own on 127.50.0.0/16).
    #[arg(long, default_value_t = 1)]
    client_threads: usize,
    /// media: seconds measured, after the connections settle; idle: how long to wait
    /// for the server to close the connections.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// storm: how many times N members join and leave.
    #[arg(long, default_value_t = 15)]
    rounds: usize,
    /// Members to join to one room.
    #[arg(long, default_value_t = 1000)]
    members: usize,
    /// Joins in flight at once.
    #[arg(long, default_value_t = 200)]
    concurrency: usize,
    /// Start this `convene` binary on a free loopback port (with a temp data dir).
    #[arg(long)]
    spawn: Option<String>,
    /// Pin the spawned server to these CPUs (`taskset -c`), e.g. `1`; pin the tool
    /// itself with `taskset -c 0 convene-load ...`, so the two never share a core.
    #[arg(long)]
    spawn_cpus: Option<String>,
    /// Media worker threads of the spawned server [default: the server's default].
    #[arg(long)]
    spawn_media_workers: Option<usize>,
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
    /// setup, part: the room (`setup` creates it with members m0.. and a host).
    #[arg(long)]
    room: Option<String>,
    /// part: the index of this part's first member (its members are m<first>...).
    #[arg(long, default_value_t = 0)]
    first: usize,
    /// part: the directory the parts of one run meet in (see bench/spread.sh).
    #[arg(long)]
    barrier: Option<String>,
    /// part: this part joins the host too and sends the message once the session
    /// counts this many members (every part's).
    #[arg(long)]
    host_for: Option<usize>,
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

async fn spawn_server(
    bin: &str,
    key: &str,
    cpus: Option<&str>,
    workers: Option<usize>,
) -> Result<(Spawned, SocketAddr), String> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| e.to_string())?
        .port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let dir = std::env::temp_dir().join(format!("convene-load-{}-{port}", std::process::id()));
    let mut cmd = match cpus {
        Some(c) => {
            let mut t = tokio::process::Command::new("taskset");
            t.args(["-c", c, bin]);
            t
        }
        None => tokio::process::Command::new(bin),
    };
    if let Some(w) = workers {
        cmd.env("CONVENE_MEDIA_WORKERS", w.to_string());
    }
    let child = cmd
        .args(["serve", "--listen", &addr.to_string()])
        .arg("--data-dir")
        .arg(&dir)
        .env("CONVENE_ADMIN_KEY", key)
        .env(
            "CONVENE_LOG",
            "warn,rtc=error,rtc_ice=error,rtc_dtls=error,rtc_srtp=error",
        )
        // Media on loopback too (this tool sends nothing elsewhere), on a port the OS
        // picks so a server already running is not in the way.
        .env("CONVENE_MEDIA_IP", "127.0.0.1")
        .env("CONVENE_MEDIA_PORT", "0")
        // The tool's members come from a few loopback addresses.
        .env("CONVENE_MAX_CONNECTIONS_PER_IP", "0")
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
    if args.scenario == "media" && args.target == "janus" {
        return run_janus(&args).await;
    }
    let key = args
        .admin_key
        .clone()
        .unwrap_or_else(|| "convene-load-admin-key-0123456789".to_string());
    let (spawned, addr) = match (&args.spawn, args.server) {
        (Some(bin), _) => {
            let (s, a) = spawn_server(
                bin,
                &key,
                args.spawn_cpus.as_deref(),
                args.spawn_media_workers,
            )
            .await?;
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
        if args.target != "convene" {
            return Err(format!(
                "unknown target '{}' (convene or janus)",
                args.target
            ));
        }
        let sfu = media_run::Sfu::Convene {
            addr,
            admin: &admin,
        };
        let report = media_run::run(&plan(&args), sfu, pid).await;
        drop(spawned);
        return finish_media(&args, report);
    }
    if args.scenario == "idle" {
        let report = idle::run(addr, args.members, Duration::from_secs(args.seconds)).await;
        drop(spawned);
        return write_report(&args, &report?);
    }
    if args.scenario == "storm" {
        let plan = storm::Plan {
            rounds: args.rounds,
            members: args.members,
            concurrency: args.concurrency,
        };
        let report = storm::run(addr, &admin, pid, &plan).await;
        drop(spawned);
        return write_report(&args, &report?);
    }
    if args.scenario == "setup" || args.scenario == "part" {
        let room = args.room.clone().ok_or("--room is required")?;
        if args.scenario == "setup" {
            eprintln!("setting up room {room} with {} members...", args.members);
            admin.setup_room(&room, args.members).await?;
            return Ok(());
        }
        let plan = part::Plan {
            room,
            first: args.first,
            members: args.members,
            concurrency: args.concurrency,
            barrier: args.barrier.clone().ok_or("--barrier is required")?.into(),
            host_for: args.host_for,
        };
        let report = part::run(addr, &admin, &plan).await?;
        drop(spawned);
        return write_report(&args, &report);
    }
    if args.scenario != "signal" {
        return Err(format!(
            "unknown scenario '{}' (signal, media, storm, idle, setup or part)",
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
    let bar = Arc::new(progress::Progress::new("joined", n));
    let started = Instant::now();
    let crowd = signal::Crowd {
        server: addr,
        first: 0,
        concurrency: args.concurrency,
        marker: &marker,
        arrivals: &arrive_tx,
        stop: &stop_rx,
    };
    let counted = bar.clone();
    let (mut latencies, members, failures) = crowd.join(tokens, move || counted.inc(), "").await?;
    bar.finish();
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
            "p95": stats::ms(stats::percentile(&mut fanout, 95.0)),
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
        "members {joined}/{n} joined in {:.2}s | join p50 {} ms p95 {} ms p99 {} ms | message to all {}: p50 {} ms p99 {} ms max {} ms | server RSS/member {}",
        join_all.as_secs_f64(),
        report["joinLatencyMs"]["p50"],
        report["joinLatencyMs"]["p95"],
        report["joinLatencyMs"]["p99"],
        fanout.len(),
        report["messageFanoutMs"]["p50"],
        report["messageFanoutMs"]["p99"],
        report["messageFanoutMs"]["all"],
        per_member.map_or("n/a".into(), |b| format!("{:.1} KiB", b / 1024.0)),
    );
    write_report(&args, &report)?;
    if failures > 0 || fanout.len() < expected {
        return Err(format!(
            "{failures} joins failed, {} of {expected} got the message",
            fanout.len()
        ));
    }
    Ok(())
}

/// Writes the JSON report where `--json` says, if it does.
fn write_report(args: &Args, report: &serde_json::Value) -> Result<(), String> {
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(report).unwrap())
            .map_err(|e| format!("{path}: {e}"))?;
    }
    Ok(())
}

fn plan(args: &Args) -> media_run::Plan {
    media_run::Plan {
        client_threads: args.client_threads,
        publishers: args.publishers,
        subscribers: args.subscribers,
        kind: args.kind,
        video_pps: args.pps,
        seconds: args.seconds,
        // Each media join is a few round trips and one or two peer connections.
        concurrency: args.concurrency.min(20),
    }
}

/// Media against a running Janus (started by bench/janus.sh; its pid via --pid).
async fn run_janus(args: &Args) -> Result<(), String> {
    let url = args
        .janus_url
        .as_deref()
        .ok_or("--target janus needs --janus-url")?;
    let host = reqwest::Url::parse(url)
        .map_err(|e| format!("--janus-url: {e}"))?
        .host_str()
        .unwrap_or_default()
        .to_string();
    let loopback = host
        .parse::<std::net::IpAddr>()
        .map(|ip| ip.is_loopback())
        .unwrap_or(false);
    if !loopback {
        return Err(LOOPBACK_ONLY.into());
    }
    let sfu = media_run::Sfu::Janus(janus::Janus::new(url)?);
    let report = media_run::run(&plan(args), sfu, args.pid).await;
    finish_media(args, report)
}

/// Prints the summary line, writes the JSON report (also for a failed run, so a ladder
/// can read why it stopped) and turns a recorded error into the exit status.
fn finish_media(args: &Args, report: serde_json::Value) -> Result<(), String> {
    let r = &report;
    println!(
        "{} media {} pub x {} sub ({}): received {}/s, loss {}%, latency p50 {} ms p95 {} ms p99 {} ms, first media p50 {} ms, server CPU {}%, RSS {} MiB, tool CPU {}%, other CPU {}%",
        r["target"].as_str().unwrap_or("?"),
        r["publishers"],
        r["subscribers"],
        r["kind"].as_str().unwrap_or("?"),
        r["receivedPerSecond"],
        r["lossPercent"],
        r["latencyMs"]["p50"],
        r["latencyMs"]["p95"],
        r["latencyMs"]["p99"],
        r["timeToFirstMediaMs"]["p50"],
        r["serverCpuPercent"],
        r["serverRssBytes"]
            .as_u64()
            .map_or("n/a".into(), |b| format!("{:.1}", b as f64 / 1048576.0)),
        r["loadToolCpuPercent"],
        r["otherCpuPercent"],
    );
    write_report(args, &report)?;
    match report["error"].as_str() {
        Some(e) => Err(e.to_string()),
        None => Ok(()),
    }
}
