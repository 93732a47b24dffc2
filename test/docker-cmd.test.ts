// The container contract without a Docker engine: start the binary exactly as the image's CMD
// does (foreground, --host 0.0.0.0, SYNCROPEL_HOME from ENV, SPL_BOOTSTRAP_TOKEN), run the
// image's HEALTHCHECK command verbatim (only its port swapped for a free one) until healthy, then
// stop it the way `docker stop` does (SIGTERM) and expect a clean exit 0 within 10 s.
import { expect, test } from "bun:test";
import { readFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { Instance, SPL, track, waitFor } from "./harness";

const dockerfile = readFileSync(join(import.meta.dir, "..", "Dockerfile"), "utf8").replace(/\\\n\s*/g, " ");
const instruction = (name: string) => dockerfile.split("\n").filter((l) => l.startsWith(`${name} `)).pop()!.slice(name.length + 1).trim();

test("the image's CMD and HEALTHCHECK work on the compiled binary", async () => {
  const cmd = JSON.parse(instruction("CMD")) as string[];
  expect(cmd).toEqual(["serve", "--port", "9100", "--host", "0.0.0.0"]);
  const healthcheck = instruction("HEALTHCHECK").replace(/^.*?CMD\s+/, "");
  expect(healthcheck).toBe("curl -fsS http://127.0.0.1:9100/health || exit 1");
  expect(instruction("USER")).toBe("syncropel");
  expect(instruction("ENTRYPOINT")).toBe('["/usr/bin/tini", "--", "/usr/local/bin/spl"]');

  const inst = new Instance();
  const port = String(inst.port);
  const token = "smoke-" + "k9".repeat(20);
  const env = { ...inst.env, SYNCROPEL_HOME: join(inst.root, "syncropel"), SPL_BOOTSTRAP_TOKEN: token };
  const args = cmd.map((a) => (a === "9100" ? port : a));
  const proc = Bun.spawn([SPL, ...args], { env, stdout: "pipe", stderr: "pipe" });
  track(proc.pid);

  const probe = healthcheck.replace("9100", port);
  await waitFor(() => Bun.spawnSync(["sh", "-c", probe]).exitCode === 0, 30_000, 100);
  const health = JSON.parse(Bun.spawnSync(["curl", "-fsS", `http://127.0.0.1:${port}/health`]).stdout.toString());
  expect(health).toMatchObject({ status: "ok", store: `sqlite://${join(inst.root, "syncropel", "hub.db")}` });

  // Listening on all interfaces means auth is on: no bearer is 401, the bootstrap token works.
  const anon = await fetch(`http://127.0.0.1:${port}/v1/status`);
  expect(anon.status).toBe(401);
  const authed = await fetch(`http://127.0.0.1:${port}/v1/records`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify({ thread: "th_smoke", actor: "did:sync:user:tester", act: "KNOW", body: { text: "smoke" } }),
  });
  expect(authed.status).toBe(201);
  // `docker exec spl spl status` uses the socket under SYNCROPEL_HOME.
  const status = Bun.spawnSync([SPL, "status"], { env });
  expect(status.stdout.toString()).toContain("Status:   ok");

  const sent = Date.now();
  proc.kill("SIGTERM");
  const code = await Promise.race([proc.exited, Bun.sleep(10_000).then(() => "timeout")]);
  expect({ code, withinTenSeconds: Date.now() - sent < 10_000 }).toEqual({ code: 0, withinTenSeconds: true });
  expect(existsSync(join(inst.root, "syncropel", "run", "spl.pid"))).toBe(false);
  expect(await new Response(proc.stdout).text()).toContain("Bind:     0.0.0.0:" + port);
});
