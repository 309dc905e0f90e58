// TURN: each member is handed a credential minted for it from the secret the server
// shares with the TURN server (the TURN REST API scheme coturn's use-auth-secret
// checks), and browsers forced to relay-only media join and exchange audio and video
// through a real coturn on loopback.
import { before, after } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { startServer } from "./lib/server.mjs";
import { startCoturn } from "./lib/coturn.mjs";
import { launch, pageSet, inbound, eventually, joinWithSdk } from "./lib/browser.mjs";

const SECRET = randomBytes(24).toString("hex");
let server;
let turn;
let browser;

before(async () => {
  turn = await startCoturn({ secret: SECRET });
  server = await startServer({
    args: ["--ice-servers", turn.url, "--turn-secret", SECRET, "--turn-ttl-seconds", "600"],
  });
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await server?.stop();
  await turn?.stop();
});

const { open, scenario } = pageSet(() => browser);

/**
 * What the page's connected peer connections use: their ICE settings, and whether the
 * local end of the selected pair is an address the TURN server relays for this page (a
 * relay candidate's; Chromium may first learn the same address as peer-reflexive).
 */
async function paths(page) {
  return page.evaluate(async () => {
    const out = [];
    for (const pc of window.__pcs || []) {
      if (pc.connectionState !== "connected") continue;
      const stats = await pc.getStats();
      const relayed = new Set();
      let local;
      stats.forEach((s) => {
        if (s.type === "local-candidate" && s.candidateType === "relay") relayed.add(`${s.address}:${s.port}`);
        if (s.type === "transport" && s.selectedCandidatePairId) {
          local = stats.get(stats.get(s.selectedCandidatePairId).localCandidateId);
        }
      });
      const { iceServers, iceTransportPolicy } = pc.getConfiguration();
      out.push({
        policy: iceTransportPolicy,
        usernames: iceServers.map((s) => s.username),
        local: `${local?.candidateType} ${local?.address}:${local?.port} via ${local?.url}`,
        relayed: relayed.has(`${local?.address}:${local?.port}`) && local?.relayProtocol === "udp",
      });
    }
    return out;
  });
}

scenario("browsers forced to relay-only media call each other through coturn", async () => {
  await server.api("POST", "/v1/rooms", {
    id: "turn-call",
    participants: { alice: { role: "attendee" }, bob: { role: "attendee" } },
  });
  const token = async (userId) => (await server.api("POST", "/v1/rooms/turn-call/tokens", { userId })).token;
  const a = await open("alice", `${server.url}/live`);
  const b = await open("bob", `${server.url}/live`);
  await joinWithSdk(a, await token("alice"), { iceTransportPolicy: "relay" });
  await joinWithSdk(b, await token("bob"), { iceTransportPolicy: "relay" });

  for (const [page, other] of [[a, "bob"], [b, "alice"]]) {
    const video = await eventually(`${page.__name} decoding ${other}'s video`, async () => {
      const v = await inbound(page, "video");
      return v.framesDecoded > 10 ? v : `frames ${v.framesDecoded}`;
    }, 40_000);
    const audio = await eventually(`${page.__name} hearing ${other}`, async () => {
      const s = await inbound(page, "audio");
      return s.totalAudioEnergy > 0.01 ? s : `energy ${s.totalAudioEnergy}`;
    }, 30_000);
    const used = await paths(page);
    console.log(`${page.__name}: ${video.framesDecoded} frames, audio energy ${audio.totalAudioEnergy.toFixed(3)}, paths ${JSON.stringify(used)}`);
    // Publish and subscribe connections, both through the relay, with this member's
    // own credential: "<expiry>:<user id>", the expiry within the configured 600 s.
    assert.equal(used.length, 2, JSON.stringify(used));
    const now = Math.floor(Date.now() / 1000);
    for (const u of used) {
      assert.equal(u.policy, "relay");
      assert.ok(u.relayed, `media goes through the TURN server: ${u.local}`);
      assert.ok(u.local.endsWith(`via ${turn.url}`), u.local);
      const [expiry, user] = u.usernames[0].split(":");
      assert.equal(user, page.__name);
      assert.ok(Number(expiry) > now && Number(expiry) <= now + 600, u.usernames[0]);
    }
  }
  // coturn saw the allocations, from these users' minted names.
  const log = turn.log();
  assert.match(log, /:alice/);
  assert.match(log, /:bob/);
});
