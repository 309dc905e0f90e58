// The admin page: rooms, invitations and roles, join links, live members. It calls the
// admin REST API through convene-admin, the typed client (built into /admin-client.js),
// with the key the admin enters (kept for this tab only).
import init, { version } from "/sdk/convene_sdk.js";
import { createAdminClient } from "/admin-client.js";

const $ = (id) => document.getElementById(id);
let key = sessionStorage.getItem("convene-admin-key") || "";
let admin = createAdminClient({ url: location.origin, key });
let current = null; // the selected room
let membersTimer = null;

const FIELD = { validFrom: "Opens", validUntil: "Closes", id: "Id", name: "Name", maxParticipants: "Max participants", userId: "User id", ownerId: "Host", maxSeatCount: "Seats" };

function alertError(e) {
  let text = e.message ? e.message[0].toUpperCase() + e.message.slice(1) : String(e);
  if (e.code === "Unauthenticated") text = "That admin key is not right. It is in ./convene-data/admin.key on the server.";
  else if (e.target && FIELD[e.target]) text = `${FIELD[e.target]}: ${text}`;
  $("alert").textContent = text;
  $("alert").hidden = false;
}
const clearAlert = () => { $("alert").hidden = true; };

const fmt = (iso) => new Date(iso).toLocaleString(undefined, { day: "numeric", month: "short", year: "numeric", hour: "2-digit", minute: "2-digit" });
function status(room) {
  const now = Date.now();
  if (now < Date.parse(room.validFrom)) return ["opens " + fmt(room.validFrom), "later"];
  if (now >= Date.parse(room.validUntil)) return ["ended", "ended"];
  return ["open now", "open"];
}
function localInput(d) {
  const z = new Date(d.getTime() - d.getTimezoneOffset() * 60000);
  return z.toISOString().slice(0, 16);
}

async function signIn(k) {
  key = k.trim();
  admin = createAdminClient({ url: location.origin, key });
  try {
    await loadRooms();
  } catch (e) {
    $("app").hidden = true;
    alertError(e);
    return;
  }
  sessionStorage.setItem("convene-admin-key", key);
  clearAlert();
  $("app").hidden = false;
  // Signed in: the key field goes, a plain statement and "Sign out" take its place.
  $("key").value = "";
  $("key-label").hidden = true;
  $("key-use").hidden = true;
  $("signed-in").hidden = false;
  $("key-forget").hidden = false;
}

async function loadRooms() {
  let page = await admin.rooms.list();
  const rooms = [...page.value];
  // Follow a few pages; an admin page with thousands of rooms would need search.
  for (let i = 0; page.skipToken && i < 20; i++) {
    page = await admin.rooms.list({ skipToken: page.skipToken });
    rooms.push(...page.value);
  }
  $("no-rooms").hidden = rooms.length > 0;
  $("rooms").replaceChildren(...rooms.map((r) => {
    const tr = document.createElement("tr");
    tr.dataset.room = r.id;
    tr.setAttribute("aria-selected", String(current && current.id === r.id));
    const [text, cls] = status(r);
    tr.innerHTML = `<td><b></b><div class="muted small"></div></td><td><span class="status ${cls}"></span></td><td><button class="small">Manage</button></td>`;
    tr.querySelector("b").textContent = r.name || r.id;
    tr.querySelector("div").textContent = r.id;
    tr.querySelector(".status").textContent = text;
    tr.onclick = () => select(r).catch(alertError);
    return tr;
  }));
}

async function select(room) {
  clearAlert();
  current = room;
  document.querySelectorAll("#rooms tr").forEach((tr) => tr.setAttribute("aria-selected", String(tr.dataset.room === room.id)));
  $("detail").hidden = false;
  $("d-title").textContent = room.name ? `${room.name} (${room.id})` : room.id;
  const kind = room.roomType && room.roomType !== "conference"
    ? ` · ${room.roomType} room, ${room.maxSeatCount} seats${room.ownerId ? `, hosted by ${room.ownerId}` : ""}${room.isPublicVisible ? ", listed publicly" : ""}`
    : "";
  $("d-window").textContent = `Open from ${fmt(room.validFrom)} to ${fmt(room.validUntil)} · ${status(room)[0]}${kind}`;
  await Promise.all([loadRoster(), loadMembers()]);
  clearInterval(membersTimer);
  membersTimer = setInterval(() => loadMembers().catch(() => {}), 2000);
}

async function loadRoster() {
  const roster = (await admin.roster.list(current.id)).value;
  $("no-roster").hidden = roster.length > 0;
  $("roster").replaceChildren(...roster.map((p) => {
    const tr = document.createElement("tr");
    tr.dataset.user = p.userId;
    tr.innerHTML = `<td></td><td><select aria-label="Role"><option>presenter</option><option>collaborator</option><option>attendee</option><option>consumer</option></select></td>
      <td><button class="small" data-action="link">Get link</button><div class="link" hidden><input readonly aria-label="Join link"><button class="small" data-action="copy">Copy</button></div></td>
      <td><button class="small danger" data-action="uninvite">Remove</button></td>`;
    tr.cells[0].textContent = p.userId;
    const role = tr.querySelector("select");
    role.value = p.role;
    role.onchange = () => patchRoster({ [p.userId]: { role: role.value } }).catch(alertError);
    tr.querySelector('[data-action="link"]').onclick = async () => {
      try {
        const t = await admin.tokens.mint(current.id, { userId: p.userId });
        const box = tr.querySelector(".link");
        box.hidden = false;
        box.querySelector("input").value = t.joinUrl;
        box.querySelector("input").title = `valid until ${fmt(t.expiresAt)}`;
      } catch (e) { alertError(e); }
    };
    tr.querySelector('[data-action="copy"]').onclick = async (ev) => {
      const input = tr.querySelector(".link input");
      input.select();
      try { await navigator.clipboard.writeText(input.value); ev.target.textContent = "Copied"; } catch { document.execCommand("copy"); }
    };
    tr.querySelector('[data-action="uninvite"]').onclick = () => {
      if (confirm(`Remove ${p.userId} from this room? Their links stop working and, if they are in the call, they leave it.`)) {
        patchRoster({ [p.userId]: null }).catch(alertError);
      }
    };
    return tr;
  }));
}

async function patchRoster(participants) {
  clearAlert();
  await admin.roster.update(current.id, participants);
  await Promise.all([loadRoster(), loadMembers()]);
}

async function loadMembers() {
  if (!current) return;
  const id = current.id;
  const members = await admin.members.list(id);
  if (!current || current.id !== id) return;
  $("no-members").hidden = members.length > 0;
  $("m-count").textContent = members.length ? `(${members.length})` : "";
  $("members").replaceChildren(...members.map((m) => {
    const tr = document.createElement("tr");
    tr.dataset.member = m.id;
    tr.innerHTML = `<td></td><td></td><td class="small"></td><td><button class="small danger">Remove from call</button></td>`;
    tr.cells[0].textContent = m.id;
    tr.cells[1].textContent = m.role;
    tr.cells[2].textContent = `${m.audio ? "mic on" : "mic off"} · ${m.video ? "camera on" : "camera off"}${m.screen ? " · sharing" : ""}`;
    tr.querySelector("button").onclick = async () => {
      try {
        await admin.members.remove(id, m.id);
        await loadMembers();
      } catch (e) { alertError(e); }
    };
    return tr;
  }));
}

$("key-form").onsubmit = (ev) => { ev.preventDefault(); signIn($("key").value); };
$("key-forget").onclick = () => {
  sessionStorage.removeItem("convene-admin-key");
  location.reload();
};
$("refresh").onclick = () => loadRooms().catch(alertError);
$("create").onsubmit = async (ev) => {
  ev.preventDefault();
  clearAlert();
  const body = {};
  if ($("c-name").value.trim()) body.name = $("c-name").value.trim();
  if ($("c-id").value.trim()) body.id = $("c-id").value.trim();
  if ($("c-max").value) body.maxParticipants = Number($("c-max").value);
  body.roomType = $("c-type").value;
  if ($("c-owner").value.trim()) body.ownerId = $("c-owner").value.trim();
  if ($("c-seats").value) body.maxSeatCount = Number($("c-seats").value);
  body.takeSeatMode = $("c-seat-mode").value;
  if ($("c-public").checked) { body.isPublicVisible = true; body.joinPolicy = "public"; }
  if ($("c-from").value) body.validFrom = new Date($("c-from").value).toISOString();
  if ($("c-until").value) body.validUntil = new Date($("c-until").value).toISOString();
  try {
    const room = await admin.rooms.create(body);
    ev.target.reset();
    defaults();
    await loadRooms();
    await select(room);
  } catch (e) { alertError(e); }
};
$("invite").onsubmit = async (ev) => {
  ev.preventDefault();
  const user = $("i-user").value.trim();
  if (!user) return;
  try {
    await patchRoster({ [user]: { role: $("i-role").value } });
    $("i-user").value = "";
  } catch (e) { alertError(e); }
};
$("d-delete").onclick = async () => {
  if (!confirm(`Delete room ${current.id}? Anyone in its call is disconnected.`)) return;
  try {
    await admin.rooms.delete(current.id);
    current = null;
    clearInterval(membersTimer);
    $("detail").hidden = true;
    await loadRooms();
  } catch (e) { alertError(e); }
};

function defaults() {
  const now = new Date();
  $("c-from").value = localInput(now);
  $("c-until").value = localInput(new Date(now.getTime() + 7 * 86400000));
}

await init();
document.title = `Convene admin (SDK ${version()})`;
defaults();
if (key) signIn(key);
