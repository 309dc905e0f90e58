// The pre-join screen of the call page (join.html): for people who may send, the
// camera preview, microphone and camera on/off, device pickers and "Join now". The
// preview's tracks are handed to Room.join, so the devices picked here are the ones the
// call starts with. Also the device picker both screens use.

const $ = (id) => document.getElementById(id);

// A device picker: every microphone or camera the browser lists, `inUse` selected.
export async function fillPicker(select, kind, inUse) {
  const all = await navigator.mediaDevices.enumerateDevices().catch(() => []);
  const label = kind === "audio" ? "Microphone" : "Camera";
  select.replaceChildren(...all.filter((d) => d.kind === `${kind}input`).map((d, i) => {
    const o = document.createElement("option");
    o.value = d.deviceId;
    o.textContent = d.label || `${label} ${i + 1}`;
    o.selected = d.deviceId === inUse;
    return o;
  }));
  return select.options.length;
}

let preview = null; // the preview's MediaStream; its tracks go to Room.join
const wanted = { audio: true, video: true };
let allowed = { audio: false, video: false };
let joinClicked = () => {};

// Why a camera or microphone cannot be used, in words.
function deviceProblem(e) {
  switch (e && e.name) {
    case "NotAllowedError": return "permission was refused (allow it in the address bar)";
    case "NotFoundError": return "none was found";
    case "NotReadableError": return "it is in use by another application";
    default: return (e && e.message) || String(e);
  }
}

async function previewTrack(kind, deviceId) {
  const stream = await navigator.mediaDevices.getUserMedia({ [kind]: deviceId ? { deviceId: { exact: deviceId } } : true });
  return stream.getTracks()[0];
}

// Puts `track` in the preview in place of the one of its kind.
function usePreviewTrack(kind, track) {
  for (const old of preview.getTracks().filter((t) => t.kind === kind)) { old.stop(); preview.removeTrack(old); }
  if (track) preview.addTrack(track);
  if (kind === "video") { $("preview").srcObject = null; $("preview").srcObject = preview; }
  renderPrejoin();
}

function renderPrejoin() {
  const has = (kind) => preview && preview.getTracks().some((t) => t.kind === kind);
  for (const [id, kind, on, off] of [["pre-mic", "audio", "Microphone on", "Microphone off"], ["pre-cam", "video", "Camera on", "Camera off"]]) {
    $(id).hidden = !allowed[kind];
    $(id).setAttribute("aria-pressed", String(wanted[kind]));
    $(id).textContent = wanted[kind] ? on : off;
  }
  $("preview-off").hidden = has("video");
  $("preview-off").textContent = allowed.video ? "Your camera is off" : "Audio only";
  const audio = preview?.getAudioTracks()[0];
  if (audio) audio.enabled = wanted.audio;
}

async function listPreviewDevices() {
  for (const [id, kind] of [["pre-mic-device", "audio"], ["pre-cam-device", "video"]]) {
    const select = $(id);
    const track = preview?.getTracks().find((t) => t.kind === kind);
    const count = await fillPicker(select, kind, track?.getSettings().deviceId);
    select.closest("label").hidden = !allowed[kind];
    select.disabled = count < 2;
    select.onchange = async () => {
      try {
        usePreviewTrack(kind, await previewTrack(kind, select.value));
        if (kind === "video") wanted.video = true;
        renderPrejoin();
      } catch (e) {
        $("prejoin-note").textContent = `Cannot use that ${kind === "audio" ? "microphone" : "camera"}: ${deviceProblem(e)}.`;
      }
    };
  }
}

// Shows the pre-join screen for `check` (Room.check's answer); resolves when "Join now"
// is clicked, with Room.join's {tracks, audio, video}.
export async function showPrejoin(check) {
  allowed = { audio: check.capabilities.publishAudio, video: check.capabilities.publishVideo };
  const n = check.participantCount;
  const who = check.name || check.participantId;
  $("prejoin-title").textContent = `Join ${check.room.name || check.room.id}`;
  $("prejoin-who").textContent = `You will join as ${who} (${check.role}). ${n === 0 ? "Nobody is in the call yet." : n === 1 ? "1 person is in the call." : `${n} people are in the call.`}`;
  $("prejoin-note").textContent = "";
  // Enabled once the preview is set up: a click before that would have nothing to join with.
  $("join").disabled = true;
  $("prejoin").hidden = false;
  preview = new MediaStream();
  const kinds = ["audio", "video"].filter((k) => allowed[k] && wanted[k]);
  const problems = [];
  try {
    const s = await navigator.mediaDevices.getUserMedia(Object.fromEntries(kinds.map((k) => [k, true])));
    s.getTracks().forEach((t) => preview.addTrack(t));
  } catch {
    // Both at once failed: try each, to keep the one that works and say which does not.
    for (const kind of kinds) {
      try { preview.addTrack(await previewTrack(kind)); } catch (e) {
        problems.push(`${kind === "audio" ? "Microphone" : "Camera"}: ${deviceProblem(e)}.`);
      }
    }
  }
  $("prejoin-note").textContent = problems.length ? `${problems.join(" ")} You can join without it.` : "";
  $("preview").srcObject = preview;
  renderPrejoin();
  await listPreviewDevices();
  return new Promise((resolve) => {
    joinClicked = resolve;
    $("join").disabled = false;
    $("join").focus();
  });
}

$("pre-mic").onclick = () => { wanted.audio = !wanted.audio; renderPrejoin(); };
$("pre-cam").onclick = async () => {
  wanted.video = !wanted.video;
  if (!wanted.video) return usePreviewTrack("video", null);
  try { usePreviewTrack("video", await previewTrack("video", $("pre-cam-device").value || undefined)); } catch (e) {
    wanted.video = false;
    $("prejoin-note").textContent = `Camera: ${deviceProblem(e)}.`;
    renderPrejoin();
  }
};
$("join").onclick = () => {
  $("join").disabled = true;
  $("prejoin").hidden = true;
  const tracks = preview ? preview.getTracks() : [];
  preview = null; // Room.join owns them now
  joinClicked({ tracks, audio: wanted.audio, video: wanted.video });
};

