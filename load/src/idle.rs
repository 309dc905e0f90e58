//! Idle and slowloris connections: N connections that send nothing and N/10 that send
//! a request head one byte every half second, while a well-behaved client keeps asking
//! `/healthz`. Reports when the server closed them (it should, within its header
//! timeout) and how quickly the well-behaved client was served meanwhile.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::{signal, stats};

/// Waits until the server closes `s` (trickling a header byte every 500 ms when
/// `slow`); the time from `start`, or None when still open after `limit`.
async fn closed_after(
    mut s: TcpStream,
    slow: bool,
    start: Instant,
    limit: Duration,
) -> Option<Duration> {
    let mut buf = [0u8; 512];
    let deadline = tokio::time::Instant::from_std(start + limit);
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => return None,
            r = s.read(&mut buf) => match r {
                Ok(0) | Err(_) => return Some(start.elapsed()),
                Ok(_) => {}
            },
            _ = tick.tick(), if slow => {
                let _ = s.write_all(b"X").await;
            }
        }
    }
}

async fn connect(addr: SocketAddr, i: usize) -> Result<TcpStream, String> {
    let s = TcpSocket::new_v4().map_err(|e| e.to_string())?;
    s.bind(SocketAddr::new(signal::source_ip(i), 0))
        .map_err(|e| e.to_string())?;
    s.connect(addr).await.map_err(|e| format!("connect: {e}"))
}

pub async fn run(addr: SocketAddr, n: usize, limit: Duration) -> Result<Value, String> {
    let slow_n = n / 10;
    eprintln!("opening {n} idle and {slow_n} slowloris connections...");
    let start = Instant::now();
    let mut waits = Vec::with_capacity(n + slow_n);
    for i in 0..n + slow_n {
        let slow = i >= n;
        let mut s = connect(addr, i).await?;
        if slow {
            s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
                .await
                .map_err(|e| e.to_string())?;
        }
        waits.push(tokio::spawn(closed_after(s, slow, start, limit)));
    }
    let opened = start.elapsed();
    // Meanwhile, a well-behaved client on a fresh connection each time.
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .map_err(|e| e.to_string())?;
    let url = format!("http://{addr}/healthz");
    let mut served = vec![];
    let mut failed = 0;
    let mut closed = vec![];
    let mut open = 0;
    let probe = async {
        while start.elapsed() < limit {
            let t = Instant::now();
            match tokio::time::timeout(Duration::from_secs(5), http.get(&url).send()).await {
                Ok(Ok(r)) if r.status().is_success() => served.push(t.elapsed()),
                _ => failed += 1,
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            if waits.iter().all(|w| w.is_finished()) {
                break;
            }
        }
    };
    probe.await;
    for w in waits {
        match w.await.map_err(|e| e.to_string())? {
            Some(t) => closed.push(t),
            None => open += 1,
        }
    }
    let report = json!({
        "scenario": "idle and slowloris connections",
        "idle": n,
        "slowloris": slow_n,
        "openedSeconds": opened.as_secs_f64(),
        "closedByServer": closed.len(),
        "stillOpenAfterSeconds": { "seconds": limit.as_secs(), "count": open },
        "closedAfterMs": {
            "p50": stats::ms(stats::percentile(&mut closed, 50.0)),
            "max": stats::ms(closed.iter().max().copied().unwrap_or_default()),
        },
        "healthz": {
            "served": served.len(),
            "failed": failed,
            "p50Ms": stats::ms(stats::percentile(&mut served, 50.0)),
            "maxMs": stats::ms(served.iter().max().copied().unwrap_or_default()),
        },
    });
    println!(
        "{n} idle + {slow_n} slowloris opened in {:.2} s | closed by the server: {} (p50 {} ms, last {} ms), still open after {} s: {open} | /healthz meanwhile: {} served (p50 {} ms, max {} ms), {failed} failed",
        opened.as_secs_f64(),
        report["closedByServer"],
        report["closedAfterMs"]["p50"],
        report["closedAfterMs"]["max"],
        limit.as_secs(),
        report["healthz"]["served"],
        report["healthz"]["p50Ms"],
        report["healthz"]["maxMs"],
    );
    Ok(report)
}
