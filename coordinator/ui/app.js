// drover dashboard: the fleet, deployments with live progress from the event
// stream, and operator buttons. Plain JavaScript, no build step; served by
// droverd from files compiled into the binary.
"use strict";

const $ = (sel) => document.querySelector(sel);
let token = sessionStorage.getItem("drover.token") || "";
let streamAbort = null;
let refreshTimer = null;
const VERBS = ["pause", "resume", "promote", "abort", "rollback"];
const FINAL = new Set(["succeeded", "failed", "rolled_back", "aborted"]);

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const c of children) {
    if (c === null || c === undefined) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

function stateBadge(s) {
  return el("span", { class: "state s-" + (s || "unknown") }, s || "?");
}

function showError(msg) {
  const p = $("#error");
  p.textContent = msg || "";
  p.hidden = !msg;
}

async function api(method, path, body) {
  const opts = { method, headers: { Authorization: "Bearer " + token } };
  if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  const r = await fetch(path, opts);
  const text = await r.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (e) { data = { raw: text }; }
  if (!r.ok) {
    const msg = data && data.error ? data.error.message || data.error.code : r.statusText;
    throw new Error(method + " " + path + ": " + r.status + " " + msg);
  }
  return data;
}

function ago(ms) {
  if (!ms) return "never";
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  return s < 60 ? s + "s ago" : Math.round(s / 60) + "m ago";
}

function renderAgents(list) {
  const tb = $("#agents tbody");
  tb.replaceChildren();
  for (const a of list) {
    const labels = Object.entries(a.labels || {}).map(([k, v]) => k + "=" + v).join(" ");
    const rel = (a.releases || []).map((r) => r.service + "@" + (r.version || "?")).join(", ");
    tb.append(el("tr", { "data-agent": a.id },
      el("td", {}, a.id), el("td", {}, stateBadge(a.state || a.status)),
      el("td", {}, labels), el("td", {}, ago(a.last_seen_ms)), el("td", {}, rel)));
  }
}

function progressOf(svc) {
  const hosts = svc.hosts || [];
  const done = hosts.filter((h) => ["succeeded", "healthy", "done"].includes(h.state)).length;
  return { done, total: hosts.length };
}

function renderService(svc) {
  const p = progressOf(svc);
  const pct = p.total ? Math.round((100 * p.done) / p.total) : 0;
  const extra = [];
  if (svc.strategy) extra.push(svc.strategy);
  if (svc.batch !== undefined && svc.batches) extra.push("batch " + svc.batch + "/" + svc.batches);
  if (svc.canary_step !== undefined && svc.canary_steps)
    extra.push("step " + svc.canary_step + "/" + svc.canary_steps);
  if (svc.traffic_weight !== undefined) extra.push("weight " + svc.traffic_weight + "%");
  const hosts = el("div", { class: "hosts" });
  for (const h of svc.hosts || []) {
    hosts.append(el("span", { title: (h.from_version || "") + " -> " + (h.to_version || "") },
      h.id + " ", stateBadge(h.state)));
  }
  return el("div", { class: "service", "data-service": svc.name },
    el("strong", {}, svc.name), " ", stateBadge(svc.state), " ",
    el("span", { class: "bar" }, el("span", { style: "width:" + pct + "%" })),
    " " + p.done + "/" + p.total + " ", el("span", { class: "muted" }, extra.join(", ")),
    hosts);
}

function renderDeployment(d) {
  const actions = el("span", { class: "actions" });
  for (const v of VERBS) {
    const b = el("button", { "data-verb": v, onclick: () => act(d.id, v) }, v);
    if (FINAL.has(d.state)) b.disabled = true;
    actions.append(b);
  }
  const box = el("div", { class: "deployment", "data-id": d.id, "data-state": d.state },
    el("div", { class: "head" },
      el("strong", {}, (d.deployment || d.name || "") + " " + (d.version || "")),
      el("code", {}, d.id), stateBadge(d.state),
      d.phase ? el("span", { class: "muted" }, "phase " + d.phase) : null, actions));
  for (const t of d.tiers || []) {
    const tier = el("div", { class: "tier", "data-tier": t.name },
      el("em", {}, "tier " + t.name), " ", stateBadge(t.state));
    for (const s of t.services || []) tier.append(renderService(s));
    box.append(tier);
  }
  return box;
}

async function act(id, verb) {
  try {
    await api("POST", "/v1/deployments/" + encodeURIComponent(id) + "/" + verb);
    showError("");
    await refreshDeployments();
  } catch (e) {
    showError(e.message);
  }
}

async function refreshDeployments() {
  const list = await api("GET", "/v1/deployments");
  const items = (list && (list.deployments || list)) || [];
  const box = $("#deployments");
  if (!items.length) {
    box.replaceChildren(el("p", { class: "muted" }, "No deployments yet."));
    return;
  }
  const shown = items.slice(0, 10);
  const full = await Promise.all(shown.map((d) =>
    api("GET", "/v1/deployments/" + encodeURIComponent(d.id)).catch(() => d)));
  box.replaceChildren(...full.map(renderDeployment));
}

async function refreshAll() {
  try {
    const a = await api("GET", "/v1/agents");
    renderAgents((a && (a.agents || a)) || []);
    await refreshDeployments();
    showError("");
  } catch (e) {
    showError(e.message);
  }
}

function scheduleRefresh() {
  if (refreshTimer) return;
  refreshTimer = setTimeout(() => { refreshTimer = null; refreshAll(); }, 200);
}

function addEvent(ev) {
  const li = el("li", {}, (ev.kind || ev.event || "event") + " " +
    (ev.deployment_id || "") + " " + (ev.agent_id || "") + " " +
    (ev.data ? JSON.stringify(ev.data) : ""));
  const ol = $("#events");
  ol.prepend(li);
  while (ol.children.length > 200) ol.lastChild.remove();
}

// Server-sent events through fetch, so the token travels in a header.
async function stream() {
  if (streamAbort) streamAbort.abort();
  streamAbort = new AbortController();
  let lastId = "";
  for (let attempt = 0; attempt < 1000; attempt++) {
    try {
      const headers = { Authorization: "Bearer " + token, Accept: "text/event-stream" };
      if (lastId) headers["Last-Event-ID"] = lastId;
      const r = await fetch("/v1/events", { headers, signal: streamAbort.signal });
      if (!r.ok) throw new Error("events: " + r.status);
      $("#conn").textContent = "live";
      $("#conn").className = "badge on";
      const reader = r.body.getReader();
      const dec = new TextDecoder();
      let buf = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += dec.decode(value, { stream: true });
        let i;
        while ((i = buf.indexOf("\n\n")) >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          let data = "";
          for (const line of block.split("\n")) {
            if (line.startsWith("id:")) lastId = line.slice(3).trim();
            else if (line.startsWith("data:")) data += line.slice(5).trim();
          }
          if (!data) continue;
          try { addEvent(JSON.parse(data)); } catch (e) { addEvent({ kind: data }); }
          scheduleRefresh();
        }
      }
    } catch (e) {
      if (streamAbort.signal.aborted) return;
    }
    $("#conn").textContent = "reconnecting";
    $("#conn").className = "badge off";
    await new Promise((res) => setTimeout(res, Math.min(5000, 250 * (attempt + 1))));
  }
}

function start() {
  if (!token) {
    showError("Paste an API token (viewer to watch, deployer to act).");
    return;
  }
  refreshAll();
  stream();
  setInterval(refreshAll, 5000);
}

$("#login").addEventListener("submit", (e) => {
  e.preventDefault();
  token = $("#token").value.trim();
  sessionStorage.setItem("drover.token", token);
  start();
});

// A token may also arrive in the fragment (#token=...), never sent to the server.
const frag = new URLSearchParams(location.hash.slice(1));
if (frag.get("token")) {
  token = frag.get("token");
  sessionStorage.setItem("drover.token", token);
  history.replaceState(null, "", location.pathname);
}
start();
