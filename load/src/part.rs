//! One part of a room spread over several nodes and several tool processes
//! (`--scenario part`, driven by bench/spread.sh): this process joins `--members`
//! members (`m<first>`, ...) through one node, says so in the barrier directory, and
//! times how long one chat message takes to reach each of them. The part given `--host`
//! also joins the host, waits until the room's session counts every member of every
//! part, then writes the send time (wall clock, shared by the processes on this machine)
//! to `<barrier>/sent` and sends the message.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::StreamExt;
use serde_json::{json, Value};
use tokio::sync::{mpsc, watch};

use crate::admin::Admin;
use crate::{signal, stats};

pub struct Plan {
    pub room: String,
    pub first: usize,
    pub members: usize,
    pub concurrency: usize,
    pub barrier: PathBuf,
    /// Some(total): this part sends the message once the session counts `total` members.
    pub host_for: Option<usize>,
}

/// Microseconds since the epoch.
fn wall_us(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap_or_default().as_micros() as u64
}

async fn wait_for_file(path: &PathBuf, wait: Duration) -> Result<String, String> {
    let deadline = Instant::now() + wait;
    loop {
        if let Ok(s) = std::fs::read_to_string(path) {
            if !s.is_empty() {
                return Ok(s);
            }
        }
        if Instant::now() > deadline {
            return Err(format!("{} did not appear in {wait:?}", path.display()));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub async fn run(addr: SocketAddr, admin: &Admin, plan: &Plan) -> Result<Value, String> {
    let name = format!("part-{}", plan.first);
    let users: Vec<String> = (plan.first..plan.first + plan.members)
        .map(|i| format!("m{i}"))
        .collect();
    eprintln!("{name}: minting {} tokens...", users.len());
    let tokens: Vec<Result<String, String>> = futures_util::stream::iter(&users)
        .map(|u| admin.token(&plan.room, u))
        .buffered(32)
        .collect()
        .await;
    let tokens: Vec<String> = tokens.into_iter().collect::<Result<_, _>>()?;
    // One instant and the wall clock read together: arrival instants become wall times.
    let (anchor, anchor_wall) = (Instant::now(), SystemTime::now());
    let marker = format!("spread-{}", plan.room);
    let (arrive_tx, mut arrive_rx) = mpsc::unbounded_channel();
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut host = match plan.host_for {
        Some(_) => {
            let token = admin.token(&plan.room, "host").await?;
            let m = signal::join(
                addr,
                &token,
                signal::source_ip(0),
                marker.clone(),
                arrive_tx.clone(),
                stop_rx.clone(),
                true,
            )
            .await?;
            Some(m)
        }
        None => None,
    };
    eprintln!("{name}: joining {} members through {addr}...", tokens.len());
    let started = Instant::now();
    // Source addresses by member index across all parts: 127.0.0.1 for m0..m19998,
    // 127.0.0.2 for the next 20,000, ... (each address has its own ephemeral ports).
    let crowd = signal::Crowd {
        server: addr,
        first: plan.first,
        concurrency: plan.concurrency,
        marker: &marker,
        arrivals: &arrive_tx,
        stop: &stop_rx,
    };
    let (mut latencies, members, failures) =
        crowd.join(tokens, || {}, &format!("{name}: ")).await?;
    let join_all = started.elapsed();
    let joined = latencies.len();
    eprintln!("{name}: {joined} joined, {failures} failed, in {join_all:.1?}");
    let said = json!({"joined": joined, "failures": failures});
    std::fs::write(
        plan.barrier.join(format!("joined-{}", plan.first)),
        said.to_string(),
    )
    .map_err(|e| e.to_string())?;

    let sent_file = plan.barrier.join("sent");
    if let (Some(total), Some(h)) = (plan.host_for, host.as_mut()) {
        let deadline = Instant::now() + Duration::from_secs(600);
        loop {
            let n = admin.live_members(&plan.room).await? as usize;
            // The host is a member too.
            if n > total {
                break;
            }
            if Instant::now() > deadline {
                return Err(format!("the session counts {n} members, not {}", total + 1));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        // Written before sending, so no part can see the message before the time.
        std::fs::write(&sent_file, wall_us(SystemTime::now()).to_string())
            .map_err(|e| e.to_string())?;
        signal::send_chat(h, &marker).await?;
    }
    let sent: u64 = wait_for_file(&sent_file, Duration::from_secs(900))
        .await?
        .trim()
        .parse()
        .map_err(|e| format!("sent: {e}"))?;
    let expected = joined + usize::from(host.is_some());
    let mut fanout_ms: Vec<f64> = Vec::with_capacity(expected);
    while fanout_ms.len() < expected {
        match tokio::time::timeout(Duration::from_secs(60), arrive_rx.recv()).await {
            Ok(Some(at)) => {
                let wall = anchor_wall + at.duration_since(anchor);
                let us = wall_us(wall).saturating_sub(sent);
                fanout_ms.push(us as f64 / 1000.0);
            }
            _ => break,
        }
    }
    let _ = stop_tx.send(true);
    drop(members);
    drop(host);
    Ok(json!({
        "part": plan.first,
        "server": addr.to_string(),
        "members": plan.members,
        "joined": joined,
        "joinFailures": failures,
        "joinAllSeconds": join_all.as_secs_f64(),
        "joinLatencyMs": {
            "p50": stats::ms(stats::percentile(&mut latencies, 50.0)),
            "p99": stats::ms(stats::percentile(&mut latencies, 99.0)),
        },
        "expected": expected,
        "fanoutMs": fanout_ms,
    }))
}
