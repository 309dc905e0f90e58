// convene-admin, the typed admin client: its generated types match the live server's
// OpenAPI document (so they cannot drift), it drives a real server, refusals arrive as
// ConveneAdminError with the envelope's fields, and verifyWebhook accepts what the
// server signs and nothing else.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { startServer } from "./lib/server.mjs";
import { createAdminClient, ConveneAdminError, verifyWebhook } from "../admin-client/dist/index.js";

const ROOT = resolve(import.meta.dirname, "..");
let server;

before(async () => {
  server = await startServer();
});

after(async () => {
  await server?.stop();
});

test("the admin client's types are generated from the live OpenAPI document", async () => {
  const doc = await (await fetch(`${server.url}/v1/openapi.json`)).text();
  const dir = mkdtempSync(join(tmpdir(), "convene-openapi-"));
  writeFileSync(join(dir, "openapi.json"), doc);
  execFileSync(join(ROOT, "node_modules/.bin/openapi-typescript"), [join(dir, "openapi.json"), "-o", join(dir, "schema.ts")], { stdio: "pipe" });
  const fresh = readFileSync(join(dir, "schema.ts"), "utf8");
  const committed = readFileSync(join(ROOT, "admin-client/src/schema.ts"), "utf8");
  assert.ok(
    fresh === committed,
    "admin-client/src/schema.ts is out of date with the server's API: run `npm run generate -w convene-admin`",
  );
});

test("the admin client drives rooms, rosters, tokens, sessions and webhooks", async () => {
  const admin = createAdminClient({ url: server.url, key: server.adminKey });
  const room = await admin.rooms.create({ id: "client-room", name: "From Node", participants: { ann: { role: "presenter" } } });
  assert.equal(room.name, "From Node");
  const again = await admin.rooms.create({ name: "once" }, { repeatabilityRequestId: "node-1" });
  assert.deepEqual(await admin.rooms.create({ name: "once" }, { repeatabilityRequestId: "node-1" }), again);
  const updated = await admin.rooms.update("client-room", { name: "Renamed" }, { ifMatch: room.version });
  assert.equal(updated.version, room.version + 1);
  await assert.rejects(admin.rooms.update("client-room", { name: "Stale" }, { ifMatch: room.version }), (e) => {
    assert.ok(e instanceof ConveneAdminError);
    assert.equal(e.status, 412);
    assert.equal(e.code, "PreconditionFailed");
    assert.equal(e.number, 100017);
    return true;
  });
  const changes = await admin.roster.update("client-room", { bo: { role: "attendee" }, ann: null });
  assert.deepEqual(changes.removed, ["ann"]);
  assert.deepEqual((await admin.roster.list("client-room")).value.map((e) => e.userId), ["bo"]);
  const token = await admin.tokens.mint("client-room", { userId: "bo" });
  assert.match(token.joinUrl, /\/join#token=/);
  await admin.tokens.revoke("client-room", token.tokenId);
  assert.deepEqual(await admin.members.list("client-room"), []);
  assert.ok(Array.isArray(await admin.sessions.list()));
  assert.ok((await admin.rooms.all()).some((r) => r.id === "client-room"));
  await assert.rejects(admin.rooms.get("no-such-room"), (e) => e.code === "RoomNotFound" && e.status === 404);
  const wrong = createAdminClient({ url: server.url, key: "not-the-key-at-all" });
  await assert.rejects(wrong.sessions.list(), (e) => e.code === "Unauthenticated");

  // A webhook to a receiver here: the server's signature verifies; a changed body does not.
  const secret = "node-webhook-secret-0123456789";
  const received = [];
  const receiver = createServer((req, res) => {
    let body = "";
    req.on("data", (c) => { body += c; });
    req.on("end", () => { received.push({ header: req.headers["convene-signature"], body }); res.writeHead(204).end(); });
  });
  await new Promise((ok) => receiver.listen(0, "127.0.0.1", ok));
  const hook = await admin.webhooks.create({ url: `http://127.0.0.1:${receiver.address().port}/hook`, secret, events: ["room.*"] });
  assert.equal(hook.secret, secret);
  await admin.rooms.delete("client-room");
  for (let i = 0; i < 100 && received.length === 0; i++) await new Promise((ok) => setTimeout(ok, 50));
  receiver.close();
  assert.equal(received.length, 1, "room.deleted arrives");
  const { header, body } = received[0];
  assert.equal(JSON.parse(body).type, "room.deleted");
  assert.equal(await verifyWebhook(secret, header, body), true);
  assert.equal(await verifyWebhook(secret, header, body.replace("deleted", "created")), false);
  assert.equal(await verifyWebhook("another-secret-0123456789", header, body), false);
  assert.equal(await verifyWebhook(secret, header, body, { now: Date.now() / 1000 + 3600 }), false, "too old");
  assert.deepEqual((await admin.webhooks.list()).map((w) => w.id), [hook.id]);
  await admin.webhooks.delete(hook.id);
});
