//! How the server names the tracks it relays: stream id `u-<hex of the user id>`,
//! track id `<audio|video|screen>-<hex>`. Parsing them tells whose track arrived.

/// The kind of a relayed track.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TrackKind {
    Audio,
    Video,
    Screen,
}

impl TrackKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TrackKind::Audio => "audio",
            TrackKind::Video => "video",
            TrackKind::Screen => "screen",
        }
    }
}

fn unhex(s: &str) -> Option<String> {
    if s.is_empty() || !s.len().is_multiple_of(2) {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect();
    String::from_utf8(bytes?).ok()
}

/// The publisher's user id from a relayed stream id.
pub fn participant_of_stream(stream_id: &str) -> Option<String> {
    unhex(stream_id.strip_prefix("u-")?)
}

/// The kind from a relayed track id; `fallback` is the browser's `track.kind`.
pub fn kind_of_track(track_id: &str, fallback: &str) -> TrackKind {
    match track_id.split('-').next() {
        Some("screen") => TrackKind::Screen,
        Some("audio") => TrackKind::Audio,
        Some("video") => TrackKind::Video,
        _ if fallback == "audio" => TrackKind::Audio,
        _ => TrackKind::Video,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_ids_name_the_publisher() {
        assert_eq!(
            participant_of_stream("u-616c696365").as_deref(),
            Some("alice")
        );
        assert_eq!(
            participant_of_stream("u-626f6240782e696f").as_deref(),
            Some("bob@x.io")
        );
        assert_eq!(participant_of_stream("u-"), None);
        assert_eq!(participant_of_stream("u-6"), None);
        assert_eq!(participant_of_stream("u-zz"), None);
        assert_eq!(participant_of_stream("616c696365"), None);
        assert_eq!(participant_of_stream("u-ff"), None, "not UTF-8");
    }

    #[test]
    fn track_ids_name_the_kind() {
        assert_eq!(kind_of_track("screen-616c", "video"), TrackKind::Screen);
        assert_eq!(kind_of_track("video-616c", "video"), TrackKind::Video);
        assert_eq!(kind_of_track("audio-616c", "audio"), TrackKind::Audio);
        assert_eq!(kind_of_track("{1234-abcd}", "audio"), TrackKind::Audio);
        assert_eq!(kind_of_track("{1234-abcd}", "video"), TrackKind::Video);
    }
}
