//! The TypeScript surface: precise types for options, payloads and events, written
//! once here and merged into the generated `.d.ts`. The Rust side only ever sees these
//! as opaque JS values.

use wasm_bindgen::prelude::wasm_bindgen;

#[wasm_bindgen(typescript_custom_section)]
const TS_TYPES: &'static str = r#"
/** What a role may do; the server decides and tells the SDK. */
export type Role = "presenter" | "collaborator" | "attendee" | "consumer";

export type ConnectionState = "connecting" | "connected" | "reconnecting" | "disconnected";

/** Why a member left: the server's reasons, plus `connectionLost` when reconnecting gave up. */
export type LeaveReason =
  | "clientLeft" | "removed" | "roomDeleted" | "roomExpired" | "duplicateSession"
  | "roleRevoked" | "serverShutdown" | "timeout" | "roomFull" | "rateLimited"
  | "connectionLost" | "switched";

export type TrackKind = "audio" | "video" | "screen";

export type ErrorCode =
  | "Internal" | "InvalidParameter" | "RoomAlreadyExists" | "RoomNotFound" | "NotInRoom"
  | "NotInvited" | "PermissionDenied" | "Unauthenticated" | "RoomFull" | "RoomNotOpenYet"
  | "RoomClosed" | "RoomExpired" | "RateLimited" | "PayloadTooLarge" | "NotFound"
  | "MethodNotAllowed" | "PreconditionFailed" | "TokenNotFound" | "RequestTimeout" | "WebhookNotFound"
  | "SeatUnavailable" | "SeatApplicationNotFound" | "ClusterUnavailable" | "CodecUnsupported"
  | "ConnectionFailed" | "MediaUnavailable" | "NotConnected";

/** Every rejected promise and every `error` event carries one of these. */
export interface ConveneError extends Error {
  name: "ConveneError";
  code: ErrorCode;
  number: number;
  message: string;
  /** The option or field the error is about. */
  target?: string;
  /** RFC 3339: when the room opens (`RoomNotOpenYet`) or ended (`RoomExpired`). */
  at?: string;
}

export interface JoinOptions {
  /** The Convene server, e.g. `https://calls.example.com`. Default: this page's origin. */
  url?: string;
  /** The join token from the invite link (`/join#token=...`). */
  token: string;
  /** Publish the microphone from the start (default true when the role allows it). */
  audio?: boolean;
  /** Publish the camera from the start (default true when the role allows it). */
  video?: boolean;
  /**
   * Tracks to publish instead of asking for the camera and microphone, e.g. the ones a
   * pre-join screen previewed with the devices the user picked: at most one audio and
   * one video track. Once joined the SDK owns them (it stops them on leave, and stops
   * at once those the role may not send or `audio`/`video: false` turns off).
   */
  tracks?: MediaStreamTrack[];
  /** Reconnect by itself after a dropped connection (default true). */
  reconnect?: boolean;
  /**
   * `"relay"`: send and receive media only through the TURN servers the Convene server
   * hands out (it needs `turn_secret` or a fixed TURN credential configured), e.g. to
   * keep this device's addresses from the server. Default `"all"`.
   */
  iceTransportPolicy?: "all" | "relay";
  /**
   * The codec to send camera and screen video in. Default `"vp8"`. `"h264"`
   * (constrained baseline) lets devices encode in hardware; the server forwards it as
   * it is, so a viewer whose browser cannot play H.264 gets a `CodecUnsupported`
   * error event and a blank tile for it. Ignored, with a console warning, by a browser
   * that cannot send it.
   */
  videoCodec?: "vp8" | "h264";
  /**
   * Send the camera as three VP8 layers (a quarter, half and full size) so each viewer
   * gets the one that fits how large it shows it (`setViewing`'s `videoHeight`).
   * Default true; ignored for H.264. Screen share is always one layer, tuned for detail.
   */
  simulcast?: boolean;
  /**
   * Listeners added before connecting, so `stateChanged` also shows `connecting`
   * (e.g. for `switchTo`).
   */
  on?: { [K in RoomEventName]?: RoomListener<K> };
}

/** `Room.check`'s answer: what joining with the token would give, nothing joined yet. */
export interface JoinCheck {
  room: RoomInfo;
  /** The participant id you would join as. */
  participantId: string;
  /** A guest's display name. */
  name?: string;
  role: Role;
  /** What you may do on joining (in a room with seats, before taking one). */
  capabilities: Capabilities;
  /** How many are in the call now. */
  participantCount: number;
}

export interface Participant {
  id: string;
  role: Role;
  audio: boolean;
  video: boolean;
  screen: boolean;
  /** RFC 3339. */
  joinedAt: string;
  /** A guest's display name (invited users have none). */
  name?: string;
  /** The participant's own attributes (e.g. a raised hand); absent when none. */
  attributes?: Record<string, string>;
  /** True for you. */
  isLocal: boolean;
}

/** One seat of a live or voice room. */
export interface SeatInfo {
  index: number;
  /** Who sits there, if anyone. */
  userId?: string;
  /** A locked seat cannot be taken. */
  locked: boolean;
  audio: boolean;
  video: boolean;
}

/** A member waiting for a seat (`applyToTake` rooms). */
export interface SeatApplication {
  userId: string;
  /** The seat asked for; absent: the first free one. */
  index?: number;
  /** RFC 3339: unanswered by then, it lapses. */
  expiresAt: string;
}

export interface AudiencePage {
  participants: Participant[];
  /** Pass as `skipToken` for the next page; absent on the last. */
  skipToken?: string;
}

export interface Capabilities {
  publishAudio: boolean;
  publishVideo: boolean;
  publishScreen: boolean;
  /** May mute or remove others. */
  moderate: boolean;
}

export interface RoomInfo {
  id: string;
  name: string;
  validFrom: string;
  validUntil: string;
  isMessageDisabled: boolean;
  roomType: "conference" | "live" | "voice";
  /** The host, if the room has one. */
  ownerId?: string;
  /** Rooms with seats. */
  takeSeatMode?: "freeToTake" | "applyToTake";
  attributes: Record<string, string>;
}

export interface MediaChangedEvent {
  participant: Participant;
  participantId: string;
  audio: boolean;
  video: boolean;
  screen: boolean;
  /** Set when it was not the participant's own choice: `roleChanged` or `mutedBy:<id>`. */
  reason?: string;
}

export interface TrackEvent {
  participantId: string;
  kind: TrackKind;
  track: MediaStreamTrack;
  /** Holds this one track; attach it to a `<video>` or `<audio>` element. */
  stream: MediaStream;
}

export interface StateChangedEvent {
  state: ConnectionState;
  /** Why, for `reconnecting` and `disconnected`: a leave reason or an error code. */
  reason?: LeaveReason | ErrorCode;
}

export interface CapabilitiesChangedEvent {
  role: Role;
  capabilities: Capabilities;
}

export interface ChatMessage {
  from: string;
  text: string;
  /** RFC 3339. */
  sentAt: string;
}

export interface LeftEvent {
  reason: LeaveReason;
  /** Set when a reconnect was refused, e.g. `NotInvited` after a removal. */
  error?: ConveneError;
}

export interface SeatsChangedEvent {
  seats: SeatInfo[];
}

export interface SeatApplicationsChangedEvent {
  applications: SeatApplication[];
}

export interface SeatApplicationEndedEvent {
  outcome: "approved" | "rejected" | "expired" | "cancelled";
}

/** A member who is talking. */
export interface ActiveSpeaker {
  participantId: string;
  /** Its loudest recent audio level, 0 (silence) to 1 (full scale). */
  level: number;
}

export interface ActiveSpeakersChangedEvent {
  /** Who is talking now, loudest first; empty when nobody is. */
  speakers: ActiveSpeaker[];
}

/**
 * How well a member's connection carries the call, from the loss, round trip and jitter
 * the server measures; `lost` while its connection to the server is down.
 */
export type ConnectionQuality = "excellent" | "good" | "poor" | "lost";

export interface ConnectionQualityChangedEvent {
  participantId: string;
  quality: ConnectionQuality;
}

/**
 * This page's link cannot carry even the smallest layer of a participant's video now
 * (`trackPaused`): the server stops sending it, and its audio goes on; `trackResumed`
 * when the link recovers and the video comes back by itself.
 */
export interface TrackPausedEvent {
  participantId: string;
  kind: "video" | "screen";
}

/**
 * The room's window ends soon: sent 5 minutes before `validUntil`, on joining after
 * that, and again when an admin moves the end while a notice stands (a `secondsLeft`
 * above 300 means the end was pushed back: the notice is lifted). `room.info.validUntil`
 * follows it.
 */
export interface RoomEndingEvent {
  validUntil: string;
  secondsLeft: number;
}

export interface RoomAttributesChangedEvent {
  /** What changed: a value, or `null` for a removed key. */
  changed: Record<string, string | null>;
  /** All of them now. */
  attributes: Record<string, string>;
}

export interface MemberAttributesChangedEvent {
  participantId: string;
  attributes: Record<string, string>;
  /** The participant, when it is listed. */
  participant?: Participant;
}

/** Every event `Room.on` accepts, with the payload its listener receives. */
export interface RoomEvents {
  participantJoined: Participant;
  participantLeft: Participant;
  mediaChanged: MediaChangedEvent;
  trackAdded: TrackEvent;
  trackRemoved: TrackEvent;
  stateChanged: StateChangedEvent;
  capabilitiesChanged: CapabilitiesChangedEvent;
  message: ChatMessage;
  /** Something the server refused after joining, e.g. a chat message over the rate limit. */
  error: ConveneError;
  left: LeftEvent;
  /** A live or voice room's seats changed (taken, left, locked, media). */
  seatsChanged: SeatsChangedEvent;
  /** Presenters: the open seat applications changed. */
  seatApplicationsChanged: SeatApplicationsChangedEvent;
  /** Your own seat application ended. */
  seatApplicationEnded: SeatApplicationEndedEvent;
  roomAttributesChanged: RoomAttributesChangedEvent;
  memberAttributesChanged: MemberAttributesChangedEvent;
  roomEnding: RoomEndingEvent;
  /** Who is talking changed (at most every 300 ms); also `room.activeSpeakers`. */
  activeSpeakersChanged: ActiveSpeakersChangedEvent;
  /**
   * A member's connection quality changed (your own included); also
   * `room.connectionQuality(participantId)`. In a large room you hear about the listed
   * participants and yourself.
   */
  connectionQualityChanged: ConnectionQualityChangedEvent;
  /** This page's link cannot carry that participant's video now: it is paused. */
  trackPaused: TrackPausedEvent;
  /** Its video comes again (after `trackPaused`). */
  trackResumed: TrackPausedEvent;
}

export type RoomEventName = keyof RoomEvents;
export type RoomListener<K extends RoomEventName> = (event: RoomEvents[K]) => void;

export interface Room {
  /**
   * Calls `listener` for every `event` until `off` or the room is left. A `trackAdded`
   * listener is also called, just after `on` returns, for each track already received.
   */
  on<K extends RoomEventName>(event: K, listener: RoomListener<K>): void;
  /** Removes a listener added with `on`. */
  off<K extends RoomEventName>(event: K, listener: RoomListener<K>): void;
  /**
   * Presenters: turns another participant's microphone, camera or screen off
   * (all three when `kinds` is left out).
   */
  muteParticipant(id: string, kinds?: { audio?: boolean; video?: boolean; screen?: boolean }): Promise<void>;
  /**
   * Whether this page shows participant `id`'s camera (`video`) and screen share
   * (`screen`) now; a kind left out is unchanged. Call it when a video element scrolls
   * out of view (an `IntersectionObserver`) or the page is hidden: what is not shown is
   * not sent, and it resumes from a fresh keyframe when shown again. Everything is
   * shown until said otherwise, and again after a reconnect: say what is hidden
   * again on `stateChanged` to `connected`. `videoHeight`: how tall the camera's video
   * element is, in device pixels (CSS height times `devicePixelRatio`, e.g. from a
   * `ResizeObserver`): of a camera sent in simulcast, the smallest layer at least that
   * tall is sent (until said, the largest).
   */
  setViewing(id: string, shown: { video?: boolean; screen?: boolean; videoHeight?: number }): Promise<void>;
}
"#;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(typescript_type = "JoinOptions")]
    pub type JoinOptionsJs;
}
