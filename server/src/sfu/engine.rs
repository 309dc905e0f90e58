//! The relay's engine: claims a fixed media port for this process (`claim`), binds it
//! once per worker, starts the worker threads, and gives rooms a way to open
//! connections on them. Dropped, it stops the workers and
//! joins their threads.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;

use convene_protocol::signal::PcKind;
use tokio::sync::mpsc::UnboundedSender;

use super::claim::{claim, PortClaim};
use super::config::SfuConfig;
use super::pc_setup::Shared;
use super::pipe::Pipes;
use super::wire::{Cmd, ConnEvent, ConnKey};
use super::worker::{self, Directory, Handle};
use crate::ids::{random_token, UserId};
use mediaio as udp;

pub struct Engine {
    workers: Arc<Vec<Handle>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    next_worker: AtomicUsize,
    next_conn: AtomicU64,
    track_ids: Arc<AtomicU64>,
    /// Where other nodes' relays send this one pipe datagrams (see `pipe`).
    pipe_addr: SocketAddr,
    port: u16,
    /// Dropped after the workers' sockets are closed (fields drop after `drop`).
    _claim: Option<PortClaim>,
}

impl Engine {
    pub fn start(config: &SfuConfig) -> io::Result<Arc<Self>> {
        let workers = config.workers.max(1);
        let shared = Arc::new(
            Shared::new(config.consent_timeout, config.srtp_fallback)
                .map_err(|e| io::Error::other(format!("media setup: {e}")))?,
        );
        // A port the OS picks is new, so only a fixed one needs claiming.
        let claimed = match config.port {
            0 => None,
            port => Some(claim(SocketAddr::new(config.bind_ip, port))?),
        };
        // The first socket fixes the port (the OS picks one when asked for 0); the
        // others share it.
        let first = udp::bind(SocketAddr::new(config.bind_ip, config.port))?;
        let port = first
            .local_addr()?
            .as_socket()
            .map(|a| a.port())
            .ok_or_else(|| io::Error::other("the media socket has no port"))?;
        let mut sockets = vec![first];
        for _ in 1..workers {
            sockets.push(udp::bind(SocketAddr::new(config.bind_ip, port))?);
        }
        let mut handles = Vec::with_capacity(workers);
        let mut receivers = Vec::with_capacity(workers);
        for _ in 0..workers {
            let (tx, rx) = std::sync::mpsc::channel();
            handles.push(Handle {
                tx,
                waker: udp::Waker::new()?,
            });
            receivers.push(rx);
        }
        let peers = Arc::new(handles);
        let directory: Arc<Directory> = Arc::new(RwLock::new(HashMap::new()));
        let track_ids = Arc::new(AtomicU64::new(1));
        let candidates = config.candidates(port);
        let pipes = Arc::new(Pipes::default());
        let mut threads = Vec::with_capacity(workers);
        for (i, (socket, rx)) in sockets.into_iter().zip(receivers).enumerate() {
            let setup = worker::Setup {
                index: i as u16,
                socket,
                port,
                candidates: candidates.clone(),
                public_ip: config.public_ip,
                shared: shared.clone(),
                rx,
                peers: peers.clone(),
                directory: directory.clone(),
                track_ids: track_ids.clone(),
                pipes: pipes.clone(),
            };
            threads.push(
                std::thread::Builder::new()
                    .name(format!("convene-media-{i}"))
                    .spawn(move || worker::run(setup))?,
            );
        }
        tracing::info!(port, workers, candidates = ?candidates, "media relay listening");
        Ok(Arc::new(Self {
            workers: peers,
            threads: Mutex::new(threads),
            next_worker: AtomicUsize::new(0),
            next_conn: AtomicU64::new(1),
            track_ids,
            pipe_addr: SocketAddr::new(config.node_ip(), port),
            port,
            _claim: claimed,
        }))
    }

    /// The UDP port all media uses.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Whether every worker thread is still running (its socket bound and served).
    pub fn running(&self) -> bool {
        let threads = self.threads.lock().unwrap_or_else(|p| p.into_inner());
        !threads.is_empty() && threads.iter().all(|t| !t.is_finished())
    }

    /// The address other nodes' relays reach this one at: its first advertised one.
    pub fn pipe_addr(&self) -> SocketAddr {
        self.pipe_addr
    }

    /// A number for a track new to this relay (one received from another node).
    pub fn new_track(&self) -> u64 {
        self.track_ids.fetch_add(1, Ordering::Relaxed)
    }

    /// The next worker in turn.
    pub fn pick_worker(&self) -> u16 {
        (self.next_worker.fetch_add(1, Ordering::Relaxed) % self.workers.len()) as u16
    }

    /// Opens a connection for `user`'s `role` leg on the next worker in turn.
    pub fn open(&self, user: &UserId, role: PcKind, events: UnboundedSender<ConnEvent>) -> ConnKey {
        let worker = self.pick_worker();
        let key = ConnKey {
            worker,
            id: self.next_conn.fetch_add(1, Ordering::Relaxed),
        };
        // The ufrag names the connection on the shared port: long enough to be
        // unguessable and unique. Ice-chars only.
        self.send(
            worker,
            Cmd::Open {
                key,
                user: user.clone(),
                role,
                ufrag: random_token(16),
                pwd: random_token(32),
                events,
            },
        );
        key
    }

    pub fn send(&self, worker: u16, cmd: Cmd) {
        if let Some(w) = self.workers.get(worker as usize) {
            w.send(cmd);
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        for w in self.workers.iter() {
            w.send(Cmd::Shutdown);
        }
        let threads = std::mem::take(&mut *self.threads.lock().unwrap_or_else(|p| p.into_inner()));
        for t in threads {
            let _ = t.join();
        }
    }
}
