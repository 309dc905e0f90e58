//! Signaling members: each one a real WebSocket that joins, then reads every frame and
//! reports when the benchmark's chat message reaches it.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpSocket;
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

/// Connections per source address, well inside the ephemeral port range, so large N
/// spreads over 127.0.0.1, 127.0.0.2, ...
pub const PER_SOURCE_IP: usize = 20_000;

pub fn source_ip(i: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1 + (i / PER_SOURCE_IP) as u8))
}

fn small_buffers() -> WebSocketConfig {
    // tungstenite's defaults hold 128 KiB per socket; at 20,000 sockets that alone is
    // 2.5 GB in the tool.
    WebSocketConfig::default()
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0)
        .max_write_buffer_size(64 * 1024)
}

pub struct Member {
    pub join_latency: Duration,
    pub sender: Option<
        futures_util::stream::SplitSink<
            tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>,
            Message,
        >,
    >,
}

/// Joins as one member and spawns its reader. The reader sends the arrival time of a
/// chat message whose text is `marker` on `arrivals`, and stops on `stop`.
pub async fn join(
    server: SocketAddr,
    token: &str,
    source: IpAddr,
    marker: String,
    arrivals: mpsc::UnboundedSender<Instant>,
    mut stop: watch::Receiver<bool>,
    keep_sender: bool,
) -> Result<Member, String> {
    let started = Instant::now();
    let socket = TcpSocket::new_v4().map_err(|e| e.to_string())?;
    socket
        .bind(SocketAddr::new(source, 0))
        .map_err(|e| format!("bind {source}: {e}"))?;
    let stream = socket
        .connect(server)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let url = format!("ws://{server}/v1/rtc?token={token}");
    let (ws, _) = tokio_tungstenite::client_async_with_config(url, stream, Some(small_buffers()))
        .await
        .map_err(|e| format!("upgrade: {e}"))?;
    let (sink, mut read) = ws.split();
    // The first frame is `joined` (or an error and `left`).
    loop {
        match tokio::time::timeout(Duration::from_secs(30), read.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => {
                if t.contains("\"type\":\"joined\"") {
                    break;
                }
                return Err(format!("refused: {t}"));
            }
            Ok(Some(Ok(_))) => continue,
            other => return Err(format!("no joined: {other:?}")),
        }
    }
    let join_latency = started.elapsed();
    let needle = format!("\"text\":\"{marker}\"");
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = stop.changed() => break,
                f = read.next() => match f {
                    Some(Ok(Message::Text(t))) => {
                        if t.contains(&needle) {
                            let _ = arrivals.send(Instant::now());
                        }
                    }
                    Some(Ok(_)) => {}
                    _ => break,
                }
            }
        }
    });
    Ok(Member {
        join_latency,
        sender: if keep_sender { Some(sink) } else { None },
    })
}

pub async fn send_chat(member: &mut Member, text: &str) -> Result<(), String> {
    let msg = serde_json::json!({"type": "sendMessage", "text": text}).to_string();
    member
        .sender
        .as_mut()
        .ok_or("no sender kept")?
        .send(Message::Text(msg.into()))
        .await
        .map_err(|e| e.to_string())
}

/// Many members joining at once.
pub struct Crowd<'a> {
    pub server: SocketAddr,
    /// Member `i` (of this process) connects from `source_ip(first + i + 1)`: several
    /// processes of one run keep to their own share of the source addresses.
    pub first: usize,
    pub concurrency: usize,
    pub marker: &'a str,
    pub arrivals: &'a mpsc::UnboundedSender<Instant>,
    pub stop: &'a watch::Receiver<bool>,
}

impl Crowd<'_> {
    /// Joins one member per token, `concurrency` at a time, calling `joined` after each
    /// attempt; then `gather`s them (failures printed with `label`).
    pub async fn join(
        &self,
        tokens: Vec<String>,
        joined: impl Fn() + Clone + Send + 'static,
        label: &str,
    ) -> Result<(Vec<Duration>, Vec<Member>, usize), String> {
        let gate = std::sync::Arc::new(tokio::sync::Semaphore::new(self.concurrency));
        let mut joins = Vec::with_capacity(tokens.len());
        for (i, token) in tokens.into_iter().enumerate() {
            let permit = gate.clone().acquire_owned().await.unwrap();
            let (server, source) = (self.server, source_ip(self.first + i + 1));
            let (tx, stop) = (self.arrivals.clone(), self.stop.clone());
            let (marker, joined) = (self.marker.to_string(), joined.clone());
            joins.push(tokio::spawn(async move {
                let r = join(server, &token, source, marker, tx, stop, false).await;
                drop(permit);
                joined();
                r
            }));
        }
        gather(joins, label).await
    }
}

/// Waits for every join: their latencies, the members that joined, and how many failed
/// (the first three failures are printed, prefixed with `label`).
pub async fn gather(
    joins: Vec<tokio::task::JoinHandle<Result<Member, String>>>,
    label: &str,
) -> Result<(Vec<Duration>, Vec<Member>, usize), String> {
    let mut latencies = Vec::with_capacity(joins.len());
    let mut members = Vec::with_capacity(joins.len());
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
                    eprintln!("  {label}join failed: {e}");
                }
            }
        }
    }
    Ok((latencies, members, failures))
}
