//! Which local ICE candidates are worth sending to the server. The relay speaks ICE over
//! UDP only, muxes RTCP with RTP, and bundles every m-section on the first one's
//! transport, so anything else is noise: Firefox gathers TCP candidates, RTCP
//! (component 2) candidates and candidates per m-section, about 50 for one offer,
//! enough to trip the server's message rate limit while joining.

/// Whether to trickle `candidate` (an `a=candidate` value) gathered for m-line `m_line`.
pub fn worth_sending(candidate: &str, m_line: Option<u16>) -> bool {
    // Past the first m-line: a transport that BUNDLE replaces with the first one's.
    if m_line.is_some_and(|m| m > 0) {
        return false;
    }
    // `candidate:<foundation> <component> <transport> <priority> <ip> <port> typ ...`;
    // an empty value is the end-of-candidates marker, which the server does not need.
    let mut fields = candidate.split_ascii_whitespace().skip(1);
    let component = fields.next();
    let transport = fields.next();
    component == Some("1") && transport.is_some_and(|t| t.eq_ignore_ascii_case("udp"))
}

#[cfg(test)]
mod tests {
    use super::worth_sending;

    #[test]
    fn keeps_udp_rtp_candidates_of_the_first_m_line() {
        let c = "candidate:0 1 UDP 2122055935 127.0.0.1 47610 typ host";
        assert!(worth_sending(c, Some(0)));
        assert!(worth_sending(c, None));
        // Chromium's spelling.
        assert!(worth_sending(
            "candidate:1 1 udp 2113937151 127.0.0.1 50000 typ host generation 0",
            Some(0)
        ));
    }

    #[test]
    fn drops_what_the_relay_cannot_use() {
        // TCP, RTCP's component 2, a later m-line's transport, the end marker, garbage.
        assert!(!worth_sending(
            "candidate:4 1 TCP 2105327871 127.0.0.1 9 typ host tcptype active",
            Some(0)
        ));
        assert!(!worth_sending(
            "candidate:2 2 UDP 2122187006 192.0.2.2 49535 typ host",
            Some(0)
        ));
        assert!(!worth_sending(
            "candidate:0 1 UDP 2122055935 127.0.0.1 47611 typ host",
            Some(1)
        ));
        assert!(!worth_sending("", Some(0)));
        assert!(!worth_sending("candidate:", Some(0)));
    }
}
