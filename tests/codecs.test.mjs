// Video codecs in real Chromium: a publisher that asks for H.264 (`videoCodec: "h264"`)
// sends it, one on the default sends VP8, and a viewer decodes both on its one receiving
// connection (the relay forwards each as it arrives, never transcoding). A viewer whose
// browser cannot play H.264 (its offers stripped of H.264 here) is told so with a
// `CodecUnsupported` error event and still decodes the VP8 video. A bad codec name is
// refused.
import assert from "node:assert/strict";
import { browserSuite, eventually, joinWithSdk } from "./lib/browser.mjs";

const { server, open, scenario } = browserSuite();

/** Frames decoded per codec (`video/H264`, `video/VP8`) over the page's connections. */
const decodedByCodec = (page) => page.evaluate(async () => {
  const out = {};
  for (const pc of window.__pcs || []) {
    if (pc.connectionState === "closed") continue;
    const stats = await pc.getStats();
    stats.forEach((s) => {
      if (s.type === "inbound-rtp" && s.kind === "video" && s.codecId) {
        const mime = stats.get(s.codecId)?.mimeType || "?";
        out[mime] = (out[mime] || 0) + (s.framesDecoded || 0);
      }
    });
  }
  return out;
});

/** The codecs of the page's outgoing video. */
const sentCodecs = (page) => page.evaluate(async () => {
  const out = new Set();
  for (const pc of window.__pcs || []) {
    if (pc.connectionState === "closed") continue;
    const stats = await pc.getStats();
    stats.forEach((s) => {
      if (s.type === "outbound-rtp" && s.kind === "video" && s.codecId && s.packetsSent > 0) {
        out.add(stats.get(s.codecId)?.mimeType);
      }
    });
  }
  return [...out];
});

/** A browser without H.264: every offer it is given loses its H.264 payloads. */
const WITHOUT_H264 = () => {
  const strip = (sdp) => {
    const lines = sdp.split("\r\n");
    const pts = new Set(lines.map((l) => /^a=rtpmap:(\d+) H264\//i.exec(l)?.[1]).filter(Boolean));
    for (const l of lines) {
      const m = /^a=fmtp:(\d+) apt=(\d+)/.exec(l);
      if (m && pts.has(m[2])) pts.add(m[1]);
    }
    return lines
      .filter((l) => !(/^a=(?:rtpmap|fmtp|rtcp-fb):(\d+) /.exec(l) && pts.has(/^a=[a-z-]+:(\d+) /.exec(l)[1])))
      .map((l) => (l.startsWith("m=") ? l.split(" ").filter((t, i) => i < 3 || !pts.has(t)).join(" ") : l))
      .join("\r\n");
  };
  const set = RTCPeerConnection.prototype.setRemoteDescription;
  RTCPeerConnection.prototype.setRemoteDescription = function (desc) {
    if (desc && desc.type === "offer") desc = { type: "offer", sdp: strip(desc.sdp) };
    return set.call(this, desc);
  };
};

scenario("H.264 and VP8 publishers in one room; a viewer decodes both; one without H.264 is told", async () => {
  await server.api("POST", "/v1/rooms", {
    id: "codecs",
    participants: {
      alice: { role: "presenter" }, bob: { role: "presenter" },
      carol: { role: "attendee" }, dave: { role: "attendee" },
    },
  });
  const token = async (userId) => (await server.api("POST", "/v1/rooms/codecs/tokens", { userId })).token;

  const refused = await open("refused", `${server.url}/live`);
  const err = await refused.evaluate(async (token) => {
    const { default: init, Room } = await import("/sdk/convene_sdk.js");
    await init();
    try { await Room.join({ token, videoCodec: "vp9" }); return null; } catch (e) { return { code: e.code, message: e.message }; }
  }, await token("carol"));
  assert.equal(err?.code, "InvalidParameter", JSON.stringify(err));
  assert.match(err.message, /vp9.*(vp8|h264)/, err.message);

  const alice = await open("alice", `${server.url}/live`);
  await joinWithSdk(alice, await token("alice"), { videoCodec: "h264" });
  const bob = await open("bob", `${server.url}/live`);
  await joinWithSdk(bob, await token("bob"));
  const carol = await open("carol", `${server.url}/live`);
  await joinWithSdk(carol, await token("carol"));
  const dave = await open("dave", `${server.url}/live`, WITHOUT_H264);
  await joinWithSdk(dave, await token("dave"));

  assert.deepEqual(await eventually("alice sending H.264", async () => {
    const c = await sentCodecs(alice);
    return c.length ? c : "nothing sent yet";
  }), ["video/H264"]);
  assert.deepEqual(await eventually("bob sending VP8", async () => {
    const c = await sentCodecs(bob);
    return c.length ? c : "nothing sent yet";
  }), ["video/VP8"]);

  const both = await eventually("carol decoding alice's H.264 and bob's VP8", async () => {
    const d = await decodedByCodec(carol);
    return d["video/H264"] > 20 && d["video/VP8"] > 20 ? d : JSON.stringify(d);
  }, 40_000);
  console.log(`carol decoded ${JSON.stringify(both)} frames`);
  assert.deepEqual(await carol.evaluate(() => window.__errors), []);

  // Dave's browser plays VP8 only: told once, in words, and bob's video still plays.
  const told = await eventually("dave told he cannot play H.264", () => dave.evaluate(() =>
    window.__errors.length ? window.__errors : "no error yet"));
  assert.equal(told.length, 1, JSON.stringify(told));
  assert.equal(told[0].code, "CodecUnsupported", JSON.stringify(told));
  assert.match(told[0].message, /cannot play video\/H264/, told[0].message);
  const vp8 = await eventually("dave decoding bob's VP8", async () => {
    const d = await decodedByCodec(dave);
    return d["video/VP8"] > 20 ? d : JSON.stringify(d);
  }, 40_000);
  assert.equal(vp8["video/H264"] || 0, 0, JSON.stringify(vp8));
  // Still once, after all the renegotiations of the call.
  assert.equal(await dave.evaluate(() => window.__errors.length), 1);
});
