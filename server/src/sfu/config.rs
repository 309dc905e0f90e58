//! Where media travels: the one UDP port all media uses, the address it is bound to,
//! the addresses advertised to browsers, how many worker threads serve it, and the ICE
//! servers clients are given.

use crate::model::ice::IceConfig;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

pub const DEFAULT_MEDIA_PORT: u16 = 7882;
/// A client silent (no consent check) this long is gone: its connection is closed.
pub const DEFAULT_CONSENT_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone)]
pub struct SfuConfig {
    /// Bound by every worker's socket; the unspecified address (the default) serves
    /// every interface.
    pub bind_ip: IpAddr,
    /// The media port (UDP); 0 lets the OS pick one (tests). A fixed port is claimed
    /// for this process alone (`claim`).
    pub port: u16,
    /// Worker threads, each with its own socket on the port (SO_REUSEPORT).
    pub workers: usize,
    /// Advertised instead of the interface addresses (NAT 1:1).
    pub public_ip: Option<IpAddr>,
    pub ice: IceConfig,
    pub consent_timeout: Duration,
    /// Also accept AES_CM_128_HMAC_SHA1_80 (for clients without AEAD_AES_128_GCM); with
    /// it, Chromium picks AES-CM, five times the crypto cost per packet.
    pub srtp_fallback: bool,
}

impl Default for SfuConfig {
    /// What tests and embedders get: loopback, a port the OS picks, two workers (so
    /// the hand-off between workers is always exercised).
    fn default() -> Self {
        Self {
            bind_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
            workers: 2,
            public_ip: None,
            ice: IceConfig::default(),
            consent_timeout: DEFAULT_CONSENT_TIMEOUT,
            srtp_fallback: false,
        }
    }
}

/// The number of cores, which is the default number of workers.
pub fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

impl SfuConfig {
    /// The addresses put in each connection's host candidates: the public address when
    /// one is set; else the bound address when it is a specific one; else every IPv4
    /// address of an interface that is up, loopback only when nothing else is.
    pub fn advertised_ips(&self) -> Vec<IpAddr> {
        if let Some(ip) = self.public_ip {
            return vec![ip];
        }
        if !self.bind_ip.is_unspecified() {
            return vec![self.bind_ip];
        }
        let mut ips: Vec<IpAddr> = if_addrs::get_if_addrs()
            .unwrap_or_default()
            .into_iter()
            .map(|i| i.ip())
            .filter(|ip| ip.is_ipv4() && !ip.is_loopback() && !ip.is_unspecified())
            .collect();
        ips.sort();
        ips.dedup();
        if ips.is_empty() {
            ips.push(IpAddr::V4(Ipv4Addr::LOCALHOST));
        }
        ips
    }

    /// The address other nodes' relays reach this one at (see `pipe`): the media
    /// address when it is a specific one, else the first interface address; never the
    /// public one (pipes are meant for the nodes' private network).
    pub fn node_ip(&self) -> IpAddr {
        Self {
            public_ip: None,
            ..self.clone()
        }
        .advertised_ips()[0]
    }

    pub fn candidates(&self, port: u16) -> Vec<SocketAddr> {
        self.advertised_ips()
            .into_iter()
            .map(|ip| SocketAddr::new(ip, port))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advertised_addresses() {
        let c = SfuConfig::default();
        assert_eq!(c.advertised_ips(), [IpAddr::V4(Ipv4Addr::LOCALHOST)]);
        let nat = SfuConfig {
            public_ip: Some("203.0.113.7".parse().unwrap()),
            ..SfuConfig::default()
        };
        assert_eq!(
            nat.candidates(7882),
            ["203.0.113.7:7882".parse::<SocketAddr>().unwrap()]
        );
        // Other nodes reach it on the private side.
        assert_eq!(nat.node_ip(), IpAddr::V4(Ipv4Addr::LOCALHOST));
        let all = SfuConfig {
            bind_ip: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            ..SfuConfig::default()
        };
        let ips = all.advertised_ips();
        assert!(!ips.is_empty());
        assert!(ips.iter().all(|ip| ip.is_ipv4() && !ip.is_unspecified()));
    }
}
