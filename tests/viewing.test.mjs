// Only what is on screen is sent, in real Chromium on the join page: when a viewer's
// tile of a participant's camera leaves the view (hidden here), the page tells the
// server (room.setViewing, from an IntersectionObserver) and no more video packets of
// that camera reach it, while its audio goes on; shown again, the video comes back and
// decodes (from a fresh keyframe).
import assert from "node:assert/strict";
import { browserSuite, eventually } from "./lib/browser.mjs";

const { server, openCall, scenario } = browserSuite();

/** Packets received and frames decoded, per kind, over the page's connections. */
const received = (page) => page.evaluate(async () => {
  const out = { video: 0, audio: 0, frames: 0, lost: 0 };
  for (const pc of window.__pcs || []) {
    if (pc.connectionState === "closed") continue;
    (await pc.getStats()).forEach((s) => {
      if (s.type !== "inbound-rtp") return;
      out[s.kind] += s.packetsReceived || 0;
      if (s.kind === "video") {
        out.frames += s.framesDecoded || 0;
        out.lost += s.packetsLost || 0;
      }
    });
  }
  return out;
});

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

scenario("a camera tile out of view gets no video packets, and its video comes back when shown", async () => {
  await server.api("POST", "/v1/rooms", {
    id: "viewing",
    participants: { alice: { role: "presenter" }, bob: { role: "attendee" } },
  });
  const link = async (userId) =>
    `${server.url}/join#token=${(await server.api("POST", "/v1/rooms/viewing/tokens", { userId })).token}`;
  await openCall("alice", await link("alice"));
  const bob = await openCall("bob", await link("bob"));
  const tile = '[data-tile="alice:camera"]';
  await eventually("bob decoding alice's camera", async () => {
    const r = await received(bob);
    return r.frames > 20 ? r : JSON.stringify(r);
  }, 30_000);

  await bob.locator(tile).evaluate((t) => { t.style.display = "none"; });
  await sleep(1500); // the observer's callback, the message, packets in flight
  const before = await received(bob);
  await sleep(2500);
  const hidden = await received(bob);
  console.log(`tile hidden, 2.5 s: ${hidden.video - before.video} video packets, ${hidden.audio - before.audio} audio packets`);
  assert.equal(hidden.video - before.video, 0, "no video packets while the tile is hidden");
  assert.ok(hidden.audio - before.audio > 50, "audio goes on");

  await bob.locator(tile).evaluate((t) => { t.style.display = ""; });
  const t0 = Date.now();
  const back = await eventually("alice's video decoding again", async () => {
    const r = await received(bob);
    return r.frames > hidden.frames + 20 ? r : JSON.stringify(r);
  }, 20_000);
  const lost = back.lost - hidden.lost;
  console.log(`shown again: ${back.frames - hidden.frames} more frames decoded within ${Date.now() - t0} ms, ${lost} packets counted lost`);
  // The stream went on without a gap: the viewer counts nothing it skipped as lost
  // (with a gap it counts every packet of the hidden time).
  assert.ok(lost <= 5, `packets counted lost after the resume: ${lost}`);
});
