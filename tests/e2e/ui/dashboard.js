// dashboard.js: drive the drover dashboard in headless Chromium (Debian's
// chromium through playwright-core) against a real droverd, for
// tests/e2e/dashboard.sh. It checks, in order:
//   1. /ui/ loads (no script errors) and the event stream goes live;
//   2. the fleet table shows every agent in AGENTS as connected;
//   3. deployment DEPLOYMENT shows as running and its host progress grows
//      while the page is live (polling is off then: the events did it);
//   4. a click on pause pauses it, as the API confirms; resume resumes it;
//   5. when it awaits promotion, a click on promote lets it finish, and the
//      page shows it succeeded;
//   6. its analysis table shows the release's key metrics against the
//      previous release's, as GET /v1/deployments/ID/baseline has them.
// Environment: PLAYWRIGHT_DIR, DROVER_URL, DROVER_TOKEN (deployer),
// DEPLOYMENT, AGENTS (space-separated), OUT_DIR (screenshots on failure).
"use strict";

const fs = require("fs");
const os = require("os");
const path = require("path");
const { chromium } = require(path.join(process.env.PLAYWRIGHT_DIR, "node_modules", "playwright-core"));

const URL = process.env.DROVER_URL;
const TOKEN = process.env.DROVER_TOKEN;
const DEP = process.env.DEPLOYMENT;
if (!DEP) throw new Error("DEPLOYMENT is not set");
const AGENTS = (process.env.AGENTS || "").split(/\s+/).filter(Boolean);
const OUT = process.env.OUT_DIR || os.tmpdir();
const FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync"];

let checks = 0;
const ok = (msg) => console.log("ok " + ++checks + " - dashboard: " + msg);

async function api(method, p) {
  const r = await fetch(URL + p, { method, headers: { Authorization: "Bearer " + TOKEN } });
  const body = await r.json().catch(() => null);
  if (!r.ok) throw new Error(method + " " + p + ": HTTP " + r.status + " " + JSON.stringify(body));
  return body;
}

// Poll fn until it returns a truthy value (bounded).
async function until(what, seconds, fn) {
  const end = Date.now() + seconds * 1000;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e.message;
    }
    if (Date.now() > end) throw new Error("timed out after " + seconds + " s waiting for " + what + " (last: " + last + ")");
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function depState() {
  return (await api("GET", "/v1/deployments/" + encodeURIComponent(DEP))).state;
}

// Hosts succeeded in the page's view of the deployment (sum over services).
async function doneOnPage(page, card) {
  return page.$$eval(card + " .service", (els) => els.reduce((n, e) => n + Number(e.dataset.done || 0), 0));
}

async function run(page) {
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  const card = '.deployment[data-id="' + DEP + '"]';

  // "/ui/" (with the slash people type) serves the dashboard as "/ui" does.
  await page.goto(URL + "/ui/#token=" + TOKEN, { waitUntil: "load" });
  await page.waitForSelector("header h1");
  if (page.url().includes("token=")) throw new Error("the token stayed in the address bar");
  await page.waitForSelector("#conn.on", { timeout: 15000 });
  ok("/ui/ loaded from droverd and the event stream is live");

  for (const id of AGENTS)
    await page.waitForSelector('#agents tr[data-agent="' + id + '"][data-state="connected"]', { timeout: 20000 });
  ok("the fleet shows " + AGENTS.length + " connected agents (" + AGENTS.join(", ") + ")");

  await page.waitForSelector(card + '[data-state="running"] .service', { timeout: 60000 });
  const before = await doneOnPage(page, card);
  const after = await until("host progress on the page", 90, async () => {
    const n = await doneOnPage(page, card);
    return n > before ? n : 0;
  });
  if (!(await page.$("#conn.on"))) throw new Error("the stream was not live while progress came in");
  const hostEvents = await page.$$eval('#events li[data-deployment="' + DEP + '"]', (els) => els.length);
  if (hostEvents === 0) throw new Error("no events of " + DEP + " in the event list");
  ok("running deployment " + DEP + ": hosts done went " + before + " -> " + after +
     " from the event stream (" + hostEvents + " events listed)");

  await page.click(card + ' button[data-verb="pause"]:not([disabled])');
  await until("state paused through the API", 15, async () => (await depState()) === "paused");
  await page.waitForSelector(card + '[data-state="paused"]', { timeout: 10000 });
  ok("a click on pause paused it (the API says paused; so does the page)");

  await page.click(card + ' button[data-verb="resume"]:not([disabled])');
  await until("state no longer paused", 15, async () => (await depState()) !== "paused");
  ok("a click on resume resumed it (API state " + (await depState()) + ")");

  await page.waitForSelector(card + '[data-state="awaiting_promotion"]', { timeout: 120000 });
  await page.click(card + ' button[data-verb="promote"]:not([disabled])');
  await page.waitForSelector(card + '[data-state="succeeded"]', { timeout: 120000 });
  const final = await depState();
  if (final !== "succeeded") throw new Error("the page says succeeded, the API says " + final);
  ok("awaiting promotion, a click on promote let it finish: succeeded");

  // The analysis: v2's key metrics against v1's, as the API has them.
  const row = card + ' table.analysis tr[data-kind="baseline"][data-name="api-gateway/requests"]';
  await page.waitForSelector(row, { timeout: 15000 });
  const shown = await page.textContent(row);
  if (!/[0-9.]+ req\/s \(v1: [0-9.]+ req\/s, [+-][0-9]+ %\)/.test(shown))
    throw new Error("the baseline row does not compare with v1: " + shown);
  const apiBase = await api("GET", "/v1/deployments/" + encodeURIComponent(DEP) + "/baseline");
  const m = (apiBase.metrics || []).find((x) => x.metric === "requests");
  if (!apiBase.recorded || !m || !shown.includes(m.text))
    throw new Error("the page and GET .../baseline differ: " + shown + " | " + JSON.stringify(apiBase));
  const kinds = await page.$$eval(card + " table.analysis tr[data-kind]", (els) => els.map((e) => e.dataset.name));
  if (!kinds.includes("api-gateway/p95-latency")) throw new Error("no p95-latency row: " + kinds);
  ok("the analysis table shows v2's key metrics against v1's: " + shown.replace(/\s+/g, " ").trim());

  // The timeline: phases, a bar per host, the canary steps marked.
  await page.click(card + " button.show-timeline");
  const tl = 'svg.timeline[data-deployment="' + DEP + '"]';
  await page.waitForSelector(tl + ' rect.tl-bar[data-row="project-coordinator@core-1"]', { timeout: 15000 });
  const bars = await page.$$eval(tl + " rect.tl-bar", (els) => els.map((e) => e.dataset.row));
  for (const h of ["core-1", "core-2", "core-3"])
    if (!bars.includes("project-coordinator@" + h)) throw new Error("no timeline bar for " + h + ": " + bars);
  for (const h of ["ui-1", "ui-2"])
    if (!bars.includes("api-gateway@" + h)) throw new Error("no timeline bar for api-gateway@" + h);
  if (!bars.includes("phases")) throw new Error("no phases on the timeline");
  // Bars as long as their steps took (a page style once forced them all to one width).
  const widths = await page.$$eval(tl + " rect.tl-bar", (els) => els.map((e) => Math.round(e.getBoundingClientRect().width)));
  if (new Set(widths).size < 3) throw new Error("timeline bars do not follow time: widths " + widths);
  const steps = await page.$$eval(tl + ' [data-mark="step"]', (els) => els.length);
  if (steps < 2) throw new Error("batches and canary steps not marked on the timeline (" + steps + ")");
  if (process.env.SCREENSHOT)
    await page.locator(tl).screenshot({ path: process.env.SCREENSHOT });
  ok("timeline: phases, " + bars.length + " bars (every host), " + steps + " batch/step marks");

  // Events as sentences, filterable.
  const texts = await page.$$eval("#events li", (els) => els.map((e) => e.textContent));
  const raw = texts.filter((t) => t.includes('{"'));
  if (raw.some((t) => !t.includes("traffic"))) throw new Error("events still printed as JSON: " + raw[0]);
  if (!texts.some((t) => /Host core-2: project-coordinator v1 \u2192 v2 succeeded in/.test(t)))
    throw new Error("no sentence for core-2's host event: " + texts.slice(0, 5).join(" | "));
  await page.fill("#event-filter", "core-2");
  const filtered = await page.$$eval("#events li", (els) => els.map((e) => e.textContent));
  if (!filtered.length || filtered.some((t) => !t.includes("core-2")))
    throw new Error("the filter left other events: " + filtered.slice(0, 3).join(" | "));
  await page.fill("#event-filter", "");
  ok("events read as sentences (" + texts.length + "), the filter keeps core-2's " + filtered.length);

  // Counts spelled right.
  const body = await page.textContent("main");
  if (/\b1 hosts\b|\b1 services\b/.test(body)) throw new Error("a count is spelled '1 hosts'");

  // Host drill-down: releases, drift, the log tail.
  await page.click('#agents tr[data-agent="core-1"]');
  await page.waitForSelector('#host-panel table.releases tr[data-service="project-coordinator"]', { timeout: 15000 });
  await until("core-1's log tail", 20, async () =>
    ((await page.textContent('#host-panel .logtail[data-service="project-coordinator"] pre')) || "").includes("berry-svc"));
  ok("host drill-down of core-1: its releases, drift and the tail of project-coordinator's output");

  if (errors.length) throw new Error("script errors on the page: " + errors.join("; "));
  ok("no script errors");
}

(async () => {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), "drover-chromium-"));
  let ctx, page;
  try {
    ctx = await chromium.launchPersistentContext(profile, {
      executablePath: "/usr/bin/chromium", headless: true, args: FLAGS, timeout: 60000,
    });
    page = await ctx.newPage();
    page.setDefaultTimeout(30000);
    await run(page);
  } catch (e) {
    console.error("FAIL: dashboard: " + e.message);
    if (page) {
      await page.screenshot({ path: path.join(OUT, "dashboard-failure.png"), fullPage: true }).catch(() => {});
      fs.writeFileSync(path.join(OUT, "dashboard-failure.html"), await page.content().catch(() => ""));
      console.error("FAIL: page saved in " + OUT + "/dashboard-failure.{png,html}");
    }
    process.exitCode = 1;
  } finally {
    if (ctx) await ctx.close().catch(() => {});
    fs.rmSync(profile, { recursive: true, force: true });
  }
})();
