// A live room in headless Chromium: a host, a guest who takes a free seat, a guest who
// asks for one and is approved by the host in the page, and three viewers (two invited,
// one from the public live list). Viewers see and hear the guests and cannot publish;
// the list shows the right counts; the host's topic reaches every page. Then one page
// switches rooms and leaves all, and finds the five-room limit.
import assert from "node:assert/strict";
import { eventually, browserSuite } from "./lib/browser.mjs";

const { server, open, openCall, scenario } = browserSuite();

const join = async (name, user) => {
  const t = await server.api("POST", "/v1/rooms/show/tokens", { userId: user });
  const page = await openCall(name, `${server.url}/join#token=${t.token}`);
  await eventually(`${name} joins`, async () => (await page.textContent("#state")) === "connected");
  return page;
};

/** Whether `page` shows `user`'s camera playing. */
const sees = (page, user) =>
  page.evaluate((user) => {
    const v = document.querySelector(`[data-tile="${CSS.escape(`${user}:camera`)}"] video`);
    return Boolean(v && v.videoWidth > 0 && v.currentTime > 0);
  }, user);

scenario("a live room: seats free and by application, viewers, the live list, the topic, switching rooms", async () => {
  await server.api("POST", "/v1/rooms", {
    id: "show", name: "Launch", roomType: "live", ownerId: "host", maxSeatCount: 4,
    isPublicVisible: true, joinPolicy: "public", takeSeatMode: "freeToTake",
    participants: { g1: {}, g2: {}, v1: { role: "consumer" }, v2: { role: "consumer" } },
  });
  const host = await join("host", "host");
  assert.equal(await host.isVisible("#seats-card"), true, "the seat grid shows in a live room");

  // g1 takes a free seat, then turns the camera on.
  const g1 = await join("g1", "g1");
  assert.equal(await g1.isDisabled("#cam"), true, "no camera before a seat");
  await g1.click('#seats li[data-seat="0"] button:text("Take")');
  await eventually("g1 sits on seat 1", async () => (await host.getAttribute('#seats li[data-seat="0"]', "data-user")) === "g1");
  await eventually("g1 may use the camera", async () => !(await g1.isDisabled("#cam")));
  await g1.click("#cam");
  await g1.click("#mic");

  // Seats are now given by application: g2 asks, the host approves in the page.
  await server.api("PATCH", "/v1/rooms/show", { takeSeatMode: "applyToTake" });
  const g2 = await join("g2", "g2");
  await g2.click('#seat-actions button:text("Ask for a seat")');
  await eventually("the host sees g2 waiting", () => host.isVisible('#apps li[data-applicant="g2"]'));
  await host.click('#apps li[data-applicant="g2"] button:text("Approve")');
  await eventually("g2 is told", async () => /approved/.test(await g2.textContent("#seat-note")));
  await eventually("g2 may use the camera", async () => !(await g2.isDisabled("#cam")));
  await g2.click("#cam");

  // Viewers: two invited, one from the public list.
  const v1 = await join("v1", "v1");
  const v2 = await join("v2", "v2");
  const list = await open("list", `${server.url}/live`);
  await eventually("the live list shows the room", () => list.isVisible('#rooms li[data-room="show"]'));
  await list.click('#rooms li[data-room="show"] button:text("Watch")');
  await list.fill("#name", "Walk-in");
  await list.click('#watch button:text("Watch")');
  await eventually("the walk-in joins from the list", async () => (await list.textContent("#state").catch(() => "")) === "connected");
  const v3 = list;
  for (const [name, v] of [["v1", v1], ["v2", v2], ["walk-in", v3]]) {
    await eventually(`${name} sees g1`, () => sees(v, "g1"), 30_000);
    await eventually(`${name} sees g2`, () => sees(v, "g2"), 30_000);
    assert.equal(await v.isDisabled("#cam"), true, `${name} cannot publish`);
    assert.equal(await v.isDisabled("#mic"), true, `${name} cannot publish`);
  }
  await eventually("g1's audio plays for v1", async () => (await v1.locator('audio[data-audio="g1"]').count()) === 1);

  // The list's counts: six people, two seats taken.
  const counts = await open("counts", `${server.url}/live`);
  await eventually("the list counts everyone", async () => {
    const text = await counts.textContent('#rooms li[data-room="show"] .counts').catch(() => "");
    return (/6 in the room/.test(text) && /2\/4 seats/.test(text)) || text;
  });

  // The host sets the topic; every page shows it.
  await host.fill("#topic", "Launch Q&A");
  await host.click('#topic-form button');
  for (const p of [host, g1, g2, v1, v2, v3]) {
    await eventually(`${p.__name} shows the topic`, async () => /topic: Launch Q&A/.test(await p.textContent("#room-attrs")));
  }

  // Switching rooms, then leaving all: the new room connects before the old leaves.
  for (const id of ["a-room", "b-room"]) await server.api("POST", "/v1/rooms", { id, participants: { sw: {} } });
  const ta = await server.api("POST", "/v1/rooms/a-room/tokens", { userId: "sw" });
  const tb = await server.api("POST", "/v1/rooms/b-room/tokens", { userId: "sw" });
  const sw = await open("switcher", `${server.url}/live`);
  const seq = await sw.evaluate(async ([a, b]) => {
    const { default: init, Room } = await import("/sdk/convene_sdk.js");
    await init();
    const seq = [];
    const track = (name) => ({ stateChanged: ({ state, reason }) => seq.push(`${name}:${state}${reason ? `:${reason}` : ""}`) });
    const roomA = await Room.join({ token: a, audio: false, video: false, on: track("a") });
    // A switch that fails keeps the room it started from.
    const failed = await roomA.switchTo({ token: a.slice(0, -4) + "AAAA", audio: false, video: false })
      .then(() => "switched", (e) => e.code);
    const kept = roomA.state;
    const roomB = await roomA.switchTo({ token: b, audio: false, video: false, on: track("b") });
    const left = await Room.leaveAll();
    return { seq, left, b: roomB.info.id, failed, kept };
  }, [ta.token, tb.token]);
  assert.deepEqual(seq.seq.slice(0, 2), ["a:connecting", "a:connected"]);
  assert.deepEqual(seq.seq.slice(2), ["b:connecting", "b:connected", "a:disconnected:switched", "b:disconnected:clientLeft"]);
  assert.deepEqual(seq.left, ["b-room"]);
  assert.notEqual(seq.failed, "switched");
  assert.equal(seq.kept, "connected");

  // One page is in at most five rooms at once; the sixth join says so, switching from
  // one of the five to the sixth is allowed, and leaveAll leaves the five.
  const many = [];
  for (let i = 0; i < 6; i++) {
    await server.api("POST", "/v1/rooms", { id: `r${i}`, participants: { sw: {} } });
    many.push((await server.api("POST", `/v1/rooms/r${i}/tokens`, { userId: "sw" })).token);
  }
  const limit = await sw.evaluate(async (tokens) => {
    const { Room } = await import("/sdk/convene_sdk.js");
    const rooms = [];
    for (const token of tokens.slice(0, 5)) rooms.push(await Room.join({ token, audio: false, video: false }));
    const sixth = await Room.join({ token: tokens[5], audio: false, video: false }).then(() => "joined", (e) => e.message);
    const switched = await rooms[0].switchTo({ token: tokens[5], audio: false, video: false }).then((r) => r.info.id, (e) => e.message);
    return { sixth, switched, left: (await Room.leaveAll()).sort() };
  }, many);
  assert.match(limit.sixth, /in 5 rooms already: leave one first/);
  assert.equal(limit.switched, "r5");
  assert.deepEqual(limit.left, ["r1", "r2", "r3", "r4", "r5"]);
});
