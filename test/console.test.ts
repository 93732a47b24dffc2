// GET /, the console (issue 16 item 5, issue 28 item 1), on the compiled binary: a coordinator
// and two workers with real data (tasks, a finished and a running dispatch, a freeze, records,
// local backups, an off-host push), viewed in a real headless Chromium (Debian's package, driven
// by playwright-core). Signed out it shows what /health shows and the sign-in and reads nothing
// else; signed in it renders every section from that data and follows new data within a refresh;
// axe-core finds no serious or critical accessibility violation either way; nothing breaks the
// content security policy. Screenshots are written under a temp dir and their paths printed.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CONSOLE_REFRESH_MS } from "../lib/daemon/console";
import { localFleet } from "./fleet-harness";
import { waitFor } from "./harness";

const BROWSERS = ["chromium", "chromium-browser", "google-chrome"];
const browserPath = BROWSERS.map((b) => Bun.which(b)).find(Boolean) ?? null;
if (!browserPath) console.log(`skipped the browser tests: none of ${BROWSERS.join(", ")} is installed (Debian: apt-get install chromium)`);

const { coord, ok, startArgs, trackSpawned, teardown } = localFleet(2);
const MEMBERS = ["coordinator", "worker-a", "worker-b"] as const;
const shots = mkdtempSync(join(tmpdir(), "spl-console-shots-"));
const offsite = mkdtempSync(join(tmpdir(), "spl-console-offsite-"));
const release = join(coord.root, "release");
/** Time for the page to show a change: one refresh period, and then some (a bound, not a sleep). */
const WITHIN_A_REFRESH = CONSOLE_REFRESH_MS * 3;

const shownRecords = (text: string) => Number(text.replace(/,/g, ""));
const socket = (method: string, path: string, body?: unknown) => coord.socket(method, path, body);
const intend = (thread: string, to: string, goal: string) => socket("POST", "/v1/records", { thread, actor: "did:sync:user:tester", act: "INTEND", body: { to, goal } });

beforeAll(async () => {
  await ok(["init"]);
  // Two dispatch targets: one answers at once, one waits for the release file (a running dispatch).
  const slow = ["sh", "-c", 'while [ ! -e "$1" ]; do sleep 0.05; done; echo released', "sh", release];
  appendFileSync(
    coord.path("config.toml"),
    `\n[dispatch.targets."did:sync:agent:echo"]\nadapter = "echo"\n[dispatch.targets."did:sync:agent:slow"]\nadapter = "exec"\ncommand = ${JSON.stringify(slow)}\ntimeout_secs = 300\n[backup.offsite]\nurl = "file://${offsite}"\nevery = "1h"\n`,
  );
  const r = await coord.spl(startArgs, { timeoutMs: 90_000 });
  trackSpawned(r.stdout);
  if (r.code !== 0) throw new Error(`fleet start exited ${r.code}: ${r.stderr}${r.stdout}`);

  await ok(["task", "add", "Ship the operator console", "--priority", "high", "--label", "ui"]);
  await ok(["task", "add", "Write the runbook page"]);
  await ok(["task", "start", "TSK-0001"]);
  expect((await intend("th_console_echo", "did:sync:agent:echo", "say hello")).status).toBe(201);
  expect((await intend("th_console_slow", "did:sync:agent:slow", "wait for the release")).status).toBe(201);
  await ok(["kill", "--namespace", "docs", "--reason", "bad release"]);
  for (let i = 0; i < 3; i++) expect((await socket("POST", "/v1/records", { thread: "th_console_notes", actor: "did:sync:user:tester", act: "KNOW", body: { text: `note ${i}` } })).status).toBe(201);
  await ok(["backup"]);
  // The schedule pushes once at start (nothing was pushed before); every member beats.
  await waitFor(async () => (await socket("GET", "/v1/status")).json.offsite?.last_push?.ok === true, 60_000, 200);
  await waitFor(async () => (await socket("GET", "/v1/fleet/status")).json.counts?.live === 3, 30_000, 200);
  await waitFor(async () => (await socket("GET", "/v1/dispatches")).json.data?.some((d: any) => d.target === "did:sync:agent:echo" && d.success === true), 30_000, 100);
}, 180_000);

afterAll(async () => {
  writeFileSync(release, "");
  await teardown(MEMBERS);
  rmSync(offsite, { recursive: true, force: true });
}, 60_000);

describe("GET /", () => {
  test("is served without a token, one self-contained page under a strict content security policy", async () => {
    const r = await fetch(`${coord.url}/`);
    expect(r.status).toBe(200);
    expect(r.headers.get("content-type")).toBe("text/html; charset=utf-8");
    const csp = r.headers.get("content-security-policy")!;
    expect(csp).toContain("default-src 'none'");
    expect(csp).toMatch(/script-src 'sha256-[A-Za-z0-9+/=]+';/);
    expect(csp).toMatch(/style-src 'sha256-[A-Za-z0-9+/=]+';/);
    expect(csp).not.toContain("unsafe-inline");
    expect(csp).toContain("connect-src 'self'");
    const html = await r.text();
    expect(html).not.toMatch(/(src|href)="(https?:)?\/\//); // nothing loaded from elsewhere
    expect(html.match(/<script>/g)).toHaveLength(1);
    // It carries no data: that comes from /v1/*, which still needs the token.
    expect(html).not.toContain(coord.token!);
    expect((await coord.http("GET", "/v1/status", undefined, { authorization: "" })).status).toBe(401);
  });
});

describe.skipIf(!browserPath)("the console in Chromium", () => {
  let browser: import("playwright-core").Browser;
  const axeSource = readFileSync(join(import.meta.dir, "..", "node_modules", "axe-core", "axe.min.js"), "utf8");
  beforeAll(async () => {
    const { chromium } = await import("playwright-core");
    browser = await chromium.launch({ executablePath: browserPath!, headless: true, args: ["--no-sandbox", "--disable-gpu"] });
  });
  afterAll(async () => {
    await browser?.close();
    console.log(`console screenshots: ${shots}`);
  });

  /** A page on the coordinator, recording every request and every console error (CSP violations among them). */
  async function open(opts: { bypassCSP?: boolean } = {}) {
    const context = await browser.newContext({ viewport: { width: 1400, height: 1000 }, bypassCSP: opts.bypassCSP });
    const page = await context.newPage();
    const requests: string[] = [];
    const errors: string[] = [];
    page.on("request", (req) => requests.push(req.url()));
    page.on("console", (m) => m.type() === "error" && errors.push(m.text()));
    page.on("pageerror", (e) => errors.push(String(e)));
    await page.goto(`${coord.url}/`);
    return { page, context, requests, errors };
  }

  /** axe-core in the page: the serious and critical violations (none expected). */
  async function axe(page: import("playwright-core").Page) {
    await page.evaluate(axeSource);
    const result = await page.evaluate(async () => await (globalThis as any).axe.run((globalThis as any).document, { resultTypes: ["violations"] }));
    return (result.violations as any[])
      .filter((v) => v.impact === "serious" || v.impact === "critical")
      .map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.map((n: any) => n.target.join(" ")).slice(0, 5) }));
  }

  /** Console errors but the one 401 of the probe at the first load (the browser logs every 4xx). */
  const unexpected = (errors: string[]) => {
    const probes = errors.filter((e) => e.includes("status of 401"));
    return [...errors.filter((e) => !e.includes("status of 401")), ...(probes.length > 1 ? probes : [])];
  };
  const text = (page: import("playwright-core").Page, selector: string) => page.locator(selector).innerText({ timeout: WITHIN_A_REFRESH });
  const shot = async (page: import("playwright-core").Page, name: string) => {
    const path = join(shots, `${name}.png`);
    await page.screenshot({ path, fullPage: true });
    console.log(`screenshot: ${path}`);
    return path;
  };

  test("signed out: what /health shows and a labelled sign-in; polls /health only, never /v1/* for a 401; no serious accessibility violation", async () => {
    const { page, context, requests, errors } = await open();
    try {
      await page.getByLabel("API token").waitFor({ state: "visible", timeout: WITHIN_A_REFRESH });
      // Heartbeats are records too, so the count moves: it must be the daemon's count of that moment.
      const lo = (await socket("GET", "/health")).json.records;
      await page.waitForFunction((n) => Number((globalThis as any).document.getElementById("health-records")?.textContent.replace(/,/g, "")) >= n, lo, { timeout: WITHIN_A_REFRESH });
      expect(shownRecords(await text(page, "#health-records"))).toBeLessThanOrEqual((await socket("GET", "/health")).json.records);
      expect(await text(page, "#state")).toBe("needs a token");
      expect(await page.locator("#data").isHidden()).toBe(true);
      // Three reads of /health: the page has polled; /v1/status was asked once, at load, and never again.
      await waitFor(() => requests.filter((u) => u.endsWith("/health")).length >= 3, WITHIN_A_REFRESH * 2, 100);
      expect(requests.filter((u) => u.includes("/v1/"))).toEqual([`${coord.url}/v1/status`]);
      expect(await page.locator("main").count()).toBe(1);
      expect(await page.locator("header").count()).toBe(1);
      expect(await page.locator("[aria-live]").count()).toBeGreaterThanOrEqual(1);
      await shot(page, "console-signed-out");
      expect(unexpected(errors)).toEqual([]);
    } finally {
      await context.close();
    }
    const audited = await open({ bypassCSP: true }); // axe is injected; the page itself is the same
    try {
      await audited.page.getByLabel("API token").waitFor({ state: "visible", timeout: WITHIN_A_REFRESH });
      expect(await axe(audited.page)).toEqual([]);
    } finally {
      await audited.context.close();
    }
  });

  test("signed in: every section from the fleet's real data; follows new data within a refresh; the record browser; no serious accessibility violation", async () => {
    const { page, context, requests, errors } = await open();
    try {
      await page.getByLabel("API token").fill(coord.token!);
      await page.getByRole("button", { name: "Sign in" }).click();
      await page.locator("#fleet-members table").waitFor({ timeout: WITHIN_A_REFRESH });
      expect(await text(page, "#state")).toBe("ok");

      // Health and storage.
      const lo = (await socket("GET", "/v1/status")).json.records;
      await page.waitForFunction((n) => Number((globalThis as any).document.getElementById("health-records")?.textContent.replace(/,/g, "")) >= n, lo, { timeout: WITHIN_A_REFRESH });
      expect(shownRecords(await text(page, "#health-records"))).toBeLessThanOrEqual((await socket("GET", "/v1/status")).json.records);
      expect(await text(page, "#storage-errors")).toBe("none");
      expect(await text(page, "#storage-wal")).toMatch(/^\d+(\.\d)? (B|KiB|MiB)$/);

      // Fleet: three live members, their heartbeat age as a relative time, the coordinator.
      expect(await text(page, "#fleet-counts")).toStartWith("3 live");
      expect(await text(page, "#fleet-coordinator")).toBe(`http://127.0.0.1:${coord.port}`);
      const memberRows = await page.locator("#fleet-members tbody tr").allInnerTexts();
      expect(memberRows).toHaveLength(3);
      for (const row of memberRows) expect(row).toMatch(/\tlive\t(just now|\d+ s ago)\t/);
      expect(memberRows.join("\n")).toContain("worker-a");

      // Kill switch, tasks, dispatches.
      expect(await text(page, "#freezes")).toContain("docs");
      expect(await text(page, "#freezes")).toContain("bad release");
      expect(await text(page, "#emergency")).toContain("inactive");
      expect(await text(page, "#task-counts")).toBe("2 tasks: inbox 1 · active 1");
      expect(await text(page, "#task-list")).toContain("Ship the operator console");
      const dispatches = await text(page, "#dispatch-list");
      expect(dispatches).toMatch(/did:sync:agent:echo[^\n]*succeeded/);
      expect(dispatches).toMatch(/did:sync:agent:slow[^\n]*running/);
      expect(await text(page, "#dispatch-counts")).toMatch(/^\d+ active of \d+/);

      // Backups: this start's, the local files, the off-host push and the next one.
      const local = await text(page, "#local-backups");
      expect(local).toContain("hub.db.bak");
      expect(local).toMatch(/hub\.db\.\d{8}-\d{6}\.bak\tmanual/);
      expect(await text(page, "#offsite-url")).toBe(`file://${offsite}`);
      expect(await text(page, "#offsite-last")).toMatch(/^ok, (just now|\d+ s ago)/);
      expect(await text(page, "#offsite-next")).toMatch(/^in (59|60) min$/);

      // Rates: the charts drew what the daemon counted.
      expect(await page.locator("#chart-records polyline").count()).toBe(1);
      expect(await text(page, "#chart-requests-text")).toMatch(/^now [\d.,]+\/s · peak [\d.,]+\/s$/);

      // Recent threads and the record browser.
      const threads = await text(page, "#threads-body");
      expect(threads).toContain("th_console_notes");
      await page.getByRole("button", { name: "th_console_notes" }).click();
      await page.locator("#records-body table").waitFor({ timeout: WITHIN_A_REFRESH });
      expect(await text(page, "#records-title")).toBe("Records of th_console_notes");
      const browsed = await text(page, "#records-body");
      for (let i = 0; i < 3; i++) expect(browsed).toContain(`"text": "note ${i}"`);
      await shot(page, "console-signed-in");

      // New data shows within a refresh: a record on a new thread, a task, the slow dispatch finishing.
      const before = shownRecords(await text(page, "#health-records"));
      expect((await socket("POST", "/v1/records", { thread: "th_console_live", actor: "did:sync:user:tester", act: "KNOW", body: { text: "live" } })).status).toBe(201);
      await ok(["task", "add", "A task added while the page is open"]);
      writeFileSync(release, "");
      await page.waitForFunction(() => (globalThis as any).document.getElementById("threads-body")?.textContent.includes("th_console_live"), null, { timeout: WITHIN_A_REFRESH });
      await page.waitForFunction(() => (globalThis as any).document.getElementById("task-counts")?.textContent.startsWith("3 tasks"), null, { timeout: WITHIN_A_REFRESH });
      await page.waitForFunction(() => /did:sync:agent:slow[^\n]*succeeded/.test((globalThis as any).document.getElementById("dispatch-list")?.innerText ?? ""), null, {
        timeout: WITHIN_A_REFRESH * 2,
      });
      expect(shownRecords(await text(page, "#health-records"))).toBeGreaterThan(before);

      // The token stays in this tab: a reload does not ask again.
      await page.reload();
      await page.locator("#fleet-members table").waitFor({ timeout: WITHIN_A_REFRESH });
      expect(await page.locator("#signin").isHidden()).toBe(true);

      expect(requests.filter((u) => !u.startsWith(coord.url))).toEqual([]);
      expect(unexpected(errors)).toEqual([]);
    } finally {
      await context.close();
    }

    const audited = await open({ bypassCSP: true });
    try {
      await audited.page.getByLabel("API token").fill(coord.token!);
      await audited.page.getByRole("button", { name: "Sign in" }).click();
      await audited.page.locator("#fleet-members table").waitFor({ timeout: WITHIN_A_REFRESH });
      await audited.page.getByRole("button", { name: "th_console_notes" }).click();
      await audited.page.locator("#records-body table").waitFor({ timeout: WITHIN_A_REFRESH });
      expect(await axe(audited.page)).toEqual([]);
    } finally {
      await audited.context.close();
    }
  });

  test("a refused token: the sign-in again, saying why, and no more /v1/* reads", async () => {
    const { page, context, requests } = await open();
    try {
      await page.getByLabel("API token").fill("spl_local_nope_notatoken");
      await page.getByRole("button", { name: "Sign in" }).click();
      await page.waitForFunction(() => (globalThis as any).document.getElementById("signin-error")?.textContent.includes("refused"), null, { timeout: WITHIN_A_REFRESH });
      const v1 = requests.filter((u) => u.includes("/v1/")).length;
      await waitFor(() => requests.filter((u) => u.endsWith("/health")).length >= 3, WITHIN_A_REFRESH * 2, 100);
      expect(requests.filter((u) => u.includes("/v1/")).length).toBe(v1);
    } finally {
      await context.close();
    }
  });
});
