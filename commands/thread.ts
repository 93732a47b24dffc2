// spl thread list | records <id> | state <id>
import { defineCommand } from "citty";
import { call, resolveTarget, urlArg } from "../lib/client";
import { out, outputArgs, printJson, table, wantsJson } from "../lib/cli/output";
import { ENGINE_CONFIG_THREAD } from "../lib/records/reserved-threads";

const when = (secs: number) => new Date(secs * 1000).toISOString().replace(".000Z", "Z");

/** Follows next_cursor until the end, handing each page over as it arrives. */
async function eachPage(path: string, url: string | undefined, onPage: (data: any[]) => void) {
  const target = resolveTarget(url);
  let after = "";
  for (;;) {
    const sep = path.includes("?") ? "&" : "?";
    const page = await call("GET", `${path}${sep}limit=1000${after ? `&after=${after}` : ""}`, undefined, target);
    onPage(page.data);
    if (!page.has_more) return;
    after = page.next_cursor;
  }
}

/** A record's body on one line; cut at 80 characters unless `full` (a rule cut short hides its expression). */
function summarize(body: Record<string, unknown>, full: boolean): string {
  const text = typeof body.text === "string" ? body.text : JSON.stringify(body);
  return !full && text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

const list = defineCommand({
  meta: { name: "list", description: "List threads with record counts and status" },
  args: { ...outputArgs, ...urlArg },
  async run({ args }) {
    const json = wantsJson(args);
    const all: any[] = [];
    await eachPage("/v1/threads", args.url, (data) => all.push(...data));
    if (json) return printJson(all);
    if (!all.length) return out("no threads yet — record one with 'spl intend \"...\"'");
    out(table(["THREAD", "RECORDS", "STATUS", "LAST SEEN"], all.map((t) => [t.thread, t.record_count, t.status, when(t.last_seen)])));
  },
});

const records = defineCommand({
  meta: { name: "records", description: "Print a thread's records in store order" },
  args: {
    id: { type: "positional", description: "Thread id" },
    full: { type: "boolean", description: "Whole bodies (th_engine_config always shows them whole)" },
    ...outputArgs,
    ...urlArg,
  },
  async run({ args }) {
    const json = wantsJson(args);
    const full = args.full === true || args.id === ENGINE_CONFIG_THREAD;
    const path = `/v1/threads/${encodeURIComponent(String(args.id))}/records`;
    if (json) {
      const all: any[] = [];
      await eachPage(path, args.url, (data) => all.push(...data));
      return printJson(all);
    }
    await eachPage(path, args.url, (data) => {
      if (data.length) out(data.map((r) => `${when(r.created_at)}  ${r.act.padEnd(6)} ${r.id.slice(0, 12)}  ${r.actor}  ${summarize(r.body, full)}`).join("\n"));
    });
  },
});

const state = defineCommand({
  meta: { name: "state", description: "Show a thread's folded state (record count, clocks, status)" },
  args: { id: { type: "positional", description: "Thread id" }, ...outputArgs, ...urlArg },
  async run({ args }) {
    const s = await call("GET", `/v1/threads/${encodeURIComponent(String(args.id))}/state`, undefined, resolveTarget(args.url));
    if (wantsJson(args)) return printJson(s);
    out(
      [
        `Thread:     ${s.thread}`,
        `Status:     ${s.status}`,
        `Records:    ${s.record_count}`,
        `Last clock: ${s.last_clock}`,
        "Actors:",
        ...Object.entries(s.actor_clocks).map(([a, c]) => `  ${a}  clock ${c}`),
      ].join("\n"),
    );
  },
});

export default defineCommand({
  meta: { name: "thread", description: "Inspect threads" },
  subCommands: { list, records, state },
});
