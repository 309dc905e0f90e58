//! A pool thread: one socket (plus one per rebound peer), its peers, their timers and
//! their send schedules, in one loop with no lock on the packet path.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use mediaio::{Outgoing, RecvBuffers};
use rtc::peer_connection::event::{RTCPeerConnectionEvent, RTCTrackEvent};
use rtc::peer_connection::message::RTCMessage;
use rtc::peer_connection::state::RTCPeerConnectionState;
use rtc::rtp::Packet;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use rtc::sansio::Protocol;
use rtc::shared::marshal::Unmarshal;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};
use socket2::Socket;

use super::peer::ClientPeer;
pub use super::peer::{Shared, PAYLOAD_FIELDS};
use super::{Cmd, PeerEvent};

/// Batches read per turn before timers and sends get their say.
const READS_PER_TURN: usize = 16;
const MAX_WAIT: Duration = Duration::from_millis(200);
/// A sender more than this behind schedule skips ahead instead of bursting.
const MAX_LAG: Duration = Duration::from_millis(200);

/// SRTP (not SRTCP): RFC 7983's first byte, and an RTP payload type in the second.
fn is_rtp(b: &[u8]) -> bool {
    b.len() >= 12 && (128..192).contains(&b[0]) && !(192..224).contains(&b[1])
}

/// A received packet, counted and handed to the peer's sink.
fn deliver(p: &mut ClientPeer, pkt: Packet, now: Instant) {
    if !p.receive {
        return;
    }
    p.stats
        .received
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    if let Some(sink) = &p.sink {
        let kind = p
            .kinds
            .get(&pkt.header.ssrc)
            .copied()
            .unwrap_or(RtpCodecKind::Video);
        sink.rtp(p.id, kind, &pkt, now);
    }
}

struct Thread {
    sockets: Vec<(Socket, u16)>,
    wake: RawFd,
    rx: Receiver<Cmd>,
    shared: Arc<Shared>,
    epoch: Instant,
    peers: HashMap<u64, ClientPeer>,
    by_ip: HashMap<Ipv4Addr, u64>,
    /// Sockets of rebound peers (index > 0), by peer.
    by_socket: HashMap<usize, u64>,
    timers: BinaryHeap<Reverse<(Instant, u64)>>,
    sends: BinaryHeap<Reverse<(Instant, u64, usize)>>,
    dirty: HashSet<u64>,
    out: Vec<Vec<Outgoing>>,
    recv: RecvBuffers,
}

pub fn run(socket: Socket, wake: RawFd, rx: Receiver<Cmd>, shared: Arc<Shared>, epoch: Instant) {
    let port = socket
        .local_addr()
        .ok()
        .and_then(|a| a.as_socket())
        .map_or(0, |a| a.port());
    let mut t = Thread {
        sockets: vec![(socket, port)],
        wake,
        rx,
        shared,
        epoch,
        peers: HashMap::new(),
        by_ip: HashMap::new(),
        by_socket: HashMap::new(),
        timers: BinaryHeap::new(),
        sends: BinaryHeap::new(),
        dirty: HashSet::new(),
        out: vec![vec![]],
        recv: RecvBuffers::default(),
    };
    t.run();
}

impl Thread {
    fn run(&mut self) {
        loop {
            let now = Instant::now();
            let next = [
                self.timers.peek().map(|Reverse((t, _))| *t),
                self.sends.peek().map(|Reverse((t, _, _))| *t),
            ]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(now + MAX_WAIT);
            let wait = next.saturating_duration_since(now).min(MAX_WAIT);
            let ms = if wait.is_zero() {
                0
            } else {
                wait.as_millis().max(1) as i32
            };
            let mut fds: Vec<RawFd> = self.sockets.iter().map(|(s, _)| s.as_raw_fd()).collect();
            fds.push(self.wake);
            mediaio::wait_any(&fds, ms);
            let mut drain = 0u64;
            // SAFETY: reads 8 bytes into a u64 from our own non-blocking eventfd.
            unsafe {
                libc::read(self.wake, &mut drain as *mut u64 as *mut libc::c_void, 8);
            }
            let now = Instant::now();
            while let Ok(cmd) = self.rx.try_recv() {
                if matches!(cmd, Cmd::Shutdown) {
                    return;
                }
                self.command(cmd, now);
            }
            for s in 0..self.sockets.len() {
                self.read(s, now);
            }
            self.run_timers(now);
            self.run_sends(now);
            self.flush();
        }
    }

    fn read(&mut self, s: usize, now: Instant) {
        let fd = self.sockets[s].0.as_raw_fd();
        for _ in 0..READS_PER_TURN {
            let n = match mediaio::recv_batch(fd, &mut self.recv) {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            for i in 0..n {
                let r = self.recv.got[i];
                if r.len == 0 {
                    continue;
                }
                let id = if s == 0 {
                    match r.dst_ip {
                        Some(IpAddr::V4(ip)) => self.by_ip.get(&ip).copied(),
                        _ => None,
                    }
                } else {
                    self.by_socket.get(&s).copied()
                };
                let Some(id) = id else {
                    continue;
                };
                let Some(p) = self.peers.get_mut(&id) else {
                    continue;
                };
                // After a rebinding the old port is gone, as behind a NAT.
                if p.stalled || p.dark || p.socket != s {
                    continue;
                }
                let bytes = self.recv.data(i);
                // A stream rtc has not seen yet still goes through it once (it announces
                // the track); known ones are decrypted here.
                let known = is_rtp(bytes)
                    && p.kinds.contains_key(&u32::from_be_bytes([
                        bytes[8], bytes[9], bytes[10], bytes[11],
                    ]));
                if known {
                    if let Some(ctx) = p.rx.as_mut() {
                        let mine = ctx.decrypt_rtp(bytes).ok().and_then(|plain| {
                            let mut raw = &plain[..];
                            Packet::unmarshal(&mut raw).ok()
                        });
                        if p.rx_verified {
                            if let Some(pkt) = mine {
                                deliver(p, pkt, now);
                            }
                            continue;
                        }
                        p.rx_check = mine.map(|m| (m.header.sequence_number, m.payload));
                    }
                }
                let data = BytesMut::from(bytes);
                let _ = p.pc.handle_read(TaggedBytesMut {
                    now,
                    transport: TransportContext {
                        local_addr: p.local,
                        peer_addr: r.src,
                        transport_protocol: TransportProtocol::UDP,
                        ecn: None,
                    },
                    message: data,
                });
                self.after_io(id, now);
            }
        }
    }

    fn after_io(&mut self, id: u64, now: Instant) {
        self.dirty.insert(id);
        let epoch = self.epoch;
        let Some(p) = self.peers.get_mut(&id) else {
            return;
        };
        let mut start_sending = false;
        while let Some(ev) = p.pc.poll_event() {
            match ev {
                RTCPeerConnectionEvent::OnConnectionStateChangeEvent(s) => match s {
                    RTCPeerConnectionState::Connected => {
                        start_sending = !p.connected;
                        p.connected = true;
                        if p.receive && p.rx.is_none() {
                            p.arm_rx(self.shared.provider.crypto(), now);
                        }
                        let _ = p.events.send(PeerEvent::Connected);
                    }
                    RTCPeerConnectionState::Failed => {
                        let _ = p.events.send(PeerEvent::Failed);
                    }
                    _ => {}
                },
                RTCPeerConnectionEvent::OnTrack(RTCTrackEvent::OnOpen(init)) => {
                    let kind =
                        p.pc.rtp_receiver(init.receiver_id)
                            .map(|r| r.track().kind())
                            .unwrap_or(RtpCodecKind::Video);
                    p.kinds.insert(init.ssrc, kind);
                    let _ = p.events.send(PeerEvent::Track {
                        kind,
                        ssrc: init.ssrc,
                        stream_id: init.stream_ids.first().cloned().unwrap_or_default(),
                        track_id: init.track_id.clone(),
                    });
                }
                _ => {}
            }
        }
        while let Some(m) = p.pc.poll_read() {
            if let RTCMessage::RtpPacket(_, pkt) = m.message {
                // Our own decryption of this packet must match rtc's before we use it.
                if let Some((seq, payload)) = p.rx_check.take() {
                    if seq == pkt.header.sequence_number && payload == pkt.payload {
                        p.rx_verified = true;
                    } else {
                        p.rx = None;
                    }
                }
                deliver(p, pkt, now);
            }
        }
        if start_sending && p.sending {
            for i in 0..p.tracks.len() {
                self.sends.push(Reverse((now, id, i)));
            }
        }
        let _ = epoch;
    }

    fn run_timers(&mut self, now: Instant) {
        while let Some(Reverse((t, id))) = self.timers.peek().copied() {
            if t > now {
                break;
            }
            self.timers.pop();
            let Some(p) = self.peers.get_mut(&id) else {
                continue;
            };
            if p.deadline != Some(t) {
                continue;
            }
            p.deadline = None;
            let _ = p.pc.handle_timeout(now);
            self.after_io(id, now);
        }
    }

    fn run_sends(&mut self, now: Instant) {
        while let Some(Reverse((t, id, i))) = self.sends.peek().copied() {
            if t > now {
                break;
            }
            self.sends.pop();
            let epoch = self.epoch;
            let Some(p) = self.peers.get_mut(&id) else {
                continue;
            };
            if !p.sending || i >= p.tracks.len() {
                continue;
            }
            let pkt = p.next_packet(i, epoch);
            let sender = p.tracks[i].sender;
            if let Some(mut s) = p.pc.rtp_sender(sender) {
                if s.write_rtp(now, pkt).is_ok() {
                    p.stats
                        .sent
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }
            self.dirty.insert(id);
            let interval = p.tracks[i].interval;
            let mut next = t + interval;
            if now.saturating_duration_since(next) > MAX_LAG {
                next = now + interval;
            }
            self.sends.push(Reverse((next, id, i)));
        }
    }

    fn flush(&mut self) {
        for id in std::mem::take(&mut self.dirty) {
            let Some(p) = self.peers.get_mut(&id) else {
                continue;
            };
            let s = p.socket;
            while let Some(msg) = p.pc.poll_write() {
                // The load tool and the tests send only to loopback.
                if p.dark || !msg.transport.peer_addr.ip().is_loopback() {
                    continue;
                }
                self.out[s].push(Outgoing {
                    dst: msg.transport.peer_addr,
                    src_ip: Some(IpAddr::V4(p.ip)),
                    data: msg.message,
                });
                if self.out[s].len() >= mediaio::BATCH {
                    mediaio::send_batch(self.sockets[s].0.as_raw_fd(), &mut self.out[s]);
                }
            }
            let next = p.pc.poll_timeout();
            if next != p.deadline {
                p.deadline = next;
                if let Some(t) = next {
                    self.timers.push(Reverse((t, id)));
                }
            }
        }
        for (s, out) in self.out.iter_mut().enumerate() {
            if !out.is_empty() {
                mediaio::send_batch(self.sockets[s].0.as_raw_fd(), out);
            }
        }
    }

    fn command(&mut self, cmd: Cmd, now: Instant) {
        match cmd {
            Cmd::Create {
                id,
                ip,
                send,
                receive,
                sink,
                stats,
                events,
            } => {
                let port = self.sockets[0].1;
                match ClientPeer::new(
                    &self.shared,
                    id,
                    ip,
                    port,
                    send,
                    receive,
                    sink,
                    stats,
                    events.clone(),
                    now,
                ) {
                    Ok(p) => {
                        self.by_ip.insert(ip, id);
                        self.peers.insert(id, p);
                        self.dirty.insert(id);
                    }
                    Err(e) => {
                        eprintln!("load: cannot create a client peer: {e}");
                        let _ = events.send(PeerEvent::Failed);
                    }
                }
            }
            Cmd::Offer(id, reply) => {
                let r = match self.peers.get_mut(&id) {
                    Some(p) => p.offer(now),
                    None => Err("no such peer".into()),
                };
                let _ = reply.send(r);
                self.after_io(id, now);
            }
            Cmd::Answer(id, sdp, reply) => {
                let r = match self.peers.get_mut(&id) {
                    Some(p) => p.answer(sdp, now),
                    None => Err("no such peer".into()),
                };
                let _ = reply.send(r);
                self.after_io(id, now);
            }
            Cmd::AcceptAnswer(id, sdp, reply) => {
                let r = match self.peers.get_mut(&id) {
                    Some(p) => p.accept_answer(sdp, now),
                    None => Err("no such peer".into()),
                };
                let _ = reply.send(r);
                self.after_io(id, now);
            }
            Cmd::Sending(id, on) => {
                if let Some(p) = self.peers.get_mut(&id) {
                    let was = p.sending;
                    p.sending = on;
                    if on && !was && p.connected {
                        for i in 0..p.tracks.len() {
                            self.sends.push(Reverse((now, id, i)));
                        }
                    }
                }
            }
            Cmd::Rebind(id) => {
                let Ok(socket) = mediaio::bind("0.0.0.0:0".parse().expect("an address")) else {
                    return;
                };
                let port = socket
                    .local_addr()
                    .ok()
                    .and_then(|a| a.as_socket())
                    .map_or(0, |a| a.port());
                self.sockets.push((socket, port));
                self.out.push(vec![]);
                let s = self.sockets.len() - 1;
                self.by_socket.insert(s, id);
                if let Some(p) = self.peers.get_mut(&id) {
                    p.socket = s;
                }
            }
            Cmd::Stall(id, on) => {
                if let Some(p) = self.peers.get_mut(&id) {
                    p.stalled = on;
                }
            }
            Cmd::Dark(id, on) => {
                if let Some(p) = self.peers.get_mut(&id) {
                    p.dark = on;
                }
            }
            Cmd::Close(id) => {
                if let Some(mut p) = self.peers.remove(&id) {
                    let _ = p.pc.close();
                    let s = p.socket;
                    while let Some(msg) = p.pc.poll_write() {
                        self.out[s].push(Outgoing {
                            dst: msg.transport.peer_addr,
                            src_ip: Some(IpAddr::V4(p.ip)),
                            data: msg.message,
                        });
                    }
                    self.by_ip.remove(&p.ip);
                    self.by_socket.retain(|_, v| *v != id);
                }
            }
            Cmd::Shutdown => {}
        }
    }
}
