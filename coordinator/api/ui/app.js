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
const timelines = new Map(); // deployment id -> its events (the timeline is open)
const comments = new Map(); // deployment id -> the approval comment being typed
let allEvents = []; // the events pane, newest first

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

async function api(method, path, body) {
  const headers = { Authorization: "Bearer " + token };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const r = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
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

// "1 host", "2 hosts": counts spelled right.
function plural(n, word) {
  return n + " " + word + (n === 1 ? "" : "s");
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
    tb.append(el("tr", { "data-agent": a.id, "data-state": a.state, onclick: () => showHost(a.id) },
      el("td", {}, a.id), el("td", {}, stateBadge(a.state)),
      el("td", {}, labels), el("td", {}, ago(a.last_seen_ms)),
      el("td", {}, a.agent_version || ""), el("td", {}, rel.join(", "))));
  }
  $("#fleet-count").textContent = list.length ? "(" + list.length + ")" : "";
}

// A host's drill-down: what it runs (since when, restarts), its drift, and
// the tail of each service's output (needs the logs role).
async function showHost(id) {
  const panel = $("#host-panel");
  const [a, drift] = await Promise.all([
    api("GET", "/v1/agents/" + encodeURIComponent(id)),
    api("GET", "/v1/drift").catch(() => ({ hosts: [] }))]);
  const rels = (a && a.releases) || [];
  const mine = ((drift && drift.hosts) || []).filter((h) => h.host === id);
  const logs = await Promise.all(rels.map((r) =>
    api("GET", "/v1/services/" + encodeURIComponent(r.service) + "/logs?lines=20&host=" + encodeURIComponent(id))
      .then((x) => ({ service: r.service, text: ((x.hosts || [])[0] || {}).text || ((x.hosts || [])[0] || {}).error || "" }))
      .catch((e) => ({ service: r.service, text: e.message }))));
  panel.replaceChildren(
    el("h3", {}, "host " + id + " ", stateBadge(a.state), el("button", { onclick: () => { panel.hidden = true; } }, "close")),
    el("p", { class: "muted" }, "last seen " + ago(a.last_seen_ms) + ", agent " + (a.agent_version || "?") + ", " +
      plural(rels.length, "release")),
    el("table", { class: "releases" }, el("thead", {}, el("tr", {}, ...["service", "version", "state", "healthy",
      "running since", "restarts", "slot"].map((h) => el("th", {}, h)))),
    el("tbody", {}, ...rels.map((r) => el("tr", { "data-service": r.service },
      el("td", {}, r.service), el("td", {}, r.version), el("td", {}, stateBadge(r.state)),
      el("td", {}, r.healthy ? "yes" : "no"), el("td", {}, r.alive_since_ms ? ago(r.alive_since_ms) : "-"),
      el("td", {}, String(r.restarts || 0)), el("td", {}, r.slot || "-"))))),
    el("h4", {}, mine.length ? plural(mine.length, "drift") : "no drift"),
    ...mine.map((h) => el("p", { class: "drift", "data-kind": h.kind }, h.service + ": " + h.kind + ", " + h.detail)),
    ...logs.map((l) => el("div", { class: "logtail", "data-service": l.service },
      el("h4", {}, "last output of " + l.service), el("pre", {}, l.text))));
  panel.hidden = false;
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
    el("span", { class: "count" }, " " + c.ok + "/" + plural(c.total, "host") +
      (c.failed ? ", " + c.failed + " failed" : "")),
    " ", el("span", { class: "muted" }, strategyText(svc)),
    el("div", { class: "hosts" }, ...(svc.hosts || []).map(renderHost)));
}

function renderTier(t) {
  const svcs = t.services || [];
  const done = svcs.filter((s) => s.state === "done").length;
  return el("div", { class: "tier", "data-tier": t.name, "data-state": t.state },
    el("em", {}, "tier " + t.name), " ", stateBadge(t.state), " ", bar(done, svcs.length),
    " " + done + "/" + plural(svcs.length, "service"),
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

// The analysis: the latest verdict of each Prometheus check and the release's
// key metrics against the previous release's ("118 ms (2.3.0: 121 ms, -2 %)").
function renderAnalysis(d) {
  const rows = [];
  for (const a of d.analysis || [])
    rows.push({ kind: "check", service: a.service, name: a.check, verdict: a.verdict, text: a.text });
  for (const b of d.baseline || [])
    rows.push({ kind: "baseline", service: b.service, name: b.metric, verdict: b.verdict, text: b.text });
  if (!rows.length) return null;
  return el("table", { class: "analysis" },
    el("tr", {}, el("th", {}, "service"), el("th", {}, ""), el("th", {}, "check / metric"),
      el("th", {}, "verdict"), el("th", {}, "result")),
    ...rows.map((r) => el("tr", { "data-kind": r.kind, "data-name": r.service + "/" + r.name,
      "data-verdict": r.verdict || "" },
      el("td", {}, r.service || ""), el("td", { class: "muted" }, r.kind === "baseline" ? "baseline" : "check"),
      el("td", {}, r.name || ""), el("td", {}, stateBadge(r.verdict || "")), el("td", {}, r.text || ""))));
}

function verbEnabled(d, verb) {
  if (FINAL.has(d.state)) return false;
  // Waiting before it starts: only abort. A canary waiting at a step runs:
  // pause, abort and rollback apply; promote does not pass the approval.
  if ((d.state === "awaiting_approval" && d.phase === "prestage") || d.state === "queued") return verb === "abort";
  if (d.state === "awaiting_approval") return verb !== "promote" && verb !== "resume";
  if (verb === "resume") return d.state === "paused";
  if (verb === "pause") return d.state !== "paused" && d.state !== "rolling_back";
  return true;
}

// A deployment that awaits approval (docs/environments.md): who approved so
// far, a comment box, and approve / deny (POST .../approve|deny; the API
// checks the role and four eyes, a refusal shows in the error line).
// The approvals at canary steps that were decided, after the open one.
function renderApprovals(d) {
  const open = d.approval;
  const done = (d.step_approvals || []).filter((r) => !(open && open.step && open.deadline_ms === r.deadline_ms));
  return el("div", { class: "approvals" }, renderApproval(d, open),
    ...done.map((r) => renderApproval(d, r, true)));
}

function renderApproval(d, a, decided) {
  if (!a) return null;
  const given = (a.approvals || []).map((x) =>
    el("li", { "data-approver": x.actor }, "approved by " + x.actor + (x.comment ? ": " + x.comment : "")));
  if (a.denied) given.push(el("li", { "data-denier": a.denied.actor },
    "denied by " + a.denied.actor + (a.denied.comment ? ": " + a.denied.comment : "")));
  const waiting = !decided && (d.state === "awaiting_approval" || (a.step && d.state === "paused"));
  // The page re-renders on every event: what was typed lives in comments.
  const comment = el("input", { class: "approval-comment", "data-dep": d.id, type: "text", maxlength: "500", placeholder: "comment",
    value: comments.get(d.id) || "", oninput: (e) => comments.set(d.id, e.target.value) });
  const decide = (verb) => act(d.id, verb, { comment: comments.get(d.id) || "" });
  return el("div", { class: "approval", "data-approval": waiting ? "waiting" : "decided" },
    el("strong", {}, "approval"), " " + (a.approvals || []).length + " of " + a.required + " (role " + a.role + ")" +
      (a.step ? " at canary step " + a.step : ""),
    given.length ? el("ul", {}, ...given) : null,
    waiting ? el("span", { class: "approval-actions" }, comment,
      el("button", { "data-verb": "approve", onclick: () => decide("approve") }, "approve"),
      el("button", { "data-verb": "deny", onclick: () => decide("deny") }, "deny")) : null);
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
      d.failed_hosts ? el("span", { class: "error" }, plural(d.failed_hosts, "host") + " failed") : null,
      actions),
    d.reason ? el("p", { class: "reason" }, d.reason) : null,
    renderApprovals(d),
    el("div", { class: "timeline-box" },
      el("button", { class: "show-timeline", onclick: () => toggleTimeline(d.id) },
        timelines.has(d.id) ? "hide timeline" : "timeline"),
      timelines.has(d.id) ? timelineSvg(d, timelines.get(d.id)) : null),
    renderHooks((d.hooks || []).filter((h) => h.phase !== "post")),
    ...(d.tiers || []).map(renderTier),
    renderHooks((d.hooks || []).filter((h) => h.phase === "post")),
    renderAnalysis(d));
}

function renderDeployments() {
  const box = $("#deployments");
  if (!order.length) {
    box.replaceChildren(el("p", { class: "muted" }, "No deployments yet."));
    return;
  }
  // A re-render replaces the comment box being typed in: keep its focus and
  // caret, or what is typed next goes nowhere.
  const typing = document.activeElement && document.activeElement.matches("input.approval-comment")
    ? { dep: document.activeElement.getAttribute("data-dep"), start: document.activeElement.selectionStart,
        end: document.activeElement.selectionEnd } : null;
  box.replaceChildren(...order.filter((id) => deployments.has(id))
    .map((id) => renderDeployment(deployments.get(id))));
  if (typing) {
    const input = [...box.querySelectorAll("input.approval-comment")]
      .find((i) => i.getAttribute("data-dep") === typing.dep);
    if (input) {
      input.focus();
      input.setSelectionRange(typing.start, typing.end);
    }
  }
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

async function act(id, verb, body) {
  try {
    const d = await api("POST", "/v1/deployments/" + encodeURIComponent(id) + "/" + verb, body);
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

// -------------------------------------------------------------- timeline

const SVGNS = "http://www.w3.org/2000/svg";
const COLORS = { succeeded: "#00a32a", done: "#00a32a", failed: "#d63638", rolled_back: "#dba617",
                 rolling_back: "#dba617", running: "#2271b1", starting: "#2271b1", pending: "#c3c4c7",
                 prestage: "#8c8f94", pre: "#9b59b6", migrations: "#6c3483", tiers: "#2271b1",
                 post: "#1abc9c", paused: "#dba617", awaiting_promotion: "#dba617" };

function svg(tag, attrs, ...children) {
  const e = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs || {})) if (v !== undefined && v !== null) e.setAttribute(k, v);
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

// The deployment's events, read once when its timeline opens (then live).
async function toggleTimeline(id) {
  if (timelines.has(id)) {
    timelines.delete(id);
    renderDeployments();
    return;
  }
  const r = await fetch("/v1/events?follow=0&tail=1000&deployment=" + encodeURIComponent(id),
    { headers: { Authorization: "Bearer " + token } });
  const text = await r.text(), evs = [];
  for (const block of text.split("\n\n")) {
    const data = block.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trim()).join("");
    if (data) try { evs.push(JSON.parse(data)); } catch (e) { /* a partial block */ }
  }
  timelines.set(id, evs);
  renderDeployments();
}

// Phases, hooks and every host of every service as bars over time, with
// the batches and canary steps, traffic moves, failures and the rollback
// marked where they happened. Drawn from the deployment object (times of
// hosts and hooks) and its events (phases, steps, failures).
function timelineSvg(d, evs) {
  const W = 960, LABEL = 230, ROW = 18, now = Date.now();
  const t0 = d.created_ms || (evs[0] && evs[0].at_ms) || now;
  const t1 = Math.max(d.finished_ms || now, t0 + 1000);
  const x = (t) => LABEL + Math.max(0, Math.min(1, (t - t0) / (t1 - t0))) * (W - LABEL - 10);
  const rows = [], marks = [];
  // Phases from the state events.
  const phases = [];
  for (const ev of evs) if (ev.kind === "state" && ev.data && ev.data.phase) {
    const last = phases[phases.length - 1];
    if (!last || last.phase !== ev.data.phase) phases.push({ phase: ev.data.phase, at: ev.at_ms });
  }
  rows.push({ label: "phases", key: "phases", segs: phases.filter((p) => p.phase !== "done").map((p, i) => ({
    from: p.at, to: (phases[i + 1] || { at: d.finished_ms || now }).at, color: COLORS[p.phase] || "#8c8f94",
    text: p.phase, state: p.phase })) });
  for (const h of d.hooks || []) if (h.started_ms) rows.push({ label: h.phase + " " + h.name + " @" + h.host,
    key: "hook:" + h.phase + "/" + h.name + "@" + h.host,
    segs: [{ from: h.started_ms, to: h.finished_ms || now, color: COLORS[h.state] || "#2271b1", state: h.state }] });
  for (const t of d.tiers || []) for (const svc of t.services || []) {
    for (const h of svc.hosts || []) {
      if (!h.started_ms) continue;
      const key = svc.name + "@" + h.id;
      rows.push({ label: t.name + "/" + svc.name + " @" + h.id, key,
        segs: [{ from: h.started_ms, to: h.finished_ms || now, color: COLORS[h.state] || "#2271b1",
                 state: h.state, title: arrow(h) + " " + h.state + (h.message ? ": " + h.message : "") }] });
    }
  }
  for (const ev of evs) {
    const dd = ev.data || {};
    if (ev.kind === "host" && dd.state === "failed") marks.push({ at: ev.at_ms, row: dd.service + "@" + dd.host, kind: "failed", text: "\u2716 " + (dd.message || "failed") });
    if (ev.kind === "host" && dd.state === "rolling_back") marks.push({ at: ev.at_ms, row: dd.service + "@" + dd.host, kind: "rollback", text: "\u21b6 rolling back" });
    if (ev.kind === "service" && dd.state === "running" && (dd.batch || dd.canary_step))
      marks.push({ at: ev.at_ms, row: null, svc: dd.service, kind: "step", text: strategyText(dd) });
    if (ev.kind === "traffic") marks.push({ at: ev.at_ms, row: null, svc: dd.service, kind: "traffic", text: "traffic " + JSON.stringify(dd.weights || {}) });
    if (ev.kind === "rollback_started") marks.push({ at: ev.at_ms, line: true, kind: "rollback", text: "rollback" });
  }
  const H = 24 + rows.length * ROW + 20;
  const g = svg("svg", { class: "timeline", "data-deployment": d.id, width: W, height: H, viewBox: "0 0 " + W + " " + H, role: "img" },
    svg("title", {}, "timeline of " + d.id));
  for (let i = 0; i <= 4; i++) { // the time axis
    const t = t0 + ((t1 - t0) * i) / 4, xx = x(t);
    g.append(svg("line", { x1: xx, x2: xx, y1: 14, y2: H - 18, class: "grid" }),
      svg("text", { x: xx, y: 11, class: "axis", "text-anchor": i ? (i === 4 ? "end" : "middle") : "start" }, "+" + duration(t - t0)));
  }
  rows.forEach((r, i) => {
    const y = 20 + i * ROW;
    g.append(svg("text", { x: 4, y: y + 12, class: "label" }, r.label));
    for (const sgm of r.segs) {
      const x1 = x(sgm.from), x2 = Math.max(x(sgm.to), x1 + 2);
      g.append(svg("rect", { x: x1, y: y + 2, width: x2 - x1, height: ROW - 5, rx: 2, fill: sgm.color,
        class: "tl-bar", "data-row": r.key, "data-state": sgm.state || "" },
      svg("title", {}, r.label + ": " + (sgm.title || sgm.state || "") + " (" + duration(sgm.to - sgm.from) + ")")));
      if (sgm.text) g.append(svg("text", { x: x1 + 3, y: y + 12, class: "seg" }, sgm.text));
    }
    for (const m of marks) {
      const on = m.row === r.key || (m.svc && r.key.startsWith(m.svc + "@") && r === rows.find((q) => q.key.startsWith(m.svc + "@")));
      if (!on || m.line) continue;
      g.append(svg("text", { x: x(m.at), y: y + 12, class: "mark m-" + m.kind, "data-mark": m.kind }, m.kind === "failed" ? "\u2716" : m.kind === "rollback" ? "\u21b6" : m.kind === "traffic" ? "\u25c6" : "\u25b8",
        svg("title", {}, m.text)));
    }
  });
  for (const m of marks) if (m.line) g.append(
    svg("line", { x1: x(m.at), x2: x(m.at), y1: 14, y2: H - 18, class: "mark-line m-" + m.kind, "data-mark": m.kind }),
    svg("text", { x: x(m.at) + 3, y: H - 6, class: "mark m-" + m.kind }, m.text));
  return g;
}

// ------------------------------------------------------------- sentences

function arrow(d) {
  const back = d.state === "rolled_back" || d.state === "rolling_back";
  const a = d.from_version || "-", b = d.to_version || "-";
  return back ? b + " \u2192 " + a : a + " \u2192 " + b;
}

// An event as a sentence a person reads: who, what, where.
function sentence(ev) {
  const d = ev.data || {}, dep = ev.deployment_id || "";
  const took = d.started_ms && d.finished_ms ? " in " + duration(d.finished_ms - d.started_ms) : "";
  switch (ev.kind) {
  case "deployment_created": return "Deployment " + dep + " was created" + (d.actor ? " by " + d.actor : "") + ".";
  case "started": return "Deployment " + dep + " started.";
  case "state":
    return "Deployment " + dep + " is " + (d.state || "").replace(/_/g, " ") +
      (d.phase ? " (phase " + d.phase + ")" : "") + (d.reason ? ": " + d.reason : "") + ".";
  case "service":
    return "Service " + d.service + " (tier " + d.tier + ") is " + (d.state || "").replace(/_/g, " ") +
      ": " + strategyText(d) + ".";
  case "host":
    return "Host " + d.host + ": " + d.service + " " + arrow(d) + " " +
      (d.state || "").replace(/_/g, " ") + took + (d.message ? " (" + d.message + ")" : "") + ".";
  case "hook":
    return "Hook " + d.phase + "/" + d.name + " on " + d.host + " " + d.state +
      (d.state === "succeeded" || d.state === "failed" ? " with exit " + d.exit_code : "") + took + ".";
  case "tier_done": return "Tier " + (d.tier || "") + " is done" + (d.text ? ": " + d.text : "") + ".";
  case "traffic": return "Traffic of " + d.service + " moved: " + JSON.stringify(d.weights || {}) + ".";
  case "awaiting_promotion": return (d.text || "A canary step") + " (drover promote " + dep + ").";
  case "rollback_started": return "Rollback started: " + (d.text || "") + ".";
  case "approved": return "Deployment " + dep + " approved by " + d.actor + " (" + d.approvals + " of " + d.required + ")" + (d.comment ? ": " + d.comment : "") + ".";
  case "denied": return "Deployment " + dep + " denied by " + d.actor + (d.comment ? ": " + d.comment : "") + ".";
  case "window_paused": case "window_resumed": case "window_ignored":
    return "Deployment " + dep + " " + ev.kind.replace(/_/g, " ") + (d.text ? ": " + d.text : "") + ".";
  case "rolled_back": case "succeeded": case "failed": case "aborted": case "paused": case "resumed":
    return "Deployment " + dep + " " + ev.kind.replace(/_/g, " ") + (d.text ? ": " + d.text : "") + ".";
  case "report":
    return "Agent " + (ev.agent_id || "?") + " reported " + (d.step_id || "a step") + ": " + (d.result || "") +
      (d.message ? " (" + d.message + ")" : "") + ".";
  default:
    if ((ev.kind || "").startsWith("agent")) return "Agent " + (ev.agent_id || "") + ": " + ev.kind.replace(/_/g, " ") + ".";
    return (ev.kind || "event") + (dep ? " of " + dep : "") + (ev.agent_id ? " on " + ev.agent_id : "") + ".";
  }
}

function eventItem(ev) {
  return el("li", { "data-kind": ev.kind, "data-deployment": ev.deployment_id || null,
                    "data-agent": ev.agent_id || null },
    el("time", {}, new Date(ev.at_ms || Date.now()).toISOString().slice(11, 19)), " ",
    el("span", { class: "kind" }, ev.kind || "event"), " ", sentence(ev));
}

function eventShown(ev) {
  const f = ($("#event-filter").value || "").toLowerCase(), k = $("#event-kind").value;
  if (k && ev.kind !== k) return false;
  return !f || sentence(ev).toLowerCase().includes(f) || (ev.deployment_id || "").includes(f);
}

function renderEvents() {
  $("#events").replaceChildren(...allEvents.filter(eventShown).map(eventItem));
  const kinds = new Set(allEvents.map((e) => e.kind));
  const sel = $("#event-kind"), cur = sel.value;
  if (sel.options.length - 1 !== kinds.size) {
    sel.replaceChildren(el("option", { value: "" }, "all kinds"),
      ...[...kinds].sort().map((k) => el("option", { value: k }, k)));
    sel.value = cur;
  }
}

function addEvent(ev) {
  allEvents.unshift(ev);
  if (allEvents.length > EVENTS_MAX) allEvents.length = EVENTS_MAX;
  if (eventShown(ev)) {
    const ol = $("#events");
    ol.prepend(eventItem(ev));
    while (ol.children.length > EVENTS_MAX) ol.lastChild.remove();
  }
  if (ev.deployment_id && timelines.has(ev.deployment_id)) timelines.get(ev.deployment_id).push(ev);
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

$("#event-filter").addEventListener("input", renderEvents);
$("#event-kind").addEventListener("change", renderEvents);

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
