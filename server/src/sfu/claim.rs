//! Makes a fixed media port this process's own before the relay binds it.
//!
//! The relay's workers share the port through SO_REUSEPORT, and SO_REUSEPORT lets any
//! other process of the same user bind the port too: the kernel then spreads clients
//! over both processes by address, and calls fail at random (two nodes on one host left
//! on the default port did exactly that, and both started without a word). So a relay
//! first takes a lock named for its address, an abstract Unix socket the kernel frees
//! when the process ends however it ends, which settles two relays starting at the
//! same moment; then it checks that no other program holds the port: a bind without
//! SO_REUSEPORT is refused while any socket is bound there.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr as LockAddr, UnixListener};

/// Held for as long as the relay's sockets are bound.
pub struct PortClaim {
    _lock: UnixListener,
}

/// Claims `addr` (a fixed port) for this process, or says who is in the way.
pub fn claim(addr: SocketAddr) -> io::Result<PortClaim> {
    let taken = || {
        io::Error::new(
            io::ErrorKind::AddrInUse,
            format!(
                "UDP {addr} is already in use by another process (another Convene server on \
                 this host?); give each server on one host its own media port \
                 (CONVENE_MEDIA_PORT, --media-port or media_port in the config file)"
            ),
        )
    };
    let in_use = |e: io::Error| {
        if e.kind() == io::ErrorKind::AddrInUse {
            taken()
        } else {
            e
        }
    };
    // Abstract names live in the network namespace, as ports do.
    let name = LockAddr::from_abstract_name(format!("convene-media-udp-{addr}").as_bytes())?;
    let lock = UnixListener::bind_addr(&name).map_err(in_use)?;
    drop(UdpSocket::bind(addr).map_err(in_use)?);
    Ok(PortClaim { _lock: lock })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{IpAddr, Ipv4Addr};

    fn free_addr() -> SocketAddr {
        UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
            .unwrap()
            .local_addr()
            .unwrap()
    }

    #[test]
    fn a_port_is_claimed_once_and_free_again_after() {
        let addr = free_addr();
        let first = claim(addr).expect("a free port is claimed");
        let err = claim(addr).err().expect("a claimed port is refused");
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
        assert!(err.to_string().contains("CONVENE_MEDIA_PORT"), "{err}");
        drop(first);
        claim(addr).expect("free again once the claim is dropped");
    }

    #[test]
    fn a_port_another_program_shares_is_refused() {
        // A socket bound with SO_REUSEPORT, as another relay's workers bind theirs: it
        // would let this relay bind too, without the check.
        let addr = free_addr();
        let other = mediaio::bind(addr).unwrap();
        assert!(
            mediaio::bind(addr).is_ok(),
            "SO_REUSEPORT alone lets a second bind in"
        );
        let err = claim(addr).err().expect("the port is in use");
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
        assert!(err.to_string().contains(&addr.to_string()), "{err}");
        // The same port on every interface overlaps it too.
        let wildcard = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), addr.port());
        assert!(claim(wildcard).is_err(), "the wildcard address overlaps it");
        drop(other);
        claim(addr).expect("free once the other program is gone");
    }
}
