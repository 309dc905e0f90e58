// Compiled (not run) by types.test.mjs with `tsc --strict`: what a web developer writes
// against the published typings must type-check, and mistakes must not.
import init, { Room, version } from "convene-sdk";
import type { AudiencePage, ConnectionQuality, ConveneError, Participant, RoomEvents, SeatInfo, TrackEvent, StateChangedEvent } from "convene-sdk";

export async function example(token: string): Promise<void> {
  await init();
  const room: Room = await Room.join({ url: "https://calls.example.com", token, audio: true, video: false });
  const people: Participant[] = room.participants();
  const me: Participant = room.localParticipant;
  const roles: string[] = people.map((p) => `${p.id}:${p.role}:${p.audio}:${p.isLocal}`);
  room.on("trackAdded", (e: TrackEvent) => {
    const stream: MediaStream = e.stream;
    const kind: "audio" | "video" | "screen" = e.kind;
    void stream, kind;
  });
  room.on("stateChanged", ({ state, reason }: StateChangedEvent) => {
    if (state === "reconnecting") console.log(reason);
  });
  room.on("mediaChanged", (e) => console.log(e.participantId, e.audio, e.reason));
  room.on("left", (e) => console.log(e.reason, e.error?.code));
  room.on("message", (m) => console.log(m.from, m.text, m.sentAt));
  room.on("capabilitiesChanged", (c) => console.log(c.role, c.capabilities.publishScreen));
  const onError = (e: RoomEvents["error"]) => console.log(e.code, e.number);
  room.on("error", onError);
  room.off("error", onError);
  await room.setMicrophoneEnabled(false);
  await room.setCameraEnabled(true);
  await room.switchDevice("audio", "some-device-id");
  await room.sendMessage("hi");
  await room.muteParticipant("bob");
  await room.muteParticipant("bob", { audio: true });
  const preview: MediaStream = room.localStream;
  const mediaError: ConveneError | null = room.mediaError;
  const state: "connecting" | "connected" | "reconnecting" | "disconnected" = room.state;
  await room.leave();
  void me, roles, preview, mediaError, state, version();

  try {
    await Room.join({ token });
  } catch (err) {
    const e = err as ConveneError;
    if (e.code === "RoomNotOpenYet") console.log(e.at);
  }

  // @ts-expect-error: not an event
  room.on("trackadded", () => {});
  // @ts-expect-error: the payload of participantJoined is a Participant, not a TrackEvent
  room.on("participantJoined", (e: TrackEvent) => void e);
  // @ts-expect-error: token is required
  await Room.join({ url: "https://calls.example.com" });
  // @ts-expect-error: a screen is picked by the browser, not switched by id
  await room.switchDevice("screen", "x");
  // @ts-expect-error: not an error code
  const bad: ConveneError["code"] = "Oops";
  void bad;
}

// Live rooms: seats, attributes, the audience, several rooms.
export async function live(token: string, other: string): Promise<void> {
  const states: string[] = [];
  const room = await Room.join({ token, on: { stateChanged: ({ state }) => states.push(state) } });
  const seats: SeatInfo[] = room.seats;
  const free: number | undefined = seats.find((s) => !s.userId && !s.locked)?.index;
  await room.takeSeat(free);
  await room.applySeat();
  await room.cancelSeatApplication();
  await room.approveSeat("bob");
  await room.lockSeat(0, true);
  await room.moveSeat("bob", 1);
  await room.kickFromSeat("bob");
  await room.leaveSeat();
  room.on("seatsChanged", ({ seats }) => console.log(seats.map((s) => s.userId)));
  room.on("seatApplicationsChanged", ({ applications }) => console.log(applications[0]?.expiresAt));
  room.on("seatApplicationEnded", ({ outcome }) => console.log(outcome === "approved"));
  room.on("roomAttributesChanged", ({ changed, attributes }) => console.log(changed.topic, attributes));
  room.on("roomEnding", ({ validUntil, secondsLeft }) => console.log(new Date(validUntil), secondsLeft.toFixed(0)));
  room.on("memberAttributesChanged", (e) => console.log(e.participantId, e.attributes.hand));
  room.on("connectionQualityChanged", ({ participantId, quality }) => console.log(participantId, quality === "poor"));
  const quality: ConnectionQuality | undefined = room.connectionQuality("bob");
  void quality;
  // @ts-expect-error: not a grade
  room.on("connectionQualityChanged", ({ quality }) => quality === "bad");
  await room.setRoomAttributes({ topic: "Q&A", old: null });
  await room.setMemberAttributes({ hand: "up" });
  await room.setMemberAttributes({ hand: null }, "bob");
  const page: AudiencePage = await room.listAudience({ pageSize: 50 });
  const more = page.skipToken ? await room.listAudience({ skipToken: page.skipToken }) : page;
  const kind: "conference" | "live" | "voice" = room.info.roomType;
  const next: Room = await room.switchTo({ token: other });
  const left: string[] = await Room.leaveAll();
  void more, kind, next, left, states;
  // @ts-expect-error: attribute values are strings or null
  await room.setRoomAttributes({ topic: 3 });
}
