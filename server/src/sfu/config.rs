//! Where media travels: the address the relay binds, the UDP ports it may use, the
//! address it advertises, and the ICE servers clients are given.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, Ordering};

use convene_protocol::signal::IceServer;

#[derive(Debug, Clone)]
pub struct SfuConfig {
    /// Bound for every peer connection. It must be an exact address: a wildcard bind
    /// skips loopback and may advertise 0.0.0.0.
    pub bind_ip: IpAddr,
    /// Inclusive UDP port range; `None` lets the OS pick.
    pub ports: Option<(u16, u16)>,
    /// Advertised instead of `bind_ip` (NAT 1:1), by rewriting our candidates.
    pub public_ip: Option<IpAddr>,
    pub ice_servers: Vec<IceServer>,
}

impl Default for SfuConfig {
    fn default() -> Self {
        Self {
            bind_ip: IpAddr::from([127, 0, 0, 1]),
            ports: None,
            public_ip: None,
            ice_servers: vec![],
        }
    }
}

/// Hands out ports of the range in turn. webrtc-rs binds one UDP socket per connection
/// and cannot share a port, so a taken port is skipped and the next one tried.
#[derive(Debug, Default)]
pub struct Ports {
    next: AtomicU32,
}

impl Ports {
    /// Addresses to try, in order, for the next connection.
    pub fn candidates(&self, config: &SfuConfig) -> Vec<String> {
        match config.ports {
            None => vec![format!("{}:0", fmt_ip(config.bind_ip))],
            Some((lo, hi)) => {
                let n = u32::from(hi - lo) + 1;
                let start = self.next.fetch_add(1, Ordering::Relaxed) % n;
                (0..n)
                    .map(|i| {
                        let port = lo as u32 + (start + i) % n;
                        format!("{}:{port}", fmt_ip(config.bind_ip))
                    })
                    .collect()
            }
        }
    }
}

fn fmt_ip(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    }
}

/// Replaces the bound address in a candidate line with the advertised one.
pub fn advertise(candidate: &str, config: &SfuConfig) -> String {
    match config.public_ip {
        Some(public) => {
            candidate.replacen(&format!(" {} ", config.bind_ip), &format!(" {public} "), 1)
        }
        None => candidate.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_rotate_through_the_range() {
        let c = SfuConfig {
            ports: Some((40000, 40002)),
            ..Default::default()
        };
        let p = Ports::default();
        assert_eq!(p.candidates(&c)[0], "127.0.0.1:40000");
        let second = p.candidates(&c);
        assert_eq!(
            second,
            ["127.0.0.1:40001", "127.0.0.1:40002", "127.0.0.1:40000"]
        );
        assert_eq!(
            Ports::default().candidates(&SfuConfig::default()),
            ["127.0.0.1:0"]
        );
    }

    #[test]
    fn public_ip_is_advertised() {
        let c = SfuConfig {
            public_ip: Some("203.0.113.7".parse().unwrap()),
            ..Default::default()
        };
        let line = "candidate:1 1 udp 2130706431 127.0.0.1 50000 typ host";
        assert_eq!(
            advertise(line, &c),
            "candidate:1 1 udp 2130706431 203.0.113.7 50000 typ host"
        );
    }
}
