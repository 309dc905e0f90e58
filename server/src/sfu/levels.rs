//! RFC 6464 audio levels on a publisher's audio: the id its offer gave the extension,
//! and the loudest level over each window. A window with sound is always reported (so
//! the session's speaker hold is refreshed while someone talks); a quiet one only when
//! the level moved, so a silent room costs no events.

use std::time::{Duration, Instant};

/// The header extension's URI, as browsers offer it.
pub const URI: &str = "urn:ietf:params:rtp-hdrext:ssrc-audio-level";
/// How long levels are gathered before one report.
const WINDOW: Duration = Duration::from_millis(200);
/// Levels up to this many -dBov count as sound: such windows are always reported.
const SOUND_DBOV: u8 = 90;
/// Silence (and what a closed gate counts as).
const SILENT: u8 = 127;

/// The extension id a session description maps the audio level to, if any.
pub fn ext_id(sdp: &str) -> Option<u8> {
    sdp.lines().find_map(|line| {
        let rest = line.trim().strip_prefix("a=extmap:")?;
        let (id, uri) = rest.split_once(' ')?;
        let id = id.split('/').next()?.parse::<u8>().ok()?;
        (uri.split_whitespace().next()? == URI).then_some(id)
    })
}

#[derive(Debug)]
pub struct Levels {
    id: Option<u8>,
    loudest: u8,
    window_start: Option<Instant>,
    told: Option<u8>,
}

impl Default for Levels {
    fn default() -> Self {
        Self {
            id: None,
            loudest: SILENT,
            window_start: None,
            told: None,
        }
    }
}

impl Levels {
    pub fn set_id(&mut self, id: Option<u8>) {
        self.id = id;
    }

    /// An audio packet; `audible`: whether it is forwarded (a muted track is silent).
    /// Returns the level to report when a window closed.
    pub fn packet(
        &mut self,
        header: &rtc::rtp::header::Header,
        audible: bool,
        now: Instant,
    ) -> Option<u8> {
        let id = self.id?;
        let level = match header.get_extension(id) {
            Some(ext) if audible && !ext.is_empty() => ext[0] & 0x7f,
            _ => SILENT,
        };
        self.loudest = self.loudest.min(level);
        let start = *self.window_start.get_or_insert(now);
        if now.saturating_duration_since(start) < WINDOW {
            return None;
        }
        let level = std::mem::replace(&mut self.loudest, SILENT);
        self.window_start = Some(now);
        let moved = self.told.is_none_or(|t| t.abs_diff(level) >= 3);
        if level <= SOUND_DBOV || moved {
            self.told = Some(level);
            return Some(level);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_offer_names_the_extension() {
        let sdp = "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n\
                   a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\r\n\
                   a=extmap:1/sendrecv urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n";
        assert_eq!(ext_id(sdp), Some(1));
        assert_eq!(
            ext_id("a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid"),
            None
        );
    }

    #[test]
    fn windows_report_sound_always_and_quiet_once() {
        let mut levels = Levels::default();
        levels.set_id(Some(1));
        let t0 = Instant::now();
        let packet = |dbov: u8| {
            let mut h = rtc::rtp::header::Header::default();
            h.set_extension(1, bytes::Bytes::from(vec![0x80 | dbov]))
                .unwrap();
            h
        };
        let mut reports = vec![];
        for i in 0..50u64 {
            // 1 s of speech at -30 dBov (with one louder packet), then 1 s of silence.
            let dbov = if i < 25 {
                if i == 3 {
                    20
                } else {
                    30
                }
            } else {
                127
            };
            let at = t0 + Duration::from_millis(40 * i);
            reports.extend(levels.packet(&packet(dbov), true, at));
        }
        assert_eq!(reports, [20, 30, 30, 30, 30, 127], "{reports:?}");
        // A closed gate is silence, whatever the packet says.
        let mut muted = Levels::default();
        muted.set_id(Some(1));
        let got: Vec<u8> = (0..10u64)
            .filter_map(|i| muted.packet(&packet(10), false, t0 + Duration::from_millis(40 * i)))
            .collect();
        assert_eq!(got, [127]);
    }
}
