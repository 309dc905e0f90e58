// The join page's live-room part: the seat grid (take, apply, leave; presenters lock,
// take someone off, and answer applications) and the room's attributes (presenters set
// the topic). Everything goes through the SDK; the server's answers arrive as events.
const $ = (id) => document.getElementById(id);

// `label`, when given, is the name a screen reader says: "Take seat 3", not a row of
// "Take"s.
function button(text, onclick, cls = "small", label = "") {
  const b = document.createElement("button");
  b.className = cls;
  b.textContent = text;
  if (label) b.setAttribute("aria-label", label);
  b.onclick = onclick;
  return b;
}

export function initLive(room, { showError, nameOf }) {
  const info = room.info;
  const hasSeats = info.roomType === "live" || info.roomType === "voice";
  $("seats-card").hidden = !hasSeats;
  $("attrs-card").hidden = false;
  let applied = false;

  function renderSeats() {
    if (!hasSeats) return;
    const me = room.localParticipant.id;
    const moderator = room.capabilities.moderate;
    const apply = room.info.takeSeatMode === "applyToTake" && !moderator;
    const mySeat = room.seats.find((s) => s.userId === me);
    $("seat-mode").textContent = apply ? "(ask the host for a seat)" : "(free to take)";
    $("seats").replaceChildren(...room.seats.map((s) => {
      const li = document.createElement("li");
      li.dataset.seat = s.index;
      li.dataset.user = s.userId || "";
      li.dataset.locked = s.locked;
      const label = document.createElement("span");
      label.textContent = s.userId
        ? `${s.index + 1}. ${nameOf(s.userId)}${s.audio ? " · mic on" : ""}${s.video ? " · camera on" : ""}`
        : `${s.index + 1}. ${s.locked ? "locked" : "free"}`;
      li.append(label);
      if (!s.userId && !s.locked && !mySeat && !apply) {
        li.append(button("Take", () => room.takeSeat(s.index).catch(showError), "small", `Take seat ${s.index + 1}`));
      }
      if (moderator && s.userId && s.userId !== me) {
        li.append(button("Take off", () => room.kickFromSeat(s.userId).catch(showError), "small", `Take ${nameOf(s.userId)} off seat ${s.index + 1}`));
      }
      if (moderator) {
        li.append(button(s.locked ? "Unlock" : "Lock", () => room.lockSeat(s.index, !s.locked).catch(showError), "small", `${s.locked ? "Unlock" : "Lock"} seat ${s.index + 1}`));
      }
      return li;
    }));
    const actions = [];
    if (mySeat) actions.push(button("Leave seat", () => room.leaveSeat().catch(showError)));
    else if (apply && !applied) actions.push(button("Ask for a seat", () => room.applySeat().then(() => { applied = true; renderSeats(); }, showError), "primary"));
    else if (apply && applied) actions.push(button("Cancel request", () => room.cancelSeatApplication().catch(showError)));
    $("seat-actions").replaceChildren(...actions);
  }

  function renderApplications() {
    const apps = room.seatApplications;
    $("applications").hidden = !room.capabilities.moderate || apps.length === 0;
    $("apps").replaceChildren(...apps.map((a) => {
      const li = document.createElement("li");
      li.dataset.applicant = a.userId;
      const who = document.createElement("span");
      who.textContent = nameOf(a.userId);
      li.append(who,
        button("Approve", () => room.approveSeat(a.userId).catch(showError), "small primary", `Give ${nameOf(a.userId)} a seat`),
        button("Reject", () => room.rejectSeat(a.userId).catch(showError), "small", `Turn down ${nameOf(a.userId)}`));
      return li;
    }));
  }

  function renderAttributes() {
    const attrs = room.info.attributes || {};
    const keys = Object.keys(attrs);
    $("room-attrs").replaceChildren(...keys.map((k) => {
      const li = document.createElement("li");
      li.dataset.key = k;
      li.textContent = `${k}: ${attrs[k]}`;
      return li;
    }));
    $("no-attrs").hidden = keys.length > 0;
    $("topic-form").hidden = !room.capabilities.moderate;
  }

  room.on("seatsChanged", renderSeats);
  room.on("capabilitiesChanged", () => { renderSeats(); renderApplications(); renderAttributes(); });
  room.on("seatApplicationsChanged", renderApplications);
  room.on("seatApplicationEnded", ({ outcome }) => { applied = false; renderSeats(); $("seat-note").textContent = `Your request for a seat was ${outcome}.`; });
  room.on("roomAttributesChanged", renderAttributes);
  $("topic-form").onsubmit = (ev) => {
    ev.preventDefault();
    const topic = $("topic").value.trim();
    room.setRoomAttributes({ topic: topic || null }).then(() => { $("topic").value = ""; }, showError);
  };
  renderSeats();
  renderApplications();
  renderAttributes();
  return { renderSeats };
}
