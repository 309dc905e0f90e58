// The whole path a browser user and an admin take, with the real server and headless
// Chromium: the admin page sets up a room, two people join from their links, see and
// hear each other, mute, reload, get removed; bad links are refused in plain words.
import assert from "node:assert/strict";
import { inbound, srtpCiphers, eventually, browserSuite, joinPastPrejoin } from "./lib/browser.mjs";

const { server, open, openCall, scenario } = browserSuite();

const person = (page, id) => page.locator(`#people li[data-id="${id}"]`);

async function adminLink(admin, user) {
  const row = admin.locator(`#roster tr[data-user="${user}"]`);
  await row.locator('[data-action="link"]').click();
  const input = row.locator(".link input");
  await eventually(`a join link for ${user}`, async () => (await input.inputValue()).includes("/join#token="));
  return input.inputValue();
}

async function decodes(page, what) {
  const video = await eventually(`${page.__name} decoding ${what} video`, async () => {
    const v = await inbound(page, "video");
    return v.framesDecoded > 0 && v;
  }, 30_000);
  const audio = await eventually(`${page.__name} receiving ${what} audio`, async () => {
    const a = await inbound(page, "audio");
    return a.totalAudioEnergy > 0.01 && a;
  }, 30_000);
  console.log(`${page.__name} receives ${what} media: ${video.framesDecoded} video frames decoded, audio energy ${audio.totalAudioEnergy.toFixed(4)}`);
}

scenario("admin invites A and B; they see and hear each other; mute, reload, removal", async () => {
  // The admin page: sign in, create a room, invite A (presenter) and B (attendee).
  const admin = await open("admin", `${server.url}/admin`);
  await admin.fill("#key", "wrong-key");
  await admin.click("#key-use");
  await eventually("the wrong key refused", async () => /admin key is not right/.test(await admin.textContent("#alert")));
  await admin.fill("#key", server.adminKey);
  await admin.click("#key-use");
  await admin.waitForSelector("#app:not([hidden])");
  await admin.fill("#c-name", "E2E call");
  await admin.fill("#c-id", "e2e-call");
  await admin.click("#create button");
  await admin.waitForSelector('#rooms tr[data-room="e2e-call"]');
  await admin.waitForSelector("#detail:not([hidden])");
  for (const [user, role] of [["alice", "presenter"], ["bob", "attendee"]]) {
    await admin.fill("#i-user", user);
    await admin.selectOption("#i-role", role);
    await admin.click("#invite button");
    await admin.waitForSelector(`#roster tr[data-user="${user}"]`);
  }
  assert.equal(await admin.locator('#roster tr[data-user="alice"] select').inputValue(), "presenter");
  const linkA = await adminLink(admin, "alice");
  const linkB = await adminLink(admin, "bob");
  assert.ok(linkA.startsWith(`${server.url}/join#token=`), linkA);

  // A and B join; each lists the other.
  const a = await openCall("alice", linkA);
  const b = await openCall("bob", linkB);
  await person(a, "bob").waitFor({ timeout: 20_000 });
  await person(b, "alice").waitFor({ timeout: 20_000 });
  assert.equal(await a.textContent("#title"), "E2E call");
  assert.match(await a.textContent("#who"), /alice \(presenter\)/);

  // Media both ways: video frames decoded and audio energy received.
  await decodes(a, "bob's");
  await decodes(b, "alice's");
  await a.waitForSelector('[data-tile="bob:camera"] video');
  await eventually("alice's list shows bob's mic on", async () => (await person(a, "bob").getAttribute("data-audio")) === "true");

  // The admin sees both live.
  await admin.waitForSelector('#members tr[data-member="alice"]');
  await admin.waitForSelector('#members tr[data-member="bob"]');

  // Both media connections of each page use AEAD_AES_128_GCM (the relay asks for it:
  // about five times cheaper per packet than AES-CM with HMAC-SHA1).
  for (const page of [a, b]) {
    const ciphers = await eventually(`${page.__name}'s connections report their cipher`, async () => {
      const c = await srtpCiphers(page);
      return c.length >= 2 ? c : `${c.length} connected`;
    });
    assert.deepEqual([...new Set(ciphers)], ["SRTP_AEAD_AES_128_GCM"], `${page.__name}: ${ciphers}`);
  }

  // B mutes: A's page shows it, from mediaChanged.
  await b.click("#mic");
  await eventually("alice's list shows bob muted", async () => (await person(a, "bob").getAttribute("data-audio")) === "false");
  assert.match(await person(a, "bob").textContent(), /mic off/);
  assert.match(await a.textContent("#log"), /bob: mic off/);
  assert.equal(await b.getAttribute("#mic", "aria-pressed"), "false");

  // Chat reaches the other page.
  await b.fill("#chat-text", "hello from bob");
  await b.click("#chat-form button");
  await eventually("alice gets bob's message", async () => /hello from bob/.test(await a.textContent("#chat-log")));

  // A, a presenter, mutes B from the people list: B's camera goes off on B's side too.
  await person(a, "bob").locator("button").click();
  await eventually("bob's page says alice turned his camera off", async () => /bob \(you\): mic off, camera off \(by alice\)/.test(await b.textContent("#log")));
  await eventually("bob's camera button shows it", async () => (await b.getAttribute("#cam", "aria-pressed")) === "false");
  await eventually("alice's list shows bob's camera off", async () => (await person(a, "bob").getAttribute("data-video")) === "false");
  // B turns the camera back on (a new camera track on the same sender): A sees it again.
  await b.click("#cam");
  await eventually("alice's list shows bob's camera on", async () => (await person(a, "bob").getAttribute("data-video")) === "true");
  const framesBefore = (await inbound(a, "video")).framesDecoded;
  await eventually("alice decodes bob's new camera", async () => (await inbound(a, "video")).framesDecoded > framesBefore + 5);

  // A's signaling connection drops: the SDK reconnects and resumes; B sees no leave.
  const logBefore = await b.textContent("#log");
  await a.evaluate(() => window.__sockets.at(-1).close());
  await eventually("alice reconnected", async () => {
    const log = await a.textContent("#log");
    return /connection reconnecting \(connectionLost\)/.test(log) && /connection connected/.test(log) && (await a.textContent("#state")) === "connected";
  });
  assert.equal(await a.evaluate(() => window.__sockets.length), 2);
  assert.equal(await b.textContent("#log"), logBefore, "bob saw nothing of alice's reconnect");
  await a.fill("#chat-text", "back again");
  await a.click("#chat-form button");
  await eventually("bob gets alice's message after the resume", async () => /back again/.test(await b.textContent("#chat-log")));

  // The connection drops again while alice toggles her camera off and on: the toggles
  // queue behind the reconnect in the SDK's driver, and bob ends up seeing her camera.
  await a.evaluate(() => window.__sockets.at(-1).close());
  await a.click("#cam");
  await a.click("#cam");
  await eventually("alice reconnected again", async () => (await a.textContent("#state")) === "connected" && (await a.evaluate(() => window.__sockets.length)) === 3);
  await eventually("alice's camera is on after the toggles", async () => (await a.getAttribute("#cam", "aria-pressed")) === "true");
  await eventually("bob's list shows alice's camera on", async () => (await person(b, "alice").getAttribute("data-video")) === "true");
  const bobFrames = (await inbound(b, "video")).framesDecoded;
  await eventually("bob decodes alice's camera after the toggles", async () => (await inbound(b, "video")).framesDecoded > bobFrames + 5);

  // A reloads: it rejoins, with new connections, and media flows again both ways.
  await a.reload();
  await joinPastPrejoin(a);
  await person(a, "bob").waitFor({ timeout: 20_000 });
  assert.equal(await a.textContent("#state"), "connected");
  await eventually("alice's video decoded again", async () => (await inbound(a, "video")).framesDecoded > 0, 30_000);
  await eventually("bob decodes alice's new video", async () => {
    const before = (await inbound(b, "video")).framesDecoded;
    await new Promise((r) => setTimeout(r, 1000));
    return (await inbound(b, "video")).framesDecoded > before;
  }, 30_000);
  assert.equal(await b.locator('[data-tile="alice:camera"]').count(), 1);

  // The admin removes B from the call: B's page says so, B's tile leaves A's grid.
  await admin.locator('#members tr[data-member="bob"] button').click();
  await eventually("bob's page says he was removed", async () => /You were removed from this room/.test(await b.textContent("#notice")));
  assert.equal(await b.isVisible("#rejoin"), false);
  await eventually("bob's tile leaves alice's grid", async () => (await a.locator('[data-participant="bob"]').count()) === 0);
  await eventually("bob leaves alice's list", async () => (await person(a, "bob").count()) === 0);
  assert.match(await a.textContent("#log"), /bob left/);
});

scenario("bad links are refused with messages people understand", async () => {
  const now = Date.now();
  await server.api("POST", "/v1/rooms", { id: "e2e-refusals", participants: { carol: {}, dave: {} } });
  // Uninvited: a token minted before the invitation was withdrawn.
  const carol = await server.api("POST", "/v1/rooms/e2e-refusals/tokens", { userId: "carol" });
  await server.api("PATCH", "/v1/rooms/e2e-refusals/participants", { participants: { carol: null } });
  const c = await openCall("carol", carol.joinUrl);
  await eventually("carol is told she is not invited", async () => /You are not invited to this room/.test(await c.textContent("#notice")));
  assert.equal(await c.isVisible("#call"), false);

  // A room that has ended.
  await server.api("POST", "/v1/rooms", { id: "e2e-brief", validUntil: new Date(now + 2500).toISOString(), participants: { dave: {} } });
  const dave = await server.api("POST", "/v1/rooms/e2e-brief/tokens", { userId: "dave" });
  await new Promise((r) => setTimeout(r, Math.max(0, now + 3000 - Date.now())));
  const d = await openCall("dave", dave.joinUrl);
  await eventually("dave is told the room has ended", async () => /This room has ended/.test(await d.textContent("#notice")));
  assert.match(await d.textContent("#notice"), /This room closed on/);

  // A room that opens later: the page says when, in the user's words.
  const opens = new Date(now + 3 * 86400_000);
  await server.api("POST", "/v1/rooms", { id: "e2e-later", validFrom: opens.toISOString(), participants: { erin: {} } });
  const erin = await server.api("POST", "/v1/rooms/e2e-later/tokens", { userId: "erin" });
  const e = await openCall("erin", erin.joinUrl);
  await eventually("erin is told when the room opens", async () => /This room opens on/.test(await e.textContent("#notice")));
  const month = opens.toLocaleDateString("en-US", { month: "long" });
  assert.match(await e.textContent("#notice"), new RegExp(`${month}`));

  // A garbled link.
  const f = await open("garbled", `${server.url}/join#token=not-a-token`);
  await eventually("a garbled link is refused", async () => /This link does not work/.test(await f.textContent("#notice")));
  // No token at all.
  const g = await open("no-token", `${server.url}/join`);
  await eventually("a link without a token is explained", async () => /No invite in this link/.test(await g.textContent("#notice")));
});

scenario("the README's ten-line page joins a call and shows the other person's video", async () => {
  await server.api("POST", "/v1/rooms", { id: "e2e-hello", participants: { gina: { role: "presenter" }, hank: {} } });
  const gina = await server.api("POST", "/v1/rooms/e2e-hello/tokens", { userId: "gina" });
  const hank = await server.api("POST", "/v1/rooms/e2e-hello/tokens", { userId: "hank" });
  const g = await open("gina-hello", `${server.url}/examples/hello.html#token=${gina.token}`);
  const h = await open("hank-hello", `${server.url}/examples/hello.html#token=${hank.token}`);
  for (const [page, other] of [[g, "hank"], [h, "gina"]]) {
    await eventually(`${page.__name} plays ${other}'s video`, () =>
      page.evaluate(() => [...document.querySelectorAll("video")].some((v) => v.videoWidth > 0 && v.currentTime > 0)), 30_000);
    await eventually(`${page.__name} plays ${other}'s audio`, async () => {
      const n = await page.locator("audio").count();
      return n === 1 || `${n} audio elements`;
    });
  }
});
