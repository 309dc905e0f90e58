//! One media worker: a thread that owns a socket on the shared media port and a share of
//! the connections, and runs them without a lock on the packet path.
//!
//! Each turn it waits (poll) for its socket, its wake-up fd or the next connection
//! deadline; takes the commands queued for it; reads datagrams a batch at a time
//! (`recvmmsg`); routes each by its source address (learned from the first authentic
//! STUN binding request, whose USERNAME names the connection) to the connection's
//! `rtc` state machine; forwards the RTP that comes out; and writes everything the
//! connections want sent in batches (`sendmmsg`).
//!
//! Another worker's packets: the kernel picks a socket by 4-tuple, so a connection's
//! datagrams may reach a worker that does not own it. That worker hands them to the
//! owner (once per batch, through the owner's queue), and after the first one knows
//! the address belongs there. A publisher's packets reach subscribers on other workers
//! the same way: one copy per track per worker per batch, then each worker writes to
//! its own subscribers. Queues between workers are unbounded in count but drained
//! every turn; a subscriber whose client is slow loses its own UDP packets in the
//! network, never anyone else's.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::Receiver;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use convene_protocol::signal::PcKind;
use rtc::peer_connection::event::{RTCPeerConnectionEvent, RTCTrackEvent, RTCTrackEventInit};
use rtc::peer_connection::message::RTCMessage;
use rtc::peer_connection::state::RTCPeerConnectionState;
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtcp::receiver_report::ReceiverReport;
use rtc::rtcp::sender_report::SenderReport;
use rtc::rtcp::transport_feedbacks::transport_layer_cc::TransportLayerCc;
use rtc::rtcp::transport_feedbacks::transport_layer_nack::{NackPair, TransportLayerNack};
use rtc::rtp;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use rtc::rtp_transceiver::RTCRtpReceiverId;
use rtc::sansio::Protocol;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};
use socket2::Socket;

use super::bwe;
use super::conn::{Conn, Inbound, LegError, SameCodec};
use super::history::{History, MAX_RESEND_PER_NACK};
use super::pc_setup::{Codec, Shared};
use super::pipe::{self, End, Pipes};
use super::port::MediaKind;
use super::quality;
use super::simulcast::{self, Layers, LAYERS};
use super::stats;
use super::stun;
use super::wire::{Cmd, ConnEvent, ConnKey, Stray, TrackKey};
use mediaio::{self as udp, Outgoing, RecvBuffers, Waker};

/// At most one keyframe request per track this often, however many viewers ask.
pub const PLI_INTERVAL: Duration = Duration::from_millis(500);
/// How often each sent stream gets an RTCP sender report (which lets the browser line
/// up a member's audio and video).
const REPORT_INTERVAL: Duration = Duration::from_secs(1);
/// Batches read per turn before commands and timers get their say.
const READS_PER_TURN: usize = 16;
/// Longest sleep: a turn at least this often, whatever the deadlines say.
const MAX_WAIT: Duration = Duration::from_millis(500);

/// Which connection a ufrag names, for datagrams from addresses not seen yet.
pub type Directory = RwLock<HashMap<String, ConnKey>>;

/// How other threads reach a worker.
pub struct Handle {
    pub tx: std::sync::mpsc::Sender<Cmd>,
    pub waker: Waker,
}

impl Handle {
    pub fn send(&self, cmd: Cmd) {
        if self.tx.send(cmd).is_ok() {
            self.waker.wake();
        }
    }
}

pub struct Setup {
    pub index: u16,
    pub socket: Socket,
    pub port: u16,
    /// The host candidates every connection advertises.
    pub candidates: Vec<SocketAddr>,
    /// NAT 1:1: the address clients send to, whatever interface it reaches.
    pub public_ip: Option<IpAddr>,
    pub shared: Arc<Shared>,
    pub rx: Receiver<Cmd>,
    pub peers: Arc<Vec<Handle>>,
    pub directory: Arc<Directory>,
    pub track_ids: Arc<AtomicU64>,
    pub pipes: Arc<Pipes>,
}

/// Where datagrams from an address go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dest {
    Local(u64),
    Worker(u16),
}

/// A track's forwarding on this worker.
struct Route {
    kind: MediaKind,
    /// On the publisher's worker: its connection, receiver and SSRC (the first
    /// layer's, in simulcast).
    source: Option<(u64, RTCRtpReceiverId, u32)>,
    /// On the publisher's worker, in simulcast: the other layers' SSRCs.
    more_ssrcs: Vec<u32>,
    /// Its payload is VP8 (whose descriptor the relay reads: see `simulcast`).
    vp8: bool,
    /// Video: its layers as they arrive here.
    layers: Layers,
    source_worker: u16,
    gate: bool,
    /// Subscribe connections here that send this track.
    legs: Vec<u64>,
    /// On the track's source worker (its publisher's, or its pipe's): other workers
    /// with subscribers.
    fanout: Vec<u16>,
    last_pli: Option<Instant>,
    pli_pending: bool,
    /// Video with subscribers here: what was sent, for their NACKs, per layer.
    history: [Option<Box<History>>; LAYERS],
    /// Received from another node's relay (its address, the pipe): this worker is the
    /// track's source here.
    pipe_in: Option<(SocketAddr, u64)>,
    /// On the publisher's worker: other nodes' relays it is sent to (see `pipe`).
    pipes_out: Vec<(SocketAddr, u64)>,
}

impl Route {
    fn new(kind: MediaKind, source_worker: u16) -> Self {
        Self {
            kind,
            source: None,
            more_ssrcs: vec![],
            vp8: false,
            layers: Layers::default(),
            source_worker,
            gate: false,
            legs: vec![],
            fanout: vec![],
            last_pli: None,
            pli_pending: false,
            history: Default::default(),
            pipe_in: None,
            pipes_out: vec![],
        }
    }

    /// Whether anything still needs it: a source (a publisher or a pipe), a leg, or
    /// (on its source worker) another worker's legs, which keep their place while the
    /// source is away (a pipe closed while its viewers hide the track).
    fn needed(&self) -> bool {
        self.source.is_some()
            || self.pipe_in.is_some()
            || !self.legs.is_empty()
            || !self.fanout.is_empty()
    }
}

struct Worker {
    s: Setup,
    fd: i32,
    conns: HashMap<u64, Conn>,
    by_addr: HashMap<SocketAddr, Dest>,
    timers: BinaryHeap<Reverse<(Instant, u64)>>,
    routes: HashMap<TrackKey, Route>,
    /// Keyframe requests deferred by the throttle, by when they are due.
    pli_due: Vec<(Instant, TrackKey)>,
    /// When sender reports are next due.
    next_reports: Instant,
    /// When each connection's link figures are next due (see `quality`).
    next_quality: Instant,
    /// Connections that may have something to send, a new deadline or an offer to make.
    dirty: HashSet<u64>,
    /// Connections that were only written to (forwarded packets): they need a flush of
    /// their output but nothing else, which is most of the work, so it is kept cheap.
    written: Vec<u64>,
    out: Vec<Outgoing>,
    forward_out: Vec<Vec<(TrackKey, u8, rtp::Packet)>>,
    stray_out: Vec<Vec<Stray>>,
    recv: RecvBuffers,
}

pub fn run(s: Setup) {
    let workers = s.peers.len();
    let fd = s.socket.as_raw_fd();
    let mut w = Worker {
        s,
        fd,
        conns: HashMap::new(),
        by_addr: HashMap::new(),
        timers: BinaryHeap::new(),
        routes: HashMap::new(),
        pli_due: vec![],
        next_reports: Instant::now() + REPORT_INTERVAL,
        next_quality: Instant::now() + quality::WINDOW,
        dirty: HashSet::new(),
        written: Vec::with_capacity(1024),
        out: Vec::with_capacity(udp::BATCH * 4),
        forward_out: (0..workers).map(|_| vec![]).collect(),
        stray_out: (0..workers).map(|_| vec![]).collect(),
        recv: RecvBuffers::default(),
    };
    w.run();
}

fn context(local: SocketAddr, peer: SocketAddr) -> TransportContext {
    TransportContext {
        local_addr: local,
        peer_addr: peer,
        transport_protocol: TransportProtocol::UDP,
        ecn: None,
    }
}

/// The wall clock as a 64-bit NTP timestamp (seconds since 1900, 32.32 fixed point).
fn ntp_now() -> u64 {
    let since_unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = since_unix.as_secs() + 2_208_988_800;
    let frac = (u64::from(since_unix.subsec_nanos()) << 32) / 1_000_000_000;
    (secs << 32) | frac
}

/// A header and payload in one buffer, as SRTP encrypts them.
fn marshal(header: &rtp::header::Header, payload: &[u8]) -> Option<BytesMut> {
    use rtc::shared::marshal::{Marshal, MarshalSize};
    let n = header.marshal_size();
    let mut buf = BytesMut::with_capacity(n + payload.len());
    buf.resize(n, 0);
    header.marshal_to(&mut buf).ok()?;
    buf.extend_from_slice(payload);
    Some(buf)
}

/// Sends a stream's first packet through rtc and compares the datagram rtc makes with
/// our own encryption of the same packet: equal, the stream's later packets take the
/// fast path; different, the connection keeps rtc's path for good.
#[allow(clippy::too_many_arguments)]
fn verify_fast_path(
    conn: &mut Conn,
    track: TrackKey,
    packet: rtp::Packet,
    header: &rtp::header::Header,
    now: Instant,
    use_src: bool,
    fd: i32,
    out: &mut Vec<Outgoing>,
) {
    let Some(leg) = conn.legs.get(&track).copied() else {
        return;
    };
    let plain = marshal(header, &packet.payload);
    if let Some(mut sender) = conn.pc.rtp_sender(leg.sender) {
        let _ = sender.write_rtp(now, packet);
    }
    let mut theirs = None;
    while let Some(msg) = conn.pc.poll_write() {
        let d = &msg.message;
        let is_it = d.len() >= 12
            && (128..192).contains(&d[0])
            && !(192..224).contains(&d[1])
            && d[8..12] == leg.ssrc.to_be_bytes()
            && d[2..4] == header.sequence_number.to_be_bytes();
        if is_it {
            theirs = Some(msg.message.clone());
        }
        conn.last_dst = Some(msg.transport.peer_addr);
        let src_ip =
            Some(msg.transport.local_addr.ip()).filter(|ip| use_src && !ip.is_unspecified());
        conn.src_ip = src_ip;
        out.push(Outgoing {
            dst: conn.wire_addr(msg.transport.peer_addr),
            src_ip,
            data: msg.message,
        });
    }
    if out.len() >= udp::BATCH {
        let sent = udp::send_batch(fd, out);
        stats::SEND_DROPPED.add(sent.dropped);
    }
    let ours = match (&mut conn.fast, plain) {
        (Some(fast), Some(plain)) => fast.ctx.encrypt_rtp_with_header(&plain, header).ok(),
        _ => None,
    };
    match (theirs, ours) {
        (Some(t), Some(o)) if t == o => {
            if let Some(l) = conn.legs.get_mut(&track) {
                l.verified = true;
            }
        }
        (Some(_), _) => {
            tracing::warn!(user = %conn.user, "the relay's own SRTP differs from rtc's; keeping rtc's path");
            stats::FAST_PATH_REFUSED.inc();
            conn.fast = None;
        }
        // rtc sent nothing (not yet connected as far as it knows): try again next packet.
        (None, _) => {}
    }
}

/// Moves what a connection wants sent into `out`, sending full batches as they fill.
fn drain_writes(conn: &mut Conn, use_src: bool, fd: i32, out: &mut Vec<Outgoing>) {
    while let Some(msg) = conn.pc.poll_write() {
        let dst = msg.transport.peer_addr;
        conn.last_dst = Some(dst);
        let src_ip =
            Some(msg.transport.local_addr.ip()).filter(|ip| use_src && !ip.is_unspecified());
        conn.src_ip = src_ip;
        out.push(Outgoing {
            dst: conn.wire_addr(dst),
            src_ip,
            data: msg.message,
        });
        if out.len() >= udp::BATCH {
            let sent = udp::send_batch(fd, out);
            stats::SEND_DROPPED.add(sent.dropped);
        }
    }
}

impl Worker {
    fn me(&self) -> &Handle {
        &self.s.peers[self.s.index as usize]
    }

    fn run(&mut self) {
        loop {
            let now = Instant::now();
            let next = self
                .timers
                .peek()
                .map(|Reverse((t, _))| *t)
                .into_iter()
                .chain(self.pli_due.iter().map(|(t, _)| *t))
                .chain(std::iter::once(self.next_reports))
                .chain(std::iter::once(self.next_quality))
                .min()
                .unwrap_or(now + MAX_WAIT);
            let wait = next.saturating_duration_since(now).min(MAX_WAIT);
            // Round up so a deadline 0.3 ms away is not a busy loop of zero waits.
            let ms = if wait.is_zero() {
                0
            } else {
                wait.as_millis().max(1) as i32
            };
            udp::wait(self.fd, self.me().waker.fd(), ms);
            self.me().waker.clear();
            let now = Instant::now();
            while let Ok(cmd) = self.s.rx.try_recv() {
                if matches!(cmd, Cmd::Shutdown) {
                    self.shutdown(now);
                    return;
                }
                self.command(cmd, now);
            }
            for _ in 0..READS_PER_TURN {
                match udp::recv_batch(self.fd, &mut self.recv) {
                    Ok(0) => break,
                    Ok(n) => {
                        for i in 0..n {
                            let r = self.recv.got[i];
                            if r.len == 0 {
                                continue;
                            }
                            let data = BytesMut::from(self.recv.data(i));
                            self.datagram(r.src, r.dst_ip, data, None, now);
                        }
                    }
                    Err(e) => {
                        tracing::warn!(worker = self.s.index, "media socket read failed: {e}");
                        break;
                    }
                }
            }
            self.run_timers(now);
            self.flush(now);
        }
    }

    fn shutdown(&mut self, now: Instant) {
        let ids: Vec<u64> = self.conns.keys().copied().collect();
        for id in ids {
            self.close_conn(id, false, now);
        }
        self.flush(now);
    }

    /// Routes one datagram. `from`: the worker that handed it over, if any (it is told
    /// where the address belongs once the connection is known).
    fn datagram(
        &mut self,
        src: SocketAddr,
        dst_ip: Option<IpAddr>,
        data: BytesMut,
        from: Option<u16>,
        now: Instant,
    ) {
        if data.first() == Some(&pipe::MARK) {
            return self.pipe_datagram(src, dst_ip, data, now);
        }
        match self.by_addr.get(&src).copied() {
            Some(Dest::Local(id)) => return self.feed(id, src, dst_ip, data, now),
            Some(Dest::Worker(w)) if w != self.s.index => {
                return self.stray_out[w as usize].push(Stray {
                    src,
                    dst_ip,
                    data,
                    from: self.s.index,
                });
            }
            _ => {}
        }
        // An address we do not know: only an authentic binding request may introduce it.
        let Some(req) = stun::binding_request(&data) else {
            stats::DROPPED_UNROUTABLE.inc();
            return;
        };
        let owner = self
            .s
            .directory
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&req.ufrag)
            .copied();
        let Some(owner) = owner else {
            stats::DROPPED_UNKNOWN_UFRAG.inc();
            return;
        };
        if owner.worker != self.s.index {
            self.stray_out[owner.worker as usize].push(Stray {
                src,
                dst_ip,
                data,
                from: self.s.index,
            });
            return;
        }
        let Some(conn) = self.conns.get_mut(&owner.id) else {
            stats::DROPPED_UNKNOWN_UFRAG.inc();
            return;
        };
        if !req.authenticate(&conn.pwd, self.s.shared.provider.crypto()) {
            stats::DROPPED_UNAUTHENTICATED.inc();
            return;
        }
        if conn.connected && conn.last_dst.is_some_and(|d| d != src) {
            // The client's address changed under it (NAT rebinding): the ICE agent
            // keeps the address it selected, and the wire follows the client.
            let known = conn.last_dst.expect("checked");
            conn.rebound = Some((known, src));
            tracing::debug!(user = %conn.user, %known, now_at = %src, "media address rebound");
        }
        if !conn.addrs.contains(&src) {
            conn.addrs.push(src);
        }
        self.by_addr.insert(src, Dest::Local(owner.id));
        if let Some(w) = from.filter(|w| *w != self.s.index) {
            self.s.peers[w as usize].send(Cmd::Route {
                addr: src,
                worker: Some(self.s.index),
            });
        }
        self.feed(owner.id, src, dst_ip, data, now);
    }

    fn local_addr(&self, dst_ip: Option<IpAddr>) -> SocketAddr {
        let ip = self
            .s
            .public_ip
            .or(dst_ip)
            .unwrap_or_else(|| self.s.candidates[0].ip());
        SocketAddr::new(ip, self.s.port)
    }

    fn feed(
        &mut self,
        id: u64,
        src: SocketAddr,
        dst_ip: Option<IpAddr>,
        data: BytesMut,
        now: Instant,
    ) {
        let local = self.local_addr(dst_ip);
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        let peer = conn.agent_addr(src);
        let _ = conn.pc.handle_read(TaggedBytesMut {
            now,
            transport: context(local, peer),
            message: data,
        });
        self.after_io(id, now);
    }

    /// Takes what a connection produced: events, received media, and marks it for a
    /// write and a new deadline.
    fn after_io(&mut self, id: u64, now: Instant) {
        self.dirty.insert(id);
        let mut events = vec![];
        let mut media = vec![];
        {
            let Some(conn) = self.conns.get_mut(&id) else {
                return;
            };
            while let Some(ev) = conn.pc.poll_event() {
                events.push(ev);
            }
            while let Some(m) = conn.pc.poll_read() {
                media.push(m.message);
            }
        }
        for ev in events {
            self.event(id, ev, now);
        }
        for m in media {
            match m {
                RTCMessage::RtpPacket(_, pkt) => self.forward(id, pkt, now),
                RTCMessage::RtcpPacket(_, pkts) => self.rtcp_from_subscriber(id, &pkts, now),
                _ => {}
            }
        }
    }

    fn event(&mut self, id: u64, ev: RTCPeerConnectionEvent, now: Instant) {
        match ev {
            RTCPeerConnectionEvent::OnConnectionStateChangeEvent(state) => match state {
                RTCPeerConnectionState::Connected => {
                    let Some(conn) = self.conns.get_mut(&id) else {
                        return;
                    };
                    conn.connected = true;
                    if conn.role == PcKind::Subscribe {
                        conn.arm_fast_path(self.s.shared.provider.crypto(), now);
                    }
                    // Whatever it subscribed to before the connection was up (and
                    // shows): keyframes.
                    let tracks: Vec<TrackKey> = conn
                        .legs
                        .iter()
                        .filter(|(_, l)| !l.paused)
                        .map(|(t, _)| *t)
                        .collect();
                    for t in tracks {
                        self.request_keyframe(t, now);
                    }
                }
                RTCPeerConnectionState::Failed | RTCPeerConnectionState::Disconnected => {
                    let failed = state == RTCPeerConnectionState::Failed;
                    if let Some(conn) = self.conns.get(&id) {
                        tracing::debug!(user = %conn.user, role = ?conn.role, %state, "media connection");
                    }
                    if failed {
                        self.close_conn(id, true, now);
                    }
                }
                _ => {}
            },
            RTCPeerConnectionEvent::OnTrack(RTCTrackEvent::OnOpen(init)) => {
                self.track_opened(id, init)
            }
            _ => {}
        }
    }

    /// The first RTP of a new stream on a publish connection: a published track.
    fn track_opened(&mut self, id: u64, init: RTCTrackEventInit) {
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        if conn.role != PcKind::Publish || conn.inbound.contains_key(&init.ssrc) {
            return;
        }
        // Another layer of a track sent in simulcast: the same track.
        if let (Some(rid), Some(&track)) = (&init.rid, conn.simulcast.get(&init.receiver_id)) {
            let Some(route) = self.routes.get_mut(&track) else {
                return;
            };
            let mut taken = [false; LAYERS];
            for i in conn.inbound.values().filter(|i| i.track == track) {
                taken[i.layer as usize] = true;
            }
            let Some(layer) = simulcast::slot_of_rid(rid, &taken) else {
                tracing::warn!(user = %conn.user, rid, "more simulcast layers than relayed; ignored");
                return;
            };
            conn.inbound.insert(init.ssrc, Inbound::new(track, layer));
            route.more_ssrcs.push(init.ssrc);
            stats::SIMULCAST_LAYERS.inc();
            return;
        }
        let (rtp_kind, mime) = conn
            .pc
            .rtp_receiver(init.receiver_id)
            .map(|r| {
                let t = r.track();
                (t.kind(), t.codec(init.ssrc).map(|c| c.mime_type.clone()))
            })
            .unwrap_or((RtpCodecKind::Video, None));
        let kind = match rtp_kind {
            RtpCodecKind::Audio => MediaKind::Audio,
            _ if conn.screen_ids.contains(&init.track_id) => MediaKind::Screen,
            _ => MediaKind::Video,
        };
        let codec = Codec::of(kind, mime.as_deref());
        let track = self.s.track_ids.fetch_add(1, Ordering::Relaxed);
        let layer = match &init.rid {
            Some(rid) => {
                conn.simulcast.insert(init.receiver_id, track);
                stats::SIMULCAST_LAYERS.inc();
                simulcast::slot_of_rid(rid, &[false; LAYERS]).unwrap_or(0)
            }
            None => 0,
        };
        conn.inbound.insert(init.ssrc, Inbound::new(track, layer));
        stats::TRACKS.inc();
        let mut route = Route::new(kind, self.s.index);
        route.source = Some((id, init.receiver_id, init.ssrc));
        route.vp8 = codec == Codec::Vp8;
        self.routes.insert(track, route);
        let _ = conn.events.send(ConnEvent::Published {
            user: conn.user.clone(),
            track,
            kind,
            codec,
            source: conn.key,
        });
    }

    /// A publisher's packet: to the subscribers here, and one copy to each other worker
    /// with subscribers.
    fn forward(&mut self, from: u64, pkt: rtp::Packet, now: Instant) {
        let Some(conn) = self.conns.get_mut(&from) else {
            return;
        };
        let Some(inbound) = conn.inbound.get_mut(&pkt.header.ssrc) else {
            return;
        };
        // The track's viewers were offered the codec of its first packet, and get every
        // packet under their own payload type for it: a publisher that changed codec on
        // the same stream (a browser's encoder fallback) would hand them another codec's
        // payload under that name. Such packets go nowhere; the publisher's next offer
        // (a new track) brings its video back.
        match inbound.same_codec(pkt.header.payload_type) {
            SameCodec::Yes => {}
            SameCodec::No { first } => {
                if first {
                    tracing::warn!(user = %conn.user, pt = pkt.header.payload_type,
                        "a publisher changed codec mid-stream; its video is not forwarded");
                }
                stats::DROPPED_CODEC_CHANGE.inc();
                return;
            }
        }
        // A copy (a browser's bandwidth probe resends old packets): its viewers had it.
        if !inbound.seen.first(pkt.header.sequence_number) {
            stats::DROPPED_DUPLICATE.inc();
            return;
        }
        inbound.loss.packet(pkt.header.sequence_number);
        let (track, layer) = (inbound.track, inbound.layer);
        let Some(route) = self.routes.get(&track) else {
            return;
        };
        if route.kind == MediaKind::Audio {
            if let Some(dbov) = conn.levels.packet(&pkt.header, route.gate, now) {
                let _ = conn.events.send(ConnEvent::AudioLevel {
                    user: conn.user.clone(),
                    dbov,
                    source: conn.key,
                });
            }
        }
        if !route.gate {
            return;
        }
        for &(to, id) in &route.pipes_out {
            if let Some(data) = pipe::media(id, layer, &pkt) {
                self.out.push(Outgoing {
                    dst: to,
                    src_ip: None,
                    data,
                });
                stats::PIPE_SENT.inc();
                if self.out.len() >= udp::BATCH {
                    let sent = udp::send_batch(self.fd, &mut self.out);
                    stats::SEND_DROPPED.add(sent.dropped);
                }
            }
        }
        for &w in &route.fanout {
            self.forward_out[w as usize].push((track, layer, pkt.clone()));
        }
        self.fan_local(track, layer, &pkt, now);
    }

    /// A datagram between relays (see `pipe`), from whichever node sent it. One for a
    /// pipe another worker holds goes there as any stray datagram does.
    fn pipe_datagram(
        &mut self,
        src: SocketAddr,
        dst_ip: Option<IpAddr>,
        data: BytesMut,
        now: Instant,
    ) {
        let Some((kind, layer, id, body)) = pipe::parse(&data) else {
            stats::PIPE_DROPPED.inc();
            return;
        };
        let end = match kind {
            pipe::Kind::Media => self.s.pipes.import(id),
            pipe::Kind::Keyframe => self.s.pipes.export(id),
        };
        let Some(End { worker, track }) = end else {
            // Closed a moment ago, or never ours.
            stats::PIPE_DROPPED.inc();
            return;
        };
        if worker != self.s.index {
            return self.stray_out[worker as usize].push(Stray {
                src,
                dst_ip,
                data,
                from: self.s.index,
            });
        }
        match kind {
            pipe::Kind::Keyframe => self.request_keyframe(track, now),
            pipe::Kind::Media => {
                let Some(pkt) = pipe::packet(body) else {
                    stats::PIPE_DROPPED.inc();
                    return;
                };
                stats::PIPE_RECEIVED.inc();
                self.relay_in(track, layer, pkt, now);
            }
        }
    }

    /// A packet of a track received from another node, on its source worker here: to
    /// the subscribers here, and one copy to each other worker with subscribers.
    fn relay_in(&mut self, track: TrackKey, layer: u8, pkt: rtp::Packet, now: Instant) {
        let Some(route) = self.routes.get(&track) else {
            return;
        };
        for &w in &route.fanout {
            self.forward_out[w as usize].push((track, layer, pkt.clone()));
        }
        self.fan_local(track, layer, &pkt, now);
    }

    /// A packet of `track` (of simulcast `layer`) to each subscriber here that shows it
    /// and is sent that layer.
    fn fan_local(&mut self, track: TrackKey, layer: u8, pkt: &rtp::Packet, now: Instant) {
        let use_src = self.s.public_ip.is_none();
        let Worker {
            routes,
            conns,
            out,
            written,
            fd,
            ..
        } = self;
        let Some(route) = routes.get_mut(&track) else {
            return;
        };
        let video = route.kind != MediaKind::Audio;
        let desc = if route.vp8 {
            simulcast::vp8(&pkt.payload)
        } else {
            None
        };
        if video {
            route.layers.packet(layer, desc.as_ref(), now);
            if !route.legs.is_empty() {
                route.history[layer as usize % LAYERS]
                    .get_or_insert_with(Default::default)
                    .keep(pkt);
            }
        }
        let mut want_keyframe = false;
        for cid in &route.legs {
            let Some(conn) = conns.get_mut(cid) else {
                continue;
            };
            if !conn.connected {
                continue;
            }
            let Some(leg) = conn.legs.get_mut(&track) else {
                continue;
            };
            // Its client's answer left the codec out (it would drop every packet), or
            // its viewer does not show it now.
            if !leg.playable || leg.paused {
                continue;
            }
            // Video: only the layer it is sent (one layer: every packet), and none while
            // its viewer's link cannot carry the smallest (see `bwe`).
            if video {
                let level = conn.bwe.level();
                if level == bwe::PAUSED {
                    continue;
                }
                let pick = route.layers.pick(leg.follow.max_height, level as u8, now);
                let ts = pkt.header.timestamp;
                let v = leg
                    .follow
                    .admit(layer, desc.as_ref(), pick, ts, leg.clock_rate, now);
                want_keyframe |= v.want_keyframe;
                if !v.send {
                    continue;
                }
                if v.switched {
                    leg.shift.resume();
                    stats::LAYER_SWITCHES.inc();
                }
            }
            // Each subscriber connection negotiated its own SSRC and payload type, and
            // none of the publisher's header extensions: the header is rebuilt, the
            // payload shared (but for a VP8 descriptor renumbered after a switch).
            let Some(sequence_number) = leg.shift.out(pkt.header.sequence_number) else {
                continue;
            };
            let mut header = rtp::header::Header {
                version: 2,
                marker: pkt.header.marker,
                payload_type: leg.pt,
                sequence_number,
                timestamp: leg.follow.timestamp(pkt.header.timestamp),
                ssrc: leg.ssrc,
                csrc: pkt.header.csrc.clone(),
                ..Default::default()
            };
            if video {
                leg.follow.sent(header.timestamp, desc.as_ref(), now);
            }
            let rewrite = desc.filter(|_| leg.follow.rewrites());
            leg.packets = leg.packets.wrapping_add(1);
            leg.sent.sent(header.sequence_number);
            leg.octets = leg.octets.wrapping_add(pkt.payload.len() as u32);
            leg.last_ts = header.timestamp;
            leg.last_at = Some(now);
            let leg = *leg;
            // Its transport-wide number, for the viewer's feedback. The size counts the
            // header and the encryption's tag as well.
            conn.bwe.stamp(&mut header, pkt.payload.len() + 40, now);
            match (&mut conn.fast, conn.last_dst) {
                (Some(fast), Some(dst)) if leg.verified => {
                    let Some(mut plain) = marshal(&header, &pkt.payload) else {
                        continue;
                    };
                    if let Some(d) = &rewrite {
                        let at = plain.len() - pkt.payload.len();
                        leg.follow.rewrite(d, &mut plain[at..]);
                    }
                    if let Ok(wire) = fast.ctx.encrypt_rtp_with_header(&plain, &header) {
                        out.push(Outgoing {
                            dst: conn.wire_addr(dst),
                            src_ip: conn.src_ip,
                            data: wire,
                        });
                        stats::FORWARDED.inc();
                        stats::FORWARDED_BYTES.add(pkt.payload.len());
                        stats::FORWARDED_FAST.inc();
                        if out.len() >= udp::BATCH {
                            let sent = udp::send_batch(*fd, out);
                            stats::SEND_DROPPED.add(sent.dropped);
                        }
                    }
                }
                _ => {
                    let payload = match &rewrite {
                        Some(d) => {
                            let mut p = BytesMut::from(&pkt.payload[..]);
                            leg.follow.rewrite(d, &mut p);
                            p.freeze()
                        }
                        None => pkt.payload.clone(),
                    };
                    let packet = rtp::Packet {
                        header: header.clone(),
                        payload,
                    };
                    if conn.fast.is_some() {
                        // The stream's first packet goes through rtc, and our own
                        // encryption of it must come out the same before we take over.
                        drain_writes(conn, use_src, *fd, out);
                        verify_fast_path(conn, track, packet, &header, now, use_src, *fd, out);
                        stats::FORWARDED.inc();
                        stats::FORWARDED_BYTES.add(pkt.payload.len());
                        continue;
                    }
                    if let Some(mut sender) = conn.pc.rtp_sender(leg.sender) {
                        if sender.write_rtp(now, packet).is_ok() {
                            stats::FORWARDED.inc();
                            stats::FORWARDED_BYTES.add(pkt.payload.len());
                        }
                    }
                    if !conn.written {
                        conn.written = true;
                        written.push(*cid);
                    }
                }
            }
        }
        // A viewer waits to switch layers.
        if want_keyframe {
            self.request_keyframe(track, now);
        }
    }

    /// Keyframe requests and NACKs from a viewer, for the tracks it receives.
    fn rtcp_from_subscriber(&mut self, id: u64, pkts: &[Box<dyn rtc::rtcp::Packet>], now: Instant) {
        let mut tracks = vec![];
        let mut nacks = vec![];
        let mut reports = vec![];
        let mut feedback = vec![];
        if let Some(conn) = self.conns.get(&id) {
            for p in pkts {
                if let Some(nack) = p.as_any().downcast_ref::<TransportLayerNack>() {
                    nacks.push(nack);
                    continue;
                }
                if let Some(fb) = p.as_any().downcast_ref::<TransportLayerCc>() {
                    feedback.push(fb);
                    continue;
                }
                if let Some(rr) = p.as_any().downcast_ref::<ReceiverReport>() {
                    reports.extend(rr.reports.iter().cloned());
                    continue;
                }
                let ssrc = if let Some(pli) = p.as_any().downcast_ref::<PictureLossIndication>() {
                    Some(pli.media_ssrc)
                } else {
                    p.as_any()
                        .downcast_ref::<FullIntraRequest>()
                        .map(|fir| fir.media_ssrc)
                };
                // Not for a track it does not show (a browser asks a few seconds after
                // its packets stop): every viewer would pay for that keyframe.
                if let Some(t) = ssrc.and_then(|s| conn.by_out_ssrc.get(&s)) {
                    if conn.legs.get(t).is_some_and(|l| !l.paused) {
                        tracks.push(*t);
                    }
                }
            }
        }
        for nack in nacks {
            self.resend(id, nack.media_ssrc, &nack.nacks, now);
        }
        if let Some(conn) = self.conns.get_mut(&id).filter(|_| !feedback.is_empty()) {
            let old = conn.bwe.level();
            for fb in feedback {
                if conn.bwe.feedback(fb, now).is_some() {
                    stats::LINK_STEPS.inc();
                }
            }
            let new = conn.bwe.level();
            count_level(old, new);
            if (old == bwe::PAUSED) != (new == bwe::PAUSED) {
                self.link_paused(id, new == bwe::PAUSED, now);
            }
        }
        if !reports.is_empty() {
            let ntp = ntp_now();
            if let Some(conn) = self.conns.get_mut(&id) {
                for r in &reports {
                    let Some(track) = conn.by_out_ssrc.get(&r.ssrc) else {
                        continue;
                    };
                    let Some(leg) = conn.legs.get_mut(track).filter(|l| l.ssrc == r.ssrc) else {
                        continue;
                    };
                    let loss = leg.sent.viewer_loss(r);
                    conn.reports.report(r, loss, leg.clock_rate, ntp);
                }
            }
        }
        for t in tracks {
            self.request_keyframe(t, now);
        }
    }

    /// A viewer's link can no longer carry any video (`paused`), or can again: its video
    /// stops (audio goes on) or resumes from a keyframe, gapless; its client is told.
    fn link_paused(&mut self, id: u64, paused: bool, now: Instant) {
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        let mut tracks = vec![];
        for (&track, leg) in conn.legs.iter_mut() {
            let video = self
                .routes
                .get(&track)
                .is_some_and(|r| r.kind != MediaKind::Audio);
            if video && !leg.paused {
                if !paused {
                    leg.shift.resume();
                }
                tracks.push(track);
            }
        }
        let _ = conn.events.send(ConnEvent::LinkPaused {
            user: conn.user.clone(),
            source: conn.key,
            tracks: tracks.clone(),
            paused,
        });
        if !paused {
            for t in tracks {
                self.request_keyframe(t, now);
            }
        }
    }

    /// Answers a viewer's NACK for the stream it receives as `ssrc`: each packet still
    /// kept goes out again on the viewer's repair stream (RTX), encrypted by the relay.
    /// A viewer without a repair stream, or not yet on the relay's own encryption,
    /// gets nothing: its decoder asks for a keyframe instead.
    fn resend(&mut self, id: u64, ssrc: u32, pairs: &[NackPair], now: Instant) {
        let Worker {
            routes,
            conns,
            out,
            fd,
            ..
        } = self;
        let mut seqs = pairs.iter().flat_map(|p| p.packet_list());
        let Some(conn) = conns.get_mut(&id) else {
            return;
        };
        let Some(&track) = conn.by_out_ssrc.get(&ssrc) else {
            return;
        };
        // Its link carries no video now: nor old video.
        if conn.bwe.level() == bwe::PAUSED {
            stats::RETRANSMIT_MISSED.add(seqs.count());
            return;
        }
        let dst = conn.last_dst.map(|d| conn.wire_addr(d));
        let src_ip = conn.src_ip;
        let route = routes.get(&track);
        let vp8 = route.is_some_and(|r| r.vp8);
        let leg = conn.legs.get_mut(&track);
        // What it was sent since its last layer switch, which is all a NACK may name.
        let layer = leg.as_ref().and_then(|l| l.follow.current()).unwrap_or(0);
        let history = route.and_then(|r| r.history[layer as usize % LAYERS].as_deref());
        let (Some(leg), Some(fast), Some(dst), Some(history)) =
            (leg, conn.fast.as_mut(), dst, history)
        else {
            stats::RETRANSMIT_MISSED.add(seqs.count());
            return;
        };
        // Only on a stream the relay already encrypts itself (its keys checked against
        // rtc's), and only for the media SSRC, not a NACK naming the repair stream.
        let (Some(rtx_ssrc), Some(rtx_pt), true) =
            (leg.rtx_ssrc, leg.rtx_pt, leg.verified && leg.ssrc == ssrc)
        else {
            stats::RETRANSMIT_MISSED.add(seqs.count());
            return;
        };
        for seq in seqs.by_ref().take(MAX_RESEND_PER_NACK) {
            // The viewer's number, sent under an earlier offset if before a pause.
            let Some(source) = leg.shift.source(seq) else {
                stats::RETRANSMIT_MISSED.inc();
                continue;
            };
            if !leg.resends.take(now) {
                stats::RETRANSMIT_MISSED.inc();
                continue;
            }
            let Some(mut pkt) = history.rtx((source, seq), rtx_ssrc, rtx_pt, &mut leg.rtx_seq)
            else {
                stats::RETRANSMIT_MISSED.inc();
                continue;
            };
            // In the viewer's numbers, as first sent (see `fan_local`).
            pkt.header.timestamp = leg.follow.timestamp(pkt.header.timestamp);
            conn.bwe.stamp(&mut pkt.header, pkt.payload.len() + 40, now);
            let Some(mut plain) = marshal(&pkt.header, &pkt.payload) else {
                continue;
            };
            if vp8 && leg.follow.rewrites() {
                // After the original sequence number, the original payload.
                let at = plain.len() - pkt.payload.len() + 2;
                if let Some(d) = simulcast::vp8(&plain[at..]) {
                    leg.follow.rewrite(&d, &mut plain[at..]);
                }
            }
            if let Ok(wire) = fast.ctx.encrypt_rtp_with_header(&plain, &pkt.header) {
                out.push(Outgoing {
                    dst,
                    src_ip,
                    data: wire,
                });
                stats::RETRANSMITTED.inc();
                if out.len() >= udp::BATCH {
                    let sent = udp::send_batch(*fd, out);
                    stats::SEND_DROPPED.add(sent.dropped);
                }
            }
        }
        stats::RETRANSMIT_MISSED.add(seqs.count());
    }

    /// Asks the track's publisher for a keyframe, at most once per `PLI_INTERVAL`; a
    /// request inside the interval is deferred to its end, not dropped, so a viewer who
    /// joins just after another still gets one.
    fn request_keyframe(&mut self, track: TrackKey, now: Instant) {
        let Some(route) = self.routes.get_mut(&track) else {
            return;
        };
        if route.kind == MediaKind::Audio {
            return;
        }
        if route.source_worker != self.s.index {
            self.s.peers[route.source_worker as usize].send(Cmd::Keyframe(track));
            return;
        }
        if route.source.is_none() && route.pipe_in.is_none() {
            return;
        }
        match route.last_pli {
            Some(last) if now < last + PLI_INTERVAL => {
                if !route.pli_pending {
                    route.pli_pending = true;
                    self.pli_due.push((last + PLI_INTERVAL, track));
                }
                return;
            }
            _ => {}
        }
        route.last_pli = Some(now);
        route.pli_pending = false;
        let Some((conn_id, receiver, ssrc)) = route.source else {
            // From another node: its relay asks its publisher (and throttles too).
            if let Some((from, id)) = route.pipe_in {
                self.out.push(Outgoing {
                    dst: from,
                    src_ip: None,
                    data: pipe::datagram(pipe::Kind::Keyframe, id, &[]),
                });
            }
            return;
        };
        if let Some(conn) = self.conns.get_mut(&conn_id) {
            if let Some(mut r) = conn.pc.rtp_receiver(receiver) {
                // In simulcast, of every layer: a viewer switching needs its target's,
                // and one starting any. Asking for one layer's alone would save nothing
                // with Chromium: its VP8 simulcast encoder (libwebrtc's
                // LibvpxVp8Encoder) makes a keyframe on every layer for any request.
                let plis: Vec<Box<dyn rtc::rtcp::Packet>> = std::iter::once(ssrc)
                    .chain(route.more_ssrcs.iter().copied())
                    .map(|media_ssrc| {
                        Box::new(PictureLossIndication {
                            sender_ssrc: 0,
                            media_ssrc,
                        }) as Box<dyn rtc::rtcp::Packet>
                    })
                    .collect();
                let _ = r.write_rtcp(now, plis);
                stats::KEYFRAME_REQUESTS.inc();
            }
            self.dirty.insert(conn_id);
        }
    }

    fn run_timers(&mut self, now: Instant) {
        while let Some(Reverse((t, id))) = self.timers.peek().copied() {
            if t > now {
                break;
            }
            self.timers.pop();
            let due = self.conns.get(&id).is_some_and(|c| c.deadline == Some(t));
            if !due {
                continue; // a stale entry: the deadline moved since
            }
            if let Some(conn) = self.conns.get_mut(&id) {
                conn.deadline = None;
                if let Err(e) = conn.pc.handle_timeout(now) {
                    tracing::debug!(user = %conn.user, "media timer: {e}");
                }
            }
            self.after_io(id, now);
        }
        if now >= self.next_reports {
            self.next_reports = now + REPORT_INTERVAL;
            self.send_reports(now);
        }
        if now >= self.next_quality {
            self.next_quality = now + quality::WINDOW;
            self.send_quality();
        }
        if !self.pli_due.is_empty() {
            let (due, later): (Vec<_>, Vec<_>) =
                self.pli_due.drain(..).partition(|(t, _)| *t <= now);
            self.pli_due = later;
            for (_, track) in due {
                if let Some(r) = self.routes.get_mut(&track) {
                    r.pli_pending = false;
                }
                self.request_keyframe(track, now);
            }
        }
    }

    /// Each connection's window of link figures, to its session: a publish connection's
    /// loss on what arrived, a subscribe connection's receiver reports. A connection
    /// with nothing to go by (nothing sent or received) says nothing.
    fn send_quality(&mut self) {
        for conn in self.conns.values_mut() {
            let window = match conn.role {
                PcKind::Publish => {
                    quality::loss_of(conn.inbound.values_mut().map(|i| i.loss.take())).map(|loss| {
                        quality::LinkWindow {
                            loss,
                            ..Default::default()
                        }
                    })
                }
                PcKind::Subscribe => conn.reports.take(),
            };
            if let Some(window) = window {
                let _ = conn.events.send(ConnEvent::Quality {
                    user: conn.user.clone(),
                    source: conn.key,
                    window,
                });
            }
        }
    }

    /// A sender report for every stream sent since the last one: its packet and octet
    /// counts and which RTP timestamp goes with the wall clock now (extrapolated from
    /// the last packet, as a sender would).
    fn send_reports(&mut self, now: Instant) {
        let ntp = ntp_now();
        for (id, conn) in self.conns.iter_mut() {
            let mut any = false;
            for leg in conn.legs.values_mut() {
                let Some(at) = leg.last_at else {
                    continue;
                };
                if leg.packets == leg.reported {
                    continue;
                }
                leg.reported = leg.packets;
                let elapsed = now.saturating_duration_since(at).as_secs_f64();
                let sr = SenderReport {
                    ssrc: leg.ssrc,
                    ntp_time: ntp,
                    rtp_time: leg
                        .last_ts
                        .wrapping_add((elapsed * f64::from(leg.clock_rate)) as u32),
                    packet_count: leg.packets,
                    octet_count: leg.octets,
                    ..Default::default()
                };
                if let Some(mut sender) = conn.pc.rtp_sender(leg.sender) {
                    let _ = sender.write_rtcp(now, vec![Box::new(sr)]);
                    any = true;
                }
            }
            if any {
                self.dirty.insert(*id);
            }
        }
    }

    /// Writes what every touched connection wants sent, re-arms its timer, and hands
    /// other workers their packets.
    fn flush(&mut self, now: Instant) {
        let use_src = self.s.public_ip.is_none();
        // Connections only written to: their packets, nothing else (their deadline and
        // negotiation did not change).
        for id in std::mem::take(&mut self.written) {
            if self.dirty.contains(&id) {
                continue;
            }
            let Some(conn) = self.conns.get_mut(&id) else {
                continue;
            };
            conn.written = false;
            drain_writes(conn, use_src, self.fd, &mut self.out);
        }
        for id in std::mem::take(&mut self.dirty) {
            let Some(conn) = self.conns.get_mut(&id) else {
                continue;
            };
            conn.written = false;
            drain_writes(conn, use_src, self.fd, &mut self.out);
            let next = conn.pc.poll_timeout();
            if next != conn.deadline {
                conn.deadline = next;
                if let Some(t) = next {
                    self.timers.push(Reverse((t, id)));
                }
            }
            // A subscribe connection whose tracks changed offers again when it may.
            if let Some(made) = conn.renegotiate(now) {
                let ev = match made {
                    Ok(sdp) => ConnEvent::Offer {
                        user: conn.user.clone(),
                        sdp,
                    },
                    Err(e) => ConnEvent::Refused {
                        user: conn.user.clone(),
                        message: format!("the relay could not offer: {e}"),
                    },
                };
                let _ = conn.events.send(ev);
            }
        }
        if !self.out.is_empty() {
            let sent = udp::send_batch(self.fd, &mut self.out);
            stats::SEND_DROPPED.add(sent.dropped);
        }
        for w in 0..self.forward_out.len() {
            if !self.forward_out[w].is_empty() {
                let batch = std::mem::take(&mut self.forward_out[w]);
                self.s.peers[w].send(Cmd::Forward(batch));
            }
            if !self.stray_out[w].is_empty() {
                let batch = std::mem::take(&mut self.stray_out[w]);
                self.s.peers[w].send(Cmd::Datagrams(batch));
            }
        }
        let _ = now;
    }

    fn command(&mut self, cmd: Cmd, now: Instant) {
        match cmd {
            Cmd::Open {
                key,
                user,
                role,
                ufrag,
                pwd,
                events,
            } => {
                let built = self
                    .s
                    .shared
                    .build(&ufrag, &pwd, role == PcKind::Subscribe, now)
                    .and_then(|(pc, tap)| {
                        Conn::new(
                            key,
                            user.clone(),
                            role,
                            pc,
                            tap,
                            ufrag.clone(),
                            pwd,
                            events.clone(),
                            &self.s.candidates,
                        )
                    });
                match built {
                    Ok(conn) => {
                        stats::PEERS.inc();
                        self.conns.insert(key.id, conn);
                        self.s
                            .directory
                            .write()
                            .unwrap_or_else(|p| p.into_inner())
                            .insert(ufrag, key);
                        self.dirty.insert(key.id);
                    }
                    Err(e) => {
                        tracing::warn!(%user, "cannot create a media connection: {e}");
                        let _ = events.send(ConnEvent::Refused {
                            user,
                            message: "the server could not create a media connection".into(),
                        });
                    }
                }
            }
            Cmd::Offer {
                key,
                sdp,
                screen_ids,
            } => {
                let Some(conn) = self.conns.get_mut(&key.id) else {
                    return;
                };
                conn.screen_ids = screen_ids.into_iter().collect();
                let ev = match conn.answer_offer(sdp, now) {
                    Ok(sdp) => ConnEvent::Answer {
                        user: conn.user.clone(),
                        sdp,
                    },
                    Err(e) => ConnEvent::Refused {
                        user: conn.user.clone(),
                        message: format!("offer refused: {e}"),
                    },
                };
                let _ = conn.events.send(ev);
                self.after_io(key.id, now);
            }
            Cmd::Answer { key, sdp } => {
                let Some(conn) = self.conns.get_mut(&key.id) else {
                    return;
                };
                match conn.take_answer(sdp, now) {
                    Ok(codecs) if !codecs.is_empty() => {
                        let _ = conn.events.send(ConnEvent::Unplayable {
                            user: conn.user.clone(),
                            source: conn.key,
                            codecs,
                        });
                    }
                    Ok(_) => {}
                    Err(e) => {
                        let _ = conn.events.send(ConnEvent::Refused {
                            user: conn.user.clone(),
                            message: format!("answer refused: {e}"),
                        });
                    }
                }
                self.after_io(key.id, now);
            }
            Cmd::AddLeg {
                key,
                track,
                kind,
                codec,
                owner,
                source,
                paused,
                max_height,
            } => {
                let Some(conn) = self.conns.get_mut(&key.id) else {
                    return;
                };
                match conn.add_leg(track, kind, codec, &owner) {
                    Ok(()) => {
                        if let Some(leg) = conn.legs.get_mut(&track) {
                            leg.paused = paused;
                            leg.follow.max_height = max_height;
                        }
                    }
                    Err(LegError::Unplayable(codec)) => {
                        if conn.tell_unplayable(codec) {
                            let _ = conn.events.send(ConnEvent::Unplayable {
                                user: conn.user.clone(),
                                source: conn.key,
                                codecs: vec![codec],
                            });
                        }
                        return;
                    }
                    Err(e) => {
                        tracing::warn!(user = %conn.user, "cannot add a track: {e}");
                        return;
                    }
                }
                let connected = conn.connected;
                stats::SINKS.inc();
                let route = self
                    .routes
                    .entry(track)
                    .or_insert_with(|| Route::new(kind, source.worker));
                route.legs.push(key.id);
                route.vp8 = codec == Codec::Vp8;
                self.dirty.insert(key.id);
                if connected && !paused {
                    // A new viewer needs a keyframe to start decoding.
                    self.request_keyframe(track, now);
                }
            }
            Cmd::RemoveLeg { key, track } => self.remove_leg(key.id, track),
            // The next packet picks the layer (and asks for its keyframe).
            Cmd::Fit {
                key,
                track,
                max_height,
            } => {
                let leg = self
                    .conns
                    .get_mut(&key.id)
                    .and_then(|c| c.legs.get_mut(&track));
                if let Some(leg) = leg {
                    leg.follow.max_height = max_height;
                }
            }
            Cmd::Fanout {
                track,
                kind,
                worker,
                add,
            } => {
                // A track from another node may have no route here yet: its pipe opens
                // only once one of its viewers shows it.
                let me = self.s.index;
                let r = match self.routes.get_mut(&track) {
                    Some(r) => r,
                    None if add => self
                        .routes
                        .entry(track)
                        .or_insert_with(|| Route::new(kind, me)),
                    None => return,
                };
                r.fanout.retain(|w| *w != worker);
                if add {
                    r.fanout.push(worker);
                } else if !r.needed() {
                    self.routes.remove(&track);
                }
            }
            Cmd::Gate { track, open } => {
                if let Some(r) = self.routes.get_mut(&track) {
                    r.gate = open;
                }
            }
            Cmd::Close { key } => self.close_conn(key.id, false, now),
            Cmd::Import {
                track,
                kind,
                pipe,
                from,
            } => {
                let me = self.s.index;
                let route = self
                    .routes
                    .entry(track)
                    .or_insert_with(|| Route::new(kind, me));
                route.pipe_in = Some((from, pipe));
                Pipes::set(&self.s.pipes.imports, pipe, Some(End { worker: me, track }));
                stats::PIPES_IN.inc();
            }
            Cmd::Unimport { track, pipe } => {
                Pipes::set(&self.s.pipes.imports, pipe, None);
                if let Some(r) = self.routes.get_mut(&track) {
                    if r.pipe_in.is_some_and(|(_, p)| p == pipe) {
                        r.pipe_in = None;
                        stats::PIPES_IN.dec();
                    }
                    if !r.needed() {
                        self.routes.remove(&track);
                    }
                }
            }
            Cmd::Export {
                track,
                to,
                pipe,
                on,
            } => {
                let me = self.s.index;
                let Some(r) = self.routes.get_mut(&track).filter(|r| r.source.is_some()) else {
                    return;
                };
                let had = r.pipes_out.len();
                r.pipes_out.retain(|(_, p)| *p != pipe);
                stats::PIPES_OUT.sub(had - r.pipes_out.len());
                if on {
                    r.pipes_out.push((to, pipe));
                    stats::PIPES_OUT.inc();
                }
                let end = on.then_some(End { worker: me, track });
                Pipes::set(&self.s.pipes.exports, pipe, end);
                // The new node's viewers start from a keyframe.
                if on {
                    self.request_keyframe(track, now);
                }
            }
            Cmd::Forward(batch) => {
                for (track, layer, pkt) in batch {
                    self.fan_local(track, layer, &pkt, now);
                }
            }
            Cmd::Keyframe(track) => self.request_keyframe(track, now),
            Cmd::Pause { key, track, paused } => {
                let Some(leg) = self
                    .conns
                    .get_mut(&key.id)
                    .and_then(|c| c.legs.get_mut(&track))
                else {
                    return;
                };
                let resumed = leg.paused && !paused;
                leg.paused = paused;
                if resumed {
                    leg.shift.resume();
                }
                // Its decoder starts again from a keyframe.
                if resumed {
                    self.request_keyframe(track, now);
                }
            }
            Cmd::Datagrams(strays) => {
                for s in strays {
                    self.datagram(s.src, s.dst_ip, s.data, Some(s.from), now);
                }
            }
            Cmd::Route { addr, worker } => match worker {
                Some(w) => {
                    self.by_addr.insert(addr, Dest::Worker(w));
                }
                None => {
                    if matches!(self.by_addr.get(&addr), Some(Dest::Worker(_))) {
                        self.by_addr.remove(&addr);
                    }
                }
            },
            Cmd::Shutdown => {}
        }
    }

    fn remove_leg(&mut self, id: u64, track: TrackKey) {
        if let Some(conn) = self.conns.get_mut(&id) {
            if conn.legs.contains_key(&track) {
                conn.remove_leg(track);
                stats::SINKS.dec();
                self.dirty.insert(id);
            }
        }
        if let Some(r) = self.routes.get_mut(&track) {
            r.legs.retain(|c| *c != id);
            if r.legs.is_empty() {
                // Nobody here left to ask for a resend.
                r.history = Default::default();
                if !r.needed() {
                    self.routes.remove(&track);
                }
            }
        }
    }

    /// Closes a connection and forgets everything about it. `failed`: its consent
    /// expired or it failed; the room is told.
    fn close_conn(&mut self, id: u64, failed: bool, now: Instant) {
        let Some(mut conn) = self.conns.remove(&id) else {
            return;
        };
        // Say goodbye (DTLS close_notify) before forgetting the addresses.
        let _ = conn.pc.close();
        while let Some(msg) = conn.pc.poll_write() {
            self.out.push(Outgoing {
                dst: conn.wire_addr(msg.transport.peer_addr),
                src_ip: None,
                data: msg.message,
            });
        }
        self.s
            .directory
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&conn.ufrag);
        let mut addrs = conn.addrs.clone();
        if let Some((_, now_at)) = conn.rebound {
            addrs.push(now_at);
        }
        for a in addrs {
            if self.by_addr.get(&a) == Some(&Dest::Local(id)) {
                self.by_addr.remove(&a);
            }
            for (w, peer) in self.s.peers.iter().enumerate() {
                if w != self.s.index as usize {
                    peer.send(Cmd::Route {
                        addr: a,
                        worker: None,
                    });
                }
            }
        }
        let mut gone = HashSet::new();
        for (_, Inbound { track, .. }) in conn.inbound.drain() {
            if conn.simulcast.values().any(|t| *t == track) {
                stats::SIMULCAST_LAYERS.dec();
            }
            // A track in simulcast arrives as several streams.
            if !gone.insert(track) {
                continue;
            }
            stats::TRACKS.dec();
            if let Some(r) = self.routes.get_mut(&track) {
                r.source = None;
                r.gate = false;
                // Its publisher is gone: so are the pipes to other nodes.
                stats::PIPES_OUT.sub(r.pipes_out.len());
                for (_, pipe) in r.pipes_out.drain(..) {
                    Pipes::set(&self.s.pipes.exports, pipe, None);
                }
                if !r.needed() {
                    self.routes.remove(&track);
                }
            }
        }
        let tracks: Vec<TrackKey> = conn.legs.keys().copied().collect();
        for t in tracks {
            stats::SINKS.dec();
            if let Some(r) = self.routes.get_mut(&t) {
                r.legs.retain(|c| *c != id);
                if r.legs.is_empty() {
                    r.history = Default::default();
                    if !r.needed() {
                        self.routes.remove(&t);
                    }
                }
            }
        }
        // Gone: counted as a link at the top no more.
        count_level(conn.bwe.level(), bwe::TOP);
        self.dirty.remove(&id);
        stats::PEERS.dec();
        if failed {
            let _ = conn.events.send(ConnEvent::Failed {
                user: conn.user.clone(),
                role: conn.role,
            });
        }
        let _ = now;
    }
}

/// A viewer's link level went from `old` to `new`: the gauges of links held below the
/// top layer and of links paused follow.
fn count_level(old: i8, new: i8) {
    for (gauge, below) in [
        (&stats::LINKS_REDUCED, bwe::TOP),
        (&stats::LINKS_PAUSED, bwe::PAUSED + 1),
    ] {
        match (old < below, new < below) {
            (false, true) => gauge.inc(),
            (true, false) => gauge.dec(),
            _ => {}
        }
    }
}
