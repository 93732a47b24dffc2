// GET / (issue 16, item 5): the status page in a real headless Chromium (Debian's package, driven
// by playwright-core): it loads with no external assets, asks for the token (TCP auth is on),
// shows the record count `spl status` reports, and follows a new record. The screenshot is saved
// to test-output/status-page.png.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { Instance, WAIT_MS } from "./harness";

const BROWSERS = ["chromium", "chromium-browser", "google-chrome"];
const browserPath = BROWSERS.map((b) => Bun.which(b)).find(Boolean) ?? null;
if (!browserPath) console.log(`skipped the browser test: none of ${BROWSERS.join(", ")} is installed (Debian: apt-get install chromium)`);

const inst = new Instance();
const records = async () => JSON.parse((await inst.spl(["status", "-o", "json"])).stdout).records as number;

describe("GET / status page", () => {
  beforeAll(async () => {
    await inst.spl(["init"]);
    await inst.start();
  });
  afterAll(async () => {
    await inst.stop();
  });

  test("is served without a token, as self-contained HTML with a strict content security policy", async () => {
    const r = await fetch(`${inst.url}/`);
    expect(r.status).toBe(200);
    expect(r.headers.get("content-type")).toBe("text/html; charset=utf-8");
    expect(r.headers.get("content-security-policy")).toContain("default-src 'none'");
    const html = await r.text();
    expect(html).not.toMatch(/(src|href)="(https?:)?\/\//); // nothing loaded from elsewhere
    // It carries no data: that comes from /v1/status, which still needs the token.
    expect(html).not.toContain(inst.token!);
    expect((await inst.http("GET", "/v1/status", undefined, { authorization: "" })).status).toBe(401);
  });

  test.skipIf(!browserPath)("in Chromium: asks for the token, shows the record count spl status reports, follows a new record", async () => {
    const { chromium } = await import("playwright-core");
    const browser = await chromium.launch({ executablePath: browserPath!, headless: true, args: ["--no-sandbox", "--disable-gpu"] });
    try {
      const page = await browser.newPage();
      const foreign: string[] = [];
      page.on("request", (req) => {
        if (!req.url().startsWith(inst.url)) foreign.push(req.url());
      });
      await page.goto(`${inst.url}/`);
      await page.locator("#token").waitFor({ state: "visible", timeout: WAIT_MS });
      await page.fill("#token", inst.token!);
      await page.click("#token-form button");

      const shown = () => page.locator("#health-records").textContent({ timeout: WAIT_MS });
      const before = await records();
      await page.waitForFunction((n) => (globalThis as any).document.getElementById("health-records")?.textContent === String(n), before, { timeout: WAIT_MS });
      expect(await shown()).toBe(String(before));
      expect(await page.locator("#state").textContent()).toBe("ok");

      expect((await inst.socket("POST", "/v1/records", { thread: "th_page", actor: "did:sync:user:tester", act: "KNOW", body: { text: "seen by the page" } })).status).toBe(201);
      const after = await records();
      expect(after).toBe(before + 1);
      await page.waitForFunction((n) => (globalThis as any).document.getElementById("health-records")?.textContent === String(n), after, { timeout: WAIT_MS });

      // The token lives in this tab's sessionStorage only; a reload does not ask again.
      await page.reload();
      await page.waitForFunction((n) => (globalThis as any).document.getElementById("health-records")?.textContent === String(n), after, { timeout: WAIT_MS });
      expect(await page.locator("#login").isHidden()).toBe(true);

      const dir = join(import.meta.dir, "..", "test-output");
      mkdirSync(dir, { recursive: true });
      await page.screenshot({ path: join(dir, "status-page.png"), fullPage: true });
      expect(foreign).toEqual([]);
    } finally {
      await browser.close();
    }
  }, 4 * WAIT_MS);
});
