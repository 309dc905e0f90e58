//! The events `Room.on` accepts (the `RoomEvents` interface in the typings).

use crate::errors::SdkError;

pub const EVENT_NAMES: &[&str] = &[
    "participantJoined",
    "participantLeft",
    "mediaChanged",
    "trackAdded",
    "trackRemoved",
    "stateChanged",
    "capabilitiesChanged",
    "message",
    "error",
    "left",
    "seatsChanged",
    "seatApplicationsChanged",
    "seatApplicationEnded",
    "roomAttributesChanged",
    "memberAttributesChanged",
    "roomEnding",
    "activeSpeakersChanged",
    "connectionQualityChanged",
    "trackPaused",
    "trackResumed",
];

/// The known event called `name`, or an error listing the known ones.
pub fn event_name(name: &str) -> Result<&'static str, SdkError> {
    EVENT_NAMES
        .iter()
        .find(|n| **n == name)
        .copied()
        .ok_or_else(|| {
            SdkError::invalid(
                "event",
                format!("unknown event '{name}'; one of: {}", EVENT_NAMES.join(", ")),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_names_are_checked() {
        assert_eq!(event_name("trackAdded").unwrap(), "trackAdded");
        let e = event_name("trackadded").unwrap_err();
        assert_eq!(e.code, "InvalidParameter");
        assert!(e.message.contains("trackAdded"), "{}", e.message);
    }
}
