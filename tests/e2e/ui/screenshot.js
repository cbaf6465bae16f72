// screenshot.js: the dashboard's timeline of one deployment as a PNG
// (demo.sh with DEMO_SCREENSHOT=FILE: release 3's, kept in docs/).
// Environment: PLAYWRIGHT_DIR, DROVER_URL, DROVER_TOKEN, DEPLOYMENT, OUT.
"use strict";
const fs = require("fs");
const os = require("os");
const path = require("path");
const { chromium } = require(path.join(process.env.PLAYWRIGHT_DIR, "node_modules", "playwright-core"));

const FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync"];

(async () => {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), "drover-chromium-"));
  let ctx;
  try {
    ctx = await chromium.launchPersistentContext(profile, {
      executablePath: "/usr/bin/chromium", headless: true, args: FLAGS, timeout: 60000,
      viewport: { width: 1280, height: 900 },
    });
    const page = await ctx.newPage();
    await page.goto(process.env.DROVER_URL + "/ui/#token=" + process.env.DROVER_TOKEN, { waitUntil: "load" });
    const card = '.deployment[data-id="' + process.env.DEPLOYMENT + '"]';
    await page.waitForSelector(card + " button.show-timeline", { timeout: 30000 });
    await page.click(card + " button.show-timeline");
    const tl = 'svg.timeline[data-deployment="' + process.env.DEPLOYMENT + '"]';
    await page.waitForSelector(tl + " rect.tl-bar", { timeout: 30000 });
    await page.locator(tl).screenshot({ path: process.env.OUT });
    console.log("screenshot of " + process.env.DEPLOYMENT + "'s timeline: " + process.env.OUT);
  } catch (e) {
    console.error("screenshot failed: " + e.message);
    process.exitCode = 1;
  } finally {
    if (ctx) await ctx.close().catch(() => {});
    fs.rmSync(profile, { recursive: true, force: true });
  }
})();
