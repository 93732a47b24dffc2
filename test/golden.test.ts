// What operators read, pinned: the output of `spl status`, `spl doctor`, `spl task show`,
// `spl dispatch list`, `spl fleet list`, `spl fleet status` and the one-line errors, from real
// daemons, compared with test/golden/*.txt after normalising what changes from run to run (pids,
// ports, paths, ids, times, durations, sizes; column padding). A change in output is then a
// reviewed diff: refresh the files with `bun run golden` and read `git diff test/golden`.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { localFleet } from "./fleet-harness";
import { Instance, waitFor } from "./harness";

const DIR = join(import.meta.dir, "golden");
const UPDATE = process.env.UPDATE_GOLDEN === "1";

/** Replaces what differs between runs with placeholders; `roots` are the temp dirs in use, `ports` the ports. */
export function normalise(text: string, roots: string[], ports: number[] = []): string {
  let t = text;
  for (const r of roots.sort((a, b) => b.length - a.length)) t = t.split(r).join("<root>");
  for (const p of ports) t = t.replace(new RegExp(`\\b${p}\\b`, "g"), "<port>");
  return t
    .replace(/\binstance-[0-9a-f]{16}\b/g, "instance-<did>")
    .replace(/\b\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z\b/g, "<time>")
    .replace(/did:sync:instance:[0-9a-f]{16}/g, "did:sync:instance:<did>")
    .replace(/(?<![0-9a-f])[0-9a-f]{64}(?![0-9a-f])/g, "<id>")
    .replace(/(?<![0-9a-f])[0-9a-f]{12}(?![0-9a-f])/g, "<id12>")
    .replace(/\b(pid|PID:)(\s+)\d+/g, "$1$2<pid>")
    .replace(/:\d{2,5}\b/g, ":<port>")
    .replace(/\b1\d{9}\b/g, "<unix>")
    .replace(/\b\d+(\.\d+)? ?(B|KiB|MiB|GiB)\b/g, "<size>")
    .replace(/\b(\d+h )?(\d+m )?\d+(\.\d+)?(ms|s)\b/g, "<dur>")
    .replace(/ {2,}/g, "  ")
    .replace(/[ \t]+$/gm, "");
}

/** Table rows in a stable order (members are listed by DID, which is new in every run). */
const sortRows = (text: string, header: RegExp) => {
  const lines = text.split("\n");
  const h = lines.findIndex((l) => header.test(l));
  if (h < 0) return text;
  let end = h + 1;
  while (end < lines.length && lines[end]!.trim() !== "") end++;
  return [...lines.slice(0, h + 1), ...lines.slice(h + 1, end).sort(), ...lines.slice(end)].join("\n");
};

function golden(name: string, actual: string): void {
  const file = join(DIR, `${name}.txt`);
  if (UPDATE || !existsSync(file)) {
    if (!UPDATE) throw new Error(`${file} is missing — run 'bun run golden' to write it, then review it`);
    mkdirSync(DIR, { recursive: true });
    writeFileSync(file, actual);
    return;
  }
  expect(actual).toBe(readFileSync(file, "utf8"));
}

describe("one instance", () => {
  const inst = new Instance();
  const roots = [inst.root];
  const show = (r: { code: number; stdout: string; stderr: string }, command = "") => normalise(`${command}${r.stdout}${r.stderr ? `[stderr]\n${r.stderr}` : ""}[exit ${r.code}]\n`, roots, [inst.port]);

  beforeAll(async () => {
    expect((await inst.spl(["init"])).code).toBe(0);
    await inst.start();
  });
  afterAll(() => inst.stop());

  test("spl status", async () => golden("status", show(await inst.spl(["status"]))));

  test("spl doctor", async () => golden("doctor", show(await inst.spl(["doctor"]))));

  test("spl task show", async () => {
    expect((await inst.spl(["task", "add", "Write the operator docs", "--priority", "high", "--label", "docs"])).code).toBe(0);
    expect((await inst.spl(["task", "start", "TSK-0001"])).code).toBe(0);
    golden("task-show", show(await inst.spl(["task", "show", "TSK-0001"])));
  });

  test("spl dispatch list", async () => {
    expect((await inst.spl(["intend", "deploy the docs", "--body", '{"to":"did:sync:agent:docs"}'])).code).toBe(0);
    await waitFor("a finished dispatch (spl dispatch list)", async () => JSON.parse((await inst.spl(["dispatch", "list", "-o", "json"])).stdout).some((d: { finished_at: number | null }) => d.finished_at !== null));
    golden("dispatch-list", show(await inst.spl(["dispatch", "list"])));
  });

  test("one-line errors", async () => {
    const cases: string[][] = [
      ["task", "show", "TSK-9999"],
      ["task", "start", "TSK-0001"],
      ["know", "x", "--body", "{not json"],
      ["thread", "records", "th_nothing_here"],
      ["fleet", "show", "worker-z"],
      ["kill", "--namespace", "docs", "--level", "medium"],
      ["config", "add-permission-rule", "--name", "x", "--action", "allow", "--priority", "1", "--expression", "record.nope("],
      ["serve", "--daemon", "--port", String(inst.port)],
      ["status", "--port", "1"],
      ["frobnicate"],
    ];
    const out: string[] = [];
    for (const args of cases) {
      const r = await inst.spl(args);
      expect(r.code).not.toBe(0);
      out.push(show(r, `$ spl ${args.join(" ")}\n`));
    }
    golden("errors", out.join("\n"));
  });
});

describe("a local fleet", () => {
  const f = localFleet(2);
  const roots = [f.coord.root];

  beforeAll(async () => {
    expect((await f.coord.spl(["init"])).code).toBe(0);
    // A 5 s heartbeat: every member stays live while the outputs are read, however busy the machine.
    const args = f.startArgs.map((a, i, all) => (all[i - 1] === "--heartbeat" ? "5" : a));
    f.trackSpawned(await f.ok(args));
    await f.whenLive(["coordinator", "worker-a", "worker-b"]);
  }, 120_000);
  afterAll(() => f.ok(["fleet", "stop", "--all"]).catch(() => {}));

  test("spl fleet list", async () => {
    golden("fleet-list", sortRows(normalise(await f.ok(["fleet", "list"]), roots), /DID\s+ENDPOINT/));
  });

  test("spl fleet status", async () => golden("fleet-status", normalise(await f.ok(["fleet", "status"]), roots)));
});
