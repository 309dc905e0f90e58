//! Signaling messages over the WebSocket at `GET /v1/rtc?token=...[&resume=...]`.
//! JSON text frames tagged by `type`, fields in camelCase.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::ErrorBody;

/// The client should send `ping` at least this often; the server also sends WebSocket
/// ping frames, which browsers answer on their own.
pub const PING_INTERVAL_SECONDS: u32 = 10;
/// A connection with no frame from the client for this long is treated as dropped.
pub const IDLE_TIMEOUT_SECONDS: u32 = 30;
/// Largest text frame the server accepts.
pub const MAX_FRAME_BYTES: usize = 64 * 1024;
/// Longest join token a server accepts (minted ones are under 400 bytes); the SDK
/// refuses longer ones before connecting, as a request line over 64 KiB gets only a
/// bare `414` from the HTTP layer.
pub const MAX_TOKEN_BYTES: usize = 2048;
/// Largest chat message text, in bytes.
pub const MAX_CHAT_BYTES: usize = 4 * 1024;
/// How long before the room's `validUntil` members get `roomEnding`.
pub const ROOM_ENDING_NOTICE_SECONDS: u64 = 300;

/// What a role may do (the server's role table decides; see `Role::capabilities`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Capabilities {
    pub publish_audio: bool,
    pub publish_video: bool,
    pub publish_screen: bool,
    /// May mute or remove other members.
    pub moderate: bool,
}

/// A joined member as others see it. The participant id is the user id: a user is in a
/// session at most once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Participant {
    pub id: String,
    pub role: String,
    pub audio: bool,
    pub video: bool,
    pub screen: bool,
    /// RFC 3339.
    pub joined_at: String,
    /// A guest's display name (invited users have none: their id is their name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The member's own small key-value map (e.g. a raised hand).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, String>,
}

/// One seat of a `live` or `voice` room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct SeatInfo {
    pub index: u32,
    /// Who sits there (a participant id), if anyone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// A locked seat cannot be taken (whoever sits there stays).
    pub locked: bool,
    pub audio: bool,
    pub video: bool,
}

/// A member waiting for a seat in an `applyToTake` room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SeatApplication {
    pub user_id: String,
    /// The seat asked for; any free one when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<u32>,
    /// RFC 3339: unanswered by then, it lapses.
    pub expires_at: String,
}

/// How a seat application ended, told to the applicant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ApplicationOutcome {
    Approved,
    Rejected,
    Expired,
    Cancelled,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoomInfo {
    pub id: String,
    pub name: String,
    pub valid_from: String,
    pub valid_until: String,
    pub is_message_disabled: bool,
    /// `conference`, `live` or `voice`.
    #[serde(default = "conference")]
    pub room_type: String,
    /// The host, if the room has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_id: Option<String>,
    /// `freeToTake` or `applyToTake` (rooms with seats).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub take_seat_mode: Option<String>,
    /// The room's attributes; `roomAttributesChanged` tells what changes.
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
}

fn conference() -> String {
    "conference".into()
}

/// The answer to a plain `GET /v1/rtc?token=...` (no WebSocket upgrade): the token is
/// good and the room would admit its holder now. A page shows it before joining (a
/// pre-join screen: which room, which role, whether to preview a camera); nothing is
/// joined, counted or kept. A refusal is the same error a join would get.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JoinCheck {
    pub room: RoomInfo,
    /// The participant id the holder would join as.
    pub participant_id: String,
    /// A guest's display name (invited users have none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub role: String,
    /// What the holder may do on joining (in a room with seats, before taking one).
    pub capabilities: Capabilities,
    /// How many are in the call now (announced members and the audience).
    pub participant_count: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionInfo {
    pub id: String,
    pub started_at: String,
}

/// A member who is talking: its loudest recent audio level, 0 (silence) to 1 (full
/// scale), from the RFC 6464 level its client attaches to each audio packet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActiveSpeaker {
    pub participant_id: String,
    pub level: f32,
}

/// How well a member's connection carries its call, from the loss, round trip and jitter
/// the relay measures; `lost` while its signaling connection is down. Ordered best
/// first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ConnectionQuality {
    Excellent,
    Good,
    Poor,
    Lost,
}

/// Shortest time between two `activeSpeakersChanged` messages.
pub const ACTIVE_SPEAKERS_MIN_GAP_MS: u64 = 300;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IceServer {
    pub urls: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

/// How to come back after a dropped connection: reconnect to
/// `/v1/rtc?token=<join token>&resume=<token>` within `graceSeconds`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResumeInfo {
    pub token: String,
    pub grace_seconds: u32,
}

/// Which of a member's two peer connections a media message is about: the one it
/// publishes on (the client offers) or the one it receives on (the server offers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum PcKind {
    #[default]
    Publish,
    Subscribe,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum LeaveReason {
    ClientLeft,
    Removed,
    RoomDeleted,
    RoomExpired,
    DuplicateSession,
    RoleRevoked,
    ServerShutdown,
    Timeout,
    RoomFull,
    /// Kept sending after being told `RateLimited`: disconnected.
    RateLimited,
}

/// A kind of video track: a camera or a screen share.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VideoKind {
    Video,
    Screen,
}

// Messages are built, serialized once and dropped, never stored in bulk, so the size
// of the largest variant costs nothing worth a Box.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum ServerMessage {
    #[serde(rename_all = "camelCase")]
    Joined {
        protocol_version: u32,
        #[serde(rename = "self")]
        me: Participant,
        room: RoomInfo,
        session: SessionInfo,
        /// Everyone announced, including this member when it is announced.
        participants: Vec<Participant>,
        /// Joined receive-only members not listed individually (see `listAudience`).
        audience_count: u32,
        capabilities: Capabilities,
        ice_servers: Vec<IceServer>,
        resume: ResumeInfo,
        /// True when this connection took over a member kept after a drop: others saw
        /// no leave and no join.
        resumed: bool,
        /// The seats of a `live` or `voice` room (empty in a conference).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        seats: Vec<SeatInfo>,
    },
    /// The whole seat list, after any change to it.
    SeatsChanged {
        seats: Vec<SeatInfo>,
    },
    /// The open seat applications; sent to presenters (who approve or reject) on every
    /// change, and on joining.
    SeatApplications {
        applications: Vec<SeatApplication>,
    },
    /// This member's own application ended.
    SeatApplicationEnded {
        outcome: ApplicationOutcome,
    },
    /// Room attributes that changed: a value, or `null` for a removed key.
    #[serde(rename_all = "camelCase")]
    RoomAttributesChanged {
        changed: BTreeMap<String, Option<String>>,
    },
    /// An announced member's attributes, whole.
    #[serde(rename_all = "camelCase")]
    MemberAttributesChanged {
        participant_id: String,
        attributes: BTreeMap<String, String>,
    },
    /// Deltas since the last batch (sent at most every 50 ms).
    #[serde(rename_all = "camelCase")]
    ParticipantsChanged {
        added: Vec<Participant>,
        /// Participant ids.
        removed: Vec<String>,
        updated: Vec<Participant>,
        audience_count: u32,
    },
    /// The whole list, replacing what the client had: sent to a member whose queue
    /// overflowed instead of the deltas it missed.
    #[serde(rename_all = "camelCase")]
    Snapshot {
        participants: Vec<Participant>,
        audience_count: u32,
    },
    #[serde(rename_all = "camelCase")]
    MediaChanged {
        participant_id: String,
        audio: bool,
        video: bool,
        screen: bool,
        /// Why, when not the member's own choice (`roleChanged`, `mutedBy:<id>`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// The room's window ends soon: sent `ROOM_ENDING_NOTICE_SECONDS` before
    /// `validUntil`, to members joining after that, and again whenever the end moves
    /// while a notice stands (`secondsLeft` above the notice time: the end was pushed
    /// back and the notice is lifted).
    #[serde(rename_all = "camelCase")]
    RoomEnding {
        valid_until: String,
        seconds_left: u64,
    },
    #[serde(rename_all = "camelCase")]
    CapabilitiesChanged {
        role: String,
        capabilities: Capabilities,
    },
    /// Who is talking, loudest first (empty: nobody). Sent when the list changes, at
    /// most every `ACTIVE_SPEAKERS_MIN_GAP_MS`.
    ActiveSpeakersChanged {
        speakers: Vec<ActiveSpeaker>,
    },
    /// A member's connection quality changed (see `ConnectionQuality`). Everyone hears
    /// about announced members; a member in the audience hears only about itself.
    #[serde(rename_all = "camelCase")]
    ConnectionQualityChanged {
        participant_id: String,
        quality: ConnectionQuality,
    },
    /// This member's link cannot carry even the smallest layer of a participant's video
    /// now: it is not sent (audio goes on) until the link recovers, then `trackResumed`.
    #[serde(rename_all = "camelCase")]
    TrackPaused {
        participant_id: String,
        kind: VideoKind,
    },
    #[serde(rename_all = "camelCase")]
    TrackResumed {
        participant_id: String,
        kind: VideoKind,
    },
    /// To a publisher: how large anyone shows its camera now, so it sends only the
    /// simulcast layers needed. `maxHeight`: the tallest any viewer shows it, in device
    /// pixels (0: nobody shows it; absent: as large as there is). The SDK keeps its
    /// smallest layer and those up to the smallest at least that tall, and pauses the
    /// others (`active: false` on their encodings). Sent when it changes; a publisher
    /// sends every layer until told.
    #[serde(rename_all = "camelCase")]
    CameraDemand {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_height: Option<u32>,
    },
    #[serde(rename_all = "camelCase")]
    Message {
        from: String,
        text: String,
        sent_at: String,
    },
    /// Answer to `listAudience`.
    #[serde(rename_all = "camelCase")]
    Audience {
        participants: Vec<Participant>,
        /// Pass as `after` for the next page; absent on the last.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        next: Option<String>,
    },
    Offer {
        #[serde(default)]
        pc: PcKind,
        sdp: String,
    },
    Answer {
        #[serde(default)]
        pc: PcKind,
        sdp: String,
    },
    #[serde(rename_all = "camelCase")]
    Candidate {
        #[serde(default)]
        pc: PcKind,
        candidate: String,
        #[serde(default)]
        sdp_mid: Option<String>,
        #[serde(default)]
        sdp_m_line_index: Option<u16>,
    },
    Left {
        reason: LeaveReason,
    },
    Error {
        error: ErrorBody,
    },
    Pong {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ts: Option<f64>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum ClientMessage {
    Ping {
        #[serde(default)]
        ts: Option<f64>,
    },
    /// Turns this member's own microphone, camera or screen share on or off.
    SetMedia {
        #[serde(default)]
        audio: Option<bool>,
        #[serde(default)]
        video: Option<bool>,
        #[serde(default)]
        screen: Option<bool>,
    },
    /// Moderators only: turns another member's microphone, camera or screen off.
    #[serde(rename_all = "camelCase")]
    Mute {
        participant_id: String,
        #[serde(default)]
        audio: bool,
        #[serde(default)]
        video: bool,
        #[serde(default)]
        screen: bool,
    },
    SendMessage {
        text: String,
    },
    /// Pages through the receive-only members not announced individually.
    ListAudience {
        #[serde(default)]
        after: Option<String>,
        #[serde(default)]
        limit: Option<u32>,
    },
    /// An offer for the publish connection (or a re-offer after a track change).
    #[serde(rename_all = "camelCase")]
    Offer {
        #[serde(default)]
        pc: PcKind,
        sdp: String,
        /// Ids of the offered tracks that are screen shares (browser track ids, as in
        /// the SDP's msid), so the server can tell a screen from a camera.
        #[serde(default)]
        screen_track_ids: Vec<String>,
    },
    Answer {
        #[serde(default)]
        pc: PcKind,
        sdp: String,
    },
    #[serde(rename_all = "camelCase")]
    Candidate {
        #[serde(default)]
        pc: PcKind,
        candidate: String,
        #[serde(default)]
        sdp_mid: Option<String>,
        #[serde(default)]
        sdp_m_line_index: Option<u16>,
    },
    /// Asks for the receive connection: the server then offers every track this member
    /// may receive, and offers again as tracks come and go.
    Subscribe,
    /// Whether this member shows another participant's camera and screen share now
    /// (`false`: its video element is off screen or the page is hidden): what is not
    /// shown is not sent. Left out: unchanged. Everything is shown until said otherwise.
    /// `videoHeight`: how tall the camera is shown, in device pixels; of a camera sent
    /// in simulcast, the smallest layer at least that tall is sent (until said
    /// otherwise, the largest).
    #[serde(rename_all = "camelCase")]
    SetViewing {
        participant_id: String,
        #[serde(default)]
        video: Option<bool>,
        #[serde(default)]
        screen: Option<bool>,
        #[serde(default)]
        video_height: Option<u32>,
    },
    Leave,
    /// Sits on a seat (`freeToTake` rooms): the one asked for, or the first free one.
    TakeSeat {
        #[serde(default)]
        index: Option<u32>,
    },
    /// Leaves this member's seat; its microphone and camera stop at once.
    LeaveSeat,
    /// Asks for a seat (`applyToTake` rooms).
    ApplySeat {
        #[serde(default)]
        index: Option<u32>,
    },
    CancelSeatApplication,
    /// Presenters: seat an applicant (on the seat it asked for, or any free one).
    #[serde(rename_all = "camelCase")]
    ApproveSeat {
        user_id: String,
    },
    /// Presenters: turn an application down.
    #[serde(rename_all = "camelCase")]
    RejectSeat {
        user_id: String,
    },
    /// Presenters: lock or unlock a seat.
    LockSeat {
        index: u32,
        locked: bool,
    },
    /// Presenters: move a seated member to another free seat.
    #[serde(rename_all = "camelCase")]
    MoveSeat {
        user_id: String,
        index: u32,
    },
    /// Presenters: take a member off its seat.
    #[serde(rename_all = "camelCase")]
    KickFromSeat {
        user_id: String,
    },
    /// Presenters: set (a value) or remove (`null`) room attributes; stored with the
    /// room, and everyone gets `roomAttributesChanged`.
    SetRoomAttributes {
        attributes: BTreeMap<String, Option<String>>,
    },
    /// Sets or removes this member's own attributes, or (presenters) another member's.
    #[serde(rename_all = "camelCase")]
    SetMemberAttributes {
        #[serde(default)]
        participant_id: Option<String>,
        attributes: BTreeMap<String, Option<String>>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_messages_parse_from_json() {
        let m: ClientMessage =
            serde_json::from_str(r#"{"type":"setMedia","audio":false}"#).unwrap();
        assert_eq!(
            m,
            ClientMessage::SetMedia {
                audio: Some(false),
                video: None,
                screen: None
            }
        );
        let m: ClientMessage = serde_json::from_str(r#"{"type":"leave"}"#).unwrap();
        assert_eq!(m, ClientMessage::Leave);
        let m: ClientMessage =
            serde_json::from_str(r#"{"type":"setViewing","participantId":"a","video":false}"#)
                .unwrap();
        assert_eq!(
            m,
            ClientMessage::SetViewing {
                participant_id: "a".into(),
                video: Some(false),
                screen: None,
                video_height: None,
            }
        );
        assert!(serde_json::from_str::<ClientMessage>(r#"{"type":"dance"}"#).is_err());
    }

    /// Found by the fuzzer (CI, b9fc50c): a ping whose `ts` has 200 digits decoded to a
    /// number that encoded and decoded to a different one. Every number a client sends must
    /// survive the trip unchanged.
    #[test]
    fn numbers_survive_a_round_trip() {
        let long = format!(r#"{{"type": "ping", "ts": {}1}}"#, "9".repeat(200));
        for text in [
            long.as_str(),
            r#"{"type":"ping","ts":0.1}"#,
            r#"{"type":"ping","ts":1.7976931348623157e308}"#,
            r#"{"type":"ping","ts":5e-324}"#,
            r#"{"type":"ping","ts":123456789.123456789}"#,
        ] {
            let m: ClientMessage = serde_json::from_str(text).unwrap();
            let again = serde_json::to_string(&m).unwrap();
            let back: ClientMessage = serde_json::from_str(&again).unwrap();
            assert_eq!(back, m, "{text} -> {again}");
        }
    }

    #[test]
    fn server_messages_use_camel_case_and_self() {
        let m = ServerMessage::Left {
            reason: LeaveReason::DuplicateSession,
        };
        assert_eq!(
            serde_json::to_string(&m).unwrap(),
            r#"{"type":"left","reason":"duplicateSession"}"#
        );
        let m = ServerMessage::MediaChanged {
            participant_id: "a".into(),
            audio: true,
            video: false,
            screen: false,
            reason: None,
        };
        let v = serde_json::to_value(&m).unwrap();
        assert_eq!(v["participantId"], "a");
        assert_eq!(v["type"], "mediaChanged");
    }
}
