// The call page: /join#token=... first shows a pre-join screen (camera preview,
// microphone and camera choice; skipped for receive-only roles), then joins the room the
// invite is for and shows everyone's video, the people list, chat and, behind
// "Details", an event log.
import init, { Room } from "/sdk/convene_sdk.js";
import { initLive } from "/seats.js";
import { fillPicker, showPrejoin } from "/prejoin.js";

const $ = (id) => document.getElementById(id);
const token = new URLSearchParams(location.hash.slice(1)).get("token");
let room = null;

function when(iso) {
  const d = new Date(iso);
  const day = d.toLocaleDateString(undefined, { day: "numeric", month: "long", year: d.getFullYear() === new Date().getFullYear() ? undefined : "numeric" });
  const time = d.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" });
  return `${day} at ${time}`;
}

// Errors and leave reasons, said the way people understand them.
function explainError(e) {
  switch (e.code) {
    case "RoomNotOpenYet": return ["This room is not open yet", `This room opens on ${when(e.at)}. Come back then with the same link.`];
    case "RoomExpired": return ["This room has ended", e.at ? `This room closed on ${when(e.at)}.` : "The room's time is over."];
    case "NotInvited": return ["You are not invited to this room", "Ask the organizer to invite you and send you a new link."];
    case "Unauthenticated": return ["This link does not work", `${capitalize(e.message)}. Ask the organizer for a new link.`];
    case "RoomClosed": return ["This room is closed", "The organizer has closed this room to joining."];
    case "RoomFull": return ["This room is full", "Everyone it has room for is already in. Try again later."];
    case "RoomNotFound": return ["This room does not exist", "It may have been deleted. Ask the organizer for a new link."];
    case "ConnectionFailed": return ["Cannot connect", "The call server cannot be reached. Check your connection and try again."];
    default: return ["Something went wrong", capitalize(e.message || String(e))];
  }
}

const LEFT = {
  clientLeft: ["You left the call", "You can join again with the same link."],
  removed: ["You were removed from this room", "An organizer removed you from the call."],
  roleRevoked: ["You were removed from this room", "Your invitation was changed."],
  roomDeleted: ["This room was deleted", "The call has ended."],
  roomExpired: ["This room has ended", "The room's time is over."],
  duplicateSession: ["You joined from somewhere else", "This call continues in your other tab or device."],
  serverShutdown: ["The call server is restarting", "Join again in a moment."],
  timeout: ["Connection lost", "Your connection dropped for too long."],
  connectionLost: ["Connection lost", "The call server cannot be reached."],
  roomFull: ["This room is full", "Try again later."],
  rateLimited: ["Disconnected for sending too much", "Your browser sent far more than a call needs. Join again to continue."],
};

function capitalize(s) { return s ? s[0].toUpperCase() + s.slice(1) : s; }

function notice(title, text, { error = true, rejoin = false } = {}) {
  $("notice-title").textContent = title;
  $("notice-text").textContent = text;
  $("notice").classList.toggle("error", error);
  $("notice").hidden = false;
  $("rejoin").hidden = !rejoin;
  // Keyboard users land on what they can do next.
  (rejoin ? $("rejoin") : $("notice")).focus();
}

function log(text) {
  const li = document.createElement("li");
  li.textContent = `${new Date().toLocaleTimeString()} ${text}`;
  $("log").prepend(li);
}

const nameOf = (id) => (room && room.localParticipant && id === room.localParticipant.id ? `${id} (you)` : id);

// --- tiles: one per participant camera (and one per screen share) ---
function tile(id, kind) {
  const key = `${id}:${kind === "screen" ? "screen" : "camera"}`;
  let t = document.querySelector(`[data-tile="${CSS.escape(key)}"]`);
  if (!t) {
    t = document.createElement("div");
    t.className = `tile ${kind === "screen" ? "screen" : ""}`;
    t.dataset.tile = key;
    t.setAttribute("role", "group");
    t.setAttribute("aria-label", kind === "screen" ? `${nameOf(id)}'s screen` : `${nameOf(id)}'s camera`);
    t.dataset.participant = id;
    t.innerHTML = `<video autoplay playsinline muted></video><div class="off" aria-hidden="true">●</div><span class="name"></span>`;
    // A shared screen has no "camera off" state to show.
    t.querySelector(".off").hidden = kind === "screen";
    t.querySelector(".name").textContent = kind === "screen" ? `${nameOf(id)} — screen` : nameOf(id);
    $("tiles").append(t);
  }
  return t;
}

// Only video on screen is sent: a remote tile scrolled out of view, or the whole page
// hidden, is told to the server (room.setViewing), which stops that video until it
// shows again (from a fresh keyframe).
const inView = new Map(); // tile key -> on screen
const toldShown = new Map(); // tile key -> shown, as last told
function tellViewing(t) {
  const key = t.dataset.tile;
  const shown = (inView.get(key) ?? true) && document.visibilityState === "visible";
  if (!room || toldShown.get(key) === shown) return;
  toldShown.set(key, shown);
  const kind = key.endsWith(":screen") ? "screen" : "video";
  room.setViewing(t.dataset.participant, { [kind]: shown }).catch(() => {});
}
const viewing = new IntersectionObserver((entries) => {
  for (const e of entries) {
    const key = e.target.dataset.tile;
    // A tile taken away: forget it (a new tile for the same person starts afresh).
    if (!e.target.isConnected) {
      viewing.unobserve(e.target);
      sizes.unobserve(e.target);
      inView.delete(key);
      toldShown.delete(key);
      continue;
    }
    inView.set(key, e.isIntersecting);
    tellViewing(e.target);
  }
});
document.addEventListener("visibilitychange", () => {
  document.querySelectorAll("#tiles .tile[data-watched]").forEach(tellViewing);
});

// How tall each camera tile is shown (device pixels) is told too: a camera sent in
// simulcast then reaches this page in the layer that fits, not larger.
const toldHeight = new Map(); // participant -> height, as last told
function tellHeight(t) {
  if (!room || t.classList.contains("screen")) return;
  const h = Math.round(t.getBoundingClientRect().height * (window.devicePixelRatio || 1));
  const id = t.dataset.participant;
  const last = toldHeight.get(id);
  // Small changes (a scrollbar, a rounding) are not worth a message.
  if (h === 0 || (last && Math.abs(h - last) < last * 0.1)) return;
  toldHeight.set(id, h);
  room.setViewing(id, { videoHeight: h }).catch(() => {});
}
const sizes = new ResizeObserver((entries) => entries.forEach((e) => tellHeight(e.target)));

// Columns for the camera count (a shared screen takes a row of its own).
const tilesEl = document.getElementById("tiles");
new MutationObserver(() => {
  const n = tilesEl.querySelectorAll(".tile:not(.screen)").length;
  tilesEl.dataset.cols = String(n <= 1 ? 1 : n <= 4 ? 2 : n <= 9 ? 3 : 4);
}).observe(tilesEl, { childList: true });

// Who is talking: their camera tile gets a ring and their name in the list a mark.
function showSpeakers() {
  const talking = new Set((room?.activeSpeakers || []).map((s) => s.participantId));
  document.querySelectorAll(".tile[data-participant]:not(.screen)").forEach((t) => {
    t.classList.toggle("speaking", talking.has(t.dataset.participant));
  });
  document.querySelectorAll("#people li").forEach((li) => {
    const on = talking.has(li.dataset.id);
    li.classList.toggle("speaking", on);
    // Seen as the bar beside the name; said by screen readers from a hidden word on the
    // name (not on the state beside it, which never wraps and would widen the sidebar).
    const name = li.firstElementChild;
    const said = name?.querySelector(".speaking-word");
    if (name && on && !said) {
      const word = document.createElement("span");
      word.className = "speaking-word";
      word.textContent = " · speaking";
      name.append(word);
    } else if (!on && said) {
      said.remove();
    }
  });
}

// Connection quality: a weak or lost connection shows as a badge on the person's camera
// tile and a dot beside their name (said by screen readers from a hidden word, as above).
const QUALITY_TEXT = { poor: "Weak connection", lost: "Connection lost" };
function showQuality() {
  if (!room) return;
  document.querySelectorAll(".tile[data-participant]:not(.screen)").forEach((t) => {
    const q = room.connectionQuality(t.dataset.participant) || "";
    t.dataset.quality = q;
    let badge = t.querySelector(".quality");
    if (!badge) {
      badge = document.createElement("span");
      badge.className = "quality";
      t.append(badge);
    }
    badge.textContent = QUALITY_TEXT[q] || "";
    badge.hidden = !QUALITY_TEXT[q];
  });
  document.querySelectorAll("#people li").forEach((li) => {
    const q = room.connectionQuality(li.dataset.id) || "";
    li.dataset.quality = q;
    const name = li.firstElementChild;
    let said = name?.querySelector(".quality-word");
    if (name && QUALITY_TEXT[q]) {
      if (!said) {
        said = document.createElement("span");
        said.className = "quality-word";
        name.append(said);
      }
      said.textContent = ` · ${QUALITY_TEXT[q].toLowerCase()}`;
    } else {
      said?.remove();
    }
  });
}

function refreshTile(id) {
  const p = room.participants().find((x) => x.id === id);
  const t = document.querySelector(`[data-tile="${CSS.escape(`${id}:camera`)}"]`);
  if (t) t.querySelector(".off").hidden = Boolean(p && p.video && t.querySelector("video").srcObject);
}

function removeTiles(id) {
  document.querySelectorAll(`[data-participant="${CSS.escape(id)}"]`).forEach((el) => el.remove());
}

// --- the people list ---
function renderPeople() {
  const people = room.participants();
  $("people").replaceChildren(...people.map((p) => {
    const li = document.createElement("li");
    li.dataset.id = p.id;
    li.dataset.audio = p.audio;
    li.dataset.video = p.video;
    const name = document.createElement("span");
    name.textContent = `${nameOf(p.id)} · ${p.role}`;
    const state = document.createElement("span");
    state.className = "state small";
    state.textContent = `${p.audio ? "mic on" : "mic off"} · ${p.video ? "camera on" : "camera off"}${p.screen ? " · sharing" : ""}`;
    li.append(name, state);
    if (room.capabilities.moderate && !p.isLocal && (p.audio || p.video || p.screen)) {
      const mute = document.createElement("button");
      mute.className = "small";
      mute.textContent = "Mute";
      mute.setAttribute("aria-label", `Mute ${p.id}`);
      mute.onclick = () => room.muteParticipant(p.id).catch(showError);
      li.append(mute);
    }
    return li;
  }));
  const extra = room.audienceCount ? ` + ${room.audienceCount} watching` : "";
  $("count").textContent = `(${people.length}${extra})`;
  showSpeakers();
  showQuality();
}

// The microphone and camera as this page set them. The server's view (`me.audio`,
// `me.video`) follows a moment later, and right after joining it still says off: a
// button read from it would turn on what is already on.
const micOn = () => room.localStream.getAudioTracks().some((t) => t.enabled && t.readyState === "live");
const camOn = () => room.localStream.getVideoTracks().some((t) => t.enabled && t.readyState === "live");

function renderControls() {
  const caps = room.capabilities;
  const me = room.localParticipant;
  // A watcher who can never send sees a watcher's bar, not disabled buttons; in a live
  // or voice room the buttons stay (disabled) since a seat would enable them.
  const seated = Boolean(room.info.roomType && room.info.roomType !== "conference");
  const sends = caps.publishAudio || caps.publishVideo;
  $("mic").hidden = !sends && !seated;
  $("cam").hidden = !sends && !seated;
  $("watching").hidden = sends || seated;
  $("mic").disabled = !caps.publishAudio;
  $("cam").disabled = !caps.publishVideo;
  for (const [id, allowed] of [["mic", caps.publishAudio], ["cam", caps.publishVideo]]) {
    $(id).title = allowed ? "" : "Take a seat to use it";
  }
  showSelf(me, sends);
  $("devices-card").hidden = !sends;
  $("screen").hidden = !caps.publishScreen;
  const mic = caps.publishAudio && micOn();
  const cam = caps.publishVideo && camOn();
  $("mic").setAttribute("aria-pressed", String(mic));
  $("mic").textContent = mic ? "Mute" : "Unmute";
  $("cam").setAttribute("aria-pressed", String(cam));
  $("cam").textContent = cam ? "Stop camera" : "Start camera";
  $("screen").textContent = me.screen ? "Stop sharing" : "Share screen";
  showOwnScreen(me);
}

// A countdown once the server says the room's window ends soon (5 minutes ahead).
let endingTimer;
function showEnding({ validUntil, secondsLeft }) {
  clearInterval(endingTimer);
  const el = $("ending");
  if (secondsLeft > 300) { el.hidden = true; return; }
  const end = Date.now() + secondsLeft * 1000;
  const at = new Date(validUntil).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  const tick = () => {
    const left = Math.max(0, Math.round((end - Date.now()) / 1000));
    el.textContent = `This room ends at ${at}: ${Math.floor(left / 60)}:${String(left % 60).padStart(2, "0")} left`;
    if (left === 0) clearInterval(endingTimer);
  };
  tick();
  el.hidden = false;
  endingTimer = setInterval(tick, 1000);
}

// The in-call pickers: picking one switches to it at once (room.switchDevice).
async function listDevices() {
  const inUse = Object.fromEntries(room.localStream.getTracks().map((t) => [t.kind, t.getSettings().deviceId]));
  for (const [id, kind] of [["mic-device", "audio"], ["cam-device", "video"]]) {
    const select = $(id);
    const count = await fillPicker(select, kind, inUse[kind]);
    select.disabled = count < 2 || (kind === "audio" ? !room.capabilities.publishAudio : !room.capabilities.publishVideo);
    select.onchange = () => room.switchDevice(kind, select.value).then(() => {
      const self = document.querySelector(`[data-tile="${CSS.escape(`${room.localParticipant.id}:camera`)}"] video`);
      if (self && kind === "video") { self.srcObject = null; self.srcObject = room.localStream; }
      renderControls();
      listDevices();
    }, showError);
  }
}
navigator.mediaDevices?.addEventListener?.("devicechange", () => room && room.state === "connected" && listDevices());

// Your own camera tile, only when you may send (a watcher has no black self tile).
function showSelf(me, sends) {
  const shown = document.querySelector(`[data-tile="${CSS.escape(`${me.id}:camera`)}"]`);
  if (sends && !shown) {
    tile(me.id, "video").querySelector("video").srcObject = room.localStream;
    refreshTile(me.id);
  } else if (!sends && shown) {
    shown.remove();
  }
}

// The sharer sees what it shares, in the same large tile the others see.
function showOwnScreen(me) {
  const key = `${me.id}:screen`;
  const shown = document.querySelector(`[data-tile="${CSS.escape(key)}"]`);
  if (me.screen && !shown) {
    tile(me.id, "screen").querySelector("video").srcObject = room.localScreenStream;
  } else if (!me.screen && shown) {
    shown.remove();
  }
}

function showError(e) {
  const [title, text] = explainError(e);
  log(`${title}: ${text}`);
}

function chatLine(from, text) {
  const li = document.createElement("li");
  const b = document.createElement("b");
  b.textContent = `${nameOf(from)}: `;
  li.append(b, document.createTextNode(text));
  $("chat-log").append(li);
  li.scrollIntoView({ block: "nearest" });
}

function wire() {
  room.on("activeSpeakersChanged", showSpeakers);
  // Shown on the tile and in the list, not logged: a reload would read as an event.
  room.on("connectionQualityChanged", showQuality);
  // This page's link cannot carry someone's video now: the tile says so until it is back.
  const pausedTile = (on) => ({ participantId, kind }) => {
    const t = document.querySelector(`[data-tile="${CSS.escape(`${participantId}:${kind === "screen" ? "screen" : "camera"}`)}"]`);
    if (!t) return;
    let note = t.querySelector(".paused");
    if (!note) {
      note = document.createElement("span");
      note.className = "paused";
      note.setAttribute("role", "status");
      note.textContent = "Video paused: your connection is too slow";
      t.append(note);
    }
    note.hidden = !on;
    if (on) log(`${nameOf(participantId)}'s video paused: your connection cannot carry it`);
  };
  room.on("trackPaused", pausedTile(true));
  room.on("trackResumed", pausedTile(false));
  room.on("participantJoined", (p) => { log(`${p.id} joined`); renderPeople(); });
  room.on("participantLeft", (p) => { log(`${p.id} left`); removeTiles(p.id); renderPeople(); });
  room.on("mediaChanged", (e) => {
    const by = e.reason && e.reason.startsWith("mutedBy:") ? ` (by ${e.reason.slice(8)})` : e.reason ? ` (${e.reason})` : "";
    log(`${nameOf(e.participantId)}: mic ${e.audio ? "on" : "off"}, camera ${e.video ? "on" : "off"}${e.screen ? ", sharing screen" : ""}${by}`);
    renderPeople();
    renderControls();
    refreshTile(e.participantId);
  });
  room.on("trackAdded", ({ participantId, kind, stream }) => {
    if (kind === "audio") {
      const a = document.createElement("audio");
      a.autoplay = true;
      a.dataset.participant = participantId;
      a.dataset.audio = participantId;
      a.srcObject = stream;
      document.body.append(a);
    } else {
      const t = tile(participantId, kind);
      t.querySelector("video").srcObject = stream;
      if (!t.dataset.watched) {
        t.dataset.watched = "1";
        viewing.observe(t);
        sizes.observe(t);
        // At once: a hidden page runs no observer callbacks.
        tellViewing(t);
        tellHeight(t);
      }
      refreshTile(participantId);
      showSpeakers();
      showQuality();
    }
  });
  room.on("trackRemoved", ({ participantId, kind }) => {
    if (kind === "audio") {
      document.querySelectorAll(`audio[data-audio="${CSS.escape(participantId)}"]`).forEach((a) => a.remove());
    } else if (kind === "screen") {
      document.querySelector(`[data-tile="${CSS.escape(`${participantId}:screen`)}"]`)?.remove();
    } else {
      const t = document.querySelector(`[data-tile="${CSS.escape(`${participantId}:camera`)}"]`);
      if (t) { t.querySelector("video").srcObject = null; refreshTile(participantId); }
    }
  });
  room.on("stateChanged", ({ state, reason }) => {
    $("state").textContent = state;
    $("state").dataset.state = state;
    // A reconnect may have started the call's media afresh: say again what is hidden.
    if (state === "connected") {
      toldShown.clear();
      toldHeight.clear();
      document.querySelectorAll("#tiles .tile[data-watched]").forEach((t) => { tellViewing(t); tellHeight(t); });
    }
    log(`connection ${state}${reason ? ` (${reason})` : ""}`);
  });
  room.on("capabilitiesChanged", ({ role }) => { log(`your role is now ${role}`); renderControls(); renderPeople(); listDevices(); });
  room.on("message", ({ from, text }) => chatLine(from, text));
  room.on("error", showError);
  room.on("left", ({ reason, error }) => {
    const [title, text] = error ? explainError(error) : LEFT[reason] || ["The call ended", reason];
    log(`left: ${reason}`);
    clearInterval(endingTimer);
    $("ending").hidden = true;
    $("state").textContent = "disconnected";
    $("state").dataset.state = "disconnected";
    $("controls").hidden = true;
    document.querySelectorAll("audio[data-audio]").forEach((a) => a.remove());
    $("tiles").replaceChildren();
    inView.clear();
    toldShown.clear();
    $("call").hidden = true;
    notice(title, text, { error: reason !== "clientLeft", rejoin: !["removed", "roleRevoked", "roomDeleted", "roomExpired"].includes(reason) });
  });
}

// A join refused (before or at joining): the reason, said plainly.
function refused(e) {
  const [title, text] = explainError(e);
  $("title").textContent = "Convene";
  $("state").textContent = "not joined";
  $("state").dataset.state = "disconnected";
  notice(title, text, { rejoin: e.code === "ConnectionFailed" || e.code === "RoomFull" });
}

// Asks what joining would give, then shows the pre-join screen or joins at once.
async function start() {
  $("notice").hidden = true;
  $("title").textContent = "Joining…";
  let check;
  try {
    check = await Room.check({ token });
  } catch (e) {
    return refused(e);
  }
  $("title").textContent = check.room.name || check.room.id;
  if (!check.capabilities.publishAudio && !check.capabilities.publishVideo) return join({ tracks: [] });
  $("state").textContent = "not joined yet";
  $("state").dataset.state = "preview";
  return join(await showPrejoin(check));
}

// Joins with what the pre-join screen chose: {tracks, audio?, video?}.
async function join({ tracks, audio, video }) {
  $("state").textContent = "connecting";
  $("state").dataset.state = "connecting";
  try {
    // roomEnding can come right after joining, before `join` resolves: listen early.
    room = await Room.join({ token, tracks, audio, video, on: { roomEnding: showEnding } });
  } catch (e) {
    tracks.forEach((t) => t.stop());
    return refused(e);
  }
  window.conveneRoom = room; // for the browser console
  $("title").textContent = room.info.name || room.info.id;
  $("who").textContent = `as ${room.localParticipant.id} (${room.role})`;
  $("state").textContent = room.state;
  $("state").dataset.state = room.state;
  $("tiles").replaceChildren();
  $("chat-log").replaceChildren();
  $("controls").hidden = false;
  $("call").hidden = false;
  wire();
  renderPeople();
  renderControls();
  listDevices();
  initLive(room, { showError, nameOf });
  log(`joined ${room.info.id} as ${room.localParticipant.id}`);
  if (room.mediaError) log(`${room.mediaError.message}; you are in the call without it`);
}

$("mic").onclick = () => room.setMicrophoneEnabled(!micOn()).then(renderControls, showError);
$("cam").onclick = async () => {
  try {
    await room.setCameraEnabled(!camOn());
    renderControls();
    // The preview shows the new camera track when it is turned back on.
    const self = document.querySelector(`[data-tile="${CSS.escape(`${room.localParticipant.id}:camera`)}"] video`);
    if (self) { self.srcObject = null; self.srcObject = room.localStream; }
  } catch (e) { showError(e); }
};
$("screen").onclick = () => (room.localParticipant.screen ? room.stopScreenShare() : room.startScreenShare()).then(renderControls, showError);
$("leave").onclick = () => room.leave();
$("rejoin").onclick = start;
$("chat-form").onsubmit = (ev) => {
  ev.preventDefault();
  const text = $("chat-text").value;
  if (!text.trim()) return;
  room.sendMessage(text).then(() => { $("chat-text").value = ""; }, showError);
};

await init();
if (!token) {
  $("title").textContent = "Convene";
  notice("No invite in this link", "Open the whole invite link you were sent: it ends with #token=…");
} else {
  await start();
}
