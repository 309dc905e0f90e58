// Admin writes against a running server: `node bench/admin-writes.mjs URL KEY [N]`.
// Two runs of N PATCHes with 20 writers at once: all on one room (the writes serialize
// on it: each must read the latest version) and spread over 20 rooms. Checks that no
// write was lost (the room's version counts them) and prints writes/s and latency
// percentiles as JSON.
const [url, key, n = "2000"] = process.argv.slice(2);
if (!url || !key) {
  console.error("usage: node bench/admin-writes.mjs URL KEY [N]");
  process.exit(2);
}
const N = Number(n);
const WRITERS = 20;
const call = async (method, path, body) => {
  const res = await fetch(url + path, {
    method,
    headers: { Authorization: `Bearer ${key}`, "Content-Type": "application/json" },
    body: body && JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
  return JSON.parse(text);
};
const pct = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];

async function run(name, rooms) {
  const stamp = Date.now().toString(36);
  const ids = Array.from({ length: rooms }, (_, i) => `${name}-${stamp}-${i}`);
  for (const id of ids) await call("POST", "/v1/rooms", { id });
  const latencies = [];
  let next = 0;
  const start = performance.now();
  await Promise.all(Array.from({ length: WRITERS }, async () => {
    for (;;) {
      const i = next++;
      if (i >= N) return;
      const id = ids[i % rooms];
      const t = performance.now();
      await call("PATCH", `/v1/rooms/${id}`, { attributes: { [`k${i % 20}`]: `v${i}` } });
      latencies.push(performance.now() - t);
    }
  }));
  const seconds = (performance.now() - start) / 1000;
  let versions = 0;
  for (const id of ids) versions += (await call("GET", `/v1/rooms/${id}`)).version - 1;
  if (versions !== N) throw new Error(`${name}: ${N} writes but the versions count ${versions}`);
  latencies.sort((a, b) => a - b);
  return {
    run: name, rooms, writers: WRITERS, writes: N, lost: N - versions,
    writesPerSecond: Math.round(N / seconds),
    latencyMs: { p50: +pct(latencies, 50).toFixed(2), p99: +pct(latencies, 99).toFixed(2), max: +latencies.at(-1).toFixed(2) },
  };
}

const results = [await run("one-room", 1), await run("twenty-rooms", 20)];
console.log(JSON.stringify(results, null, 2));
