//! Join storms: rounds of N members joining one room at once (C in flight), as people
//! arrive at a live event at 9:00 sharp; each round everyone leaves again. Per round:
//! how long it took, join latency percentiles, the kernel's listen-queue overflows
//! (`TcpExtListenOverflows` from /proc/net/netstat) and the server's most threads.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::SinkExt;
use serde_json::{json, Value};
use tokio::sync::{mpsc, watch, Semaphore};
use tokio_tungstenite::tungstenite::Message;

use crate::admin::Admin;
use crate::{signal, stats};

pub struct Plan {
    pub rounds: usize,
    pub members: usize,
    pub concurrency: usize,
}

/// `ListenOverflows` and `ListenDrops` so far, machine-wide (this tool only runs on
/// loopback, so they are ours).
fn listen_counters() -> Option<(u64, u64)> {
    let text = std::fs::read_to_string("/proc/net/netstat").ok()?;
    let mut lines = text.lines().filter(|l| l.starts_with("TcpExt:"));
    let names: Vec<&str> = lines.next()?.split_whitespace().collect();
    let values: Vec<&str> = lines.next()?.split_whitespace().collect();
    let get = |name: &str| -> Option<u64> {
        let i = names.iter().position(|n| *n == name)?;
        values.get(i)?.parse().ok()
    };
    Some((get("ListenOverflows")?, get("ListenDrops")?))
}

/// Samples the server's thread count every 20 ms, keeping the highest since reset.
fn watch_threads(pid: Option<u32>) -> (Arc<AtomicU64>, watch::Sender<bool>) {
    let max = Arc::new(AtomicU64::new(0));
    let (stop_tx, mut stop) = watch::channel(false);
    if let Some(pid) = pid {
        let max = max.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(20));
            loop {
                tokio::select! {
                    _ = stop.changed() => break,
                    _ = tick.tick() => {
                        if let Some(n) = stats::threads(pid) {
                            max.fetch_max(n, Ordering::Relaxed);
                        }
                    }
                }
            }
        });
    }
    (max, stop_tx)
}

pub async fn run(
    addr: SocketAddr,
    admin: &Admin,
    pid: Option<u32>,
    plan: &Plan,
) -> Result<Value, String> {
    let room = format!("storm-{}", std::process::id());
    let n = plan.members;
    eprintln!("setting up room {room} with {n} members...");
    admin.setup_room(&room, n).await?;
    let mut tokens = Vec::with_capacity(n);
    for i in 0..n {
        tokens.push(admin.token(&room, &format!("m{i}")).await?);
    }
    let tokens = Arc::new(tokens);
    let threads_at_start = pid.and_then(stats::threads);
    let (threads_max, stop_sampler) = watch_threads(pid);
    let (arrive_tx, _arrive_rx) = mpsc::unbounded_channel();
    let (_stop_tx, stop_rx) = watch::channel(false);
    let mut rounds = vec![];
    for round in 1..=plan.rounds {
        threads_max.store(0, Ordering::Relaxed);
        let before = listen_counters();
        let gate = Arc::new(Semaphore::new(plan.concurrency));
        let started = Instant::now();
        let mut joins = Vec::with_capacity(n);
        for i in 0..n {
            let permit = gate.clone().acquire_owned().await.unwrap();
            let (tokens, tx, stop) = (tokens.clone(), arrive_tx.clone(), stop_rx.clone());
            joins.push(tokio::spawn(async move {
                let r = signal::join(
                    addr,
                    &tokens[i],
                    signal::source_ip(i),
                    String::new(),
                    tx,
                    stop,
                    true,
                )
                .await;
                drop(permit);
                r
            }));
        }
        let (mut latencies, mut members, failures) =
            signal::gather(joins, &format!("round {round}: ")).await?;
        let took = started.elapsed();
        let after = listen_counters();
        let overflows = match (before, after) {
            (Some(b), Some(a)) => Some(a.0 - b.0),
            _ => None,
        };
        let drops = match (before, after) {
            (Some(b), Some(a)) => Some(a.1 - b.1),
            _ => None,
        };
        let r = json!({
            "round": round,
            "seconds": took.as_secs_f64(),
            "joined": latencies.len(),
            "failures": failures,
            "joinLatencyMs": {
                "p50": stats::ms(stats::percentile(&mut latencies, 50.0)),
                "p99": stats::ms(stats::percentile(&mut latencies, 99.0)),
                "max": stats::ms(latencies.iter().max().copied().unwrap_or_default()),
            },
            "listenOverflows": overflows,
            "listenDrops": drops,
            "serverThreadsMax": pid.map(|_| threads_max.load(Ordering::Relaxed)),
        });
        println!(
            "round {round:>2}: {} joined in {:.2} s | join p50 {} ms p99 {} ms max {} ms | listen overflows {} | server threads max {}",
            r["joined"],
            took.as_secs_f64(),
            r["joinLatencyMs"]["p50"],
            r["joinLatencyMs"]["p99"],
            r["joinLatencyMs"]["max"],
            r["listenOverflows"],
            r["serverThreadsMax"],
        );
        rounds.push(r);
        // Everyone leaves, and the next round starts from an empty room.
        for m in &mut members {
            if let Some(s) = m.sender.as_mut() {
                let leave = json!({"type": "leave"}).to_string();
                let _ = s.send(Message::Text(leave.into())).await;
            }
        }
        drop(members);
        let deadline = Instant::now() + Duration::from_secs(30);
        while admin.live_members(&room).await? > 0 {
            if Instant::now() > deadline {
                return Err(format!("round {round}: members still in after 30 s"));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let _ = stop_sampler.send(true);
    Ok(json!({
        "scenario": "join storm: rounds of N members joining one room at once",
        "members": n,
        "concurrency": plan.concurrency,
        "serverThreadsAtStart": threads_at_start,
        "rounds": rounds,
    }))
}
