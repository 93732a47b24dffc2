// What a new operator trips over (issue 14): finding the daemon, config.toml mistakes, the
// default identity, the detached start's output file. Each drives the compiled binary.
import { describe, expect, test } from "bun:test";
import { rmSync } from "node:fs";
import { Instance, isAlive } from "./harness";

describe("one way of finding the daemon", () => {
  test("pid file and socket gone: status, doctor and serve --stop all find the daemon on its port", async () => {
    const inst = new Instance();
    const pid = await inst.start();
    rmSync(inst.path("run"), { recursive: true, force: true });

    const status = await inst.spl(["status"]);
    expect(status.code).toBe(0);
    expect(status.stdout).toMatch(/Status:\s+ok/);
    expect(status.stdout).toContain(`PID:      ${pid}`);
    expect(status.stderr).toContain(`reached spl serve (pid ${pid}) on http://127.0.0.1:${inst.port}`);

    const doctor = JSON.parse((await inst.spl(["doctor", "--json"])).stdout);
    const reachable = doctor.checks.find((c: any) => c.name === "daemon reachable");
    expect(reachable.status).toBe("pass");
    expect(reachable.detail).toContain(`pid ${pid}`);

    const stop = await inst.spl(["serve", "--stop"]);
    expect(stop.code).toBe(0);
    expect(stop.stdout).toContain(`Stopped spl serve (pid ${pid}, found via port`);
    expect(isAlive(pid)).toBe(false);

    const after = await inst.spl(["status"]);
    expect(after.code).toBe(1);
    expect(after.stdout).toMatch(/not running/);
  });
});
