// The join page in headless Chromium. Screen sharing: the viewer's screen tile appears, large and
// without the "camera off" mark, the sharer sees a preview, and when the share stops
// the tile goes away at once on both sides (the relay takes the track out of the
// viewer's connection, so the SDK says `trackRemoved`). Sharing again works.
import assert from "node:assert/strict";
import { eventually, browserSuite, ARTIFACTS } from "./lib/browser.mjs";

const { server, open, openCall, scenario } = browserSuite();

/** Whether `page` plays the tile `key` (`user:screen` or `user:camera`). */
const plays = (page, key) =>
  page.evaluate((key) => {
    const v = document.querySelector(`[data-tile="${CSS.escape(key)}"] video`);
    return Boolean(v && v.videoWidth > 0 && v.currentTime > 0);
  }, key);
const has = (page, key) => page.locator(`[data-tile="${key}"]`).count().then((n) => n > 0);

scenario("a screen share appears, stops at once and can start again", async () => {
  await server.api("POST", "/v1/rooms", { id: "share", participants: { ann: { role: "presenter" }, ben: {} } });
  const pages = {};
  for (const user of ["ann", "ben"]) {
    const t = await server.api("POST", "/v1/rooms/share/tokens", { userId: user });
    pages[user] = await openCall(user, `${server.url}/join#token=${t.token}`);
    await eventually(`${user} joins`, async () => (await pages[user].textContent("#state")) === "connected");
  }
  const { ann, ben } = pages;
  await eventually("ben sees ann's camera", () => plays(ben, "ann:camera"), 30_000);
  // The self view is the live camera (it used to be an empty copy of the stream).
  await eventually("ann sees her own camera", () => plays(ann, "ann:camera"));

  for (const round of [1, 2]) {
    await ann.click("#screen");
    await eventually(`round ${round}: ben plays ann's screen`, () => plays(ben, "ann:screen"), 30_000);
    await eventually(`round ${round}: ann sees her own share`, () => plays(ann, "ann:screen"));
    assert.equal(await ben.isVisible('[data-tile="ann:screen"] .off'), false, "no camera-off mark on a screen");
    const screen = await ben.locator('[data-tile="ann:screen"]').boundingBox();
    const camera = await ben.locator('[data-tile="ann:camera"]').boundingBox();
    assert.ok(screen.width > camera.width * 1.5, `the screen is the stage: ${screen.width} vs ${camera.width}`);
    assert.equal(await ann.textContent("#screen"), "Stop sharing");

    await ann.click("#screen");
    // Within the 5 s below, not the 20 s+ a frozen tile used to stay.
    await eventually(`round ${round}: ben's screen tile goes away`, async () => !(await has(ben, "ann:screen")), 5_000);
    await eventually(`round ${round}: ann's preview goes away`, async () => !(await has(ann, "ann:screen")), 5_000);
    assert.equal(await ann.textContent("#screen"), "Share screen");
    assert.ok(await plays(ben, "ann:camera"), "the camera plays on");
  }
});

scenario("a receive-only viewer gets a viewer's bar, no black self tile, and the log stays folded", async () => {
  await server.api("POST", "/v1/rooms", { id: "watch", participants: { cat: { role: "presenter" }, dan: { role: "consumer" } } });
  const pages = {};
  for (const user of ["cat", "dan"]) {
    const t = await server.api("POST", "/v1/rooms/watch/tokens", { userId: user });
    pages[user] = await openCall(user, `${server.url}/join#token=${t.token}`);
    await eventually(`${user} joins`, async () => (await pages[user].textContent("#state")) === "connected");
  }
  const { cat, dan } = pages;
  await eventually("dan sees cat", () => plays(dan, "cat:camera"), 30_000);
  for (const id of ["#mic", "#cam", "#screen"]) assert.equal(await dan.isVisible(id), false, `dan has no ${id} button`);
  assert.equal(await dan.isVisible("#watching"), true);
  assert.equal(await has(dan, "dan:camera"), false, "no self tile for a watcher");
  assert.equal(await cat.isVisible("#mic"), true);
  assert.equal(await cat.isVisible("#watching"), false);
  // The event log is there for whoever wants it, folded by default.
  assert.equal(await dan.isVisible("#log"), false);
  await dan.click("#events summary");
  assert.equal(await dan.isVisible("#log"), true);
  assert.match(await dan.textContent("#log"), /joined watch as dan/);
});

scenario("the page counts down the room's last five minutes, and stops when the end moves", async () => {
  const until = new Date(Date.now() + 4 * 60_000).toISOString();
  await server.api("POST", "/v1/rooms", { id: "closing", validUntil: until, participants: { eve: {} } });
  const t = await server.api("POST", "/v1/rooms/closing/tokens", { userId: "eve" });
  const eve = await openCall("eve", `${server.url}/join#token=${t.token}`);
  await eventually("eve joins", async () => (await eve.textContent("#state")) === "connected");
  await eventually("the countdown shows", async () => /This room ends at .*: [34]:\d\d left/.test(await eve.textContent("#ending")) || eve.textContent("#ending"));
  const first = await eve.textContent("#ending");
  await eventually("it counts", async () => (await eve.textContent("#ending")) !== first);
  await server.api("PATCH", "/v1/rooms/closing", { validUntil: new Date(Date.now() + 3_600_000).toISOString() });
  await eventually("a later end lifts it", async () => !(await eve.isVisible("#ending")));
});

scenario("switching the microphone in the call sends from the new device", async () => {
  await server.api("POST", "/v1/rooms", { id: "devices", participants: { fay: {}, gus: {} } });
  const pages = {};
  for (const user of ["fay", "gus"]) {
    const t = await server.api("POST", "/v1/rooms/devices/tokens", { userId: user });
    pages[user] = await openCall(user, `${server.url}/join#token=${t.token}`);
    await eventually(`${user} joins`, async () => (await pages[user].textContent("#state")) === "connected");
  }
  const { fay, gus } = pages;
  const sent = () => fay.evaluate(() => window.__pcs.flatMap((pc) => pc.getSenders()).map((s) => s.track).filter((t) => t && t.kind === "audio").map((t) => `${t.label}:${t.readyState}`));
  await eventually("fay lists her microphones", async () => (await fay.locator("#mic-device option").count()) >= 2);
  const options = await fay.locator("#mic-device option").allTextContents();
  const current = await fay.$eval("#mic-device", (s) => s.selectedOptions[0]?.textContent);
  const other = options.find((o) => o !== current);
  assert.ok(other, `another microphone than ${current} among ${options}`);
  await fay.selectOption("#mic-device", { label: other });
  await eventually("fay sends from the new microphone", async () => (await sent()).includes(`${other}:live`) || JSON.stringify(await sent()));
  assert.equal(await fay.$eval("#mic-device", (s) => s.selectedOptions[0]?.textContent), other);
  await eventually("gus still hears fay", async () => (await gus.locator('audio[data-audio="fay"]').count()) === 1);
  // From the SDK: a made-up device and a kind that cannot be switched are refused clearly.
  await server.api("PATCH", "/v1/rooms/devices/participants", { participants: { hal: {} } });
  const t = await server.api("POST", "/v1/rooms/devices/tokens", { userId: "hal" });
  const hal = await open("hal", `${server.url}/live`);
  const errors = await hal.evaluate(async (token) => {
    const { default: init, Room } = await import("/sdk/convene_sdk.js");
    await init();
    const room = await Room.join({ token, audio: false, video: false });
    const why = (p) => p.then(() => "switched", (e) => `${e.code}: ${e.message}`);
    const out = [await why(room.switchDevice("video", "no-such-camera")), await why(room.switchDevice("screen", "x"))];
    await room.leave();
    return out;
  }, t.token);
  assert.match(errors[0], /^MediaUnavailable: cannot use the camera: no device has that id/);
  assert.match(errors[1], /^InvalidParameter: switchDevice takes "audio" or "video"/);
});

/** The stage's layout on `page`: camera tiles, their boxes, and whether anything overflows. */
const layout = (page) =>
  page.evaluate(() => {
    const stage = document.getElementById("tiles").getBoundingClientRect();
    const tiles = [...document.querySelectorAll("#tiles .tile:not(.screen)")].map((t) => {
      const r = t.getBoundingClientRect();
      return { w: r.width, h: r.height, fit: getComputedStyle(t.querySelector("video")).objectFit };
    });
    return { stage: stage.width, tiles, overflow: document.documentElement.scrollWidth > innerWidth };
  });

scenario("the one unmuted microphone is the active speaker, and it follows a switch", async () => {
  await server.api("POST", "/v1/rooms", { id: "talk", participants: { ivy: {}, jon: {} } });
  const pages = {};
  for (const user of ["ivy", "jon"]) {
    const t = await server.api("POST", "/v1/rooms/talk/tokens", { userId: user });
    pages[user] = await openCall(user, `${server.url}/join#token=${t.token}`);
    await eventually(`${user} joins`, async () => (await pages[user].textContent("#state")) === "connected");
  }
  const { ivy, jon } = pages;
  for (const page of [ivy, jon]) {
    await page.evaluate(() => {
      window.__speakers = [];
      for (const ws of window.__sockets) ws.addEventListener("message", (e) => {
        const m = JSON.parse(e.data);
        if (m.type === "activeSpeakersChanged") window.__speakers.push(m.speakers.map((s) => s.participantId).join("+"));
      });
    });
  }
  // Who each page shows as talking: ringed camera tiles and marked names.
  const talking = (page) => page.evaluate(() => ({
    tiles: [...document.querySelectorAll(".tile.speaking")].map((t) => t.dataset.participant).sort(),
    people: [...document.querySelectorAll("#people li.speaking")].map((li) => li.dataset.id).sort(),
  }));
  const shows = async (page, who) => eventually(`${page.__name} shows ${who.join(", ") || "nobody"} talking`, async () => {
    const t = await talking(page);
    const seen = await page.evaluate(() => `${window.__speakers.join(" | ")} [sockets ${window.__sockets.map((w) => w.readyState).join(",")}; state ${document.querySelector("#state")?.textContent}]`);
    return (JSON.stringify(t.tiles) === JSON.stringify(who) && JSON.stringify(t.people) === JSON.stringify(who)) || `${JSON.stringify(t)} after ${seen}`;
  }, 15_000);
  // Whether `page` lists `who`'s microphone on or off.
  const mic = (page, who, on) => eventually(`${page.__name} lists ${who}'s mic ${on ? "on" : "off"}`, async () =>
    (await page.getAttribute(`#people li[data-id="${who}"]`, "data-audio")) === String(on));
  // Jon mutes as soon as his microphone is attached to his publish connection, most
  // likely before its first packet reaches the relay: the relay then reporting his
  // track must not undo the mute.
  await eventually("jon's microphone attached", async () => jon.evaluate(() =>
    window.__pcs.some((pc) => pc.getSenders().some((s) => s.track?.kind === "audio")) || "not yet"));
  await jon.click("#mic");
  await mic(jon, "ivy", true);
  await eventually("jon's microphone sending", async () => jon.evaluate(async () => {
    let sent = 0;
    for (const pc of window.__pcs) {
      (await pc.getStats()).forEach((s) => { if (s.type === "outbound-rtp" && s.kind === "audio") sent += s.packetsSent; });
    }
    return sent > 50 || `sent ${sent}`;
  }));
  await shows(ivy, ["ivy"]);
  await shows(jon, ["ivy"]);
  await mic(ivy, "jon", false);
  const members = await server.api("GET", "/v1/rooms/talk/members");
  assert.equal(members.value.find((m) => m.id === "jon").audio, false, "the server keeps jon muted");
  assert.equal(await jon.getAttribute("#mic", "aria-pressed"), "false", "and so does his button");
  const at = Date.now();
  await ivy.click("#mic");
  await mic(jon, "ivy", false);
  await jon.click("#mic");
  await mic(ivy, "jon", true);
  await shows(ivy, ["jon"]);
  await shows(jon, ["jon"]);
  console.log(`the speaker followed the switch in ${Date.now() - at} ms`);
  const ring = await ivy.$eval('.tile.speaking', (t) => getComputedStyle(t, "::after").borderTopWidth);
  assert.equal(ring, "4px", "the speaker's tile is ringed");
});

scenario("the stage fills with 1, 2 and 4 people, keeps cameras whole and fits a phone", async () => {
  const users = ["p1", "p2", "p3", "p4"];
  await server.api("POST", "/v1/rooms", { id: "grid", participants: Object.fromEntries(users.map((u) => [u, {}])) });
  const pages = [];
  const expect = { 1: 1, 2: 2, 4: 2 }; // people -> columns on a desktop
  for (const user of users) {
    const t = await server.api("POST", "/v1/rooms/grid/tokens", { userId: user });
    const page = await openCall(user, `${server.url}/join#token=${t.token}`);
    await page.setViewportSize({ width: 1280, height: 800 });
    await eventually(`${user} joins`, async () => (await page.textContent("#state")) === "connected");
    pages.push(page);
    const n = pages.length;
    if (!expect[n]) continue;
    const first = pages[0];
    await eventually(`${n} tiles on the first page`, async () => (await layout(first)).tiles.length === n, 30_000);
    const { stage, tiles, overflow } = await layout(first);
    const cols = expect[n];
    for (const t of tiles) {
      // Each tile takes its column's share of the stage (gaps aside).
      assert.ok(t.w > (stage / cols) * 0.9, `${n} people: a tile ${t.w} px wide on a ${stage} px stage`);
      assert.equal(t.fit, "contain", "cameras are shown whole");
    }
    assert.equal(overflow, false, `${n} people: nothing wider than the window`);
  }
  // A phone-sized window: two columns, nothing overflows.
  const phone = pages[3];
  await phone.setViewportSize({ width: 390, height: 844 });
  await eventually("the phone lays out", async () => {
    const { stage, tiles, overflow } = await layout(phone);
    return (!overflow && tiles.length === 4 && tiles.every((t) => t.w > stage / 2 * 0.85 && t.w < stage * 0.6)) || JSON.stringify({ stage, tiles, overflow });
  });

  // Nine people: three columns, every camera whole and on screen. The five others join
  // through the SDK from two pages (a page per person is too heavy for two cores).
  const more = ["p5", "p6", "p7", "p8", "p9"];
  await server.api("PATCH", "/v1/rooms/grid/participants", { participants: Object.fromEntries(more.map((u) => [u, {}])) });
  const tokens = [];
  for (const user of more) tokens.push((await server.api("POST", "/v1/rooms/grid/tokens", { userId: user })).token);
  // Two pages of people joined through the SDK (3 and 2).
  const crowds = [];
  for (const [i, group] of [tokens.slice(0, 3), tokens.slice(3)].entries()) {
    const crowd = await open(`crowd${i + 1}`, `${server.url}/live`);
    crowds.push(crowd);
    const crowdErrors = await crowd.evaluate(async (tokens) => {
      const { default: init, Room } = await import("/sdk/convene_sdk.js");
      await init();
      window.crowd = [];
      for (const token of tokens) window.crowd.push(await Room.join({ token }));
      return window.crowd.map((r) => r.mediaError && r.mediaError.message).filter(Boolean);
    }, group);
    assert.deepEqual(crowdErrors, [], "the crowd's cameras");
  }
  const first = pages[0];
  await eventually("9 tiles on the first page", async () => {
    const n = (await layout(first)).tiles.length;
    if (n === 9) return true;
    // Who is missing, and what their side says.
    const states = [];
    for (const crowd of crowds) {
      states.push(...await crowd.evaluate(() => window.crowd.map((r) => {
        const me = r.localParticipant;
        return `${me.id}: ${r.state}, audio ${me.audio}, video ${me.video}, tracks ${r.localStream.getTracks().map((t) => `${t.kind}:${t.readyState}`)}`;
      })));
      states.push(`pcs ${await crowd.evaluate(() => window.__pcs.map((pc) => pc.connectionState).join(" "))}`);
    }
    return `${n} tiles; ${states.join("; ")}`;
  }, 45_000);
  await eventually("nine people in three columns, all on screen", async () => {
    const { stage, tiles, overflow } = await layout(first);
    const fits = await first.evaluate(() => [...document.querySelectorAll("#tiles .tile")].every((t) => t.getBoundingClientRect().bottom <= innerHeight));
    return (!overflow && fits && tiles.every((t) => t.w > (stage / 3) * 0.9 && t.w < stage / 2 && t.fit === "contain")) || JSON.stringify({ stage, tiles, overflow, fits });
  });
  await first.screenshot({ path: `${ARTIFACTS}/layout-9-people.png` });
});

scenario("the pre-join screen previews the camera, takes a device choice, and joins with it", async () => {
  await server.api("POST", "/v1/rooms", { id: "lobby", name: "Design review", participants: { ida: {}, jon: { role: "consumer" } } });
  const t = await server.api("POST", "/v1/rooms/lobby/tokens", { userId: "ida" });
  const ida = await open("ida", `${server.url}/join#token=${t.token}`);
  await ida.waitForSelector("#prejoin:not([hidden])");
  assert.equal(await ida.isVisible("#call"), false, "nothing joined before the click");
  assert.equal(await ida.textContent("#prejoin-title"), "Join Design review");
  assert.match(await ida.textContent("#prejoin-who"), /You will join as ida \(attendee\)\. Nobody is in the call yet\./);
  const sessions = await server.api("GET", "/v1/sessions");
  assert.deepEqual(sessions.value.filter((x) => x.roomId === "lobby"), [], "the check joined nobody");
  await eventually("the preview plays the camera", () => ida.evaluate(() => document.getElementById("preview").videoWidth > 0));
  assert.equal(await ida.evaluate(() => document.activeElement.id), "join", "Join has the focus");
  await ida.screenshot({ path: `${ARTIFACTS}/prejoin.png` });
  // Another microphone, and the camera off: the call starts that way.
  await eventually("ida lists her microphones", async () => (await ida.locator("#pre-mic-device option").count()) >= 2);
  const mics = await ida.locator("#pre-mic-device option").allTextContents();
  const current = await ida.$eval("#pre-mic-device", (s) => s.selectedOptions[0]?.textContent);
  const other = mics.find((m) => m !== current);
  await ida.selectOption("#pre-mic-device", { label: other });
  await eventually("the preview uses the new microphone", () => ida.evaluate((o) => document.getElementById("preview").srcObject.getAudioTracks()[0]?.label === o, other));
  await ida.click("#pre-cam");
  assert.equal(await ida.getAttribute("#pre-cam", "aria-pressed"), "false");
  assert.equal(await ida.isVisible("#preview-off"), true);
  await ida.click("#join");
  await eventually("ida joins", async () => (await ida.textContent("#state")) === "connected");
  assert.equal(await ida.isVisible("#prejoin"), false);
  const sent = await eventually("ida sends from the chosen microphone, camera off", () => ida.evaluate(() => {
    const tracks = window.__pcs.flatMap((pc) => pc.getSenders()).map((s) => s.track).filter(Boolean);
    const me = window.conveneRoom.localParticipant;
    return me.audio && !me.video && tracks.map((t) => `${t.kind}:${t.label}:${t.readyState}`);
  }));
  assert.deepEqual(sent, [`audio:${other}:live`]);

  // A receive-only person has nothing to preview: straight into the call, no device asked.
  const u = await server.api("POST", "/v1/rooms/lobby/tokens", { userId: "jon" });
  const jon = await open("jon", `${server.url}/join#token=${u.token}`);
  await eventually("jon joins at once", async () => (await jon.textContent("#state")) === "connected");
  assert.equal(await jon.isVisible("#prejoin"), false);

  // Room.check from the SDK: what joining would give, and a refusal in the join's words.
  const checks = await jon.evaluate(async (token) => {
    const { Room } = await import("/sdk/convene_sdk.js");
    const why = (p) => p.then((c) => c, (e) => `${e.code}: ${e.message}`);
    return [
      await why(Room.check({ token })),
      await why(Room.check({ token: "not-a-token" })),
      await why(Room.check({ url: "not a url", token })),
      await why(Room.join({ token, tracks: ["camera"] })),
      await why(Room.join({ token, vidoe: false })),
      await why(Room.check({ token, audio: false })),
      await why(window.conveneRoom.muteParticipant("ida", { vidoe: true })),
    ];
  }, t.token);
  assert.equal(checks[0].participantId, "ida");
  assert.equal(checks[0].participantCount, 2);
  assert.deepEqual(checks[0].capabilities, { publishAudio: true, publishVideo: true, publishScreen: false, moderate: false });
  assert.equal(checks[0].room.name, "Design review");
  assert.match(checks[1], /^Unauthenticated: the join token is not valid/);
  assert.match(checks[2], /^InvalidParameter: 'not a url' is not a server URL/);
  assert.match(checks[3], /^InvalidParameter: tracks is an array of MediaStreamTracks/);
  // A misspelt option is refused, not ignored.
  assert.match(checks[4], /^InvalidParameter: Room.join options: unknown option `vidoe` \(expected \{url\?, token, audio\?/);
  assert.match(checks[5], /^InvalidParameter: Room.check options: unknown option `audio` \(expected \{url\?, token\}\)/);
  assert.match(checks[6], /^InvalidParameter: Room.muteParticipant options: unknown option `vidoe`/);
});

/** Controls on `page` a screen reader could not name: [tag#id "text"]. */
const unnamed = (page) =>
  page.evaluate(() => {
    const visible = (e) => e.offsetParent !== null || e.getClientRects().length > 0;
    const named = (e) => {
      if (e.getAttribute("aria-label")?.trim()) return true;
      if (e.tagName === "BUTTON" || e.tagName === "SUMMARY") return Boolean(e.textContent.trim());
      return [...(e.labels || [])].some((l) => l.textContent.trim());
    };
    return [...document.querySelectorAll("button, input, select, textarea, summary, video")]
      .filter((e) => visible(e) && !(e.tagName === "VIDEO" ? e.closest("[aria-label]") : named(e)))
      .map((e) => `${e.tagName.toLowerCase()}#${e.id} "${e.textContent.trim()}"`);
  });

/** Presses Tab until `selector` has the focus; fails after 30 presses. */
async function tabTo(page, selector) {
  for (let i = 0; i < 30; i++) {
    if (await page.evaluate((s) => document.activeElement?.matches(s), selector)) return;
    await page.keyboard.press("Tab");
  }
  throw new Error(`Tab never reached ${selector}`);
}

scenario("every control has a name, and the keyboard alone joins, mutes and leaves", async () => {
  await server.api("POST", "/v1/rooms", { id: "keys", participants: { kim: { role: "presenter" }, lee: {} } });
  const lee = await openCall("lee", `${server.url}/join#token=${(await server.api("POST", "/v1/rooms/keys/tokens", { userId: "lee" })).token}`);
  const t = await server.api("POST", "/v1/rooms/keys/tokens", { userId: "kim" });
  const kim = await open("kim", `${server.url}/join#token=${t.token}`);
  await kim.waitForSelector("#join:not([disabled])");
  assert.deepEqual(await unnamed(kim), [], "unnamed controls on the pre-join screen");
  // "Join now" has the focus: Enter joins.
  await kim.keyboard.press("Enter");
  await eventually("kim joins", async () => (await kim.textContent("#state")) === "connected");
  await eventually("kim sees lee's camera", async () => (await kim.locator('[data-tile="lee:camera"]').count()) === 1, 30_000);
  assert.deepEqual(await unnamed(kim), [], "unnamed controls in the call");
  assert.equal(await kim.getAttribute('[data-tile="lee:camera"]', "aria-label"), "lee's camera");
  assert.equal(await kim.getAttribute('#people li[data-id="lee"] button', "aria-label"), "Mute lee");
  // Tab to the microphone, Space mutes; Tab to Leave, Enter leaves; "Join again" gets the focus.
  await kim.evaluate(() => document.activeElement?.blur());
  await tabTo(kim, "#mic");
  await kim.keyboard.press("Space");
  await eventually("the microphone is muted", async () => (await kim.getAttribute("#mic", "aria-pressed")) === "false");
  await tabTo(kim, "#leave");
  await kim.keyboard.press("Enter");
  await eventually("kim has left", () => kim.isVisible("#notice"));
  assert.equal(await kim.evaluate(() => document.activeElement.id), "rejoin");
  assert.ok(await lee.isVisible("#call"));
});
