//! The kinds of media a member publishes, shared by the session rules and the relay.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum MediaKind {
    Audio,
    Video,
    Screen,
}

impl MediaKind {
    pub const ALL: [MediaKind; 3] = [MediaKind::Audio, MediaKind::Video, MediaKind::Screen];

    pub fn as_str(self) -> &'static str {
        match self {
            MediaKind::Audio => "audio",
            MediaKind::Video => "video",
            MediaKind::Screen => "screen",
        }
    }
}

/// One on/off switch per kind: what a member sends, or what may be forwarded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MediaSet {
    pub audio: bool,
    pub video: bool,
    pub screen: bool,
}

impl MediaSet {
    pub fn get(&self, kind: MediaKind) -> bool {
        match kind {
            MediaKind::Audio => self.audio,
            MediaKind::Video => self.video,
            MediaKind::Screen => self.screen,
        }
    }

    pub fn set(&mut self, kind: MediaKind, on: bool) {
        match kind {
            MediaKind::Audio => self.audio = on,
            MediaKind::Video => self.video = on,
            MediaKind::Screen => self.screen = on,
        }
    }

    /// Keeps only what `allowed` says yes to.
    pub fn limited_to(self, allowed: impl Fn(MediaKind) -> bool) -> Self {
        Self {
            audio: self.audio && allowed(MediaKind::Audio),
            video: self.video && allowed(MediaKind::Video),
            screen: self.screen && allowed(MediaKind::Screen),
        }
    }
}
