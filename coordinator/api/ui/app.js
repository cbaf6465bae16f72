// drover dashboard: the fleet, deployments with live progress from the event
// stream, and operator buttons. Plain JavaScript, no build step; served by
// droverd from files compiled into the binary. It reads the API's JSON as
// docs/api.md describes it ("Deployments", GET /v1/agents).
//
// Live updates: one server-sent event stream (GET /v1/events, read with
// fetch so the token travels in a header, resumed with Last-Event-ID). An
// event about a deployment re-reads that deployment; an agent event re-reads
// the fleet. Polling every 5 s happens only while the stream is down.
"use strict";

const $ = (sel) => document.querySelector(sel);
const VERBS = ["pause", "resume", "promote", "abort", "rollback"];
const FINAL = new Set(["succeeded", "failed", "rolled_back", "aborted"]);
const HOST_DONE = new Set(["succeeded", "failed", "rolled_back"]);
const SHOWN_MAX = 10; // deployments listed
const EVENTS_MAX = 200;

let token = sessionStorage.getItem("drover.token") || "";
let live = false;
let streamAbort = null;
let pollTimer = null;
let fleetTimer = null;
const deployments = new Map(); // id -> the full deployment object
const pending = new Map(); // debounce timers: key -> timeout id
let order = []; // ids, newest first

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

function stateBadge(s) {
  return el("span", { class: "state s-" + (s || "unknown") }, (s || "?").replace(/_/g, " "));
}

function showError(msg) {
  const p = $("#error");
  p.textContent = msg || "";
  p.hidden = !msg;
}

async function api(method, path) {
  const r = await fetch(path, { method, headers: { Authorization: "Bearer " + token } });
  const text = await r.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
  if (!r.ok) {
    const err = data && data.error;
    const msg = err ? err.message || err.code : r.statusText;
    throw new Error(method + " " + path + ": " + r.status + " " + msg);
  }
  return data;
}

function ago(ms) {
  if (!ms) return "never";
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (s < 60) return s + "s ago";
  if (s < 3600) return Math.round(s / 60) + "m ago";
  return Math.round(s / 3600) + "h ago";
}

function duration(ms) {
  if (ms < 0 || ms === undefined) return "";
  if (ms < 1000) return ms + "ms";
  if (ms < 60000) return (ms / 1000).toFixed(1) + "s";
  const m = Math.floor(ms / 60000), s = Math.floor((ms % 60000) / 1000);
  return m + "m" + String(s).padStart(2, "0") + "s";
}

function span(o) {
  if (!o.started_ms) return -1;
  return (o.finished_ms || Date.now()) - o.started_ms;
}

// ------------------------------------------------------------------ fleet

function renderAgents(list) {
  const tb = $("#agents tbody");
  tb.replaceChildren();
  for (const a of list) {
    const labels = Object.entries(a.labels || {}).map(([k, v]) => k + "=" + v).join(" ");
    const rel = (a.releases || []).map((r) =>
      r.service + "@" + (r.version || "?") + (r.healthy === false ? " (unhealthy)" : ""));
    tb.append(el("tr", { "data-agent": a.id, "data-state": a.state },
      el("td", {}, a.id), el("td", {}, stateBadge(a.state)),
      el("td", {}, labels), el("td", {}, ago(a.last_seen_ms)),
      el("td", {}, a.agent_version || ""), el("td", {}, rel.join(", "))));
  }
  $("#fleet-count").textContent = list.length ? "(" + list.length + ")" : "";
}

async function refreshAgents() {
  const a = await api("GET", "/v1/agents");
  renderAgents((a && a.agents) || []);
}

// ------------------------------------------------------------ deployments

function hostCounts(svc) {
  const c = { total: 0, ok: 0, failed: 0, done: 0 };
  for (const h of svc.hosts || []) {
    c.total++;
    if (h.state === "succeeded") c.ok++;
    if (h.state === "failed") c.failed++;
    if (HOST_DONE.has(h.state)) c.done++;
  }
  return c;
}

function strategyText(svc) {
  const parts = [svc.strategy || ""];
  if (svc.strategy === "rolling" && svc.batches) parts.push("batch " + svc.batch + "/" + svc.batches);
  if (svc.canary_steps) parts.push("step " + svc.canary_step + "/" + svc.canary_steps);
  if (svc.strategy === "canary" || svc.strategy === "blue-green") parts.push("weight " + (svc.weight || 0) + "%");
  return parts.join(" ");
}

function bar(done, total) {
  const pct = total ? Math.round((100 * done) / total) : 0;
  return el("span", { class: "bar", title: pct + "%" }, el("span", { style: "width:" + pct + "%" }));
}

function renderHost(h) {
  const title = (h.from_version || "-") + " \u2192 " + (h.to_version || "-") +
    (span(h) >= 0 ? " (" + duration(span(h)) + ")" : "") + (h.message ? ": " + h.message : "");
  return el("span", { class: "host", "data-host": h.id, "data-state": h.state, title },
    h.id + " ", stateBadge(h.state));
}

function renderService(svc) {
  const c = hostCounts(svc);
  return el("div", { class: "service", "data-service": svc.name, "data-state": svc.state,
                     "data-done": c.ok, "data-total": c.total },
    el("strong", {}, svc.name), " ", stateBadge(svc.state), " ", bar(c.done, c.total),
    el("span", { class: "count" }, " " + c.ok + "/" + c.total + " hosts" +
      (c.failed ? ", " + c.failed + " failed" : "")),
    " ", el("span", { class: "muted" }, strategyText(svc)),
    el("div", { class: "hosts" }, ...(svc.hosts || []).map(renderHost)));
}

function renderTier(t) {
  const svcs = t.services || [];
  const done = svcs.filter((s) => s.state === "done").length;
  return el("div", { class: "tier", "data-tier": t.name, "data-state": t.state },
    el("em", {}, "tier " + t.name), " ", stateBadge(t.state), " ", bar(done, svcs.length),
    " " + done + "/" + svcs.length + " services",
    ...svcs.map(renderService));
}

function renderHooks(hooks) {
  if (!hooks || !hooks.length) return null;
  return el("div", { class: "hooks" }, ...hooks.map((h) =>
    el("div", { class: "hook", "data-hook": h.phase + "/" + h.name, "data-state": h.state },
      el("em", {}, h.phase + " " + h.name), " on " + h.host + " ", stateBadge(h.state),
      FINAL.has(h.state) || h.state === "succeeded" || h.state === "failed"
        ? " exit " + h.exit_code + " " + duration(span(h)) : "",
      h.state === "failed" && h.output_tail ? el("pre", {}, h.output_tail) : null)));
}

function verbEnabled(d, verb) {
  if (FINAL.has(d.state)) return false;
  if (verb === "resume") return d.state === "paused";
  if (verb === "pause") return d.state !== "paused" && d.state !== "rolling_back";
  return true;
}

function renderDeployment(d) {
  const actions = el("span", { class: "actions" }, ...VERBS.map((v) =>
    el("button", { "data-verb": v, disabled: !verbEnabled(d, v), onclick: () => act(d.id, v) }, v)));
  const took = d.created_ms ? duration((d.finished_ms || Date.now()) - d.created_ms) : "";
  return el("div", { class: "deployment", "data-id": d.id, "data-state": d.state, "data-phase": d.phase },
    el("div", { class: "head" },
      el("strong", {}, (d.deployment || "") + " " + (d.version || "")),
      el("code", {}, d.id), stateBadge(d.state),
      d.phase ? el("span", { class: "muted" }, "phase " + d.phase) : null,
      el("span", { class: "muted" }, took + (d.actor ? " by " + d.actor : "")),
      d.failed_hosts ? el("span", { class: "error" }, d.failed_hosts + " hosts failed") : null,
      actions),
    d.reason ? el("p", { class: "reason" }, d.reason) : null,
    renderHooks((d.hooks || []).filter((h) => h.phase !== "post")),
    ...(d.tiers || []).map(renderTier),
    renderHooks((d.hooks || []).filter((h) => h.phase === "post")));
}

function renderDeployments() {
  const box = $("#deployments");
  if (!order.length) {
    box.replaceChildren(el("p", { class: "muted" }, "No deployments yet."));
    return;
  }
  box.replaceChildren(...order.filter((id) => deployments.has(id))
    .map((id) => renderDeployment(deployments.get(id))));
}

async function refreshDeployment(id) {
  const d = await api("GET", "/v1/deployments/" + encodeURIComponent(id));
  deployments.set(d.id, d);
  if (!order.includes(d.id)) order = [d.id, ...order].slice(0, SHOWN_MAX);
  renderDeployments();
}

async function refreshDeployments() {
  const list = await api("GET", "/v1/deployments?limit=" + SHOWN_MAX);
  const items = (list && list.deployments) || [];
  order = items.map((d) => d.id);
  // Full objects for the unfinished ones and the newest; summaries otherwise.
  await Promise.all(items.map((d, i) => (!FINAL.has(d.state) || i === 0)
    ? api("GET", "/v1/deployments/" + encodeURIComponent(d.id)).then((full) => deployments.set(d.id, full))
    : Promise.resolve(deployments.set(d.id, Object.assign({}, deployments.get(d.id) || {}, d)))));
  renderDeployments();
}

async function act(id, verb) {
  try {
    const d = await api("POST", "/v1/deployments/" + encodeURIComponent(id) + "/" + verb);
    if (d && d.id) deployments.set(d.id, d);
    renderDeployments();
    showError("");
  } catch (e) {
    showError(e.message);
  }
}

async function refreshAll() {
  try {
    await Promise.all([refreshAgents(), refreshDeployments()]);
    showError("");
  } catch (e) {
    showError(e.message);
  }
}

// ----------------------------------------------------------------- events

// Run fn once per key after a quiet 150 ms (bursts of events, one read).
function debounce(key, fn) {
  if (pending.has(key)) return;
  pending.set(key, setTimeout(() => {
    pending.delete(key);
    fn().catch((e) => showError(e.message));
  }, 150));
}

function addEvent(ev) {
  const data = ev.data && Object.keys(ev.data).length ? " " + JSON.stringify(ev.data) : "";
  const li = el("li", { "data-kind": ev.kind, "data-deployment": ev.deployment_id || null },
    new Date(ev.at_ms || Date.now()).toISOString().slice(11, 19) + " " + (ev.kind || "event") +
    (ev.deployment_id ? " " + ev.deployment_id : "") + (ev.agent_id ? " " + ev.agent_id : "") + data);
  const ol = $("#events");
  ol.prepend(li);
  while (ol.children.length > EVENTS_MAX) ol.lastChild.remove();
}

function onEvent(ev) {
  addEvent(ev);
  if (ev.deployment_id) debounce("d:" + ev.deployment_id, () => refreshDeployment(ev.deployment_id));
  if (ev.agent_id || (ev.kind || "").startsWith("agent")) debounce("agents", refreshAgents);
}

function setLive(on) {
  live = on;
  $("#conn").textContent = on ? "live" : "reconnecting";
  $("#conn").className = "badge " + (on ? "on" : "off");
  if (on && pollTimer) {
    clearInterval(pollTimer);
    pollTimer = null;
  } else if (!on && !pollTimer) {
    pollTimer = setInterval(refreshAll, 5000);
  }
}

// Parse one "event" block of the stream.
function parseBlock(block, state) {
  let data = "";
  for (const line of block.split("\n")) {
    if (line.startsWith("id:")) state.lastId = line.slice(3).trim();
    else if (line.startsWith("data:")) data += line.slice(5).replace(/^ /, "");
  }
  if (!data) return;
  try { onEvent(JSON.parse(data)); } catch (e) { addEvent({ kind: "unreadable event" }); }
}

async function stream() {
  if (streamAbort) streamAbort.abort();
  const abort = (streamAbort = new AbortController());
  const state = { lastId: "" };
  for (let attempt = 0; !abort.signal.aborted; attempt++) {
    try {
      const headers = { Authorization: "Bearer " + token, Accept: "text/event-stream" };
      if (state.lastId) headers["Last-Event-ID"] = state.lastId;
      const r = await fetch("/v1/events?tail=50", { headers, signal: abort.signal });
      if (!r.ok) throw new Error("events: " + r.status);
      setLive(true);
      attempt = 0;
      if (state.lastId) refreshAll(); // catch up on what the gap hid
      const reader = r.body.getReader();
      const dec = new TextDecoder();
      let buf = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += dec.decode(value, { stream: true }).replace(/\r\n/g, "\n");
        let i;
        while ((i = buf.indexOf("\n\n")) >= 0) {
          parseBlock(buf.slice(0, i), state);
          buf = buf.slice(i + 2);
        }
      }
    } catch (e) {
      if (abort.signal.aborted) return;
    }
    setLive(false);
    await new Promise((res) => setTimeout(res, Math.min(5000, 250 * 2 ** Math.min(attempt, 5))));
  }
}

function start() {
  if (!token) {
    showError("Paste an API token (viewer to watch, deployer to act).");
    return;
  }
  setLive(false);
  refreshAll();
  stream();
  // "last seen" moves without events: re-read the fleet now and then.
  if (!fleetTimer) fleetTimer = setInterval(() => refreshAgents().catch((e) => showError(e.message)), 30000);
}

$("#login").addEventListener("submit", (e) => {
  e.preventDefault();
  token = $("#token").value.trim();
  sessionStorage.setItem("drover.token", token);
  start();
});

// A token may also arrive in the fragment (#token=...), which is never sent
// to the server; it is moved to session storage and removed from the URL.
const frag = new URLSearchParams(location.hash.slice(1));
if (frag.get("token")) {
  token = frag.get("token");
  sessionStorage.setItem("drover.token", token);
  history.replaceState(null, "", location.pathname);
}
start();
