// Several nodes on one Redis and one PostgreSQL, measured from outside:
//   node --experimental-websocket bench/cluster.mjs KEY URL1 URL2 URL3 [MEMBERS] [REMOVALS]
// MEMBERS members join one room, spread over the nodes in turn. Then
//   - removals: one member at a time is removed from the roster through a node (in turn,
//     so most removals cross nodes); the time from sending the PATCH to the member's
//     socket reading `left {reason: removed}`, split into same-node and cross-node;
//   - listings: GET /v1/sessions and /v1/rooms/{id}/members on each node in turn (each
//     asks the other nodes and waits for their answers).
// Prints JSON: latency percentiles in ms, and whether every member and removal arrived.
const [key, ...rest] = process.argv.slice(2);
const urls = rest.filter((a) => a.startsWith("http"));
const [members = "150", removals = "60"] = rest.filter((a) => !a.startsWith("http"));
const M = Number(members);
const R = Math.min(Number(removals), M);
if (!key || urls.length < 2 || typeof WebSocket === "undefined") {
  console.error("usage: node --experimental-websocket bench/cluster.mjs KEY URL1 URL2 [URL3...] [MEMBERS] [REMOVALS]");
  process.exit(2);
}
const call = async (base, method, path, body) => {
  const res = await fetch(base + path, {
    method,
    headers: { Authorization: `Bearer ${key}`, "Content-Type": "application/json" },
    body: body && JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : null;
};
const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? Number(s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))].toFixed(2)) : null;
};
const summary = (xs) => ({ n: xs.length, p50: pct(xs, 50), p90: pct(xs, 90), p99: pct(xs, 99), max: pct(xs, 100) });

/** Joins `user` through `base`; resolves with a handle once `joined` arrives. */
function join(base, token) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${base.replace("http", "ws")}/v1/rtc?token=${token}`);
    const h = { ws, left: null, waiters: [] };
    const timer = setTimeout(() => reject(new Error("join timed out")), 20000);
    ws.onmessage = (e) => {
      const m = JSON.parse(e.data);
      if (m.type === "joined") {
        clearTimeout(timer);
        resolve(h);
      } else if (m.type === "left") {
        h.left = { reason: m.reason, at: performance.now() };
        h.waiters.forEach((w) => w());
      }
    };
    ws.onerror = () => reject(new Error("websocket error"));
  });
}

const room = `cluster-${Date.now().toString(36)}`;
const users = Array.from({ length: M }, (_, i) => `m${i}`);
await call(urls[0], "POST", "/v1/rooms", {
  id: room,
  participants: Object.fromEntries(users.map((u) => [u, {}])),
});
const handles = [];
const t0 = performance.now();
for (let i = 0; i < M; i++) {
  const node = i % urls.length;
  const { token } = await call(urls[(i + 1) % urls.length], "POST", `/v1/rooms/${room}/tokens`, { userId: users[i] });
  handles.push({ node, h: await join(urls[node], token) });
}
const joinSeconds = (performance.now() - t0) / 1000;

const listings = { sessions: [], members: [] };
let membersSeen = 0;
for (let i = 0; i < 60; i++) {
  const base = urls[i % urls.length];
  let t = performance.now();
  await call(base, "GET", "/v1/sessions");
  listings.sessions.push(performance.now() - t);
  t = performance.now();
  const list = await call(base, "GET", `/v1/rooms/${room}/members`);
  listings.members.push(performance.now() - t);
  membersSeen = Math.max(membersSeen, list.value.length);
}

const same = [];
const cross = [];
let lost = 0;
for (let i = 0; i < R; i++) {
  const via = (i + 1 + Math.floor(i / urls.length)) % urls.length;
  const { node, h } = handles[i];
  const t = performance.now();
  const gone = new Promise((resolve) => {
    if (h.left) return resolve();
    h.waiters.push(resolve);
    setTimeout(resolve, 5000);
  });
  await call(urls[via], "PATCH", `/v1/rooms/${room}/participants`, { participants: { [users[i]]: null } });
  await gone;
  if (!h.left || h.left.reason !== "removed") {
    lost++;
    continue;
  }
  (via === node ? same : cross).push(h.left.at - t);
}
for (const { h } of handles) h.ws.close();
console.log(JSON.stringify({
  nodes: urls.length,
  members: M,
  joinSeconds: Number(joinSeconds.toFixed(2)),
  membersListed: membersSeen,
  listingsMs: { sessions: summary(listings.sessions), members: summary(listings.members) },
  removalMs: { sameNode: summary(same), crossNode: summary(cross) },
  removalsNotArrived: lost,
}, null, 1));
process.exit(lost === 0 && membersSeen === M ? 0 : 1);
