//! convene-floor: what one core of this machine can forward at best. A relay thread
//! receives SRTP from a source, decrypts each packet once, and for each of N
//! destinations rewrites the SSRC, encrypts with that destination's own key (AEAD
//! AES-128-GCM, as the relay negotiates) and sends, batched (recvmmsg / sendmmsg); a
//! sink drains what arrives. No signaling, no ICE, no DTLS, no interceptors: only the
//! work no SFU can skip. The relay thread's own CPU time gives packets/s per core.
//!
//! Loopback only: the source sends to 127.0.0.1 and the destinations are 127.61.0.x.
//!
//! Usage: convene-floor [--destinations N] [--pps P] [--seconds S] [--relay-cpu C]
//!                      [--tool-cpu C] [--json FILE]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{BufMut, BytesMut};
use mediaio::{Outgoing, RecvBuffers};
use rtc::rtp::header::Header;
use rtc::shared::marshal::{Marshal, MarshalSize, Unmarshal};
use rtc::srtp::context::Context;
use rtc::srtp::protection_profile::ProtectionProfile;

const PROFILE: ProtectionProfile = ProtectionProfile::AeadAes128Gcm;
const PAYLOAD_BYTES: usize = 1000;

struct Args {
    destinations: usize,
    pps: u32,
    seconds: u64,
    relay_cpu: Option<usize>,
    tool_cpu: Option<usize>,
    json: Option<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        destinations: 200,
        pps: 300,
        seconds: 5,
        relay_cpu: None,
        tool_cpu: None,
        json: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let mut v = || it.next().ok_or(format!("{k} needs a value"));
        match k.as_str() {
            "--destinations" => a.destinations = v()?.parse().map_err(|e| format!("{k}: {e}"))?,
            "--pps" => a.pps = v()?.parse().map_err(|e| format!("{k}: {e}"))?,
            "--seconds" => a.seconds = v()?.parse().map_err(|e| format!("{k}: {e}"))?,
            "--relay-cpu" => a.relay_cpu = Some(v()?.parse().map_err(|e| format!("{k}: {e}"))?),
            "--tool-cpu" => a.tool_cpu = Some(v()?.parse().map_err(|e| format!("{k}: {e}"))?),
            "--json" => a.json = Some(v()?),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if a.destinations == 0 || a.destinations > 60_000 || a.pps == 0 {
        return Err("destinations must be 1 to 60000 and pps above 0".into());
    }
    Ok(a)
}

fn pin(cpu: Option<usize>) {
    let Some(cpu) = cpu else { return };
    // SAFETY: a zeroed cpu_set_t with one bit set, applied to the calling thread.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

/// CPU time of the calling thread.
fn thread_cpu() -> Duration {
    // SAFETY: clock_gettime into a valid timespec.
    let ts = unsafe {
        let mut ts: libc::timespec = std::mem::zeroed();
        libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts);
        ts
    };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

fn context(seed: u8) -> Context {
    let provider = rtc::crypto::default_provider().expect("a crypto provider");
    let key: Vec<u8> = (0..PROFILE.key_len() as u8).map(|i| i ^ seed).collect();
    let salt: Vec<u8> = (0..PROFILE.salt_len() as u8)
        .map(|i| i.wrapping_mul(7) ^ seed)
        .collect();
    Context::new(&key, &salt, PROFILE, None, None, provider.crypto()).expect("an SRTP context")
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("convene-floor: {e}");
            std::process::exit(2);
        }
    };
    let relay_sock = mediaio::bind("127.0.0.1:0".parse().unwrap()).expect("relay socket");
    let relay_addr = relay_sock.local_addr().unwrap().as_socket().unwrap();
    let sink_sock = mediaio::bind("0.0.0.0:0".parse().unwrap()).expect("sink socket");
    let sink_port = sink_sock.local_addr().unwrap().as_socket().unwrap().port();
    let dests: Vec<SocketAddr> = (0..args.destinations)
        .map(|i| {
            let n = i as u32 + 1;
            SocketAddr::new(
                IpAddr::V4(Ipv4Addr::new(127, 61, (n >> 8) as u8, n as u8)),
                sink_port,
            )
        })
        .collect();
    let stop = Arc::new(AtomicBool::new(false));
    let received = Arc::new(AtomicU64::new(0));

    // The sink: drains every destination (one socket, each destination an address).
    let sink = {
        let (stop, received) = (stop.clone(), received.clone());
        let cpu = args.tool_cpu;
        std::thread::spawn(move || {
            pin(cpu);
            let mut b = RecvBuffers::default();
            let fd = sink_sock.as_raw_fd();
            while !stop.load(Ordering::Relaxed) {
                mediaio::wait_any(&[fd], 50);
                while let Ok(n) = mediaio::recv_batch(fd, &mut b) {
                    if n == 0 {
                        break;
                    }
                    received.fetch_add(n as u64, Ordering::Relaxed);
                }
            }
        })
    };

    // The source: SRTP at the given rate.
    let source = {
        let stop = stop.clone();
        let (pps, cpu) = (args.pps, args.tool_cpu);
        std::thread::spawn(move || {
            pin(cpu);
            let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            let mut ctx = context(1);
            let interval = Duration::from_secs_f64(1.0 / f64::from(pps));
            let mut next = Instant::now();
            let mut seq: u16 = 0;
            while !stop.load(Ordering::Relaxed) {
                let header = Header {
                    version: 2,
                    payload_type: 96,
                    sequence_number: seq,
                    timestamp: u32::from(seq).wrapping_mul(3000),
                    ssrc: 0x5eed,
                    marker: true,
                    ..Default::default()
                };
                let mut plain = BytesMut::with_capacity(header.marshal_size() + PAYLOAD_BYTES);
                plain.resize(header.marshal_size(), 0);
                header.marshal_to(&mut plain).unwrap();
                plain.put_bytes(0x5a, PAYLOAD_BYTES);
                let wire = ctx.encrypt_rtp_with_header(&plain, &header).unwrap();
                let _ = sock.send_to(&wire, relay_addr);
                seq = seq.wrapping_add(1);
                next += interval;
                let now = Instant::now();
                if next > now {
                    std::thread::sleep(next - now);
                } else if now - next > Duration::from_millis(100) {
                    next = now;
                }
            }
        })
    };

    // The relay: this thread.
    pin(args.relay_cpu);
    let fd = relay_sock.as_raw_fd();
    let mut inbound = context(1);
    let mut outbound: Vec<Context> = (0..args.destinations)
        .map(|i| context(2 + (i % 250) as u8))
        .collect();
    let mut b = RecvBuffers::default();
    let mut out: Vec<Outgoing> = Vec::with_capacity(mediaio::BATCH);
    let warmup = Instant::now() + Duration::from_secs(1);
    let end = warmup + Duration::from_secs(args.seconds);
    let (mut forwarded, mut cpu0, mut counted, mut dropped) = (0u64, Duration::ZERO, false, 0u64);
    let mut t0 = Instant::now();
    loop {
        let now = Instant::now();
        if !counted && now >= warmup {
            counted = true;
            cpu0 = thread_cpu();
            t0 = now;
            forwarded = 0;
            received.store(0, Ordering::Relaxed);
        }
        if now >= end {
            break;
        }
        mediaio::wait_any(&[fd], 20);
        loop {
            let n = match mediaio::recv_batch(fd, &mut b) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            for i in 0..n {
                let Ok(plain) = inbound.decrypt_rtp(b.data(i)) else {
                    continue;
                };
                let mut raw = &plain[..];
                let Ok(mut header) = Header::unmarshal(&mut raw) else {
                    continue;
                };
                let payload = &plain[header.marshal_size()..];
                for (d, ctx) in dests.iter().zip(outbound.iter_mut()) {
                    header.ssrc = 0x1000 + d.ip().to_string().len() as u32;
                    let mut p = BytesMut::with_capacity(header.marshal_size() + payload.len());
                    p.resize(header.marshal_size(), 0);
                    header.marshal_to(&mut p).unwrap();
                    p.extend_from_slice(payload);
                    let Ok(wire) = ctx.encrypt_rtp_with_header(&p, &header) else {
                        continue;
                    };
                    out.push(Outgoing {
                        dst: *d,
                        src_ip: None,
                        data: wire,
                    });
                    if out.len() >= mediaio::BATCH {
                        dropped += mediaio::send_batch(fd, &mut out).dropped as u64;
                    }
                    forwarded += 1;
                }
            }
        }
        if !out.is_empty() {
            dropped += mediaio::send_batch(fd, &mut out).dropped as u64;
        }
    }
    let cpu = (thread_cpu() - cpu0).as_secs_f64();
    let wall = t0.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let _ = source.join();
    let _ = sink.join();
    let per_core = forwarded as f64 / cpu.max(1e-9);
    let report = serde_json::json!({
        "destinations": args.destinations,
        "sourcePps": args.pps,
        "seconds": wall,
        "forwarded": forwarded,
        "forwardedPerSecond": (forwarded as f64 / wall).round(),
        "received": received.load(Ordering::Relaxed),
        "sendDropped": dropped,
        "relayCpuPercent": (1000.0 * cpu / wall).round() / 10.0,
        "packetsPerCoreSecond": per_core.round(),
        "profile": "AEAD_AES_128_GCM",
        "payloadBytes": PAYLOAD_BYTES,
    });
    eprintln!(
        "floor: {} destinations x {} pps: forwarded {:.0}/s at {:.1}% of a core -> {:.0} packets/s per core",
        args.destinations,
        args.pps,
        forwarded as f64 / wall,
        100.0 * cpu / wall,
        per_core
    );
    if let Some(p) = args.json {
        std::fs::write(&p, serde_json::to_vec_pretty(&report).unwrap()).expect("write the report");
    }
}
