// approve.js: the dashboard's approval buttons in headless Chromium (Debian's
// chromium through playwright-core) against a real droverd, for
// tests/e2e/approve_ui.sh. Deployment DEPLOYMENT awaits approval in an
// environment that needs one approval (role approver). It checks, in order:
//   1. signed in as REQUESTER (the token that started it, an approver too),
//      a click on approve is refused (four eyes): the page shows the API's
//      error and the deployment still awaits approval;
//   2. signed in as APPROVER, a comment and a click on approve start it:
//      the API says approved by APPROVER with that comment, and the page
//      shows "approved by";
//   3. DENIED (another deployment awaiting approval): a click on deny
//      with a reason ends it aborted, "denied by APPROVER: REASON".
// Environment: PLAYWRIGHT_DIR, DROVER_URL, REQUESTER_TOKEN, APPROVER_TOKEN,
// APPROVER (its name), DEPLOYMENT, DENIED, OUT_DIR (screenshots on failure).
"use strict";

const fs = require("fs");
const os = require("os");
const path = require("path");
const { chromium } = require(path.join(process.env.PLAYWRIGHT_DIR, "node_modules", "playwright-core"));

const URL = process.env.DROVER_URL;
const DEP = process.env.DEPLOYMENT;
const DENIED = process.env.DENIED;
const APPROVER = process.env.APPROVER;
// A denial before the start aborts; at a canary step it rolls back.
const DENIED_STATE = process.env.DENIED_STATE || "aborted";
const DENIED_REASON = process.env.DENIED_REASON || "denied by " + APPROVER + ": not from here";
if (!DEP || !DENIED || !APPROVER) throw new Error("DEPLOYMENT, DENIED and APPROVER must be set");
const OUT = process.env.OUT_DIR || os.tmpdir();
const FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync"];

let checks = 0;
const ok = (msg) => console.log("ok " + ++checks + " - approve ui: " + msg);

async function get(id) {
  const r = await fetch(URL + "/v1/deployments/" + encodeURIComponent(id),
    { headers: { Authorization: "Bearer " + process.env.APPROVER_TOKEN } });
  if (!r.ok) throw new Error("GET " + id + ": HTTP " + r.status);
  return r.json();
}

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

// The first time through the fragment; then the sign-in form (a new
// fragment on the same page would not load it again).
async function signIn(page, tok, first) {
  if (first) await page.goto(URL + "/ui/#token=" + tok, { waitUntil: "load" });
  else {
    await page.fill("#token", tok);
    await page.press("#token", "Enter");
  }
  await page.waitForSelector("#conn.on", { timeout: 15000 });
}

async function run(page) {
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  const card = (id) => '.deployment[data-id="' + id + '"]';

  await signIn(page, process.env.REQUESTER_TOKEN, true);
  await page.waitForSelector(card(DEP) + ' .approval[data-approval="waiting"] button[data-verb="approve"]');
  await page.click(card(DEP) + ' button[data-verb="approve"]');
  const msg = await until("the four-eyes refusal on the page", 15, async () => {
    const t = await page.textContent("#error").catch(() => "");
    return t && t.includes("four eyes") ? t : null;
  });
  if ((await get(DEP)).state !== "awaiting_approval") throw new Error("the refused click changed the deployment");
  ok("the requester's click on approve is refused: \"" + msg.trim().slice(0, 100) + "\"");

  await signIn(page, process.env.APPROVER_TOKEN, false);
  await page.waitForSelector(card(DEP) + ' .approval[data-approval="waiting"] input.approval-comment');
  await page.fill(card(DEP) + " input.approval-comment", "ok from the dashboard");
  await page.click(card(DEP) + ' button[data-verb="approve"]');
  // at a canary step, the round (the last of step_approvals) keeps it
  const approvalOf = (x) => (x.step_approvals ? x.step_approvals[x.step_approvals.length - 1] : x.approval);
  const d = await until("the approval in the API", 15, async () => {
    const x = await get(DEP);
    return approvalOf(x) && approvalOf(x).approvals.length === 1 ? x : null;
  });
  const a = approvalOf(d).approvals[0];
  if (a.actor !== APPROVER || a.comment !== "ok from the dashboard")
    throw new Error("approval recorded as " + JSON.stringify(a));
  await until("the deployment to leave awaiting_approval", 30, async () => (await get(DEP)).state !== "awaiting_approval");
  await page.waitForSelector(card(DEP) + ' li[data-approver="' + APPROVER + '"]');
  ok("the approver's click (with a comment) approved it: " + a.actor + ": " + a.comment + "; state " + (await get(DEP)).state);

  await page.fill(card(DENIED) + " input.approval-comment", "not from here");
  await page.click(card(DENIED) + ' button[data-verb="deny"]');
  const n = await until("the denial", 60, async () => {
    const x = await get(DENIED);
    return x.state === DENIED_STATE ? x : null;
  });
  if (n.reason !== DENIED_REASON) throw new Error("denial reason: " + n.reason);
  await page.waitForSelector(card(DENIED) + ' li[data-denier="' + APPROVER + '"]');
  ok("a click on deny ended " + DENIED + " " + DENIED_STATE + ": " + n.reason);

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
    console.error("FAIL: approve ui: " + e.message);
    if (page) {
      await page.screenshot({ path: path.join(OUT, "approve-failure.png"), fullPage: true }).catch(() => {});
      fs.writeFileSync(path.join(OUT, "approve-failure.html"), await page.content().catch(() => ""));
      console.error("FAIL: page saved in " + OUT + "/approve-failure.{png,html}");
    }
    process.exitCode = 1;
  } finally {
    if (ctx) await ctx.close().catch(() => {});
    fs.rmSync(profile, { recursive: true, force: true });
  }
})();
