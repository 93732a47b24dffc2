// GET /: a small read-only status page. It holds no data itself (so it is served without a
// token); its script polls the same /v1/* routes the CLI uses, with a token the operator types
// once and the tab keeps in sessionStorage. No external assets, no build step.
export const CONSOLE_HEADERS = {
  "content-type": "text/html; charset=utf-8",
  // Nothing but this page's own inline code, talking to this daemon.
  "content-security-policy": "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "cache-control": "no-store",
};

export const CONSOLE_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>spl status</title>
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 2rem; color: #1d2330; background: #f6f7f9; }
  h1 { font-size: 1.3rem; margin: 0 0 1rem; }
  section { background: #fff; border: 1px solid #dde1e7; border-radius: 6px; padding: 1rem 1.25rem; margin-bottom: 1rem; }
  h2 { font-size: 1rem; margin: 0 0 .5rem; }
  dl { display: grid; grid-template-columns: max-content 1fr; gap: .25rem 1rem; margin: 0; }
  dt { color: #5b6475; }
  dd { margin: 0; font-family: ui-monospace, monospace; word-break: break-all; }
  .ok { color: #17803d; } .bad { color: #b42318; } .muted { color: #5b6475; }
  table { border-collapse: collapse; width: 100%; font-family: ui-monospace, monospace; }
  th, td { text-align: left; padding: .2rem .6rem .2rem 0; }
  form { display: flex; gap: .5rem; } input { flex: 1; font: inherit; padding: .3rem; }
</style>
</head>
<body>
<h1>spl <span id="version"></span> <span id="state" class="muted">loading…</span></h1>
<section id="login" hidden>
  <h2>Token</h2>
  <p>This daemon needs a bearer token over TCP: paste the one in <code>~/.syncro/token</code> (or from <code>spl token create</code>). It stays in this tab only.</p>
  <form id="token-form"><input id="token" type="password" autocomplete="off" placeholder="spl_..."><button>Use token</button></form>
  <p id="login-error" class="bad"></p>
</section>
<section id="health"><h2>Health</h2><dl id="health-list"></dl></section>
<section id="backups"><h2>Latest backup</h2><dl id="backup-list"></dl></section>
<section id="permissions"><h2>Permissions</h2><dl id="permission-list"></dl></section>
<section id="fleet" hidden><h2>Fleet members</h2><table><thead><tr><th>member</th><th>state</th><th>last seen</th></tr></thead><tbody id="fleet-rows"></tbody></table></section>
<p class="muted">Refreshed every 2 s · <span id="updated"></span></p>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
const KEY = "spl-token";
function rows(list, pairs) {
  list.replaceChildren();
  for (const [name, value, cls] of pairs) {
    const dt = document.createElement("dt"); dt.textContent = name;
    const dd = document.createElement("dd"); dd.textContent = value === null || value === undefined ? "—" : String(value);
    if (cls) dd.className = cls;
    dd.id = list.id.replace("-list", "") + "-" + name.replace(/\W+/g, "-"); // e.g. health-records
    list.append(dt, dd);
  }
}
// Fields this daemon may not report (emergency state, freezes): "—" rather than a guess.
const shown = (v) => (v === undefined || v === null ? "—" : typeof v === "object" ? JSON.stringify(v) : String(v));
async function get(path) {
  const token = sessionStorage.getItem(KEY);
  const res = await fetch(path, { headers: token ? { authorization: "Bearer " + token } : {}, cache: "no-store" });
  const body = await res.json().catch(() => null);
  return { status: res.status, body };
}
function askForToken(message) {
  $("login").hidden = false;
  $("login-error").textContent = message || "";
  $("state").textContent = "needs a token";
}
async function refresh() {
  const s = await get("/v1/status");
  if (s.status === 401) return askForToken(sessionStorage.getItem(KEY) ? (s.body && s.body.message) || "token refused" : "");
  $("login").hidden = true;
  if (s.status !== 200) { $("state").textContent = (s.body && s.body.message) || "HTTP " + s.status; $("state").className = "bad"; return; }
  const st = s.body;
  $("version").textContent = st.version;
  $("state").textContent = st.status; $("state").className = st.status === "ok" ? "ok" : "bad";
  const storage = st.storage || {};
  rows($("health-list"), [
    ["records", st.records], ["threads", st.threads], ["active threads", st.active_threads],
    ["instance", st.instance_did], ["pid", st.pid], ["uptime", st.uptime_secs + " s"], ["bind", st.bind], ["store", st.store],
    ["storage", storage.last_error ? storage.last_error.message : "ok", storage.last_error ? "bad" : "ok"],
    ["memory (rss)", Math.round(st.memory.rss_bytes / 1048576) + " MiB"],
  ]);
  const b = st.backup;
  rows($("backup-list"), b ? [["file", b.path], ["outcome", b.outcome, b.outcome === "written" ? "ok" : b.outcome.startsWith("FAILED") ? "bad" : "muted"], ["written", b.written_at], ["records", b.records]] : [["startup backup", "none (new store)"]]);
  rows($("permission-list"), [["enforcement", st.permissions_enabled ? "on" : "off"], ["emergency", shown(st.emergency)], ["freezes", shown(st.freezes)]]);
  const fleet = await get("/v1/fleet/status");
  const members = fleet.status === 200 ? fleet.body.instances || [] : [];
  $("fleet").hidden = members.length === 0;
  if (members.length) {
    const tbody = $("fleet-rows"); tbody.replaceChildren();
    for (const m of members) {
      const tr = document.createElement("tr");
      for (const v of [m.name ? m.name + " " + m.did : m.did, m.status, m.last_heartbeat]) { const td = document.createElement("td"); td.textContent = v === undefined ? "—" : String(v); tr.append(td); }
      tbody.append(tr);
    }
  }
  $("updated").textContent = "updated " + new Date().toLocaleTimeString();
}
$("token-form").addEventListener("submit", (e) => {
  e.preventDefault();
  sessionStorage.setItem(KEY, $("token").value.trim());
  $("token").value = "";
  refresh();
});
async function loop() { try { await refresh(); } catch (err) { $("state").textContent = "daemon unreachable"; $("state").className = "bad"; } setTimeout(loop, 2000); }
loop();
</script>
</body>
</html>
`;
