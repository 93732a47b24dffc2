// GET /: the operator console (README "Observability"). One self-contained page, no build step, no
// external assets. It holds no data itself (so it is served without a token): its script reads
// the same /v1/* routes the CLI uses, with a token the operator types once and the tab keeps in
// sessionStorage. Without one it shows what /health shows and the sign-in, and polls /health only.
// The content security policy allows exactly this page's one script and one style sheet (by
// their SHA-256), and requests to this daemon; every value is written with textContent.
import { createHash } from "node:crypto";

/** How often the page reads the daemon (ms). */
export const CONSOLE_REFRESH_MS = 5000;

const STYLE = `
:root { color-scheme: light; --fg: #1d2330; --muted: #4f5868; --line: #d5dae1; --bg: #f5f6f8; --card: #fff; --ok: #13703a; --warn: #8a5300; --bad: #b42318; --accent: #1f5fbf; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, sans-serif; margin: 0; color: var(--fg); background: var(--bg); }
header { display: flex; flex-wrap: wrap; align-items: baseline; gap: .5rem 1rem; padding: .9rem 1.5rem; background: var(--card); border-bottom: 1px solid var(--line); }
header h1 { font-size: 1.25rem; margin: 0; }
header .spacer { flex: 1; }
main { padding: 1rem 1.5rem; display: grid; gap: 1rem; grid-template-columns: repeat(auto-fit, minmax(520px, 1fr)); align-items: start; }
section { background: var(--card); border: 1px solid var(--line); border-radius: 6px; padding: .9rem 1.1rem; min-width: 0; }
section.wide { grid-column: 1 / -1; }
h2 { font-size: 1rem; margin: 0 0 .6rem; }
h3 { font-size: .9rem; margin: .8rem 0 .4rem; color: var(--muted); }
dl { display: grid; grid-template-columns: max-content 1fr; gap: .2rem 1rem; margin: 0; }
dt { color: var(--muted); }
dd { margin: 0; font-family: ui-monospace, monospace; overflow-wrap: anywhere; }
table { border-collapse: collapse; width: 100%; font-size: .92rem; }
caption { text-align: left; color: var(--muted); padding-bottom: .3rem; }
th, td { text-align: left; padding: .25rem .6rem .25rem 0; border-bottom: 1px solid var(--line); vertical-align: top; overflow-wrap: break-word; }
th { white-space: nowrap; }
th { font-weight: 600; color: var(--muted); }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
code, pre { font-family: ui-monospace, monospace; }
pre { margin: 0; white-space: pre-wrap; overflow-wrap: anywhere; max-height: 12rem; overflow: auto; }
.ok { color: var(--ok); } .warn { color: var(--warn); } .bad { color: var(--bad); } .muted { color: var(--muted); }
.pill { display: inline-block; padding: 0 .45rem; border-radius: 999px; border: 1px solid currentColor; font-size: .85rem; }
.charts { display: grid; gap: .8rem; grid-template-columns: repeat(auto-fit, minmax(260px, 1fr)); }
figure { margin: 0; }
figcaption { color: var(--muted); font-size: .9rem; }
svg.chart { width: 100%; height: 70px; display: block; background: #f8fafc; border: 1px solid var(--line); border-radius: 4px; }
svg.chart polyline { fill: none; stroke: var(--accent); stroke-width: 1.5; }
svg.chart .area { fill: #dbe7fb; stroke: none; }
form { display: flex; flex-wrap: wrap; gap: .5rem; align-items: end; }
label { display: block; font-weight: 600; margin-bottom: .2rem; }
input { font: inherit; padding: .35rem .5rem; min-width: 22rem; border: 1px solid #8a93a3; border-radius: 4px; }
button { font: inherit; padding: .3rem .8rem; border: 1px solid var(--accent); background: var(--accent); color: #fff; border-radius: 4px; cursor: pointer; }
button.link { background: none; color: var(--accent); border: none; padding: 0; text-decoration: underline; text-align: left; word-break: break-all; }
button.quiet { background: var(--card); color: var(--accent); }
button:focus-visible, input:focus-visible { outline: 3px solid #f0b429; outline-offset: 2px; }
footer { padding: 0 1.5rem 1.5rem; color: var(--muted); }
.visually-hidden { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
[hidden] { display: none !important; }
#data { display: contents; }
`;

const SCRIPT = `
"use strict";
const KEY = "spl-token";
const REFRESH_MS = ${CONSOLE_REFRESH_MS};
const $ = (id) => document.getElementById(id);
let mode = "unknown"; // "token" (signed in), "open" (this daemon needs no token), "signed-out"
let openThread = null; // the thread the record browser shows, and from which cursor
let openAfter = undefined;
let timer = null;

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "text") e.textContent = String(v);
    else if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : String(v));
  }
  for (const kid of kids) if (kid !== null && kid !== undefined) e.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
  return e;
}
const nowSecs = () => Date.now() / 1000;
function ago(unix) {
  if (unix === null || unix === undefined || !Number.isFinite(unix)) return "—";
  const d = Math.round(nowSecs() - unix);
  const span = (s) => (s < 60 ? s + " s" : s < 3600 ? Math.round(s / 60) + " min" : s < 172800 ? Math.round(s / 3600) + " h" : Math.round(s / 86400) + " d");
  if (d < -1) return "in " + span(-d);
  return d <= 1 ? "just now" : span(d) + " ago";
}
const iso = (t) => (t ? Date.parse(t) / 1000 : null);
function bytes(n) {
  if (n === null || n === undefined) return "—";
  const u = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return (i === 0 ? n : n.toFixed(1)) + " " + u[i];
}
const num = (n) => (n === null || n === undefined ? "—" : Number(n).toLocaleString("en"));
const rate = (x) => (x < 10 ? x.toFixed(1) : Math.round(x).toLocaleString("en")) + "/s";
const shortId = (id) => (id ? id.slice(0, 12) : "—");

function rows(dl, pairs) {
  dl.replaceChildren();
  for (const [name, value, cls, id] of pairs) {
    dl.append(el("dt", { text: name }), el("dd", { text: value === null || value === undefined ? "—" : value, class: cls, id }));
  }
}
function table(container, caption, head, data, empty) {
  container.replaceChildren();
  if (!data.length) { container.append(el("p", { class: "muted", text: empty })); return; }
  const t = el("table", {}, el("caption", { text: caption }));
  const tr = el("tr");
  for (const h of head) tr.append(el("th", { scope: "col", text: h.label, class: h.num ? "num" : undefined }));
  t.append(el("thead", {}, tr));
  const body = el("tbody");
  for (const row of data) {
    const r = el("tr");
    head.forEach((h, i) => {
      const v = row[i];
      r.append(v instanceof Node ? el("td", { class: h.num ? "num" : undefined }, v) : el("td", { text: v === null || v === undefined ? "—" : v, class: h.num ? "num" : undefined }));
    });
    body.append(r);
  }
  t.append(body);
  container.append(t);
}
const pill = (text, cls) => el("span", { class: "pill " + cls, text });
const note = (container, text, cls) => container.replaceChildren(el("p", { class: cls || "muted", text }));

async function get(path) {
  const token = sessionStorage.getItem(KEY);
  const res = await fetch(path, { headers: token ? { authorization: "Bearer " + token } : {}, cache: "no-store" });
  const body = await res.json().catch(() => null);
  return { status: res.status, body };
}
const why = (r) => (r.body && r.body.message) || "HTTP " + r.status;

function setState(text, cls) {
  const s = $("state");
  if (s.textContent !== text) s.textContent = text;
  s.className = "pill " + cls;
}

function showSignIn(message) {
  mode = "signed-out";
  $("signin").hidden = false;
  $("signout").hidden = true;
  $("data").hidden = true;
  $("signin-error").textContent = message || "";
  setState("needs a token", "warn");
}

function renderHealth(h, extra) {
  $("version").textContent = h && h.version ? h.version : "";
  rows($("health-list"), [
    ["status", h ? h.status : "unreachable", h && h.status === "ok" ? "ok" : "bad", "health-status"],
    ["records", num(h && h.records), null, "health-records"],
    ["threads", num(h && h.threads), null, "health-threads"],
    ["uptime", h && h.uptime_secs !== undefined ? ago(nowSecs() - h.uptime_secs).replace(" ago", "") : "—", null, "health-uptime"],
    ["instance", h && h.instance_did, null, "health-instance"],
    ...(extra || []),
  ]);
}

function renderStorage(st) {
  const s = st.storage || {};
  const log = s.log || {};
  rows($("storage-list"), [
    ["store", st.store],
    ["WAL", bytes(s.wal_bytes), null, "storage-wal"],
    ["last checkpoint", s.last_checkpoint_at ? ago(iso(s.last_checkpoint_at)) : "—", s.checkpoint_ok === false ? "bad" : null, "storage-checkpoint"],
    ["write errors", s.last_error ? s.last_error.during + ": " + s.last_error.message + " (" + ago(iso(s.last_error.at)) + ")" : "none", s.last_error ? "bad" : "ok", "storage-errors"],
    ["log file", log.ok === false ? "cannot be written since " + ago(iso(log.since)) : "ok", log.ok === false ? "bad" : "ok"],
    ["memory (RSS)", bytes(st.memory && st.memory.rss_bytes)],
    ["permissions", st.permissions_enabled ? "enforced" : "off (every authenticated request is allowed)"],
  ]);
}

function chart(svg, slots, field, label) {
  const W = 300, H = 70;
  svg.replaceChildren();
  const ns = "http://www.w3.org/2000/svg";
  const values = slots.map((s) => s[field] / s.secs);
  const max = Math.max(1, ...values);
  const n = Math.max(values.length, 2);
  const pts = values.map((v, i) => ((i / (n - 1)) * W).toFixed(1) + "," + (H - 4 - (v / max) * (H - 10)).toFixed(1));
  const title = document.createElementNS(ns, "title");
  const now = values.length ? values[values.length - 1] : 0;
  title.textContent = label + ": now " + rate(now) + ", peak " + rate(Math.max(0, ...values)) + " over the last " + Math.round(slots.reduce((a, s) => a + s.secs, 0) / 60) + " min";
  svg.append(title);
  if (values.length > 1) {
    const area = document.createElementNS(ns, "polygon");
    area.setAttribute("class", "area");
    area.setAttribute("points", "0," + H + " " + pts.join(" ") + " " + ((values.length - 1) / (n - 1)) * W + "," + H);
    const line = document.createElementNS(ns, "polyline");
    line.setAttribute("points", pts.join(" "));
    svg.append(area, line);
  }
  return { now, peak: Math.max(0, ...values), title: title.textContent };
}

function renderRates(r) {
  // Closed intervals, then the one still counting (its rate over the seconds so far).
  const slots = r.slots.map((s) => ({ ...s, secs: r.interval_secs }));
  const partial = Math.max(1, r.now - r.current.at);
  slots.push({ ...r.current, secs: partial });
  for (const [field, id, label] of [["records", "chart-records", "Records committed"], ["requests", "chart-requests", "Requests answered"]]) {
    const c = chart($(id), slots, field, label);
    $(id + "-text").textContent = "now " + rate(c.now) + " · peak " + rate(c.peak);
    $(id).setAttribute("aria-label", c.title);
  }
  const errors = slots.reduce((a, s) => a + s.errors, 0);
  $("rates-errors").textContent = errors ? errors + " answered 5xx in the window" : "no 5xx answers in the window";
  $("rates-errors").className = errors ? "bad" : "muted";
}

function renderFleet(r) {
  const box = $("fleet-body");
  if (r.status !== 200) { note(box, r.status === 403 ? "this token may not read the fleet (it needs fleet_read)" : "fleet status unavailable: " + why(r)); $("control-body").replaceChildren(); return; }
  const f = r.body;
  const coordinator = f.coordinator || f.coordinator_url;
  const facts = el("dl");
  rows(facts, [
    ["coordinator", coordinator, null, "fleet-coordinator"],
    ...(f.epoch !== undefined && f.epoch !== null ? [["epoch", String(f.epoch), null, "fleet-epoch"]] : []),
    ["heartbeat", "every " + f.heartbeat_interval_secs + " s"],
    ["members", (f.counts.live || 0) + " live · " + (f.counts.stale || 0) + " stale · " + (f.counts.archived || 0) + " archived", f.counts.stale ? "warn" : null, "fleet-counts"],
  ]);
  const list = el("div", { id: "fleet-members" });
  table(list, "Fleet members", [{ label: "member" }, { label: "role" }, { label: "status" }, { label: "last heartbeat" }, { label: "version" }, { label: "active dispatches", num: true }, { label: "health" }],
    f.instances.map((m) => {
      const gone = m.status === "archived";
      return [m.name || m.did, m.role, pill(m.status, m.status === "live" ? "ok" : m.status === "stale" ? "warn" : "muted"), ago(m.last_heartbeat), m.version, gone ? "—" : num(m.active_dispatches), gone ? "gone (no recent heartbeat)" : m.health];
    }), "no members yet");
  box.replaceChildren(facts, list);
  renderControl(f);
}

function renderControl(f) {
  const box = $("control-body");
  const e = f.emergency || {};
  const stop = el("p", { id: "emergency", role: e.active ? "alert" : undefined },
    "Emergency stop: ", e.active ? pill("ACTIVE", "bad") : pill("inactive", "ok"),
    e.active ? " — " + (e.reason || "no reason given") + " (by " + e.issued_by + ", " + ago(e.issued_at_unix) + "; spl unkill --emergency)" : "");
  const freezes = el("div", { id: "freezes" });
  table(freezes, "Active freezes", [{ label: "namespace" }, { label: "level" }, { label: "reason" }, { label: "by" }, { label: "since" }],
    (f.freezes || []).map((z) => [z.namespace, z.level + (z.level === "hard" ? " (grace " + z.grace_secs + " s)" : ""), z.reason, z.issued_by, ago(z.issued_at_unix)]), "no namespace is frozen");
  box.replaceChildren(stop, freezes);
}

function renderTasks(r) {
  const box = $("tasks-body");
  if (r.status !== 200) return note(box, "tasks unavailable: " + why(r));
  const tasks = r.body.data;
  const counts = {};
  for (const t of tasks) counts[t.status] = (counts[t.status] || 0) + 1;
  const byStatus = el("p", { id: "task-counts" });
  const order = ["inbox", "active", "review", "blocked", "deferred", "failed", "rejected", "approved", "cancelled"];
  const parts = order.filter((s) => counts[s]).map((s) => s + " " + counts[s]);
  byStatus.textContent = tasks.length ? tasks.length + " tasks: " + parts.join(" · ") : "no tasks";
  const latest = el("div", { id: "task-list" });
  const recent = [...tasks].sort((a, b) => b.updated_at - a.updated_at).slice(0, 8);
  table(latest, "Latest tasks", [{ label: "task" }, { label: "goal" }, { label: "status" }, { label: "priority" }, { label: "assignee" }, { label: "updated" }],
    recent.map((t) => [t.alias, t.goal.length > 80 ? t.goal.slice(0, 79) + "…" : t.goal, t.status, t.priority, t.assignee, ago(t.updated_at)]), "");
  box.replaceChildren(byStatus, latest);
}

function renderDispatches(r) {
  const box = $("dispatches-body");
  if (r.status !== 200) return note(box, "dispatches unavailable: " + why(r));
  const d = r.body;
  const rc = d.reconciler || {};
  const summary = el("p", { id: "dispatch-counts", text: d.active + " active of " + d.total + " · " + (rc.queued || 0) + " queued · " + (rc.running || 0) + " running (at most " + rc.concurrency + " at once)" });
  const list = el("div", { id: "dispatch-list" });
  const state = (x) => (x.finished_at === null ? pill("running", "warn") : x.success ? pill("succeeded", "ok") : pill("failed", "bad"));
  table(list, "Active and recent dispatches", [{ label: "thread" }, { label: "target" }, { label: "rule" }, { label: "started" }, { label: "state" }, { label: "took", num: true }, { label: "why it failed" }],
    d.data.map((x) => [x.thread, x.target, x.rule, ago(x.started_at), state(x), x.latency_ms === null ? "—" : (x.latency_ms / 1000).toFixed(1) + " s", x.failure_reason]), "no dispatches yet");
  box.replaceChildren(summary, list);
}

function renderBackups(st, local) {
  const b = st.backup;
  rows($("startup-list"), [["this start's backup", b ? b.outcome + (b.written_at ? ", " + ago(iso(b.written_at)) : "") : "none: the store was new at this start", b && b.outcome.startsWith("FAILED") ? "bad" : null, "backup-startup"]]);
  if (local.status === 200) {
    table($("local-backups"), "Local backups (newest first)", [{ label: "file" }, { label: "kind" }, { label: "written" }, { label: "size", num: true }, { label: "records", num: true }],
      local.body.data.map((f) => [f.name, f.kind, ago(iso(f.written_at)), bytes(f.bytes), f.error ? "unreadable" : num(f.records)]), "no local backup yet: spl backup takes one");
  } else note($("local-backups"), "local backups unavailable: " + why(local));
  const o = st.offsite;
  const off = $("offsite-list");
  if (!o || !o.configured) {
    rows(off, [["off-host", "not configured: every backup is on this machine only ([backup.offsite] in config.toml)", "warn", "offsite-state"]]);
    return;
  }
  const last = o.last_push;
  rows(off, [
    ["destination", o.url, null, "offsite-url"],
    ["last push", last ? (last.ok ? "ok, " + ago(iso(last.at)) + (last.records !== undefined ? " (" + num(last.records) + " records)" : "") : "FAILED " + ago(iso(last.at)) + ": " + last.error) : "none yet", last ? (last.ok ? "ok" : "bad") : "warn", "offsite-last"],
    ["last success", o.last_push_ok_at ? ago(iso(o.last_push_ok_at)) : "never", null, "offsite-success"],
    ["next push", o.pushing ? "pushing now" : o.next_push_at ? ago(iso(o.next_push_at)) : "—", null, "offsite-next"],
    ["every", Math.round(o.every_secs / 3600 * 10) / 10 + " h · keeps " + o.keep_days + " days"],
    ...(o.consecutive_failures ? [["failures in a row", String(o.consecutive_failures), "bad"]] : []),
    ...(o.replication ? [replication(o.replication)] : []),
  ]);
}

function replication(r) {
  const text = r.state + (r.behind_records ? ", " + num(r.behind_records) + " records (" + r.lag_secs.toFixed(1) + " s) not off-host yet" : "") + (r.last_ok_at ? ", last segment " + ago(iso(r.last_ok_at)) : "") + (r.last_error && r.consecutive_failures ? ": " + r.last_error.message : "");
  return ["continuous", text, r.state === "failing" ? "bad" : r.state === "caught up" ? "ok" : null, "offsite-replication"];
}

function renderThreads(r) {
  const box = $("threads-body");
  if (r.status !== 200) return note(box, "threads unavailable: " + why(r));
  table(box, "Threads written to most recently", [{ label: "thread" }, { label: "records", num: true }, { label: "last record" }, { label: "status" }],
    r.body.data.map((t) => [el("button", { class: "link", type: "button", "aria-controls": "records", "aria-pressed": openThread === t.thread ? "true" : "false", text: t.thread, onclick: () => browse(t.thread, undefined, true) }), num(t.record_count), ago(t.last_seen), t.status]), "no records yet");
}

async function browse(thread, after, focus) {
  openThread = thread;
  openAfter = after;
  const panel = $("records");
  panel.hidden = false;
  $("records-title").textContent = "Records of " + thread;
  if (focus) $("records-title").focus();
  const r = await get("/v1/threads/" + encodeURIComponent(thread) + "/records?limit=25" + (after ? "&after=" + after : ""));
  const box = $("records-body");
  if (r.status !== 200) return note(box, "cannot read " + thread + ": " + why(r), "bad");
  const page = r.body;
  const list = el("div");
  table(list, page.data.length + " record" + (page.data.length === 1 ? "" : "s") + (after ? " after #" + after : ", oldest first"), [{ label: "#", num: true }, { label: "act" }, { label: "actor" }, { label: "clock", num: true }, { label: "written" }, { label: "body" }],
    page.data.map((x) => [String(x.sequence), x.act, x.actor, String(x.clock), ago(x.created_at), el("pre", { text: JSON.stringify(x.body, null, 1).slice(0, 600) })]), "no records");
  const more = page.has_more ? el("button", { type: "button", class: "quiet", text: "Next 25 records", onclick: () => browse(thread, page.next_cursor) }) : null;
  box.replaceChildren(list, ...(more ? [more] : []));
}

async function refresh() {
  if (mode === "signed-out" || mode === "unknown") {
    const h = await get("/health");
    renderHealth(h.status === 200 ? h.body : null);
    if (h.status !== 200) setState(h.status === 503 ? "starting" : "unreachable", "bad");
    else if (mode === "signed-out") setState("needs a token", "warn");
    return;
  }
  const [st, rates, fleet, tasks, disp, local, threads] = await Promise.all([
    get("/v1/status"), get("/v1/rates"), get("/v1/fleet/status"), get("/v1/tasks?all=true"), get("/v1/dispatches?limit=10"), get("/v1/backups"), get("/v1/threads?order=recent&limit=15"),
  ]);
  if (st.status === 401) {
    sessionStorage.removeItem(KEY);
    return showSignIn("the daemon refused the token (" + why(st) + ") — paste another");
  }
  $("signin").hidden = true;
  $("signout").hidden = mode !== "token";
  $("data").hidden = false;
  if (st.status !== 200) { setState(why(st), "bad"); return; }
  const s = st.body;
  setState(s.status, s.status === "ok" ? "ok" : "bad");
  renderHealth(s, [["active threads", num(s.active_threads)], ["pid", String(s.pid)], ["bind", s.bind]]);
  renderStorage(s);
  if (rates.status === 200) renderRates(rates.body);
  renderFleet(fleet);
  renderTasks(tasks);
  renderDispatches(disp);
  renderBackups(s, local);
  renderThreads(threads);
  if (openThread) await browse(openThread, openAfter);
  $("updated").textContent = "Updated " + new Date().toLocaleTimeString("en-GB") + " · every " + REFRESH_MS / 1000 + " s";
}

async function loop() {
  clearTimeout(timer);
  try { await refresh(); } catch (err) { setState("daemon unreachable", "bad"); }
  timer = setTimeout(loop, REFRESH_MS);
}

$("signin-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const t = $("token").value.trim();
  if (!t) { $("signin-error").textContent = "paste a token first"; return; }
  sessionStorage.setItem(KEY, t);
  $("token").value = "";
  mode = "token";
  loop();
});
$("signout").addEventListener("click", () => {
  sessionStorage.removeItem(KEY);
  showSignIn("signed out");
  loop();
});

(async () => {
  if (sessionStorage.getItem(KEY)) mode = "token";
  else {
    // Once, not polled: a daemon that needs no token (--insecure-localhost) shows everything.
    const probe = await get("/v1/status").catch(() => ({ status: 0 }));
    if (probe.status === 200) mode = "open";
    else showSignIn("");
  }
  loop();
})();
`;

const sha256 = (text: string) => `'sha256-${createHash("sha256").update(text).digest("base64")}'`;

export const CONSOLE_HEADERS = {
  "content-type": "text/html; charset=utf-8",
  // Nothing but this page's own script and style (by hash), talking to this daemon.
  "content-security-policy": `default-src 'none'; script-src ${sha256(SCRIPT)}; style-src ${sha256(STYLE)}; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`,
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "cache-control": "no-store",
};

/** A section the script fills: #<id>-body under its heading. */
const card = (id: string, title: string, wide = false) => `  <section id="${id}"${wide ? ' class="wide"' : ""} aria-labelledby="${id}-title">
    <h2 id="${id}-title">${title}</h2>
    <div id="${id}-body"></div>
  </section>`;

export const CONSOLE_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>spl console</title>
<link rel="icon" href="data:,">
<style>${STYLE}</style>
</head>
<body>
<header>
  <h1>spl <span id="version"></span></h1>
  <span id="state" class="pill muted" role="status" aria-live="polite">loading…</span>
  <span class="spacer"></span>
  <button id="signout" type="button" class="quiet" hidden>Sign out</button>
</header>
<main>
  <section id="signin" aria-labelledby="signin-title" hidden>
    <h2 id="signin-title">Sign in</h2>
    <p>This daemon needs a bearer token over TCP. Paste the one in <code>~/.syncro/token</code>, or one from <code>spl token create --scopes admin</code>. It stays in this browser tab only (sessionStorage) and is sent to this daemon only.</p>
    <form id="signin-form">
      <div><label for="token">API token</label><input id="token" name="token" type="password" autocomplete="off" spellcheck="false" placeholder="spl_local_…" aria-describedby="signin-error"></div>
      <button type="submit">Sign in</button>
    </form>
    <p id="signin-error" class="bad" role="alert"></p>
  </section>
  <section id="health" aria-labelledby="health-title">
    <h2 id="health-title">Health</h2>
    <dl id="health-list"></dl>
  </section>
  <div id="data" hidden>
  <section id="storage" aria-labelledby="storage-title">
    <h2 id="storage-title">Storage</h2>
    <dl id="storage-list"></dl>
  </section>
  <section id="rates" aria-labelledby="rates-title">
    <h2 id="rates-title">Ingest and requests, last 15 minutes</h2>
    <div class="charts">
      <figure><svg id="chart-records" class="chart" viewBox="0 0 300 70" preserveAspectRatio="none" role="img" aria-label="Records committed per second"></svg><figcaption>Records committed: <span id="chart-records-text">—</span></figcaption></figure>
      <figure><svg id="chart-requests" class="chart" viewBox="0 0 300 70" preserveAspectRatio="none" role="img" aria-label="Requests answered per second"></svg><figcaption>Requests answered: <span id="chart-requests-text">—</span></figcaption></figure>
    </div>
    <p id="rates-errors" class="muted"></p>
  </section>
${card("fleet", "Fleet", true)}
${card("control", "Kill switch")}
${card("tasks", "Tasks")}
${card("dispatches", "Dispatches", true)}
  <section id="backups" aria-labelledby="backups-title">
    <h2 id="backups-title">Backups</h2>
    <dl id="startup-list"></dl>
    <h3>On this machine</h3>
    <div id="local-backups"></div>
    <h3>Off-host</h3>
    <dl id="offsite-list"></dl>
  </section>
${card("threads", "Recent threads")}
  <section id="records" class="wide" aria-labelledby="records-title" hidden>
    <h2 id="records-title" tabindex="-1">Records</h2>
    <div id="records-body"></div>
  </section>
  </div>
</main>
<footer><p id="updated"></p></footer>
<script>${SCRIPT}</script>
</body>
</html>
`;
