import { expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createFileLogger } from "./log";

test("rotation keeps at most 7 old files, every line whole JSON", () => {
  const dir = mkdtempSync(join(tmpdir(), "spl-log-"));
  try {
    const path = join(dir, "spl.log");
    const log = createFileLogger(path, { level: "info", maxBytes: 4096 });
    for (let i = 0; i < 400; i++) {
      log.info("line", { i, pad: "x".repeat(100) });
      if (i % 10 === 9) log.flush();
    }
    log.flush();
    const files = readdirSync(dir).sort();
    expect(files).toEqual(["spl.log", ...[1, 2, 3, 4, 5, 6, 7].map((n) => `spl.log.${n}`)].sort());
    expect(existsSync(`${path}.8`)).toBe(false);
    const newest = readFileSync(path, "utf8").trim().split("\n").map((l) => JSON.parse(l));
    expect(newest.at(-1)).toMatchObject({ level: "INFO", target: "spl", msg: "line", i: 399 });
    // .1 holds the lines just before the current file.
    const prev = readFileSync(`${path}.1`, "utf8").trim().split("\n").map((l) => JSON.parse(l));
    expect(prev.at(-1).i).toBe(newest[0].i - 1);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("levels filter and WARN flushes at once", () => {
  const dir = mkdtempSync(join(tmpdir(), "spl-log-"));
  try {
    const path = join(dir, "spl.log");
    const log = createFileLogger(path, { level: "warn" });
    log.info("hidden");
    log.warn("shown", { actor: "did:x:y" });
    const lines = readFileSync(path, "utf8").trim().split("\n").map((l) => JSON.parse(l));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: "WARN", msg: "shown", actor: "did:x:y" });
    expect(log.enabled("info")).toBe(false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a field named like a line key goes under fields, so every key has one value", () => {
  const dir = mkdtempSync(join(tmpdir(), "spl-log-"));
  try {
    const path = join(dir, "spl.log");
    const log = createFileLogger(path, { level: "info" }).child("syncropel_engine::reconciler");
    log.info("routing decision", { record: "r1", target: "did:sync:agent:a", outcome: "dispatched" });
    log.flush();
    const text = readFileSync(path, "utf8");
    expect(text.match(/"target":/g)).toHaveLength(2);
    expect(JSON.parse(text)).toMatchObject({ target: "syncropel_engine::reconciler", record: "r1", outcome: "dispatched", fields: { target: "did:sync:agent:a" } });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a log that cannot be written never throws: failures are counted, lines wait for the retry", () => {
  const dir = mkdtempSync(join(tmpdir(), "spl-log-"));
  try {
    // A file where the log's directory should be: every append fails (ENOTDIR).
    const blocker = join(dir, "logs");
    require("node:fs").writeFileSync(blocker, "");
    const log = createFileLogger(join(blocker, "spl.log"), { level: "info" });
    for (let i = 0; i < 5000; i++) log.error("line", { i, pad: "x".repeat(100) });
    log.flush();
    const st = log.writeStatus();
    expect(st.ok).toBe(false);
    expect(st.failed_writes).toBeGreaterThan(0);
    expect(st.dropped_lines).toBeGreaterThan(0);
    expect(st.last_error!.message).toContain(`log ${join(blocker, "spl.log")}: E`);
    expect(Date.parse(st.since!)).not.toBeNaN();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
