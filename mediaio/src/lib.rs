//! Batched UDP I/O for media, shared by Convene's relay and its load tool. A socket is
//! bound with SO_REUSEPORT (the relay's workers share one port; the kernel spreads
//! clients over them by 4-tuple), reads up to a batch of datagrams per `recvmmsg` call
//! with the destination address of each (IP_PKTINFO: one wildcard socket serves every
//! interface, and a load tool can give each client an address of its own on one
//! socket), and writes a batch per `sendmmsg` call with the source address of each.
//! Linux only.

pub mod keytap;

use std::io;
use std::mem::{size_of, zeroed};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, RawFd};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

/// Datagrams per `recvmmsg` / `sendmmsg` call.
pub const BATCH: usize = 32;
/// Largest datagram read; anything longer is dropped (WebRTC keeps under the MTU).
pub const MAX_DATAGRAM: usize = 2048;
/// Kernel buffers: a burst of a few thousand packets fits before any is dropped.
const SOCKET_BUFFER_BYTES: usize = 8 * 1024 * 1024;
/// Room for one IP_PKTINFO / IPV6_PKTINFO control message.
const CMSG_BYTES: usize = 64;

/// Binds `addr` with SO_REUSEPORT, non-blocking, asking for each datagram's destination.
pub fn bind(addr: SocketAddr) -> io::Result<Socket> {
    let domain = if addr.is_ipv4() {
        Domain::IPV4
    } else {
        Domain::IPV6
    };
    let s = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))?;
    s.set_reuse_port(true)?;
    s.set_nonblocking(true)?;
    // Best effort: the kernel caps them at net.core.{r,w}mem_max.
    let _ = s.set_recv_buffer_size(SOCKET_BUFFER_BYTES);
    let _ = s.set_send_buffer_size(SOCKET_BUFFER_BYTES);
    let on: libc::c_int = 1;
    let (level, opt) = if addr.is_ipv4() {
        (libc::IPPROTO_IP, libc::IP_PKTINFO)
    } else {
        (libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO)
    };
    // SAFETY: a valid fd and a pointer to a c_int of the given size.
    let rc = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            level,
            opt,
            &on as *const _ as *const libc::c_void,
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    s.bind(&SockAddr::from(addr))?;
    Ok(s)
}

/// One received datagram: where from, to which of our addresses, and its bytes.
#[derive(Debug, Clone, Copy)]
pub struct Received {
    pub src: SocketAddr,
    /// The address it was sent to (our interface address), when the kernel said.
    pub dst_ip: Option<IpAddr>,
    pub len: usize,
}

/// Reusable buffers for `recv_batch`.
pub struct RecvBuffers {
    data: Vec<[u8; MAX_DATAGRAM]>,
    names: Vec<libc::sockaddr_storage>,
    control: Vec<[u8; CMSG_BYTES]>,
    pub got: Vec<Received>,
}

impl Default for RecvBuffers {
    fn default() -> Self {
        Self {
            data: vec![[0u8; MAX_DATAGRAM]; BATCH],
            // SAFETY: sockaddr_storage is plain data; all-zero is a valid value.
            names: vec![unsafe { zeroed() }; BATCH],
            control: vec![[0u8; CMSG_BYTES]; BATCH],
            got: Vec::with_capacity(BATCH),
        }
    }
}

impl RecvBuffers {
    pub fn data(&self, i: usize) -> &[u8] {
        &self.data[i][..self.got[i].len]
    }
}

/// Reads up to `BATCH` datagrams without blocking; `Ok(0)` when none is waiting.
/// Truncated datagrams are dropped.
pub fn recv_batch(fd: RawFd, b: &mut RecvBuffers) -> io::Result<usize> {
    b.got.clear();
    // SAFETY: iovecs and headers point into `b`'s buffers, which outlive the call and
    // are not moved during it; the kernel writes at most the lengths given.
    let n = unsafe {
        let mut iov: [libc::iovec; BATCH] = zeroed();
        let mut hdrs: [libc::mmsghdr; BATCH] = zeroed();
        for i in 0..BATCH {
            iov[i] = libc::iovec {
                iov_base: b.data[i].as_mut_ptr() as *mut libc::c_void,
                iov_len: MAX_DATAGRAM,
            };
            let h = &mut hdrs[i].msg_hdr;
            h.msg_name = &mut b.names[i] as *mut _ as *mut libc::c_void;
            h.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            h.msg_iov = &mut iov[i];
            h.msg_iovlen = 1;
            h.msg_control = b.control[i].as_mut_ptr() as *mut libc::c_void;
            h.msg_controllen = CMSG_BYTES as _;
        }
        let rc = libc::recvmmsg(
            fd,
            hdrs.as_mut_ptr(),
            BATCH as libc::c_uint,
            libc::MSG_DONTWAIT,
            std::ptr::null_mut(),
        );
        if rc < 0 {
            let e = io::Error::last_os_error();
            return match e.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(0),
                _ => Err(e),
            };
        }
        for (i, h) in hdrs.iter().take(rc as usize).enumerate() {
            let src = from_storage(&b.names[i]);
            let truncated = h.msg_hdr.msg_flags & libc::MSG_TRUNC != 0;
            let dst_ip = pktinfo_dst(&h.msg_hdr);
            // An entry is kept for every datagram so indices match `data`; an empty one
            // (truncated, or an address family we never bind) is for skipping.
            b.got.push(Received {
                src: src.unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0))),
                dst_ip,
                len: if truncated || src.is_none() {
                    0
                } else {
                    h.msg_len as usize
                },
            });
        }
        rc as usize
    };
    Ok(n)
}

/// The destination address from an IP_PKTINFO / IPV6_PKTINFO control message.
///
/// SAFETY: `h` must be a header filled in by `recvmmsg`.
unsafe fn pktinfo_dst(h: &libc::msghdr) -> Option<IpAddr> {
    let mut c = libc::CMSG_FIRSTHDR(h);
    while !c.is_null() {
        let cm = &*c;
        if cm.cmsg_level == libc::IPPROTO_IP && cm.cmsg_type == libc::IP_PKTINFO {
            let info = std::ptr::read_unaligned(libc::CMSG_DATA(c) as *const libc::in_pktinfo);
            return Some(IpAddr::V4(Ipv4Addr::from(u32::from_be(
                info.ipi_addr.s_addr,
            ))));
        }
        if cm.cmsg_level == libc::IPPROTO_IPV6 && cm.cmsg_type == libc::IPV6_PKTINFO {
            let info = std::ptr::read_unaligned(libc::CMSG_DATA(c) as *const libc::in6_pktinfo);
            return Some(IpAddr::V6(info.ipi6_addr.s6_addr.into()));
        }
        c = libc::CMSG_NXTHDR(h, c);
    }
    None
}

fn from_storage(s: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match s.ss_family as libc::c_int {
        libc::AF_INET => {
            // SAFETY: the family says it is a sockaddr_in.
            let a = unsafe { &*(s as *const _ as *const libc::sockaddr_in) };
            Some(SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr)),
                u16::from_be(a.sin_port),
            )))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says it is a sockaddr_in6.
            let a = unsafe { &*(s as *const _ as *const libc::sockaddr_in6) };
            Some(SocketAddr::V6(SocketAddrV6::new(
                a.sin6_addr.s6_addr.into(),
                u16::from_be(a.sin6_port),
                a.sin6_flowinfo,
                a.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

/// One datagram to send.
#[derive(Debug)]
pub struct Outgoing {
    pub dst: SocketAddr,
    /// Our address to send from (the one the client talks to); `None`: the kernel's choice.
    pub src_ip: Option<IpAddr>,
    pub data: bytes::BytesMut,
}

/// What `send_batch` did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Sent {
    pub sent: usize,
    /// Not sent because the socket's buffer was full.
    pub dropped: usize,
}

/// Sends every datagram, `BATCH` per `sendmmsg` call, and empties `out`. A full socket
/// buffer drops the rest of that call's datagrams (UDP: the receiver recovers).
pub fn send_batch(fd: RawFd, out: &mut Vec<Outgoing>) -> Sent {
    let mut result = Sent::default();
    let mut start = 0;
    while start < out.len() {
        let chunk = &out[start..(start + BATCH).min(out.len())];
        match send_chunk(fd, chunk) {
            Ok(n) if n > 0 => {
                result.sent += n;
                start += n;
            }
            Ok(_) => {
                result.dropped += chunk.len();
                start += chunk.len();
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => {
                // WouldBlock (buffer full) or an error for the first datagram (e.g. an
                // unreachable address): skip that one and carry on with the rest.
                result.dropped += 1;
                start += 1;
            }
        }
    }
    out.clear();
    result
}

fn send_chunk(fd: RawFd, chunk: &[Outgoing]) -> io::Result<usize> {
    let n = chunk.len();
    // SAFETY: every pointer refers to `chunk` or to the arrays below, all alive and
    // unmoved for the duration of the call; lengths match the buffers.
    unsafe {
        let mut iov: [libc::iovec; BATCH] = zeroed();
        let mut names: [libc::sockaddr_storage; BATCH] = zeroed();
        let mut control: [[u8; CMSG_BYTES]; BATCH] = [[0u8; CMSG_BYTES]; BATCH];
        let mut hdrs: [libc::mmsghdr; BATCH] = zeroed();
        for (i, d) in chunk.iter().enumerate() {
            iov[i] = libc::iovec {
                iov_base: d.data.as_ptr() as *mut libc::c_void,
                iov_len: d.data.len(),
            };
            let name_len = write_sockaddr(&d.dst, &mut names[i]);
            let h = &mut hdrs[i].msg_hdr;
            h.msg_name = &mut names[i] as *mut _ as *mut libc::c_void;
            h.msg_namelen = name_len;
            h.msg_iov = &mut iov[i];
            h.msg_iovlen = 1;
            if let Some(src) = d.src_ip {
                h.msg_control = control[i].as_mut_ptr() as *mut libc::c_void;
                h.msg_controllen = CMSG_BYTES as _;
                let used = write_pktinfo(h, src, d.dst.is_ipv4());
                h.msg_controllen = used as _;
                if used == 0 {
                    h.msg_control = std::ptr::null_mut();
                }
            }
        }
        let rc = libc::sendmmsg(fd, hdrs.as_mut_ptr(), n as libc::c_uint, libc::MSG_DONTWAIT);
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(rc as usize)
    }
}

/// SAFETY: `h.msg_control` must point to `CMSG_BYTES` writable bytes.
unsafe fn write_pktinfo(h: &mut libc::msghdr, src: IpAddr, v4_socket: bool) -> usize {
    let c = libc::CMSG_FIRSTHDR(h);
    if c.is_null() {
        return 0;
    }
    match (src, v4_socket) {
        (IpAddr::V4(ip), true) => {
            (*c).cmsg_level = libc::IPPROTO_IP;
            (*c).cmsg_type = libc::IP_PKTINFO;
            (*c).cmsg_len = libc::CMSG_LEN(size_of::<libc::in_pktinfo>() as u32) as _;
            let mut info: libc::in_pktinfo = zeroed();
            info.ipi_spec_dst.s_addr = u32::from(ip).to_be();
            std::ptr::write_unaligned(libc::CMSG_DATA(c) as *mut libc::in_pktinfo, info);
            libc::CMSG_SPACE(size_of::<libc::in_pktinfo>() as u32) as usize
        }
        (IpAddr::V6(ip), false) => {
            (*c).cmsg_level = libc::IPPROTO_IPV6;
            (*c).cmsg_type = libc::IPV6_PKTINFO;
            (*c).cmsg_len = libc::CMSG_LEN(size_of::<libc::in6_pktinfo>() as u32) as _;
            let mut info: libc::in6_pktinfo = zeroed();
            info.ipi6_addr.s6_addr = ip.octets();
            std::ptr::write_unaligned(libc::CMSG_DATA(c) as *mut libc::in6_pktinfo, info);
            libc::CMSG_SPACE(size_of::<libc::in6_pktinfo>() as u32) as usize
        }
        _ => 0,
    }
}

fn write_sockaddr(addr: &SocketAddr, out: &mut libc::sockaddr_storage) -> libc::socklen_t {
    match addr {
        SocketAddr::V4(a) => {
            // SAFETY: sockaddr_storage is large enough and aligned for sockaddr_in.
            let s = unsafe { &mut *(out as *mut _ as *mut libc::sockaddr_in) };
            s.sin_family = libc::AF_INET as libc::sa_family_t;
            s.sin_port = a.port().to_be();
            s.sin_addr.s_addr = u32::from(*a.ip()).to_be();
            size_of::<libc::sockaddr_in>() as libc::socklen_t
        }
        SocketAddr::V6(a) => {
            // SAFETY: sockaddr_storage is large enough and aligned for sockaddr_in6.
            let s = unsafe { &mut *(out as *mut _ as *mut libc::sockaddr_in6) };
            s.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            s.sin6_port = a.port().to_be();
            s.sin6_addr.s6_addr = a.ip().octets();
            s.sin6_flowinfo = a.flowinfo();
            s.sin6_scope_id = a.scope_id();
            size_of::<libc::sockaddr_in6>() as libc::socklen_t
        }
    }
}

/// Waits until `fd` is readable, `wake` is readable, or `timeout_ms` passes.
pub fn wait(fd: RawFd, wake: RawFd, timeout_ms: i32) {
    wait_any(&[fd, wake], timeout_ms);
}

/// Waits until any of `fds` is readable or `timeout_ms` passes (-1: no timeout).
pub fn wait_any(fds: &[RawFd], timeout_ms: i32) {
    let mut polls: Vec<libc::pollfd> = fds
        .iter()
        .map(|&fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    // SAFETY: a valid array of pollfd entries of the given length.
    unsafe {
        libc::poll(polls.as_mut_ptr(), polls.len() as libc::nfds_t, timeout_ms);
    }
}

/// An eventfd other threads write to wake a worker out of `wait`.
pub struct Waker(RawFd);

impl Waker {
    pub fn new() -> io::Result<Self> {
        // SAFETY: plain syscall.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Self(fd))
    }

    pub fn fd(&self) -> RawFd {
        self.0
    }

    pub fn wake(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a valid u64 to our own eventfd.
        unsafe {
            libc::write(self.0, &one as *const u64 as *const libc::c_void, 8);
        }
    }

    /// Resets the counter after a wake-up.
    pub fn clear(&self) {
        let mut v: u64 = 0;
        // SAFETY: reads 8 bytes into a valid u64 from our own non-blocking eventfd.
        unsafe {
            libc::read(self.0, &mut v as *mut u64 as *mut libc::c_void, 8);
        }
    }
}

impl Drop for Waker {
    fn drop(&mut self) {
        // SAFETY: closes the fd we own, once.
        unsafe {
            libc::close(self.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;

    #[test]
    fn a_batch_goes_out_and_comes_back_with_its_addresses() {
        let s = bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let port = s.local_addr().unwrap().as_socket().unwrap().port();
        // A second socket on the same port: SO_REUSEPORT works.
        let _twin = bind(SocketAddr::from(([127, 0, 0, 1], port))).unwrap();
        let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
        let peer_addr = peer.local_addr().unwrap();
        let mut out: Vec<Outgoing> = (0..40u8)
            .map(|i| Outgoing {
                dst: peer_addr,
                src_ip: Some(IpAddr::V4(Ipv4Addr::LOCALHOST)),
                data: bytes::BytesMut::from(&[i; 100][..]),
            })
            .collect();
        let sent = send_batch(s.as_raw_fd(), &mut out);
        assert_eq!(
            sent,
            Sent {
                sent: 40,
                dropped: 0
            }
        );
        assert!(out.is_empty());
        let mut buf = [0u8; 200];
        for i in 0..40u8 {
            let (n, from) = peer.recv_from(&mut buf).unwrap();
            assert_eq!((n, buf[0], from.port()), (100, i, port));
        }
        // Back the other way, to whichever of the two sockets the kernel picks.
        let me: SocketAddr = ([127, 0, 0, 1], port).into();
        peer.send_to(b"hello", me).unwrap();
        let mut b = RecvBuffers::default();
        let mut got = 0;
        'wait: for _ in 0..100 {
            for sock in [&s, &_twin] {
                got = recv_batch(sock.as_raw_fd(), &mut b).unwrap();
                if got > 0 {
                    break 'wait;
                }
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert_eq!(got, 1);
        let r = b.got[0];
        assert_eq!(r.src, peer_addr);
        assert_eq!(r.dst_ip, Some(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        assert_eq!(b.data(0), b"hello");
    }
}
