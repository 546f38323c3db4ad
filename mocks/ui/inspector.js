// The veomock inspector: reads the control API, redraws on every event of /_veomock/events.
// Plain JavaScript, no dependencies, nothing loaded from elsewhere.
"use strict";

const BASE = location.pathname.replace(/\/ui\/?$/, "");
const TOKEN = new URLSearchParams(location.hash.slice(1)).get("token");
const STATES = ["queued", "running", "succeeded", "failed", "error"];
const TERMINAL = new Set(["succeeded", "failed", "error"]);
const $ = (id) => document.getElementById(id);
const view = { now: 0, speed: 0, tenants: [], jobs: [], journal: [], webhooks: null, scenarios: null };
const expanded = new Set();

function headers(extra) {
  const out = Object.assign({}, extra);
  if (TOKEN) out["X-Veomock-Token"] = TOKEN;
  return out;
}

async function call(method, path, body) {
  const init = { method, headers: headers(body === undefined ? {} : { "Content-Type": "application/json" }), cache: "no-store" };
  if (body !== undefined) init.body = typeof body === "string" ? body : JSON.stringify(body);
  const response = await fetch(BASE + path, init);
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(data.error || `${method} ${path}: HTTP ${response.status}`);
  return data;
}

function say(text, error) {
  const box = $("message");
  box.textContent = text;
  box.className = error ? "error" : "";
}

async function act(method, path, body, done) {
  try {
    await call(method, path, body);
    say(done);
  } catch (exc) {
    say(exc.message, true);
  }
}

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") node.className = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value);
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

// As the control API masks keys (mocks.journal.mask_secret): the page reads them in full, to filter
// by them, and shows them masked.
function mask(key) {
  if (!key) return "—";
  if (key.length >= 12) return `${key.slice(0, 4)}…${key.slice(-4)}`;
  return key.length >= 6 ? `${key.slice(0, 2)}…${key.slice(-2)}` : "…";
}

function clockText(t) {
  return new Date(t * 1000).toISOString().replace("T", " ").replace(/\.(\d{3})Z$/, ".$1");
}

function seconds(s) {
  const n = Math.abs(s);
  return (s < 0 ? "-" : "") + (n >= 100 ? n.toFixed(0) : n.toFixed(1)) + "s";
}

function fill(tbody, rows, empty, columns) {
  tbody.replaceChildren(...(rows.length ? rows : [el("tr", {}, el("td", { colspan: columns, class: "muted" }, empty))]));
}

// -- tenants ---------------------------------------------------------------------------------

function renderTenants() {
  const rows = view.tenants.map((t) =>
    el("tr", { "data-tenant": mask(t.key) },
      el("td", { class: "mono", title: "masked" }, mask(t.key)),
      el("td", {}, t.jobs),
      el("td", {}, Object.entries(t.balances).map(([provider, b]) =>
        el("span", { class: "badge" }, `${provider}: ${b.remaining} / ${b.initial} ${b.unit}`), " "))));
  fill($("tenants").tBodies[0], rows, "no API key seen yet", 3);
}

// -- jobs ------------------------------------------------------------------------------------

function timeline(job) {
  const steps = job.timeline;
  const now = job.now ?? view.now;  // a tenant may run a clock of its own
  const start = steps[0].at;
  const last = steps[steps.length - 1];
  const end = Math.max(last.at, now, start + 1);
  const span = end - start;
  const bar = el("div", { class: "bar", title: "state over time; the line is now" });
  steps.forEach((step, i) => {
    const until = i + 1 < steps.length ? steps[i + 1].at : TERMINAL.has(step.state) ? step.at + span * 0.04 : end;
    const width = Math.max(0, (until - step.at) / (span * 1.04)) * 100;
    bar.append(el("span", { class: `${step.state}${step.at > now ? " planned" : ""}`, style: `width:${width}%` }));
  });
  const at = Math.min(1, Math.max(0, (now - start) / (span * 1.04))) * 100;
  bar.append(el("i", { style: `left:${at}%` }));
  const text = el("div", { class: "steps" }, steps.map((step, i) =>
    el("span", { class: step.at > now ? "planned" : "" }, (i ? " → " : "") + `${step.state} t+${seconds(step.at - start)}`)));
  if (steps.some((s) => s.at > now)) text.append(el("span", { class: "planned" }, " (planned)"));
  return [bar, text];
}

function forceControls(job) {
  const state = el("select", { "aria-label": "state" }, STATES.map((s) => el("option", { value: s }, s)));
  state.value = TERMINAL.has(job.state) ? "failed" : "succeeded";
  const code = el("input", { placeholder: "failure code", "aria-label": "failure code" });
  const go = () => {
    const body = { state: state.value };
    if (code.value.trim()) body.code = code.value.trim();
    act("POST", `/jobs/${encodeURIComponent(job.id)}`, body, `job ${job.id} forced to ${state.value}`);
  };
  return el("div", { class: "force" }, state, " ", code, " ", el("button", { type: "button", onclick: go }, "Force"));
}

function renderJobs() {
  const rows = view.jobs.map((job) => {
    const outcome = job.outcome.code !== null && job.outcome.code !== undefined ? ` (${job.outcome.code})` : "";
    return el("tr", { "data-job": job.id },
      el("td", { class: "mono" }, job.id),
      el("td", {}, `${job.provider} / ${job.model}`),
      el("td", { class: "mono" }, mask(job.key)),
      el("td", {}, el("span", { class: `state ${job.state}` }, job.state), " ",
        el("span", { class: "muted" }, job.status + (TERMINAL.has(job.state) && job.state !== "succeeded" ? outcome : ""))),
      el("td", {}, `${job.charge} of ${job.price}`),
      el("td", { class: "timeline" }, timeline(job)),
      el("td", {}, forceControls(job)));
  });
  fill($("jobs").tBodies[0], rows, "no job yet", 7);
}

// -- webhooks --------------------------------------------------------------------------------

function renderWebhooks() {
  const hooks = view.webhooks || { outstanding: [], counts: {} };
  $("webhook-counts").textContent = Object.entries(hooks.counts).map(([k, v]) => `${k} ${v}`).join(" · ");
  const due = hooks.outstanding.map((d) =>
    el("tr", {},
      el("td", { class: "mono" }, d.job), el("td", {}, d.event), el("td", { class: "wrap mono" }, d.url),
      el("td", {}, d.waiting_for_poll ? "after the next poll" : `${clockText(d.due)} (in ${seconds(d.due - view.now)})`),
      el("td", {}, d.attempts), el("td", {}, d.policy || "")));
  fill($("webhooks-due").tBodies[0], due, "nothing scheduled", 6);
  const attempts = view.journal.filter((e) => e.direction === "outbound").slice(-100).reverse().map((e) =>
    el("tr", {},
      el("td", {}, clockText(e.time)), el("td", { class: "mono" }, e.job), el("td", {}, e.event),
      el("td", {}, e.attempt), el("td", { class: `status-${String(e.status || "")[0]}` }, e.status ?? "—"),
      el("td", {}, e.outcome),
      el("td", { class: "wrap" }, e.next_attempt_at ? `retry at ${clockText(e.next_attempt_at)}` : "",
        e.error ? `${e.next_attempt_at ? " · " : ""}${e.error}` : "")));
  fill($("webhook-attempts").tBodies[0], attempts, "no attempt yet", 7);
}

// -- scenarios -------------------------------------------------------------------------------

function renderScenarios() {
  const rules = (view.scenarios && view.scenarios.rules) || [];
  const rows = rules.map((r) =>
    el("tr", {},
      el("td", {}, r.id), el("td", {}, r.provider || "any"), el("td", {}, r.operation || "any"),
      el("td", { class: "mono" }, JSON.stringify(r.match)), el("td", {}, `${r.used} / ${r.times ?? "∞"}`),
      el("td", { class: "mono" }, JSON.stringify(r.action))));
  const chaos = view.scenarios && view.scenarios.chaos;
  if (chaos) rows.push(el("tr", {}, el("td", {}, "chaos"), el("td", { colspan: 5, class: "mono" }, JSON.stringify(chaos))));
  fill($("scenarios").tBodies[0], rows, "no scenario armed", 6);
}

// -- journal ---------------------------------------------------------------------------------

function filters() {
  return {
    key: $("filter-key").value === "" ? "" : view.tenants[Number($("filter-key").value)]?.key || "",
    job: $("filter-job").value,
    operation: $("filter-operation").value,
    status: $("filter-status").value,
    search: $("journal-search").value.trim().toLowerCase(),
  };
}

function statusMatches(status, wanted) {
  if (!wanted) return true;
  if (/^\dxx$/.test(wanted)) return String(status ?? "")[0] === wanted[0];
  return String(status) === wanted;
}

function options(select, values, label) {
  const keep = select.value;
  select.replaceChildren(el("option", { value: "" }, "any"), ...values.map(([value, text]) => el("option", { value }, label ? label(text) : text)));
  if ([...select.options].some((o) => o.value === keep)) select.value = keep;
}

function entryId(e, i) {
  return `${e.time}|${e.direction}|${e.path || e.url}|${e.status}|${e.attempt || ""}|${i}`;
}

function details(e) {
  const req = e.direction === "outbound" ? { headers: Object.entries(e.headers || {}), body: e.body } : e.request || {};
  const res = e.direction === "outbound" ? { headers: [], body: e.error || "" } : e.response || {};
  const text = (b) => (typeof b === "string" ? b : JSON.stringify(b, null, 2)) || "";
  const lines = (h) => (h || []).map(([k, v]) => `${k}: ${v}`).join("\n");
  return el("tr", { class: "details" }, el("td", { colspan: 7 },
    el("h4", {}, `${e.method || ""} ${e.url || e.path || ""}`),
    el("pre", {}, lines(req.headers) + "\n\n" + text(req.body)),
    el("h4", {}, `answer ${e.status ?? "—"}`),
    el("pre", {}, lines(res.headers) + "\n\n" + text(res.body))));
}

function renderJournal() {
  const entries = view.journal;
  options($("filter-key"), view.tenants.map((t, i) => [String(i), t.key]), mask);
  options($("filter-job"), [...new Set(entries.map((e) => e.job).filter(Boolean))].map((j) => [j, j]));
  options($("filter-operation"), [...new Set(entries.map((e) => e.operation).filter(Boolean))].sort().map((o) => [o, o]));
  const seen = [...new Set(entries.map((e) => e.status).filter((s) => s !== null && s !== undefined))].sort();
  const status = $("filter-status");
  const keep = status.value;
  status.replaceChildren(...["", "2xx", "4xx", "5xx", ...seen.map(String)].map((v) => el("option", { value: v }, v || "any")));
  status.value = [...status.options].some((o) => o.value === keep) ? keep : "";
  const f = filters();
  const shown = [];
  entries.forEach((e, i) => {
    if (f.key && e.key !== f.key) return;
    if (f.job && e.job !== f.job) return;
    if (f.operation && e.operation !== f.operation) return;
    if (!statusMatches(e.status, f.status)) return;
    if (f.search && !JSON.stringify(e).toLowerCase().includes(f.search)) return;
    shown.push([e, i]);
  });
  const rows = [];
  for (const [e, i] of shown.reverse()) {
    const id = entryId(e, i);
    const toggle = () => { expanded.has(id) ? expanded.delete(id) : expanded.add(id); renderJournal(); };
    rows.push(el("tr", { class: "entry", onclick: toggle, "data-status": e.status ?? "", "data-direction": e.direction },
      el("td", {}, clockText(e.time)),
      el("td", { class: "dir" }, e.direction === "outbound" ? "webhook →" : "→ mock"),
      el("td", {}, e.provider || "—"),
      el("td", { class: "wrap mono" }, `${e.method || ""} ${e.direction === "outbound" ? e.url : e.path}`, e.operation ? el("span", { class: "muted" }, ` ${e.operation}`) : null),
      el("td", { class: `status-${String(e.status || "")[0]}` }, e.status ?? "—"),
      el("td", { class: "mono" }, mask(e.key)),
      el("td", { class: "mono" }, e.job || "")));
    if (expanded.has(id)) rows.push(details(e));
  }
  fill($("journal").tBodies[0], rows, entries.length ? "no entry matches" : "nothing journaled yet", 7);
  $("journal-count").textContent = `${shown.length} of ${entries.length} shown`;
  const query = new URLSearchParams();
  for (const name of ["key", "job", "operation", "status"]) if (f[name]) query.set(name, f[name]);
  $("har").href = `${BASE}/journal.har${query.toString() ? "?" + query : ""}`;
}

// -- loading ---------------------------------------------------------------------------------

function renderClock() {
  $("clock-now").textContent = clockText(view.now);
  $("clock-speed").textContent = view.speed === 0 ? "frozen" : `${view.speed}x real time`;
  $("freeze").disabled = view.speed === 0;
}

async function load() {
  const [clock, tenants, jobs, journal, webhooks, scenarios] = await Promise.all([
    call("GET", "/clock"), call("GET", "/tenants?reveal=1"), call("GET", "/jobs?timeline=1&reveal=1"),
    call("GET", "/journal?limit=1000&reveal=1"), call("GET", "/webhooks"), call("GET", "/scenarios"),
  ]);
  Object.assign(view, {
    now: clock.now, speed: clock.speed, tenants: tenants.tenants, jobs: jobs.jobs,
    journal: journal.entries, webhooks, scenarios,
  });
  renderClock();
  renderTenants();
  renderJobs();
  renderWebhooks();
  renderScenarios();
  renderJournal();
  document.body.dataset.version = String(Number(document.body.dataset.version || 0) + 1);
}

let loading = false;
let again = false;

async function refresh() {
  if (loading) { again = true; return; }
  loading = true;
  try {
    do {
      again = false;
      await load();
    } while (again);
  } catch (exc) {
    say(exc.message, true);
  } finally {
    loading = false;
  }
}

function live(on) {
  $("live").textContent = on ? "live" : "offline";
  $("live").className = `badge ${on ? "on" : "off"}`;
}

// Server-sent events read with fetch, so that a control token can go in a header.
async function listen() {
  for (;;) {
    try {
      const response = await fetch(`${BASE}/events`, { headers: headers(), cache: "no-store" });
      if (!response.ok) throw new Error(`events: HTTP ${response.status}`);
      live(true);
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let cut;
        while ((cut = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, cut);
          buffer = buffer.slice(cut + 2);
          if (/^event: change$/m.test(block)) refresh();
        }
      }
    } catch (exc) {
      say(exc.message, true);
    }
    live(false);
    await new Promise((resume) => setTimeout(resume, 1000));
  }
}

$("advance").addEventListener("click", () => {
  const s = Number($("advance-seconds").value);
  act("POST", "/clock", { advance: s }, `clock advanced ${s} s`);
});
$("freeze").addEventListener("click", () => act("POST", "/clock", { speed: 0 }, "clock frozen"));
$("set-speed").addEventListener("click", () => {
  const s = Number($("speed").value);
  act("POST", "/clock", { speed: s }, `clock runs at ${s}x`);
});
$("reset").addEventListener("click", () => act("POST", "/reset", undefined, "mock reset"));
$("arm").addEventListener("click", () => act("POST", "/scenarios", $("scenario-json").value, "scenario armed"));
$("clear-scenarios").addEventListener("click", () => act("DELETE", "/scenarios", undefined, "scenarios cleared"));
for (const id of ["filter-key", "filter-job", "filter-operation", "filter-status"]) $(id).addEventListener("change", renderJournal);
$("journal-search").addEventListener("input", renderJournal);

listen();
