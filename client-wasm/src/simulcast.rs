//! Simulcast: the SDK sends its camera as three VP8 encodings of one picture, a
//! quarter, half and full size (RIDs `q`, `h`, `f`; two, `h` and `f`, from a camera
//! under 960x540, as browsers send no more from one), and the server relays to each
//! viewer the one that fits how large it shows the video (`setViewing`'s
//! `videoHeight`). `Room.join({simulcast: false})` sends one encoding. Screen share is
//! one encoding, tuned for detail; so is H.264 (the relay switches layers of VP8 only).
//! Layers nobody needs are paused: the server says how tall the tallest viewer shows
//! the camera (`cameraDemand`) and `active` picks the encodings that serves.
//! Plain Rust: `media` turns these into the transceiver's `sendEncodings`.

use crate::codecs::VideoCodec;
use crate::naming::TrackKind;

/// One encoding to send.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Encoding {
    pub rid: &'static str,
    pub scale_down_by: f64,
    /// Bits per second.
    pub max_bitrate: u32,
}

/// The camera's layers, low to high. The bitrates are the usual ones for 720p: the
/// three together stay under 2.2 Mbit/s.
const CAMERA: [Encoding; 3] = [
    Encoding {
        rid: "q",
        scale_down_by: 4.0,
        max_bitrate: 150_000,
    },
    Encoding {
        rid: "h",
        scale_down_by: 2.0,
        max_bitrate: 500_000,
    },
    Encoding {
        rid: "f",
        scale_down_by: 1.0,
        max_bitrate: 1_500_000,
    },
];

/// The encodings to send a track of `kind` in, whose picture is `size` (width and
/// height; `None` unknown); empty: the browser's one default. Chromium sends three
/// layers from 960x540 up and two from 480x270 up (it leaves the top ones out, so a
/// 640x480 camera asked for three would send only its quarter and half): the layers
/// asked for are the ones it sends.
pub fn encodings(
    kind: TrackKind,
    codec: VideoCodec,
    simulcast: bool,
    size: Option<(u32, u32)>,
) -> &'static [Encoding] {
    if kind != TrackKind::Video || !simulcast || codec != VideoCodec::Vp8 {
        return &[];
    }
    match size.map(|(w, h)| w * h) {
        Some(px) if px < 480 * 270 => &[],
        Some(px) if px < 960 * 540 => &CAMERA[1..],
        _ => &CAMERA,
    }
}

/// Which of a camera's encodings to send, `heights` tall, when the tallest viewer shows
/// it `max_height` device pixels tall (the server's `cameraDemand`; `None`: as large as
/// there is, 0: nobody shows it): the smallest always (the next viewer's first frame
/// never waits for an encoder to start), and the others up to the smallest at least
/// that tall (the one the relay sends that viewer; those below are for viewers whose
/// link carries less).
pub fn active(heights: &[u32], max_height: Option<u32>) -> Vec<bool> {
    let Some(want) = max_height else {
        return vec![true; heights.len()];
    };
    let smallest = heights.iter().copied().min().unwrap_or(0);
    let tallest = heights.iter().copied().max().unwrap_or(0);
    let fits = heights.iter().copied().filter(|&h| h >= want).min();
    let up_to = fits.unwrap_or(tallest).max(smallest);
    heights.iter().map(|&h| h <= up_to).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_layers_a_viewer_needs_are_sent() {
        let hd = [180, 360, 720];
        assert_eq!(active(&hd, None), [true, true, true]);
        assert_eq!(
            active(&hd, Some(0)),
            [true, false, false],
            "nobody: the smallest"
        );
        assert_eq!(active(&hd, Some(100)), [true, false, false]);
        assert_eq!(active(&hd, Some(180)), [true, false, false]);
        assert_eq!(active(&hd, Some(181)), [true, true, false]);
        assert_eq!(active(&hd, Some(360)), [true, true, false]);
        assert_eq!(active(&hd, Some(400)), [true, true, true]);
        assert_eq!(
            active(&hd, Some(4000)),
            [true, true, true],
            "taller than any: all"
        );
        // Any order, as the encodings are listed.
        assert_eq!(active(&[720, 180, 360], Some(200)), [false, true, true]);
        assert_eq!(active(&[240, 480], Some(0)), [true, false]);
        assert!(active(&[], Some(0)).is_empty());
    }

    #[test]
    fn only_a_vp8_camera_is_sent_in_layers() {
        let hd = Some((1280, 720));
        let rids = |e: &[Encoding]| e.iter().map(|e| e.rid).collect::<Vec<_>>();
        let cam = encodings(TrackKind::Video, VideoCodec::Vp8, true, hd);
        assert_eq!(rids(cam), ["q", "h", "f"]);
        assert!(cam.windows(2).all(
            |w| w[0].scale_down_by > w[1].scale_down_by && w[0].max_bitrate < w[1].max_bitrate
        ));
        assert_eq!(
            cam,
            encodings(TrackKind::Video, VideoCodec::Vp8, true, None)
        );
        // Smaller cameras: the layers a browser sends from them.
        let vga = encodings(TrackKind::Video, VideoCodec::Vp8, true, Some((640, 480)));
        assert_eq!(rids(vga), ["h", "f"]);
        assert_eq!(vga[1].scale_down_by, 1.0, "the camera's full size is sent");
        assert!(encodings(TrackKind::Video, VideoCodec::Vp8, true, Some((320, 240))).is_empty());
        assert!(encodings(TrackKind::Video, VideoCodec::Vp8, false, hd).is_empty());
        assert!(encodings(TrackKind::Video, VideoCodec::H264, true, hd).is_empty());
        assert!(encodings(TrackKind::Screen, VideoCodec::Vp8, true, hd).is_empty());
        assert!(encodings(TrackKind::Audio, VideoCodec::Vp8, true, hd).is_empty());
    }
}
