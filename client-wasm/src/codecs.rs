//! Which video codec the SDK asks to send: VP8 unless `Room.join({videoCodec: "h264"})`
//! asks for H.264, which the relay then forwards as it is (it never transcodes). The
//! choice is the order of the browser's codec list (`setCodecPreferences`): the server
//! answers with the first codec it takes. Plain Rust over (mimeType, sdpFmtpLine)
//! pairs; `media` reads the browser's list and applies the order.

use serde::Deserialize;

#[derive(Deserialize, Clone, Copy, PartialEq, Eq, Debug, Default)]
#[serde(rename_all = "lowercase")]
pub enum VideoCodec {
    #[default]
    Vp8,
    H264,
}

/// The H.264 the relay takes: constrained baseline (profile-level-id `42e0..`),
/// non-interleaved (packetization-mode 1).
pub fn is_relayed_h264(mime: &str, fmtp: &str) -> bool {
    let param = |name: &str| {
        fmtp.split(';')
            .filter_map(|p| p.trim().split_once('='))
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.to_ascii_lowercase())
    };
    mime.eq_ignore_ascii_case("video/h264")
        && param("packetization-mode").as_deref() == Some("1")
        && param("profile-level-id").is_some_and(|p| p.starts_with("42e0"))
}

/// The browser's codecs (by index) in the order that asks for `codec`, or `None` when
/// the list needs no change (VP8, the browsers' own default) or cannot have it (no
/// H.264 the relay takes).
pub fn preference_order(codec: VideoCodec, codecs: &[(String, String)]) -> Option<Vec<usize>> {
    if codec == VideoCodec::Vp8 {
        return None;
    }
    let (first, rest): (Vec<usize>, Vec<usize>) =
        (0..codecs.len()).partition(|&i| is_relayed_h264(&codecs[i].0, &codecs[i].1));
    if first.is_empty() {
        return None;
    }
    Some(first.into_iter().chain(rest).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(codecs: &[(&str, &str)]) -> Vec<(String, String)> {
        codecs
            .iter()
            .map(|(m, f)| (m.to_string(), f.to_string()))
            .collect()
    }

    #[test]
    fn h264_constrained_baseline_goes_first_and_nothing_else_moves() {
        // Chromium's list, shortened.
        let codecs = list(&[
            ("video/VP8", ""),
            ("video/rtx", "apt=96"),
            (
                "video/H264",
                "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f",
            ),
            (
                "video/H264",
                "level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42e01f",
            ),
            (
                "video/H264",
                "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
            ),
            ("video/AV1", ""),
        ]);
        assert_eq!(
            preference_order(VideoCodec::H264, &codecs),
            Some(vec![4, 0, 1, 2, 3, 5])
        );
        assert_eq!(preference_order(VideoCodec::Vp8, &codecs), None);
    }

    #[test]
    fn a_browser_without_that_h264_keeps_its_order() {
        let codecs = list(&[
            ("video/VP8", ""),
            ("video/H264", "packetization-mode=1;profile-level-id=4d001f"),
        ]);
        assert_eq!(preference_order(VideoCodec::H264, &codecs), None);
        assert!(is_relayed_h264(
            "video/h264",
            "PROFILE-LEVEL-ID=42E01F; packetization-mode=1"
        ));
    }
}
