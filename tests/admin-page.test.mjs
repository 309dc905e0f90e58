// The admin page at a desktop and a phone width: signed in is plainly said (the key
// field goes away), and a long room name, id and roster fit: nothing widens the page.
import assert from "node:assert/strict";
import { eventually, browserSuite } from "./lib/browser.mjs";

const { server, open, scenario } = browserSuite();

scenario("the admin page fits a phone and a desktop, and says when you are signed in", async () => {
  const id = "quarterly-roadmap-design-review-with-a-long-identifier";
  await server.api("POST", "/v1/rooms", {
    id, name: "Design review of the quarterly roadmap and everything after it",
    participants: { "alice.long-address@example.com": { role: "presenter" }, bob: {} },
  });
  for (const [width, height] of [[1280, 800], [390, 844]]) {
    const page = await open(`admin-${width}`, `${server.url}/admin`);
    await page.setViewportSize({ width, height });
    assert.equal(await page.isVisible("#signed-in"), false);
    await page.fill("#key", server.adminKey);
    await page.click("#key-use");
    await page.waitForSelector("#app:not([hidden])");
    assert.equal(await page.isVisible("#signed-in"), true, "signed in is said");
    assert.equal(await page.isVisible("#key"), false, "no key field once signed in");
    assert.equal(await page.isVisible("#key-forget"), true);
    await page.click(`#rooms tr[data-room="${id}"] button`);
    await page.waitForSelector('#roster tr[data-user="bob"]');
    await eventually(`nothing is wider than ${width} px`, async () => {
      const [scroll, inner] = await page.evaluate(() => [document.documentElement.scrollWidth, innerWidth]);
      return scroll <= inner || `${scroll} > ${inner}`;
    });
    // One-word button labels are never broken inside the word ("Man age").
    const broken = await page.$$eval("main button", (bs) => bs
      .filter((b) => b.offsetParent && !/\s/.test(b.textContent.trim()))
      .filter((b) => b.clientHeight > 2 * parseFloat(getComputedStyle(b).lineHeight))
      .map((b) => b.textContent));
    assert.deepEqual(broken, []);
  }
});
