// The public live list: live rooms marked public, with their host, audience and seats,
// from GET /v1/live (no key). "Watch" asks for a name, gets a guest token and opens the
// call page as a viewer.
const $ = (id) => document.getElementById(id);
let chosen = null;

function card(r) {
  const li = document.createElement("li");
  li.className = "card";
  li.dataset.room = r.roomId;
  if (r.coverUrl) {
    const img = document.createElement("img");
    img.src = r.coverUrl;
    img.alt = "";
    li.append(img);
  }
  const h = document.createElement("h2");
  h.textContent = r.name || r.roomId;
  const p = document.createElement("p");
  p.className = "muted small counts";
  const host = r.ownerId ? `hosted by ${r.ownerId} · ` : "";
  p.textContent = `${host}${r.memberCount} in the room · ${r.audienceCount} watching · ${r.seatsTaken}/${r.seatCount} seats`;
  li.append(h, p);
  if (r.joinPolicy === "public") {
    const b = document.createElement("button");
    b.className = "primary";
    b.textContent = "Watch";
    b.onclick = () => {
      chosen = r;
      $("watch-title").textContent = `Watch ${r.name || r.roomId}`;
      $("watch").hidden = false;
      $("name").focus();
    };
    li.append(b);
  } else {
    const note = document.createElement("p");
    note.className = "muted small";
    note.textContent = "Invited guests only.";
    li.append(note);
  }
  return li;
}

async function load() {
  $("alert").hidden = true;
  try {
    const res = await fetch("/v1/live");
    const page = await res.json();
    if (!res.ok) throw new Error(page.error?.message || `the server answered ${res.status}`);
    $("rooms").replaceChildren(...page.value.map(card));
    $("empty").hidden = page.value.length > 0;
  } catch (e) {
    $("alert").textContent = `The list could not be loaded: ${e.message}`;
    $("alert").hidden = false;
  }
}

$("watch").onsubmit = async (ev) => {
  ev.preventDefault();
  try {
    const res = await fetch(`/v1/live/${encodeURIComponent(chosen.roomId)}/guest-tokens`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ displayName: $("name").value }),
    });
    const body = await res.json();
    if (!res.ok) throw new Error(body.error?.message || `the server answered ${res.status}`);
    location.href = `/join#token=${body.token}`;
  } catch (e) {
    $("alert").textContent = `You cannot watch this room: ${e.message}`;
    $("alert").hidden = false;
  }
};
$("cancel").onclick = () => { $("watch").hidden = true; };
$("refresh").onclick = load;
await load();
setInterval(load, 5000);
